package bench

// This file has the HTTPS relay pieces shared by hotpath_bench_test.go and the relayload tool: a
// plain-HTTP backend, a portal relay assembled as the portal does it (in-memory registry, route cache,
// local CA, httprelay over TLS with metrics and a JSON access log), keep-alive clients for both, and a
// closed-loop load generator that reports requests per second and latency percentiles.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kinesis-network/portal/certs"
	"github.com/kinesis-network/portal/gateway/httprelay"
	"github.com/kinesis-network/portal/gateway/routes"
	"github.com/kinesis-network/portal/gateway/sticky"
	"github.com/kinesis-network/portal/registry"
)

// RelayHost is the relay's host name in the benchmark (it resolves to loopback without DNS set-up;
// the clients dial the relay's address directly anyway).
const RelayHost = "z1.r1.portal.localhost"

// HTTPBackend is a plain-HTTP server answering every request with a fixed body.
type HTTPBackend struct {
	Addr string
	srv  *http.Server
	done chan struct{}
}

// StartHTTPBackend serves a body of size bytes on a loopback port.
func StartHTTPBackend(size int) (*HTTPBackend, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	body := []byte(strings.Repeat("x", size))
	b := &HTTPBackend{Addr: ln.Addr().String(), done: make(chan struct{})}
	b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(body)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { defer close(b.done); _ = b.srv.Serve(ln) }()
	return b, nil
}

// Close stops the backend and waits.
func (b *HTTPBackend) Close() {
	_ = b.srv.Close()
	<-b.done
}

// RelayOptions configure StartRelay.
type RelayOptions struct {
	// Instances are the backend addresses of the benchmark endpoint. Required.
	Instances []string
	// Sticky enables sticky sessions on the endpoint.
	Sticky bool
	// AccessLog receives the relay's JSON access log. Nil: io.Discard (records are still formatted).
	AccessLog io.Writer
}

// Relay is an in-process portal relay serving one HTTPS endpoint.
type Relay struct {
	// Addr is the relay's TLS listener.
	Addr string
	// Key is the endpoint's access key.
	Key string
	// CA signed the relay's certificate.
	CA *certs.CA

	srv    *http.Server
	h      *httprelay.Handler
	store  *registry.Memory
	cancel context.CancelFunc
	done   chan struct{}
	served chan struct{}
}

// StartRelay starts a relay with one HTTPS endpoint over o.Instances and waits until it serves.
func StartRelay(o RelayOptions) (*Relay, error) {
	if len(o.Instances) == 0 {
		return nil, errors.New("bench: relay needs at least one instance")
	}
	ca, _, err := certs.NewCA("portal bench CA")
	if err != nil {
		return nil, err
	}
	if o.AccessLog == nil {
		o.AccessLog = io.Discard
	}
	log := slog.New(slog.NewJSONHandler(o.AccessLog, nil))
	store := registry.NewMemory(registry.Options{})
	key := registry.NewSecret()
	e := &registry.Endpoint{TenantID: "tn_bench", Name: "bench", Type: registry.HTTPS, Zone: "z1", Region: "r1",
		Keys: []registry.AccessKey{{Hash: registry.HashSecret(key), CreatedAt: time.Now()}}, Sticky: registry.Sticky{Enabled: o.Sticky}}
	for i, a := range o.Instances {
		e.Instances = append(e.Instances, registry.Instance{ID: fmt.Sprintf("in_%d", i), Addr: a})
	}
	if _, err := store.CreateEndpoint(context.Background(), e); err != nil {
		return nil, err
	}
	codec := sticky.NewCodec([]byte(registry.NewSecret()))
	cache := routes.New(store, routes.Options{Logger: log, Sticky: codec})
	ctx, cancel := context.WithCancel(context.Background())
	r := &Relay{Key: key, CA: ca, store: store, cancel: cancel, done: make(chan struct{}), served: make(chan struct{})}
	go func() { defer close(r.done); _ = cache.Run(ctx) }()
	select {
	case <-cache.Ready():
	case <-time.After(10 * time.Second):
		r.stop()
		return nil, errors.New("bench: route cache not ready")
	}
	m := httprelay.NewMetrics(prometheus.NewRegistry())
	r.h = httprelay.New(httprelay.Options{Routes: cache, Sticky: codec, Logger: log, Metrics: m})
	r.srv = httprelay.NewServer(r.h, httprelay.ServerOptions{
		GetCertificate: ca.ServerCertificate(certs.HostUnder("portal.localhost"), []string{"127.0.0.1"}),
		Logger:         log, Metrics: m,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.stop()
		return nil, err
	}
	r.Addr = ln.Addr().String()
	go func() { defer close(r.served); _ = r.srv.ServeTLS(ln, "", "") }()
	return r, nil
}

func (r *Relay) stop() {
	r.cancel()
	<-r.done
	_ = r.store.Close()
}

// Close stops the relay and waits.
func (r *Relay) Close() {
	_ = r.srv.Close()
	<-r.served
	r.h.Close()
	r.stop()
}

// URL returns the relay URL of path on the benchmark endpoint.
func (r *Relay) URL(path string) string {
	_, port, _ := net.SplitHostPort(r.Addr)
	return "https://" + RelayHost + ":" + port + httprelay.Prefix + r.Key + path
}

// Client returns a keep-alive client with up to conns connections. proto is "http" (plain HTTP/1.1,
// for the direct baseline), "h1" (HTTPS, HTTP/1.1) or "h2" (HTTPS, HTTP/2). For h1 and h2 every
// connection goes to relayAddr with the CA trusted, whatever the URL's host.
func Client(proto string, conns int, relayAddr string, ca *certs.CA) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		DialContext:         d.DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	switch proto {
	case "h1", "h2":
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) { return d.DialContext(ctx, "tcp", relayAddr) }
		tr.TLSClientConfig = &tls.Config{RootCAs: ca.Pool(), ServerName: RelayHost}
		if proto == "h2" {
			tr.ForceAttemptHTTP2 = true
			tr.MaxConnsPerHost = 0 // HTTP/2 multiplexes on one connection
		} else {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// LoadResult is one load measurement.
type LoadResult struct {
	Requests int64         // completed with status 200
	Errors   int64         // failed or not 200
	Elapsed  time.Duration // measured time (warm-up excluded)
	P50, P99 time.Duration // latency percentiles of completed requests
	Max      time.Duration
}

// RPS returns completed requests per second.
func (r LoadResult) RPS() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

// Load runs workers closed-loop clients (each sends a request, reads the whole answer, repeats) against
// url for warmup then d; only requests started after the warm-up are measured. It stops early when ctx
// ends.
func Load(ctx context.Context, c *http.Client, url string, workers int, warmup, d time.Duration) LoadResult {
	var (
		wg        sync.WaitGroup
		measuring atomic.Bool
		stop      atomic.Bool
		errs      atomic.Int64
		mu        sync.Mutex
		all       []time.Duration
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1<<16)
			for !stop.Load() && ctx.Err() == nil {
				counted := measuring.Load()
				t0 := time.Now()
				ok := get(ctx, c, url)
				el := time.Since(t0)
				if !counted || stop.Load() {
					continue
				}
				if !ok {
					errs.Add(1)
					continue
				}
				lat = append(lat, el)
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
	}
	sleep(ctx, warmup)
	measuring.Store(true)
	start := time.Now()
	sleep(ctx, d)
	stop.Store(true)
	elapsed := time.Since(start)
	wg.Wait()
	c.CloseIdleConnections()
	res := LoadResult{Requests: int64(len(all)), Errors: errs.Load(), Elapsed: elapsed}
	if len(all) > 0 {
		slices.Sort(all)
		res.P50, res.P99, res.Max = percentile(all, 0.50), percentile(all, 0.99), all[len(all)-1]
	}
	return res
}

func get(ctx context.Context, c *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return err == nil && resp.StatusCode == http.StatusOK
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// percentile returns the q-quantile of sorted (nearest rank).
func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
