package l4

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kinesis-network/portal/firewall"
	"github.com/kinesis-network/portal/gateway/balance"
	"github.com/kinesis-network/portal/gateway/proxyproto"
)

func TestEchoThrough(t *testing.T) {
	h := newHarness(t, Options{})
	b := startBackend(t, "b1", echo)
	addr := h.set(t, &EndpointConfig{ID: "ep1", Pool: pool(b)})

	c := dial(t, addr)
	mustEcho(t, c, "hello")
	mustEcho(t, c, strings.Repeat("x", 300_000)) // several bursts
	c.Close()

	rec := h.log.next(t)
	want := logRec{"endpoint": "ep1", "instance": "b1", "reason": ReasonClientClosed, "bytes_in": "300005", "bytes_out": "300005"}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("access log %s = %q, want %q (record %v)", k, rec[k], v, rec)
		}
	}
	if rec["src"] != c.LocalAddr().String() || rec["duration"] == "" {
		t.Errorf("access log src/duration: %v", rec)
	}
	eventually(t, time.Second, "active gauge back to 0", func() bool {
		return h.counter(t, "portal_tcp_connections_active", "endpoint", "ep1") == 0
	})
	for name, want := range map[string]float64{
		"portal_tcp_connections_accepted_total":  1,
		"portal_tcp_receive_bytes_total":         300005,
		"portal_tcp_transmit_bytes_total":        300005,
		"portal_tcp_connection_duration_seconds": 1,
	} {
		if got := h.counter(t, name, "endpoint", "ep1"); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

func TestBalancingSpreads(t *testing.T) {
	h := newHarness(t, Options{})
	b1, b2 := startBackend(t, "b1", nameEcho), startBackend(t, "b2", nameEcho)
	addr := h.set(t, &EndpointConfig{ID: "ep", Pool: pool(b1, b2)})
	got := map[string]int{}
	for i := 0; i < 20; i++ { // held open: least-connections alternates
		got[readLine(t, dial(t, addr))]++
	}
	if got["b1"] != 10 || got["b2"] != 10 {
		t.Fatalf("20 concurrent connections spread %v, want 10/10", got)
	}
}

func TestSourceAffinity(t *testing.T) {
	h := newHarness(t, Options{})
	b1, b2, b3 := startBackend(t, "b1", nameEcho), startBackend(t, "b2", nameEcho), startBackend(t, "b3", nameEcho)
	addr := h.set(t, &EndpointConfig{ID: "ep", Pool: pool(b1, b2, b3), SourceAffinity: true})
	first := readLine(t, dial(t, addr))
	for i := 0; i < 10; i++ {
		if got := readLine(t, dial(t, addr)); got != first {
			t.Fatalf("connection %d from the same IP landed on %s, first on %s", i, got, first)
		}
	}
}

func TestFirewallDeniesBeforeRead(t *testing.T) {
	for _, tt := range []struct {
		name  string
		rules firewall.Rules
		reset bool
	}{
		{"source close", firewall.Rules{Deny: []string{"127.0.0.0/8"}}, false},
		{"source reset", firewall.Rules{Allow: []string{"10.0.0.0/8"}}, true},
		{"destination", firewall.Rules{DestDeny: []string{"127.0.0.1"}}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opts := Options{}
			if tt.reset {
				opts.DenyAction = DenyReset
			}
			h := newHarness(t, opts)
			b := startBackend(t, "b1", echo)
			pol, err := firewall.Compile(tt.rules)
			if err != nil {
				t.Fatal(err)
			}
			addr := h.set(t, &EndpointConfig{ID: "ep", Pool: pool(b), Firewall: pol})
			c, err := net.Dial("tcp", addr)
			if err == nil { // with a reset, the RST may already fail the dial
				defer c.Close()
				_, err = c.Write([]byte("first bytes that must never reach a backend"))
				if err == nil { // else the reset was reported to the write
					c.SetReadDeadline(time.Now().Add(5 * time.Second))
					_, err = c.Read(make([]byte, 10))
				}
			}
			if tt.reset && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("read after deny = %v, want a reset", err)
			}
			if err == nil || isTimeout(err) {
				t.Fatalf("read after deny = %v, want the connection closed", err)
			}
			if rec := h.log.next(t); rec["reason"] != ReasonDenied || rec["detail"] != "firewall" {
				t.Fatalf("access log %v", rec)
			}
			if n := b.accepted.Load(); n != 0 {
				t.Fatalf("backend accepted %d connections", n)
			}
			if got := h.counter(t, "portal_tcp_connections_denied_total", "endpoint", "ep", "reason", "firewall"); got != 1 {
				t.Fatalf("denied metric = %v", got)
			}
		})
	}
}

func TestTLSMode(t *testing.T) {
	p := getPKI(t)
	h := newHarness(t, Options{})
	b := startBackend(t, "b1", proxyEcho)
	addr := h.set(t, &EndpointConfig{ID: "ep", Pool: pool(b), TLSMode: ModeTLS, Certificate: p.getCert, ProxyProtocol: true})
	c, err := tls.Dial("tcp", addr, p.clientConfig(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mustEcho(t, c, "over tls")
	mustEcho(t, c, strings.Repeat("t", 200_000)) // grows to the big buffer and back
	mustEcho(t, c, "small again")
	hdr := <-b.headers
	ssl, ok := hdr.SSL()
	if !ok || ssl.Client != proxyproto.ClientSSL || ssl.CN != "" || ssl.Version != "TLSv1.3" || ssl.Cipher == "" {
		t.Fatalf("SSL TLV = %+v, %v", ssl, ok)
	}
	// A plain client gets no service.
	pc := dial(t, addr)
	pc.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	io.Copy(io.Discard, pc)
	c.Close()
	recs := []logRec{h.log.next(t), h.log.next(t)}
	reasons := recs[0]["reason"] + "," + recs[1]["reason"]
	if !strings.Contains(reasons, ReasonTLSError) {
		t.Fatalf("reasons %s, want one tls_error", reasons)
	}
}

func TestTLSPlainServesBoth(t *testing.T) {
	p := getPKI(t)
	h := newHarness(t, Options{SniffTimeout: scaled(100 * time.Millisecond)})
	b := startBackend(t, "b1", echo)
	banner := startBackend(t, "b2", func(_ *backend, c net.Conn) { io.WriteString(c, "220 ready\n"); io.Copy(c, c) })
	addr := h.set(t, &EndpointConfig{ID: "ep", Pool: pool(b), TLSMode: ModeTLSPlain, Certificate: p.getCert})
	addr2 := h.set(t, &EndpointConfig{ID: "ep2", Pool: pool(banner), TLSMode: ModeTLSPlain, Certificate: p.getCert})

	tc, err := tls.Dial("tcp", addr, p.clientConfig(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	mustEcho(t, tc, "tls client")
	mustEcho(t, dial(t, addr), "plain client")
	// A client that waits for the server to speak first is plain after SniffTimeout.
	if line := readLine(t, dial(t, addr2)); line != "220 ready" {
		t.Fatalf("banner %q", line)
	}
}

func TestMTLS(t *testing.T) {
	p := getPKI(t)
	h := newHarness(t, Options{})
	b := startBackend(t, "b1", proxyEcho)
	addr := h.set(t, &EndpointConfig{ID: "ep", Pool: pool(b), TLSMode: ModeMTLS, Certificate: p.getCert,
		ClientCAs: p.clientCAs, ProxyProtocol: true})

	// try returns the error of a TLS connection and one echo.
	try := func(cert *tls.Certificate) error {
		c, err := tls.Dial("tcp", addr, p.clientConfig(cert))
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = roundTrip(c, "ping") // with TLS 1.3 a rejected client learns it on its first read
		return err
	}
	if err := try(nil); err == nil {
		t.Fatal("client without a certificate was served")
	}
	if err := try(&p.wrongClient); err == nil {
		t.Fatal("client with a certificate of another CA was served")
	}
	for i := 0; i < 2; i++ {
		if rec := h.log.next(t); rec["reason"] != ReasonTLSError {
			t.Fatalf("rejected client logged %v", rec)
		}
	}
	if err := try(&p.client); err != nil {
		t.Fatalf("good client: %v", err)
	}
	hdr := <-b.headers
	ssl, ok := hdr.SSL()
	want := proxyproto.ClientSSL | proxyproto.ClientCertConn | proxyproto.ClientCertSess
	if !ok || ssl.CN != "alice" || ssl.Client != want || ssl.Verify != 0 {
		t.Fatalf("SSL TLV = %+v, %v", ssl, ok)
	}
	if rec := h.log.next(t); !strings.Contains(rec["client_subject"], "CN=alice") || rec["tls"] != "tls" {
		t.Fatalf("access log %v", rec)
	}
	if n := b.accepted.Load(); n != 1 {
		t.Fatalf("backend saw %d connections, want only the good client's", n)
	}
}

func TestPassthrough(t *testing.T) {
	p := getPKI(t)
	h := newHarness(t, Options{})
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{p.server}})
	if err != nil {
		t.Fatal(err)
	}
	b := serveBackend(t, "tlsbackend", ln, func(_ *backend, c net.Conn) {
		st := c.(*tls.Conn)
		if err := st.Handshake(); err != nil {
			return
		}
		fmt.Fprintf(c, "backend saw sni=%s\n", st.ConnectionState().ServerName)
		io.Copy(c, c)
	})
	addr := h.set(t, &EndpointConfig{ID: "ep", Pool: pool(b), TLSMode: ModePassthrough})
	cfg := p.clientConfig(nil)
	cfg.ServerName = "db.example.test"
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if line := readLine(t, c); line != "backend saw sni=db.example.test" {
		t.Fatalf("got %q", line)
	}
	mustEcho(t, c, "end to end")
	c.Close()
	if rec := h.log.next(t); rec["sni"] != "db.example.test" || rec["tls"] != "passthrough" {
		t.Fatalf("access log %v", rec)
	}
	// Non-TLS bytes are forwarded untouched too (the backend owns the session and rejects them).
	nc := dial(t, addr)
	nc.Write([]byte("not tls at all\r\n"))
	io.Copy(io.Discard, nc)
	if b.accepted.Load() != 2 {
		t.Fatalf("backend accepted %d", b.accepted.Load())
	}
}

func TestProxyHeaderReachesBackend(t *testing.T) {
	h := newHarness(t, Options{})
	b := startBackend(t, "b1", proxyEcho)
	addr := h.set(t, &EndpointConfig{ID: "ep", Pool: pool(b), ProxyProtocol: true})
	c := dial(t, addr)
	mustEcho(t, c, "after the header")
	hdr := <-b.headers
	if hdr.Local || hdr.Src.String() != c.LocalAddr().String() || hdr.Dst.String() != addr || len(hdr.TLVs) != 0 {
		t.Fatalf("header %+v; client %s, listener %s", hdr, c.LocalAddr(), addr)
	}
}

// halfCloseBackend reads until EOF, then replies with the count and a long tail, and closes.
func halfCloseBackend(_ *backend, c net.Conn) {
	n, _ := io.Copy(io.Discard, c)
	fmt.Fprintf(c, "got %d bytes;%s", n, strings.Repeat("z", 100_000))
}

func TestHalfClose(t *testing.T) {
	p := getPKI(t)
	h := newHarness(t, Options{})
	b := startBackend(t, "b1", halfCloseBackend)
	plain := h.set(t, &EndpointConfig{ID: "plain", Pool: pool(b)})
	secure := h.set(t, &EndpointConfig{ID: "tls", Pool: pool(b), TLSMode: ModeTLS, Certificate: p.getCert})
	check := func(c net.Conn, closeWrite func() error) {
		t.Helper()
		io.WriteString(c, "request body")
		if err := closeWrite(); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		if want := "got 12 bytes;" + strings.Repeat("z", 100_000); string(got) != want {
			t.Fatalf("reply after half-close: %d bytes %.40q", len(got), got)
		}
	}
	pc := dial(t, plain)
	check(pc, pc.CloseWrite)
	tc, err := tls.Dial("tcp", secure, p.clientConfig(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	check(tc, tc.CloseWrite)
}

func TestKilledInstanceIsEjected(t *testing.T) {
	h := newHarness(t, Options{EjectBase: time.Minute})
	b1, b2 := startBackend(t, "b1", nameEcho), startBackend(t, "b2", nameEcho)
	pl := pool(b1, b2)
	addr := h.set(t, &EndpointConfig{ID: "ep", Pool: pl})
	for i := 0; i < 4; i++ {
		c := dial(t, addr)
		readLine(t, c)
		c.Close()
	}
	b1.kill()
	for i := 0; i < 20; i++ {
		c := dial(t, addr)
		if got := readLine(t, c); got != "b2" {
			t.Fatalf("connection %d served by %q", i, got)
		}
		c.Close()
	}
	if pl.Get("b1").Healthy(time.Now()) {
		t.Fatal("killed instance not ejected")
	}
	if got := h.counter(t, "portal_tcp_connect_errors_total", "endpoint", "ep"); got < 1 {
		t.Fatalf("connect errors = %v", got)
	}
	// With none left the client is closed promptly.
	b2.kill()
	start := time.Now()
	expectClosed(t, dial(t, addr), 2*time.Second)
	if d := time.Since(start); d > scaled(time.Second) {
		t.Fatalf("closing took %v", d)
	}
	for {
		if rec := h.log.next(t); rec["reason"] == ReasonNoInstance {
			break
		}
	}
}

func TestRemoveDrains(t *testing.T) {
	h := newHarness(t, Options{DrainPeriod: scaled(300 * time.Millisecond)})
	b := startBackend(t, "b1", echo)
	addr := h.set(t, &EndpointConfig{ID: "ep", Pool: pool(b)})
	c := dial(t, addr)
	mustEcho(t, c, "before")
	removed := time.Now()
	h.s.Remove("ep")
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("new connection accepted after Remove")
	}
	mustEcho(t, c, "during the drain")
	expectClosed(t, c, 5*time.Second)
	if d := time.Since(removed); d < scaled(250*time.Millisecond) {
		t.Fatalf("closed %v after Remove, before the drain period", d)
	}
	if rec := h.log.next(t); rec["reason"] != ReasonDrained {
		t.Fatalf("access log %v", rec)
	}
	eventually(t, 2*time.Second, "metrics of the removed endpoint dropped", func() bool {
		return h.counter(t, "portal_tcp_connections_accepted_total", "endpoint", "ep") == 0
	})
}

func TestRemoveEndsEarlyWhenIdle(t *testing.T) {
	h := newHarness(t, Options{DrainPeriod: time.Hour})
	b := startBackend(t, "b1", echo)
	addr := h.set(t, &EndpointConfig{ID: "ep", Pool: pool(b)})
	c := dial(t, addr)
	mustEcho(t, c, "x")
	h.s.Remove("ep")
	c.Close()
	if rec := h.log.next(t); rec["reason"] != ReasonClientClosed {
		t.Fatalf("access log %v", rec)
	}
	// Close must not wait for the hour-long drain.
	done := make(chan struct{})
	go func() { h.s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked")
	}
}

func TestConfigSwap(t *testing.T) {
	p := getPKI(t)
	h := newHarness(t, Options{})
	b := startBackend(t, "b1", echo)
	addr := h.set(t, &EndpointConfig{ID: "ep", Pool: pool(b)})
	old := dial(t, addr)
	mustEcho(t, old, "plain before the swap")

	got, err := h.s.Set(addr, &EndpointConfig{ID: "ep", Pool: pool(b), TLSMode: ModeTLS, Certificate: p.getCert})
	if err != nil || got.String() != addr {
		t.Fatalf("Set = %v, %v", got, err)
	}
	mustEcho(t, old, "plain after the swap") // untouched
	tc, err := tls.Dial("tcp", addr, p.clientConfig(nil))
	if err != nil {
		t.Fatalf("new connection is not TLS: %v", err)
	}
	mustEcho(t, tc, "tls after the swap")
	tc.Close()

	// Firewall swap: new connections denied, the old one still served.
	deny, _ := firewall.Compile(firewall.Rules{Deny: []string{"127.0.0.1/32"}})
	if _, err := h.s.Set("", &EndpointConfig{ID: "ep", Pool: pool(b), Firewall: deny}); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, dial(t, addr), 5*time.Second)
	mustEcho(t, old, "still here")

	// Moving to another address reopens the listener; the old connection survives.
	moved, err := h.s.Set("127.0.0.2:0", &EndpointConfig{ID: "ep", Pool: pool(b)})
	if err != nil || moved.String() == addr {
		t.Fatalf("move = %v, %v", moved, err)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("old address still accepts")
	}
	mustEcho(t, dial(t, moved.String()), "at the new address")
	mustEcho(t, old, "old connection after the move")
}

func TestConnectionLimits(t *testing.T) {
	h := newHarness(t, Options{})
	b := startBackend(t, "b1", echo)
	addr := h.set(t, &EndpointConfig{ID: "ip", Pool: pool(b), MaxConnsPerIP: 2})
	c1, c2 := dial(t, addr), dial(t, addr)
	mustEcho(t, c1, "1")
	mustEcho(t, c2, "2")
	expectClosed(t, dial(t, addr), 5*time.Second)
	if rec := h.log.next(t); rec["reason"] != ReasonLimit || rec["detail"] != "limit_source" {
		t.Fatalf("access log %v", rec)
	}
	c1.Close()
	h.log.next(t)
	mustEcho(t, dial(t, addr), "room again")
	if got := h.counter(t, "portal_tcp_connections_denied_total", "endpoint", "ip", "reason", "limit_source"); got != 1 {
		t.Fatalf("denied metric = %v", got)
	}

	addr2 := h.set(t, &EndpointConfig{ID: "ep", Pool: pool(b), MaxConns: 1})
	mustEcho(t, dial(t, addr2), "only one")
	expectClosed(t, dial(t, addr2), 5*time.Second)
}

func TestIdleTimeout(t *testing.T) {
	h := newHarness(t, Options{})
	b := startBackend(t, "b1", echo)
	addr := h.set(t, &EndpointConfig{ID: "ep", Pool: pool(b), IdleTimeout: scaled(200 * time.Millisecond)})
	idle, busy := dial(t, addr), dial(t, addr)
	mustEcho(t, idle, "x")
	start := time.Now()
	for time.Since(start) < scaled(600*time.Millisecond) {
		mustEcho(t, busy, "keepalive")
		time.Sleep(scaled(40 * time.Millisecond))
	}
	expectClosed(t, idle, scaled(time.Second))
	mustEcho(t, busy, "still open")
	if rec := h.log.next(t); rec["reason"] != ReasonIdleTimeout {
		t.Fatalf("access log %v", rec)
	}
}

func TestServeCallerListener(t *testing.T) {
	h := newHarness(t, Options{})
	b := startBackend(t, "b1", echo)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.s.Serve(ln, &EndpointConfig{ID: "direct", Pool: pool(b)}) }()
	eventually(t, time.Second, "endpoint registered", func() bool { return h.s.Addr("direct") != nil })
	mustEcho(t, dial(t, ln.Addr().String()), "direct ip:port")
	if _, err := h.s.Set("127.0.0.1:0", &EndpointConfig{ID: "direct", Pool: pool(b)}); err == nil {
		t.Fatal("moving a caller-owned listener succeeded")
	}
	h.s.Remove("direct")
	if err := <-done; err != nil {
		t.Fatalf("Serve = %v", err)
	}
}

func TestSetValidation(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	p := pool()
	for _, tt := range []struct {
		cfg  *EndpointConfig
		want string
	}{
		{nil, "nil endpoint config"},
		{&EndpointConfig{Pool: p}, "ID is required"},
		{&EndpointConfig{ID: "e", TLSMode: "ssl"}, `unknown TLS mode "ssl"`},
		{&EndpointConfig{ID: "e", TLSMode: ModeTLS}, "needs Certificate"},
		{&EndpointConfig{ID: "e", TLSMode: ModeMTLS, Certificate: getPKI(t).getCert}, "needs ClientCAs"},
		{&EndpointConfig{ID: "e", MaxConns: -1}, "must not be negative"},
	} {
		if _, err := s.Set("127.0.0.1:0", tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Set(%+v) = %v, want %q", tt.cfg, err, tt.want)
		}
	}
	if _, err := s.Set("127.0.0.1:99999", &EndpointConfig{ID: "e"}); err == nil || !strings.Contains(err.Error(), "listen on") {
		t.Errorf("bad address: %v", err)
	}
	s.Close()
	if _, err := s.Set("127.0.0.1:0", &EndpointConfig{ID: "e"}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Set after Close = %v", err)
	}
}

func TestCloseWithOpenConnections(t *testing.T) {
	h := newHarness(t, Options{})
	b := startBackend(t, "b1", echo)
	addr := h.set(t, &EndpointConfig{ID: "ep", Pool: pool(b)})
	var cs []net.Conn
	for i := 0; i < 10; i++ {
		c := dial(t, addr)
		mustEcho(t, c, "x")
		cs = append(cs, c)
	}
	h.s.Close()
	h.s.Close() // idempotent
	for _, c := range cs {
		expectClosed(t, c, 2*time.Second)
	}
	checkNoLeaks(t)
}

func TestDialTimeoutCountsAsFailure(t *testing.T) {
	h := newHarness(t, Options{EjectBase: time.Minute, ConnectRetries: -1})
	// An instance whose dialer never answers within ConnectTimeout.
	slow := balance.NewInstance("slow", "203.0.113.1:9", hangDialer{})
	addr := h.set(t, &EndpointConfig{ID: "ep", Pool: balance.NewPool(balance.P2C, []*balance.Instance{slow}, nil),
		ConnectTimeout: scaled(50 * time.Millisecond)})
	expectClosed(t, dial(t, addr), 5*time.Second)
	if slow.Healthy(time.Now()) {
		t.Fatal("timed-out instance not ejected")
	}
}

type hangDialer struct{}

func (hangDialer) DialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestShutdown(t *testing.T) {
	h := newHarness(t, Options{})
	b := startBackend(t, "b1", echo)
	addr := h.set(t, &EndpointConfig{ID: "ep", Pool: pool(b)})
	c := dial(t, addr)
	mustEcho(t, c, "x")
	// The connection ends by itself: Shutdown returns nil without cutting it.
	go func() {
		time.Sleep(scaled(50 * time.Millisecond))
		c.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	if rec := h.log.next(t); rec["reason"] != ReasonClientClosed {
		t.Fatalf("access log %v", rec)
	}

	// A connection that stays open is cut when ctx ends.
	h2 := newHarness(t, Options{})
	addr2 := h2.set(t, &EndpointConfig{ID: "ep", Pool: pool(b)})
	c2 := dial(t, addr2)
	mustEcho(t, c2, "y")
	ctx2, cancel2 := context.WithTimeout(context.Background(), scaled(100*time.Millisecond))
	defer cancel2()
	if err := h2.s.Shutdown(ctx2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v", err)
	}
	expectClosed(t, c2, time.Second)
	if rec := h2.log.next(t); rec["reason"] != ReasonShutdown {
		t.Fatalf("access log %v", rec)
	}
}

func TestIPv6ProxyHeader(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatal("the tests need IPv6 loopback:", err)
	}
	ln.Close()
	h := newHarness(t, Options{})
	b := startBackend(t, "b1", proxyEcho)
	a, err := h.s.Set("[::1]:0", &EndpointConfig{ID: "v6", Pool: pool(b), ProxyProtocol: true, MaxConnsPerIP: 1})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, a.String())
	mustEcho(t, c, "v6")
	hdr := <-b.headers
	if !hdr.Src.Addr().Is6() || hdr.Src.String() != c.LocalAddr().String() || hdr.Dst.String() != a.String() {
		t.Fatalf("header %+v, client %s", hdr, c.LocalAddr())
	}
	expectClosed(t, dial(t, a.String()), 5*time.Second) // per-IP limit keys on the v6 address too
}
