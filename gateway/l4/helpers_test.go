package l4

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kinesis-network/portal/gateway/balance"
	"github.com/kinesis-network/portal/gateway/proxyproto"
)

// scaled stretches a test duration by $KINESIS_TEST_TIME_SCALE (default 1) for slow machines.
func scaled(d time.Duration) time.Duration {
	if f, err := strconv.ParseFloat(os.Getenv("KINESIS_TEST_TIME_SCALE"), 64); err == nil && f > 0 {
		return time.Duration(float64(d) * f)
	}
	return d
}

// --- access-log capture ---

type logRec map[string]string

type logSink struct {
	mu   sync.Mutex
	recs []logRec
	ch   chan logRec
}

func newLogSink() *logSink { return &logSink{ch: make(chan logRec, 1000)} }

func (l *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (l *logSink) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logSink) WithGroup(string) slog.Handler            { return l }
func (l *logSink) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "tcp connection" {
		return nil
	}
	rec := logRec{}
	r.Attrs(func(a slog.Attr) bool { rec[a.Key] = a.Value.String(); return true })
	l.mu.Lock()
	l.recs = append(l.recs, rec)
	l.mu.Unlock()
	select {
	case l.ch <- rec:
	default:
	}
	return nil
}

// next waits for the next access-log record.
func (l *logSink) next(t *testing.T) logRec {
	t.Helper()
	select {
	case r := <-l.ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no access-log record within 5s")
		return nil
	}
}

// --- server ---

type harness struct {
	s   *Server
	reg *prometheus.Registry
	log *logSink
}

func newHarness(t *testing.T, opts Options) *harness {
	t.Helper()
	h := &harness{reg: prometheus.NewRegistry(), log: newLogSink()}
	opts.Logger = slog.New(h.log)
	opts.Registerer = h.reg
	h.s = New(opts)
	t.Cleanup(func() {
		h.s.Close()
		checkNoLeaks(t)
	})
	return h
}

func (h *harness) set(t *testing.T, cfg *EndpointConfig) string {
	t.Helper()
	a, err := h.s.Set("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a.String()
}

func (h *harness) counter(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return 0
}

// --- backends ---

type backend struct {
	name     string
	ln       net.Listener
	accepted atomic.Int64
	headers  chan *proxyproto.Header
	mu       sync.Mutex
	conns    map[net.Conn]bool
	wg       sync.WaitGroup
}

// startBackend listens on 127.0.0.1:0 and runs fn for every connection (fn need not close it).
func startBackend(t *testing.T, name string, fn func(b *backend, c net.Conn)) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveBackend(t, name, ln, fn)
}

func serveBackend(t *testing.T, name string, ln net.Listener, fn func(b *backend, c net.Conn)) *backend {
	b := &backend{name: name, ln: ln, headers: make(chan *proxyproto.Header, 100), conns: map[net.Conn]bool{}}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.accepted.Add(1)
			b.mu.Lock()
			b.conns[c] = true
			b.mu.Unlock()
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				defer func() {
					c.Close()
					b.mu.Lock()
					delete(b.conns, c)
					b.mu.Unlock()
				}()
				fn(b, c)
			}()
		}
	}()
	t.Cleanup(b.kill)
	return b
}

func (b *backend) addr() string { return b.ln.Addr().String() }

// kill closes the listener and every open connection, like a crashed process.
func (b *backend) kill() {
	b.ln.Close()
	b.mu.Lock()
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// echo copies through a user-space buffer (io.Copy would splice and hold pipes, which
// TestIdleConnectionsHoldNoPipes counts).
func echo(_ *backend, c net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
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

// nameEcho greets with its name and a newline, then echoes.
func nameEcho(b *backend, c net.Conn) {
	fmt.Fprintf(c, "%s\n", b.name)
	io.Copy(c, c)
}

// proxyEcho reads a PROXY v2 header, publishes it, then echoes.
func proxyEcho(b *backend, c net.Conn) {
	h, err := proxyproto.ReadV2(c)
	if err != nil {
		fmt.Fprintf(c, "bad header: %v", err)
		return
	}
	b.headers <- h
	io.Copy(c, c)
}

func pool(bs ...*backend) *balance.Pool {
	var ins []*balance.Instance
	for _, b := range bs {
		ins = append(ins, balance.NewInstance(b.name, b.addr(), nil))
	}
	return balance.NewPool(balance.P2C, ins, nil)
}

// --- clients ---

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c.(*net.TCPConn)
}

// roundTrip writes msg and reads back len(msg) bytes.
func roundTrip(c net.Conn, msg string) (string, error) {
	if _, err := io.WriteString(c, msg); err != nil {
		return "", err
	}
	buf := make([]byte, len(msg))
	_, err := io.ReadFull(c, buf)
	return string(buf), err
}

func mustEcho(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	got, err := roundTrip(c, msg)
	if err != nil || got != msg {
		t.Fatalf("echo %q: got %q, %v", msg, got, err)
	}
}

func readLine(t *testing.T, c net.Conn) string {
	t.Helper()
	var sb strings.Builder
	b := make([]byte, 1)
	for {
		if _, err := c.Read(b); err != nil {
			t.Fatalf("read line: %v (so far %q)", err, sb.String())
		}
		if b[0] == '\n' {
			return sb.String()
		}
		sb.WriteByte(b[0])
	}
}

// expectClosed asserts that the server closes c (EOF or reset) within d without sending data.
func expectClosed(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	n, err := c.Read(make([]byte, 64))
	if n > 0 || err == nil || isTimeout(err) {
		t.Fatalf("connection not closed within %v: n=%d err=%v", d, n, err)
	}
}

func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// --- PKI ---

type pki struct {
	roots       *x509.CertPool // trusts the server CA
	server      tls.Certificate
	clientCAs   *x509.CertPool // the customer's client CA
	client      tls.Certificate
	wrongClient tls.Certificate // issued by another CA
}

var (
	pkiOnce sync.Once
	testPKI *pki
)

func getPKI(t *testing.T) *pki {
	pkiOnce.Do(func() {
		serverCA, serverKey := newCA(t, "test server CA")
		clientCA, clientKey := newCA(t, "customer client CA")
		otherCA, otherKey := newCA(t, "other CA")
		p := &pki{roots: x509.NewCertPool(), clientCAs: x509.NewCertPool()}
		p.roots.AddCert(serverCA)
		p.clientCAs.AddCert(clientCA)
		p.server = issue(t, serverCA, serverKey, "localhost", true)
		p.client = issue(t, clientCA, clientKey, "alice", false)
		p.wrongClient = issue(t, otherCA, otherKey, "mallory", false)
		testPKI = p
	})
	return testPKI
}

func newCA(t *testing.T, cn string) (*x509.Certificate, *ecdsa.PrivateKey) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert, key
}

func issue(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn string, server bool) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn, Organization: []string{"Kinesis Test"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{"localhost", "db.example.test"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func (p *pki) getCert(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &p.server, nil }

func (p *pki) clientConfig(cert *tls.Certificate) *tls.Config {
	c := &tls.Config{RootCAs: p.roots, ServerName: "localhost"}
	if cert != nil {
		c.Certificates = []tls.Certificate{*cert}
	}
	return c
}

// --- leaks ---

// checkNoLeaks fails when a goroutine of the engine (not of the test) is still running.
func checkNoLeaks(t *testing.T) {
	t.Helper()
	var stacks string
	for i := 0; i < 200; i++ {
		buf := make([]byte, 1<<20)
		stacks = string(buf[:runtime.Stack(buf, true)])
		if !engineGoroutine(stacks) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("engine goroutines leaked:\n%s", stacks)
}

func engineGoroutine(stacks string) bool {
	for _, g := range strings.Split(stacks, "\n\n") {
		for _, fn := range []string{"l4.(*Server)", "l4.(*half)", "l4.(*conn)", "l4.(*endpoint)"} {
			if strings.Contains(g, fn) {
				return true
			}
		}
	}
	return false
}
