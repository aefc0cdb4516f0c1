// Package storetest is the contract test suite every registry.Store implementation must pass. The
// in-memory store runs it in its own tests; the Redis store will run the very same suite.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"testing"
	"time"

	"github.com/kinesis-network/portal/registry"
)

// Factory returns a fresh, empty store built with opts. The suite closes it.
type Factory func(t *testing.T, opts registry.Options) registry.Store

// Clock is a settable clock for port-quarantine tests.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// Run runs the whole contract suite against stores made by newStore.
func Run(t *testing.T, newStore Factory) {
	open := func(t *testing.T, opts registry.Options) registry.Store {
		s := newStore(t, opts)
		t.Cleanup(func() { s.Close() })
		return s
	}
	t.Run("Tenants", func(t *testing.T) { t.Parallel(); testTenants(t, open(t, registry.Options{})) })
	t.Run("Tokens", func(t *testing.T) { t.Parallel(); testTokens(t, open(t, registry.Options{})) })
	t.Run("EndpointCRUD", func(t *testing.T) { t.Parallel(); testEndpointCRUD(t, open(t, registry.Options{})) })
	t.Run("TenantIsolation", func(t *testing.T) { t.Parallel(); testIsolation(t, open(t, registry.Options{})) })
	t.Run("NoSharedState", func(t *testing.T) { t.Parallel(); testNoSharedState(t, open(t, registry.Options{})) })
	t.Run("Ports", func(t *testing.T) {
		t.Parallel()
		c := &Clock{now: time.Unix(1_700_000_000, 0)}
		testPorts(t, open(t, registry.Options{PortMin: 30000, PortMax: 30002, PortQuarantine: time.Minute, Now: c.Now}), c)
	})
	t.Run("ConcurrentPorts", func(t *testing.T) {
		t.Parallel()
		testConcurrentPorts(t, open(t, registry.Options{PortMin: 31000, PortMax: 31049}))
	})
	t.Run("ConcurrentUpdates", func(t *testing.T) { t.Parallel(); testConcurrentUpdates(t, open(t, registry.Options{})) })
	t.Run("Watch", func(t *testing.T) { t.Parallel(); testWatch(t, open(t, registry.Options{})) })
	t.Run("WatchResync", func(t *testing.T) { t.Parallel(); testWatchResync(t, open(t, registry.Options{FeedHistory: 3})) })
	t.Run("Nodes", func(t *testing.T) { t.Parallel(); testNodes(t, open(t, registry.Options{})) })
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func httpsEndpoint(tenant, name string) *registry.Endpoint {
	return &registry.Endpoint{
		TenantID: tenant, Name: name, Type: registry.HTTPS, Zone: "z1", Region: "r1",
		Keys:      []registry.AccessKey{{Hash: registry.HashSecret(name + "-key")}},
		Instances: []registry.Instance{{ID: "in_1", Addr: "127.0.0.1:1"}},
		Firewall:  registry.Firewall{Deny: []string{"10.0.0.0/8"}},
	}
}

func testTenants(t *testing.T, s registry.Store) {
	c := ctx(t)
	must(t, s.CreateTenant(c, registry.Tenant{ID: "t2", Name: "two"}))
	must(t, s.CreateTenant(c, registry.Tenant{ID: "t1", Name: "one"}))
	if err := s.CreateTenant(c, registry.Tenant{ID: "t1"}); !errors.Is(err, registry.ErrConflict) {
		t.Fatalf("duplicate tenant: got %v, want ErrConflict", err)
	}
	got, err := s.GetTenant(c, "t1")
	must(t, err)
	if got.Name != "one" || got.CreatedAt.IsZero() {
		t.Fatalf("GetTenant = %+v", got)
	}
	if _, err := s.GetTenant(c, "nope"); !errors.Is(err, registry.ErrNotFound) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing tenant: %v", err)
	}
	list, err := s.ListTenants(c)
	must(t, err)
	if len(list) != 2 || list[0].ID != "t1" || list[1].ID != "t2" {
		t.Fatalf("ListTenants = %+v", list)
	}
}

func testTokens(t *testing.T, s registry.Store) {
	c := ctx(t)
	h := registry.HashSecret("secret-token")
	must(t, s.CreateToken(c, registry.APIToken{ID: "tok1", TenantID: "t1", Hash: h}))
	if err := s.CreateToken(c, registry.APIToken{ID: "tok2", TenantID: "t2", Hash: h}); !errors.Is(err, registry.ErrConflict) {
		t.Fatalf("duplicate hash: %v", err)
	}
	got, err := s.TokenByHash(c, h)
	must(t, err)
	if got.ID != "tok1" || got.TenantID != "t1" {
		t.Fatalf("TokenByHash = %+v", got)
	}
	if _, err := s.TokenByHash(c, registry.HashSecret("other")); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("unknown token: %v", err)
	}
	must(t, s.DeleteToken(c, "tok1"))
	if _, err := s.TokenByHash(c, h); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("deleted token still found: %v", err)
	}
	if err := s.DeleteToken(c, "tok1"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}

func testEndpointCRUD(t *testing.T, s registry.Store) {
	c := ctx(t)
	e, err := s.CreateEndpoint(c, httpsEndpoint("t1", "web"))
	must(t, err)
	if e.ID == "" || e.Version != 1 || e.CreatedAt.IsZero() || e.Port != 0 {
		t.Fatalf("created = %+v", e)
	}
	if _, err := s.CreateEndpoint(c, httpsEndpoint("t1", "web")); !errors.Is(err, registry.ErrConflict) {
		t.Fatalf("duplicate name in tenant: %v", err)
	}
	if _, err := s.CreateEndpoint(c, httpsEndpoint("t2", "web")); err != nil {
		t.Fatalf("same name in another tenant must work: %v", err)
	}
	got, err := s.GetEndpoint(c, "t1", e.ID)
	must(t, err)
	if got.Name != "web" || len(got.Keys) != 1 || len(got.Instances) != 1 || got.Firewall.Deny[0] != "10.0.0.0/8" {
		t.Fatalf("get = %+v", got)
	}
	up, err := s.UpdateEndpoint(c, "t1", e.ID, func(e *registry.Endpoint) error {
		e.Sticky.Enabled = true
		e.ID, e.TenantID, e.Type, e.Port = "hijack", "t2", registry.TCP, 99 // must be ignored
		return nil
	})
	must(t, err)
	if up.Version != 2 || !up.Sticky.Enabled || up.ID != e.ID || up.TenantID != "t1" || up.Type != registry.HTTPS || up.Port != 0 {
		t.Fatalf("update = %+v", up)
	}
	boom := errors.New("boom")
	if _, err := s.UpdateEndpoint(c, "t1", e.ID, func(*registry.Endpoint) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("fn error not returned: %v", err)
	}
	if again, _ := s.GetEndpoint(c, "t1", e.ID); again.Version != 2 {
		t.Fatalf("aborted update was stored: version %d", again.Version)
	}
	list, err := s.ListEndpoints(c, "t1")
	must(t, err)
	if len(list) != 1 || list[0].ID != e.ID {
		t.Fatalf("list = %+v", list)
	}
	all, err := s.ListEndpoints(c, "")
	must(t, err)
	if len(all) != 2 {
		t.Fatalf("list all = %d", len(all))
	}
	must(t, s.DeleteEndpoint(c, "t1", e.ID))
	if _, err := s.GetEndpoint(c, "t1", e.ID); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("deleted endpoint: %v", err)
	}
	if err := s.DeleteEndpoint(c, "t1", e.ID); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}

func testIsolation(t *testing.T, s registry.Store) {
	c := ctx(t)
	a, err := s.CreateEndpoint(c, httpsEndpoint("tA", "a"))
	must(t, err)
	if _, err := s.GetEndpoint(c, "tB", a.ID); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("tenant B read A's endpoint: %v", err)
	}
	if _, err := s.UpdateEndpoint(c, "tB", a.ID, func(e *registry.Endpoint) error { e.Name = "x"; return nil }); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("tenant B updated A's endpoint: %v", err)
	}
	if err := s.DeleteEndpoint(c, "tB", a.ID); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("tenant B deleted A's endpoint: %v", err)
	}
	if l, _ := s.ListEndpoints(c, "tB"); len(l) != 0 {
		t.Fatalf("tenant B lists %d endpoints", len(l))
	}
}

func testNoSharedState(t *testing.T, s registry.Store) {
	c := ctx(t)
	in := httpsEndpoint("t1", "x")
	e, err := s.CreateEndpoint(c, in)
	must(t, err)
	in.Firewall.Deny[0] = "changed"
	e.Instances[0].Addr = "changed"
	got, _ := s.GetEndpoint(c, "t1", e.ID)
	if got.Firewall.Deny[0] != "10.0.0.0/8" || got.Instances[0].Addr != "127.0.0.1:1" {
		t.Fatalf("store shares memory with callers: %+v", got)
	}
}

func tcpEndpoint(name string) *registry.Endpoint {
	return &registry.Endpoint{TenantID: "t1", Name: name, Type: registry.TCP, Zone: "z1", Region: "r1"}
}

func testPorts(t *testing.T, s registry.Store, clock *Clock) {
	c := ctx(t)
	var eps []*registry.Endpoint
	seen := map[int]bool{}
	for i := 0; i < 3; i++ {
		e, err := s.CreateEndpoint(c, tcpEndpoint(fmt.Sprint("tcp", i)))
		must(t, err)
		if e.Port < 30000 || e.Port > 30002 || seen[e.Port] {
			t.Fatalf("bad or duplicate port %d", e.Port)
		}
		seen[e.Port] = true
		eps = append(eps, e)
	}
	if _, err := s.CreateEndpoint(c, tcpEndpoint("full")); !errors.Is(err, registry.ErrNoPorts) {
		t.Fatalf("range exhausted: got %v, want ErrNoPorts", err)
	}
	// Another zone has its own ports.
	other := tcpEndpoint("otherzone")
	other.Zone = "z2"
	if _, err := s.CreateEndpoint(c, other); err != nil {
		t.Fatalf("other zone: %v", err)
	}
	must(t, s.DeleteEndpoint(c, "t1", eps[1].ID))
	if _, err := s.CreateEndpoint(c, tcpEndpoint("quarantined")); !errors.Is(err, registry.ErrNoPorts) {
		t.Fatalf("freed port reused during quarantine: %v", err)
	}
	clock.Advance(2 * time.Minute)
	e, err := s.CreateEndpoint(c, tcpEndpoint("after"))
	must(t, err)
	if e.Port != eps[1].Port {
		t.Fatalf("port after quarantine = %d, want %d", e.Port, eps[1].Port)
	}
}

func testConcurrentPorts(t *testing.T, s registry.Store) {
	c := ctx(t)
	var wg sync.WaitGroup
	ports := make(chan int, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			e, err := s.CreateEndpoint(c, tcpEndpoint(fmt.Sprint("c", i)))
			if err != nil {
				t.Error(err)
				return
			}
			ports <- e.Port
		}(i)
	}
	wg.Wait()
	close(ports)
	seen := map[int]bool{}
	for p := range ports {
		if seen[p] {
			t.Fatalf("port %d allocated twice", p)
		}
		seen[p] = true
	}
	if len(seen) != 50 {
		t.Fatalf("allocated %d ports, want 50", len(seen))
	}
}

func testConcurrentUpdates(t *testing.T, s registry.Store) {
	c := ctx(t)
	e, err := s.CreateEndpoint(c, httpsEndpoint("t1", "cu"))
	must(t, err)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := s.UpdateEndpoint(c, "t1", e.ID, func(e *registry.Endpoint) error {
				e.Instances = append(e.Instances, registry.Instance{ID: fmt.Sprint("in", i), Addr: "127.0.0.1:2"})
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	got, _ := s.GetEndpoint(c, "t1", e.ID)
	if len(got.Instances) != 21 || got.Version != 21 {
		t.Fatalf("lost updates: %d instances, version %d", len(got.Instances), got.Version)
	}
}

func next(t *testing.T, ch <-chan registry.Change) registry.Change {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatal("watch closed early")
		}
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no change delivered")
	}
	return registry.Change{}
}

func testWatch(t *testing.T, s registry.Store) {
	c := ctx(t)
	first, err := s.CreateEndpoint(c, httpsEndpoint("t1", "w0"))
	must(t, err)
	snap, err := s.Snapshot(c)
	must(t, err)
	if len(snap.Endpoints) != 1 || snap.Endpoints[0].ID != first.ID {
		t.Fatalf("snapshot = %+v", snap)
	}
	wctx, cancel := context.WithCancel(c)
	ch, errf, err := s.Watch(wctx, snap.Seq)
	must(t, err)
	e, err := s.CreateEndpoint(c, httpsEndpoint("t1", "w1"))
	must(t, err)
	_, err = s.UpdateEndpoint(c, "t1", e.ID, func(e *registry.Endpoint) error { e.Name = "w1b"; return nil })
	must(t, err)
	must(t, s.DeleteEndpoint(c, "t1", e.ID))
	c1, c2, c3 := next(t, ch), next(t, ch), next(t, ch)
	if c1.Kind != registry.Put || c1.Endpoint.Name != "w1" || c2.Endpoint.Name != "w1b" || c3.Kind != registry.Delete || c3.Endpoint.ID != e.ID {
		t.Fatalf("changes = %+v %+v %+v", c1, c2, c3)
	}
	if c1.Seq != snap.Seq+1 || c2.Seq != c1.Seq+1 || c3.Seq != c2.Seq+1 {
		t.Fatalf("seqs not consecutive: %d %d %d after %d", c1.Seq, c2.Seq, c3.Seq, snap.Seq)
	}
	// A second watcher from the start of the feed sees everything from there.
	ch2, _, err := s.Watch(c, c1.Seq-1)
	must(t, err)
	if got := next(t, ch2); got.Seq != c1.Seq {
		t.Fatalf("replay from %d got %d", c1.Seq-1, got.Seq)
	}
	cancel()
	for range ch {
	}
	if err := errf(); err != nil {
		t.Fatalf("watch ended by ctx reported %v", err)
	}
}

func testWatchResync(t *testing.T, s registry.Store) {
	c := ctx(t)
	for i := 0; i < 6; i++ {
		_, err := s.CreateEndpoint(c, httpsEndpoint("t1", fmt.Sprint("r", i)))
		must(t, err)
	}
	if _, _, err := s.Watch(c, 0); !errors.Is(err, registry.ErrResync) {
		t.Fatalf("watch from a trimmed seq: got %v, want ErrResync", err)
	}
	snap, err := s.Snapshot(c)
	must(t, err)
	if len(snap.Endpoints) != 6 {
		t.Fatalf("snapshot has %d endpoints", len(snap.Endpoints))
	}
	if _, _, err := s.Watch(c, snap.Seq); err != nil {
		t.Fatalf("watch from the snapshot: %v", err)
	}
}

func testNodes(t *testing.T, s registry.Store) {
	c := ctx(t)
	must(t, s.PutNode(c, registry.Node{ID: "n2", Kind: "dc", PublicIPs: []string{"127.0.0.2"}}))
	must(t, s.PutNode(c, registry.Node{ID: "n1", Kind: "global"}))
	must(t, s.PutNode(c, registry.Node{ID: "n2", Kind: "dc", PublicIPs: []string{"127.0.0.3"}}))
	l, err := s.ListNodes(c)
	must(t, err)
	if len(l) != 2 || l[0].ID != "n1" || l[1].PublicIPs[0] != "127.0.0.3" {
		t.Fatalf("nodes = %+v", l)
	}
}
