package httprelay_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kinesis-network/portal/certs"
	"github.com/kinesis-network/portal/gateway/httprelay"
	"github.com/kinesis-network/portal/gateway/routes"
	"github.com/kinesis-network/portal/gateway/sticky"
	"github.com/kinesis-network/portal/registry"
)

// The harness drives the real relay: a local CA, an in-memory registry, a running route cache, the
// relay Handler behind httprelay.NewServer on a real TLS listener, plain-HTTP backends on loopback, and
// real http.Clients (HTTP/1.1 and HTTP/2) that trust the CA.

const (
	testHost = "z1.r1.portal.localhost"
	tenantID = "tn_test"
)

// TestMain fails the run when relay, server or transport goroutines outlive the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := waitGoroutines(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines leaked after the tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// waitGoroutines waits up to d for goroutines of this project or of net/http servers and transports to
// end, and returns the stacks of those that remain.
func waitGoroutines(d time.Duration) string {
	deadline := time.Now().Add(d)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "waitGoroutines") || strings.Contains(g, "testing.(*M)") {
				continue
			}
			if strings.Contains(g, "kinesis-network/portal/") || strings.Contains(g, "net/http.(*conn)") ||
				strings.Contains(g, "net/http.(*persistConn)") || strings.Contains(g, "net/http.(*http2") ||
				strings.Contains(g, "net/http.(*Server).Serve") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 {
			return ""
		}
		if time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// clock is an adjustable clock: real time plus an offset.
type clock struct{ off atomic.Int64 }

func (c *clock) Now() time.Time             { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) Advance(d time.Duration)    { c.off.Add(int64(d)) }
func (c *clock) fixedAt(t time.Time) *clock { c.off.Store(int64(time.Until(t))); return c }

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a slog handler.
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

type harnessOptions struct {
	listen    string                  // listen address; "" is 127.0.0.1:0
	relay     httprelay.Options       // Routes, Sticky, Logger, Metrics and Now are filled in
	server    httprelay.ServerOptions // GetCertificate, Logger and Metrics are filled in
	noMetrics bool
}

type harness struct {
	t      *testing.T
	ca     *certs.CA
	store  *registry.Memory
	cache  *routes.Cache
	codec  *sticky.Codec
	relay  *httprelay.Handler
	srv    *http.Server
	addr   string // the relay listener's address
	reg    *prometheus.Registry
	logs   *syncBuffer
	clock  *clock
	served chan struct{} // closed when Serve returned
}

func newHarness(t *testing.T, o harnessOptions) *harness {
	t.Helper()
	ca, _, err := certs.NewCA("portal test CA")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, ca: ca, store: registry.NewMemory(registry.Options{}), logs: &syncBuffer{}, clock: &clock{},
		reg: prometheus.NewRegistry(), served: make(chan struct{})}
	log := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.codec = sticky.NewCodec([]byte("test-fleet-secret-0123456789abcdef"))
	h.cache = routes.New(h.store, routes.Options{Logger: log, Sticky: h.codec})
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { defer close(runDone); _ = h.cache.Run(ctx) }()
	select {
	case <-h.cache.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("route cache not ready")
	}

	var m *httprelay.Metrics
	if !o.noMetrics {
		m = httprelay.NewMetrics(h.reg)
	}
	ro := o.relay
	ro.Routes, ro.Sticky, ro.Logger, ro.Metrics = h.cache, h.codec, log, m
	if ro.Now == nil {
		ro.Now = h.clock.Now
	}
	h.relay = httprelay.New(ro)
	so := o.server
	so.GetCertificate = ca.ServerCertificate(certs.HostUnder("portal.localhost"), []string{"127.0.0.1", "::1"})
	so.Logger, so.Metrics = log, m
	h.srv = httprelay.NewServer(h.relay, so)

	listen := o.listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		cancel()
		<-runDone
		t.Fatalf("cannot listen on %s (the tests need IPv4 and IPv6 loopback): %v", listen, err)
	}
	h.addr = ln.Addr().String()
	go func() { defer close(h.served); _ = h.srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() {
		_ = h.srv.Close()
		<-h.served
		h.relay.Close()
		cancel()
		<-runDone
		_ = h.store.Close()
	})
	return h
}

// port returns the relay listener's port.
func (h *harness) port() string {
	_, p, _ := net.SplitHostPort(h.addr)
	return p
}

// url returns the relay URL of key with rest appended ("" or starting with "/" or "?").
func (h *harness) url(key, rest string) string {
	return "https://" + testHost + ":" + h.port() + httprelay.Prefix + key + rest
}

// tlsConfig trusts the harness CA and names testHost.
func (h *harness) tlsConfig(protos ...string) *tls.Config {
	return &tls.Config{RootCAs: h.ca.Pool(), ServerName: testHost, NextProtos: protos}
}

// client returns a client speaking proto ("h1" or "h2") to the relay; every connection goes to the
// relay listener whatever the URL's host.
func (h *harness) client(proto string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		DialContext:         func(ctx context.Context, _, _ string) (net.Conn, error) { return d.DialContext(ctx, "tcp", h.addr) },
		TLSClientConfig:     h.tlsConfig(),
		MaxIdleConnsPerHost: 64,
	}
	switch proto {
	case "h1":
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	case "h2":
		tr.ForceAttemptHTTP2 = true
	default:
		h.t.Fatalf("unknown proto %q", proto)
	}
	h.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// dialTLS opens a raw TLS connection to the relay offering protos.
func (h *harness) dialTLS(protos ...string) *tls.Conn {
	h.t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", h.addr, h.tlsConfig(protos...))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { c.Close() })
	return c
}

// endpoint creates an HTTPS endpoint with one fresh access key and an instance per address (instance
// i gets the id ids[i] when given, "in_<i>" otherwise), applies mut, and waits until the relay serves it.
func (h *harness) endpoint(mut func(*registry.Endpoint), instances ...instanceSpec) (*registry.Endpoint, string) {
	h.t.Helper()
	key := registry.NewSecret()
	e := &registry.Endpoint{
		TenantID: tenantID, Name: "ep-" + registry.NewID("n"), Type: registry.HTTPS, Zone: "z1", Region: "r1",
		Keys: []registry.AccessKey{{Hash: registry.HashSecret(key), CreatedAt: time.Now()}},
	}
	for _, in := range instances {
		e.Instances = append(e.Instances, registry.Instance{ID: in.id, Addr: in.addr})
	}
	if mut != nil {
		mut(e)
	}
	got, err := h.store.CreateEndpoint(context.Background(), e)
	if err != nil {
		h.t.Fatal(err)
	}
	h.waitVersion(got.ID, got.Version)
	return got, key
}

type instanceSpec struct{ id, addr string }

// update changes an endpoint in the registry and waits until the relay serves the new version.
func (h *harness) update(id string, fn func(*registry.Endpoint)) *registry.Endpoint {
	h.t.Helper()
	e, err := h.store.UpdateEndpoint(context.Background(), "", id, func(e *registry.Endpoint) error { fn(e); return nil })
	if err != nil {
		h.t.Fatal(err)
	}
	h.waitVersion(id, e.Version)
	return e
}

// waitVersion waits until the route table holds endpoint id at version v or later.
func (h *harness) waitVersion(id string, v int64) {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if r := h.cache.Table().Get(id); r != nil && r.Endpoint.Version >= v {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("route %s version %d never appeared", id, v)
		}
		time.Sleep(time.Millisecond)
	}
}

// do sends one request and returns the response with its whole body read.
func do(t *testing.T, c *http.Client, method, url string, body io.Reader, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %s", method, redact(url), redact(err.Error()))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %s", method, redact(url), redact(err.Error()))
	}
	return resp, b
}

var keyInPath = regexp.MustCompile(`/relay/[A-Za-z0-9_-]{4}[A-Za-z0-9_-]*`)

// redact shortens access keys in relay URLs for failure messages (tests must not print keys either).
func redact(s string) string {
	return keyInPath.ReplaceAllStringFunc(s, func(m string) string { return m[:len("/relay/")+4] + "…" })
}

// echo is what the echo backend answers.
type echo struct {
	Instance string      `json:"instance"`
	Method   string      `json:"method"`
	Path     string      `json:"path"` // escaped
	Query    string      `json:"query"`
	Host     string      `json:"host"`
	Header   http.Header `json:"header"`
	BodyLen  int64       `json:"body_len"`
	BodySHA  string      `json:"body_sha"`
}

func decodeEcho(t *testing.T, resp *http.Response, b []byte) echo {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	var e echo
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("echo: %v: %s", err, b)
	}
	return e
}

// backend is a plain-HTTP instance on loopback.
type backend struct {
	name string
	addr string
	hits atomic.Int64
	srv  *http.Server
	done chan struct{}
	once sync.Once
}

// newBackend starts a backend named name serving hd, or an echo handler when hd is nil.
func newBackend(t *testing.T, name string, hd http.Handler) *backend {
	t.Helper()
	return newBackendOn(t, name, "127.0.0.1:0", hd)
}

// newBackendAt starts an echo backend named name on addr.
func newBackendAt(t *testing.T, name, addr string) *backend {
	t.Helper()
	return newBackendOn(t, name, addr, nil)
}

func newBackendOn(t *testing.T, name, listen string, hd http.Handler) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{name: name, addr: ln.Addr().String(), done: make(chan struct{})}
	if hd == nil {
		hd = http.HandlerFunc(b.echo)
	}
	b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		hd.ServeHTTP(w, r)
	}), ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)}
	go func() { defer close(b.done); _ = b.srv.Serve(ln) }()
	t.Cleanup(b.kill)
	return b
}

func (b *backend) echo(w http.ResponseWriter, r *http.Request) {
	sum := sha256.New()
	n, _ := io.Copy(sum, r.Body)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(echo{Instance: b.name, Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery,
		Host: r.Host, Header: r.Header, BodyLen: n, BodySHA: hex.EncodeToString(sum.Sum(nil))})
}

// spec returns the instance spec of b (instance id "in_<name>").
func (b *backend) spec() instanceSpec { return instanceSpec{id: "in_" + b.name, addr: b.addr} }

// kill stops the backend at once: its listener and every connection are closed.
func (b *backend) kill() {
	b.once.Do(func() {
		_ = b.srv.Close()
		<-b.done
	})
}

// deadAddr returns a loopback address nothing listens on (connections are refused).
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

// accessRecords returns the relay's access-log records.
func (h *harness) accessRecords() []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(h.logs.String(), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			h.t.Fatalf("log line is not JSON: %v: %s", err, line)
		}
		if m["msg"] == "access" {
			out = append(out, m)
		}
	}
	return out
}

// errorBody is the relay's JSON error shape.
type errorBody struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func wantError(t *testing.T, resp *http.Response, b []byte, code int) {
	t.Helper()
	if resp.StatusCode != code {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, code, b)
	}
	var e errorBody
	if err := json.Unmarshal(b, &e); err != nil || e.Error.Code != code {
		t.Fatalf("error body %q: %v", b, err)
	}
}

var errTimeout = errors.New("timed out")

// within runs fn and fails the test when it takes longer than d.
func within(t *testing.T, d time.Duration, what string, fn func()) time.Duration {
	t.Helper()
	start := time.Now()
	fn()
	took := time.Since(start)
	if took > d {
		t.Fatalf("%s took %v, want < %v", what, took, d)
	}
	return took
}
