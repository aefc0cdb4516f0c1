// Package bench holds the project's benchmarks and the load tools they use. This file has the TCP
// pieces shared by tcp_bench_test.go and the tcpload tool: an echo and a bulk-source backend, an L4
// proxy configured like a portal TCP endpoint, and the three client workloads (connection rate,
// bulk throughput, idle connections).
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kinesis-network/portal/gateway/balance"
	"github.com/kinesis-network/portal/gateway/l4"
)

// EchoMsgLen is the size of the small echo round trip of the connection-rate workload.
const EchoMsgLen = 32

// Backend is the benchmark's workload: an echo listener and a bulk-source listener that writes
// without end. Both serve each connection on one goroutine with a small buffer (no splice), so an
// idle connection costs a backend what a minimal Go server pays.
type Backend struct {
	Echo, Source net.Listener
	wg           sync.WaitGroup
	mu           sync.Mutex
	conns        map[net.Conn]struct{}
}

// StartBackend listens on two loopback ports.
func StartBackend() (*Backend, error) {
	e, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.Close()
		return nil, err
	}
	b := &Backend{Echo: e, Source: s, conns: map[net.Conn]struct{}{}}
	b.serve(e, echoConn)
	b.serve(s, sourceConn)
	return b, nil
}

func (b *Backend) serve(ln net.Listener, fn func(net.Conn)) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns[c] = struct{}{}
			b.mu.Unlock()
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				fn(c)
				c.Close()
				b.mu.Lock()
				delete(b.conns, c)
				b.mu.Unlock()
			}()
		}
	}()
}

// Conns returns the number of open backend connections.
func (b *Backend) Conns() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns)
}

// Close stops both listeners and every connection, and waits.
func (b *Backend) Close() {
	b.Echo.Close()
	b.Source.Close()
	b.mu.Lock()
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

func echoConn(c net.Conn) {
	var buf [512]byte
	for {
		n, err := c.Read(buf[:])
		if n > 0 {
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

var sourceData = make([]byte, 256<<10)

func sourceConn(c net.Conn) {
	for {
		if _, err := c.Write(sourceData); err != nil {
			return
		}
	}
}

// Proxy is an l4.Server with two plain endpoints in front of a Backend, configured as the portal
// configures a TCP endpoint (P2C pool, default timeouts).
type Proxy struct {
	Server       *l4.Server
	Echo, Source string // listen addresses
}

// StartProxy starts the engine in front of echoAddr and sourceAddr.
func StartProxy(echoAddr, sourceAddr string) (*Proxy, error) {
	s := l4.New(l4.Options{})
	p := &Proxy{Server: s}
	for _, ep := range []struct {
		id, backend string
		out         *string
	}{{"echo", echoAddr, &p.Echo}, {"source", sourceAddr, &p.Source}} {
		pool := balance.NewPool(balance.P2C, []*balance.Instance{balance.NewInstance(ep.id+"-1", ep.backend, nil)}, nil)
		a, err := s.Set("127.0.0.1:0", &l4.EndpointConfig{ID: ep.id, Pool: pool})
		if err != nil {
			s.Close()
			return nil, err
		}
		*ep.out = a.String()
	}
	return p, nil
}

// Close closes the engine.
func (p *Proxy) Close() { p.Server.Close() }

// dialer retries briefly on EADDRNOTAVAIL, which a connection-rate test can hit while loopback
// ephemeral ports sit in TIME_WAIT.
func dial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil || !errors.Is(err, syscall.EADDRNOTAVAIL) || ctx.Err() != nil {
			return c, err
		}
		time.Sleep(time.Millisecond)
	}
}

// EchoOnce opens a connection to an echo address, does one EchoMsgLen round trip and closes it.
func EchoOnce(ctx context.Context, addr string) error {
	c, err := dial(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	return echoRoundTrip(c)
}

var echoMsg = []byte("0123456789abcdef0123456789ABCDEF")[:EchoMsgLen]

func echoRoundTrip(c net.Conn) error {
	if _, err := c.Write(echoMsg); err != nil {
		return err
	}
	var buf [EchoMsgLen]byte
	if _, err := io.ReadFull(c, buf[:]); err != nil {
		return err
	}
	if string(buf[:]) != string(echoMsg) {
		return fmt.Errorf("echo mismatch: %q", buf[:])
	}
	return nil
}

// ConnectRate runs workers goroutines that each repeat EchoOnce against addr for d, and returns
// completed connections per second.
func ConnectRate(addr string, workers int, d time.Duration) (float64, error) {
	var n atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := EchoOnce(ctx, addr)
				cancel()
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return 0, fmt.Errorf("connect rate: %w", err)
	}
	return float64(n.Load()) / time.Since(start).Seconds(), nil
}

// Bulk reads from parallel connections to a source address for d and returns bytes per second.
func Bulk(addr string, parallel int, d time.Duration) (float64, error) {
	conns := make([]net.Conn, parallel)
	for i := range conns {
		c, err := dial(context.Background(), addr)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		conns[i] = c
	}
	var total atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	start := time.Now()
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(deadline)
			buf := make([]byte, 256<<10)
			for {
				n, err := c.Read(buf)
				total.Add(int64(n))
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	return float64(total.Load()) / time.Since(start).Seconds(), nil
}

// OpenIdle opens n connections to an echo address with up to 64 dials in flight, does one round
// trip on each (so a proxied one is connected end to end) and returns them open.
func OpenIdle(addr string, n int) ([]net.Conn, error) {
	conns := make([]net.Conn, n)
	errc := make(chan error, 1)
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i := range conns {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			c, err := dial(context.Background(), addr)
			if err == nil {
				if err = echoRoundTrip(c); err != nil {
					c.Close()
				}
			}
			if err != nil {
				select {
				case errc <- err:
				default:
				}
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		CloseAll(conns)
		return nil, fmt.Errorf("open idle connections: %w", err)
	default:
	}
	return conns, nil
}

// CloseAll closes every non-nil connection.
func CloseAll(conns []net.Conn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

// MemStats is the part of a process's memory an idle connection grows.
type MemStats struct {
	// Go is heap in use plus goroutine stacks, after a GC, in bytes.
	Go uint64 `json:"go"`
	// RSS is the resident set size from /proc/self/status, in bytes (0 where unavailable).
	RSS uint64 `json:"rss"`
	// Goroutines is runtime.NumGoroutine.
	Goroutines int `json:"goroutines"`
}

// ReadMem collects garbage twice and returns the current MemStats.
func ReadMem() MemStats {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return MemStats{Go: m.HeapInuse + m.StackInuse, RSS: rss(), Goroutines: runtime.NumGoroutine()}
}

// rss reads VmRSS from /proc/self/status; 0 when unavailable (not Linux).
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
