package balance

import (
	"fmt"
	"testing"
	"time"
)

func pool(policy Policy, n int, now func() time.Time) *Pool {
	var ins []*Instance
	for i := 0; i < n; i++ {
		ins = append(ins, NewInstance(fmt.Sprint("i", i), fmt.Sprint("127.0.0.1:", 1000+i), nil))
	}
	return NewPool(policy, ins, now)
}

func TestRoundRobinCycles(t *testing.T) {
	p := pool(RoundRobin, 3, nil)
	got := map[string]int{}
	for i := 0; i < 30; i++ {
		got[p.Pick(nil).ID]++
	}
	for _, id := range []string{"i0", "i1", "i2"} {
		if got[id] != 10 {
			t.Fatalf("round robin uneven: %v", got)
		}
	}
}

func TestP2CPrefersLessLoaded(t *testing.T) {
	p := pool(P2C, 2, nil)
	for i := 0; i < 5; i++ {
		p.Get("i0").Acquire()
	}
	for i := 0; i < 50; i++ {
		if in := p.Pick(nil); in.ID != "i1" {
			t.Fatalf("picked loaded instance %s", in.ID)
		}
	}
}

func TestP2CSpreads(t *testing.T) {
	p := pool(P2C, 4, nil)
	got := map[string]int{}
	for i := 0; i < 400; i++ {
		got[p.Pick(nil).ID]++
	}
	if len(got) != 4 {
		t.Fatalf("p2c did not use every instance: %v", got)
	}
}

func TestEjectionAndBackoff(t *testing.T) {
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	p := pool(P2C, 2, clock)
	bad := p.Get("i0")
	if d := bad.Fail(now, time.Second, 4*time.Second); d != time.Second {
		t.Fatalf("first ejection %v", d)
	}
	for i := 0; i < 50; i++ {
		if p.Pick(nil) != p.Get("i1") {
			t.Fatal("picked ejected instance")
		}
	}
	if d := bad.Fail(now, time.Second, 4*time.Second); d != 2*time.Second {
		t.Fatalf("second ejection %v", d)
	}
	bad.Fail(now, time.Second, 4*time.Second)
	if d := bad.Fail(now, time.Second, 4*time.Second); d != 4*time.Second {
		t.Fatalf("capped ejection %v", d)
	}
	now = now.Add(5 * time.Second)
	if !bad.Healthy(now) {
		t.Fatal("instance still ejected after back-off")
	}
	bad.Succeed()
	if d := bad.Fail(now, time.Second, 4*time.Second); d != time.Second {
		t.Fatalf("success did not reset back-off: %v", d)
	}
	p.Get("i1").Fail(now, time.Second, 0)
	if in := p.Pick(nil); in != nil {
		t.Fatalf("all ejected but picked %s", in.ID)
	}
}

func TestExclude(t *testing.T) {
	for _, pol := range []Policy{P2C, RoundRobin} {
		p := pool(pol, 3, nil)
		ex := map[*Instance]bool{p.Get("i0"): true, p.Get("i2"): true}
		for i := 0; i < 20; i++ {
			if in := p.Pick(ex); in.ID != "i1" {
				t.Fatalf("%v picked excluded %s", pol, in.ID)
			}
		}
		ex[p.Get("i1")] = true
		if p.Pick(ex) != nil {
			t.Fatalf("%v: everything excluded but picked", pol)
		}
	}
}

func TestAffinityStableAndMinimalMove(t *testing.T) {
	p := pool(P2C, 5, nil)
	first := map[string]string{}
	counts := map[string]int{}
	for i := 0; i < 500; i++ {
		k := fmt.Sprint("10.0.0.", i)
		in := p.PickAffinity([]byte(k), nil)
		first[k] = in.ID
		counts[in.ID]++
		if again := p.PickAffinity([]byte(k), nil); again != in {
			t.Fatal("affinity not stable")
		}
	}
	if len(counts) != 5 {
		t.Fatalf("affinity does not spread: %v", counts)
	}
	gone := p.Get("i3")
	ex := map[*Instance]bool{gone: true}
	for k, id := range first {
		in := p.PickAffinity([]byte(k), ex)
		if id != "i3" && in.ID != id {
			t.Fatalf("key %s moved from %s to %s though its instance lives", k, id, in.ID)
		}
	}
}

func TestCarryKeepsCounters(t *testing.T) {
	old := pool(P2C, 2, nil)
	old.Get("i0").Acquire()
	kept := Carry(old, "i0", "127.0.0.1:1000", nil)
	if kept != old.Get("i0") || kept.InFlight() != 1 {
		t.Fatal("carry lost the instance")
	}
	if fresh := Carry(old, "i0", "127.0.0.1:9999", nil); fresh == old.Get("i0") {
		t.Fatal("carry kept an instance whose address changed")
	}
}

func TestParsePolicy(t *testing.T) {
	for in, want := range map[string]Policy{"": P2C, "p2c": P2C, "round_robin": RoundRobin} {
		if got, ok := ParsePolicy(in); !ok || got != want {
			t.Fatalf("ParsePolicy(%q) = %v %v", in, got, ok)
		}
	}
	if _, ok := ParsePolicy("random"); ok {
		t.Fatal("accepted unknown policy")
	}
}
