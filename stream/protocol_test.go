package stream_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/fxamacker/cbor/v2"
)

func TestValidationErrors(t *testing.T) {
	_, url := startServer(t, quietConfig())
	c := newClient(url, noRetries)
	ctx := ctxT(t)
	createStream(t, c, "v", 1)
	tests := []struct {
		name, op, body string
		status         int
		typ, msg       string
	}{
		{"bad stream name", "CreateStream", `{"StreamName":"bad name!","ShardCount":1}`, 400, "ValidationException",
			"1 validation error detected: Value 'bad name!' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"},
		{"two errors", "CreateStream", `{"ShardCount":0}`, 400, "ValidationException",
			"2 validation errors detected: Value null at 'streamName' failed to satisfy constraint: Member must not be null; Value '0' at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1"},
		{"long name", "DescribeStream", `{"StreamName":"` + strings.Repeat("a", 129) + `"}`, 400, "ValidationException",
			"failed to satisfy constraint: Member must have length less than or equal to 128"},
		{"missing partition key", "PutRecord", `{"StreamName":"v","Data":"AAAA"}`, 400, "ValidationException",
			"1 validation error detected: Value null at 'partitionKey' failed to satisfy constraint: Member must not be null"},
		{"long partition key", "PutRecord", `{"StreamName":"v","Data":"AAAA","PartitionKey":"` + strings.Repeat("k", 257) + `"}`, 400, "ValidationException",
			"at 'partitionKey' failed to satisfy constraint: Member must have length less than or equal to 256"},
		{"bad explicit hash key", "PutRecord", `{"StreamName":"v","Data":"AAAA","PartitionKey":"k","ExplicitHashKey":"340282366920938463463374607431768211456"}`, 400,
			"InvalidArgumentException", "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was 340282366920938463463374607431768211456"},
		{"batch member", "PutRecords", `{"StreamName":"v","Records":[{"Data":"AAAA","PartitionKey":"k"},{"Data":"AAAA"}]}`, 400, "ValidationException",
			"Value null at 'records.2.member.partitionKey' failed to satisfy constraint: Member must not be null"},
		{"empty batch", "PutRecords", `{"StreamName":"v","Records":[]}`, 400, "ValidationException",
			"at 'records' failed to satisfy constraint: Member must have length greater than or equal to 1"},
		{"iterator type", "GetShardIterator", `{"StreamName":"v","ShardId":"shardId-0","ShardIteratorType":"OLDEST"}`, 400, "ValidationException",
			"Value 'OLDEST' at 'shardIteratorType' failed to satisfy constraint: Member must satisfy enum value set: [AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, TRIM_HORIZON, LATEST, AT_TIMESTAMP]"},
		{"no sequence number", "GetShardIterator", `{"StreamName":"v","ShardId":"shardId-0","ShardIteratorType":"AT_SEQUENCE_NUMBER"}`, 400, "InvalidArgumentException",
			"Request specified AT_SEQUENCE_NUMBER and no StartingSequenceNumber."},
		{"bad sequence number", "GetShardIterator", `{"StreamName":"v","ShardId":"shardId-0","ShardIteratorType":"AT_SEQUENCE_NUMBER","StartingSequenceNumber":"12345"}`, 400,
			"InvalidArgumentException", "StartingSequenceNumber 12345 used in GetShardIterator on shard shardId-000000000000 in stream v under account 000000000000 is invalid."},
		{"future timestamp", "GetShardIterator", fmt.Sprintf(`{"StreamName":"v","ShardId":"shardId-0","ShardIteratorType":"AT_TIMESTAMP","Timestamp":%d}`, time.Now().Add(time.Hour).Unix()), 400,
			"InvalidArgumentException", "The timestampInMillis parameter cannot be greater than the currentTimestampInMillis."},
		{"limit", "GetRecords", `{"ShardIterator":"abc","Limit":10001}`, 400, "ValidationException",
			"Value '10001' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 10000"},
		{"retention too short", "DecreaseStreamRetentionPeriod", `{"StreamName":"v","RetentionPeriodHours":23}`, 400, "InvalidArgumentException",
			"Minimum allowed retention period is 24 hours. Requested retention period (23 hours) is too short."},
		{"retention too long", "IncreaseStreamRetentionPeriod", `{"StreamName":"v","RetentionPeriodHours":8761}`, 400, "InvalidArgumentException",
			"Maximum allowed retention period is 8760 hours. Requested retention period (8761 hours) is too long."},
		{"wrong type", "CreateStream", `{"StreamName":"x","ShardCount":"one"}`, 400, "SerializationException",
			"class java.lang.String can not be converted to an Integer"},
		{"not json", "ListStreams", `{"Limit":`, 400, "SerializationException", ""},
		{"no stream", "DescribeStreamSummary", `{"StreamName":"nope"}`, 400, "ResourceNotFoundException", "Stream nope under account 000000000000 not found."},
		{"neither name nor arn", "DescribeStreamSummary", `{}`, 400, "InvalidArgumentException", "Either StreamName or StreamARN must be provided."},
		{"unknown operation", "FlyAway", `{}`, 400, "UnknownOperationException", ""},
		{"empty body", "ListStreams", ``, 400, "SerializationException", ""},
		{"shard filter needs id", "ListShards", `{"StreamName":"v","ShardFilter":{"Type":"AFTER_SHARD_ID"}}`, 400, "InvalidArgumentException", "ShardId must be provided"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, h, body := rawPost(t, url, tc.op, "application/x-amz-json-1.1", []byte(tc.body))
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			var e struct {
				Type    string `json:"__type"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if e.Type != tc.typ || h.Get("X-Amzn-Errortype") != tc.typ {
				t.Fatalf("type %q (header %q), want %q: %s", e.Type, h.Get("X-Amzn-Errortype"), tc.typ, body)
			}
			if !strings.Contains(e.Message, tc.msg) {
				t.Fatalf("message %q does not contain %q", e.Message, tc.msg)
			}
		})
	}

	// Increase with a shorter period and the reverse.
	if _, err := c.IncreaseStreamRetentionPeriod(ctx, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: aws.String("v"), RetentionPeriodHours: aws.Int32(48)}); err != nil {
		t.Fatal(err)
	}
	_, err := c.IncreaseStreamRetentionPeriod(ctx, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: aws.String("v"), RetentionPeriodHours: aws.Int32(36)})
	wantAPIError(t, err, "InvalidArgumentException", "Requested retention period (36 hours) for stream v can not be shorter than existing retention period (48 hours). Use DecreaseRetentionPeriod API.")
	_, err = c.DecreaseStreamRetentionPeriod(ctx, &kinesis.DecreaseStreamRetentionPeriodInput{StreamName: aws.String("v"), RetentionPeriodHours: aws.Int32(72)})
	wantAPIError(t, err, "InvalidArgumentException", "Use IncreaseRetentionPeriod API.")

	// Non-POST requests and foreign content types.
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("GET: status %d", resp.StatusCode)
	}
}

func TestCBOR(t *testing.T) {
	_, url := startServer(t, quietConfig())
	dm, err := cbor.DecOptions{DefaultMapType: reflect.TypeOf(map[string]any{})}.DecMode()
	if err != nil {
		t.Fatal(err)
	}
	var lastBody []byte
	call := func(op string, in map[string]any) (int, map[string]any) {
		t.Helper()
		b, err := cbor.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		status, h, body := rawPost(t, url, op, "application/x-amz-cbor-1.1", b)
		lastBody = body
		if ct := h.Get("Content-Type"); ct != "application/x-amz-cbor-1.1" {
			t.Fatalf("%s: content type %q", op, ct)
		}
		var out map[string]any
		if err := dm.Unmarshal(body, &out); err != nil {
			t.Fatalf("%s: response is not CBOR: %v", op, err)
		}
		return status, out
	}
	if st, out := call("CreateStream", map[string]any{"StreamName": "cb", "ShardCount": 1}); st != 200 {
		t.Fatalf("CreateStream: %d %v", st, out)
	}
	st, out := call("PutRecord", map[string]any{"StreamName": "cb", "PartitionKey": "k", "Data": []byte{0, 1, 2, 0xff}})
	if st != 200 || out["ShardId"] != "shardId-000000000000" || len(out["SequenceNumber"].(string)) != 56 {
		t.Fatalf("PutRecord: %d %v", st, out)
	}
	st, out = call("PutRecords", map[string]any{"StreamName": "cb", "Records": []any{
		map[string]any{"PartitionKey": "k", "Data": []byte("second")}}})
	if st != 200 || out["FailedRecordCount"] != uint64(0) {
		t.Fatalf("PutRecords: %d %v", st, out)
	}
	// AT_TIMESTAMP with a tag-1 timestamp in epoch milliseconds, as the Java SDKs send it.
	past := time.Now().Add(-time.Minute).UnixMilli()
	st, out = call("GetShardIterator", map[string]any{"StreamName": "cb", "ShardId": "shardId-000000000000",
		"ShardIteratorType": "AT_TIMESTAMP", "Timestamp": cbor.Tag{Number: 1, Content: past}})
	if st != 200 {
		t.Fatalf("GetShardIterator: %d %v", st, out)
	}
	st, out = call("GetRecords", map[string]any{"ShardIterator": out["ShardIterator"]})
	if st != 200 {
		t.Fatalf("GetRecords: %d %v", st, out)
	}
	recs := out["Records"].([]any)
	if len(recs) != 2 {
		t.Fatalf("%d records", len(recs))
	}
	r0 := recs[0].(map[string]any)
	if d, ok := r0["Data"].([]byte); !ok || string(d) != "\x00\x01\x02\xff" {
		t.Fatalf("Data is %T %v, want a byte string", r0["Data"], r0["Data"])
	}
	var raw struct {
		Records []struct {
			ApproximateArrivalTimestamp cbor.RawTag `cbor:"ApproximateArrivalTimestamp"`
		} `cbor:"Records"`
	}
	if err := cbor.Unmarshal(lastBody, &raw); err != nil {
		t.Fatal(err)
	}
	if raw.Records[0].ApproximateArrivalTimestamp.Number != 1 {
		t.Fatalf("timestamp tag %d, want 1", raw.Records[0].ApproximateArrivalTimestamp.Number)
	}
	var ms int64
	if err := cbor.Unmarshal(raw.Records[0].ApproximateArrivalTimestamp.Content, &ms); err != nil || time.Since(time.UnixMilli(ms)) > time.Minute {
		t.Fatalf("timestamp content %v (%v), want epoch milliseconds of now", ms, err)
	}
	// Errors in CBOR.
	st, out = call("DescribeStream", map[string]any{"StreamName": "missing"})
	if st != 400 || out["__type"] != "ResourceNotFoundException" || out["message"] != "Stream missing under account 000000000000 not found." {
		t.Fatalf("CBOR error: %d %v", st, out)
	}
}

// TestSigV4BehindAPrefixRelay checks signature verification behind a reverse proxy that strips a path
// prefix and rewrites Host, reporting both in X-Forwarded-* (the SDK suite covers the rest of SigV4, and
// e2e runs it through the portal's own relay), and that with verification off any signature passes,
// even one with an empty service scope.
func TestSigV4BehindAPrefixRelay(t *testing.T) {
	cfg := quietConfig()
	cfg.Credentials = map[string]string{testAccessKey: testSecretKey}
	_, base := startServer(t, cfg)
	ctx := ctxT(t)
	good := newClient(base, noRetries)
	createStream(t, good, "signed", 1)
	if _, err := good.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("signed"), PartitionKey: aws.String("k"), Data: []byte("x")}); err != nil {
		t.Fatalf("signed PutRecord: %v", err)
	}

	target, _ := url.Parse(base)
	proxy := httputil.NewSingleHostReverseProxy(target)
	inner := proxy.Director
	proxy.Director = func(r *http.Request) {
		origHost := r.Host
		inner(r)
		r.Host = target.Host
		r.URL.Path = strings.TrimPrefix(r.URL.Path, "/i/kin-42")
		r.Header.Set("X-Forwarded-Prefix", "/i/kin-42")
		r.Header.Set("X-Forwarded-Host", origHost)
	}
	relay := httptest.NewTLSServer(proxy)
	defer relay.Close()
	viaRelay := newClient(relay.URL+"/i/kin-42", noRetries, withHTTPClient(relay.Client()))
	if _, err := viaRelay.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("signed"), PartitionKey: aws.String("k"), Data: []byte("relayed")}); err != nil {
		t.Fatalf("PutRecord through the relay: %v", err)
	}
	recs := readShard(t, viaRelay, "signed", "shardId-000000000000")
	if len(recs) != 2 || string(recs[1].Data) != "relayed" {
		t.Fatalf("read through relay: %d records", len(recs))
	}

	// Verification off: any signature is accepted, even with an empty service scope.
	_, open := startServer(t, quietConfig())
	req, _ := http.NewRequest(http.MethodPost, open, strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "Kinesis_20131202.ListStreams")
	req.Header.Set("X-Amz-Date", "20200101T000000Z")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=whoever/20200101/us-east-1//aws4_request, SignedHeaders=host, Signature=00")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("unverified request: %d", resp.StatusCode)
	}
	anyCreds := newClient(open, noRetries)
	if _, err := anyCreds.ListStreams(ctx, &kinesis.ListStreamsInput{}); err != nil {
		t.Fatal(err)
	}
}
