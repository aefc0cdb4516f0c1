package main

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// buildStreamd compiles this command into a temporary directory.
func buildStreamd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "streamd")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build: %v", err)
	}
	return bin
}

// child is a running streamd process.
type child struct {
	cmd  *exec.Cmd
	url  string
	done chan struct{}
}

// startStreamd runs bin on a free port with dataDir and waits for its "listening" line.
func startStreamd(t *testing.T, bin, dataDir string, extra ...string) *child {
	t.Helper()
	args := append([]string{"--listen", "127.0.0.1:0", "--data-dir", dataDir, "--log-level", "warn"}, extra...)
	cmd := exec.Command(bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start streamd: %v", err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-c.done
	})
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		if s.Scan() {
			line <- s.Text()
		}
		for s.Scan() {
		}
	}()
	select {
	case l := <-line:
		const prefix = "streamd listening on "
		if !strings.HasPrefix(l, prefix) {
			t.Fatalf("unexpected first line %q", l)
		}
		c.url = strings.TrimPrefix(l, prefix)
	case <-c.done:
		t.Fatal("streamd exited before listening")
	case <-time.After(20 * time.Second):
		t.Fatal("streamd did not start")
	}
	return c
}

// kill sends SIGKILL and waits for the process to be gone.
func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill: %v", err)
	}
	<-c.done
}

// sdkClient is an SDK client for url. Writers use it without retries (a retried write could be stored
// twice; the test wants each attempt once); readers keep the SDK's retryer, which also absorbs the
// SDK's known "use of closed network connection" race on reused connections (aws-sdk-go-v2#2737).
func sdkClient(url string, retries bool) *kinesis.Client {
	return kinesis.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")},
		func(o *kinesis.Options) {
			o.BaseEndpoint = aws.String(url)
			if !retries {
				o.Retryer = aws.NopRetryer{}
			}
		})
}

// readAll reads every shard of a stream, parents before children, and returns per partition key the
// record counters in read order. It also checks that sequence numbers increase within each shard.
func readAll(t *testing.T, c *kinesis.Client, name string) map[string][]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ls, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(name)})
	if err != nil {
		t.Fatalf("ListShards: %v", err)
	}
	done := map[string]bool{}
	known := map[string]bool{}
	for _, s := range ls.Shards {
		known[*s.ShardId] = true
	}
	perKey := map[string][]int{}
	for len(done) < len(ls.Shards) {
		for _, s := range ls.Shards {
			if done[*s.ShardId] {
				continue
			}
			if p := s.ParentShardId; p != nil && known[*p] && !done[*p] {
				continue
			}
			if p := s.AdjacentParentShardId; p != nil && known[*p] && !done[*p] {
				continue
			}
			it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(name), ShardId: s.ShardId,
				ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
			if err != nil {
				t.Fatalf("GetShardIterator: %v", err)
			}
			prev := ""
			for iter := it.ShardIterator; iter != nil; {
				res, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
				if err != nil {
					t.Fatalf("GetRecords: %v", err)
				}
				for _, r := range res.Records {
					if prev != "" && *r.SequenceNumber <= prev {
						t.Fatalf("%s: sequence numbers not increasing: %s after %s", *s.ShardId, *r.SequenceNumber, prev)
					}
					prev = *r.SequenceNumber
					n, err := strconv.Atoi(strings.TrimPrefix(string(r.Data), *r.PartitionKey+"/"))
					if err != nil {
						t.Fatalf("bad record %q", r.Data)
					}
					perKey[*r.PartitionKey] = append(perKey[*r.PartitionKey], n)
				}
				if len(res.Records) == 0 && res.NextShardIterator != nil {
					break
				}
				iter = res.NextShardIterator
			}
			done[*s.ShardId] = true
		}
	}
	return perKey
}

// TestCrashRecovery kills streamd with SIGKILL at random moments while writers are busy, restarts it
// on the same data directory and checks that every acknowledged record is still there, in order.
func TestCrashRecovery(t *testing.T) {
	bin := buildStreamd(t)
	dir := t.TempDir()
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	const writers = 4
	var mu sync.Mutex
	acked := map[string][]int{} // per key, acknowledged counters in order
	next := make([]int, writers)

	verify := func(c *kinesis.Client) {
		got := readAll(t, c, "crash")
		mu.Lock()
		defer mu.Unlock()
		total := 0
		for key, want := range acked {
			seen := got[key]
			for i := 1; i < len(seen); i++ {
				if seen[i] <= seen[i-1] {
					t.Fatalf("%s: order broken: %v", key, seen)
				}
			}
			// Every acknowledged counter must be present (unacknowledged ones may or may not be).
			j := 0
			for _, n := range want {
				for j < len(seen) && seen[j] < n {
					j++
				}
				if j == len(seen) || seen[j] != n {
					t.Fatalf("%s: acknowledged record %d lost (read %d records)", key, n, len(seen))
				}
			}
			total += len(want)
		}
		t.Logf("verified %d acknowledged records", total)
	}

	const rounds = 7
	for round := range rounds {
		p := startStreamd(t, bin, dir)
		c := sdkClient(p.url, false)
		ctx := context.Background()
		if round == 0 {
			if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("crash"), ShardCount: aws.Int32(2)}); err != nil {
				t.Fatalf("CreateStream: %v", err)
			}
		} else {
			verify(sdkClient(p.url, true))
		}
		if round == 3 {
			if _, err := c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("crash"), ShardToSplit: aws.String("shardId-000000000000"),
				NewStartingHashKey: aws.String("85070591730234615865843651857942052864")}); err != nil {
				t.Fatalf("SplitShard: %v", err)
			}
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				key := fmt.Sprintf("key-%d", w)
				for {
					select {
					case <-stop:
						return
					default:
					}
					mu.Lock()
					n := next[w]
					next[w]++
					mu.Unlock()
					_, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("crash"), PartitionKey: aws.String(key),
						Data: []byte(fmt.Sprintf("%s/%d", key, n))})
					if err != nil {
						return // the server is gone
					}
					mu.Lock()
					acked[key] = append(acked[key], n)
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(50+rng.IntN(400)) * time.Millisecond)
		p.kill(t)
		close(stop)
		wg.Wait()
	}
	p := startStreamd(t, bin, dir)
	verify(sdkClient(p.url, true))
	mu.Lock()
	n := 0
	for _, v := range acked {
		n += len(v)
	}
	mu.Unlock()
	if n < 50 {
		t.Fatalf("only %d records acknowledged over %d rounds; the test proved little", n, rounds)
	}
	p.kill(t)
}
