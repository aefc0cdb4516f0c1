package httprelay_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kinesis-network/portal/gateway/httprelay"
	"github.com/kinesis-network/portal/registry"
)

var protos = []string{"h1", "h2"}

func TestForwarding(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	be := newBackend(t, "a", nil)
	_, key := h.endpoint(nil, be.spec())
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			c := h.client(proto)
			tests := []struct {
				name, rest          string
				wantPath, wantQuery string
			}{
				{"root without slash", "", "/", ""},
				{"root", "/", "/", ""},
				{"path and query", "/a/b?x=1&y=two", "/a/b", "x=1&y=two"},
				{"escaped slash kept", "/files/a%2Fb", "/files/a%2Fb", ""},
				{"escaped space", "/a%20b?q=%20", "/a%20b", "q=%20"},
				{"trailing slash", "/dir/", "/dir/", ""},
				{"query on root", "?only=query", "/", "only=query"},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					resp, b := do(t, c, http.MethodGet, h.url(key, tc.rest), nil,
						"X-Forwarded-For", "6.6.6.6", "X-Forwarded-Host", "evil.example", "X-Forwarded-Proto", "http",
						"X-Forwarded-Prefix", "/evil")
					if wantMajor := map[string]int{"h1": 1, "h2": 2}[proto]; resp.ProtoMajor != wantMajor {
						t.Fatalf("client spoke HTTP/%d, want %d", resp.ProtoMajor, wantMajor)
					}
					e := decodeEcho(t, resp, b)
					if e.Path != tc.wantPath || e.Query != tc.wantQuery {
						t.Fatalf("backend saw path %q query %q, want %q %q", e.Path, e.Query, tc.wantPath, tc.wantQuery)
					}
					for name, want := range map[string]string{
						"X-Forwarded-For":    "127.0.0.1",
						"X-Forwarded-Proto":  "https",
						"X-Forwarded-Host":   testHost + ":" + h.port(),
						"X-Forwarded-Prefix": httprelay.Prefix + key,
					} {
						if got := e.Header.Values(name); len(got) != 1 || got[0] != want {
							t.Errorf("%s = %q, want [%q] (client-sent values must not be trusted)", name, got, want)
						}
					}
					if strings.Contains(e.Path, key) || strings.Contains(e.Query, key) {
						t.Error("key forwarded in the path or query")
					}
				})
			}
		})
	}
}

func TestNotFoundGivesNoHint(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	be := newBackend(t, "a", nil)
	ep, key := h.endpoint(nil, be.spec())
	c := h.client("h1")

	var bodies []string
	for _, path := range []string{
		h.url(registry.NewSecret(), "/x"),            // well-formed, unknown
		h.url("short", "/x"),                         // malformed: length
		h.url(strings.Repeat("!", 43), "/x"),         // malformed: alphabet
		h.url(key[:42]+"+", "/x"),                    // malformed: base64 std alphabet
		"https://" + testHost + ":" + h.port() + "/", // not a relay path
		"https://" + testHost + ":" + h.port() + "/relay/",
	} {
		resp, b := do(t, c, http.MethodGet, path, nil)
		wantError(t, resp, b, http.StatusNotFound)
		bodies = append(bodies, string(b))
	}
	// A deleted endpoint's key is as unknown as one that never existed.
	if err := h.store.DeleteEndpoint(t.Context(), "", ep.ID); err != nil {
		t.Fatal(err)
	}
	waitGone(t, h, ep.ID)
	resp, b := do(t, c, http.MethodGet, h.url(key, "/x"), nil)
	wantError(t, resp, b, http.StatusNotFound)
	bodies = append(bodies, string(b))
	for _, b := range bodies[1:] {
		if b != bodies[0] {
			t.Fatalf("404 bodies differ: %q vs %q", b, bodies[0])
		}
	}
	if be.hits.Load() != 0 {
		t.Fatalf("backend reached %d times", be.hits.Load())
	}
}

func waitGone(t *testing.T, h *harness, id string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for h.cache.Table().Get(id) != nil {
		if time.Now().After(deadline) {
			t.Fatal("route not removed")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestKeyRotationWithGrace(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	be := newBackend(t, "a", nil)
	t0 := time.Now()
	h.clock.fixedAt(t0)
	oldKey := registry.NewSecret()
	grace := t0.Add(time.Hour)
	ep, newKey := h.endpoint(func(e *registry.Endpoint) {
		e.Keys = append(e.Keys, registry.AccessKey{Hash: registry.HashSecret(oldKey), CreatedAt: t0.Add(-24 * time.Hour), ExpiresAt: &grace})
	}, be.spec())
	c := h.client("h2")
	for _, k := range []string{newKey, oldKey} {
		resp, b := do(t, c, http.MethodGet, h.url(k, "/"), nil)
		decodeEcho(t, resp, b)
	}
	h.clock.Advance(time.Hour - time.Second)
	resp, b := do(t, c, http.MethodGet, h.url(oldKey, "/"), nil)
	decodeEcho(t, resp, b)

	h.clock.Advance(time.Second) // exactly at ExpiresAt: no longer valid
	resp, b = do(t, c, http.MethodGet, h.url(oldKey, "/"), nil)
	wantError(t, resp, b, http.StatusNotFound)
	_, unknown := do(t, c, http.MethodGet, h.url(registry.NewSecret(), "/"), nil)
	if !bytes.Equal(b, unknown) {
		t.Fatalf("expired key answered %q, unknown key %q", b, unknown)
	}
	resp, b = do(t, c, http.MethodGet, h.url(newKey, "/"), nil)
	decodeEcho(t, resp, b)

	// Revoking the old key outright (as the API does after the grace period) keeps it dead.
	h.update(ep.ID, func(e *registry.Endpoint) { e.Keys = e.Keys[:1] })
	h.clock.Advance(-2 * time.Hour)
	resp, b = do(t, c, http.MethodGet, h.url(oldKey, "/"), nil)
	wantError(t, resp, b, http.StatusNotFound)
}

func TestBalancingSpreads(t *testing.T) {
	for _, policy := range []string{"p2c", "round_robin"} {
		for _, proto := range protos {
			t.Run(policy+"/"+proto, func(t *testing.T) {
				h := newHarness(t, harnessOptions{})
				var specs []instanceSpec
				var bes []*backend
				for i := range 4 {
					be := newBackend(t, fmt.Sprint("b", i), nil)
					bes = append(bes, be)
					specs = append(specs, be.spec())
				}
				_, key := h.endpoint(func(e *registry.Endpoint) { e.Balance = policy }, specs...)
				c := h.client(proto)
				const n = 200
				count := map[string]int{}
				for range n {
					resp, b := do(t, c, http.MethodGet, h.url(key, "/"), nil)
					count[decodeEcho(t, resp, b).Instance]++
				}
				for _, be := range bes {
					got := count[be.name]
					switch {
					case policy == "round_robin" && got != n/len(bes):
						t.Errorf("round robin gave %s %d requests, want %d (%v)", be.name, got, n/len(bes), count)
					case got < n/len(bes)/3:
						t.Errorf("%s got %d of %d requests (%v)", be.name, got, n, count)
					}
				}
			})
		}
	}
}

// TestP2CPrefersIdle checks that power-of-two-choices steers new requests away from an instance with
// requests piled up in flight, and that in-flight counts survive a route-table rebuild.
func TestP2CPrefersIdle(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	release := make(chan struct{})
	slow := newBackend(t, "slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	fast := newBackend(t, "fast", nil)
	ep, key := h.endpoint(nil, slow.spec())
	c := h.client("h2")
	var wg sync.WaitGroup
	// Pile five requests up on the only instance, then add an idle one.
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.Get(h.url(key, "/"))
			if err == nil {
				resp.Body.Close()
			}
		}()
	}
	for slow.hits.Load() < 5 {
		time.Sleep(time.Millisecond)
	}
	h.update(ep.ID, func(e *registry.Endpoint) {
		e.Instances = append(e.Instances, registry.Instance{ID: fast.spec().id, Addr: fast.addr})
	})
	// With two instances P2C always compares both: every new request goes to the idle one.
	for range 20 {
		resp, b := do(t, c, http.MethodGet, h.url(key, "/"), nil)
		if e := decodeEcho(t, resp, b); e.Instance != "fast" {
			t.Fatalf("request went to %s", e.Instance)
		}
	}
	close(release)
	wg.Wait()
	waitIdle(t, h, ep.ID)
}

// waitIdle waits until no instance of endpoint id counts a request in flight (the relay releases an
// instance when it closes the response body, just after the client has read its end).
func waitIdle(t *testing.T, h *harness, id string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		busy := ""
		for _, in := range h.cache.Table().Get(id).Pool.Instances() {
			if n := in.InFlight(); n != 0 {
				busy += fmt.Sprintf(" %s:%d", in.ID, n)
			}
		}
		if busy == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("requests still counted in flight after they all ended:%s", busy)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestFirewall(t *testing.T) {
	tests := []struct {
		name        string
		listen      string
		allow, deny []string
		want        int
	}{
		{"v4 no rules", "127.0.0.1:0", nil, nil, 200},
		{"v4 allowed", "127.0.0.1:0", []string{"127.0.0.1/32"}, nil, 200},
		{"v4 not in allow list", "127.0.0.1:0", []string{"10.0.0.0/8"}, nil, 403},
		{"v4 denied", "127.0.0.1:0", nil, []string{"127.0.0.0/8"}, 403},
		{"v4 deny wins over allow", "127.0.0.1:0", []string{"127.0.0.0/8"}, []string{"127.0.0.1/32"}, 403},
		{"v4 allow list of v6 only", "127.0.0.1:0", []string{"::1/128"}, nil, 403},
		{"v6 allowed", "[::1]:0", []string{"::1/128"}, nil, 200},
		{"v6 allowed among v4", "[::1]:0", []string{"10.0.0.0/8", "::/0"}, nil, 200},
		{"v6 not in allow list", "[::1]:0", []string{"2001:db8::/32", "127.0.0.0/8"}, nil, 403},
		{"v6 denied", "[::1]:0", nil, []string{"::1/128"}, 403},
		{"v6 denied by ::/0", "[::1]:0", []string{"127.0.0.1/32"}, []string{"::/0"}, 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{listen: tc.listen})
			be := newBackend(t, "a", nil)
			ep, key := h.endpoint(func(e *registry.Endpoint) {
				e.Firewall.Allow, e.Firewall.Deny = tc.allow, tc.deny
			}, be.spec())
			for _, proto := range protos {
				c := h.client(proto)
				// X-Forwarded-For names an allowed address: it must not be believed.
				resp, b := do(t, c, http.MethodPost, h.url(key, "/"), strings.NewReader("body"),
					"X-Forwarded-For", "10.1.2.3, 2001:db8::1", "X-Real-IP", "10.1.2.3")
				if tc.want == 200 {
					e := decodeEcho(t, resp, b)
					wantXFF := "127.0.0.1"
					if strings.HasPrefix(tc.listen, "[") {
						wantXFF = "::1"
					}
					if got := e.Header.Get("X-Forwarded-For"); got != wantXFF {
						t.Fatalf("X-Forwarded-For %q, want %q", got, wantXFF)
					}
					continue
				}
				wantError(t, resp, b, tc.want)
			}
			if tc.want == 403 && be.hits.Load() != 0 {
				t.Fatal("denied request reached the backend")
			}
			if tc.want == 403 {
				if got := counterValue(t, h, "portal_relay_firewall_denied_total", "endpoint", ep.ID); got != 2 {
					t.Fatalf("firewall_denied_total = %v, want 2", got)
				}
			}
		})
	}
}

func TestRateLimit(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.clock.fixedAt(time.Now()) // a frozen clock: no token refills during the test
	be := newBackend(t, "a", nil)
	ep, key := h.endpoint(func(e *registry.Endpoint) { e.RateLimit = registry.RateLimit{RPS: 0.5, Burst: 3} }, be.spec())
	c := h.client("h2")
	for i := range 3 {
		resp, b := do(t, c, http.MethodGet, h.url(key, "/"), nil)
		if resp.StatusCode != 200 {
			t.Fatalf("request %d within burst: %d %s", i, resp.StatusCode, b)
		}
	}
	resp, b := do(t, c, http.MethodGet, h.url(key, "/"), nil)
	wantError(t, resp, b, http.StatusTooManyRequests)
	if ra := resp.Header.Get("Retry-After"); ra != "2" {
		t.Fatalf("Retry-After %q, want 2 (one token at 0.5/s)", ra)
	}
	// Refused requests do not consume tokens: after 2 s exactly one more fits.
	h.clock.Advance(2 * time.Second)
	resp, _ = do(t, c, http.MethodGet, h.url(key, "/"), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("after refill: %d", resp.StatusCode)
	}
	resp, _ = do(t, c, http.MethodGet, h.url(key, "/"), nil)
	if resp.StatusCode != 429 {
		t.Fatalf("second after refill: %d", resp.StatusCode)
	}
	if got := be.hits.Load(); got != 4 {
		t.Fatalf("backend got %d requests, want 4", got)
	}
	if got := counterValue(t, h, "portal_relay_rate_limited_total", "endpoint", ep.ID); got != 2 {
		t.Fatalf("rate_limited_total = %v, want 2", got)
	}
	// A limit change keeps serving; raising the limit takes effect.
	h.update(ep.ID, func(e *registry.Endpoint) { e.RateLimit = registry.RateLimit{} })
	for range 10 {
		resp, _ = do(t, c, http.MethodGet, h.url(key, "/"), nil)
		if resp.StatusCode != 200 {
			t.Fatalf("unlimited: %d", resp.StatusCode)
		}
	}
}
