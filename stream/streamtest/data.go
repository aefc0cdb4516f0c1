package streamtest

import (
	"bytes"
	"crypto/md5"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

func hashOf(pk string) *big.Int {
	s := md5.Sum([]byte(pk))
	return new(big.Int).SetBytes(s[:])
}

// testPutAndReadEveryIteratorType: PutRecord routed by the MD5 of the partition key, PutRecords with
// ExplicitHashKey, 56-digit increasing sequence numbers, and reads with TRIM_HORIZON, AT_ and
// AFTER_SEQUENCE_NUMBER, LATEST and AT_TIMESTAMP, with the service's errors for foreign sequence numbers,
// unknown shards and bad iterators.
func testPutAndReadEveryIteratorType(t *testing.T, h Harness) {
	cfg := quietConfig()
	cfg.DisableThrottling = true // eight reads of one shard in a row; throttling has scenarios of its own
	c := h.Start(t, cfg).NewClient()
	ctx := Context(t)
	CreateStream(t, c, "events", 2)
	d, err := c.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("events")})
	if err != nil {
		t.Fatal(err)
	}
	shards := d.StreamDescription.Shards

	// PutRecord routes by MD5 of the partition key.
	seqOnShard0 := ""
	for i := range 5 {
		pk := fmt.Sprintf("key-%d", i)
		r, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("events"), PartitionKey: aws.String(pk),
			Data: []byte(fmt.Sprintf("single-%d", i))})
		if err != nil {
			t.Fatal(err)
		}
		if !seqRe.MatchString(*r.SequenceNumber) {
			t.Fatalf("sequence number %q is not 56 digits", *r.SequenceNumber)
		}
		h := hashOf(pk)
		want := ""
		for _, sh := range shards {
			lo, _ := new(big.Int).SetString(*sh.HashKeyRange.StartingHashKey, 10)
			hi, _ := new(big.Int).SetString(*sh.HashKeyRange.EndingHashKey, 10)
			if h.Cmp(lo) >= 0 && h.Cmp(hi) <= 0 {
				want = *sh.ShardId
			}
		}
		if *r.ShardId != want {
			t.Fatalf("key %s went to %s, want %s", pk, *r.ShardId, want)
		}
		if *r.ShardId == "shardId-000000000000" {
			seqOnShard0 = *r.SequenceNumber
		}
	}

	// PutRecords with ExplicitHashKey pins records to shard 1, in order.
	var entries []types.PutRecordsRequestEntry
	for i := range 10 {
		entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String("any"),
			ExplicitHashKey: aws.String("340282366920938463463374607431768211455"), Data: []byte(fmt.Sprintf("batch-%d", i))})
	}
	prs, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("events"), Records: entries})
	if err != nil {
		t.Fatal(err)
	}
	if *prs.FailedRecordCount != 0 || len(prs.Records) != 10 {
		t.Fatalf("PutRecords: %d failed of %d", *prs.FailedRecordCount, len(prs.Records))
	}
	prev := new(big.Int)
	for i, r := range prs.Records {
		if *r.ShardId != "shardId-000000000001" {
			t.Fatalf("record %d on %s", i, *r.ShardId)
		}
		n, _ := new(big.Int).SetString(*r.SequenceNumber, 10)
		if n.Cmp(prev) <= 0 {
			t.Fatalf("sequence numbers not increasing at %d", i)
		}
		prev = n
	}
	recs := ReadShard(t, c, "events", "shardId-1") // normalised id
	batch := 0
	for _, r := range recs {
		if bytes.HasPrefix(r.Data, []byte("batch-")) {
			if string(r.Data) != fmt.Sprintf("batch-%d", batch) {
				t.Fatalf("order: got %s at %d", r.Data, batch)
			}
			batch++
		}
		if r.ApproximateArrivalTimestamp == nil || time.Since(*r.ApproximateArrivalTimestamp) > time.Minute {
			t.Fatalf("arrival timestamp %v", r.ApproximateArrivalTimestamp)
		}
	}
	if batch != 10 {
		t.Fatalf("read %d batch records, want 10", batch)
	}

	iter := func(in *kinesis.GetShardIteratorInput) []types.Record {
		t.Helper()
		in.StreamName = aws.String("events")
		in.ShardId = aws.String("shardId-000000000001")
		it, err := c.GetShardIterator(ctx, in)
		if err != nil {
			t.Fatalf("GetShardIterator %s: %v", in.ShardIteratorType, err)
		}
		res, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator, Limit: aws.Int32(3)})
		if err != nil {
			t.Fatalf("GetRecords: %v", err)
		}
		if res.NextShardIterator == nil {
			t.Fatal("open shard returned no NextShardIterator")
		}
		return res.Records
	}
	third := prs.Records[2].SequenceNumber
	if r := iter(&kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: third}); len(r) != 3 || string(r[0].Data) != "batch-2" {
		t.Fatalf("AT_SEQUENCE_NUMBER: %d records, first %q", len(r), r[0].Data)
	}
	if r := iter(&kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeAfterSequenceNumber, StartingSequenceNumber: third}); string(r[0].Data) != "batch-3" {
		t.Fatalf("AFTER_SEQUENCE_NUMBER: first %q", r[0].Data)
	}
	if r := iter(&kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeLatest}); len(r) != 0 {
		t.Fatalf("LATEST returned %d records", len(r))
	}
	if r := iter(&kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeAtTimestamp, Timestamp: aws.Time(time.Now().Add(-time.Hour))}); len(r) != 3 {
		t.Fatalf("AT_TIMESTAMP past: %d records", len(r))
	}
	if r := iter(&kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeAtTimestamp, Timestamp: aws.Time(time.Now())}); len(r) != 0 {
		t.Fatalf("AT_TIMESTAMP now: %d records", len(r))
	}

	// LATEST then a write: the record is seen, MillisBehindLatest reaches 0 at the tip.
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("events"), ShardId: aws.String("shardId-000000000001"),
		ShardIteratorType: types.ShardIteratorTypeLatest})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("events"), PartitionKey: aws.String("x"),
		ExplicitHashKey: aws.String("340282366920938463463374607431768211455"), Data: []byte("after-latest"),
		SequenceNumberForOrdering: prs.Records[9].SequenceNumber}); err != nil {
		t.Fatal(err)
	}
	res, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Records) != 1 || string(res.Records[0].Data) != "after-latest" || *res.MillisBehindLatest != 0 {
		t.Fatalf("LATEST read: %d records, behind %d", len(res.Records), *res.MillisBehindLatest)
	}

	// Sequence numbers of another shard are rejected.
	_, err = c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("events"), ShardId: aws.String("shardId-000000000001"),
		ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: aws.String(seqOnShard0)})
	WantAPIError(t, err, "InvalidArgumentException", "Invalid StartingSequenceNumber. It encodes shardId-000000000000, while it was used in a call to a shard with shardId-000000000001")
	_, err = c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("events"), ShardId: aws.String("shardId-000000000009"),
		ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	WantAPIError(t, err, "ResourceNotFoundException", "Shard shardId-000000000009 in stream events under account 000000000000 does not exist")
	_, err = c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String("AAAAAAAAAAGZuDsV0e2S6w9AY1ExLdvGWBeoAAAAAAAAAAAAAAAAAAAAAAAAAAAA")})
	WantAPIError(t, err, "InvalidArgumentException", "Invalid ShardIterator.")
}

// testIteratorExpires: a shard iterator is good for 5 minutes, on the server's (fake) clock.
func testIteratorExpires(t *testing.T, h Harness) {
	clock := newFakeClock()
	cfg := quietConfig()
	cfg.Now = clock.Now
	c := h.Start(t, cfg).NewClient()
	ctx := Context(t)
	CreateStream(t, c, "exp", 1)
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("exp"), ShardId: aws.String("shardId-000000000000"),
		ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(4 * time.Minute)
	res, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil {
		t.Fatalf("4 min old iterator: %v", err)
	}
	clock.Advance(5*time.Minute + time.Second)
	_, err = c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	WantAPIError(t, err, "ExpiredIteratorException", "which is further in the future than the tolerated delay of 300000 milliseconds")
	// The NextShardIterator of the first read was issued later and is also too old now.
	_, err = c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: res.NextShardIterator})
	WantAPIError(t, err, "ExpiredIteratorException", "Iterator expired.")
}

// testRetentionTrims: with a short retention hour, records and closed shards past the retention period
// disappear.
func testRetentionTrims(t *testing.T, h Harness) {
	cfg := quietConfig()
	cfg.RetentionHour = 25 * time.Millisecond // 24 "hours" = 600 ms
	cfg.RetentionCheckInterval = 20 * time.Millisecond
	retention := 24 * cfg.RetentionHour
	c := h.Start(t, cfg).NewClient()
	ctx := Context(t)
	CreateStream(t, c, "ret", 1)
	putKeys(t, c, "ret", 10, 0)
	if _, err := c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("ret"), ShardToSplit: aws.String("shardId-000000000000"),
		NewStartingHashKey: aws.String("1000000")}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	putKeys(t, c, "ret", 10, 1)
	if got := len(ReadShard(t, c, "ret", "shardId-000000000000")); got != 10 {
		t.Fatalf("before expiry: %d records on the parent", got)
	}
	// Wait until the first round (and the closed parent) expired.
	eventually(t, "closed parent dropped after retention", func() error {
		d, err := c.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("ret")})
		if err != nil {
			return err
		}
		if n := len(d.StreamDescription.Shards); n != 2 {
			return fmt.Errorf("closed parent still listed: %d shards", n)
		}
		return nil
	})
	gone := time.Now()
	_, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("ret"), ShardId: aws.String("shardId-000000000000"),
		ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	WantAPIError(t, err, "ResourceNotFoundException", "")
	n := len(ReadShard(t, c, "ret", "shardId-000000000001")) + len(ReadShard(t, c, "ret", "shardId-000000000002"))
	if n > 10 {
		t.Fatalf("%d records after expiry of the first round", n)
	}
	// The second round was written before the parent expired: one retention period later it is gone.
	time.Sleep(time.Until(gone.Add(retention + 50*time.Millisecond)))
	n = len(ReadShard(t, c, "ret", "shardId-000000000001")) + len(ReadShard(t, c, "ret", "shardId-000000000002"))
	if n != 0 {
		t.Fatalf("%d records left after the retention period", n)
	}
}
