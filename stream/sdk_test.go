package stream_test

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/kinesis-network/portal/stream"
	"github.com/kinesis-network/portal/stream/streamtest"
)

// TestSDK runs the SDK scenario suite against servers on loopback listeners: all of it over plain
// HTTP/1.1 and h2c, and the scenarios that depend on the transport (event streams, signatures) again
// over TLS with HTTP/2 and HTTP/1.1. e2e runs the whole suite through a portal HTTPS relay.
func TestSDK(t *testing.T) {
	t.Run("h2c", func(t *testing.T) {
		t.Parallel()
		h1, h2 := transport(nil, false), transport(nil, true)
		t.Cleanup(func() { h1.CloseIdleConnections(); h2.CloseIdleConnections() })
		streamtest.Run(t, streamtest.Harness{Start: func(t *testing.T, cfg stream.Config) streamtest.Target {
			_, url := startServer(t, cfg)
			return streamtest.Target{URL: url, HTTP1: &http.Client{Transport: h1}, HTTP2: &http.Client{Transport: h2}}
		}})
	})
	t.Run("tls", func(t *testing.T) {
		t.Parallel()
		streamtest.Run(t, streamtest.Harness{Start: startTLS},
			"EnhancedFanOut", "EnhancedFanOutLifetime", "EnhancedFanOutPromptDelivery", "SigV4")
	})
}

// startTLS serves a Server for cfg over TLS with HTTP/2 and HTTP/1.1 (ALPN).
func startTLS(t *testing.T, cfg stream.Config) streamtest.Target {
	t.Helper()
	srv, err := stream.NewServer(cfg)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	hs := httptest.NewUnstartedServer(srv)
	hs.EnableHTTP2 = true
	hs.TLS = &tls.Config{NextProtos: []string{"h2", "http/1.1"}}
	hs.StartTLS()
	pool := x509.NewCertPool()
	pool.AddCert(hs.Certificate())
	tlsCfg := &tls.Config{RootCAs: pool}
	auto, h1, h2 := transport(tlsCfg, false), transport(tlsCfg, false), transport(tlsCfg, true)
	auto.Protocols.SetHTTP2(true)
	t.Cleanup(func() {
		for _, tr := range []*http.Transport{auto, h1, h2} {
			tr.CloseIdleConnections()
		}
		hs.CloseClientConnections()
		hs.Close()
		if err := srv.Close(); err != nil {
			t.Errorf("Server.Close: %v", err)
		}
	})
	return streamtest.Target{URL: hs.URL, Client: &http.Client{Transport: auto},
		HTTP1: &http.Client{Transport: h1}, HTTP2: &http.Client{Transport: h2}}
}

// transport returns a transport speaking only HTTP/1.1 or only HTTP/2: h2c with prior knowledge when
// tlsCfg is nil, h2 over TLS otherwise.
func transport(tlsCfg *tls.Config, http2 bool) *http.Transport {
	tr := &http.Transport{Protocols: new(http.Protocols)}
	if tlsCfg != nil {
		tr.TLSClientConfig = tlsCfg.Clone() // a transport that speaks h2 adds "h2" to its config's NextProtos
	}
	switch {
	case !http2:
		tr.Protocols.SetHTTP1(true)
	case tlsCfg == nil:
		tr.Protocols.SetUnencryptedHTTP2(true)
	default:
		tr.Protocols.SetHTTP2(true)
	}
	return tr
}
