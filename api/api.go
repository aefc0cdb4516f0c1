// Package api is the portal's control API: an http.Handler that serves JSON over HTTPS (the portal
// provides TLS) for tenants to manage their endpoints, access keys and instances, and for operators to
// manage tenants and API tokens. The wire types live in package api/apitype; the Go client in api/client;
// docs/api.md is the reference.
//
// Every /v1 route needs "Authorization: Bearer <token>". The token is looked up by its SHA-256
// (registry.HashSecret) and scopes the call to its tenant: another tenant's objects answer 404, as if they
// did not exist. Admin routes (/v1/tenants...) need a token with Admin set.
//
// Secrets: an access key is generated here, returned once (create and rotate-key responses) and stored
// only as its hash; it never appears in another response or in a log line. Responses carry
// "Cache-Control: no-store".
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/kinesis-network/portal/api/apitype"
	"github.com/kinesis-network/portal/registry"
)

// Config configures the handler. Only Store is required.
type Config struct {
	// Store holds tenants, tokens and endpoints. Required.
	Store registry.Store
	// Logger receives one record per request (method, route, status, duration, tenant) and the causes
	// of internal errors. Nil: discard.
	Logger *slog.Logger
	// Zone and Region are given to new endpoints whose request names none. Empty: "local" and "dev".
	Zone, Region string
	// RelayURL builds an HTTPS endpoint's relay URL, e.g.
	// "https://<zone>.<region>.portal.<domain>:<port>/relay/<key>/". It must insert key verbatim (keys
	// are URL-safe); the API also calls it with apitype.KeyPlaceholder to build url_template.
	// Nil: "https://<zone>.<region>.portal.localhost/relay/<key>/".
	RelayURL func(zone, region, key string) string
	// TCPAddress builds a TCP or IP endpoint's "host:port" address, e.g.
	// "<zone>.<region>.portal.<domain>:<port>". Nil: "<zone>.<region>.portal.localhost:<port>".
	TCPAddress func(zone, region string, port int) string
	// Now is the clock (key creation and expiry). Nil: time.Now.
	Now func() time.Time
	// MaxBodyBytes caps request bodies, in bytes; larger bodies get 413. Zero: 1 MiB.
	MaxBodyBytes int64
}

// Defaults of Config's zero values.
const (
	DefaultZone         = "local"
	DefaultRegion       = "dev"
	DefaultMaxBodyBytes = 1 << 20
	// MaxGraceSeconds caps a rotation's grace period: 30 days.
	MaxGraceSeconds = 30 * 24 * 3600
)

// handler serves the API. Its fields are immutable after New.
type handler struct {
	cfg Config
	log *slog.Logger
	mux *http.ServeMux
}

// New returns the control-API handler. It panics when cfg.Store is nil (a programming error).
func New(cfg Config) http.Handler {
	if cfg.Store == nil {
		panic("api: Config.Store is nil")
	}
	if cfg.Zone == "" {
		cfg.Zone = DefaultZone
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	if cfg.RelayURL == nil {
		cfg.RelayURL = func(zone, region, key string) string {
			return "https://" + zone + "." + region + ".portal.localhost/relay/" + key + "/"
		}
	}
	if cfg.TCPAddress == nil {
		cfg.TCPAddress = func(zone, region string, port int) string {
			return fmt.Sprintf("%s.%s.portal.localhost:%d", zone, region, port)
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &handler{cfg: cfg, log: log, mux: http.NewServeMux()}
	h.routes()
	return h
}

// route is one path with its handlers by method.
type route struct {
	path    string
	methods map[string]http.HandlerFunc
}

// routes registers every route, plus for each path a method-less fallback that answers 405 in JSON
// (ServeMux's own 405 and 404 answers are plain text).
func (h *handler) routes() {
	tenant, admin := h.authTenant, h.authAdmin
	table := []route{
		{"/healthz", map[string]http.HandlerFunc{"GET": h.healthz}},
		{"/v1/whoami", map[string]http.HandlerFunc{"GET": tenant(h.whoami)}},
		{"/v1/endpoints", map[string]http.HandlerFunc{
			"GET":  tenant(h.listEndpoints),
			"POST": tenant(h.createEndpoint),
		}},
		{"/v1/endpoints/{id}", map[string]http.HandlerFunc{
			"GET":    tenant(h.getEndpoint),
			"PATCH":  tenant(h.patchEndpoint),
			"DELETE": tenant(h.deleteEndpoint),
		}},
		{"/v1/endpoints/{id}/rotate-key", map[string]http.HandlerFunc{"POST": tenant(h.rotateKey)}},
		{"/v1/endpoints/{id}/instances", map[string]http.HandlerFunc{
			"GET":  tenant(h.listInstances),
			"POST": tenant(h.addInstance),
		}},
		{"/v1/endpoints/{id}/instances/{instance_id}", map[string]http.HandlerFunc{
			"DELETE": tenant(h.removeInstance),
		}},
		{"/v1/tenants", map[string]http.HandlerFunc{
			"GET":  admin(h.listTenants),
			"POST": admin(h.createTenant),
		}},
		{"/v1/tenants/{id}", map[string]http.HandlerFunc{"GET": admin(h.getTenant)}},
		{"/v1/tenants/{id}/tokens", map[string]http.HandlerFunc{"POST": admin(h.createToken)}},
		{"/v1/tokens/{id}", map[string]http.HandlerFunc{"DELETE": admin(h.deleteToken)}},
	}
	for _, rt := range table {
		var allow []string
		for m, fn := range rt.methods {
			h.mux.HandleFunc(m+" "+rt.path, fn)
			allow = append(allow, m)
			if m == http.MethodGet {
				allow = append(allow, http.MethodHead)
			}
		}
		sort.Strings(allow)
		allowHdr := strings.Join(allow, ", ")
		h.mux.HandleFunc(rt.path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allowHdr)
			h.fail(w, r, &httpError{Status: http.StatusMethodNotAllowed, Code: apitype.CodeMethodNotAllowed,
				Message: fmt.Sprintf("method %s not allowed on %s (allowed: %s)", r.Method, rt.path, allowHdr)})
		})
	}
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, &httpError{Status: http.StatusNotFound, Code: apitype.CodeNotFound, Message: "no such route: " + r.URL.Path})
	})
}

// reqInfo collects what the request log line reports; handlers fill it through the context.
type reqInfo struct {
	tenant string
	status int
	cause  error // internal error behind a 5xx, logged but never sent
}

type infoKey struct{}

func infoOf(r *http.Request) *reqInfo {
	if ri, ok := r.Context().Value(infoKey{}).(*reqInfo); ok {
		return ri
	}
	return &reqInfo{}
}

// statusWriter records the status code.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ServeHTTP sets the common headers, recovers panics as 500 and logs one record per request. The log
// record holds the route pattern and the endpoint id, never a header or a body.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ri := &reqInfo{}
	r = r.WithContext(context.WithValue(r.Context(), infoKey{}, ri))
	sw := &statusWriter{ResponseWriter: w}
	hdr := sw.Header()
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			ri.cause = fmt.Errorf("panic: %v", p)
			if sw.status == 0 {
				h.fail(sw, r, errInternal)
			}
		}
		attrs := []slog.Attr{
			slog.String("method", r.Method),
			slog.String("route", r.Pattern),
			slog.Int("status", sw.status),
			slog.Float64("duration_seconds", time.Since(start).Seconds()),
		}
		if id := r.PathValue("id"); id != "" {
			attrs = append(attrs, slog.String("id", id))
		}
		if ri.tenant != "" {
			attrs = append(attrs, slog.String("tenant", ri.tenant))
		}
		level := slog.LevelInfo
		if ri.cause != nil {
			attrs = append(attrs, slog.String("error", ri.cause.Error()))
			level = slog.LevelError
		}
		h.log.LogAttrs(r.Context(), level, "api request", attrs...)
	}()
	h.mux.ServeHTTP(sw, r)
}

func (h *handler) healthz(w http.ResponseWriter, r *http.Request) {
	h.reply(w, r, http.StatusOK, map[string]string{"status": "ok"})
}

// principal is the authenticated caller.
type principal struct {
	token registry.APIToken
}

type principalKey struct{}

func principalOf(r *http.Request) principal {
	p, _ := r.Context().Value(principalKey{}).(principal)
	return p
}

// tenantOf returns the caller's tenant id; authTenant guarantees it is not empty.
func tenantOf(r *http.Request) string { return principalOf(r).token.TenantID }

// maxTokenLen bounds the bearer token we hash; real tokens are 43 characters.
const maxTokenLen = 512

// authenticate resolves the bearer token. The token itself is never logged.
func (h *handler) authenticate(r *http.Request) (principal, error) {
	authz := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(authz, " ")
	tok = strings.TrimSpace(tok)
	if authz == "" {
		return principal{}, &httpError{Status: http.StatusUnauthorized, Code: apitype.CodeUnauthenticated,
			Message: "missing bearer token: send Authorization: Bearer <token>"}
	}
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" || len(tok) > maxTokenLen {
		return principal{}, &httpError{Status: http.StatusUnauthorized, Code: apitype.CodeUnauthenticated,
			Message: "malformed Authorization header: send Authorization: Bearer <token>"}
	}
	t, err := h.cfg.Store.TokenByHash(r.Context(), registry.HashSecret(tok))
	if errors.Is(err, registry.ErrNotFound) {
		return principal{}, &httpError{Status: http.StatusUnauthorized, Code: apitype.CodeUnauthenticated,
			Message: "invalid or revoked token"}
	}
	if err != nil {
		return principal{}, err
	}
	return principal{token: t}, nil
}

// authTenant wraps a handler that needs any valid token.
func (h *handler) authTenant(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := h.authenticate(r)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if p.token.TenantID == "" { // the store would read "" as "every tenant"
			h.fail(w, r, &httpError{Status: http.StatusForbidden, Code: apitype.CodeForbidden, Message: "token has no tenant"})
			return
		}
		infoOf(r).tenant = p.token.TenantID
		next(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	}
}

// authAdmin wraps a handler that needs an admin token.
func (h *handler) authAdmin(next http.HandlerFunc) http.HandlerFunc {
	return h.authTenant(func(w http.ResponseWriter, r *http.Request) {
		if !principalOf(r).token.Admin {
			h.fail(w, r, &httpError{Status: http.StatusForbidden, Code: apitype.CodeForbidden,
				Message: "this route needs an admin token"})
			return
		}
		next(w, r)
	})
}
