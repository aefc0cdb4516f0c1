package streamtest

import (
	"fmt"
	"math/big"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// testSplitMergeLineage: SplitShard and MergeShards close parents and open children with the right
// lineage and hash ranges, a closed parent ends with ChildShards, a reader going parents-first sees
// every key in order, and ListShards filters and paginates.
func testSplitMergeLineage(t *testing.T, h Harness) {
	c := h.Start(t, quietConfig()).NewClient()
	ctx := Context(t)
	CreateStream(t, c, "lin", 1)
	putKeys(t, c, "lin", 40, 0)

	half := new(big.Int).Lsh(big.NewInt(1), 127).String()
	if _, err := c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("lin"), ShardToSplit: aws.String("shardId-000000000000"),
		NewStartingHashKey: aws.String(half)}); err != nil {
		t.Fatal(err)
	}
	putKeys(t, c, "lin", 40, 1)

	// The closed parent ends with ChildShards and no NextShardIterator.
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("lin"), ShardId: aws.String("shardId-000000000000"),
		ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Records) != 40 || res.NextShardIterator != nil || len(res.ChildShards) != 2 {
		t.Fatalf("closed parent: %d records, next %v, children %d", len(res.Records), res.NextShardIterator, len(res.ChildShards))
	}
	if *res.ChildShards[0].ShardId != "shardId-000000000001" || res.ChildShards[0].ParentShards[0] != "shardId-000000000000" ||
		*res.ChildShards[1].HashKeyRange.StartingHashKey != half {
		t.Fatalf("children: %+v", res.ChildShards)
	}

	_, err = c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("lin"), ShardToSplit: aws.String("shardId-000000000000"),
		NewStartingHashKey: aws.String(half)})
	WantAPIError(t, err, "InvalidArgumentException", "has already been merged or split")
	_, err = c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("lin"), ShardToSplit: aws.String("shardId-000000000001"),
		NewStartingHashKey: aws.String("1")})
	WantAPIError(t, err, "InvalidArgumentException",
		"NewStartingHashKey 1 used in SplitShard() on shard shardId-000000000001 in stream lin under account 000000000000 is not both greater than one plus the shard's StartingHashKey 0 and less than the shard's EndingHashKey")
	_, err = c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("lin"), ShardToSplit: aws.String("shardId-000000000007"),
		NewStartingHashKey: aws.String("12345")})
	WantAPIError(t, err, "ResourceNotFoundException", "Could not find shard shardId-000000000007 in stream lin under account 000000000000.")

	// Split the second child again, then merge the first child with the lower grandchild.
	quarter3 := new(big.Int).Mul(big.NewInt(3), new(big.Int).Lsh(big.NewInt(1), 126)).String()
	if _, err := c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("lin"), ShardToSplit: aws.String("shardId-2"),
		NewStartingHashKey: aws.String(quarter3)}); err != nil {
		t.Fatal(err)
	}
	putKeys(t, c, "lin", 40, 2)
	_, err = c.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String("lin"), ShardToMerge: aws.String("shardId-000000000001"),
		AdjacentShardToMerge: aws.String("shardId-000000000004")})
	WantAPIError(t, err, "InvalidArgumentException", "are not an adjacent pair of shards eligible for merging")
	if _, err := c.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String("lin"), ShardToMerge: aws.String("shardId-000000000003"),
		AdjacentShardToMerge: aws.String("shardId-000000000001")}); err != nil {
		t.Fatal(err)
	}
	putKeys(t, c, "lin", 40, 3)

	d, err := c.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("lin")})
	if err != nil {
		t.Fatal(err)
	}
	var open []string
	for _, sh := range d.StreamDescription.Shards {
		if sh.SequenceNumberRange.EndingSequenceNumber == nil {
			open = append(open, *sh.ShardId)
		}
		if *sh.ShardId == "shardId-000000000005" {
			q, _ := new(big.Int).SetString(quarter3, 10)
			if *sh.ParentShardId != "shardId-000000000003" || *sh.AdjacentParentShardId != "shardId-000000000001" ||
				*sh.HashKeyRange.StartingHashKey != "0" || *sh.HashKeyRange.EndingHashKey != q.Sub(q, big.NewInt(1)).String() {
				t.Fatalf("merged shard: %+v", sh)
			}
		}
	}
	if fmt.Sprint(open) != "[shardId-000000000004 shardId-000000000005]" {
		t.Fatalf("open shards %v", open)
	}
	checkPerKeyOrder(t, readLineage(t, c, "lin"), 40, 4)

	// ListShards filters.
	ids := func(in *kinesis.ListShardsInput) []string {
		t.Helper()
		in.StreamName = aws.String("lin")
		out, err := c.ListShards(ctx, in)
		if err != nil {
			t.Fatalf("ListShards %+v: %v", in.ShardFilter, err)
		}
		var ids []string
		for _, s := range out.Shards {
			ids = append(ids, *s.ShardId)
		}
		sort.Strings(ids)
		return ids
	}
	if got := fmt.Sprint(ids(&kinesis.ListShardsInput{ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtLatest}})); got != "[shardId-000000000004 shardId-000000000005]" {
		t.Fatalf("AT_LATEST: %s", got)
	}
	if got := ids(&kinesis.ListShardsInput{ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeFromTrimHorizon}}); len(got) != 6 {
		t.Fatalf("FROM_TRIM_HORIZON: %v", got)
	}
	if got := fmt.Sprint(ids(&kinesis.ListShardsInput{ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtTrimHorizon}})); got != "[shardId-000000000000]" {
		t.Fatalf("AT_TRIM_HORIZON: %s", got)
	}
	if got := fmt.Sprint(ids(&kinesis.ListShardsInput{ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAfterShardId, ShardId: aws.String("shardId-3")}})); got != "[shardId-000000000004 shardId-000000000005]" {
		t.Fatalf("AFTER_SHARD_ID: %s", got)
	}
	if got := fmt.Sprint(ids(&kinesis.ListShardsInput{ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtTimestamp, Timestamp: aws.Time(time.Now().Add(-time.Hour))}})); got != "[shardId-000000000000]" {
		t.Fatalf("AT_TIMESTAMP: %s", got)
	}
	if got := ids(&kinesis.ListShardsInput{ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeFromTimestamp, Timestamp: aws.Time(time.Now().Add(time.Hour))}}); len(got) != 2 {
		t.Fatalf("FROM_TIMESTAMP future: %v", got)
	}
	if got := ids(&kinesis.ListShardsInput{ExclusiveStartShardId: aws.String("shardId-000000000002")}); len(got) != 3 {
		t.Fatalf("ExclusiveStartShardId: %v", got)
	}
	first, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("lin"), MaxResults: aws.Int32(4)})
	if err != nil || len(first.Shards) != 4 || first.NextToken == nil {
		t.Fatalf("page 1: %v %v", err, first)
	}
	_, err = c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("lin"), NextToken: first.NextToken})
	WantAPIError(t, err, "InvalidArgumentException", "NextToken and StreamName cannot be provided together.")
	second, err := c.ListShards(ctx, &kinesis.ListShardsInput{NextToken: first.NextToken})
	if err != nil || len(second.Shards) != 2 || second.NextToken != nil {
		t.Fatalf("page 2: %v %+v", err, second)
	}
	_, err = c.ListShards(ctx, &kinesis.ListShardsInput{NextToken: aws.String("bm90IGEgdG9rZW4=")})
	WantAPIError(t, err, "InvalidArgumentException", "")
}

// testUpdateShardCount: UNIFORM_SCALING up and down keeps per-key order across the lineage, with the
// service's limits on scaling factor, updates per day and account shards.
func testUpdateShardCount(t *testing.T, h Harness) {
	c := h.Start(t, quietConfig()).NewClient()
	ctx := Context(t)
	CreateStream(t, c, "usc", 2)
	round := 0
	putKeys(t, c, "usc", 30, round)
	for _, target := range []int32{4, 3, 5, 3, 2} {
		out, err := c.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String("usc"), TargetShardCount: aws.Int32(target),
			ScalingType: types.ScalingTypeUniformScaling})
		if err != nil {
			t.Fatalf("to %d: %v", target, err)
		}
		if *out.TargetShardCount != target {
			t.Fatalf("output %+v", out)
		}
		round++
		putKeys(t, c, "usc", 30, round)
		ls, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("usc"), ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtLatest}})
		if err != nil {
			t.Fatal(err)
		}
		if len(ls.Shards) != int(target) {
			t.Fatalf("target %d: %d open shards", target, len(ls.Shards))
		}
		// Uniform ranges, as UNIFORM_SCALING promises.
		step := new(big.Int).Div(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(int64(target)))
		sort.Slice(ls.Shards, func(i, j int) bool {
			a, _ := new(big.Int).SetString(*ls.Shards[i].HashKeyRange.StartingHashKey, 10)
			b, _ := new(big.Int).SetString(*ls.Shards[j].HashKeyRange.StartingHashKey, 10)
			return a.Cmp(b) < 0
		})
		for i, sh := range ls.Shards {
			want := new(big.Int).Mul(step, big.NewInt(int64(i))).String()
			if *sh.HashKeyRange.StartingHashKey != want {
				t.Fatalf("target %d shard %d starts at %s, want %s", target, i, *sh.HashKeyRange.StartingHashKey, want)
			}
		}
	}
	checkPerKeyOrder(t, readLineage(t, c, "usc"), 30, round+1)

	_, err := c.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String("usc"), TargetShardCount: aws.Int32(5),
		ScalingType: types.ScalingTypeUniformScaling})
	WantAPIError(t, err, "InvalidArgumentException", "UpdateShardCount cannot scale up over double your current open shard count. Current open shard count: 2 Target shard count: 5")
	CreateStream(t, c, "usc4", 4)
	_, err = c.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String("usc4"), TargetShardCount: aws.Int32(1),
		ScalingType: types.ScalingTypeUniformScaling})
	WantAPIError(t, err, "InvalidArgumentException", "cannot scale down below half")
	// Ten updates per rolling day.
	for i := range 5 {
		for _, n := range []int32{5, 4} {
			if _, err := c.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String("usc4"), TargetShardCount: aws.Int32(n),
				ScalingType: types.ScalingTypeUniformScaling}); err != nil {
				t.Fatalf("update %d: %v", i, err)
			}
		}
	}
	_, err = c.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String("usc4"), TargetShardCount: aws.Int32(5),
		ScalingType: types.ScalingTypeUniformScaling, StreamARN: nil})
	WantAPIError(t, err, "LimitExceededException", "")

	// The account shard limit.
	_, err = c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("huge"), ShardCount: aws.Int32(600)})
	WantAPIError(t, err, "LimitExceededException", "This request would exceed the shard limit for the account 000000000000 in us-east-1.")
	lim, err := c.DescribeLimits(ctx, &kinesis.DescribeLimitsInput{})
	if err != nil || *lim.ShardLimit != 500 || *lim.OpenShardCount != 6 {
		t.Fatalf("DescribeLimits: %v %+v", err, lim)
	}
}
