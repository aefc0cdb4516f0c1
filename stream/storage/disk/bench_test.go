package disk

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/kinesis-network/portal/stream/storage"
)

// benchBatch is 100 records of 1 KiB.
func benchBatch() []storage.Record {
	rs := make([]storage.Record, 100)
	for i := range rs {
		rs[i] = storage.Record{Arrival: time.Now(), PartitionKey: fmt.Sprintf("partition-%d", i), Data: bytes.Repeat([]byte{byte(i)}, 1024)}
	}
	return rs
}

// BenchmarkAppend appends batches of 100 x 1 KiB records to one shard.
func BenchmarkAppend(b *testing.B) {
	for _, p := range []SyncPolicy{SyncAlways, SyncNever} {
		b.Run("Sync="+p.String(), func(b *testing.B) {
			bk := openT(b, b.TempDir(), Options{Sync: p})
			l := openLogT(b, bk, "s", "0")
			rs := benchBatch()
			b.SetBytes(100 * 1024)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := l.Append(rs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkAppendParallel appends single 1 KiB records to one shard from many goroutines under
// SyncAlways: the group commit shares each flush among them.
func BenchmarkAppendParallel(b *testing.B) {
	bk := openT(b, b.TempDir(), Options{})
	l := openLogT(b, bk, "s", "0")
	rs := benchBatch()[:1]
	b.SetBytes(1024)
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Append(rs); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(l.syncs.Load())/float64(b.N), "flushes/record")
}

// BenchmarkRead reads 100 records of 1 KiB at a time, sequentially, from a shard of 100,000.
func BenchmarkRead(b *testing.B) {
	bk := openT(b, b.TempDir(), Options{Sync: SyncNever})
	l := openLogT(b, bk, "s", "0")
	rs := benchBatch()
	const n = 100_000
	for range n / 100 {
		if _, err := l.Append(rs); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(100 * 1024)
	b.ReportAllocs()
	from := uint64(0)
	for b.Loop() {
		got, err := l.Read(from, 100, 10<<20)
		if err != nil || len(got) != 100 {
			b.Fatalf("Read(%d) = %d records, %v", from, len(got), err)
		}
		from = (from + 100) % n
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkSeekTime finds records by arrival time in a shard of 100,000.
func BenchmarkSeekTime(b *testing.B) {
	bk := openT(b, b.TempDir(), Options{Sync: SyncNever})
	l := openLogT(b, bk, "s", "0")
	rs := benchBatch()
	t0 := time.Unix(1_700_000_000, 0)
	const n = 100_000
	for i := range n / 100 {
		for j := range rs {
			rs[j].Arrival = t0.Add(time.Duration(i*100+j) * time.Millisecond)
		}
		if _, err := l.Append(rs); err != nil {
			b.Fatal(err)
		}
	}
	i := 0
	for b.Loop() {
		k := (i * 7919) % n
		got, err := l.SeekTime(t0.Add(time.Duration(k) * time.Millisecond))
		if err != nil || got != uint64(k) {
			b.Fatalf("SeekTime = %d, %v; want %d", got, err, k)
		}
		i++
	}
}
