package streamtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/kinesis-network/portal/stream"
)

const oneMiB = 1 << 20

// quietConfig is a Config without control-plane limits, as most scenarios want.
func quietConfig() stream.Config {
	return stream.Config{DisableControlPlaneLimits: true}
}

// noRetries turns the SDK's retries off, so that throttling errors reach the scenario.
func noRetries(o *kinesis.Options) { o.Retryer = aws.NopRetryer{} }

// withHTTPClient makes a client send through c.
func withHTTPClient(c *http.Client) func(*kinesis.Options) {
	return func(o *kinesis.Options) { o.HTTPClient = c }
}

// Context returns a context that ends with the test, or after 30 seconds.
func Context(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// WantAPIError asserts err is a service error of type code whose message contains msg.
func WantAPIError(t *testing.T, err error, code, msg string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want %s error, got %v", code, err)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("want error code %s, got %s (%s)", code, ae.ErrorCode(), ae.ErrorMessage())
	}
	if !strings.Contains(ae.ErrorMessage(), msg) {
		t.Fatalf("want %s message containing %q, got %q", code, msg, ae.ErrorMessage())
	}
}

// CreateStream creates a provisioned stream or fails the test.
func CreateStream(t *testing.T, c *kinesis.Client, name string, shards int32) {
	t.Helper()
	_, err := c.CreateStream(Context(t), &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(shards)})
	if err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
}

// ReadShard reads a shard from TRIM_HORIZON to its end (closed shard) or to the tip (open shard).
func ReadShard(t *testing.T, c *kinesis.Client, streamName, shardID string) []types.Record {
	t.Helper()
	ctx := Context(t)
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(streamName),
		ShardId: aws.String(shardID), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatalf("GetShardIterator %s: %v", shardID, err)
	}
	var out []types.Record
	iter := it.ShardIterator
	for iter != nil {
		res, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
		if err != nil {
			t.Fatalf("GetRecords %s: %v", shardID, err)
		}
		out = append(out, res.Records...)
		if len(res.Records) == 0 && res.NextShardIterator != nil {
			break // tip of an open shard
		}
		iter = res.NextShardIterator
	}
	return out
}

// putKeys writes one record per key, tagged with the round; order per key is checked by the readers.
func putKeys(t *testing.T, c *kinesis.Client, streamName string, keys int, round int) {
	t.Helper()
	var entries []types.PutRecordsRequestEntry
	for k := range keys {
		entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprintf("key-%d", k)),
			Data: []byte(fmt.Sprintf("key-%d/%d", k, round))})
	}
	out, err := c.PutRecords(Context(t), &kinesis.PutRecordsInput{StreamName: aws.String(streamName), Records: entries})
	if err != nil || *out.FailedRecordCount != 0 {
		t.Fatalf("PutRecords round %d: %v %v", round, err, out)
	}
}

// readLineage reads every shard of a stream, parents before children (as KCL does), and returns the
// records of each key in the order seen.
func readLineage(t *testing.T, c *kinesis.Client, streamName string) map[string][]string {
	t.Helper()
	var shards []types.Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(streamName), MaxResults: aws.Int32(2)}
	for {
		page, err := c.ListShards(Context(t), in)
		if err != nil {
			t.Fatalf("ListShards: %v", err)
		}
		shards = append(shards, page.Shards...)
		if page.NextToken == nil {
			break
		}
		in = &kinesis.ListShardsInput{NextToken: page.NextToken}
	}
	done := map[string]bool{}
	perKey := map[string][]string{}
	for len(done) < len(shards) {
		progressed := false
		for _, sh := range shards {
			id := *sh.ShardId
			if done[id] {
				continue
			}
			ready := true
			for _, parent := range []*string{sh.ParentShardId, sh.AdjacentParentShardId} {
				if parent != nil && !done[*parent] && hasShard(shards, *parent) {
					ready = false
				}
			}
			if !ready {
				continue
			}
			for _, r := range ReadShard(t, c, streamName, id) {
				perKey[*r.PartitionKey] = append(perKey[*r.PartitionKey], string(r.Data))
			}
			done[id] = true
			progressed = true
		}
		if !progressed {
			t.Fatal("lineage has a cycle")
		}
	}
	return perKey
}

func hasShard(shards []types.Shard, id string) bool {
	for _, s := range shards {
		if *s.ShardId == id {
			return true
		}
	}
	return false
}

// checkPerKeyOrder asserts that every key has one record per round, in round order.
func checkPerKeyOrder(t *testing.T, perKey map[string][]string, keys, rounds int) {
	t.Helper()
	for k := range keys {
		key := fmt.Sprintf("key-%d", k)
		got := perKey[key]
		if len(got) != rounds {
			t.Fatalf("%s: %d records, want %d: %v", key, len(got), rounds, got)
		}
		for r := range rounds {
			if got[r] != fmt.Sprintf("%s/%d", key, r) {
				t.Fatalf("%s out of order: %v", key, got)
			}
		}
	}
}

// fakeClock is a settable clock for Config.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// do sends req with hc (the default client when nil) and returns status, headers and body.
func do(t *testing.T, hc *http.Client, req *http.Request) (int, http.Header, []byte) {
	t.Helper()
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// eventually polls f every 20 ms until it returns nil, failing t with its last error after 10 s.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
