// Package routes keeps the portal's in-memory route table: every endpoint compiled into what the data
// plane needs (access-key hashes, instance pools, firewall policy, rate limiter, sticky tags), built
// from a registry snapshot and kept current by the registry's change feed. Tables are immutable
// versioned snapshots swapped atomically, so a change never disturbs requests in flight, and lookups
// do no I/O.
package routes

import (
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/kinesis-network/portal/firewall"
	"github.com/kinesis-network/portal/gateway/balance"
	"github.com/kinesis-network/portal/gateway/sticky"
	"github.com/kinesis-network/portal/registry"
)

// KeyHash is the SHA-256 of an access key.
type KeyHash [32]byte

// Route is one endpoint compiled for the data plane. Immutable; shared by successive tables while the
// endpoint is unchanged.
type Route struct {
	// Endpoint is the registry record the route was built from (do not modify).
	Endpoint *registry.Endpoint
	// Pool holds the endpoint's instances; counters survive rebuilds.
	Pool *balance.Pool
	// Firewall is the compiled source policy; nil allows all.
	Firewall *firewall.Policy
	// Limiter is the per-key token bucket; nil means unlimited.
	Limiter *rate.Limiter
	// StickyTTL is the sticky cookie lifetime; zero means sticky sessions are off.
	StickyTTL time.Duration

	tags map[sticky.Tag]*balance.Instance
}

// ByTag returns the instance a sticky cookie tag names, or nil.
func (r *Route) ByTag(t sticky.Tag) *balance.Instance { return r.tags[t] }

type keyEntry struct {
	route   *Route
	expires time.Time // zero: no expiry
}

// Table is an immutable route table.
type Table struct {
	// Seq is the registry change-feed position the table reflects.
	Seq   uint64
	byKey map[KeyHash]keyEntry
	byID  map[string]*Route
}

// Lookup returns the route for an access-key hash at now, or nil when the key is unknown, revoked or
// past its rotation grace period. It does no I/O.
func (t *Table) Lookup(h KeyHash, now time.Time) *Route {
	e, ok := t.byKey[h]
	if !ok || (!e.expires.IsZero() && !now.Before(e.expires)) {
		return nil
	}
	return e.route
}

// Get returns the route of an endpoint id, or nil.
func (t *Table) Get(id string) *Route { return t.byID[id] }

// Routes returns every route (unordered).
func (t *Table) Routes() []*Route {
	out := make([]*Route, 0, len(t.byID))
	for _, r := range t.byID {
		out = append(out, r)
	}
	return out
}

// Options configure a Cache.
type Options struct {
	// Logger receives resync and build problems. Nil: slog.Default().
	Logger *slog.Logger
	// Sticky derives instance tags; required for sticky sessions.
	Sticky *sticky.Codec
	// Dialer opens connections to direct instances. Nil: a plain net.Dialer.
	Dialer balance.Dialer
	// Now is the clock for pools. Nil: time.Now.
	Now func() time.Time
	// DefaultStickyTTL applies when an endpoint enables sticky sessions without a TTL. Zero: 1 hour.
	DefaultStickyTTL time.Duration
	// RetryBackoff is the wait before resyncing after a store failure. Zero: 1 s.
	RetryBackoff time.Duration
}

// Cache holds the current Table and keeps it in sync with a registry.Store.
type Cache struct {
	store registry.Store
	opts  Options
	cur   atomic.Pointer[Table]
	ready chan struct{}
	once  sync.Once

	mu        sync.Mutex
	listeners []func(*Table)
}

// New returns a cache over store; call Run to fill it. Until then Table returns an empty table.
func New(store registry.Store, opts Options) *Cache {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.DefaultStickyTTL == 0 {
		opts.DefaultStickyTTL = time.Hour
	}
	if opts.RetryBackoff == 0 {
		opts.RetryBackoff = time.Second
	}
	c := &Cache{store: store, opts: opts, ready: make(chan struct{})}
	c.cur.Store(&Table{byKey: map[KeyHash]keyEntry{}, byID: map[string]*Route{}})
	return c
}

// Table returns the current table.
func (c *Cache) Table() *Table { return c.cur.Load() }

// Ready is closed once the first snapshot is loaded.
func (c *Cache) Ready() <-chan struct{} { return c.ready }

// OnSwap registers fn to be called (from the cache's goroutine) with every new table, and at once with
// the current one if the cache is ready.
func (c *Cache) OnSwap(fn func(*Table)) {
	c.mu.Lock()
	c.listeners = append(c.listeners, fn)
	c.mu.Unlock()
	select {
	case <-c.ready:
		fn(c.Table())
	default:
	}
}

func (c *Cache) swap(t *Table) {
	c.cur.Store(t)
	c.once.Do(func() { close(c.ready) })
	c.mu.Lock()
	ls := slices.Clone(c.listeners)
	c.mu.Unlock()
	for _, fn := range ls {
		fn(t)
	}
}

// Run loads a snapshot, then applies the change feed until ctx ends; on feed loss or store failure it
// keeps serving the last table and resyncs after a back-off. It returns ctx.Err().
func (c *Cache) Run(ctx context.Context) error {
	for {
		err := c.syncOnce(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.opts.Logger.Warn("route cache: resyncing", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(c.opts.RetryBackoff):
		}
	}
}

func (c *Cache) syncOnce(ctx context.Context) error {
	snap, err := c.store.Snapshot(ctx)
	if err != nil {
		return err
	}
	t := c.build(c.Table(), snap.Seq, snap.Endpoints)
	c.swap(t)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, errf, err := c.store.Watch(wctx, snap.Seq)
	if err != nil {
		return err
	}
	for ch0 := range ch {
		batch := []registry.Change{ch0}
		// Coalesce whatever else is already queued into one rebuild.
	drain:
		for {
			select {
			case more, ok := <-ch:
				if !ok {
					break drain
				}
				batch = append(batch, more)
			default:
				break drain
			}
		}
		c.swap(c.apply(c.Table(), batch))
	}
	if err := errf(); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.New("route cache: change feed closed")
}

// apply returns a new table with changes applied.
func (c *Cache) apply(old *Table, changes []registry.Change) *Table {
	eps := make(map[string]*registry.Endpoint, len(old.byID)+len(changes))
	for id, r := range old.byID {
		eps[id] = r.Endpoint
	}
	seq := old.Seq
	for _, ch := range changes {
		if ch.Seq <= seq {
			continue
		}
		seq = ch.Seq
		switch ch.Kind {
		case registry.Put:
			eps[ch.Endpoint.ID] = ch.Endpoint
		case registry.Delete:
			delete(eps, ch.Endpoint.ID)
		}
	}
	list := make([]*registry.Endpoint, 0, len(eps))
	for _, e := range eps {
		list = append(list, e)
	}
	return c.build(old, seq, list)
}

// build compiles endpoints into a table, reusing unchanged routes and carrying instance counters and
// limiters over from old.
func (c *Cache) build(old *Table, seq uint64, eps []*registry.Endpoint) *Table {
	t := &Table{Seq: seq, byKey: make(map[KeyHash]keyEntry, len(eps)), byID: make(map[string]*Route, len(eps))}
	for _, e := range eps {
		prev := old.byID[e.ID]
		var r *Route
		if prev != nil && prev.Endpoint.Version == e.Version {
			r = prev
		} else {
			r = c.compile(e, prev)
		}
		t.byID[e.ID] = r
		for _, k := range e.Keys {
			b, err := hex.DecodeString(k.Hash)
			if err != nil || len(b) != 32 {
				c.opts.Logger.Error("route cache: bad key hash in registry", "endpoint", e.ID)
				continue
			}
			var h KeyHash
			copy(h[:], b)
			ke := keyEntry{route: r}
			if k.ExpiresAt != nil {
				ke.expires = *k.ExpiresAt
			}
			t.byKey[h] = ke
		}
	}
	return t
}

// denyAll is the policy used when an endpoint's stored rules fail to compile: fail closed.
var denyAll, _ = firewall.Compile(firewall.Rules{Deny: []string{"0.0.0.0/0", "::/0"}})

func (c *Cache) compile(e *registry.Endpoint, prev *Route) *Route {
	r := &Route{Endpoint: e, tags: map[sticky.Tag]*balance.Instance{}}
	pol, err := firewall.Compile(firewall.Rules{Allow: e.Firewall.Allow, Deny: e.Firewall.Deny, DestAllow: e.Firewall.DestAllow, DestDeny: e.Firewall.DestDeny})
	if err != nil {
		c.opts.Logger.Error("route cache: firewall rules do not compile; denying all", "endpoint", e.ID, "err", err)
		pol = denyAll
	}
	r.Firewall = pol
	var oldPool *balance.Pool
	if prev != nil {
		oldPool = prev.Pool
	}
	ins := make([]*balance.Instance, 0, len(e.Instances))
	for _, in := range e.Instances {
		bi := balance.Carry(oldPool, in.ID, in.Addr, c.opts.Dialer)
		ins = append(ins, bi)
		if c.opts.Sticky != nil {
			r.tags[c.opts.Sticky.TagFor(e.ID, in.ID)] = bi
		}
	}
	pol2, _ := balance.ParsePolicy(e.Balance)
	r.Pool = balance.NewPool(pol2, ins, c.opts.Now)
	if e.RateLimit.RPS > 0 {
		burst := e.RateLimit.Burst
		if burst <= 0 {
			burst = max(1, int(e.RateLimit.RPS+0.999))
		}
		if prev != nil && prev.Limiter != nil && prev.Limiter.Limit() == rate.Limit(e.RateLimit.RPS) && prev.Limiter.Burst() == burst {
			r.Limiter = prev.Limiter
		} else {
			r.Limiter = rate.NewLimiter(rate.Limit(e.RateLimit.RPS), burst)
		}
	}
	if e.Sticky.Enabled {
		r.StickyTTL = time.Duration(e.Sticky.TTLSeconds) * time.Second
		if r.StickyTTL <= 0 {
			r.StickyTTL = c.opts.DefaultStickyTTL
		}
	}
	return r
}
