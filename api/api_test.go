package api_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kinesis-network/portal/api"
	"github.com/kinesis-network/portal/api/apitype"
	"github.com/kinesis-network/portal/registry"
)

// clock is a settable clock shared by the store and the handler.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// env is a control API on a real TLS listener over an in-memory store, with an admin token and two
// tenants ("acme" and "beta") that each have a plain token.
type env struct {
	t                 *testing.T
	srv               *httptest.Server
	store             registry.Store
	clk               *clock
	logs              *syncBuffer
	admin, tokA, tokB string
}

type envOpt func(*registry.Options, *api.Config)

func newEnv(t *testing.T, opts ...envOpt) *env {
	t.Helper()
	clk := &clock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	ro := registry.Options{Now: clk.Now, PortMin: 40000, PortMax: 40009}
	logs := &syncBuffer{}
	cfg := api.Config{
		Logger: slog.New(slog.NewJSONHandler(logs, nil)),
		Zone:   "z1", Region: "r1",
		RelayURL: func(zone, region, key string) string {
			return "https://" + zone + "." + region + ".portal.test:8443/relay/" + key + "/"
		},
		TCPAddress: func(zone, region string, port int) string {
			return fmt.Sprintf("%s.%s.portal.test:%d", zone, region, port)
		},
		Now: clk.Now,
	}
	for _, o := range opts {
		o(&ro, &cfg)
	}
	if cfg.Store == nil {
		cfg.Store = registry.NewMemory(ro)
	}
	e := &env{t: t, store: cfg.Store, clk: clk, logs: logs}
	t.Cleanup(func() { e.store.Close() })
	admin, err := api.Bootstrap(context.Background(), e.store, "ops", "Operators")
	if err != nil {
		t.Fatal(err)
	}
	e.admin = admin
	e.srv = httptest.NewTLSServer(api.New(cfg))
	t.Cleanup(e.srv.Close)
	e.tokA = e.tenantToken("acme")
	e.tokB = e.tenantToken("beta")
	return e
}

// tenantToken creates a tenant through the admin API and returns a new non-admin token for it.
func (e *env) tenantToken(id string) string {
	e.t.Helper()
	e.mustStatus(http.StatusCreated, "POST", "/v1/tenants", e.admin, `{"id":"`+id+`","name":"Tenant `+id+`"}`)
	var tok apitype.Token
	e.decode(e.mustStatus(http.StatusCreated, "POST", "/v1/tenants/"+id+"/tokens", e.admin, `{"name":"ci"}`), &tok)
	if len(tok.Token) < 43 || tok.TenantID != id || tok.Admin {
		e.t.Fatalf("token = %+v", tok)
	}
	return tok.Token
}

// do calls the API and returns status, headers and body.
func (e *env) do(method, path, token, body string) (int, http.Header, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func (e *env) mustStatus(want int, method, path, token, body string) []byte {
	e.t.Helper()
	st, _, b := e.do(method, path, token, body)
	if st != want {
		e.t.Fatalf("%s %s = %d, want %d: %s", method, path, st, want, b)
	}
	return b
}

func (e *env) decode(b []byte, v any) {
	e.t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		e.t.Fatalf("decode %s: %v", b, err)
	}
}

func (e *env) create(token, body string) apitype.Endpoint {
	e.t.Helper()
	var ep apitype.Endpoint
	e.decode(e.mustStatus(http.StatusCreated, "POST", "/v1/endpoints", token, body), &ep)
	return ep
}

func (e *env) get(token, id string) apitype.Endpoint {
	e.t.Helper()
	var ep apitype.Endpoint
	e.decode(e.mustStatus(http.StatusOK, "GET", "/v1/endpoints/"+id, token, ""), &ep)
	return ep
}

func (e *env) patch(token, id, body string) apitype.Endpoint {
	e.t.Helper()
	var ep apitype.Endpoint
	e.decode(e.mustStatus(http.StatusOK, "PATCH", "/v1/endpoints/"+id, token, body), &ep)
	return ep
}

// errorOf checks that b is a JSON error body and returns it.
func (e *env) errorOf(b []byte) apitype.ErrorDetail {
	e.t.Helper()
	var eb apitype.ErrorBody
	if err := json.Unmarshal(b, &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
		e.t.Fatalf("not a JSON error body: %s (%v)", b, err)
	}
	return eb.Error
}

func (e *env) storeEndpoint(tenant, id string) *registry.Endpoint {
	e.t.Helper()
	ep, err := e.store.GetEndpoint(context.Background(), tenant, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return ep
}

const httpsBody = `{"name":"web","type":"https","upstreams":["127.0.0.1:8081","127.0.0.1:8082"]}`

func TestEndpointCRUD(t *testing.T) {
	e := newEnv(t)
	st, hdr, b := e.do("POST", "/v1/endpoints", e.tokA, httpsBody)
	if st != http.StatusCreated {
		t.Fatalf("create = %d: %s", st, b)
	}
	var ep apitype.Endpoint
	e.decode(b, &ep)
	if !strings.HasPrefix(ep.ID, "ep_") || ep.Name != "web" || ep.Type != "https" || ep.Zone != "z1" || ep.Region != "r1" {
		t.Fatalf("created %+v", ep)
	}
	if hdr.Get("Location") != "/v1/endpoints/"+ep.ID || hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("headers %v", hdr)
	}
	key := ep.AccessKey
	if len(key) < 43 {
		t.Fatalf("access key %q is shorter than 43 characters", key)
	}
	if want := "https://z1.r1.portal.test:8443/relay/" + key + "/"; ep.URL != want {
		t.Errorf("url = %q, want %q", ep.URL, want)
	}
	if want := "https://z1.r1.portal.test:8443/relay/<access-key>/"; ep.URLTemplate != want {
		t.Errorf("url_template = %q, want %q", ep.URLTemplate, want)
	}
	if len(ep.Instances) != 2 || ep.Upstreams[1] != "127.0.0.1:8082" || !strings.HasPrefix(ep.Instances[0].ID, "in_") {
		t.Errorf("instances %+v upstreams %v", ep.Instances, ep.Upstreams)
	}
	if ep.Balance != "p2c" || ep.Version != 1 || len(ep.Keys) != 1 || !ep.Keys[0].Active || ep.TLS != nil || ep.Address != "" {
		t.Errorf("created %+v", ep)
	}
	if ep.Firewall.Allow == nil || ep.Firewall.Deny == nil {
		t.Errorf("firewall lists should be [] not null: %s", b)
	}
	// Stored only as a hash.
	stored := e.storeEndpoint("acme", ep.ID)
	if len(stored.Keys) != 1 || stored.Keys[0].Hash != registry.HashSecret(key) {
		t.Fatalf("stored keys %+v", stored.Keys)
	}

	got := e.get(e.tokA, ep.ID)
	if got.ID != ep.ID || got.AccessKey != "" || got.URL != "" || got.URLTemplate != ep.URLTemplate {
		t.Errorf("GET %+v", got)
	}
	_, _, raw := e.do("GET", "/v1/endpoints/"+ep.ID, e.tokA, "")
	_, _, list := e.do("GET", "/v1/endpoints", e.tokA, "")
	for _, body := range [][]byte{raw, list} {
		if bytes.Contains(body, []byte(key)) || bytes.Contains(body, []byte(stored.Keys[0].Hash)) {
			t.Errorf("response reveals the key or its hash: %s", body)
		}
	}
	var l apitype.EndpointList
	e.decode(list, &l)
	if len(l.Endpoints) != 1 || l.Endpoints[0].ID != ep.ID {
		t.Errorf("list %+v", l)
	}

	p := e.patch(e.tokA, ep.ID, `{"sticky":{"enabled":true,"ttl_seconds":3600}}`)
	if !p.Sticky.Enabled || p.Sticky.TTLSeconds != 3600 || p.Version != 2 || p.AccessKey != "" || p.URL != "" {
		t.Errorf("PATCH %+v", p)
	}
	if p.Instances[0].ID != ep.Instances[0].ID || p.Instances[1].ID != ep.Instances[1].ID || p.Name != "web" {
		t.Errorf("PATCH sticky changed other fields: %+v", p)
	}

	st, _, b = e.do("DELETE", "/v1/endpoints/"+ep.ID, e.tokA, "")
	if st != http.StatusNoContent || len(b) != 0 {
		t.Fatalf("DELETE = %d %s", st, b)
	}
	for _, m := range []string{"GET", "DELETE"} {
		st, _, b = e.do(m, "/v1/endpoints/"+ep.ID, e.tokA, "")
		if er := e.errorOf(b); st != http.StatusNotFound || er.Code != "not_found" || er.Message != "endpoint "+ep.ID+" not found" {
			t.Errorf("%s after delete = %d %+v", m, st, er)
		}
	}
	if logs := e.logs.String(); strings.Contains(logs, key) || strings.Contains(logs, e.tokA) || strings.Contains(logs, e.admin) {
		t.Errorf("logs reveal a secret:\n%s", logs)
	}
	if !strings.Contains(e.logs.String(), `"route":"POST /v1/endpoints"`) {
		t.Errorf("no request log line:\n%s", e.logs.String())
	}
}

func TestRotateKey(t *testing.T) {
	e := newEnv(t)
	ep := e.create(e.tokA, httpsBody)
	t0 := e.clk.Now()
	k1 := ep.AccessKey

	// Without grace: the old key is gone at once.
	var r1 apitype.Endpoint
	e.decode(e.mustStatus(http.StatusOK, "POST", "/v1/endpoints/"+ep.ID+"/rotate-key", e.tokA, `{}`), &r1)
	k2 := r1.AccessKey
	if len(k2) < 43 || k2 == k1 || r1.URL != "https://z1.r1.portal.test:8443/relay/"+k2+"/" || r1.Version != 2 {
		t.Fatalf("rotate %+v", r1)
	}
	keys := e.storeEndpoint("acme", ep.ID).Keys
	if len(keys) != 1 || keys[0].Hash != registry.HashSecret(k2) || keys[0].ExpiresAt != nil {
		t.Fatalf("keys after rotation without grace: %+v", keys)
	}

	// With grace: the old key gets ExpiresAt = now + grace. An empty body is fine too.
	e.clk.Advance(10 * time.Second)
	var r2 apitype.Endpoint
	e.decode(e.mustStatus(http.StatusOK, "POST", "/v1/endpoints/"+ep.ID+"/rotate-key", e.tokA, `{"grace_seconds":60}`), &r2)
	k3 := r2.AccessKey
	keys = e.storeEndpoint("acme", ep.ID).Keys
	if len(keys) != 2 || keys[0].Hash != registry.HashSecret(k2) || keys[1].Hash != registry.HashSecret(k3) {
		t.Fatalf("keys after rotation with grace: %+v", keys)
	}
	if want := t0.Add(70 * time.Second); keys[0].ExpiresAt == nil || !keys[0].ExpiresAt.Equal(want) || keys[1].ExpiresAt != nil {
		t.Fatalf("old key expires %v, want %v; new %v", keys[0].ExpiresAt, want, keys[1].ExpiresAt)
	}
	got := e.get(e.tokA, ep.ID)
	if len(got.Keys) != 2 || !got.Keys[0].Active || got.Keys[0].ExpiresAt == nil || !got.Keys[1].Active {
		t.Errorf("GET keys %+v", got.Keys)
	}

	// After the grace period the old key shows inactive, and the next rotation drops it.
	e.clk.Advance(2 * time.Minute)
	if got := e.get(e.tokA, ep.ID); got.Keys[0].Active || !got.Keys[1].Active {
		t.Errorf("GET keys after grace %+v", got.Keys)
	}
	st, _, b := e.do("POST", "/v1/endpoints/"+ep.ID+"/rotate-key", e.tokA, "")
	if st != http.StatusOK {
		t.Fatalf("rotate with empty body = %d %s", st, b)
	}
	var r3 apitype.Endpoint
	e.decode(b, &r3)
	keys = e.storeEndpoint("acme", ep.ID).Keys
	if len(keys) != 1 || keys[0].Hash != registry.HashSecret(r3.AccessKey) {
		t.Fatalf("expired key not dropped: %+v", keys)
	}

	// A grace rotation never extends an earlier, shorter expiry.
	e.mustStatus(http.StatusOK, "POST", "/v1/endpoints/"+ep.ID+"/rotate-key", e.tokA, `{"grace_seconds":30}`)
	e.mustStatus(http.StatusOK, "POST", "/v1/endpoints/"+ep.ID+"/rotate-key", e.tokA, `{"grace_seconds":3600}`)
	keys = e.storeEndpoint("acme", ep.ID).Keys
	now := e.clk.Now()
	if len(keys) != 3 || !keys[0].ExpiresAt.Equal(now.Add(30*time.Second)) || !keys[1].ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("keys %+v", keys)
	}

	for _, tc := range []struct{ body, msg string }{
		{`{"grace_seconds":-1}`, "grace_seconds: must be between 0 and 2592000 (got -1)"},
		{`{"grace_seconds":"1h"}`, "grace_seconds: must be an integer, not string"},
		{`{"grace":1}`, `grace: unknown field "grace"`},
	} {
		st, _, b := e.do("POST", "/v1/endpoints/"+ep.ID+"/rotate-key", e.tokA, tc.body)
		if er := e.errorOf(b); st != http.StatusBadRequest || er.Message != tc.msg {
			t.Errorf("rotate %s = %d %q, want 400 %q", tc.body, st, er.Message, tc.msg)
		}
	}
	tcp := e.create(e.tokA, `{"name":"db","type":"tcp","upstreams":["127.0.0.1:5432"]}`)
	st, _, b = e.do("POST", "/v1/endpoints/"+tcp.ID+"/rotate-key", e.tokA, `{}`)
	if er := e.errorOf(b); st != http.StatusBadRequest || !strings.Contains(er.Message, "only https endpoints have access keys") {
		t.Errorf("rotate tcp = %d %+v", st, er)
	}
	if logs := e.logs.String(); strings.Contains(logs, k1) || strings.Contains(logs, k2) || strings.Contains(logs, k3) {
		t.Errorf("logs reveal a key")
	}
}

func TestTenantIsolation(t *testing.T) {
	e := newEnv(t)
	epA := e.create(e.tokA, httpsBody)
	inA := epA.Instances[0].ID
	// The same name is free in another tenant.
	epB := e.create(e.tokB, httpsBody)

	const unknown = "ep_0000000000000000"
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/endpoints/%s", ""},
		{"PATCH", "/v1/endpoints/%s", `{"name":"stolen"}`},
		{"DELETE", "/v1/endpoints/%s", ""},
		{"POST", "/v1/endpoints/%s/rotate-key", `{}`},
		{"GET", "/v1/endpoints/%s/instances", ""},
		{"POST", "/v1/endpoints/%s/instances", `{"addr":"10.0.0.1:80"}`},
		{"DELETE", "/v1/endpoints/%s/instances/" + inA, ""},
	} {
		st, _, b := e.do(c.method, fmt.Sprintf(c.path, epA.ID), e.tokB, c.body)
		stU, _, bU := e.do(c.method, fmt.Sprintf(c.path, unknown), e.tokB, c.body)
		er, erU := e.errorOf(b), e.errorOf(bU)
		if st != http.StatusNotFound || stU != http.StatusNotFound || er.Code != erU.Code ||
			er.Message != strings.ReplaceAll(erU.Message, unknown, epA.ID) {
			t.Errorf("%s %s as B = %d %+v; unknown id = %d %+v", c.method, c.path, st, er, stU, erU)
		}
	}
	var l apitype.EndpointList
	e.decode(e.mustStatus(http.StatusOK, "GET", "/v1/endpoints", e.tokB, ""), &l)
	if len(l.Endpoints) != 1 || l.Endpoints[0].ID != epB.ID {
		t.Errorf("B lists %+v", l.Endpoints)
	}
	if got := e.get(e.tokA, epA.ID); got.Version != 1 || got.Name != "web" || len(got.Instances) != 2 || len(got.Keys) != 1 {
		t.Errorf("B changed A's endpoint: %+v", got)
	}
}

func TestAuth(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ name, authz, msg string }{
		{"none", "", "missing bearer token"},
		{"bad token", "Bearer " + registry.NewSecret(), "invalid or revoked token"},
		{"basic", "Basic " + e.tokA, "malformed Authorization header"},
		{"empty bearer", "Bearer ", "malformed Authorization header"},
	} {
		req, _ := http.NewRequest("GET", e.srv.URL+"/v1/endpoints", nil)
		if c.authz != "" {
			req.Header.Set("Authorization", c.authz)
		}
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		er := e.errorOf(b)
		if resp.StatusCode != 401 || er.Code != "unauthenticated" || !strings.HasPrefix(er.Message, c.msg) ||
			!strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: %d %v %+v", c.name, resp.StatusCode, resp.Header, er)
		}
	}
	// Scheme is case-insensitive.
	st, _, _ := e.do("GET", "/v1/whoami", "", "")
	if st != 401 {
		t.Errorf("whoami without token = %d", st)
	}
	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/whoami", nil)
	req.Header.Set("Authorization", "bearer "+e.tokA)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("lower-case bearer = %d", resp.StatusCode)
	}
	e.mustStatus(http.StatusOK, "GET", "/healthz", "", "")
}

func TestAdminRoutes(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/tenants", ""},
		{"POST", "/v1/tenants", `{"name":"x"}`},
		{"GET", "/v1/tenants/acme", ""},
		{"POST", "/v1/tenants/acme/tokens", `{"name":"x","admin":true}`},
		{"DELETE", "/v1/tokens/tk_0000000000000000", ""},
	} {
		st, _, b := e.do(c.method, c.path, e.tokA, c.body)
		if er := e.errorOf(b); st != http.StatusForbidden || er.Code != "forbidden" {
			t.Errorf("%s %s as tenant = %d %+v", c.method, c.path, st, er)
		}
	}
	var who apitype.Whoami
	e.decode(e.mustStatus(http.StatusOK, "GET", "/v1/whoami", e.tokA, ""), &who)
	if who.TenantID != "acme" || who.TenantName != "Tenant acme" || who.Admin || !strings.HasPrefix(who.TokenID, "tk_") || who.TokenName != "ci" {
		t.Errorf("whoami A %+v", who)
	}
	e.decode(e.mustStatus(http.StatusOK, "GET", "/v1/whoami", e.admin, ""), &who)
	if who.TenantID != "ops" || !who.Admin {
		t.Errorf("whoami admin %+v", who)
	}

	var tl apitype.TenantList
	e.decode(e.mustStatus(http.StatusOK, "GET", "/v1/tenants", e.admin, ""), &tl)
	if len(tl.Tenants) != 3 || tl.Tenants[0].ID != "acme" || tl.Tenants[1].ID != "beta" || tl.Tenants[2].ID != "ops" {
		t.Errorf("tenants %+v", tl)
	}
	var tn apitype.Tenant
	e.decode(e.mustStatus(http.StatusCreated, "POST", "/v1/tenants", e.admin, `{"name":"Gamma Inc"}`), &tn)
	if !strings.HasPrefix(tn.ID, "tn_") || tn.Name != "Gamma Inc" {
		t.Errorf("created tenant %+v", tn)
	}
	e.decode(e.mustStatus(http.StatusOK, "GET", "/v1/tenants/"+tn.ID, e.admin, ""), &tn)

	for _, c := range []struct {
		method, path, body string
		status             int
		msg                string
	}{
		{"POST", "/v1/tenants", `{"id":"acme","name":"again"}`, 409, `tenant "acme" already exists`},
		{"POST", "/v1/tenants", `{"id":"Bad Id","name":"x"}`, 400, `id: must be 1-63 characters of a-z, 0-9, '-' and '_' (got "Bad Id")`},
		{"POST", "/v1/tenants", `{"id":"ok"}`, 400, "name: required"},
		{"POST", "/v1/tenants/nope/tokens", `{"name":"x"}`, 404, "tenant nope not found"},
		{"GET", "/v1/tenants/nope", "", 404, "tenant nope not found"},
		{"DELETE", "/v1/tokens/tk_0000000000000000", "", 404, "token tk_0000000000000000 not found"},
	} {
		st, _, b := e.do(c.method, c.path, e.admin, c.body)
		if er := e.errorOf(b); st != c.status || er.Message != c.msg {
			t.Errorf("%s %s %s = %d %q, want %d %q", c.method, c.path, c.body, st, er.Message, c.status, c.msg)
		}
	}

	// A new token works until it is deleted.
	var tok apitype.Token
	e.decode(e.mustStatus(http.StatusCreated, "POST", "/v1/tenants/acme/tokens", e.admin, ""), &tok)
	e.mustStatus(http.StatusOK, "GET", "/v1/endpoints", tok.Token, "")
	e.mustStatus(http.StatusNoContent, "DELETE", "/v1/tokens/"+tok.ID, e.admin, "")
	e.mustStatus(http.StatusUnauthorized, "GET", "/v1/endpoints", tok.Token, "")
}

// caPEM returns a self-signed CA certificate in PEM.
func caPEM(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestTCPEndpoints(t *testing.T) {
	e := newEnv(t)
	a := e.create(e.tokA, `{"name":"db","type":"tcp","upstreams":["127.0.0.1:5432"]}`)
	b := e.create(e.tokB, `{"name":"db","type":"tcp","upstreams":["db.internal:5432"],"proxy_protocol":true}`)
	if a.Port < 40000 || a.Port > 40009 || a.Address != fmt.Sprintf("z1.r1.portal.test:%d", a.Port) {
		t.Errorf("tcp endpoint address %q port %d", a.Address, a.Port)
	}
	if b.Port == a.Port || b.Address == a.Address || !b.ProxyProtocol {
		t.Errorf("second tcp endpoint %q, first %q", b.Address, a.Address)
	}
	if a.AccessKey != "" || a.URL != "" || a.URLTemplate != "" || len(a.Keys) != 0 {
		t.Errorf("tcp endpoint has relay fields: %+v", a)
	}
	if a.TLS == nil || a.TLS.Mode != "plain" {
		t.Errorf("tls = %+v, want plain", a.TLS)
	}
	if got := e.get(e.tokA, a.ID); got.Address != a.Address || got.Port != a.Port {
		t.Errorf("GET address %q", got.Address)
	}

	ca := caPEM(t)
	body, _ := json.Marshal(map[string]any{"tls": map[string]string{"mode": "mtls", "client_ca_pem": ca}})
	p := e.patch(e.tokA, a.ID, string(body))
	if p.TLS.Mode != "mtls" || p.TLS.ClientCAPEM != ca {
		t.Fatalf("mtls patch %+v", p.TLS)
	}
	if s := e.storeEndpoint("acme", a.ID); s.TLS.Mode != "mtls" || s.TLS.ClientCAPEM != ca {
		t.Errorf("stored tls %+v", s.TLS)
	}
	// Toggling mTLS off keeps the CA, so it can be toggled on again without re-uploading.
	if p := e.patch(e.tokA, a.ID, `{"tls":{"mode":"tls"}}`); p.TLS.Mode != "tls" || p.TLS.ClientCAPEM != ca {
		t.Errorf("tls patch %+v", p.TLS)
	}
	if p := e.patch(e.tokA, a.ID, `{"tls":{"mode":"mtls"}}`); p.TLS.Mode != "mtls" {
		t.Errorf("mtls again %+v", p.TLS)
	}
	if p := e.patch(e.tokA, a.ID, `{"tls":null}`); p.TLS.Mode != "plain" || p.TLS.ClientCAPEM != "" {
		t.Errorf("tls null %+v", p.TLS)
	}
	if p := e.patch(e.tokA, a.ID, `{"tls":{"mode":"tls+plain"}}`); p.TLS.Mode != "tls+plain" || p.Port != a.Port || p.Address != a.Address {
		t.Errorf("tls+plain %+v", p)
	}
	st, _, bb := e.do("PATCH", "/v1/endpoints/"+a.ID, e.tokA, `{"tls":{"mode":"mtls"}}`)
	if er := e.errorOf(bb); st != 400 || er.Field != "tls.client_ca_pem" {
		t.Errorf("mtls without CA = %d %+v", st, er)
	}

	// IP endpoints take destination rules; TCP endpoints do not.
	ip := e.create(e.tokA, `{"name":"direct","type":"ip","upstreams":["10.0.0.5:22"],"firewall":{"allow":["0.0.0.0/0"],"deny":[],"dest_allow":["203.0.113.7"]},"tls":{"mode":"passthrough"}}`)
	if ip.Port == 0 || ip.Address == "" || ip.Firewall.DestAllow[0] != "203.0.113.7" || ip.TLS.Mode != "passthrough" {
		t.Errorf("ip endpoint %+v", ip)
	}
	// Deleting frees nothing visible (quarantine); a new endpoint gets yet another port.
	e.mustStatus(http.StatusNoContent, "DELETE", "/v1/endpoints/"+a.ID, e.tokA, "")
	c := e.create(e.tokA, `{"name":"db","type":"tcp","upstreams":["127.0.0.1:5432"]}`)
	if c.Port == a.Port || c.Port == b.Port || c.Port == ip.Port {
		t.Errorf("port %d reused at once", c.Port)
	}
}

func TestNoFreePort(t *testing.T) {
	e := newEnv(t, func(o *registry.Options, _ *api.Config) { o.PortMin, o.PortMax = 41000, 41000 })
	e.create(e.tokA, `{"name":"one","type":"tcp","upstreams":["127.0.0.1:1"]}`)
	st, hdr, b := e.do("POST", "/v1/endpoints", e.tokA, `{"name":"two","type":"tcp","upstreams":["127.0.0.1:1"]}`)
	if er := e.errorOf(b); st != http.StatusServiceUnavailable || er.Code != "no_free_port" || hdr.Get("Retry-After") == "" {
		t.Errorf("no free port = %d %+v", st, er)
	}
}

func TestCreateValidation(t *testing.T) {
	e := newEnv(t)
	ok := func(extra string) string {
		return `{"name":"x","type":"https","upstreams":["127.0.0.1:8080"]` + extra + `}`
	}
	okTCP := func(extra string) string {
		return `{"name":"x","type":"tcp","upstreams":["127.0.0.1:8080"]` + extra + `}`
	}
	for _, c := range []struct {
		name, body string
		code       string
		field, msg string
	}{
		{"malformed", `{"name":`, "invalid_json", "", "malformed JSON: unexpected end of input"},
		{"syntax", `{"name" "x"}`, "invalid_json", "", "malformed JSON at byte 9: invalid character '\"' after object key"},
		{"not an object", `["x"]`, "invalid_json", "", "request body must be a JSON object, not array"},
		{"trailing data", ok(``) + `{}`, "invalid_json", "", "malformed JSON: unexpected data after the JSON object"},
		{"empty", ` `, "invalid_json", "", "request body is empty: send a JSON object"},
		{"unknown field", ok(`,"colour":"red"`), "invalid_argument", "colour", `colour: unknown field "colour"`},
		{"wrong type", `{"name":5,"type":"https"}`, "invalid_argument", "name", "name: must be a string, not number"},
		{"wrong nested type", ok(`,"sticky":{"enabled":"yes"}`), "invalid_argument", "sticky.enabled", "sticky.enabled: must be true or false, not string"},
		{"no name", `{"type":"https","upstreams":[]}`, "invalid_argument", "name", "name: required"},
		{"bad name", `{"name":"Web_1","type":"https"}`, "invalid_argument", "name", `name: must be 1-63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit (got "Web_1")`},
		{"long name", `{"name":"` + strings.Repeat("a", 64) + `","type":"https"}`, "invalid_argument", "name", ""},
		{"no type", `{"name":"x"}`, "invalid_argument", "type", `type: required: "https", "tcp" or "ip"`},
		{"bad type", `{"name":"x","type":"bogus","upstreams":["127.0.0.1:8080"]}`, "invalid_argument", "type", `type: must be "https", "tcp" or "ip" (got "bogus")`},
		{"bad zone", ok(`,"zone":"Z!"`), "invalid_argument", "zone", `zone: must be 1-63 characters of a-z, 0-9 and '-' (got "Z!")`},
		{"no port", `{"name":"x","type":"https","upstreams":["127.0.0.1"]}`, "invalid_argument", "upstreams[0]", `upstreams[0]: invalid address "127.0.0.1": want host:port`},
		{"port 0", `{"name":"x","type":"https","upstreams":["127.0.0.1:80","127.0.0.1:0"]}`, "invalid_argument", "upstreams[1]", `upstreams[1]: invalid address "127.0.0.1:0": port must be a number from 1 to 65535`},
		{"port too big", `{"name":"x","type":"https","upstreams":["h:70000"]}`, "invalid_argument", "upstreams[0]", `upstreams[0]: invalid address "h:70000": port must be a number from 1 to 65535`},
		{"bad host", `{"name":"x","type":"https","upstreams":["bad host:80"]}`, "invalid_argument", "upstreams[0]", `upstreams[0]: invalid address "bad host:80": "bad host" is neither an IP address nor a host name`},
		{"empty host", `{"name":"x","type":"https","upstreams":[":80"]}`, "invalid_argument", "upstreams[0]", `upstreams[0]: invalid address ":80": empty host`},
		{"duplicate upstream", `{"name":"x","type":"https","upstreams":["a:1","b:1","a:1"]}`, "invalid_argument", "upstreams[2]", `upstreams[2]: duplicate address "a:1" (also upstreams[0])`},
		{"bad CIDR", ok(`,"firewall":{"allow":[],"deny":["300.1.2.3/8"]}`), "invalid_argument", "firewall.deny[0]", `firewall.deny[0]: invalid CIDR "300.1.2.3/8"`},
		{"bad allow", ok(`,"firewall":{"allow":["10.0.0.0/8","nope"]}`), "invalid_argument", "firewall.allow[1]", `firewall.allow[1]: invalid address or CIDR "nope"`},
		{"empty rule", ok(`,"firewall":{"deny":[" "]}`), "invalid_argument", "firewall.deny[0]", `firewall.deny[0]: empty entry`},
		{"dest rules on https", ok(`,"firewall":{"dest_allow":["10.0.0.1"]}`), "invalid_argument", "firewall.dest_allow", `firewall.dest_allow: only "ip" endpoints have destination rules`},
		{"dest rules on tcp", okTCP(`,"firewall":{"dest_deny":["10.0.0.1"]}`), "invalid_argument", "firewall.dest_deny", `firewall.dest_deny: only "ip" endpoints have destination rules`},
		{"negative rps", ok(`,"rate_limit":{"rps":-1}`), "invalid_argument", "rate_limit.rps", "rate_limit.rps: must be between 0 and 1e+09 (got -1)"},
		{"negative burst", ok(`,"rate_limit":{"rps":1,"burst":-2}`), "invalid_argument", "rate_limit.burst", "rate_limit.burst: must be between 0 and 1000000000 (got -2)"},
		{"negative ttl", ok(`,"sticky":{"enabled":true,"ttl_seconds":-5}`), "invalid_argument", "sticky.ttl_seconds", "sticky.ttl_seconds: must be between 0 and 31536000 (got -5)"},
		{"bad balance", ok(`,"balance":"random"`), "invalid_argument", "balance", `balance: must be "p2c", "round_robin" or "source_ip" (got "random")`},
		{"tls on https", ok(`,"tls":{"mode":"tls"}`), "invalid_argument", "tls", "tls: only tcp and ip endpoints have TLS settings (https endpoints always terminate TLS)"},
		{"proxy protocol on https", ok(`,"proxy_protocol":true`), "invalid_argument", "proxy_protocol", "proxy_protocol: only tcp and ip endpoints send a PROXY protocol header"},
		{"bad tls mode", okTCP(`,"tls":{"mode":"ssl"}`), "invalid_argument", "tls.mode", `tls.mode: must be one of plain, tls, tls+plain, mtls, passthrough (got "ssl")`},
		{"mtls without CA", okTCP(`,"tls":{"mode":"mtls"}`), "invalid_argument", "tls.client_ca_pem", `tls.client_ca_pem: required when tls.mode is "mtls": the PEM CA bundle client certificates must chain to`},
		{"mtls bad CA", okTCP(`,"tls":{"mode":"mtls","client_ca_pem":"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"}`), "invalid_argument", "tls.client_ca_pem", "tls.client_ca_pem: holds no PEM certificate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, _, b := e.do("POST", "/v1/endpoints", e.tokA, c.body)
			er := e.errorOf(b)
			if st != http.StatusBadRequest || er.Code != c.code || er.Field != c.field || !strings.HasPrefix(er.Message, c.msg) {
				t.Errorf("= %d %+v\nwant 400 code %q field %q message %q", st, er, c.code, c.field, c.msg)
			}
		})
	}
	var l apitype.EndpointList
	e.decode(e.mustStatus(http.StatusOK, "GET", "/v1/endpoints", e.tokA, ""), &l)
	if len(l.Endpoints) != 0 {
		t.Errorf("a rejected request created %d endpoints", len(l.Endpoints))
	}
}

func TestRequestLimits(t *testing.T) {
	e := newEnv(t, func(_ *registry.Options, c *api.Config) { c.MaxBodyBytes = 256 })
	big := `{"name":"x","type":"https","upstreams":["` + strings.Repeat("a", 300) + `:1"]}`
	st, _, b := e.do("POST", "/v1/endpoints", e.tokA, big)
	if er := e.errorOf(b); st != http.StatusRequestEntityTooLarge || er.Code != "request_too_large" {
		t.Errorf("big body = %d %+v", st, er)
	}
	req, _ := http.NewRequest("POST", e.srv.URL+"/v1/endpoints", strings.NewReader("name=x"))
	req.Header.Set("Authorization", "Bearer "+e.tokA)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if er := e.errorOf(b); resp.StatusCode != http.StatusUnsupportedMediaType || er.Code != "unsupported_media_type" {
		t.Errorf("form body = %d %+v", resp.StatusCode, er)
	}
	st, hdr, b := e.do("PUT", "/v1/endpoints", e.tokA, `{}`)
	if er := e.errorOf(b); st != http.StatusMethodNotAllowed || hdr.Get("Allow") != "GET, HEAD, POST" || er.Code != "method_not_allowed" {
		t.Errorf("PUT = %d %v %+v", st, hdr.Get("Allow"), er)
	}
	st, _, b = e.do("GET", "/v1/nope", e.tokA, "")
	if er := e.errorOf(b); st != http.StatusNotFound || er.Code != "not_found" {
		t.Errorf("unknown route = %d %+v", st, er)
	}
}

func TestDuplicateName(t *testing.T) {
	e := newEnv(t)
	e.create(e.tokA, httpsBody)
	other := e.create(e.tokA, `{"name":"api","type":"https"}`)
	st, _, b := e.do("POST", "/v1/endpoints", e.tokA, httpsBody)
	if er := e.errorOf(b); st != http.StatusConflict || er.Code != "conflict" || er.Message != `an endpoint named "web" already exists` {
		t.Errorf("duplicate create = %d %+v", st, er)
	}
	st, _, b = e.do("PATCH", "/v1/endpoints/"+other.ID, e.tokA, `{"name":"web"}`)
	if er := e.errorOf(b); st != http.StatusConflict || er.Message != `an endpoint named "web" already exists` {
		t.Errorf("rename to a taken name = %d %+v", st, er)
	}
}

func TestPatchSemantics(t *testing.T) {
	e := newEnv(t)
	ep := e.create(e.tokA, `{"name":"web","type":"https","upstreams":["10.0.0.1:80","10.0.0.2:80"],
		"sticky":{"enabled":true,"ttl_seconds":60},"firewall":{"allow":["10.0.0.0/8"],"deny":["10.6.0.0/16"]},
		"rate_limit":{"rps":2.5},"balance":"round_robin"}`)
	if ep.RateLimit.Burst != 3 || ep.Balance != "round_robin" {
		t.Fatalf("created %+v", ep)
	}
	check := func(name string, got apitype.Endpoint, ok bool) {
		t.Helper()
		if !ok {
			t.Errorf("%s: got %+v", name, got)
		}
	}
	p := e.patch(e.tokA, ep.ID, `{"firewall":{"deny":["192.0.2.0/24"]}}`)
	check("deny only", p, p.Firewall.Allow[0] == "10.0.0.0/8" && p.Firewall.Deny[0] == "192.0.2.0/24" && p.Sticky.TTLSeconds == 60)
	p = e.patch(e.tokA, ep.ID, `{"firewall":{"allow":[],"deny":[]}}`)
	check("clear firewall", p, len(p.Firewall.Allow) == 0 && len(p.Firewall.Deny) == 0)
	p = e.patch(e.tokA, ep.ID, `{"rate_limit":{"rps":10}}`)
	check("rps without burst", p, p.RateLimit.RPS == 10 && p.RateLimit.Burst == 10)
	p = e.patch(e.tokA, ep.ID, `{"rate_limit":{"burst":50}}`)
	check("burst only", p, p.RateLimit.RPS == 10 && p.RateLimit.Burst == 50)
	p = e.patch(e.tokA, ep.ID, `{"sticky":{"enabled":false}}`)
	check("sticky off", p, !p.Sticky.Enabled && p.Sticky.TTLSeconds == 60)
	p = e.patch(e.tokA, ep.ID, `{"sticky":null,"balance":null}`)
	check("null resets", p, !p.Sticky.Enabled && p.Sticky.TTLSeconds == 0 && p.Balance == "p2c")
	p = e.patch(e.tokA, ep.ID, `{"upstreams":["10.0.0.2:80","10.0.0.3:80"]}`)
	check("upstreams replace", p, len(p.Instances) == 2 && p.Instances[0].ID == ep.Instances[1].ID &&
		p.Instances[1].Addr == "10.0.0.3:80" && p.Instances[1].ID != ep.Instances[0].ID)
	p = e.patch(e.tokA, ep.ID, `{"name":"web2"}`)
	check("rename", p, p.Name == "web2" && len(p.Instances) == 2 && p.RateLimit.Burst == 50)
	p = e.patch(e.tokA, ep.ID, `{"type":"https","zone":"z1"}`)
	check("unchanged immutable fields", p, p.Type == "https")

	before := e.get(e.tokA, ep.ID)
	for _, c := range []struct{ body, field, msg string }{
		{`{"type":"tcp"}`, "type", `type: cannot be changed (is "https"); create a new endpoint instead`},
		{`{"zone":"z9"}`, "zone", `zone: cannot be changed (is "z1")`},
		{`{"firewall":{"deny":["300.1.2.3/8"]}}`, "firewall.deny[0]", `firewall.deny[0]: invalid CIDR "300.1.2.3/8"`},
		{`{"upstreams":["nope"]}`, "upstreams[0]", `upstreams[0]: invalid address "nope": want host:port`},
		{`{"id":"ep_x"}`, "id", `id: unknown field "id"`},
		{`{"sticky":{"ttl":5}}`, "ttl", `ttl: unknown field "ttl"`},
		{`{"name":null}`, "name", "name: required"},
		{`{"rate_limit":{"rps":"fast"}}`, "rate_limit.rps", "rate_limit.rps: must be a number, not string"},
		{`[]`, "", "request body must be a JSON object"},
		{``, "", "request body is empty"},
	} {
		st, _, b := e.do("PATCH", "/v1/endpoints/"+ep.ID, e.tokA, c.body)
		if er := e.errorOf(b); st != 400 || er.Field != c.field || !strings.HasPrefix(er.Message, c.msg) {
			t.Errorf("PATCH %s = %d %+v, want field %q message %q", c.body, st, er, c.field, c.msg)
		}
	}
	if after := e.get(e.tokA, ep.ID); after.Version != before.Version {
		t.Errorf("rejected PATCHes changed the endpoint: version %d -> %d", before.Version, after.Version)
	}
}

func TestInstances(t *testing.T) {
	e := newEnv(t)
	ep := e.create(e.tokA, `{"name":"web","type":"https","upstreams":["10.0.0.1:80"]}`)
	base := "/v1/endpoints/" + ep.ID + "/instances"
	st, hdr, b := e.do("POST", base, e.tokA, `{"addr":"[2001:db8::1]:8080"}`)
	if st != http.StatusCreated {
		t.Fatalf("add = %d %s", st, b)
	}
	var in apitype.Instance
	e.decode(b, &in)
	if !strings.HasPrefix(in.ID, "in_") || in.Addr != "[2001:db8::1]:8080" || !in.CreatedAt.Equal(e.clk.Now()) ||
		hdr.Get("Location") != base+"/"+in.ID {
		t.Errorf("added %+v (%v)", in, hdr.Get("Location"))
	}
	e.mustStatus(http.StatusCreated, "POST", base, e.tokA, `{"addr":"backend.internal:9000"}`)
	var l apitype.InstanceList
	e.decode(e.mustStatus(http.StatusOK, "GET", base, e.tokA, ""), &l)
	if len(l.Instances) != 3 || l.Instances[1].ID != in.ID {
		t.Fatalf("list %+v", l)
	}
	for _, c := range []struct {
		body   string
		status int
		msg    string
	}{
		{`{"addr":"10.0.0.1:80"}`, 409, "endpoint " + ep.ID + " already has an instance at 10.0.0.1:80"},
		{`{"addr":"10.0.0.1"}`, 400, `addr: invalid address "10.0.0.1": want host:port`},
		{`{}`, 400, "addr: required"},
		{`{"address":"10.0.0.1:80"}`, 400, `address: unknown field "address"`},
	} {
		st, _, b := e.do("POST", base, e.tokA, c.body)
		if er := e.errorOf(b); st != c.status || !strings.HasPrefix(er.Message, c.msg) {
			t.Errorf("add %s = %d %q, want %d %q", c.body, st, er.Message, c.status, c.msg)
		}
	}
	e.mustStatus(http.StatusNoContent, "DELETE", base+"/"+in.ID, e.tokA, "")
	st, _, b = e.do("DELETE", base+"/"+in.ID, e.tokA, "")
	if er := e.errorOf(b); st != 404 || er.Message != "instance "+in.ID+" not found on endpoint "+ep.ID {
		t.Errorf("remove twice = %d %+v", st, er)
	}
	got := e.get(e.tokA, ep.ID)
	if len(got.Instances) != 2 || got.Upstreams[0] != "10.0.0.1:80" || got.Upstreams[1] != "backend.internal:9000" {
		t.Errorf("after remove %+v", got.Upstreams)
	}
}

// failingStore fails ListEndpoints with err.
type failingStore struct {
	registry.Store
	err error
}

func (f failingStore) ListEndpoints(context.Context, string) ([]*registry.Endpoint, error) {
	return nil, f.err
}

func TestInternalErrors(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{errors.New("dial redis 10.1.2.3: password=hunter2 refused"), 500, "internal"},
		{fmt.Errorf("%w: connection refused", registry.ErrUnavailable), 503, "unavailable"},
	} {
		e := newEnv(t, func(o *registry.Options, cfg *api.Config) {
			cfg.Store = failingStore{Store: registry.NewMemory(*o), err: c.err}
		})
		st, _, b := e.do("GET", "/v1/endpoints", e.tokA, "")
		er := e.errorOf(b)
		if st != c.status || er.Code != c.code || bytes.Contains(b, []byte("hunter2")) || bytes.Contains(b, []byte("refused")) {
			t.Errorf("%v: %d %s", c.err, st, b)
		}
		if !strings.Contains(e.logs.String(), c.err.Error()) {
			t.Errorf("cause not logged: %s", e.logs.String())
		}
	}
}

func TestBootstrap(t *testing.T) {
	s := registry.NewMemory(registry.Options{})
	defer s.Close()
	ctx := context.Background()
	t1, err := api.Bootstrap(ctx, s, "dev", "Developer")
	if err != nil {
		t.Fatal(err)
	}
	t2, err := api.Bootstrap(ctx, s, "dev", "Developer") // idempotent for the tenant
	if err != nil || t1 == t2 || len(t1) < 43 {
		t.Fatalf("second bootstrap: %q %v", t2, err)
	}
	tok, err := s.TokenByHash(ctx, registry.HashSecret(t1))
	if err != nil || !tok.Admin || tok.TenantID != "dev" {
		t.Fatalf("token %+v %v", tok, err)
	}
	if _, err := api.Bootstrap(ctx, s, "Bad Id", ""); err == nil {
		t.Error("bad tenant id accepted")
	}
}
