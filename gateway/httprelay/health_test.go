package httprelay_test

import (
	"bytes"
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

// TestKilledInstanceIsEjected kills one of three instances under steady load from concurrent clients:
// no client may see an error, the dead instance is ejected, and traffic continues on the others.
func TestKilledInstanceIsEjected(t *testing.T) {
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			h := newHarness(t, harnessOptions{relay: httprelay.Options{EjectBase: time.Minute, EjectMax: time.Minute}})
			a, b, victim := newBackend(t, "a", nil), newBackend(t, "b", nil), newBackend(t, "victim", nil)
			ep, key := h.endpoint(nil, a.spec(), b.spec(), victim.spec())
			c := h.client(proto)

			var (
				wg       sync.WaitGroup
				stop     = make(chan struct{})
				served   atomic.Int64
				failures atomic.Int64
				mu       sync.Mutex
				firstErr string
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
						req, _ := http.NewRequest(method, h.url(key, "/"), body)
						resp, err := c.Do(req)
						if err == nil {
							_, err = io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
							if err == nil && resp.StatusCode != 200 {
								err = fmt.Errorf("status %d", resp.StatusCode)
							}
						}
						if err != nil {
							failures.Add(1)
							mu.Lock()
							if firstErr == "" {
								firstErr = redact(err.Error())
							}
							mu.Unlock()
							continue
						}
						served.Add(1)
					}
				}()
			}
			waitFor := func(n int64) {
				deadline := time.Now().Add(10 * time.Second)
				for served.Load() < n && time.Now().Before(deadline) {
					time.Sleep(time.Millisecond)
				}
			}
			waitFor(100)
			if victim.hits.Load() == 0 {
				t.Fatal("victim never served before the kill")
			}
			victim.kill()
			killedAt := served.Load()
			waitFor(killedAt + 300)
			close(stop)
			wg.Wait()
			if f := failures.Load(); f != 0 {
				t.Fatalf("%d client-visible failures after killing an instance; first: %s", f, firstErr)
			}
			var vin = h.cache.Table().Get(ep.ID).Pool.Get("in_victim")
			if vin.Healthy(time.Now()) {
				t.Fatal("dead instance not ejected")
			}
			if !strings.Contains(h.logs.String(), `"msg":"relay: instance ejected"`) {
				t.Fatal("ejection not logged")
			}
			if served.Load() < killedAt+300 {
				t.Fatalf("traffic stalled after the kill: %d served after", served.Load()-killedAt)
			}
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
