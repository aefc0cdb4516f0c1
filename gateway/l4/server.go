// Package l4 is the reusable TCP (layer 4) engine behind the portal's domain:port endpoints and, in
// the node agent, direct IP:port endpoints. The caller only configures it: Set opens a listener for
// an endpoint or swaps its configuration in place, Remove drains it, Serve runs an endpoint on a
// listener the caller owns.
//
// Every accepted connection goes through one pipeline:
//
//	accept → firewall (source and local address, before any byte is read; denied → close or RST)
//	→ per-endpoint and per-source-IP connection limits
//	→ TLS per mode: plain, tls, tls+plain (first-byte sniff), mtls, passthrough (SNI logged)
//	→ pick an instance (P2C least connections, or rendezvous affinity on the client IP)
//	→ dial with ConnectTimeout; a failed dial ejects the instance and retries another
//	→ optional PROXY protocol v2 header (with the mTLS client CN in an SSL TLV)
//	→ copy both directions with half-close and an idle timeout
//	→ close both sides → one access-log record and metrics
//
// Copying uses splice(2) between TCP sockets on Linux and buffers otherwise (TLS, or a non-TCP
// instance dialer). Before each burst the engine waits for the source socket to become readable
// without holding a pipe or a buffer (Go's own splice path parks holding a pipe, two descriptors per
// direction), so an idle plain connection costs two sockets and two parked goroutines, and every
// burst refreshes the activity stamp the idle sweep reads. Directions that must block in Read (a TLS
// client) idle on a 2 KiB buffer and borrow a pooled 32 KiB one while busy.
package l4

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kinesis-network/portal/gateway/balance"
)

// ErrServerClosed is returned by Set and Serve after Close. It wraps net.ErrClosed.
var ErrServerClosed = fmt.Errorf("l4: server closed: %w", net.ErrClosed)

// Server runs TCP endpoints. Create it with New; it is safe for concurrent use. Close it when done.
type Server struct {
	log        *slog.Logger
	reg        prometheus.Registerer
	m          *metrics
	drain      time.Duration
	deny       DenyAction
	hsTimeout  time.Duration
	sniffTO    time.Duration
	ejectBase  time.Duration
	ejectMax   time.Duration
	retries    int
	ctx        context.Context // lifecycle: cancelled by Close (aborts dials)
	cancel     context.CancelFunc
	epoch      time.Time
	clock      atomic.Int64 // coarse monotonic clock (ns since epoch), advanced by the sweeper
	sweepEvery atomic.Int64 // ns
	wake       chan struct{}

	mu        sync.Mutex
	endpoints map[string]*endpoint
	draining  map[*endpoint]struct{}
	closed    bool
	closeDone chan struct{}
	wg        sync.WaitGroup
}

// endpoint is one listening endpoint: its current config, listener and live connections. A removed
// endpoint lives on (draining) until its last connection ends.
type endpoint struct {
	s       *Server
	id      string
	cfg     atomic.Pointer[config]
	m       *epMetrics
	reqAddr string // the address Set was called with

	mu      sync.Mutex
	ln      net.Listener
	owned   bool // ln came from Serve
	stopped bool // no longer accepting; new conns are aborted
	conns   map[*conn]struct{}
	perIP   map[netip.Addr]int
	empty   chan struct{} // closed once stopped and without connections
}

// New returns a Server with no endpoints.
func New(opts Options) *Server {
	s := &Server{
		log:       opts.Logger,
		reg:       opts.Registerer,
		m:         newMetrics(),
		drain:     opts.DrainPeriod,
		deny:      opts.DenyAction,
		hsTimeout: opts.TLSHandshakeTimeout,
		sniffTO:   opts.SniffTimeout,
		ejectBase: opts.EjectBase,
		ejectMax:  opts.EjectMax,
		retries:   opts.ConnectRetries,
		epoch:     time.Now(),
		wake:      make(chan struct{}, 1),
		endpoints: map[string]*endpoint{},
		draining:  map[*endpoint]struct{}{},
		closeDone: make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.drain == 0 {
		s.drain = DefaultDrainPeriod
	}
	if s.hsTimeout <= 0 {
		s.hsTimeout = DefaultTLSHandshakeTimeout
	}
	if s.sniffTO <= 0 {
		s.sniffTO = DefaultSniffTimeout
	}
	if s.retries == 0 {
		s.retries = DefaultConnectRetries
	} else if s.retries < 0 {
		s.retries = 0
	}
	if s.reg != nil {
		for _, c := range s.m.collectors() {
			if err := s.reg.Register(c); err != nil {
				s.log.Warn("l4: register metrics", "error", err)
			}
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.sweepEvery.Store(int64(time.Second))
	s.wg.Add(1)
	go s.sweep()
	return s
}

// Set opens a listener on addr for a new endpoint cfg.ID, or updates an existing one: when addr is
// empty or names the endpoint's current listener, the new configuration is swapped in atomically
// (new connections use it — this toggles TLS, mTLS or the firewall without a restart — and existing
// ones keep theirs); otherwise a listener is opened on addr first and the old one closed, existing
// connections untouched. It returns the bound address (useful with port 0). An endpoint run by
// Serve cannot move: Set returns an error for another address.
func (s *Server) Set(addr string, cfg *EndpointConfig) (net.Addr, error) {
	c, err := newConfig(cfg)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrServerClosed
	}
	ep := s.endpoints[c.ID]
	if ep != nil {
		ep.mu.Lock()
		ln, owned := ep.ln, ep.owned
		ep.mu.Unlock()
		if addr == "" || addr == ep.reqAddr || addr == ln.Addr().String() {
			ep.cfg.Store(c)
			s.mu.Unlock()
			s.retune()
			return ln.Addr(), nil
		}
		if owned {
			s.mu.Unlock()
			return nil, fmt.Errorf("l4: endpoint %s is served on the caller's listener %s; cannot move it to %s", c.ID, ln.Addr(), addr)
		}
	} else if addr == "" {
		s.mu.Unlock()
		return nil, fmt.Errorf("l4: endpoint %s: listen address is required", c.ID)
	}
	// Listening under s.mu keeps Set calls for one id ordered; it does not block connections.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("l4: endpoint %s: listen on %s: %w", c.ID, addr, err)
	}
	if ep == nil {
		ep = s.newEndpoint(c, addr, ln, false)
		s.endpoints[c.ID] = ep
	} else {
		ep.cfg.Store(c)
		ep.mu.Lock()
		old := ep.ln
		ep.ln, ep.reqAddr = ln, addr
		ep.mu.Unlock()
		old.Close()
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.acceptLoop(ep, ln)
	}()
	s.mu.Unlock()
	s.retune()
	return ln.Addr(), nil
}

func (s *Server) newEndpoint(c *config, addr string, ln net.Listener, owned bool) *endpoint {
	ep := &endpoint{s: s, id: c.ID, m: s.m.endpoint(c.ID), reqAddr: addr, ln: ln, owned: owned,
		conns: map[*conn]struct{}{}, perIP: map[netip.Addr]int{}, empty: make(chan struct{})}
	ep.cfg.Store(c)
	return ep
}

// Serve runs endpoint cfg.ID on ln, a listener the caller created (the node agent listens on
// specific local addresses itself). It blocks until ln fails, the endpoint is removed or the Server
// is closed, and returns nil in the latter two cases. Serve owns ln from then on and closes it. Set
// with an empty address or ln's address updates the configuration; Remove drains as usual.
func (s *Server) Serve(ln net.Listener, cfg *EndpointConfig) error {
	c, err := newConfig(cfg)
	if err != nil {
		ln.Close()
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	if _, ok := s.endpoints[c.ID]; ok {
		s.mu.Unlock()
		ln.Close()
		return fmt.Errorf("l4: endpoint %s already exists", c.ID)
	}
	ep := s.newEndpoint(c, ln.Addr().String(), ln, true)
	s.endpoints[c.ID] = ep
	s.wg.Add(1) // the accept loop runs on the caller's goroutine but counts as ours
	s.mu.Unlock()
	s.retune()
	defer s.wg.Done()
	return s.acceptLoop(ep, ln)
}

// Addr returns the bound address of endpoint id, or nil.
func (s *Server) Addr(id string) net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ep := s.endpoints[id]; ep != nil {
		ep.mu.Lock()
		defer ep.mu.Unlock()
		return ep.ln.Addr()
	}
	return nil
}

// Remove stops endpoint id from accepting at once (its listener is closed) and lets its existing
// connections run for DrainPeriod, closing those still open then with reason "drained". It does not
// wait. Removing an unknown id does nothing.
func (s *Server) Remove(id string) {
	s.mu.Lock()
	ep := s.endpoints[id]
	if ep == nil || s.closed {
		s.mu.Unlock()
		return
	}
	delete(s.endpoints, id)
	s.draining[ep] = struct{}{}
	s.wg.Add(1) // under s.mu, so it cannot race with Close's Wait
	s.mu.Unlock()
	ep.stop()
	go func() {
		defer s.wg.Done()
		if s.drain > 0 {
			t := time.NewTimer(s.drain)
			select {
			case <-ep.empty:
			case <-t.C:
			case <-s.closeDone:
			}
			t.Stop()
		}
		ep.abortAll("drained")
		<-ep.empty
		s.mu.Lock()
		delete(s.draining, ep)
		if s.endpoints[id] == nil && !s.hasDraining(id) {
			s.m.forget(id)
		}
		s.mu.Unlock()
	}()
	s.retune()
}

func (s *Server) hasDraining(id string) bool {
	for ep := range s.draining {
		if ep.id == id {
			return true
		}
	}
	return false
}

// Shutdown stops every listener, waits for the open connections to end until ctx is done, then
// closes what is left (reason "shutdown") and releases everything like Close. It returns ctx.Err()
// when it had to cut connections.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	eps := s.allEndpoints()
	s.mu.Unlock()
	var err error
	for _, ep := range eps {
		ep.stop()
	}
	for _, ep := range eps {
		select {
		case <-ep.empty:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	s.Close()
	return err
}

// Close closes every listener and connection at once (reason "shutdown"), unregisters the metrics
// and waits for every goroutine the Server started. It is idempotent; later calls wait too.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	eps := s.allEndpoints()
	s.mu.Unlock()
	close(s.closeDone)
	s.cancel()
	for _, ep := range eps {
		ep.stop()
		ep.abortAll("shutdown")
	}
	s.wg.Wait()
	if s.reg != nil {
		for _, c := range s.m.collectors() {
			s.reg.Unregister(c)
		}
	}
	return nil
}

func (s *Server) allEndpoints() []*endpoint {
	eps := make([]*endpoint, 0, len(s.endpoints)+len(s.draining))
	for _, ep := range s.endpoints {
		eps = append(eps, ep)
	}
	for ep := range s.draining {
		eps = append(eps, ep)
	}
	return eps
}

// acceptLoop accepts until ln is closed. Temporary errors (out of file descriptors) back off.
func (s *Server) acceptLoop(ep *endpoint, ln net.Listener) error {
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			ep.mu.Lock()
			current := ep.ln == ln && !ep.stopped
			ep.mu.Unlock()
			if !current || errors.Is(err, net.ErrClosed) && s.isClosed() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				if delay == 0 {
					delay = 5 * time.Millisecond
				} else if delay *= 2; delay > time.Second {
					delay = time.Second
				}
				s.log.Warn("l4: accept", "endpoint", ep.id, "error", err, "retry_in", delay.Seconds())
				select {
				case <-time.After(delay):
				case <-s.closeDone:
				}
				continue
			}
			ln.Close()
			ep.mu.Lock()
			if ep.ln == ln {
				ep.mu.Unlock()
				s.log.Error("l4: accept failed; endpoint stops accepting", "endpoint", ep.id, "error", err)
				return fmt.Errorf("l4: endpoint %s: accept: %w", ep.id, err)
			}
			ep.mu.Unlock()
			return nil
		}
		delay = 0
		s.wg.Add(1)
		go s.handle(ep, nc)
	}
}

func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// stop closes the listener and marks the endpoint as no longer accepting.
func (ep *endpoint) stop() {
	ep.mu.Lock()
	if ep.stopped {
		ep.mu.Unlock()
		return
	}
	ep.stopped = true
	ln := ep.ln
	ep.signalEmpty()
	ep.mu.Unlock()
	ln.Close()
}

// abortAll closes every connection of the endpoint with reason.
func (ep *endpoint) abortAll(reason string) {
	ep.mu.Lock()
	cs := make([]*conn, 0, len(ep.conns))
	for c := range ep.conns {
		cs = append(cs, c)
	}
	ep.mu.Unlock()
	for _, c := range cs {
		c.abort(reason, nil)
	}
}

// admit applies the connection limits and registers c. It returns the denial reason or "".
func (ep *endpoint) admit(c *conn) string {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if ep.stopped {
		return "drained"
	}
	if c.cfg.MaxConns > 0 && len(ep.conns) >= c.cfg.MaxConns {
		return "limit_endpoint"
	}
	if c.cfg.MaxConnsPerIP > 0 && ep.perIP[c.ip] >= c.cfg.MaxConnsPerIP {
		return "limit_source"
	}
	ep.conns[c] = struct{}{}
	ep.perIP[c.ip]++
	return ""
}

func (ep *endpoint) release(c *conn) {
	ep.mu.Lock()
	delete(ep.conns, c)
	if n := ep.perIP[c.ip] - 1; n > 0 {
		ep.perIP[c.ip] = n
	} else {
		delete(ep.perIP, c.ip)
	}
	if ep.stopped {
		ep.signalEmpty()
	}
	ep.mu.Unlock()
}

// signalEmpty closes ep.empty once no connection is left. ep.mu must be held.
func (ep *endpoint) signalEmpty() {
	if len(ep.conns) != 0 {
		return
	}
	select {
	case <-ep.empty:
	default:
		close(ep.empty)
	}
}

// retune sets the idle sweep period from the smallest idle timeout configured: a quarter of it,
// between 5 ms and 1 s.
func (s *Server) retune() {
	s.mu.Lock()
	every := time.Second
	for _, ep := range s.endpoints {
		if it := ep.cfg.Load().IdleTimeout; it > 0 && it/4 < every {
			every = it / 4
		}
	}
	s.mu.Unlock()
	every = max(every, 5*time.Millisecond)
	if time.Duration(s.sweepEvery.Swap(int64(every))) != every {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// now returns the coarse clock.
func (s *Server) now() int64 { return s.clock.Load() }

// sweep advances the coarse clock and closes idle connections.
func (s *Server) sweep() {
	defer s.wg.Done()
	t := time.NewTimer(time.Duration(s.sweepEvery.Load()))
	defer t.Stop()
	var idle []*conn
	for {
		select {
		case <-s.closeDone:
			return
		case <-s.wake:
		case <-t.C:
		}
		every := time.Duration(s.sweepEvery.Load())
		now := int64(time.Since(s.epoch))
		s.clock.Store(now)
		s.mu.Lock()
		eps := s.allEndpoints()
		s.mu.Unlock()
		idle = idle[:0]
		for _, ep := range eps {
			ep.mu.Lock()
			for c := range ep.conns {
				// A stamp may lag the real last activity by one period, hence the extra period.
				if last := c.last.Load(); last != 0 && c.idle > 0 && now-last > int64(c.idle+every) {
					idle = append(idle, c)
				}
			}
			ep.mu.Unlock()
		}
		for _, c := range idle {
			c.abort("idle_timeout", nil)
		}
		clear(idle)
		t.Reset(every)
	}
}

// pickInstance picks and dials an instance for c, retrying other instances after a failed dial.
func (s *Server) pickInstance(c *conn) (*balance.Instance, net.Conn, error) {
	pool := c.cfg.Pool
	if pool == nil {
		return nil, nil, errNoInstance
	}
	var exclude map[*balance.Instance]bool
	var lastErr error
	for attempt := 0; attempt <= s.retries; attempt++ {
		var in *balance.Instance
		if c.cfg.SourceAffinity {
			key := c.ip.As16()
			in = pool.PickAffinity(key[:], exclude)
		} else {
			in = pool.Pick(exclude)
		}
		if in == nil {
			break
		}
		in.Acquire()
		ctx, cancel := context.WithTimeout(s.ctx, c.cfg.ConnectTimeout)
		bc, err := in.Dial(ctx)
		cancel()
		if err == nil {
			in.Succeed()
			return in, bc, nil
		}
		in.Release()
		if s.ctx.Err() != nil {
			return nil, nil, fmt.Errorf("l4: dial instance %s: %w", in.ID, err)
		}
		d := in.Fail(pool.Now(), s.ejectBase, s.ejectMax)
		c.ep.m.connectErr.Inc()
		s.log.Warn("l4: instance dial failed; ejected", "endpoint", c.ep.id, "instance", in.ID, "addr", in.Addr,
			"error", err, "ejected_for", d.Seconds())
		lastErr = fmt.Errorf("l4: dial instance %s: %w", in.ID, err)
		if exclude == nil {
			exclude = make(map[*balance.Instance]bool, 2)
		}
		exclude[in] = true
	}
	if lastErr != nil {
		return nil, nil, fmt.Errorf("%w (last: %w)", errNoInstance, lastErr)
	}
	return nil, nil, errNoInstance
}

var errNoInstance = errors.New("l4: no healthy instance")
