// Package httprelay is the portal's HTTPS relay front door: it serves
// https://<zone>.<region>.portal.<domain>/relay/<key>/<path>, looks the access key up by its hash in the
// in-memory route table, applies the endpoint's firewall and rate limit, picks an instance (sticky
// cookie or power-of-two-choices), and streams the request to it with the prefix stripped, retrying a
// failed connect on another instance.
//
// The request path is a chain of steps, each documented with whether it has written a response when it
// stops the chain: lookup (404) → firewall (403) → rate limit (429) → pick (503) → forward (502).
// Access keys never appear in logs or metric labels.
package httprelay

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kinesis-network/portal/gateway/balance"
	"github.com/kinesis-network/portal/gateway/routes"
	"github.com/kinesis-network/portal/gateway/sticky"
)

// Options configure a Handler. Zero values take the documented defaults.
type Options struct {
	// Routes is the route cache to look keys up in. Required.
	Routes *routes.Cache
	// Sticky signs and verifies sticky cookies. Required when any endpoint enables sticky sessions.
	Sticky *sticky.Codec
	// Logger receives one access-log record per request (message "access"). Nil: slog.Default().
	Logger *slog.Logger
	// Metrics records request metrics. Nil: none.
	Metrics *Metrics
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// DialTimeout bounds connecting to an instance. Zero: 5 s.
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds waiting for an instance's response headers. Zero: 60 s.
	ResponseHeaderTimeout time.Duration
	// BodyReadTimeout is how long a client may stay silent while sending a request body. Zero: 30 s.
	BodyReadTimeout time.Duration
	// EjectBase and EjectMax bound the ejection back-off of failing instances. Zero: 1 s and 30 s.
	EjectBase, EjectMax time.Duration
	// MaxConnsPerInstance caps idle keep-alive connections kept per instance. Zero: 256.
	MaxIdleConnsPerInstance int
}

// Handler is the relay's http.Handler. Safe for concurrent use.
type Handler struct {
	opts      Options
	proxy     *httputil.ReverseProxy
	transport *http.Transport
}

type ctxKey struct{}

// reqState travels in the outgoing request's context from ServeHTTP to the transport.
type reqState struct {
	route    *routes.Route
	instance *balance.Instance // current choice; replaced on a failed connect
	tried    map[*balance.Instance]bool
	prefix   string
	host     string            // the client's Host, for Location rewriting
	sticky   *balance.Instance // the instance a valid sticky cookie named, if any
	body     *countingBody     // the client's request body; nil when there is none
	upgraded *releaseBody      // the instance's side of a 101 Switching Protocols, for byte counts
	code     int               // outcome when no response status says it (499, 101); zero otherwise
}

// New returns a relay handler.
func New(opts Options) *Handler {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.DialTimeout == 0 {
		opts.DialTimeout = 5 * time.Second
	}
	if opts.ResponseHeaderTimeout == 0 {
		opts.ResponseHeaderTimeout = 60 * time.Second
	}
	if opts.BodyReadTimeout == 0 {
		opts.BodyReadTimeout = 30 * time.Second
	}
	if opts.MaxIdleConnsPerInstance == 0 {
		opts.MaxIdleConnsPerInstance = 256
	}
	h := &Handler{opts: opts}
	h.transport = &http.Transport{
		DialContext:           h.dial,
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   opts.MaxIdleConnsPerInstance,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: opts.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		WriteBufferSize:       32 << 10,
		ReadBufferSize:        32 << 10,
	}
	h.proxy = &httputil.ReverseProxy{
		Rewrite:        h.rewrite,
		Transport:      retryTransport{h},
		ModifyResponse: h.modifyResponse,
		ErrorHandler:   h.proxyError,
		ErrorLog:       slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
		BufferPool:     bufferPool{},
	}
	return h
}

// Close drops idle connections to instances.
func (h *Handler) Close() { h.transport.CloseIdleConnections() }

// dialError marks a failure to connect to an instance: safe to retry elsewhere.
type dialError struct{ err error }

func (e dialError) Error() string { return "connect to instance: " + e.err.Error() }
func (e dialError) Unwrap() error { return e.err }

func (h *Handler) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	st, _ := ctx.Value(ctxKey{}).(*reqState)
	if st == nil {
		return nil, dialError{errors.New("no instance chosen")}
	}
	in := st.instance
	dctx, cancel := context.WithTimeout(ctx, h.opts.DialTimeout)
	defer cancel()
	c, err := in.Dial(dctx)
	if err != nil {
		return nil, dialError{err}
	}
	return c, nil
}

func clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := h.opts.Now()
	key, rest, ok := ParsePath(r.URL.EscapedPath())
	if !ok {
		notFound(w)
		return
	}
	route := h.opts.Routes.Table().Lookup(sha256.Sum256([]byte(key)), start)
	if route == nil {
		notFound(w)
		return
	}
	ep := route.Endpoint
	m := h.opts.Metrics
	if !route.Firewall.AllowSource(clientAddr(r)) {
		m.denied(ep.ID)
		m.result(ep.ID, http.StatusForbidden, start, h.opts.Now())
		h.access(r, ep.ID, "", http.StatusForbidden, 0, 0, start, "firewall")
		writeError(w, http.StatusForbidden, "forbidden")
		return
	}
	if route.Limiter != nil {
		res := route.Limiter.ReserveN(start, 1)
		if d := res.DelayFrom(start); !res.OK() || d > 0 {
			res.CancelAt(start)
			secs := int(math.Ceil(d.Seconds()))
			if secs < 1 {
				secs = 1
			}
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			m.limited(ep.ID)
			m.result(ep.ID, http.StatusTooManyRequests, start, h.opts.Now())
			h.access(r, ep.ID, "", http.StatusTooManyRequests, 0, 0, start, "rate_limited")
			writeError(w, http.StatusTooManyRequests, "rate limit exceeded")
			return
		}
	}
	st := &reqState{route: route, tried: map[*balance.Instance]bool{}, prefix: Prefix + key, host: r.Host}
	in := h.pickSticky(r, st)
	if in == nil {
		in = route.Pool.Pick(nil)
	}
	if in == nil {
		m.result(ep.ID, http.StatusServiceUnavailable, start, h.opts.Now())
		h.access(r, ep.ID, "", http.StatusServiceUnavailable, 0, 0, start, "no_instance")
		writeError(w, http.StatusServiceUnavailable, "no healthy instance")
		return
	}
	st.instance = in
	if r.ProtoMajor == 1 {
		// By default an HTTP/1 server drains and closes the request body when the handler writes the
		// response headers. The transport may still be reading that body (after a Content-Length body
		// it reads once more to check for extra bytes); a read on the closed body fails, and the
		// transport then closes the instance connection under the response it is relaying: a streamed
		// answer (an event stream, a large download) is cut off. A proxy reads and writes at once.
		_ = http.NewResponseController(w).EnableFullDuplex()
	}
	cw := &countingWriter{ResponseWriter: w}
	if r.Body != nil && r.Body != http.NoBody {
		st.body = &countingBody{ReadCloser: r.Body, rc: http.NewResponseController(w), timeout: h.opts.BodyReadTimeout}
		r.Body = st.body
	}
	if p, err := url.PathUnescape(rest); err == nil {
		r.URL.Path, r.URL.RawPath = p, rest
	} else {
		r.URL.Path, r.URL.RawPath = rest, ""
	}
	ctx := context.WithValue(r.Context(), ctxKey{}, st)
	h.proxy.ServeHTTP(cw, r.WithContext(ctx))
	status := cw.status
	if st.code != 0 {
		status = st.code
	} else if status == 0 {
		status = http.StatusOK
	}
	var in64 int64
	if st.body != nil {
		in64 = st.body.n.Load()
	}
	if u := st.upgraded; u != nil {
		in64, cw.n = u.written.Load(), u.read.Load()
	}
	end := h.opts.Now()
	m.result(ep.ID, status, start, end)
	m.bytes(ep.ID, in64, cw.n)
	h.access(r, ep.ID, st.instance.ID, status, in64, cw.n, start, "")
}

func (h *Handler) access(r *http.Request, endpoint, instance string, status int, in, out int64, start time.Time, reason string) {
	attrs := []slog.Attr{
		slog.String("endpoint", endpoint),
		slog.String("client", clientAddr(r).String()),
		slog.String("method", r.Method),
		slog.Int("status", status),
		slog.Int64("bytes_in", in),
		slog.Int64("bytes_out", out),
		slog.Float64("duration_s", h.opts.Now().Sub(start).Seconds()),
		slog.String("proto", r.Proto),
	}
	if instance != "" {
		attrs = append(attrs, slog.String("instance", instance))
	}
	if reason != "" {
		attrs = append(attrs, slog.String("reason", reason))
	}
	h.opts.Logger.LogAttrs(r.Context(), slog.LevelInfo, "access", attrs...)
}

// pickSticky returns the instance a valid sticky cookie names when it is healthy, or nil.
func (h *Handler) pickSticky(r *http.Request, st *reqState) *balance.Instance {
	if st.route.StickyTTL == 0 || h.opts.Sticky == nil {
		return nil
	}
	c, err := r.Cookie(h.opts.Sticky.CookieName(st.route.Endpoint.ID))
	if err != nil {
		return nil
	}
	now := h.opts.Now()
	tag, err := h.opts.Sticky.Decode(st.route.Endpoint.ID, c.Value, now)
	if err != nil {
		return nil
	}
	in := st.route.ByTag(tag)
	// Instance health runs on the pool's clock, the one ejections are recorded with.
	if in == nil || !in.Healthy(st.route.Pool.Now()) {
		return nil
	}
	st.sticky = in
	return in
}

// stickyCookie returns the Set-Cookie value naming the instance that served the request, or "" when
// the client's cookie already names it. It runs once the instance has answered, so a cookie never
// names an instance that failed to connect and was replaced by a retry.
func (h *Handler) stickyCookie(st *reqState) string {
	if st.route.StickyTTL == 0 || h.opts.Sticky == nil || st.sticky == st.instance {
		return ""
	}
	id := st.route.Endpoint.ID
	exp := h.opts.Now().Add(st.route.StickyTTL)
	c := &http.Cookie{
		Name:     h.opts.Sticky.CookieName(id),
		Value:    h.opts.Sticky.Encode(id, h.opts.Sticky.TagFor(id, st.instance.ID), exp),
		Path:     st.prefix,
		MaxAge:   int(st.route.StickyTTL / time.Second),
		HttpOnly: true,
		Secure:   true,
		SameSite: http.SameSiteLaxMode,
	}
	return c.String()
}

// rewrite builds the outgoing request: prefix stripped, X-Forwarded-* set from the TCP peer (incoming
// X-Forwarded-* headers are dropped: clients are not trusted), the sticky cookie removed.
func (h *Handler) rewrite(pr *httputil.ProxyRequest) {
	st := pr.In.Context().Value(ctxKey{}).(*reqState)
	out := pr.Out
	out.URL.Scheme = "http"
	out.URL.Host = st.instance.Addr
	out.Host = pr.In.Host
	pr.SetXForwarded()
	out.Header.Set("X-Forwarded-Prefix", st.prefix)
	if h.opts.Sticky != nil && st.route.StickyTTL > 0 {
		removeCookie(out.Header, h.opts.Sticky.CookieName(st.route.Endpoint.ID))
	}
}

func removeCookie(hd http.Header, name string) {
	cs := hd.Values("Cookie")
	if len(cs) == 0 {
		return
	}
	var keep []string
	for _, line := range cs {
		for _, part := range strings.Split(line, ";") {
			p := strings.TrimSpace(part)
			if p == "" || strings.HasPrefix(p, name+"=") {
				continue
			}
			keep = append(keep, p)
		}
	}
	hd.Del("Cookie")
	if len(keep) > 0 {
		hd.Set("Cookie", strings.Join(keep, "; "))
	}
}

// modifyResponse rewrites Location and Set-Cookie paths back under the relay prefix and adds the
// sticky cookie.
func (h *Handler) modifyResponse(resp *http.Response) error {
	st := resp.Request.Context().Value(ctxKey{}).(*reqState)
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// The proxy writes a 101 straight to the hijacked connection, past our ResponseWriter.
		st.code = http.StatusSwitchingProtocols
		st.upgraded, _ = resp.Body.(*releaseBody)
	}
	if loc := resp.Header.Get("Location"); loc != "" {
		resp.Header.Set("Location", rewriteLocation(loc, st.prefix, st.instance.Addr, st.host))
	}
	if cs := resp.Header.Values("Set-Cookie"); len(cs) > 0 {
		out := make([]string, len(cs))
		for i, c := range cs {
			out[i] = rewriteCookiePath(c, st.prefix)
		}
		resp.Header["Set-Cookie"] = out
	}
	if c := h.stickyCookie(st); c != "" {
		resp.Header.Add("Set-Cookie", c)
	}
	return nil
}

// rewriteLocation maps a backend redirect target back under the relay prefix: absolute paths and
// absolute URLs naming the backend itself (or the client's host without the prefix) are rewritten;
// relative references and other hosts are left alone.
func rewriteLocation(loc, prefix, backendHost, clientHost string) string {
	if strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, "//") {
		if strings.HasPrefix(loc, prefix+"/") || loc == prefix {
			return loc
		}
		return prefix + loc
	}
	for _, scheme := range []string{"http://", "https://"} {
		if !strings.HasPrefix(loc, scheme) {
			continue
		}
		rest := loc[len(scheme):]
		host, path := rest, "/"
		if i := strings.IndexAny(rest, "/?#"); i >= 0 {
			host, path = rest[:i], rest[i:]
			if path[0] != '/' {
				path = "/" + path
			}
		}
		underPrefix := path == prefix || strings.HasPrefix(path, prefix+"/") || strings.HasPrefix(path, prefix+"?") || strings.HasPrefix(path, prefix+"#")
		if strings.EqualFold(host, backendHost) || (strings.EqualFold(host, clientHost) && !underPrefix) {
			return "https://" + clientHost + prefix + path
		}
	}
	return loc
}

// rewriteCookiePath scopes a Set-Cookie to the endpoint: its Path attribute is put under the relay
// prefix ("/" becomes the prefix itself, so the endpoint's root URL gets the cookie too), a missing or
// unusable Path becomes the prefix, and a Domain attribute is dropped (the backend's domain means
// nothing to the client). A cookie without a Path would otherwise take the browser's default path,
// which for a request to the endpoint root is "/relay": every endpoint on the host would receive it.
func rewriteCookiePath(c, prefix string) string {
	parts := strings.Split(c, ";")
	hasPath := false
	for i := 1; i < len(parts); i++ {
		k, v, _ := strings.Cut(strings.TrimSpace(parts[i]), "=")
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "path":
			hasPath = true
			switch v = strings.TrimSpace(v); {
			case v == prefix || strings.HasPrefix(v, prefix+"/"):
			case v == "/" || !strings.HasPrefix(v, "/"):
				parts[i] = " Path=" + prefix
			default:
				parts[i] = " Path=" + prefix + v
			}
		case "domain":
			parts[i] = ""
		}
	}
	out := parts[:1]
	for _, p := range parts[1:] {
		if p != "" {
			out = append(out, p)
		}
	}
	if !hasPath {
		out = append(out, " Path="+prefix)
	}
	return strings.Join(out, ";")
}

var errNoInstance = errors.New("no healthy instance")

func (h *Handler) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	st := r.Context().Value(ctxKey{}).(*reqState)
	code := http.StatusBadGateway
	msg := "bad gateway"
	switch {
	case st.body != nil && st.body.failed.Load():
		// The client stopped sending its body (or broke the connection): not the instance's fault.
		code, msg = http.StatusBadRequest, "request body not received"
		if st.body.timedOut.Load() {
			code, msg = http.StatusRequestTimeout, "request body timed out"
		}
		st.code = code
		h.opts.Logger.Debug("relay: client request body failed", "endpoint", st.route.Endpoint.ID, "instance", st.instance.ID, "err", err)
		writeError(w, code, msg)
		return
	case errors.Is(err, errNoInstance):
		code, msg = http.StatusServiceUnavailable, "no healthy instance"
	case errors.Is(err, context.Canceled):
		code, msg = 499, "client closed request"
	case isTimeout(err):
		code, msg = http.StatusGatewayTimeout, "instance timed out"
	}
	h.opts.Metrics.upstreamError(st.route.Endpoint.ID)
	h.opts.Logger.Warn("relay: upstream error", "endpoint", st.route.Endpoint.ID, "instance", st.instance.ID, "err", err)
	if code == 499 {
		// Logged as 499; but answer anyway: if the client is still there (the request was cancelled
		// from our side), an empty 200 would be a false success.
		st.code = code
		code, msg = http.StatusBadGateway, "bad gateway"
	}
	writeError(w, code, msg)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// retryTransport sends the request to the chosen instance and, when the connect fails, ejects that
// instance and retries on another one: no byte of the request has been sent, so this is always safe.
// A request that can be replayed (idempotent method, no body) whose connection broke before the
// response began is also retried, once, on another instance: the instance may have died with the
// request in flight. Once only, so that a request which makes instances drop it cannot walk through
// the whole pool.
type retryTransport struct{ h *Handler }

func (t retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	st := req.Context().Value(ctxKey{}).(*reqState)
	h := t.h
	if req.Body != nil && req.Body != http.NoBody {
		// http.Transport closes the request body when a connect fails, before it has read a byte of it;
		// keep the client's body usable for the retry. The reverse proxy closes the real body when done.
		r2 := *req
		r2.Body = noCloseBody{req.Body}
		req = &r2
	}
	resent := false
	for {
		in := st.instance
		req.URL.Host = in.Addr
		in.Acquire()
		resp, err := h.transport.RoundTrip(req)
		if err == nil {
			in.Succeed()
			resp.Body = &releaseBody{ReadCloser: resp.Body, in: in}
			return resp, nil
		}
		in.Release()
		// Ejections use the pool's clock, the one Pick judges health by.
		now := st.route.Pool.Now()
		var de dialError
		if !errors.As(err, &de) {
			clientFault := req.Context().Err() != nil || (st.body != nil && st.body.failed.Load())
			if clientFault {
				return nil, err
			}
			if isTimeout(err) {
				in.Fail(now, h.opts.EjectBase, h.opts.EjectMax)
				return nil, err
			}
			if resent || !replayable(req) {
				return nil, err
			}
			resent = true
			st.tried[in] = true
			next := st.route.Pool.Pick(st.tried)
			if next == nil {
				return nil, err
			}
			h.opts.Logger.Info("relay: connection to instance broke, retrying elsewhere", "endpoint", st.route.Endpoint.ID, "instance", in.ID, "err", err)
			st.instance = next
			continue
		}
		d := in.Fail(now, h.opts.EjectBase, h.opts.EjectMax)
		h.opts.Logger.Warn("relay: instance ejected", "endpoint", st.route.Endpoint.ID, "instance", in.ID, "for_s", d.Seconds(), "err", de.err)
		st.tried[in] = true
		next := st.route.Pool.Pick(st.tried)
		if next == nil {
			return nil, fmt.Errorf("%w: %w", errNoInstance, err)
		}
		st.instance = next
		if req.Context().Err() != nil {
			return nil, req.Context().Err()
		}
	}
}

// replayable reports whether sending req again cannot repeat a side effect: an idempotent method and
// no body.
func replayable(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return req.Body == nil || req.Body == http.NoBody
	}
	return false
}

// noCloseBody hides Close from http.Transport (see retryTransport).
type noCloseBody struct{ io.Reader }

func (noCloseBody) Close() error { return nil }

// releaseBody releases the instance's in-flight count when the response body is closed. It counts
// bytes read from and written to the instance, which are the relayed bytes of an upgraded connection.
type releaseBody struct {
	io.ReadCloser
	in            *balance.Instance
	done          atomic.Bool
	read, written atomic.Int64
}

func (b *releaseBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.read.Add(int64(n))
	return n, err
}

func (b *releaseBody) Close() error {
	err := b.ReadCloser.Close()
	if b.done.CompareAndSwap(false, true) {
		b.in.Release()
	}
	return err
}

// Write lets a 101 Switching Protocols body (an io.ReadWriteCloser) keep working through the wrapper.
func (b *releaseBody) Write(p []byte) (int, error) {
	if w, ok := b.ReadCloser.(io.Writer); ok {
		n, err := w.Write(p)
		b.written.Add(int64(n))
		return n, err
	}
	return 0, errors.New("relay: body is not writable")
}

type countingWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (c *countingWriter) WriteHeader(code int) {
	if c.status == 0 && code >= 200 || code == http.StatusSwitchingProtocols {
		c.status = code
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach Flush, Hijack and deadlines.
func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// countingBody counts request-body bytes and arms the read deadline around each read, so a client
// that stops sending mid-body is cut off after BodyReadTimeout while a slow but steady upload lives.
// The deadline is cleared after every read: left armed, it would fire on the connection once the body
// is complete and cancel the request while the instance is still answering.
type countingBody struct {
	io.ReadCloser
	rc       *http.ResponseController
	timeout  time.Duration
	n        atomic.Int64
	failed   atomic.Bool // a read failed with an error other than io.EOF: the client's doing
	timedOut atomic.Bool // ... and the failure was the body deadline
}

func (b *countingBody) Read(p []byte) (int, error) {
	_ = b.rc.SetReadDeadline(time.Now().Add(b.timeout))
	n, err := b.ReadCloser.Read(p)
	_ = b.rc.SetReadDeadline(time.Time{})
	b.n.Add(int64(n))
	if err != nil && err != io.EOF {
		if isTimeout(err) {
			b.timedOut.Store(true)
		}
		b.failed.Store(true)
	}
	return n, err
}

func notFound(w http.ResponseWriter) { writeError(w, http.StatusNotFound, "not found") }

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintf(w, "{\"error\":{\"code\":%d,\"message\":%q}}\n", code, msg)
}
