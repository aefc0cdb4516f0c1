package stream_test

import (
	"bytes"
	"crypto/md5"
	"fmt"
	"math/big"
	"regexp"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

var seqRe = regexp.MustCompile(`^[0-9]{56}$`)

func TestStreamLifecycle(t *testing.T) {
	_, url := startServer(t, quietConfig())
	c := newClient(url)
	ctx := ctxT(t)

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
	wantAPIError(t, err, "ResourceInUseException", "Stream orders under account 000000000000 already exists.")

	createStream(t, c, "a-first", 1)
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
	wantAPIError(t, err, "ResourceNotFoundException", "Stream orders under account 000000000000 not found.")
}

func TestStatusTransitions(t *testing.T) {
	cfg := quietConfig()
	cfg.CreateDelay = 500 * time.Millisecond
	cfg.UpdateDelay = 500 * time.Millisecond
	cfg.DeleteDelay = 500 * time.Millisecond
	_, url := startServer(t, cfg)
	c := newClient(url)
	ctx := ctxT(t)
	createStream(t, c, "slow", 1)
	status := func() types.StreamStatus {
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
	wantAPIError(t, err, "ResourceNotFoundException", "")
	w := kinesis.NewStreamExistsWaiter(c)
	if err := w.Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("slow")}, 10*time.Second, func(o *kinesis.StreamExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 50*time.Millisecond, 100*time.Millisecond
	}); err != nil {
		t.Fatalf("waiter: %v", err)
	}
	if _, err := c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("slow"), ShardToSplit: aws.String("shardId-0"),
		NewStartingHashKey: aws.String("1000")}); err != nil {
		t.Fatal(err)
	}
	if s := status(); s != types.StreamStatusUpdating {
		t.Fatalf("status %s, want UPDATING", s)
	}
	_, err = c.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String("slow"), ShardToMerge: aws.String("shardId-0"),
		AdjacentShardToMerge: aws.String("shardId-1")})
	wantAPIError(t, err, "ResourceInUseException", "not ACTIVE, instead in state UPDATING")
	// Writes still go to the parent while UPDATING.
	pr, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("slow"), PartitionKey: aws.String("k"), Data: []byte("x")})
	if err != nil || *pr.ShardId != "shardId-000000000000" {
		t.Fatalf("put during UPDATING: %v %v", pr, err)
	}
	time.Sleep(800 * time.Millisecond)
	if s := status(); s != types.StreamStatusActive {
		t.Fatalf("status %s, want ACTIVE", s)
	}
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

func hashOf(pk string) *big.Int {
	s := md5.Sum([]byte(pk))
	return new(big.Int).SetBytes(s[:])
}

func TestPutAndReadEveryIteratorType(t *testing.T) {
	_, url := startServer(t, quietConfig())
	c := newClient(url)
	ctx := ctxT(t)
	createStream(t, c, "events", 2)
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
	recs := readShard(t, c, "events", "shardId-1") // normalised id
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
	wantAPIError(t, err, "InvalidArgumentException", "Invalid StartingSequenceNumber. It encodes shardId-000000000000, while it was used in a call to a shard with shardId-000000000001")
	_, err = c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("events"), ShardId: aws.String("shardId-000000000009"),
		ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	wantAPIError(t, err, "ResourceNotFoundException", "Shard shardId-000000000009 in stream events under account 000000000000 does not exist")
	_, err = c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String("AAAAAAAAAAGZuDsV0e2S6w9AY1ExLdvGWBeoAAAAAAAAAAAAAAAAAAAAAAAAAAAA")})
	wantAPIError(t, err, "InvalidArgumentException", "Invalid ShardIterator.")
}

func TestIteratorExpires(t *testing.T) {
	var mu = make(chan struct{}, 1)
	mu <- struct{}{}
	now := time.Now()
	clock := func() time.Time {
		<-mu
		defer func() { mu <- struct{}{} }()
		return now
	}
	advance := func(d time.Duration) {
		<-mu
		now = now.Add(d)
		mu <- struct{}{}
	}
	cfg := quietConfig()
	cfg.Now = clock
	_, url := startServer(t, cfg)
	c := newClient(url)
	ctx := ctxT(t)
	createStream(t, c, "exp", 1)
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("exp"), ShardId: aws.String("shardId-000000000000"),
		ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	advance(4 * time.Minute)
	res, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil {
		t.Fatalf("4 min old iterator: %v", err)
	}
	advance(5*time.Minute + time.Second)
	_, err = c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	wantAPIError(t, err, "ExpiredIteratorException", "which is further in the future than the tolerated delay of 300000 milliseconds")
	// The NextShardIterator of the first read was issued later and is also too old now.
	_, err = c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: res.NextShardIterator})
	wantAPIError(t, err, "ExpiredIteratorException", "Iterator expired.")
}
