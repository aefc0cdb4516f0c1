package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinesis-network/portal/stream"
	"github.com/kinesis-network/portal/stream/storage"
	"github.com/kinesis-network/portal/stream/storage/disk"
)

const (
	benchShards     = 64
	benchRecordSize = 1024
	benchBatch      = 500
)

// streamBackends are the storage backends the stream benchmarks run on.
var streamBackends = []struct {
	name string
	open func(b *testing.B) storage.Backend
}{
	{"memory", func(b *testing.B) storage.Backend { return storage.NewMemory() }},
	{"disk", func(b *testing.B) storage.Backend {
		be, err := disk.Open(b.TempDir(), disk.Options{}) // fsync before acknowledging
		if err != nil {
			b.Fatal(err)
		}
		return be
	}},
}

// benchStream starts a stream server with every limit lifted and a stream of benchShards shards, and
// returns an SDK client for it.
func benchStream(b *testing.B, be storage.Backend) *kinesis.Client {
	b.Helper()
	srv, err := stream.NewServer(stream.Config{Backend: be, DisableThrottling: true, DisableControlPlaneLimits: true,
		Limits: stream.Limits{ShardLimit: 10000}})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	b.Cleanup(func() {
		hs.Close()
		srv.Close()
		be.Close()
	})
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}
	c := kinesis.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")},
		func(o *kinesis.Options) {
			o.BaseEndpoint = aws.String(hs.URL)
			o.HTTPClient = &http.Client{Transport: tr}
		})
	if _, err := c.CreateStream(context.Background(), &kinesis.CreateStreamInput{StreamName: aws.String("bench"),
		ShardCount: aws.Int32(benchShards)}); err != nil {
		b.Fatal(err)
	}
	return c
}

func randomBatch(rnd *rand.Rand, n int) []types.PutRecordsRequestEntry {
	data := make([]byte, benchRecordSize)
	for i := range data {
		data[i] = byte(rnd.IntN(256))
	}
	out := make([]types.PutRecordsRequestEntry, n)
	for i := range out {
		out[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint(rnd.Uint64())), Data: data}
	}
	return out
}

// BenchmarkStreamPutRecords measures PutRecords throughput (500 records of 1 KiB per call) over 64
// shards from parallel SDK clients, in records/s and MiB/s.
func BenchmarkStreamPutRecords(b *testing.B) {
	for _, be := range streamBackends {
		b.Run(be.name, func(b *testing.B) {
			c := benchStream(b, be.open(b))
			var records atomic.Int64
			b.SetParallelism(4)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				rnd := rand.New(rand.NewPCG(rand.Uint64(), 0))
				batch := randomBatch(rnd, benchBatch)
				for pb.Next() {
					out, err := c.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String("bench"), Records: batch})
					if err != nil {
						b.Error(err)
						return
					}
					records.Add(int64(benchBatch - int(*out.FailedRecordCount)))
				}
			})
			el := time.Since(start).Seconds()
			n := float64(records.Load())
			b.ReportMetric(n/el, "records/s")
			b.ReportMetric(n*benchRecordSize/el/(1<<20), "MiB/s")
		})
	}
}

// BenchmarkStreamPutRecordLatency measures single-record PutRecord latency under 16 concurrent
// producers, reporting the 50th and 99th percentiles.
func BenchmarkStreamPutRecordLatency(b *testing.B) {
	for _, be := range streamBackends {
		b.Run(be.name, func(b *testing.B) {
			c := benchStream(b, be.open(b))
			var mu sync.Mutex
			lat := make([]time.Duration, 0, b.N)
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				rnd := rand.New(rand.NewPCG(rand.Uint64(), 0))
				data := make([]byte, benchRecordSize)
				var local []time.Duration
				for pb.Next() {
					t0 := time.Now()
					if _, err := c.PutRecord(context.Background(), &kinesis.PutRecordInput{StreamName: aws.String("bench"),
						PartitionKey: aws.String(fmt.Sprint(rnd.Uint64())), Data: data}); err != nil {
						b.Error(err)
						return
					}
					local = append(local, time.Since(t0))
				}
				mu.Lock()
				lat = append(lat, local...)
				mu.Unlock()
			})
			b.StopTimer()
			if len(lat) == 0 {
				return
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// BenchmarkStreamGetRecords measures GetRecords throughput over 64 shards filled with 1 KiB records,
// reading up to 10,000 records per call from parallel SDK clients, in records/s and MiB/s.
func BenchmarkStreamGetRecords(b *testing.B) {
	for _, be := range streamBackends {
		b.Run(be.name, func(b *testing.B) {
			c := benchStream(b, be.open(b))
			ctx := context.Background()
			rnd := rand.New(rand.NewPCG(1, 2))
			for range 40 { // 20,000 records, about 312 per shard
				if _, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("bench"), Records: randomBatch(rnd, benchBatch)}); err != nil {
					b.Fatal(err)
				}
			}
			iters := make([]*string, benchShards)
			for i := range iters {
				it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("bench"),
					ShardId: aws.String(fmt.Sprintf("shardId-%012d", i)), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
				if err != nil {
					b.Fatal(err)
				}
				iters[i] = it.ShardIterator
			}
			var next atomic.Int64
			var records, bytes atomic.Int64
			b.SetParallelism(4)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1) % benchShards
					out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iters[i]})
					if err != nil {
						b.Error(err)
						return
					}
					records.Add(int64(len(out.Records)))
					for _, r := range out.Records {
						bytes.Add(int64(len(r.Data)))
					}
				}
			})
			el := time.Since(start).Seconds()
			b.ReportMetric(float64(records.Load())/el, "records/s")
			b.ReportMetric(float64(bytes.Load())/el/(1<<20), "MiB/s")
		})
	}
}
