package httprelay_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kinesis-network/portal/gateway/httprelay"
	"github.com/kinesis-network/portal/registry"
)

// TestLocationAndSetCookieRewritten checks, end to end, that redirects and cookies from the backend
// come back under the endpoint's prefix.
func TestLocationAndSetCookieRewritten(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	var self string
	be := newBackend(t, "a", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/abs":
			http.Redirect(w, r, "/login?next=%2Fhome", http.StatusFound)
		case "/backend":
			w.Header().Set("Location", "http://"+self+"/a?b=c")
			w.WriteHeader(http.StatusMovedPermanently)
		case "/host":
			w.Header().Set("Location", "http://"+r.Host+"/b")
			w.WriteHeader(http.StatusSeeOther)
		case "/other":
			w.Header().Set("Location", "https://accounts.example.org/oauth")
			w.WriteHeader(http.StatusFound)
		case "/relative":
			w.Header().Set("Location", "next")
			w.WriteHeader(http.StatusFound)
		case "/cookies":
			w.Header().Add("Set-Cookie", "sid=1; Path=/app; Domain=backend.internal; HttpOnly")
			w.Header().Add("Set-Cookie", "root=2; Path=/")
			w.Header().Add("Set-Cookie", "bare=3")
		}
	}))
	self = be.addr
	_, key := h.endpoint(nil, be.spec())
	prefix := httprelay.Prefix + key
	base := "https://" + testHost + ":" + h.port()
	for _, proto := range protos {
		c := h.client(proto)
		for path, want := range map[string]string{
			"/abs":      prefix + "/login?next=%2Fhome",
			"/backend":  base + prefix + "/a?b=c",
			"/host":     base + prefix + "/b",
			"/other":    "https://accounts.example.org/oauth",
			"/relative": "next",
		} {
			resp, _ := do(t, c, http.MethodGet, h.url(key, path), nil)
			if got := resp.Header.Get("Location"); got != want {
				t.Errorf("%s %s: Location %q, want %q", proto, path, redact(got), redact(want))
			}
		}
		resp, _ := do(t, c, http.MethodGet, h.url(key, "/cookies"), nil)
		got := map[string]string{}
		for _, ck := range resp.Cookies() {
			got[ck.Name] = ck.Path + " " + ck.Domain
		}
		for name, want := range map[string]string{"sid": prefix + "/app ", "root": prefix + " ", "bare": prefix + " "} {
			if got[name] != want {
				t.Errorf("%s: cookie %s path/domain %q, want %q", proto, name, redact(got[name]), redact(want))
			}
		}
	}
}

// TestRouteSwapDuringRequests changes the endpoint over and over, and finally replaces every instance,
// while requests are in flight: they all complete intact, and new requests keep being served.
func TestRouteSwapDuringRequests(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	release := make(chan struct{})
	var blocked atomic.Int64
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 1024)
	handler := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/slow" {
				fmt.Fprint(w, name)
				return
			}
			_, _ = w.Write(chunk)
			w.(http.Flusher).Flush()
			blocked.Add(1)
			<-release
			_, _ = w.Write(chunk)
		})
	}
	a, b := newBackend(t, "a", handler("a")), newBackend(t, "b", handler("b"))
	ep, key := h.endpoint(nil, a.spec(), b.spec())

	const inflight = 8
	var wg sync.WaitGroup
	errs := make(chan error, inflight)
	for i := range inflight {
		c := h.client(protos[i%2])
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.Get(h.url(key, "/slow"))
			if err != nil {
				errs <- fmt.Errorf("in-flight request: %s", redact(err.Error()))
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != 200 || len(body) != 2*len(chunk) {
				errs <- fmt.Errorf("in-flight request: status %d, %d bytes, err %v", resp.StatusCode, len(body), err)
			}
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for blocked.Load() < inflight {
		if time.Now().After(deadline) {
			t.Fatalf("only %d requests in flight", blocked.Load())
		}
		time.Sleep(time.Millisecond)
	}

	c := h.client("h2")
	extra := newBackend(t, "extra", handler("extra"))
	for i := range 20 {
		h.update(ep.ID, func(e *registry.Endpoint) {
			e.RateLimit = registry.RateLimit{RPS: float64(1000 + i), Burst: 1000}
			e.Balance = []string{"p2c", "round_robin"}[i%2]
			e.Sticky.Enabled = i%3 == 0
			if i%2 == 0 {
				e.Instances = append(e.Instances, registry.Instance{ID: "in_extra", Addr: extra.addr})
			} else {
				e.Instances = e.Instances[:2]
			}
		})
		resp, body := do(t, c, http.MethodGet, h.url(key, "/fast"), nil)
		if resp.StatusCode != 200 || !strings.Contains("a b extra", string(body)) {
			t.Fatalf("request during swap %d: %d %q", i, resp.StatusCode, body)
		}
	}
	// Replace every instance the in-flight requests are using.
	fresh := newBackend(t, "fresh", handler("fresh"))
	h.update(ep.ID, func(e *registry.Endpoint) {
		e.Instances = []registry.Instance{{ID: "in_fresh", Addr: fresh.addr}}
	})
	resp, body := do(t, c, http.MethodGet, h.url(key, "/fast"), nil)
	if string(body) != "fresh" {
		t.Fatalf("after replacing instances: %d %q", resp.StatusCode, body)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	waitIdle(t, h, ep.ID)
}
