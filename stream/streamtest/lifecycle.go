package streamtest

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

var seqRe = regexp.MustCompile(`^[0-9]{56}$`)

// testStreamLifecycle: CreateStream (default and explicit shard counts), DescribeStream and
// DescribeStreamSummary (by name and ARN), ListStreams pagination and DeleteStream.
func testStreamLifecycle(t *testing.T, h Harness) {
	c := h.Start(t, quietConfig()).NewClient()
	ctx := Context(t)

	// CreateStream without ShardCount gives 4 shards, as the service does.
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("orders")}); err != nil {
		t.Fatal(err)
	}
	d, err := c.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("orders")})
	if err != nil {
		t.Fatal(err)
	}
	sd := d.StreamDescription
	if sd.StreamStatus != types.StreamStatusActive || len(sd.Shards) != 4 || *sd.RetentionPeriodHours != 24 {
		t.Fatalf("describe: status %s, %d shards, retention %d", sd.StreamStatus, len(sd.Shards), *sd.RetentionPeriodHours)
	}
	if sd.StreamModeDetails == nil || sd.StreamModeDetails.StreamMode != types.StreamModeProvisioned {
		t.Fatalf("StreamModeDetails: %+v", sd.StreamModeDetails)
	}
	if *sd.StreamARN != "arn:aws:kinesis:us-east-1:000000000000:stream/orders" {
		t.Fatalf("ARN %s", *sd.StreamARN)
	}
	wantRanges := [][2]string{
		{"0", "85070591730234615865843651857942052863"},
		{"85070591730234615865843651857942052864", "170141183460469231731687303715884105727"},
		{"170141183460469231731687303715884105728", "255211775190703847597530955573826158591"},
		{"255211775190703847597530955573826158592", "340282366920938463463374607431768211455"},
	}
	for i, sh := range sd.Shards {
		if *sh.ShardId != fmt.Sprintf("shardId-%012d", i) {
			t.Fatalf("shard %d id %s", i, *sh.ShardId)
		}
		if *sh.HashKeyRange.StartingHashKey != wantRanges[i][0] || *sh.HashKeyRange.EndingHashKey != wantRanges[i][1] {
			t.Fatalf("shard %d range %s-%s", i, *sh.HashKeyRange.StartingHashKey, *sh.HashKeyRange.EndingHashKey)
		}
		if !seqRe.MatchString(*sh.SequenceNumberRange.StartingSequenceNumber) || sh.SequenceNumberRange.EndingSequenceNumber != nil {
			t.Fatalf("shard %d sequence range %+v", i, sh.SequenceNumberRange)
		}
	}

	// The same stream by ARN.
	sum, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamARN: sd.StreamARN})
	if err != nil {
		t.Fatal(err)
	}
	if *sum.StreamDescriptionSummary.OpenShardCount != 4 || sum.StreamDescriptionSummary.StreamModeDetails.StreamMode != types.StreamModeProvisioned {
		t.Fatalf("summary %+v", sum.StreamDescriptionSummary)
	}

	_, err = c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("orders"), ShardCount: aws.Int32(1)})
	WantAPIError(t, err, "ResourceInUseException", "Stream orders under account 000000000000 already exists.")

	CreateStream(t, c, "a-first", 1)
	ls, err := c.ListStreams(ctx, &kinesis.ListStreamsInput{Limit: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	if len(ls.StreamNames) != 1 || ls.StreamNames[0] != "a-first" || !*ls.HasMoreStreams || len(ls.StreamSummaries) != 1 {
		t.Fatalf("ListStreams page 1: %+v", ls)
	}
	ls, err = c.ListStreams(ctx, &kinesis.ListStreamsInput{NextToken: ls.NextToken})
	if err != nil {
		t.Fatal(err)
	}
	if len(ls.StreamNames) != 1 || ls.StreamNames[0] != "orders" || *ls.HasMoreStreams {
		t.Fatalf("ListStreams page 2: %+v", ls)
	}

	if _, err := c.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("orders")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("orders")})
	WantAPIError(t, err, "ResourceNotFoundException", "Stream orders under account 000000000000 not found.")
}

// testStatusTransitions: CREATING → ACTIVE (with the SDK's waiters), UPDATING during a split, DELETING.
// The delays are long enough for the checks made inside them even on a loaded machine behind a relay.
func testStatusTransitions(t *testing.T, h Harness) {
	cfg := quietConfig()
	const delay = 700 * time.Millisecond
	cfg.CreateDelay, cfg.UpdateDelay, cfg.DeleteDelay = delay, delay, delay
	c := h.Start(t, cfg).NewClient()
	ctx := Context(t)
	CreateStream(t, c, "slow", 1)
	status := func() types.StreamStatus {
		t.Helper()
		s, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("slow")})
		if err != nil {
			t.Fatal(err)
		}
		return s.StreamDescriptionSummary.StreamStatus
	}
	if s := status(); s != types.StreamStatusCreating {
		t.Fatalf("status %s, want CREATING", s)
	}
	_, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("slow"), PartitionKey: aws.String("k"), Data: []byte("x")})
	WantAPIError(t, err, "ResourceNotFoundException", "")
	w := kinesis.NewStreamExistsWaiter(c)
	if err := w.Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("slow")}, 10*time.Second, func(o *kinesis.StreamExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 50*time.Millisecond, 100*time.Millisecond
	}); err != nil {
		t.Fatalf("waiter: %v", err)
	}
	splitAt := time.Now()
	if _, err := c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("slow"), ShardToSplit: aws.String("shardId-0"),
		NewStartingHashKey: aws.String("1000")}); err != nil {
		t.Fatal(err)
	}
	if s := status(); s != types.StreamStatusUpdating {
		t.Fatalf("status %s, want UPDATING", s)
	}
	_, err = c.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String("slow"), ShardToMerge: aws.String("shardId-0"),
		AdjacentShardToMerge: aws.String("shardId-1")})
	WantAPIError(t, err, "ResourceInUseException", "not ACTIVE, instead in state UPDATING")
	// Writes still go to the parent while UPDATING.
	pr, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("slow"), PartitionKey: aws.String("k"), Data: []byte("x")})
	if err != nil || *pr.ShardId != "shardId-000000000000" {
		t.Fatalf("put during UPDATING: %v %v", pr, err)
	}
	time.Sleep(time.Until(splitAt.Add(delay)))
	eventually(t, "ACTIVE after the update delay", func() error {
		if s := status(); s != types.StreamStatusActive {
			return fmt.Errorf("status %s", s)
		}
		return nil
	})
	if _, err := c.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("slow")}); err != nil {
		t.Fatal(err)
	}
	if s := status(); s != types.StreamStatusDeleting {
		t.Fatalf("status %s, want DELETING", s)
	}
	nw := kinesis.NewStreamNotExistsWaiter(c)
	if err := nw.Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("slow")}, 10*time.Second, func(o *kinesis.StreamNotExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 50*time.Millisecond, 100*time.Millisecond
	}); err != nil {
		t.Fatalf("not-exists waiter: %v", err)
	}
}
