package httprelay_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
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

// TestKilledInstanceIsEjected kills one of three instances under steady load from concurrent clients
// (GETs and POSTs with bodies). No GET may fail: a connect failure is retried elsewhere, and so is a
// bodyless idempotent request whose connection broke when the instance died. A POST whose body was
// already streamed to the instance when it died cannot be replayed (the relay does not buffer
// bodies); such a request may fail, but only if it started before the relay noticed the death. The
// dead instance is ejected and traffic continues on the others.
func TestKilledInstanceIsEjected(t *testing.T) {
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			h := newHarness(t, harnessOptions{relay: httprelay.Options{EjectBase: time.Minute, EjectMax: time.Minute}})
			a, b, victim := newBackend(t, "a", nil), newBackend(t, "b", nil), newBackend(t, "victim", nil)
			ep, key := h.endpoint(nil, a.spec(), b.spec(), victim.spec())
			vin := h.cache.Table().Get(ep.ID).Pool.Get("in_victim")
			c := h.client(proto)

			var (
				wg         sync.WaitGroup
				stop       = make(chan struct{})
				served     atomic.Int64
				ejectedAt  atomic.Int64 // unix nanos when the test saw the ejection; 0 before
				mu         sync.Mutex
				getFails   []string
				latePosts  []string
				earlyPosts int
			)
			for w := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						var body io.Reader
						method := http.MethodGet
						if (w+i)%2 == 1 {
							method, body = http.MethodPost, strings.NewReader(fmt.Sprintf("payload %d/%d", w, i))
						}
						started := time.Now().UnixNano()
						req, _ := http.NewRequest(method, h.url(key, "/"), body)
						resp, err := c.Do(req)
						if err == nil {
							_, err = io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
							if err == nil && resp.StatusCode != 200 {
								err = fmt.Errorf("status %d", resp.StatusCode)
							}
						}
						if err == nil {
							served.Add(1)
							continue
						}
						mu.Lock()
						switch e := redact(err.Error()); {
						case method == http.MethodGet:
							getFails = append(getFails, e)
						case ejectedAt.Load() == 0 || started < ejectedAt.Load():
							earlyPosts++
						default:
							latePosts = append(latePosts, e)
						}
						mu.Unlock()
					}
				}()
			}
			waitFor := func(what string, cond func() bool) {
				deadline := time.Now().Add(10 * time.Second)
				for !cond() {
					if time.Now().After(deadline) {
						close(stop)
						wg.Wait()
						t.Fatalf("timed out waiting for %s", what)
					}
					time.Sleep(time.Millisecond)
				}
			}
			waitFor("traffic", func() bool { return served.Load() >= 100 })
			if victim.hits.Load() == 0 {
				t.Fatal("victim never served before the kill")
			}
			victim.kill()
			waitFor("ejection", func() bool { return !vin.Healthy(time.Now()) })
			ejectedAt.Store(time.Now().UnixNano())
			after := served.Load()
			waitFor("traffic after the ejection", func() bool { return served.Load() >= after+300 })
			close(stop)
			wg.Wait()

			upstream := func() string {
				var out []string
				for _, l := range strings.Split(h.logs.String(), "\n") {
					if strings.Contains(l, "upstream error") {
						out = append(out, l)
					}
				}
				return strings.Join(out, "\n")
			}
			if len(getFails) > 0 || len(latePosts) > 0 {
				t.Fatalf("client-visible failures: GET %q, POST started after the ejection %q\n%s", getFails, latePosts, upstream())
			}
			if earlyPosts > 0 {
				t.Logf("%d POSTs in flight on the dying instance failed", earlyPosts)
			}
			if !strings.Contains(h.logs.String(), `"msg":"relay: instance ejected"`) {
				t.Fatal("ejection not logged")
			}
			waitIdle(t, h, ep.ID)
		})
	}
}

// TestConnectFailureRetriedWithBody sends requests with bodies to an endpoint whose first round-robin
// choice refuses connections: the relay must retry on the live instance and deliver the whole body.
func TestConnectFailureRetriedWithBody(t *testing.T) {
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			h := newHarness(t, harnessOptions{})
			live := newBackend(t, "live", nil)
			ep, key := h.endpoint(func(e *registry.Endpoint) { e.Balance = "round_robin" },
				instanceSpec{"in_dead", deadAddr(t)}, live.spec())
			c := h.client(proto)
			payload := bytes.Repeat([]byte("retry me "), 10000)
			sum := sha256.Sum256(payload)
			for _, body := range []func() io.Reader{
				func() io.Reader { return bytes.NewReader(payload) },                 // with Content-Length
				func() io.Reader { return io.MultiReader(bytes.NewReader(payload)) }, // chunked / no length
			} {
				resp, b := do(t, c, http.MethodPut, h.url(key, "/put"), body())
				e := decodeEcho(t, resp, b)
				if e.Instance != "live" || e.BodyLen != int64(len(payload)) || e.BodySHA != hex.EncodeToString(sum[:]) {
					t.Fatalf("backend %s got %d bytes (want %d) sha %s", e.Instance, e.BodyLen, len(payload), e.BodySHA)
				}
				// The dead instance is ejected; make it eligible again so the next request retries too.
				dead := h.cache.Table().Get(ep.ID).Pool.Get("in_dead")
				if dead.Healthy(time.Now()) {
					t.Fatal("dead instance not ejected")
				}
				h.update(ep.ID, func(e *registry.Endpoint) { e.Instances[0].Addr = deadAddr(t) })
			}
		})
	}
}

// TestAllInstancesDown checks that an endpoint without a live instance fails fast with 502/503, and
// that once every instance is ejected the relay answers 503 without dialling.
func TestAllInstancesDown(t *testing.T) {
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			h := newHarness(t, harnessOptions{})
			_, key := h.endpoint(nil, instanceSpec{"in_x", deadAddr(t)}, instanceSpec{"in_y", deadAddr(t)})
			_, empty := h.endpoint(nil)
			c := h.client(proto)
			for i := range 3 {
				within(t, time.Second, "all-down request", func() {
					resp, b := do(t, c, http.MethodGet, h.url(key, "/"), nil)
					if resp.StatusCode != 502 && resp.StatusCode != 503 {
						t.Fatalf("request %d: status %d: %s", i, resp.StatusCode, b)
					}
					if i > 0 {
						wantError(t, resp, b, 503)
					}
				})
			}
			resp, b := do(t, c, http.MethodPost, h.url(empty, "/"), strings.NewReader("x"))
			wantError(t, resp, b, 503)
		})
	}
}

// TestEjectedInstanceReturns checks that an ejected instance is tried again once its back-off ends.
func TestEjectedInstanceReturns(t *testing.T) {
	h := newHarness(t, harnessOptions{relay: httprelay.Options{EjectBase: 50 * time.Millisecond, EjectMax: 50 * time.Millisecond}})
	addr := deadAddr(t)
	ep, key := h.endpoint(nil, instanceSpec{"in_flaky", addr})
	c := h.client("h1")
	resp, _ := do(t, c, http.MethodGet, h.url(key, "/"), nil)
	if resp.StatusCode != 503 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// Bring an instance up on the same id, new address: a changed address starts with clean counters.
	be := newBackend(t, "flaky", nil)
	h.update(ep.ID, func(e *registry.Endpoint) { e.Instances[0].Addr = be.addr })
	resp, b := do(t, c, http.MethodGet, h.url(key, "/"), nil)
	decodeEcho(t, resp, b)

	// Same address: the back-off must expire on its own.
	be.kill()
	resp, _ = do(t, c, http.MethodGet, h.url(key, "/"), nil)
	if resp.StatusCode != 503 {
		t.Fatalf("status %d after kill", resp.StatusCode)
	}
	be2 := newBackendAt(t, "flaky", be.addr)
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, b := do(t, c, http.MethodGet, h.url(key, "/"), nil)
		if resp.StatusCode == 200 {
			decodeEcho(t, resp, b)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance never came back: %d", resp.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = be2
}

// TestEjectionUsesPoolClock runs the relay with a clock an hour ahead (as a key-rotation test does):
// ejections must be judged on the pool's clock, or a connect failure would eject for an hour.
func TestEjectionUsesPoolClock(t *testing.T) {
	h := newHarness(t, harnessOptions{relay: httprelay.Options{EjectBase: 50 * time.Millisecond, EjectMax: 50 * time.Millisecond}})
	h.clock.Advance(time.Hour)
	live := newBackend(t, "live", nil)
	ep, key := h.endpoint(func(e *registry.Endpoint) { e.Balance = "round_robin" }, instanceSpec{"in_dead", deadAddr(t)}, live.spec())
	resp, b := do(t, h.client("h1"), http.MethodGet, h.url(key, "/"), nil)
	decodeEcho(t, resp, b)
	dead := h.cache.Table().Get(ep.ID).Pool.Get("in_dead")
	if until := dead.EjectedUntil(); until.IsZero() || time.Until(until) > time.Second {
		t.Fatalf("ejected until %v, want about 50ms from now", until)
	}
}

// TestClientGoesAway cancels requests while the instance is still working: the relay logs 499, frees
// the instance's in-flight slot, and does not blame the instance.
func TestClientGoesAway(t *testing.T) {
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			h := newHarness(t, harnessOptions{})
			started := make(chan struct{}, 1)
			be := newBackend(t, "a", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				started <- struct{}{}
				<-r.Context().Done()
			}))
			ep, key := h.endpoint(nil, be.spec())
			ctx, cancel := context.WithCancel(t.Context())
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.url(key, "/"), nil)
			go func() { <-started; cancel() }()
			if _, err := h.client(proto).Do(req); err == nil {
				t.Fatal("cancelled request succeeded")
			}
			waitIdle(t, h, ep.ID)
			deadline := time.Now().Add(5 * time.Second)
			for {
				recs := h.accessRecords()
				if len(recs) == 1 {
					if recs[0]["status"] != float64(499) {
						t.Fatalf("cancelled request logged as %v, want 499", recs[0]["status"])
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("cancelled request not logged")
				}
				time.Sleep(5 * time.Millisecond)
			}
			if !h.cache.Table().Get(ep.ID).Pool.Get("in_a").Healthy(time.Now()) {
				t.Fatal("instance ejected because a client went away")
			}
		})
	}
}

// TestResponseHeaderTimeout checks that an instance that accepts a request but does not answer in
// time gives 504 and is ejected, and the next request goes elsewhere.
func TestResponseHeaderTimeout(t *testing.T) {
	h := newHarness(t, harnessOptions{relay: httprelay.Options{ResponseHeaderTimeout: 200 * time.Millisecond, EjectBase: time.Minute}})
	stuck := newBackend(t, "stuck", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	ok := newBackend(t, "ok", nil)
	ep, key := h.endpoint(func(e *registry.Endpoint) { e.Balance = "round_robin" }, stuck.spec(), ok.spec())
	c := h.client("h2")
	within(t, 2*time.Second, "stuck instance", func() {
		resp, b := do(t, c, http.MethodGet, h.url(key, "/"), nil)
		wantError(t, resp, b, http.StatusGatewayTimeout)
	})
	if h.cache.Table().Get(ep.ID).Pool.Get("in_stuck").Healthy(time.Now()) {
		t.Fatal("timed-out instance not ejected")
	}
	for range 3 {
		resp, b := do(t, c, http.MethodGet, h.url(key, "/"), nil)
		if e := decodeEcho(t, resp, b); e.Instance != "ok" {
			t.Fatalf("served by %s", e.Instance)
		}
	}
}

// dropper is a backend handler that closes the connection without answering.
var dropper = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
})

// TestBrokenConnectionRetry checks the replay rule: a GET whose connection the instance drops before
// answering is retried once on another instance; a POST with a body is not (it cannot be replayed); a
// second drop ends the retries.
func TestBrokenConnectionRetry(t *testing.T) {
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			h := newHarness(t, harnessOptions{})
			d1, d2 := newBackend(t, "drop1", dropper), newBackend(t, "drop2", dropper)
			ok := newBackend(t, "ok", nil)
			_, key := h.endpoint(func(e *registry.Endpoint) { e.Balance = "round_robin" }, d1.spec(), ok.spec())
			c := h.client(proto)
			for range 4 { // round robin starts on each instance in turn
				resp, b := do(t, c, http.MethodGet, h.url(key, "/"), nil)
				if e := decodeEcho(t, resp, b); e.Instance != "ok" {
					t.Fatalf("served by %s", e.Instance)
				}
			}
			if d1.hits.Load() == 0 {
				t.Fatal("dropping instance never tried")
			}
			// A dropped connection is not a connect failure: the instance stays in the pool.
			posts502 := 0
			for range 4 {
				resp, b := do(t, c, http.MethodPost, h.url(key, "/"), strings.NewReader("not replayable"))
				switch resp.StatusCode {
				case 200:
				case 502:
					posts502++
				default:
					t.Fatalf("POST: %d %s", resp.StatusCode, b)
				}
			}
			if posts502 != 2 {
				t.Fatalf("%d of 4 round-robin POSTs failed, want the 2 sent to the dropping instance", posts502)
			}

			_, key2 := h.endpoint(func(e *registry.Endpoint) { e.Balance = "round_robin" }, d1.spec(), d2.spec(), ok.spec())
			resp, b := do(t, c, http.MethodGet, h.url(key2, "/"), nil)
			wantError(t, resp, b, http.StatusBadGateway)
		})
	}
}
