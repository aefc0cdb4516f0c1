package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/kinesis-network/portal/api/apitype"
	"github.com/kinesis-network/portal/api/client"
)

func TestHTTPSEndpointLifecycleAndTenantIsolation(t *testing.T) {
	t.Parallel()
	e := startPortal(t, nil)
	ctx := context.Background()
	a, b := e.tenant("tenant-a"), e.tenant("tenant-b")
	b1, b2 := backend(t, "b1"), backend(t, "b2")

	ep, err := a.CreateEndpoint(ctx, apitype.EndpointSpec{Name: "web", Type: "https", Upstreams: []string{b1, b2}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ep.AccessKey) < 43 || !strings.Contains(ep.URL, ep.AccessKey) {
		t.Fatalf("create returned key %q url %q", ep.AccessKey, ep.URL)
	}
	seen := map[string]bool{}
	for i := 0; i < 20; i++ {
		code, body := e.get(ep.URL + "x?y=1")
		if code != 200 {
			t.Fatalf("relay answered %d: %s", code, body)
		}
		var got map[string]string
		json.Unmarshal([]byte(body), &got)
		if got["path"] != "/x?y=1" || got["xff"] != "127.0.0.1" {
			t.Fatalf("backend saw %v", got)
		}
		seen[got["id"]] = true
	}
	if !seen["b1"] || !seen["b2"] {
		t.Fatalf("not balanced: %v", seen)
	}

	// Tenant B sees nothing of A's and can touch nothing.
	if l, err := b.ListEndpoints(ctx); err != nil || len(l) != 0 {
		t.Fatalf("tenant B lists %v %v", l, err)
	}
	if _, err := b.GetEndpoint(ctx, ep.ID); !client.IsNotFound(err) {
		t.Fatalf("tenant B GET: %v", err)
	}
	if _, err := b.PatchEndpoint(ctx, ep.ID, map[string]any{"name": "stolen"}); !client.IsNotFound(err) {
		t.Fatalf("tenant B PATCH: %v", err)
	}
	if _, err := b.RotateKey(ctx, ep.ID, 0); !client.IsNotFound(err) {
		t.Fatalf("tenant B rotate: %v", err)
	}
	if err := b.DeleteEndpoint(ctx, ep.ID); !client.IsNotFound(err) {
		t.Fatalf("tenant B DELETE: %v", err)
	}
	if code, _ := e.get(ep.URL); code != 200 {
		t.Fatalf("A's endpoint damaged by B: %d", code)
	}

	// Rotation with grace: both keys work; then a rotation without grace leaves only the newest.
	r1, err := a.RotateKey(ctx, ep.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, e, r1.URL, 200)
	if code, _ := e.get(ep.URL); code != 200 {
		t.Fatalf("old key refused during grace: %d", code)
	}
	r2, err := a.RotateKey(ctx, ep.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, e, r2.URL, 200)
	for _, old := range []string{ep.URL, r1.URL} {
		if code, _ := e.get(old); code != 404 {
			t.Fatalf("retired key answered %d", code)
		}
	}
	if err := a.DeleteEndpoint(ctx, ep.ID); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, e, r2.URL, 404)
}

// waitStatus polls url until it answers code (route changes propagate through the change feed).
func waitStatus(t *testing.T, e *env, url string, code int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, _ := e.get(url)
		if got == code {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s answered %d, want %d", url, got, code)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func dialEcho(t *testing.T, addr string, tlsCfg *tls.Config, msg string) (string, error) {
	t.Helper()
	_, port, _ := net.SplitHostPort(addr)
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if tlsCfg != nil {
		host, _, _ := net.SplitHostPort(addr)
		cfg := tlsCfg.Clone()
		cfg.ServerName = host
		tc := tls.Client(c, cfg)
		if err := tc.Handshake(); err != nil {
			return "", err
		}
		c = tc
	}
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	want := 3 + len(msg) // "tN:" + msg
	buf := make([]byte, want)
	if _, err := io.ReadFull(r, buf); err != nil {
		return string(buf), err
	}
	return string(buf), nil
}

func TestTCPEndpointThroughThePortal(t *testing.T) {
	t.Parallel()
	e := startPortal(t, nil)
	ctx := context.Background()
	a := e.tenant("tcp-tenant")
	t1 := echoBackend(t, "t1")
	ep, err := a.CreateEndpoint(ctx, apitype.EndpointSpec{Name: "db", Type: "tcp", Upstreams: []string{t1}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(ep.Address, ":"+itoa(ep.Port)) || ep.Port == 0 {
		t.Fatalf("address %q port %d", ep.Address, ep.Port)
	}
	eventually(t, func() error { _, err := dialEcho(t, ep.Address, nil, "hello"); return err })
	if got, err := dialEcho(t, ep.Address, nil, "hello"); err != nil || got != "t1:hello" {
		t.Fatalf("plain echo = %q, %v", got, err)
	}
	if _, err := a.PatchEndpoint(ctx, ep.ID, map[string]any{"tls": map[string]any{"mode": "tls"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() error { _, err := dialEcho(t, ep.Address, e.tlsCfg, "secure"); return err })
	if got, err := dialEcho(t, ep.Address, e.tlsCfg, "secure"); err != nil || got != "t1:secure" {
		t.Fatalf("tls echo = %q, %v", got, err)
	}
	if err := a.DeleteEndpoint(ctx, ep.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() error {
		if _, err := dialEcho(t, ep.Address, e.tlsCfg, "gone"); err == nil {
			return errStillServing
		}
		return nil
	})
}

type constErr string

func (e constErr) Error() string { return string(e) }

const errStillServing = constErr("deleted endpoint still serves")

func eventually(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestGracefulShutdownFinishesInFlightRequests(t *testing.T) {
	t.Parallel()
	e := startPortal(t, nil)
	ctx := context.Background()
	slow := slowBackend(t, 300*time.Millisecond)
	ep, err := e.admin.CreateEndpoint(ctx, apitype.EndpointSpec{Name: "slow", Type: "https", Upstreams: []string{slow}})
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, e, ep.URL, 200)
	done := make(chan int, 1)
	go func() { code, _ := e.get(ep.URL + "slow"); done <- code }()
	time.Sleep(100 * time.Millisecond) // let the request reach the backend
	if err := e.p.Close(context.Background()); err != nil {
		t.Fatalf("close: %v", err)
	}
	if code := <-done; code != 200 {
		t.Fatalf("in-flight request got %d during shutdown", code)
	}
}

func TestHTTP3OnTheRelayPort(t *testing.T) {
	t.Parallel()
	e := startPortal(t, nil)
	ctx := context.Background()
	ep, err := e.admin.CreateEndpoint(ctx, apitype.EndpointSpec{Name: "h3", Type: "https", Upstreams: []string{backend(t, "h3b")}})
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, e, ep.URL, 200)
	// HTTP/2 answers announce HTTP/3.
	resp, err := e.http.Get(ep.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if alt := resp.Header.Get("Alt-Svc"); !strings.Contains(alt, "h3=") {
		t.Fatalf("no Alt-Svc h3 announcement: %q", alt)
	}
	tr := &http3.Transport{
		TLSClientConfig: e.tlsCfg.Clone(),
		Dial: func(ctx context.Context, addr string, tlsCfg *tls.Config, qcfg *quic.Config) (*quic.Conn, error) {
			_, port, _ := net.SplitHostPort(addr)
			return quic.DialAddr(ctx, "127.0.0.1:"+port, tlsCfg, qcfg)
		},
	}
	defer tr.Close()
	h3 := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err = h3.Get(ep.URL + "over-quic")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]string
	json.NewDecoder(resp.Body).Decode(&got)
	if resp.StatusCode != 200 || resp.Proto != "HTTP/3.0" || got["id"] != "h3b" || got["path"] != "/over-quic" {
		t.Fatalf("HTTP/3 relay: %d %s %v", resp.StatusCode, resp.Proto, got)
	}
}

func TestTCPConnectionLimitPerIP(t *testing.T) {
	t.Parallel()
	e := startPortal(t, nil)
	ctx := context.Background()
	ep, err := e.admin.CreateEndpoint(ctx, apitype.EndpointSpec{Name: "limited", Type: "tcp",
		Upstreams: []string{echoBackend(t, "t1")}, Limits: &apitype.Limits{MaxConnsPerIP: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if ep.Limits == nil || ep.Limits.MaxConnsPerIP != 1 {
		t.Fatalf("limits not stored: %+v", ep.Limits)
	}
	_, port, _ := net.SplitHostPort(ep.Address)
	// The first connection is served (retrying while the listener comes up).
	var held net.Conn
	eventually(t, func() error {
		c, err := net.Dial("tcp", "127.0.0.1:"+port)
		if err != nil {
			return err
		}
		c.Write([]byte("x"))
		buf := make([]byte, 4)
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "t1:x" {
			c.Close()
			return fmt.Errorf("first connection: %q %v", buf, err)
		}
		held = c
		return nil
	})
	defer held.Close()
	if got, err := dialEcho(t, ep.Address, nil, "b"); err == nil {
		t.Fatalf("second concurrent connection from one IP was served: %q", got)
	}
	held.Close()
	eventually(t, func() error { _, err := dialEcho(t, ep.Address, nil, "c"); return err })
}
