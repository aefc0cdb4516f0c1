package disk_test

import (
	"fmt"
	"log"
	"os"
	"time"

	"github.com/kinesis-network/portal/stream/storage"
	"github.com/kinesis-network/portal/stream/storage/disk"
)

func ExampleOpen() {
	dir, err := os.MkdirTemp("", "streamd-data-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// The zero Options: every acknowledged record is on stable storage.
	b, err := disk.Open(dir, disk.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	l, err := b.OpenLog("arn:aws:kinesis:us-east-1:000000000000:stream/orders", "shardId-000000000000")
	if err != nil {
		log.Fatal(err)
	}
	now := time.Now()
	first, err := l.Append([]storage.Record{
		{Arrival: now, PartitionKey: "customer-1", Data: []byte("order 1")},
		{Arrival: now, PartitionKey: "customer-2", Data: []byte("order 2")},
	})
	if err != nil {
		log.Fatal(err)
	}
	recs, err := l.Read(first, 10, 1<<20)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range recs {
		fmt.Println(r.Index, r.PartitionKey, string(r.Data))
	}
	// Output:
	// 0 customer-1 order 1
	// 1 customer-2 order 2
}
