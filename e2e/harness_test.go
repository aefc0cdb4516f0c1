// Package e2e holds end-to-end tests: a real portal (internal/portal) on loopback with real TLS, driven
// through the control API client and real HTTP and TCP clients, as a user would.
package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/kinesis-network/portal/api"
	"github.com/kinesis-network/portal/api/client"
	"github.com/kinesis-network/portal/internal/portal"
)

// env is one running portal with an admin client.
type env struct {
	t      *testing.T
	p      *portal.Portal
	http   *http.Client // trusts the portal CA; dials *.localhost at 127.0.0.1
	tlsCfg *tls.Config
	admin  *client.Client
	token  string
}

// loopbackDialer dials every host at 127.0.0.1 (RFC 6761: localhost names are loopback).
func loopbackDial(ctx context.Context, network, addr string) (net.Conn, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", port))
}

func startPortal(t *testing.T, mod func(*portal.Config)) *env {
	t.Helper()
	cfg := portal.Config{
		StateDir: t.TempDir(), RelayListen: "127.0.0.1:0", APIListen: "127.0.0.1:0", MetricsListen: "off",
		PortMin: 0, PortMax: 0, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), TCPDrain: 200 * time.Millisecond,
		ShutdownGrace: 5 * time.Second,
	}
	// Each test gets its own port range so that parallel tests never collide.
	cfg.PortMin, cfg.PortMax = freeRange(t)
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := portal.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	tlsCfg := &tls.Config{RootCAs: p.CA.Pool()}
	hc := &http.Client{
		Transport: &http.Transport{DialContext: loopbackDial, TLSClientConfig: tlsCfg, ForceAttemptHTTP2: true},
		Timeout:   30 * time.Second,
	}
	token, err := api.Bootstrap(ctx, p.Store, "admin", "Admin")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := client.NewWithHTTPClient(p.APIURL(), token, hc)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, p: p, http: hc, tlsCfg: tlsCfg, admin: admin, token: token}
}

// freeRange returns a small port range that was free a moment ago.
func freeRange(t *testing.T) (int, int) {
	for i := 0; i < 50; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if base+10 > 65535 {
			continue
		}
		ok := true
		for p := base; p < base+10; p++ {
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", itoa(p)))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return base, base + 9
		}
	}
	t.Fatal("no free port range")
	return 0, 0
}

func itoa(i int) string { return strconv.Itoa(i) }

// tenant creates a tenant and returns a client holding its (non-admin) token.
func (e *env) tenant(id string) *client.Client {
	e.t.Helper()
	ctx := context.Background()
	if _, err := e.admin.CreateTenant(ctx, id, id); err != nil {
		e.t.Fatal(err)
	}
	tok, err := e.admin.CreateToken(ctx, id, id+"-token", false)
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := client.NewWithHTTPClient(e.p.APIURL(), tok.Token, e.http)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// get fetches url and returns status and body.
func (e *env) get(url string) (int, string) {
	e.t.Helper()
	resp, err := e.http.Get(url)
	if err != nil {
		e.t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// backend is an HTTP server answering {"id": ID, "path": ...}.
func backend(t *testing.T, id string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"id": id, "path": r.URL.RequestURI(), "xff": r.Header.Get("X-Forwarded-For")})
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// echoBackend is a TCP server that answers ID ":" + what it reads.
func echoBackend(t *testing.T, id string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Write([]byte(id + ":"))
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}
