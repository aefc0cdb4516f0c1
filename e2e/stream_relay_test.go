package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kinesis-network/portal/api/apitype"
	"github.com/kinesis-network/portal/stream"
	"github.com/kinesis-network/portal/stream/streamtest"
)

// TestStreamSDKThroughTheRelay runs the stream service's SDK suite through a real portal: every
// scenario's server is the upstream of its own HTTPS relay endpoint, and the SDK clients' BaseEndpoint
// is the relay URL. Clients speak HTTP/2 (or HTTP/1.1) over TLS to the relay, which forwards HTTP/1.1
// to the stream server with the /relay/<key> prefix stripped; SubscribeToShard event streams cross it
// as chunked responses that the relay flushes frame by frame.
func TestStreamSDKThroughTheRelay(t *testing.T) {
	t.Parallel()
	e := startPortal(t, nil)
	streamtest.Run(t, streamtest.Harness{Start: e.startStreamBehindRelay(t)})
}

// startStreamBehindRelay returns a streamtest Start function for the portal: it serves a stream server
// on loopback as streamd does (HTTP/1.1 and h2c), creates an HTTPS endpoint with it as the only
// upstream, waits for the route, and returns the relay URL with clients that dial *.localhost at
// 127.0.0.1 and trust the portal CA. parent is the test that owns the portal and the clients.
func (e *env) startStreamBehindRelay(parent *testing.T) func(*testing.T, stream.Config) streamtest.Target {
	auto, h1, h2 := e.relayTransport(true, true), e.relayTransport(true, false), e.relayTransport(false, true)
	parent.Cleanup(func() {
		for _, tr := range []*http.Transport{auto, h1, h2} {
			tr.CloseIdleConnections()
		}
	})
	var n atomic.Int64
	return func(t *testing.T, cfg stream.Config) streamtest.Target {
		t.Helper()
		addr := serveStream(t, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ep, err := e.admin.CreateEndpoint(ctx, apitype.EndpointSpec{Name: fmt.Sprintf("stream-%d", n.Add(1)), Type: "https",
			Upstreams: []string{addr}})
		if err != nil {
			t.Fatalf("CreateEndpoint: %v", err)
		}
		t.Cleanup(func() { _ = e.admin.DeleteEndpoint(context.Background(), ep.ID) })
		tg := streamtest.Target{URL: ep.URL, Client: &http.Client{Transport: auto},
			HTTP1: &http.Client{Transport: h1}, HTTP2: &http.Client{Transport: h2}}
		waitRouted(t, tg.Client, ep.URL)
		return tg
	}
}

// relayTransport returns a transport to the relay speaking HTTP/1.1, HTTP/2 or both (ALPN picks h2).
func (e *env) relayTransport(http1, http2 bool) *http.Transport {
	// A TLS config of its own: a transport that speaks h2 adds "h2" to its config's NextProtos (so e.tlsCfg,
	// which e.http's transport uses, may offer h2 and must not be shared with an HTTP/1.1-only transport).
	tlsCfg := &tls.Config{RootCAs: e.p.CA.Pool()}
	tr := &http.Transport{DialContext: loopbackDial, TLSClientConfig: tlsCfg, Protocols: new(http.Protocols)}
	tr.Protocols.SetHTTP1(http1)
	tr.Protocols.SetHTTP2(http2)
	return tr
}

// serveStream serves a stream.Server for cfg on 127.0.0.1 (HTTP/1.1 and h2c, as streamd does) until t
// ends, and returns its address.
func serveStream(t *testing.T, cfg stream.Config) string {
	t.Helper()
	srv, err := stream.NewServer(cfg)
	if err != nil {
		t.Fatalf("stream.NewServer: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, Protocols: new(http.Protocols)}
	hs.Protocols.SetHTTP1(true)
	hs.Protocols.SetUnencryptedHTTP2(true)
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	t.Cleanup(func() {
		hs.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("stream server: %v", err)
		}
		if err := srv.Close(); err != nil {
			t.Errorf("stream.Server.Close: %v", err)
		}
	})
	return ln.Addr().String()
}

// waitRouted polls the relay URL until the relay routes it (the route table follows the registry's
// change feed): a GET then reaches the stream server, which refuses it with 403 instead of the relay's
// 404 for unknown keys.
func waitRouted(t *testing.T, hc *http.Client, url string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := hc.Get(url)
		last := fmt.Sprint(err)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusForbidden {
				return
			}
			last = resp.Status
		}
		if time.Now().After(deadline) {
			t.Fatalf("relay URL not routed to the stream server: last answer %s", last)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
