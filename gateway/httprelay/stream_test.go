package httprelay_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/kinesis-network/portal/gateway/httprelay"
)

// generator is a deterministic pseudo-random stream of n bytes that is never held in memory.
type generator struct {
	rnd  *rand.ChaCha8
	left int64
}

func newGenerator(seed byte, n int64) *generator {
	return &generator{rnd: rand.NewChaCha8([32]byte{seed}), left: n}
}

func (g *generator) Read(p []byte) (int, error) {
	if g.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.left {
		p = p[:g.left]
	}
	n, _ := g.rnd.Read(p)
	g.left -= int64(n)
	return n, nil
}

// digest returns the hex SHA-256 of a generator's whole stream.
func digest(seed byte, n int64) string {
	h := sha256.New()
	_, _ = io.Copy(h, newGenerator(seed, n))
	return hex.EncodeToString(h.Sum(nil))
}

// heapWatch samples the live heap while a test streams and reports the peak growth over the baseline.
type heapWatch struct {
	base uint64
	peak atomic.Uint64
	stop chan struct{}
	done chan struct{}
}

func watchHeap() *heapWatch {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	w := &heapWatch{base: ms.HeapAlloc, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-tk.C:
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > w.peak.Load() {
				w.peak.Store(ms.HeapAlloc)
			}
		}
	}()
	return w
}

// growth stops the watch and returns the peak heap growth in bytes.
func (w *heapWatch) growth() int64 {
	close(w.stop)
	<-w.done
	return int64(w.peak.Load()) - int64(w.base)
}

// TestStreaming100MB uploads and downloads 100 MB through the relay over HTTP/1.1 and HTTP/2 and checks
// the bytes arrive intact while the process heap (client, relay and backend together) stays far below
// the body size: nothing buffers whole bodies. -short streams 16 MB.
func TestStreaming100MB(t *testing.T) {
	size := int64(100 << 20)
	if testing.Short() {
		size = 16 << 20
	}
	const maxGrowth = 32 << 20
	want := digest(7, size)
	h := newHarness(t, harnessOptions{})
	be := newBackend(t, "stream", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/upload":
			sum := sha256.New()
			n, err := io.Copy(sum, r.Body)
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			fmt.Fprintf(w, "%d %s", n, hex.EncodeToString(sum.Sum(nil)))
		case "/download":
			n, _ := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
			if r.URL.Query().Get("len") == "1" {
				w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
			}
			_, _ = io.Copy(w, newGenerator(7, n))
		}
	}))
	_, key := h.endpoint(nil, be.spec())
	for _, proto := range protos {
		c := h.client(proto)
		t.Run(proto+"/upload", func(t *testing.T) {
			w := watchHeap()
			req, _ := http.NewRequest(http.MethodPost, h.url(key, "/upload"), newGenerator(7, size))
			req.ContentLength = size
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			g := w.growth()
			if got := fmt.Sprintf("%d %s", size, want); string(b) != got {
				t.Fatalf("backend got %q, want %q", b, got)
			}
			t.Logf("heap growth %.1f MB", float64(g)/(1<<20))
			if g > maxGrowth {
				t.Fatalf("heap grew %d MB while streaming %d MB", g>>20, size>>20)
			}
		})
		for _, withLen := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/download/content-length=%v", proto, withLen), func(t *testing.T) {
				w := watchHeap()
				u := h.url(key, "/download?n="+strconv.FormatInt(size, 10))
				if withLen {
					u += "&len=1"
				}
				resp, err := c.Get(u)
				if err != nil {
					t.Fatal(err)
				}
				sum := sha256.New()
				n, err := io.Copy(sum, resp.Body)
				resp.Body.Close()
				g := w.growth()
				if err != nil || n != size || hex.EncodeToString(sum.Sum(nil)) != want {
					t.Fatalf("downloaded %d bytes (want %d), err %v, digest match %v", n, size, err, hex.EncodeToString(sum.Sum(nil)) == want)
				}
				t.Logf("heap growth %.1f MB", float64(g)/(1<<20))
				if g > maxGrowth {
					t.Fatalf("heap grew %d MB while streaming %d MB", g>>20, size>>20)
				}
			})
		}
	}
}

// TestWebSocketEcho upgrades to WebSocket through the relay and exchanges messages with an echo
// backend, several connections at once.
func TestWebSocketEcho(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	var sawPath atomic.Value
	be := newBackend(t, "ws", websocket.Handler(func(ws *websocket.Conn) {
		sawPath.Store(ws.Request().URL.Path)
		_, _ = io.Copy(ws, ws)
	}))
	ep, key := h.endpoint(nil, be.spec())
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn := h.dialTLS("http/1.1")
			cfg, err := websocket.NewConfig("wss://"+testHost+":"+h.port()+httprelay.Prefix+key+"/ws?room=1", "https://"+testHost)
			if err != nil {
				t.Error(err)
				return
			}
			ws, err := websocket.NewClient(cfg, conn)
			if err != nil {
				t.Errorf("upgrade through the relay: %v", err)
				return
			}
			defer ws.Close()
			for j := range 20 {
				msg := fmt.Sprintf("hello %d/%d %s", i, j, strings.Repeat("x", j*100))
				if err := websocket.Message.Send(ws, msg); err != nil {
					t.Error(err)
					return
				}
				var got string
				if err := websocket.Message.Receive(ws, &got); err != nil || got != msg {
					t.Errorf("echo %q, %v", got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if p, _ := sawPath.Load().(string); p != "/ws" {
		t.Fatalf("backend saw path %q", p)
	}
	waitIdle(t, h, ep.ID)
	found := false
	for _, r := range h.accessRecords() {
		if r["status"] == float64(101) && r["endpoint"] == ep.ID {
			found = true
		}
	}
	if !found {
		t.Fatalf("no access record with status 101:\n%s", h.logs.String())
	}
}

// TestSlowLorisCutOff sends request headers one byte at a time: the relay must close the connection
// once ReadHeaderTimeout has passed, long before the headers are done.
func TestSlowLorisCutOff(t *testing.T) {
	const timeout = 300 * time.Millisecond
	h := newHarness(t, harnessOptions{server: httprelay.ServerOptions{ReadHeaderTimeout: timeout}})
	be := newBackend(t, "a", nil)
	_, key := h.endpoint(nil, be.spec())
	conn := h.dialTLS("http/1.1")
	closed := make(chan time.Time, 1)
	go func() {
		_, _ = io.Copy(io.Discard, conn)
		closed <- time.Now()
	}()
	start := time.Now()
	req := "GET " + httprelay.Prefix + key + "/ HTTP/1.1\r\nHost: " + testHost + "\r\nX-Slow: " + strings.Repeat("z", 200) + "\r\n\r\n"
	var cut time.Time
send:
	for i := 0; i < len(req); i++ {
		if _, err := conn.Write([]byte{req[i]}); err != nil {
			break
		}
		select {
		case cut = <-closed:
			break send
		case <-time.After(20 * time.Millisecond):
		}
	}
	if cut.IsZero() {
		select {
		case cut = <-closed:
		case <-time.After(5 * time.Second):
			t.Fatal("slow client never cut off")
		}
	}
	if d := cut.Sub(start); d < timeout || d > timeout+time.Second {
		t.Fatalf("cut off after %v, want about %v", d, timeout)
	}
	if be.hits.Load() != 0 {
		t.Fatal("slow request reached the backend")
	}
}

// TestStalledBodyCutOff starts a request body and stops sending: the relay must give up after
// BodyReadTimeout, and must not blame (eject) the healthy instance for the client's stall.
func TestStalledBodyCutOff(t *testing.T) {
	const timeout = 300 * time.Millisecond
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			h := newHarness(t, harnessOptions{relay: httprelay.Options{BodyReadTimeout: timeout}})
			be := newBackend(t, "a", nil)
			ep, key := h.endpoint(nil, be.spec())
			c := h.client(proto)
			pr, pw := io.Pipe()
			defer pw.Close()
			go func() { _, _ = pw.Write([]byte(strings.Repeat("partial ", 100))) }()
			req, _ := http.NewRequest(http.MethodPost, h.url(key, "/"), pr)
			req.ContentLength = 1 << 20
			type result struct {
				resp *http.Response
				body []byte
				err  error
			}
			done := make(chan result, 1)
			start := time.Now()
			go func() {
				resp, err := c.Do(req)
				var b []byte
				if err == nil {
					b, _ = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				done <- result{resp, b, err}
			}()
			// The relay is done with the request when it logs it. (An HTTP/1.1 client only returns once
			// its body writer gives up, which a stalled pipe never does: unblock it afterwards.)
			var rec map[string]any
			for rec == nil {
				for _, r := range h.accessRecords() {
					if r["method"] == "POST" {
						rec = r
					}
				}
				if time.Since(start) > timeout+3*time.Second {
					t.Fatal("stalled upload never ended")
				}
				time.Sleep(5 * time.Millisecond)
			}
			took := time.Since(start)
			pw.CloseWithError(errors.New("test: stalled writer released"))
			res := <-done
			if res.err == nil && res.resp.StatusCode < 400 {
				t.Fatalf("stalled upload answered %d %s", res.resp.StatusCode, res.body)
			}
			if res.err == nil {
				t.Logf("stalled upload answered %d %s", res.resp.StatusCode, res.body)
			} else {
				t.Logf("stalled upload failed: %s", redact(res.err.Error()))
			}
			if took < timeout || took > timeout+2*time.Second {
				t.Fatalf("stalled request ended after %v, want about %v", took, timeout)
			}
			if rec["status"] != float64(http.StatusRequestTimeout) {
				t.Fatalf("stalled upload logged as %v, want 408", rec)
			}
			if in := h.cache.Table().Get(ep.ID).Pool.Get("in_a"); !in.Healthy(time.Now()) {
				t.Fatal("instance ejected because a client stalled")
			}
			resp2, b := do(t, h.client(proto), http.MethodGet, h.url(key, "/"), nil)
			decodeEcho(t, resp2, b)
		})
	}
}

// TestSlowBackendAfterBody sends a complete request body to an instance that takes longer than
// BodyReadTimeout to answer: the body deadline must not cut off a client that has sent everything.
func TestSlowBackendAfterBody(t *testing.T) {
	const timeout = 200 * time.Millisecond
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			h := newHarness(t, harnessOptions{relay: httprelay.Options{BodyReadTimeout: timeout}})
			be := newBackend(t, "slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n, _ := io.Copy(io.Discard, r.Body)
				time.Sleep(3 * timeout)
				fmt.Fprintf(w, "got %d", n)
			}))
			_, key := h.endpoint(nil, be.spec())
			c := h.client(proto)
			resp, b := do(t, c, http.MethodPost, h.url(key, "/"), strings.NewReader("all of it"))
			if resp.StatusCode != 200 || string(b) != "got 9" {
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			// And a slow streamed answer after the body is complete.
			resp, b = do(t, c, http.MethodPost, h.url(key, "/"), strings.NewReader("again"))
			if resp.StatusCode != 200 || string(b) != "got 5" {
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
		})
	}
}

// TestOversizedHeaders checks the header size limit: 431 for HTTP/1.1.
func TestOversizedHeaders(t *testing.T) {
	h := newHarness(t, harnessOptions{server: httprelay.ServerOptions{MaxHeaderBytes: 8 << 10}})
	be := newBackend(t, "a", nil)
	_, key := h.endpoint(nil, be.spec())
	conn := h.dialTLS("http/1.1")
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET %s%s/ HTTP/1.1\r\nHost: %s\r\nX-Big: %s\r\n\r\n", httprelay.Prefix, key, testHost, strings.Repeat("b", 64<<10))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d, want 431", resp.StatusCode)
	}
	if be.hits.Load() != 0 {
		t.Fatal("oversized request reached the backend")
	}
	// Headers just under the limit pass.
	resp2, b := do(t, h.client("h1"), http.MethodGet, h.url(key, "/"), nil, "X-Big", strings.Repeat("b", 4<<10))
	decodeEcho(t, resp2, b)
}
