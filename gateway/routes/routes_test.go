package routes_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kinesis-network/portal/gateway/routes"
	"github.com/kinesis-network/portal/gateway/sticky"
	"github.com/kinesis-network/portal/registry"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs a cache over store until the test ends and waits for its first table.
func start(t *testing.T, store registry.Store, opts routes.Options) (*routes.Cache, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	}
	c := routes.New(store, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	})
	select {
	case <-c.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("cache never ready")
	}
	return c, logs
}

// waitFor polls cond until it holds or 5 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func hashOf(key string) routes.KeyHash { return sha256.Sum256([]byte(key)) }

func create(t *testing.T, s registry.Store, mut func(*registry.Endpoint)) (*registry.Endpoint, string) {
	t.Helper()
	key := registry.NewSecret()
	e := &registry.Endpoint{TenantID: "tn", Type: registry.HTTPS, Zone: "z", Region: "r", Name: registry.NewID("n"),
		Keys:      []registry.AccessKey{{Hash: registry.HashSecret(key)}},
		Instances: []registry.Instance{{ID: "in_a", Addr: "127.0.0.1:1001"}, {ID: "in_b", Addr: "127.0.0.1:1002"}}}
	if mut != nil {
		mut(e)
	}
	got, err := s.CreateEndpoint(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	return got, key
}

func update(t *testing.T, s registry.Store, id string, fn func(*registry.Endpoint)) *registry.Endpoint {
	t.Helper()
	e, err := s.UpdateEndpoint(context.Background(), "", id, func(e *registry.Endpoint) error { fn(e); return nil })
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func version(c *routes.Cache, id string) int64 {
	if r := c.Table().Get(id); r != nil {
		return r.Endpoint.Version
	}
	return 0
}

func TestLookupAndKeyExpiry(t *testing.T) {
	store := registry.NewMemory(registry.Options{})
	t.Cleanup(func() { store.Close() })
	now := time.Now()
	grace := now.Add(time.Hour)
	oldKey := registry.NewSecret()
	ep, key := create(t, store, func(e *registry.Endpoint) {
		e.Keys = append(e.Keys, registry.AccessKey{Hash: registry.HashSecret(oldKey), ExpiresAt: &grace},
			registry.AccessKey{Hash: "not-hex"}, registry.AccessKey{Hash: "abcd"})
	})
	c, logs := start(t, store, routes.Options{})
	tb := c.Table()
	tests := []struct {
		name string
		key  string
		at   time.Time
		want bool
	}{
		{"current key", key, now, true},
		{"current key far future", key, now.AddDate(10, 0, 0), true},
		{"old key in grace", oldKey, now, true},
		{"old key just before expiry", oldKey, grace.Add(-time.Nanosecond), true},
		{"old key at expiry", oldKey, grace, false},
		{"old key after expiry", oldKey, grace.Add(time.Hour), false},
		{"unknown key", registry.NewSecret(), now, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tb.Lookup(hashOf(tc.key), tc.at)
			if (r != nil) != tc.want {
				t.Fatalf("Lookup = %v, want found=%v", r, tc.want)
			}
			if r != nil && r.Endpoint.ID != ep.ID {
				t.Fatalf("found endpoint %s", r.Endpoint.ID)
			}
		})
	}
	if n := strings.Count(logs.String(), "bad key hash"); n != 2 {
		t.Fatalf("%d bad-hash log lines, want 2:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), key) {
		t.Fatal("log carries the key")
	}
}

func TestChangesApplied(t *testing.T) {
	store := registry.NewMemory(registry.Options{})
	t.Cleanup(func() { store.Close() })
	codec := sticky.NewCodec([]byte("secret-secret-secret-secret-0123"))
	c, _ := start(t, store, routes.Options{Sticky: codec, DefaultStickyTTL: 5 * time.Minute})
	var swaps atomic.Int64
	c.OnSwap(func(*routes.Table) { swaps.Add(1) })
	if swaps.Load() != 1 {
		t.Fatalf("OnSwap on a ready cache called %d times, want once at once", swaps.Load())
	}

	a, keyA := create(t, store, func(e *registry.Endpoint) { e.RateLimit = registry.RateLimit{RPS: 10} })
	b, keyB := create(t, store, nil)
	waitFor(t, "both endpoints", func() bool { return version(c, a.ID) == 1 && version(c, b.ID) == 1 })
	ra, rb := c.Table().Get(a.ID), c.Table().Get(b.ID)
	if ra.Limiter == nil || ra.Limiter.Burst() != 10 || rb.Limiter != nil {
		t.Fatalf("limiters: a %v b %v", ra.Limiter, rb.Limiter)
	}
	if ra.StickyTTL != 0 || ra.ByTag(codec.TagFor(a.ID, "in_a")) != ra.Pool.Get("in_a") {
		t.Fatal("sticky tags not built")
	}
	inA := ra.Pool.Get("in_a")
	inA.Acquire()
	inA.Fail(time.Now(), time.Minute, time.Minute)

	// A change to a keeps its instances' counters and its limiter, and leaves b's route untouched.
	update(t, store, a.ID, func(e *registry.Endpoint) {
		e.Name = "renamed"
		e.Sticky.Enabled = true
		e.Instances = append(e.Instances, registry.Instance{ID: "in_c", Addr: "127.0.0.1:1003"})
	})
	waitFor(t, "a v2", func() bool { return version(c, a.ID) == 2 })
	ra2, rb2 := c.Table().Get(a.ID), c.Table().Get(b.ID)
	if ra2 == ra || rb2 != rb {
		t.Fatal("changed route not rebuilt, or unchanged route rebuilt")
	}
	if got := ra2.Pool.Get("in_a"); got != inA || got.InFlight() != 1 || got.Healthy(time.Now()) {
		t.Fatal("instance counters lost in the rebuild")
	}
	if ra2.Limiter != ra.Limiter {
		t.Fatal("unchanged rate limit got a fresh bucket")
	}
	if ra2.StickyTTL != 5*time.Minute || ra2.Pool.Len() != 3 {
		t.Fatalf("sticky TTL %v, %d instances", ra2.StickyTTL, ra2.Pool.Len())
	}
	inA.Release()

	// A moved instance starts fresh; a changed limit gets a new bucket.
	update(t, store, a.ID, func(e *registry.Endpoint) {
		e.Instances[0].Addr = "127.0.0.1:2001"
		e.RateLimit = registry.RateLimit{RPS: 5, Burst: 2}
	})
	waitFor(t, "a v3", func() bool { return version(c, a.ID) == 3 })
	ra3 := c.Table().Get(a.ID)
	if ra3.Pool.Get("in_a") == inA || !ra3.Pool.Get("in_a").Healthy(time.Now()) {
		t.Fatal("moved instance kept the old counters")
	}
	if ra3.Limiter == ra.Limiter || ra3.Limiter.Burst() != 2 {
		t.Fatal("changed limit kept the old bucket")
	}

	// Key rotation and deletion.
	newKey := registry.NewSecret()
	update(t, store, b.ID, func(e *registry.Endpoint) { e.Keys = []registry.AccessKey{{Hash: registry.HashSecret(newKey)}} })
	waitFor(t, "b v2", func() bool { return version(c, b.ID) == 2 })
	if c.Table().Lookup(hashOf(keyB), time.Now()) != nil || c.Table().Lookup(hashOf(newKey), time.Now()) == nil {
		t.Fatal("rotated key not applied")
	}
	if err := store.DeleteEndpoint(context.Background(), "", a.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a deleted", func() bool { return c.Table().Get(a.ID) == nil })
	if c.Table().Lookup(hashOf(keyA), time.Now()) != nil || len(c.Table().Routes()) != 1 {
		t.Fatal("deleted endpoint still routed")
	}
	if swaps.Load() < 5 {
		t.Fatalf("%d swaps observed", swaps.Load())
	}
}

// TestOldTablesAreImmutable holds a table across changes: what it answers never changes.
func TestOldTablesAreImmutable(t *testing.T) {
	store := registry.NewMemory(registry.Options{})
	t.Cleanup(func() { store.Close() })
	c, _ := start(t, store, routes.Options{})
	ep, key := create(t, store, nil)
	waitFor(t, "endpoint", func() bool { return version(c, ep.ID) == 1 })
	old := c.Table()
	update(t, store, ep.ID, func(e *registry.Endpoint) { e.Keys = nil; e.Instances = nil })
	waitFor(t, "v2", func() bool { return version(c, ep.ID) == 2 })
	if r := old.Lookup(hashOf(key), time.Now()); r == nil || r.Pool.Len() != 2 || r.Endpoint.Version != 1 {
		t.Fatal("an old table changed under its reader")
	}
	if c.Table().Seq <= old.Seq {
		t.Fatalf("seq did not advance: %d -> %d", old.Seq, c.Table().Seq)
	}
}

func TestBadFirewallRulesFailClosed(t *testing.T) {
	store := registry.NewMemory(registry.Options{})
	t.Cleanup(func() { store.Close() })
	c, logs := start(t, store, routes.Options{})
	ep, _ := create(t, store, func(e *registry.Endpoint) { e.Firewall.Allow = []string{"not-a-cidr"} })
	waitFor(t, "endpoint", func() bool { return version(c, ep.ID) == 1 })
	fw := c.Table().Get(ep.ID).Firewall
	for _, a := range []string{"127.0.0.1", "10.1.2.3", "::1", "2001:db8::1"} {
		if fw.AllowSource(netip.MustParseAddr(a)) {
			t.Fatalf("%s allowed by an endpoint whose rules do not compile", a)
		}
	}
	if !strings.Contains(logs.String(), "denying all") {
		t.Fatal("compile failure not logged")
	}
}

// failingStore fails Snapshot while fail is set, and ends watches with an error on demand.
type failingStore struct {
	registry.Store
	fail      atomic.Bool
	snapshots atomic.Int64
	mu        sync.Mutex
	cancel    []context.CancelCauseFunc
}

var errBroken = errors.New("test: store broken")

func (s *failingStore) Snapshot(ctx context.Context) (registry.Snapshot, error) {
	s.snapshots.Add(1)
	if s.fail.Load() {
		return registry.Snapshot{}, errBroken
	}
	return s.Store.Snapshot(ctx)
}

func (s *failingStore) Watch(ctx context.Context, after uint64) (<-chan registry.Change, func() error, error) {
	wctx, cancel := context.WithCancelCause(ctx)
	s.mu.Lock()
	s.cancel = append(s.cancel, cancel)
	s.mu.Unlock()
	ch, errf, err := s.Store.Watch(wctx, after)
	if err != nil {
		return nil, nil, err
	}
	return ch, func() error {
		if c := context.Cause(wctx); c != nil && ctx.Err() == nil {
			return c
		}
		return errf()
	}, nil
}

func (s *failingStore) watches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.cancel)
}

// breakWatches ends every open watch as if the feed had been lost.
func (s *failingStore) breakWatches() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.cancel {
		c(registry.ErrResync)
	}
	s.cancel = nil
}

// TestResyncKeepsServing loses the change feed while the store is down: the cache keeps serving its
// last table and catches up once the store is back.
func TestResyncKeepsServing(t *testing.T) {
	mem := registry.NewMemory(registry.Options{})
	t.Cleanup(func() { mem.Close() })
	store := &failingStore{Store: mem}
	ep, key := create(t, store, nil)
	c, logs := start(t, store, routes.Options{RetryBackoff: 5 * time.Millisecond})
	if c.Table().Lookup(hashOf(key), time.Now()) == nil {
		t.Fatal("initial snapshot not loaded")
	}
	waitFor(t, "the cache to watch", func() bool { return store.watches() > 0 })
	store.fail.Store(true)
	store.breakWatches()
	waitFor(t, "failed resyncs", func() bool { return store.snapshots.Load() >= 3 })
	// Changes made meanwhile are not seen, but the old table keeps answering.
	update(t, store, ep.ID, func(e *registry.Endpoint) { e.Name = "changed while down" })
	if c.Table().Lookup(hashOf(key), time.Now()) == nil {
		t.Fatal("table dropped while the store is down")
	}
	store.fail.Store(false)
	waitFor(t, "resync", func() bool { return version(c, ep.ID) == 2 })
	if !strings.Contains(logs.String(), "resyncing") {
		t.Fatal("resync not logged")
	}
}
