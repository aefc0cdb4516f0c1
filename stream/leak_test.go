package stream

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// TestCloseLeavesNoGoroutines runs the engine's background loops and a subscription, closes the engine
// and checks that every goroutine it started is gone.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	e, err := newEngine(Config{DisableControlPlaneLimits: true, RetentionCheckInterval: 5 * time.Millisecond,
		AutoScale: AutoScaleConfig{Interval: 5 * time.Millisecond}, UpdateDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	name := "leak"
	if _, aerr := e.createStream(&createStreamInput{StreamName: &name}); aerr != nil {
		t.Fatal(aerr)
	}
	arn := e.streamARN(name)
	cname := "c"
	out, aerr := e.registerConsumer(&consumerInput{StreamARN: &arn, ConsumerName: &cname})
	if aerr != nil {
		t.Fatal(aerr)
	}
	consumerARN := out.(*registerConsumerOutput).Consumer.ConsumerARN
	shard, typ := "shardId-000000000000", "LATEST"
	sub, aerr := e.subscribe(&subscribeInput{ConsumerARN: &consumerARN, ShardId: &shard, StartingPosition: &startingPosition{Type: &typ}})
	if aerr != nil {
		t.Fatal(aerr)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sub.run(context.Background(), func(*subscribeEvent) error { return nil })
		sub.close()
	}()
	// A pending transition (UpdateDelay is an hour) must not keep anything alive either.
	hk := "1000"
	if _, aerr := e.splitShard(&splitShardInput{streamRef: streamRef{StreamName: &name}, ShardToSplit: &shard, NewStartingHashKey: &hk}); aerr != nil {
		t.Fatal(aerr)
	}
	time.Sleep(30 * time.Millisecond)
	if err := e.close(); err != nil {
		t.Fatal(err)
	}
	if err := e.close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("subscription still running after Close")
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before, %d after Close:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
