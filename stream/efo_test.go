package stream_test

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinesis-network/portal/stream"
)

// registerConsumer registers a consumer and returns its ARN.
func registerConsumer(t *testing.T, c *kinesis.Client, streamName, name string) string {
	t.Helper()
	ctx := ctxT(t)
	d, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(streamName)})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: d.StreamDescriptionSummary.StreamARN,
		ConsumerName: aws.String(name)})
	if err != nil {
		t.Fatalf("RegisterStreamConsumer: %v", err)
	}
	return *out.Consumer.ConsumerARN
}

// subscribeAndCollect subscribes and collects events until the stream ends or want records arrived.
// Each subscription uses its own client: the SDK's event stream codec is shared by all streams of a
// client and is not safe for two readers at once (smithy-go internal/eventstream.Codec).
func subscribeAndCollect(t *testing.T, newC func() *kinesis.Client, consumerARN, shardID string, pos *types.StartingPosition, onStart func(), want int) ([]types.Record, []types.SubscribeToShardEvent) {
	t.Helper()
	ctx := ctxT(t)
	out, err := newC().SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(consumerARN), ShardId: aws.String(shardID),
		StartingPosition: pos})
	if err != nil {
		t.Fatalf("SubscribeToShard: %v", err)
	}
	es := out.GetStream()
	defer es.Close()
	if onStart != nil {
		go onStart()
	}
	var recs []types.Record
	var events []types.SubscribeToShardEvent
	for ev := range es.Events() {
		e, ok := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent)
		if !ok {
			t.Fatalf("unexpected event %T", ev)
		}
		events = append(events, e.Value)
		recs = append(recs, e.Value.Records...)
		if want > 0 && len(recs) >= want {
			break
		}
	}
	if err := es.Err(); err != nil {
		t.Fatalf("event stream: %v", err)
	}
	return recs, events
}

func TestEnhancedFanOutH2C(t *testing.T) {
	cfg := quietConfig()
	cfg.SubscribeCooldown = -1
	cfg.SubscriptionHeartbeat = 100 * time.Millisecond
	_, url := startServer(t, cfg)
	hc := h2cClient()
	newC := func() *kinesis.Client { return newClient(url, withHTTPClient(hc)) }
	c := newC()
	ctx := ctxT(t)
	createStream(t, c, "fan", 1)
	arn := registerConsumer(t, c, "fan", "app-1")

	d, err := c.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(arn)})
	if err != nil || d.ConsumerDescription.ConsumerStatus != types.ConsumerStatusActive || *d.ConsumerDescription.ConsumerName != "app-1" {
		t.Fatalf("DescribeStreamConsumer: %v %+v", err, d)
	}
	if ok, _ := regexp.MatchString(`^arn:aws:kinesis:us-east-1:000000000000:stream/fan/consumer/app-1:[0-9]+$`, arn); !ok {
		t.Fatalf("consumer ARN %s", arn)
	}

	// Records written after the subscription starts are pushed.
	put := func() {
		for i := range 20 {
			if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("fan"), PartitionKey: aws.String("k"),
				Data: []byte(fmt.Sprintf("pushed-%d", i))}); err != nil {
				t.Errorf("PutRecord: %v", err)
			}
		}
	}
	recs, events := subscribeAndCollect(t, newC, arn, "shardId-000000000000", &types.StartingPosition{Type: types.ShardIteratorTypeLatest}, put, 20)
	for i, r := range recs {
		if string(r.Data) != fmt.Sprintf("pushed-%d", i) {
			t.Fatalf("record %d: %s", i, r.Data)
		}
	}
	last := events[len(events)-1]
	if *last.ContinuationSequenceNumber != *recs[19].SequenceNumber {
		t.Fatalf("continuation %s, last record %s", *last.ContinuationSequenceNumber, *recs[19].SequenceNumber)
	}

	// Resume after the continuation number, from TRIM_HORIZON, and AT_TIMESTAMP.
	if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("fan"), PartitionKey: aws.String("k"), Data: []byte("later")}); err != nil {
		t.Fatal(err)
	}
	r2, _ := subscribeAndCollect(t, newC, arn, "shardId-000000000000", &types.StartingPosition{Type: types.ShardIteratorTypeAfterSequenceNumber,
		SequenceNumber: last.ContinuationSequenceNumber}, nil, 1)
	if string(r2[0].Data) != "later" {
		t.Fatalf("resumed at %s", r2[0].Data)
	}
	r3, _ := subscribeAndCollect(t, newC, arn, "shardId-000000000000", &types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon}, nil, 21)
	if len(r3) != 21 || string(r3[0].Data) != "pushed-0" {
		t.Fatalf("TRIM_HORIZON: %d records", len(r3))
	}
	// The same over HTTP/1.1 (chunked event stream).
	h1 := func() *kinesis.Client { return newClient(url) }
	r5, _ := subscribeAndCollect(t, h1, arn, "shardId-000000000000", &types.StartingPosition{Type: types.ShardIteratorTypeAtTimestamp,
		Timestamp: aws.Time(time.Now().Add(-time.Minute))}, nil, 21)
	if len(r5) != 21 || string(r5[20].Data) != "later" {
		t.Fatalf("HTTP/1.1 AT_TIMESTAMP: %d records", len(r5))
	}

	// At the end of a closed shard the last event carries ChildShards and the stream ends.
	if _, err := c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("fan"), ShardToSplit: aws.String("shardId-000000000000"),
		NewStartingHashKey: aws.String("170141183460469231731687303715884105728")}); err != nil {
		t.Fatal(err)
	}
	r4, ev4 := subscribeAndCollect(t, newC, arn, "shardId-000000000000", &types.StartingPosition{Type: types.ShardIteratorTypeAtSequenceNumber,
		SequenceNumber: recs[10].SequenceNumber}, nil, 0)
	if len(r4) != 11 {
		t.Fatalf("closed shard from record 10: %d records", len(r4))
	}
	end := ev4[len(ev4)-1]
	if len(end.ChildShards) != 2 || end.ContinuationSequenceNumber != nil || *end.ChildShards[1].ShardId != "shardId-000000000002" {
		t.Fatalf("final event: %+v", end)
	}

	ls, err := c.ListStreamConsumers(ctx, &kinesis.ListStreamConsumersInput{StreamARN: aws.String("arn:aws:kinesis:us-east-1:000000000000:stream/fan")})
	if err != nil || len(ls.Consumers) != 1 {
		t.Fatalf("ListStreamConsumers: %v %+v", err, ls)
	}
	_, err = c.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String("arn:aws:kinesis:us-east-1:000000000000:stream/fan"),
		ConsumerName: aws.String("app-1")})
	wantAPIError(t, err, "ResourceInUseException", "already exists")
	_, err = c.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("fan")})
	wantAPIError(t, err, "ResourceInUseException", "")
	if _, err := c.DeregisterStreamConsumer(ctx, &kinesis.DeregisterStreamConsumerInput{ConsumerARN: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	_, err = c.SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(arn), ShardId: aws.String("shardId-000000000001"),
		StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeLatest}})
	wantAPIError(t, err, "ResourceNotFoundException", "")
}

func TestEnhancedFanOutTLSAndLifetime(t *testing.T) {
	cfg := quietConfig()
	cfg.SubscriptionDuration = 700 * time.Millisecond
	cfg.SubscriptionHeartbeat = 200 * time.Millisecond
	cfg.SubscribeCooldown = 300 * time.Millisecond
	cfg.ConsumerDelay = 200 * time.Millisecond
	srv, err := stream.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewUnstartedServer(srv)
	hs.EnableHTTP2 = true
	hs.StartTLS()
	defer hs.Close()
	var protos syncList[string]
	client := hs.Client()
	client.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: client.Transport.(*http.Transport).TLSClientConfig.RootCAs}
	client.Transport = recordProto{client.Transport, &protos}
	newC := func() *kinesis.Client { return newClient(hs.URL, withHTTPClient(client), noRetries) }
	c := newC()
	ctx := ctxT(t)
	createStream(t, c, "tls", 1)
	arn := registerConsumer(t, c, "tls", "app")

	_, err = c.SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(arn), ShardId: aws.String("shardId-000000000000"),
		StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeLatest}})
	wantAPIError(t, err, "ResourceInUseException", "is not in ACTIVE state")
	time.Sleep(300 * time.Millisecond)

	start := time.Now()
	_, events := subscribeAndCollect(t, newC, arn, "shardId-000000000000", &types.StartingPosition{Type: types.ShardIteratorTypeLatest}, nil, 0)
	if el := time.Since(start); el < 600*time.Millisecond || el > 5*time.Second {
		t.Fatalf("subscription lasted %v, want about 700ms", el)
	}
	if len(events) < 2 {
		t.Fatalf("%d heartbeat events in 700ms, want at least 2", len(events))
	}
	for _, p := range protos.get() {
		if p != "HTTP/2.0" {
			t.Fatalf("request over %s", p)
		}
	}
	// Right after a successful subscription, the same consumer and shard are busy for the cooldown.
	first, err := c.SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(arn), ShardId: aws.String("shardId-000000000000"),
		StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeLatest}})
	if err != nil {
		t.Fatal(err)
	}
	defer first.GetStream().Close()
	_, err = newC().SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(arn), ShardId: aws.String("shardId-000000000000"),
		StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeLatest}})
	wantAPIError(t, err, "ResourceInUseException", "Another active subscription exists for this consumer: "+arn)
}

type recordProto struct {
	rt     http.RoundTripper
	protos *syncList[string]
}

func (r recordProto) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.rt.RoundTrip(req)
	if err == nil {
		r.protos.add(resp.Proto)
	}
	return resp, err
}
