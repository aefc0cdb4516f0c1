package streamtest

import (
	"fmt"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// registerConsumer registers a consumer and returns its ARN.
func registerConsumer(t *testing.T, c *kinesis.Client, streamName, name string) string {
	t.Helper()
	ctx := Context(t)
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
	ctx := Context(t)
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

// testEnhancedFanOut: consumer registration, SubscribeToShard over HTTP/2 pushing records written after
// the subscription started, resuming after the continuation sequence number, from TRIM_HORIZON and
// (over HTTP/1.1, as a chunked response) AT_TIMESTAMP, ChildShards at the end of a closed shard, and the
// consumer APIs' errors.
func testEnhancedFanOut(t *testing.T, h Harness) {
	cfg := quietConfig()
	cfg.SubscribeCooldown = -1
	cfg.SubscriptionHeartbeat = 100 * time.Millisecond
	tg := h.Start(t, cfg)
	h2 := protoChecked(t, tg.HTTP2, "HTTP/2.0")
	newC := func() *kinesis.Client { return tg.NewClient(withHTTPClient(h2)) }
	c := newC()
	ctx := Context(t)
	CreateStream(t, c, "fan", 1)
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
	h1c := protoChecked(t, tg.HTTP1, "HTTP/1.1")
	h1 := func() *kinesis.Client { return tg.NewClient(withHTTPClient(h1c)) }
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
	WantAPIError(t, err, "ResourceInUseException", "already exists")
	_, err = c.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("fan")})
	WantAPIError(t, err, "ResourceInUseException", "")
	if _, err := c.DeregisterStreamConsumer(ctx, &kinesis.DeregisterStreamConsumerInput{ConsumerARN: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	_, err = c.SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(arn), ShardId: aws.String("shardId-000000000001"),
		StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeLatest}})
	WantAPIError(t, err, "ResourceNotFoundException", "")
}

// testEnhancedFanOutLifetime: a consumer is usable once ACTIVE, a subscription ends after
// SubscriptionDuration with heartbeat events meanwhile, every exchange is HTTP/2, and the same consumer
// and shard cannot be subscribed again within the cooldown.
func testEnhancedFanOutLifetime(t *testing.T, h Harness) {
	cfg := quietConfig()
	cfg.SubscriptionDuration = 700 * time.Millisecond
	cfg.SubscriptionHeartbeat = 200 * time.Millisecond
	cfg.SubscribeCooldown = 500 * time.Millisecond
	cfg.ConsumerDelay = 500 * time.Millisecond
	tg := h.Start(t, cfg)
	client := protoChecked(t, tg.HTTP2, "HTTP/2.0")
	newC := func() *kinesis.Client { return tg.NewClient(withHTTPClient(client), noRetries) }
	c := newC()
	ctx := Context(t)
	CreateStream(t, c, "tls", 1)
	registered := time.Now()
	arn := registerConsumer(t, c, "tls", "app")

	_, err := c.SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(arn), ShardId: aws.String("shardId-000000000000"),
		StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeLatest}})
	WantAPIError(t, err, "ResourceInUseException", "is not in ACTIVE state")
	time.Sleep(time.Until(registered.Add(cfg.ConsumerDelay)))
	eventually(t, "consumer ACTIVE", func() error {
		d, err := c.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(arn)})
		if err != nil {
			return err
		}
		if s := d.ConsumerDescription.ConsumerStatus; s != types.ConsumerStatusActive {
			return fmt.Errorf("status %s", s)
		}
		return nil
	})

	start := time.Now()
	_, events := subscribeAndCollect(t, newC, arn, "shardId-000000000000", &types.StartingPosition{Type: types.ShardIteratorTypeLatest}, nil, 0)
	if el := time.Since(start); el < 600*time.Millisecond || el > 5*time.Second {
		t.Fatalf("subscription lasted %v, want about 700ms", el)
	}
	if len(events) < 2 {
		t.Fatalf("%d heartbeat events in 700ms, want at least 2", len(events))
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
	WantAPIError(t, err, "ResourceInUseException", "Another active subscription exists for this consumer: "+arn)
}

// protoChecked returns a client sending through hc that fails t when a response comes over another
// protocol than proto ("HTTP/1.1" or "HTTP/2.0"): a misconfigured harness must not pass silently.
func protoChecked(t *testing.T, hc *http.Client, proto string) *http.Client {
	return &http.Client{Transport: protoCheck{t, hc.Transport, proto}}
}

type protoCheck struct {
	t     *testing.T
	rt    http.RoundTripper
	proto string
}

func (p protoCheck) RoundTrip(req *http.Request) (*http.Response, error) {
	rt := p.rt
	if rt == nil {
		rt = http.DefaultTransport
	}
	resp, err := rt.RoundTrip(req)
	if err == nil && resp.Proto != p.proto {
		p.t.Errorf("response over %s, want %s", resp.Proto, p.proto)
	}
	return resp, err
}

// testEnhancedFanOutPromptDelivery: each record is pushed as soon as it is written, over HTTP/2 and
// HTTP/1.1 alike. The heartbeat is far longer than the allowed delay, so an event frame that sits in a
// buffer anywhere between server and client (a proxy that does not flush, say) fails the test instead
// of arriving with the next heartbeat. Several short subscriptions per protocol, because what went wrong
// so far (see readOnlyBodies, and the relay's full-duplex HTTP/1 proxying) were races at the start of a
// subscription that cut it at its first pushed record.
func testEnhancedFanOutPromptDelivery(t *testing.T, h Harness) {
	cfg := quietConfig()
	cfg.SubscribeCooldown = -1
	cfg.SubscriptionHeartbeat = time.Minute
	tg := h.Start(t, cfg)
	c := tg.NewClient()
	ctx := Context(t)
	CreateStream(t, c, "prompt", 1)
	arn := registerConsumer(t, c, "prompt", "live")
	const maxDelay = 2 * time.Second
	var slowest time.Duration
	for _, hc := range []struct {
		name   string
		client *http.Client
	}{{"HTTP/2", protoChecked(t, tg.HTTP2, "HTTP/2.0")}, {"HTTP/1.1", protoChecked(t, tg.HTTP1, "HTTP/1.1")}} {
		for sub := range 8 {
			name := fmt.Sprintf("%s subscription %d", hc.name, sub)
			out, err := tg.NewClient(withHTTPClient(hc.client)).SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(arn),
				ShardId: aws.String("shardId-000000000000"), StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeLatest}})
			if err != nil {
				t.Fatalf("%s: SubscribeToShard: %v", name, err)
			}
			es := out.GetStream()
			next := func(what string) types.SubscribeToShardEvent {
				t.Helper()
				select {
				case ev, ok := <-es.Events():
					if !ok {
						t.Fatalf("%s: event stream ended waiting for %s: %v", name, what, es.Err())
					}
					e, ok := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent)
					if !ok {
						t.Fatalf("%s: unexpected event %T", name, ev)
					}
					return e.Value
				case <-time.After(maxDelay):
					t.Fatalf("%s: no event within %v waiting for %s", name, maxDelay, what)
				}
				panic("unreachable")
			}
			// The first event goes out at once, as the service's does.
			if ev := next("the first event"); len(ev.Records) != 0 {
				t.Fatalf("%s: first event has %d records", name, len(ev.Records))
			}
			for i := range 3 {
				data := fmt.Sprintf("%s/%d/%d", hc.name, sub, i)
				start := time.Now()
				if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("prompt"), PartitionKey: aws.String("k"),
					Data: []byte(data)}); err != nil {
					t.Fatal(err)
				}
				ev := next(data)
				if len(ev.Records) != 1 || string(ev.Records[0].Data) != data {
					t.Fatalf("%s: pushed %d records, want just %s", name, len(ev.Records), data)
				}
				slowest = max(slowest, time.Since(start))
			}
			if err := es.Close(); err != nil {
				t.Fatalf("%s: close: %v", name, err)
			}
		}
	}
	t.Logf("slowest push: %v from the start of PutRecord to the event", slowest)
}
