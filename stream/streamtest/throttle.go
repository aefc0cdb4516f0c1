package streamtest

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinesis-network/portal/stream"
)

// testWriteThrottling: 1,000 records/s and 1 MiB/s per shard as token buckets on a fake clock,
// ProvisionedThroughputExceededException for PutRecord and per record for PutRecords (partial failure),
// and the record size limit as a ValidationException naming the field.
func testWriteThrottling(t *testing.T, h Harness) {
	clock := newFakeClock()
	cfg := quietConfig()
	cfg.Now = clock.Now
	c := h.Start(t, cfg).NewClient(noRetries)
	ctx := Context(t)
	CreateStream(t, c, "hot", 1)

	// 1,000 records per second per shard: two batches of 500 pass, the next record is refused.
	batch := make([]types.PutRecordsRequestEntry, 500)
	for i := range batch {
		batch[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint(i)), Data: []byte("x")}
	}
	for range 2 {
		out, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("hot"), Records: batch})
		if err != nil || *out.FailedRecordCount != 0 {
			t.Fatalf("PutRecords within limit: %v, failed %v", err, out)
		}
	}
	_, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("hot"), PartitionKey: aws.String("k"), Data: []byte("x")})
	WantAPIError(t, err, "ProvisionedThroughputExceededException",
		"Rate exceeded for shard shardId-000000000000 in stream hot under account 000000000000.")

	// Half a second later, half the records pass: a partial failure reported per record.
	clock.Advance(500 * time.Millisecond)
	out, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("hot"), Records: batch[:500]})
	if err != nil {
		t.Fatal(err)
	}
	if *out.FailedRecordCount != 0 {
		t.Fatalf("500 records after 0.5 s: %d failed", *out.FailedRecordCount)
	}
	clock.Advance(200 * time.Millisecond)
	out, err = c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("hot"), Records: batch[:300]})
	if err != nil {
		t.Fatal(err)
	}
	if *out.FailedRecordCount != 100 {
		t.Fatalf("300 records with 200 tokens: %d failed, want 100", *out.FailedRecordCount)
	}
	for i, r := range out.Records {
		failed := r.ErrorCode != nil
		if failed != (i >= 200) {
			t.Fatalf("record %d failed=%v", i, failed)
		}
		if failed {
			if *r.ErrorCode != "ProvisionedThroughputExceededException" || r.SequenceNumber != nil || r.ShardId != nil ||
				*r.ErrorMessage != "Rate exceeded for shard shardId-000000000000 in stream hot under account 000000000000." {
				t.Fatalf("record %d: %s %s", i, *r.ErrorCode, *r.ErrorMessage)
			}
		} else if r.SequenceNumber == nil || *r.ShardId != "shardId-000000000000" {
			t.Fatalf("record %d: missing sequence number", i)
		}
	}

	// Bytes: a full 1 MiB record is accepted when the bucket is full, then the shard needs a second.
	clock.Advance(2 * time.Second)
	big := bytes.Repeat([]byte("b"), oneMiB-1) // plus a 1-byte partition key
	if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("hot"), PartitionKey: aws.String("k"), Data: big}); err != nil {
		t.Fatalf("1 MiB record on a full bucket: %v", err)
	}
	_, err = c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("hot"), PartitionKey: aws.String("k"), Data: []byte("tiny")})
	WantAPIError(t, err, "ProvisionedThroughputExceededException", "Rate exceeded for shard")
	clock.Advance(time.Second)
	if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("hot"), PartitionKey: aws.String("k"), Data: big}); err != nil {
		t.Fatalf("1 MiB record after refill: %v", err)
	}

	// Larger than the stream's maximum record size: a validation error naming the field.
	_, err = c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("hot"), PartitionKey: aws.String("k"), Data: make([]byte, oneMiB+1)})
	WantAPIError(t, err, "ValidationException",
		"1 validation error detected: Value 'java.nio.HeapByteBuffer[pos=0 lim=1048577 cap=1048577]' at 'data' failed to satisfy constraint: Member must have length less than or equal to 1048576")
}

// testLargeRecords: a stream created with MaxRecordSizeInKiB accepts records up to that size, the
// burst absorbing one, the shard paying it back.
func testLargeRecords(t *testing.T, h Harness) {
	clock := newFakeClock()
	cfg := quietConfig()
	cfg.Now = clock.Now
	c := h.Start(t, cfg).NewClient(noRetries)
	ctx := Context(t)
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("large"), ShardCount: aws.Int32(1),
		MaxRecordSizeInKiB: aws.Int32(3072)}); err != nil {
		t.Fatal(err)
	}
	// A 3 MiB record is absorbed by the burst of a large-record stream, then the shard pays it back.
	data := make([]byte, 3*oneMiB-1)
	if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("large"), PartitionKey: aws.String("k"), Data: data}); err != nil {
		t.Fatalf("3 MiB record: %v", err)
	}
	_, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("large"), PartitionKey: aws.String("k"), Data: []byte("x")})
	WantAPIError(t, err, "ProvisionedThroughputExceededException", "")
	// Two seconds refill 2 MiB: not enough for another 3 MiB record, one more second is.
	clock.Advance(2 * time.Second)
	_, err = c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("large"), PartitionKey: aws.String("k"), Data: data})
	WantAPIError(t, err, "ProvisionedThroughputExceededException", "")
	clock.Advance(1100 * time.Millisecond)
	if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("large"), PartitionKey: aws.String("k"), Data: data}); err != nil {
		t.Fatalf("3 MiB record after 3.1 s: %v", err)
	}
	_, err = c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("large"), PartitionKey: aws.String("k"), Data: make([]byte, 3*oneMiB+1)})
	WantAPIError(t, err, "ValidationException", "Member must have length less than or equal to 3145728")
	s, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("large")})
	if err != nil || *s.StreamDescriptionSummary.MaxRecordSizeInKiB != 3072 {
		t.Fatalf("MaxRecordSizeInKiB: %v %v", err, s)
	}
}

// testReadThrottling: 2 MiB/s and 5 GetRecords calls/s per shard, and 5 GetShardIterator calls/s.
func testReadThrottling(t *testing.T, h Harness) {
	clock := newFakeClock()
	cfg := quietConfig()
	cfg.Now = clock.Now
	c := h.Start(t, cfg).NewClient(noRetries)
	ctx := Context(t)
	CreateStream(t, c, "reads", 1)
	for range 4 {
		if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("reads"), PartitionKey: aws.String("k"),
			Data: make([]byte, oneMiB-1)}); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
	}
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("reads"), ShardId: aws.String("shardId-000000000000"),
		ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	// One call returns 4 MiB (more than the 2 MiB/s rate); the shard then owes 2 seconds of reads.
	res, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil || len(res.Records) != 4 {
		t.Fatalf("GetRecords: %v, %d records", err, len(res.Records))
	}
	_, err = c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: res.NextShardIterator})
	WantAPIError(t, err, "ProvisionedThroughputExceededException", "Rate exceeded for Shard - 000000000000/reads/shardId-000000000000")
	clock.Advance(time.Second)
	_, err = c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: res.NextShardIterator})
	WantAPIError(t, err, "ProvisionedThroughputExceededException", "")
	clock.Advance(1100 * time.Millisecond)
	// Five calls per second.
	for i := range 5 {
		if _, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: res.NextShardIterator}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	_, err = c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: res.NextShardIterator})
	WantAPIError(t, err, "ProvisionedThroughputExceededException", "Rate exceeded for Shard")

	// GetShardIterator: five calls per second per shard.
	clock.Advance(2 * time.Second)
	var lastErr error
	for range 6 {
		_, lastErr = c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("reads"), ShardId: aws.String("shardId-000000000000"),
			ShardIteratorType: types.ShardIteratorTypeLatest})
	}
	WantAPIError(t, lastErr, "ProvisionedThroughputExceededException", "Rate exceeded for shard shardId-000000000000 in stream reads")
}

// testThrottlingSwitchedOff: Config.DisableThrottling lifts the per-shard limits.
func testThrottlingSwitchedOff(t *testing.T, h Harness) {
	clock := newFakeClock()
	cfg := quietConfig()
	cfg.Now = clock.Now
	cfg.DisableThrottling = true
	c := h.Start(t, cfg).NewClient(noRetries)
	ctx := Context(t)
	CreateStream(t, c, "free", 1)
	batch := make([]types.PutRecordsRequestEntry, 500)
	for i := range batch {
		batch[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), Data: []byte("small")}
	}
	for i := range 6 { // 3,000 records in the same instant
		out, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("free"), Records: batch})
		if err != nil || *out.FailedRecordCount != 0 {
			t.Fatalf("batch %d: %v %v", i, err, out)
		}
	}
	for i := range 3 { // and 3 MiB
		if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("free"), PartitionKey: aws.String("k"), Data: make([]byte, oneMiB-1)}); err != nil {
			t.Fatalf("1 MiB record %d: %v", i, err)
		}
	}
	it, _ := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("free"), ShardId: aws.String("shardId-000000000000"),
		ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	for i := range 20 {
		if _, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator, Limit: aws.Int32(10)}); err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
	}
}

// testControlPlaneRateLimit: control-plane calls over their per-account rate get LimitExceededException
// "Rate exceeded", which the SDK's retryer treats as throttling.
func testControlPlaneRateLimit(t *testing.T, h Harness) {
	clock := newFakeClock()
	tg := h.Start(t, stream.Config{Now: clock.Now})
	c := tg.NewClient(noRetries)
	ctx := Context(t)
	if _, err := c.DescribeLimits(ctx, &kinesis.DescribeLimitsInput{}); err != nil {
		t.Fatal(err)
	}
	_, err := c.DescribeLimits(ctx, &kinesis.DescribeLimitsInput{})
	WantAPIError(t, err, "LimitExceededException", "Rate exceeded")
	clock.Advance(time.Second)
	if _, err := c.DescribeLimits(ctx, &kinesis.DescribeLimitsInput{}); err != nil {
		t.Fatalf("after a second: %v", err)
	}
	// CreateStream: 5 per second.
	for i := range 5 {
		CreateStream(t, c, fmt.Sprintf("s%d", i), 1)
	}
	_, err = c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("s5"), ShardCount: aws.Int32(1)})
	WantAPIError(t, err, "LimitExceededException", "Rate exceeded")
	// The SDK's retryer treats it as throttling and succeeds once the bucket refills.
	go func() {
		time.Sleep(200 * time.Millisecond)
		clock.Advance(time.Second)
	}()
	retrying := tg.NewClient()
	if _, err := retrying.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("s5"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatalf("retried CreateStream: %v", err)
	}
}
