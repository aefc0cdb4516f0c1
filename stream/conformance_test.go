package stream_test

// Conformance tests: behaviour of the Kinesis Data Streams API that clients and conformance suites can
// observe — the exact wording and order of validation errors, the limits of the API model, error types
// and messages of the service, pagination caps and protocol details. The expected strings follow the
// service's API reference and messages recorded from the service.
//
// The helpers here are prefixed cf so that they never clash with the package's shared test helpers.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/kinesis-network/portal/stream"
)

// cfStart serves a Server for cfg on a loopback listener and returns its URL.
func cfStart(t *testing.T, cfg stream.Config) string {
	t.Helper()
	cfg.DisableControlPlaneLimits = true
	srv, err := stream.NewServer(cfg)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
	})
	return hs.URL
}

// cfClient is an unmodified SDK client for url that does not retry.
func cfClient(url string) *kinesis.Client {
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")}
	return kinesis.NewFromConfig(cfg, func(o *kinesis.Options) {
		o.BaseEndpoint = aws.String(url)
		o.Retryer = aws.NopRetryer{}
	})
}

func cfCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// cfResponse is one raw HTTP exchange.
type cfResponse struct {
	status int
	header http.Header
	body   []byte
}

// errorBody decodes a JSON error body.
func (r cfResponse) errorBody(t *testing.T) map[string]string {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("error body %q: %v", r.body, err)
	}
	return m
}

// cfDo sends one raw request; an empty target sends no X-Amz-Target, an empty content type no
// Content-Type.
func cfDo(t *testing.T, method, url, target, contentType, body string, hdr ...string) cfResponse {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return cfResponse{resp.StatusCode, resp.Header, b}
}

// cfCall posts a JSON 1.1 request for operation op.
func cfCall(t *testing.T, url, op, body string) cfResponse {
	t.Helper()
	return cfDo(t, http.MethodPost, url, "Kinesis_20131202."+op, "application/x-amz-json-1.1", body)
}

// cfWantError asserts a 400 answer of error type typ whose message is exactly msg.
func cfWantError(t *testing.T, r cfResponse, typ, msg string) {
	t.Helper()
	if r.status != http.StatusBadRequest {
		t.Fatalf("status %d, want 400: %s", r.status, r.body)
	}
	e := r.errorBody(t)
	if e["__type"] != typ || e["message"] != msg {
		t.Fatalf("got %s %q\nwant %s %q", e["__type"], e["message"], typ, msg)
	}
}

// cfWantOK asserts a 200 answer.
func cfWantOK(t *testing.T, r cfResponse) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", r.status, r.body)
	}
}

// cfWantAPIError asserts an SDK error of type code with exactly message msg (any message when msg is
// empty).
func cfWantAPIError(t *testing.T, err error, code, msg string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want %s, got %v", code, err)
	}
	if ae.ErrorCode() != code || (msg != "" && ae.ErrorMessage() != msg) {
		t.Fatalf("got %s %q\nwant %s %q", ae.ErrorCode(), ae.ErrorMessage(), code, msg)
	}
}

// cfClock is a settable clock.
type cfClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *cfClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *cfClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const cfAccount = "000000000000"

func TestConformanceProtocol(t *testing.T) {
	url := cfStart(t, stream.Config{})
	uuidRe := regexp.MustCompile(`^[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}$`)

	t.Run("response headers", func(t *testing.T) {
		r := cfCall(t, url, "ListStreams", `{}`)
		cfWantOK(t, r)
		if ct := r.header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
			t.Errorf("Content-Type %q", ct)
		}
		if id := r.header.Get("x-amzn-RequestId"); !uuidRe.MatchString(id) {
			t.Errorf("x-amzn-RequestId %q", id)
		}
		id2, err := base64.StdEncoding.DecodeString(r.header.Get("x-amz-id-2"))
		if err != nil || len(id2) != 72 {
			t.Errorf("x-amz-id-2 %q: %d bytes, %v", r.header.Get("x-amz-id-2"), len(id2), err)
		}
		// Errors carry the request id too.
		r = cfCall(t, url, "DescribeStream", `{"StreamName":"none"}`)
		cfWantError(t, r, "ResourceNotFoundException", "Stream none under account "+cfAccount+" not found.")
		if !uuidRe.MatchString(r.header.Get("x-amzn-RequestId")) || r.header.Get("x-amzn-ErrorType") != "ResourceNotFoundException" {
			t.Errorf("error headers %v", r.header)
		}
	})

	t.Run("unknown operation", func(t *testing.T) {
		r := cfCall(t, url, "ListStream", `{}`)
		if r.status != 400 || string(r.body) != `{"__type":"UnknownOperationException"}` {
			t.Fatalf("%d %s", r.status, r.body)
		}
		r = cfDo(t, http.MethodPost, url, "Kinesis_20131203.ListStreams", "application/x-amz-json-1.1", `{}`)
		if r.status != 400 || string(r.body) != `{"__type":"UnknownOperationException"}` {
			t.Fatalf("other service version: %d %s", r.status, r.body)
		}
		// No target at all, JSON content: the same.
		r = cfDo(t, http.MethodPost, url, "", "application/x-amz-json-1.1", `{}`)
		if r.status != 400 || string(r.body) != `{"__type":"UnknownOperationException"}` {
			t.Fatalf("no target: %d %s", r.status, r.body)
		}
	})

	t.Run("not a JSON request", func(t *testing.T) {
		accessDenied := "<AccessDeniedException>\n  <Message>Unable to determine service/operation name to be authorized</Message>\n</AccessDeniedException>\n"
		r := cfDo(t, http.MethodPost, url, "", "", `{}`)
		if r.status != 403 || string(r.body) != accessDenied {
			t.Fatalf("no target, no content type: %d %q", r.status, r.body)
		}
		r = cfDo(t, http.MethodGet, url, "", "", "")
		if r.status != 403 || string(r.body) != accessDenied {
			t.Fatalf("GET: %d %q", r.status, r.body)
		}
		r = cfDo(t, http.MethodPost, url, "Kinesis_20131202.ListStreams", "text/plain", `{}`)
		if r.status != 404 || string(r.body) != "<UnknownOperationException/>\n" {
			t.Fatalf("wrong content type: %d %q", r.status, r.body)
		}
	})

	t.Run("serialization", func(t *testing.T) {
		for _, body := range []string{"", "hello", "null", `"x"`, `{"Limit":`} {
			r := cfCall(t, url, "ListStreams", body)
			if r.status != 400 || string(r.body) != `{"__type":"SerializationException"}` {
				t.Errorf("body %q: %d %s", body, r.status, r.body)
			}
		}
		r := cfCall(t, url, "CreateStream", `{"StreamName":"x","ShardCount":"one"}`)
		e := r.errorBody(t)
		if r.status != 400 || e["__type"] != "SerializationException" || e["Message"] != "class java.lang.String can not be converted to an Integer" {
			t.Fatalf("%d %s", r.status, r.body)
		}
		r = cfCall(t, url, "CreateStream", `{"StreamName":["x"]}`)
		if e := r.errorBody(t); e["Message"] != "Start of list found where not expected" {
			t.Fatalf("%s", r.body)
		}
		// Blobs are base64 decoded strictly, with the service's messages.
		for data, msg := range map[string]string{
			`"abc"`:  "'abc' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: 3",
			`"ab*d"`: "'ab*d' can not be converted to a Blob: Invalid Base64 character: '*'",
			`"a=bc"`: "'a=bc' can not be converted to a Blob: Invalid Base64 character: '='",
			`"AB=="`: "'AB==' can not be converted to a Blob: Invalid last non-pad Base64 character dectected",
			`12`:     "class java.math.BigDecimal can not be converted to a Blob",
			`true`:   "class java.lang.Boolean can not be converted to a Blob",
			`{}`:     "Start of structure or map found where not expected.",
		} {
			r := cfCall(t, url, "PutRecord", `{"StreamName":"x","PartitionKey":"k","Data":`+data+`}`)
			if e := r.errorBody(t); r.status != 400 || e["__type"] != "SerializationException" || e["Message"] != msg {
				t.Errorf("Data %s: %d %s", data, r.status, r.body)
			}
		}
	})

	t.Run("CORS preflight", func(t *testing.T) {
		r := cfDo(t, http.MethodOptions, url, "", "", "", "Origin", "http://example.com",
			"Access-Control-Request-Headers", "a, b", "Access-Control-Request-Method", "POST")
		if r.status != 200 || r.header.Get("Access-Control-Allow-Origin") != "*" || r.header.Get("Access-Control-Allow-Headers") != "a, b" ||
			r.header.Get("Access-Control-Max-Age") != "172800" || r.header.Get("x-amz-id-2") != "" || len(r.body) != 0 {
			t.Fatalf("%d %v %q", r.status, r.header, r.body)
		}
	})
}

func TestConformanceValidationMessages(t *testing.T) {
	url := cfStart(t, stream.Config{})
	cfWantOK(t, cfCall(t, url, "CreateStream", `{"StreamName":"v","ShardCount":2}`))
	name129 := strings.Repeat("a", 129)
	pk257 := strings.Repeat("k", 257)
	val := func(value, field, rule string) string {
		return "Value " + value + " at '" + field + "' failed to satisfy constraint: " + rule
	}
	detected := func(errs ...string) string {
		s := "s"
		if len(errs) == 1 {
			s = ""
		}
		return fmt.Sprintf("%d validation error%s detected: %s", len(errs), s, strings.Join(errs, "; "))
	}
	const (
		notNull   = "Member must not be null"
		namePat   = "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
		minLen1   = "Member must have length greater than or equal to 1"
		maxLen128 = "Member must have length less than or equal to 128"
	)
	tests := []struct {
		name, op, body string
		want           string
	}{
		{"empty stream name: pattern before length", "CreateStream", `{"StreamName":""}`,
			detected(val("''", "streamName", namePat), val("''", "streamName", minLen1))},
		{"PutRecord missing members", "PutRecord", `{"StreamName":"v"}`,
			detected(val("null", "partitionKey", notNull), val("null", "data", notNull))},
		{"PutRecord empty members", "PutRecord",
			`{"StreamName":"","PartitionKey":"","Data":"","ExplicitHashKey":"","SequenceNumberForOrdering":""}`,
			detected(
				val("''", "sequenceNumberForOrdering", `Member must satisfy regular expression pattern: 0|([1-9]\d{0,128})`),
				val("''", "partitionKey", minLen1),
				val("''", "explicitHashKey", `Member must satisfy regular expression pattern: 0|([1-9]\d{0,38})`),
				val("''", "streamName", namePat),
				val("''", "streamName", minLen1))},
		{"PutRecord long members", "PutRecord",
			`{"StreamName":"` + name129 + `","PartitionKey":"` + pk257 + `","Data":"","ExplicitHashKey":""}`,
			detected(
				val("'"+pk257+"'", "partitionKey", "Member must have length less than or equal to 256"),
				val("''", "explicitHashKey", `Member must satisfy regular expression pattern: 0|([1-9]\d{0,38})`),
				val("'"+name129+"'", "streamName", maxLen128))},
		{"PutRecords empty", "PutRecords", `{"StreamName":"","Records":[]}`,
			detected(val("'[]'", "records", minLen1), val("''", "streamName", namePat), val("''", "streamName", minLen1))},
		{"GetShardIterator missing members", "GetShardIterator", `{"StreamName":"v"}`,
			detected(val("null", "shardId", notNull), val("null", "shardIteratorType", notNull))},
		{"GetShardIterator long members", "GetShardIterator",
			`{"StreamName":"` + name129 + `","ShardId":"` + name129 + `","ShardIteratorType":"LATEST"}`,
			detected(val("'"+name129+"'", "shardId", maxLen128), val("'"+name129+"'", "streamName", maxLen128))},
		{"GetRecords empty iterator", "GetRecords", `{"ShardIterator":"","Limit":0}`,
			detected(val("'0'", "limit", "Member must have value greater than or equal to 1"), val("''", "shardIterator", minLen1))},
		{"GetRecords long iterator", "GetRecords", `{"ShardIterator":"` + strings.Repeat("a", 513) + `","Limit":100000}`,
			detected(val("'100000'", "limit", "Member must have value less than or equal to 10000"),
				val("'"+strings.Repeat("a", 513)+"'", "shardIterator", "Member must have length less than or equal to 512"))},
		{"DescribeStream", "DescribeStream", `{"StreamName":"","Limit":0,"ExclusiveStartShardId":""}`,
			detected(val("'0'", "limit", "Member must have value greater than or equal to 1"),
				val("''", "exclusiveStartShardId", namePat), val("''", "exclusiveStartShardId", minLen1),
				val("''", "streamName", namePat), val("''", "streamName", minLen1))},
		{"ListShards", "ListShards", `{"StreamName":"` + name129 + `","MaxResults":100000,"ExclusiveStartShardId":"` + name129 + `"}`,
			detected(val("'100000'", "maxResults", "Member must have value less than or equal to 10000"),
				val("'"+name129+"'", "exclusiveStartShardId", maxLen128), val("'"+name129+"'", "streamName", maxLen128))},
		{"AddTagsToStream empty", "AddTagsToStream", `{"StreamName":"","Tags":{}}`,
			detected(val("'{}'", "tags", minLen1), val("''", "streamName", namePat), val("''", "streamName", minLen1))},
		{"AddTagsToStream missing tags", "AddTagsToStream", `{"StreamName":"v"}`, detected(val("null", "tags", notNull))},
		{"tag map rendered like the service", "AddTagsToStream", `{"StreamName":"v","Tags":{"b":"2","` + name129 + `":"1"}}`,
			detected(val("'{"+name129+"=1, b=2}'", "tags",
				"Map keys must satisfy constraint: [Member must have length less than or equal to 128, Member must have length greater than or equal to 1]"))},
		{"tag value too long", "TagResource", `{"ResourceARN":"arn:aws:kinesis:us-east-1:` + cfAccount + `:stream/v","Tags":{"a":"` + strings.Repeat("v", 257) + `"}}`,
			detected(val("'{a="+strings.Repeat("v", 257)+"}'", "tags",
				"Map value must satisfy constraint: [Member must have length less than or equal to 256, Member must have length greater than or equal to 0]"))},
		{"RemoveTagsFromStream empty list", "RemoveTagsFromStream", `{"StreamName":"v","TagKeys":[]}`,
			detected(val("'[]'", "tagKeys", minLen1))},
		{"UntagResource key too long", "UntagResource", `{"ResourceARN":"arn:aws:kinesis:us-east-1:` + cfAccount + `:stream/v","TagKeys":["a","` + name129 + `"]}`,
			detected(val("'[a, "+name129+"]'", "tagKeys",
				"Member must satisfy constraint: [Member must have length less than or equal to 128, Member must have length greater than or equal to 1]"))},
		{"UntagResource missing keys", "UntagResource", `{"ResourceARN":"arn:aws:kinesis:us-east-1:` + cfAccount + `:stream/v"}`,
			detected(val("null", "tagKeys", notNull))},
		{"resource ARN pattern", "ListTagsForResource", `{"ResourceARN":"v"}`,
			detected(val("'v'", "resourceARN", `Member must satisfy regular expression pattern: arn:aws.*:kinesis:.*:\d{12}:.*stream/\S+`))},
		{"stream id pattern", "DescribeStreamSummary", `{"StreamId":"abc"}`,
			detected(val("'abc'", "streamId", `Member must satisfy regular expression pattern: [a-z0-9]{20}-[a-z0-9]{3}`))},
		{"shard level metrics", "EnableEnhancedMonitoring", `{"StreamName":"v","ShardLevelMetrics":[]}`,
			detected(val("'[]'", "shardLevelMetrics", minLen1))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfWantError(t, cfCall(t, url, tc.op, tc.body), "ValidationException", tc.want)
		})
	}

	// Members the API model leaves unbounded are not validation errors: the service's own rules answer.
	t.Run("model bounds", func(t *testing.T) {
		cfWantError(t, cfCall(t, url, "CreateStream", `{"StreamName":"big","ShardCount":100001}`), "LimitExceededException",
			"This request would exceed the shard limit for the account "+cfAccount+" in us-east-1. Current shard count for the account: 2. Limit: 500. Number of additional shards that would have resulted from this request: 100001. Refer to the AWS Service Limits page (https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html) for current limits and how to request higher limits.")
		cfWantError(t, cfCall(t, url, "IncreaseStreamRetentionPeriod", `{"StreamName":"v","RetentionPeriodHours":0}`), "InvalidArgumentException",
			"Minimum allowed retention period is 24 hours. Requested retention period (0 hours) is too short.")
		// The stream is looked up before the period is checked.
		cfWantError(t, cfCall(t, url, "DecreaseStreamRetentionPeriod", `{"StreamName":"none","RetentionPeriodHours":1}`), "ResourceNotFoundException",
			"Stream none under account "+cfAccount+" not found.")
		r := cfCall(t, url, "UpdateShardCount", `{"StreamName":"v","TargetShardCount":100001,"ScalingType":"UNIFORM_SCALING"}`)
		if e := r.errorBody(t); e["__type"] != "InvalidArgumentException" {
			t.Fatalf("UpdateShardCount 100001: %s", r.body)
		}
	})
}

func TestConformanceShardIDs(t *testing.T) {
	url := cfStart(t, stream.Config{DisableThrottling: true})
	cfWantOK(t, cfCall(t, url, "CreateStream", `{"StreamName":"v","ShardCount":2}`))
	gsi := func(stream, shard string) cfResponse {
		return cfCall(t, url, "GetShardIterator", `{"StreamName":"`+stream+`","ShardId":"`+shard+`","ShardIteratorType":"LATEST"}`)
	}
	// The part after the first hyphen names the shard, whatever precedes it.
	for _, id := range []string{"shardId-000000000001", "shardId-1", "1", "shard-1", "anything-0001", "-1"} {
		cfWantOK(t, gsi("v", id))
	}
	missing := func(stream, norm string) string {
		return "Shard " + norm + " in stream " + stream + " under account " + cfAccount + " does not exist"
	}
	couldNot := func(stream, id string) string {
		return "Could not find shard " + id + " in stream " + stream + " under account " + cfAccount + "."
	}
	cfWantError(t, gsi("v", "shardId-5"), "ResourceNotFoundException", missing("v", "shardId-000000000005"))
	cfWantError(t, gsi("v", "a-00002147483647"), "ResourceNotFoundException", missing("v", "shardId-002147483647"))
	// An unknown stream is reported as a missing shard.
	cfWantError(t, gsi("none", "2147483647"), "ResourceNotFoundException", missing("none", "shardId-002147483647"))
	// Ids that do not parse (or exceed 2^31-1) are "could not find", before the stream is looked up.
	for _, id := range []string{"2147483648", "shardId-002147483648", "ABKLFD8", "2.14E4", "a-b-1"} {
		cfWantError(t, gsi("none", id), "ResourceNotFoundException", couldNot("none", id))
		cfWantError(t, gsi("v", id), "ResourceNotFoundException", couldNot("v", id))
	}
	// SplitShard and MergeShards name the normalised id.
	cfWantError(t, cfCall(t, url, "SplitShard", `{"StreamName":"v","ShardToSplit":"shard-7","NewStartingHashKey":"5"}`),
		"ResourceNotFoundException", couldNot("v", "shardId-000000000007"))
}

func TestConformancePutRecordRules(t *testing.T) {
	clk := &cfClock{t: time.Now()}
	url := cfStart(t, stream.Config{Now: clk.now})
	c := cfClient(url)
	ctx := cfCtx(t)
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("v"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	first, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("v"), PartitionKey: aws.String("k"), Data: []byte("1")})
	if err != nil {
		t.Fatal(err)
	}
	// SequenceNumberForOrdering: the previous record's number is accepted and the new one is greater.
	second, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("v"), PartitionKey: aws.String("k"), Data: []byte("2"),
		SequenceNumberForOrdering: first.SequenceNumber})
	if err != nil {
		t.Fatal(err)
	}
	if len(*second.SequenceNumber) != 56 || *second.SequenceNumber <= *first.SequenceNumber {
		t.Fatalf("sequence numbers %s then %s", *first.SequenceNumber, *second.SequenceNumber)
	}
	invalid := func(seq string) string {
		return "ExclusiveMinimumSequenceNumber " + seq + " used in PutRecord on stream v under account " + cfAccount + " is invalid."
	}
	future := fmt.Sprintf("%d", clk.now().Unix()+3600)
	for _, seq := range []string{
		"12345678901234567890123456789012345678901234567890123456789012345678901234567890", // no layout
		"49" + strings.Repeat("0", 54),                                                                    // 56 digits, no layout
		hexToDec(t, "2"+strings.Repeat("0", 46)),                                                          // exactly 2^185
		hexToDec(t, "20000000000800000000000000000000000000000000002"),                                    // sequence index out of range
		hexToDec(t, "20000000000000000000000000000000000000800000002"),                                    // shard index out of range
		hexToDec(t, "20000000000000000000000000000"+fmt.Sprintf("%09x", mustAtoi(t, future))+"000000002"), // in the future
	} {
		_, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("v"), PartitionKey: aws.String("k"), Data: []byte("x"),
			SequenceNumberForOrdering: aws.String(seq)})
		cfWantAPIError(t, err, "InvalidArgumentException", invalid(seq))
	}
	// Other layouts of the service are accepted.
	for _, seq := range []string{"0", hexToDec(t, "20000000000000000000000000000000000000000000002"), hexToDec(t, "20000000000000000000000000000000000000000000001")} {
		if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("v"), PartitionKey: aws.String("k"), Data: []byte("x"),
			SequenceNumberForOrdering: aws.String(seq)}); err != nil {
			t.Fatalf("SequenceNumberForOrdering %s: %v", seq, err)
		}
	}
	// The stream is looked up before the hash key is checked.
	_, err = c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("none"), PartitionKey: aws.String("k"), Data: []byte("x"),
		ExplicitHashKey: aws.String("340282366920938463463374607431768211456")})
	cfWantAPIError(t, err, "ResourceNotFoundException", "Stream none under account "+cfAccount+" not found.")
	_, err = c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("none"), Records: []types.PutRecordsRequestEntry{
		{PartitionKey: aws.String("k"), Data: []byte("x"), ExplicitHashKey: aws.String("340282366920938463463374607431768211456")}}})
	cfWantAPIError(t, err, "ResourceNotFoundException", "Stream none under account "+cfAccount+" not found.")
}

func hexToDec(t *testing.T, h string) string {
	t.Helper()
	n, ok := new(big.Int).SetString(h, 16)
	if !ok {
		t.Fatalf("bad hex %s", h)
	}
	return n.String()
}

func mustAtoi(t *testing.T, s string) int64 {
	t.Helper()
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestConformanceTags(t *testing.T) {
	url := cfStart(t, stream.Config{})
	c := cfClient(url)
	ctx := cfCtx(t)
	tags := func(prefix string, n int) map[string]string {
		m := map[string]string{}
		for i := range n {
			m[fmt.Sprintf("%s%02d", prefix, i)] = "v"
		}
		return m
	}
	// More than 10 tags in one call are fine: the limit is 50 per stream.
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("t"), ShardCount: aws.Int32(1), Tags: tags("c", 12)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddTagsToStream(ctx, &kinesis.AddTagsToStreamInput{StreamName: aws.String("t"), Tags: tags("a", 38)}); err != nil {
		t.Fatal(err)
	}
	tooMany := "Failed to add tags to stream t under account " + cfAccount + " because a given stream cannot have more than 50 tags associated with it."
	_, err := c.AddTagsToStream(ctx, &kinesis.AddTagsToStreamInput{StreamName: aws.String("t"), Tags: map[string]string{"z": ""}})
	cfWantAPIError(t, err, "InvalidArgumentException", tooMany)
	// Overwriting existing keys does not count.
	if _, err := c.AddTagsToStream(ctx, &kinesis.AddTagsToStreamInput{StreamName: aws.String("t"), Tags: map[string]string{"a00": "w"}}); err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("t2"), ShardCount: aws.Int32(1), Tags: tags("c", 51)})
	cfWantAPIError(t, err, "InvalidArgumentException",
		"Failed to add tags to stream t2 under account "+cfAccount+" because a given stream cannot have more than 50 tags associated with it.")
	// A TagMap holds up to 200 entries before validation fails.
	r := cfCall(t, url, "AddTagsToStream", `{"StreamName":"t","Tags":`+mustJSON(t, tags("m", 201))+`}`)
	if e := r.errorBody(t); e["__type"] != "ValidationException" || !strings.HasSuffix(e["message"], "at 'tags' failed to satisfy constraint: Member must have length less than or equal to 200") {
		t.Fatalf("201 tags: %s", r.body)
	}
	// Allowed characters: letters, digits, white space and _ . / = + - % @ :.
	badChars := "Some tags contain invalid characters. Valid characters: Unicode letters, digits, white space, _ . / = + - % @ :."
	_, err = c.AddTagsToStream(ctx, &kinesis.AddTagsToStreamInput{StreamName: aws.String("t"), Tags: map[string]string{"a*b": "x"}})
	cfWantAPIError(t, err, "InvalidArgumentException", badChars)
	_, err = c.AddTagsToStream(ctx, &kinesis.AddTagsToStreamInput{StreamName: aws.String("t"), Tags: map[string]string{"a": "x#"}})
	cfWantAPIError(t, err, "InvalidArgumentException", badChars)
	_, err = c.RemoveTagsFromStream(ctx, &kinesis.RemoveTagsFromStreamInput{StreamName: aws.String("t"), TagKeys: []string{"a!"}})
	cfWantAPIError(t, err, "InvalidArgumentException", badChars)
	if _, err := c.AddTagsToStream(ctx, &kinesis.AddTagsToStreamInput{StreamName: aws.String("t"), Tags: map[string]string{"a00": "ü é/=+-%@:. _"}}); err != nil {
		t.Fatalf("allowed characters: %v", err)
	}
	// ListTagsForStream pages with ExclusiveStartTagKey and HasMoreTags.
	lt, err := c.ListTagsForStream(ctx, &kinesis.ListTagsForStreamInput{StreamName: aws.String("t"), Limit: aws.Int32(3), ExclusiveStartTagKey: aws.String("a36")})
	if err != nil {
		t.Fatal(err)
	}
	if len(lt.Tags) != 3 || *lt.Tags[0].Key != "a37" || *lt.Tags[1].Key != "c00" || !*lt.HasMoreTags {
		t.Fatalf("ListTagsForStream: %d tags, first %s, more %v", len(lt.Tags), *lt.Tags[0].Key, *lt.HasMoreTags)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestConformancePagination(t *testing.T) {
	url := cfStart(t, stream.Config{DisableThrottling: true})
	c := cfClient(url)
	ctx := cfCtx(t)
	for i := range 101 {
		if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(fmt.Sprintf("s%03d", i)), ShardCount: aws.Int32(1)}); err != nil {
			t.Fatal(err)
		}
	}
	// ListStreams returns at most 100 names, whatever the Limit.
	ls, err := c.ListStreams(ctx, &kinesis.ListStreamsInput{Limit: aws.Int32(1000)})
	if err != nil {
		t.Fatal(err)
	}
	if len(ls.StreamNames) != 100 || len(ls.StreamSummaries) != 100 || !*ls.HasMoreStreams || ls.NextToken == nil {
		t.Fatalf("ListStreams: %d names, more %v", len(ls.StreamNames), *ls.HasMoreStreams)
	}
	ls, err = c.ListStreams(ctx, &kinesis.ListStreamsInput{NextToken: ls.NextToken})
	if err != nil {
		t.Fatal(err)
	}
	if len(ls.StreamNames) != 1 || ls.StreamNames[0] != "s100" || *ls.HasMoreStreams || ls.NextToken != nil {
		t.Fatalf("ListStreams page 2: %v more %v", ls.StreamNames, *ls.HasMoreStreams)
	}
	ls, err = c.ListStreams(ctx, &kinesis.ListStreamsInput{ExclusiveStartStreamName: aws.String("s098"), Limit: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	if len(ls.StreamNames) != 1 || ls.StreamNames[0] != "s099" || !*ls.HasMoreStreams {
		t.Fatalf("ListStreams after s098: %v", ls.StreamNames)
	}

	// DescribeStream returns at most 100 shards, whatever the Limit.
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("wide"), ShardCount: aws.Int32(130)}); err != nil {
		t.Fatal(err)
	}
	ds, err := c.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("wide"), Limit: aws.Int32(10000)})
	if err != nil {
		t.Fatal(err)
	}
	d := ds.StreamDescription
	if len(d.Shards) != 100 || !*d.HasMoreShards {
		t.Fatalf("DescribeStream: %d shards, more %v", len(d.Shards), *d.HasMoreShards)
	}
	ds, err = c.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("wide"), ExclusiveStartShardId: d.Shards[99].ShardId})
	if err != nil {
		t.Fatal(err)
	}
	if d := ds.StreamDescription; len(d.Shards) != 30 || *d.HasMoreShards || *d.Shards[0].ShardId != "shardId-000000000100" {
		t.Fatalf("DescribeStream page 2: %d shards", len(d.Shards))
	}

	// ListShards: NextToken excludes StreamName and StreamCreationTimestamp.
	lsh, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("wide"), MaxResults: aws.Int32(100)})
	if err != nil {
		t.Fatal(err)
	}
	if len(lsh.Shards) != 100 || lsh.NextToken == nil {
		t.Fatalf("ListShards: %d shards", len(lsh.Shards))
	}
	_, err = c.ListShards(ctx, &kinesis.ListShardsInput{NextToken: lsh.NextToken, StreamName: aws.String("wide")})
	cfWantAPIError(t, err, "InvalidArgumentException", "NextToken and StreamName cannot be provided together.")
	_, err = c.ListShards(ctx, &kinesis.ListShardsInput{NextToken: lsh.NextToken, StreamARN: aws.String("arn:aws:kinesis:us-east-1:" + cfAccount + ":stream/wide")})
	cfWantAPIError(t, err, "InvalidArgumentException", "NextToken and StreamARN cannot be provided together.")
	_, err = c.ListShards(ctx, &kinesis.ListShardsInput{NextToken: lsh.NextToken, StreamCreationTimestamp: aws.Time(time.Now())})
	cfWantAPIError(t, err, "InvalidArgumentException", "NextToken and StreamCreationTimestamp cannot be provided together.")
	_, err = c.ListShards(ctx, &kinesis.ListShardsInput{})
	cfWantAPIError(t, err, "InvalidArgumentException", "Either NextToken or StreamName should be provided.")
	rest, err := c.ListShards(ctx, &kinesis.ListShardsInput{NextToken: lsh.NextToken})
	if err != nil {
		t.Fatal(err)
	}
	if len(rest.Shards) != 30 || rest.NextToken != nil {
		t.Fatalf("ListShards page 2: %d shards", len(rest.Shards))
	}
}

func TestConformanceShardFilters(t *testing.T) {
	clk := &cfClock{t: time.Now().Truncate(time.Second)}
	url := cfStart(t, stream.Config{Now: clk.now, DisableThrottling: true})
	c := cfClient(url)
	ctx := cfCtx(t)
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("f"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	created := clk.now()
	clk.advance(time.Minute)
	splitAt := clk.now()
	if _, err := c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("f"), ShardToSplit: aws.String("shardId-000000000000"),
		NewStartingHashKey: aws.String("170141183460469231731687303715884105728")}); err != nil {
		t.Fatal(err)
	}
	clk.advance(time.Minute)
	ids := func(f *types.ShardFilter) string {
		t.Helper()
		out, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("f"), ShardFilter: f})
		if err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, sh := range out.Shards {
			s = append(s, strings.TrimPrefix(*sh.ShardId, "shardId-00000000000"))
		}
		return strings.Join(s, ",")
	}
	tests := []struct {
		filter types.ShardFilter
		want   string
	}{
		{types.ShardFilter{Type: types.ShardFilterTypeAtLatest}, "1,2"},
		{types.ShardFilter{Type: types.ShardFilterTypeAtTrimHorizon}, "0"},
		{types.ShardFilter{Type: types.ShardFilterTypeFromTrimHorizon}, "0,1,2"},
		{types.ShardFilter{Type: types.ShardFilterTypeAfterShardId, ShardId: aws.String("shardId-000000000000")}, "1,2"},
		{types.ShardFilter{Type: types.ShardFilterTypeAtTimestamp, Timestamp: aws.Time(created.Add(time.Second))}, "0"},
		// A shard that ended exactly at the timestamp is still included, as are those that started then.
		{types.ShardFilter{Type: types.ShardFilterTypeAtTimestamp, Timestamp: aws.Time(splitAt)}, "0,1,2"},
		{types.ShardFilter{Type: types.ShardFilterTypeAtTimestamp, Timestamp: aws.Time(clk.now())}, "1,2"},
		{types.ShardFilter{Type: types.ShardFilterTypeFromTimestamp, Timestamp: aws.Time(created)}, "0,1,2"},
		{types.ShardFilter{Type: types.ShardFilterTypeFromTimestamp, Timestamp: aws.Time(clk.now())}, "1,2"},
	}
	for _, tc := range tests {
		if got := ids(&tc.filter); got != tc.want {
			t.Errorf("%s %v: shards %s, want %s", tc.filter.Type, tc.filter.Timestamp, got, tc.want)
		}
	}
	// FROM_TIMESTAMP before the trim horizon is corrected to it: after the retention period, a parent
	// that closed before the horizon is no longer listed.
	clk.advance(24*time.Hour + time.Minute)
	if got := ids(&types.ShardFilter{Type: types.ShardFilterTypeFromTimestamp, Timestamp: aws.Time(created)}); strings.Contains(got, "0,") {
		t.Errorf("FROM_TIMESTAMP before the trim horizon: shards %s", got)
	}
}

func TestConformanceStreamIDAndConsumers(t *testing.T) {
	url := cfStart(t, stream.Config{ConsumerDelay: time.Hour})
	c := cfClient(url)
	ctx := cfCtx(t)
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("e"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	s, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("e")})
	if err != nil {
		t.Fatal(err)
	}
	sum := s.StreamDescriptionSummary
	if sum.StreamId == nil || !regexp.MustCompile(`^[a-z0-9]{20}-[a-z0-9]{3}$`).MatchString(*sum.StreamId) {
		t.Fatalf("StreamId %v does not follow the service's format", sum.StreamId)
	}
	if sum.EncryptionType != types.EncryptionTypeNone || sum.KeyId != nil || len(sum.EnhancedMonitoring) != 1 ||
		sum.EnhancedMonitoring[0].ShardLevelMetrics == nil || *sum.OpenShardCount != 1 || *sum.ConsumerCount != 0 ||
		sum.StreamModeDetails == nil || sum.StreamModeDetails.StreamMode != types.StreamModeProvisioned {
		t.Fatalf("DescribeStreamSummary: %+v", sum)
	}
	// (Raw: given a StreamId, the SDK routes to an account endpoint of its own.)
	r := cfCall(t, url, "DescribeStreamSummary", `{"StreamId":"`+*sum.StreamId+`"}`)
	cfWantOK(t, r)
	if !strings.Contains(string(r.body), `"StreamName":"e"`) {
		t.Fatalf("by StreamId: %s", r.body)
	}

	// At most five consumers may be CREATING at once.
	var arns []string
	for i := range 5 {
		out, err := c.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: sum.StreamARN, ConsumerName: aws.String(fmt.Sprintf("c%d", i))})
		if err != nil {
			t.Fatal(err)
		}
		if out.Consumer.ConsumerStatus != types.ConsumerStatusCreating {
			t.Fatalf("status %s", out.Consumer.ConsumerStatus)
		}
		arns = append(arns, *out.Consumer.ConsumerARN)
	}
	if !regexp.MustCompile(`^arn:aws:kinesis:us-east-1:` + cfAccount + `:stream/e/consumer/c0:[0-9]{10}$`).MatchString(arns[0]) {
		t.Fatalf("consumer ARN %s", arns[0])
	}
	_, err = c.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: sum.StreamARN, ConsumerName: aws.String("c5")})
	cfWantAPIError(t, err, "LimitExceededException", "")

	// DescribeStreamConsumer by ARN, by stream ARN and name, or by all three when they agree.
	for _, in := range []*kinesis.DescribeStreamConsumerInput{
		{ConsumerARN: aws.String(arns[1])},
		{StreamARN: sum.StreamARN, ConsumerName: aws.String("c1")},
		{ConsumerARN: aws.String(arns[1]), StreamARN: sum.StreamARN, ConsumerName: aws.String("c1")},
	} {
		d, err := c.DescribeStreamConsumer(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if *d.ConsumerDescription.ConsumerARN != arns[1] || *d.ConsumerDescription.StreamARN != *sum.StreamARN {
			t.Fatalf("DescribeStreamConsumer: %+v", d.ConsumerDescription)
		}
	}
	_, err = c.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(arns[1]), ConsumerName: aws.String("c2")})
	cfWantAPIError(t, err, "InvalidArgumentException", "")
	_, err = c.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerName: aws.String("c2")})
	cfWantAPIError(t, err, "InvalidArgumentException", "")

	// ListStreamConsumers: NextToken excludes StreamCreationTimestamp; another creation time is another stream.
	lc, err := c.ListStreamConsumers(ctx, &kinesis.ListStreamConsumersInput{StreamARN: sum.StreamARN, MaxResults: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	if len(lc.Consumers) != 2 || lc.NextToken == nil {
		t.Fatalf("ListStreamConsumers: %+v", lc)
	}
	_, err = c.ListStreamConsumers(ctx, &kinesis.ListStreamConsumersInput{StreamARN: sum.StreamARN, NextToken: lc.NextToken,
		StreamCreationTimestamp: sum.StreamCreationTimestamp})
	cfWantAPIError(t, err, "InvalidArgumentException", "")
	_, err = c.ListStreamConsumers(ctx, &kinesis.ListStreamConsumersInput{StreamARN: sum.StreamARN,
		StreamCreationTimestamp: aws.Time(sum.StreamCreationTimestamp.Add(-time.Hour))})
	cfWantAPIError(t, err, "ResourceNotFoundException", "Stream e under account "+cfAccount+" not found.")
}

func TestConformanceControlPlaneRate(t *testing.T) {
	clk := &cfClock{t: time.Now()}
	srv, err := stream.NewServer(stream.Config{Now: clk.now,
		Limits: stream.Limits{ControlPlaneTPS: map[string]float64{"DescribeStream": 1, "ListShards": 1, "ListStreams": 1, "CreateStream": 100}}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { hs.Close(); srv.Close() })
	for _, name := range []string{"a", "b"} {
		cfWantOK(t, cfCall(t, hs.URL, "CreateStream", `{"StreamName":"`+name+`","ShardCount":1}`))
	}
	// Per account: the second DescribeStream within the second is refused, naming the stream.
	cfWantOK(t, cfCall(t, hs.URL, "DescribeStream", `{"StreamName":"a"}`))
	cfWantError(t, cfCall(t, hs.URL, "DescribeStream", `{"StreamName":"b"}`), "LimitExceededException",
		"Rate exceeded for stream b under account "+cfAccount+".")
	cfWantOK(t, cfCall(t, hs.URL, "ListStreams", `{}`))
	cfWantError(t, cfCall(t, hs.URL, "ListStreams", `{}`), "LimitExceededException", "Rate exceeded")
	// ListShards is limited per stream.
	cfWantOK(t, cfCall(t, hs.URL, "ListShards", `{"StreamName":"a"}`))
	cfWantOK(t, cfCall(t, hs.URL, "ListShards", `{"StreamARN":"arn:aws:kinesis:us-east-1:`+cfAccount+`:stream/b"}`))
	cfWantError(t, cfCall(t, hs.URL, "ListShards", `{"StreamName":"a"}`), "LimitExceededException",
		"Rate exceeded for stream a under account "+cfAccount+".")
	clk.advance(time.Second)
	cfWantOK(t, cfCall(t, hs.URL, "DescribeStream", `{"StreamName":"b"}`))
}

func TestConformanceClosedShardEnd(t *testing.T) {
	url := cfStart(t, stream.Config{DisableThrottling: true})
	cfWantOK(t, cfCall(t, url, "CreateStream", `{"StreamName":"c","ShardCount":1}`))
	cfWantOK(t, cfCall(t, url, "PutRecord", `{"StreamName":"c","PartitionKey":"k","Data":"AA=="}`))
	cfWantOK(t, cfCall(t, url, "SplitShard", `{"StreamName":"c","ShardToSplit":"shardId-000000000000","NewStartingHashKey":"170141183460469231731687303715884105728"}`))
	r := cfCall(t, url, "GetShardIterator", `{"StreamName":"c","ShardId":"shardId-000000000000","ShardIteratorType":"TRIM_HORIZON"}`)
	cfWantOK(t, r)
	var it struct{ ShardIterator string }
	json.Unmarshal(r.body, &it)
	r = cfCall(t, url, "GetRecords", `{"ShardIterator":"`+it.ShardIterator+`"}`)
	cfWantOK(t, r)
	var out map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatal(err)
	}
	// The last response of a closed shard has no NextShardIterator at all, and names the children.
	if _, ok := out["NextShardIterator"]; ok {
		t.Errorf("NextShardIterator present at the end of a closed shard: %s", r.body)
	}
	var children []struct {
		ShardId      string
		ParentShards []string
	}
	if err := json.Unmarshal(out["ChildShards"], &children); err != nil || len(children) != 2 ||
		children[0].ShardId != "shardId-000000000001" || children[1].ParentShards[0] != "shardId-000000000000" {
		t.Errorf("ChildShards: %s", out["ChildShards"])
	}
	if !strings.Contains(string(out["Records"]), `"PartitionKey":"k"`) {
		t.Errorf("Records: %s", out["Records"])
	}
}
