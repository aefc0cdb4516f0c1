// Package balance picks backend instances for the portal's front doors: power-of-two-choices on
// in-flight work (requests for the HTTPS relay, connections for TCP endpoints), round-robin, and
// rendezvous hashing for source affinity, with passive health — an instance whose dial fails or times
// out is ejected for a back-off period that doubles on repeated failure.
//
// A Pool is immutable once built and safe for concurrent use; the per-instance counters live in
// *Instance values that a route-table rebuild carries over (see Carry), so swapping snapshots never
// resets in-flight counts or ejections.
package balance

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"time"
)

// Dialer opens a connection to an instance. Direct instances use a net.Dialer; tunnelled instances
// (behind a node agent) will provide their own. DialContext must honour ctx's deadline and cancellation.
type Dialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// Back-off bounds for ejections.
const (
	// DefaultEjectBase is the first ejection period after a failure.
	DefaultEjectBase = time.Second
	// DefaultEjectMax caps the doubling ejection period.
	DefaultEjectMax = 30 * time.Second
)

// Instance is one backend of an endpoint plus its live counters. The zero value is not usable; build
// one with NewInstance.
type Instance struct {
	// ID names the instance opaquely (a registry id); it appears in sticky cookies and logs.
	ID string
	// Addr is the host:port given to Dialer.
	Addr string
	// Dialer opens connections to Addr; nil means a plain net.Dialer.
	Dialer Dialer

	inflight     atomic.Int64
	failures     atomic.Int32
	ejectedUntil atomic.Int64 // unix nanos
}

// NewInstance returns an instance with zeroed counters.
func NewInstance(id, addr string, d Dialer) *Instance {
	return &Instance{ID: id, Addr: addr, Dialer: d}
}

var defaultDialer = &net.Dialer{KeepAlive: 30 * time.Second}

// Dial opens a connection to the instance with its Dialer.
func (in *Instance) Dial(ctx context.Context) (net.Conn, error) {
	d := in.Dialer
	if d == nil {
		d = defaultDialer
	}
	return d.DialContext(ctx, "tcp", in.Addr)
}

// Acquire counts one more request or connection in flight on the instance.
func (in *Instance) Acquire() { in.inflight.Add(1) }

// Release undoes one Acquire.
func (in *Instance) Release() { in.inflight.Add(-1) }

// InFlight returns the current in-flight count.
func (in *Instance) InFlight() int64 { return in.inflight.Load() }

// Healthy reports whether the instance is not ejected at now.
func (in *Instance) Healthy(now time.Time) bool { return now.UnixNano() >= in.ejectedUntil.Load() }

// EjectedUntil returns the end of the current ejection (zero time when never ejected).
func (in *Instance) EjectedUntil() time.Time {
	n := in.ejectedUntil.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Fail records a failed dial (or timeout) at now and ejects the instance for base·2^(n-1), capped at
// max, where n counts consecutive failures. Zero base or max take the package defaults.
func (in *Instance) Fail(now time.Time, base, max time.Duration) time.Duration {
	if base <= 0 {
		base = DefaultEjectBase
	}
	if max <= 0 {
		max = DefaultEjectMax
	}
	n := in.failures.Add(1)
	d := base
	for i := int32(1); i < n && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	in.ejectedUntil.Store(now.Add(d).UnixNano())
	return d
}

// Succeed records a successful dial: the consecutive-failure count is reset.
func (in *Instance) Succeed() {
	if in.failures.Load() != 0 {
		in.failures.Store(0)
	}
}

// Policy selects how a Pool picks among healthy instances.
type Policy uint8

const (
	// P2C picks two random healthy instances and takes the one with fewer in flight (the default).
	P2C Policy = iota
	// RoundRobin cycles through healthy instances.
	RoundRobin
	// SourceIP asks TCP endpoints to keep each client IP on one instance (rendezvous hashing via
	// PickAffinity); Pick treats it as P2C, so HTTPS endpoints balance per request.
	SourceIP
)

// ParsePolicy maps "p2c", "least_conn", "" to P2C, "round_robin"/"roundrobin" to RoundRobin and
// "source_ip" to SourceIP.
func ParsePolicy(s string) (Policy, bool) {
	switch s {
	case "", "p2c", "least_conn", "least-conn", "power-of-two":
		return P2C, true
	case "round_robin", "roundrobin", "round-robin", "rr":
		return RoundRobin, true
	case "source_ip", "source-ip":
		return SourceIP, true
	}
	return P2C, false
}

// String names the policy as the API spells it.
func (p Policy) String() string {
	switch p {
	case RoundRobin:
		return "round_robin"
	case SourceIP:
		return "source_ip"
	}
	return "p2c"
}

// Pool is an immutable set of instances with a picking policy. Safe for concurrent use.
type Pool struct {
	policy    Policy
	instances []*Instance
	byID      map[string]*Instance
	rr        atomic.Uint64
	// Now is the clock; nil means time.Now. Tests inject their own.
	now func() time.Time
}

// NewPool builds a pool. now may be nil (time.Now).
func NewPool(policy Policy, instances []*Instance, now func() time.Time) *Pool {
	if now == nil {
		now = time.Now
	}
	byID := make(map[string]*Instance, len(instances))
	for _, in := range instances {
		byID[in.ID] = in
	}
	return &Pool{policy: policy, instances: instances, byID: byID, now: now}
}

// Carry returns, for each (id, addr) wanted, the *Instance of old with the same ID and Addr when there is
// one (keeping its counters), or a fresh one. old may be nil.
func Carry(old *Pool, id, addr string, d Dialer) *Instance {
	if old != nil {
		if in, ok := old.byID[id]; ok && in.Addr == addr && in.Dialer == d {
			return in
		}
	}
	return NewInstance(id, addr, d)
}

// Policy returns the pool's picking policy.
func (p *Pool) Policy() Policy { return p.policy }

// Len returns the number of instances.
func (p *Pool) Len() int { return len(p.instances) }

// Instances returns the instances (do not modify the slice).
func (p *Pool) Instances() []*Instance { return p.instances }

// Get returns the instance with id, or nil.
func (p *Pool) Get(id string) *Instance { return p.byID[id] }

// Now returns the pool clock's time.
func (p *Pool) Now() time.Time { return p.now() }

// Pick chooses a healthy instance not in exclude, by the pool's policy. It returns nil when none is
// healthy. exclude may be nil.
func (p *Pool) Pick(exclude map[*Instance]bool) *Instance {
	n := len(p.instances)
	if n == 0 {
		return nil
	}
	now := p.now()
	ok := func(in *Instance) bool { return !exclude[in] && in.Healthy(now) }
	if n == 1 {
		if ok(p.instances[0]) {
			return p.instances[0]
		}
		return nil
	}
	if p.policy == RoundRobin {
		start := p.rr.Add(1) - 1
		for i := 0; i < n; i++ {
			in := p.instances[(start+uint64(i))%uint64(n)]
			if ok(in) {
				return in
			}
		}
		return nil
	}
	// Power of two choices: two distinct random candidates; fall back to a scan when both are unusable.
	i := rand.IntN(n)
	j := rand.IntN(n - 1)
	if j >= i {
		j++
	}
	a, b := p.instances[i], p.instances[j]
	switch oa, ob := ok(a), ok(b); {
	case oa && ob:
		if b.InFlight() < a.InFlight() {
			return b
		}
		return a
	case oa:
		return a
	case ob:
		return b
	}
	var best *Instance
	for _, in := range p.instances {
		if ok(in) && (best == nil || in.InFlight() < best.InFlight()) {
			best = in
		}
	}
	return best
}

// PickAffinity chooses by rendezvous (highest-random-weight) hashing of key over the healthy instances
// not in exclude, so the same key keeps landing on the same instance while it lives and only keys of a
// removed instance move. It returns nil when none is healthy.
func (p *Pool) PickAffinity(key []byte, exclude map[*Instance]bool) *Instance {
	now := p.now()
	var best *Instance
	var bestW uint64
	for _, in := range p.instances {
		if exclude[in] || !in.Healthy(now) {
			continue
		}
		h := sha256.New()
		h.Write(key)
		h.Write([]byte{0})
		h.Write([]byte(in.ID))
		var sum [32]byte
		w := binary.BigEndian.Uint64(h.Sum(sum[:0]))
		if best == nil || w > bestW {
			best, bestW = in, w
		}
	}
	return best
}
