package main

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
	"math/big"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kinesis-network/portal/api"
	"github.com/kinesis-network/portal/api/apitype"
	"github.com/kinesis-network/portal/registry"
)

// testAPI is the real control API on a TLS listener, with the file of its certificate and an admin
// token. kctl's environment is isolated: KCTL_CONFIG points into a temporary directory.
type testAPI struct {
	t      *testing.T
	srv    *httptest.Server
	ca     string
	token  string
	config string
}

func newTestAPI(t *testing.T) *testAPI {
	store := registry.NewMemory(registry.Options{PortMin: 42000, PortMax: 42009})
	t.Cleanup(func() { store.Close() })
	token, err := api.Bootstrap(context.Background(), store, "dev", "Dev tenant")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(api.New(api.Config{Store: store, Zone: "z1", Region: "r1"}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "home", "kctl", "config.json")
	t.Setenv("KCTL_CONFIG", cfg)
	t.Setenv("KCTL_API", "")
	t.Setenv("KCTL_TOKEN", "")
	t.Setenv("KCTL_CA", "")
	return &testAPI{t: t, srv: srv, ca: ca, token: token, config: cfg}
}

// kctl runs the CLI and returns exit code, stdout and stderr.
func (a *testAPI) kctl(args ...string) (int, string, string) {
	a.t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// ok runs the CLI and fails the test on a non-zero exit.
func (a *testAPI) ok(args ...string) string {
	a.t.Helper()
	code, out, errs := a.kctl(args...)
	if code != 0 {
		a.t.Fatalf("kctl %s = %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// okJSON runs the CLI with -o json and decodes its output into v.
func (a *testAPI) okJSON(v any, args ...string) {
	a.t.Helper()
	out := a.ok(append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		a.t.Fatalf("kctl %s: output is not JSON: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (a *testAPI) login() {
	a.t.Helper()
	out := a.ok("login", "--api", a.srv.URL, "--token", a.token, "--ca", a.ca)
	if !strings.Contains(out, "tenant dev") || !strings.Contains(out, a.config) {
		a.t.Fatalf("login said %q", out)
	}
}

func TestEndpointLifecycle(t *testing.T) {
	a := newTestAPI(t)
	a.login()
	st, err := os.Stat(a.config)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("config %v mode %v", err, st.Mode())
	}
	var cfg config
	b, _ := os.ReadFile(a.config)
	if err := json.Unmarshal(b, &cfg); err != nil || cfg.APIURL != a.srv.URL || cfg.Token != a.token || cfg.CAFile != a.ca {
		t.Fatalf("config %s", b)
	}

	// Table output of create shows the key once and warns on stderr.
	code, out, errs := a.kctl("endpoints", "create", "--name", "web", "--upstream", "127.0.0.1:8081", "--upstream", "127.0.0.1:8082")
	if code != 0 || !strings.Contains(out, "Access key:") || !strings.Contains(out, "127.0.0.1:8082") ||
		!strings.Contains(errs, "shown only once") {
		t.Fatalf("create = %d\n%s\n%s", code, out, errs)
	}
	var ep apitype.Endpoint
	a.okJSON(&ep, "endpoints", "create", "--name", "api", "--type", "https", "--upstream", "127.0.0.1:9000,127.0.0.1:9001", "--sticky", "--sticky-ttl", "1h", "--rps", "5")
	if len(ep.AccessKey) < 43 || !strings.Contains(ep.URL, ep.AccessKey) || len(ep.Instances) != 2 ||
		!ep.Sticky.Enabled || ep.Sticky.TTLSeconds != 3600 || ep.RateLimit.Burst != 5 {
		t.Fatalf("create -o json: %+v", ep)
	}

	out = a.ok("endpoints", "list")
	if !strings.Contains(out, "ID") || !strings.Contains(out, ep.ID) || !strings.Contains(out, "/relay/<access-key>/") ||
		strings.Contains(out, ep.AccessKey) {
		t.Errorf("list:\n%s", out)
	}
	var l apitype.EndpointList
	a.okJSON(&l, "endpoints", "list")
	if len(l.Endpoints) != 2 || strings.Contains(a.ok("endpoints", "list", "-o", "json"), ep.AccessKey) {
		t.Errorf("list -o json: %+v", l)
	}
	out = a.ok("endpoints", "show", ep.ID)
	if !strings.Contains(out, "on (ttl 1h0m0s)") || !strings.Contains(out, "5/s, burst 5") || strings.Contains(out, ep.AccessKey) {
		t.Errorf("show:\n%s", out)
	}

	var up apitype.Endpoint
	a.okJSON(&up, "endpoints", "update", ep.ID, "--allow", "10.0.0.0/8", "--deny", "10.6.0.0/16", "--sticky=false", "--balance", "round_robin")
	if up.Firewall.Allow[0] != "10.0.0.0/8" || up.Firewall.Deny[0] != "10.6.0.0/16" || up.Sticky.Enabled ||
		up.Sticky.TTLSeconds != 3600 || up.Balance != "round_robin" || up.RateLimit.RPS != 5 || len(up.Instances) != 2 {
		t.Fatalf("update: %+v", up)
	}
	a.okJSON(&up, "endpoints", "update", ep.ID, "--clear-firewall", "--deny", "192.0.2.0/24")
	if len(up.Firewall.Allow) != 0 || len(up.Firewall.Deny) != 1 || up.Firewall.Deny[0] != "192.0.2.0/24" {
		t.Fatalf("update --clear-firewall: %+v", up.Firewall)
	}
	a.okJSON(&up, "endpoints", "update", ep.ID, "--upstream", "127.0.0.1:9001")
	if len(up.Instances) != 1 || up.Instances[0].ID != ep.Instances[1].ID {
		t.Fatalf("update --upstream: %+v", up.Instances)
	}

	var rot apitype.Endpoint
	a.okJSON(&rot, "endpoints", "rotate-key", ep.ID, "--grace", "1h")
	if rot.AccessKey == "" || rot.AccessKey == ep.AccessKey || len(rot.Keys) != 2 || rot.Keys[0].ExpiresAt == nil {
		t.Fatalf("rotate-key: %+v", rot)
	}
	if d := rot.Keys[0].ExpiresAt.Sub(rot.UpdatedAt); d < 59*time.Minute || d > 61*time.Minute {
		t.Errorf("grace %v, want 1h", d)
	}

	var in apitype.Instance
	a.okJSON(&in, "instances", "add", ep.ID, "127.0.0.1:9100")
	var il apitype.InstanceList
	a.okJSON(&il, "instances", "list", ep.ID)
	if len(il.Instances) != 2 || il.Instances[1].ID != in.ID {
		t.Fatalf("instances: %+v", il)
	}
	if out := a.ok("instances", "list", ep.ID); !strings.Contains(out, "INSTANCE") || !strings.Contains(out, "127.0.0.1:9100") {
		t.Errorf("instances list:\n%s", out)
	}
	a.ok("instances", "remove", ep.ID, in.ID)
	code, _, errs = a.kctl("instances", "remove", ep.ID, in.ID)
	if want := "kctl: instance " + in.ID + " not found on endpoint " + ep.ID + " (HTTP 404)\n"; code != 1 || errs != want {
		t.Errorf("remove twice = %d %q, want %q", code, errs, want)
	}

	if out := a.ok("endpoints", "delete", ep.ID); !strings.Contains(out, "Deleted endpoint "+ep.ID) {
		t.Errorf("delete said %q", out)
	}
	code, out, errs = a.kctl("endpoints", "show", ep.ID)
	if want := "kctl: endpoint " + ep.ID + " not found (HTTP 404)\n"; code != 1 || out != "" || errs != want {
		t.Errorf("show deleted = %d %q %q", code, out, errs)
	}
}

func TestAPIErrors(t *testing.T) {
	a := newTestAPI(t)
	a.login()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"endpoints", "create", "--name", "x", "--type", "bogus"}, `kctl: type: must be "https", "tcp" or "ip" (got "bogus") (HTTP 400)`},
		{[]string{"endpoints", "create", "--name", "x", "--deny", "300.1.2.3/8"}, `kctl: firewall.deny[0]: invalid CIDR "300.1.2.3/8"`},
		{[]string{"endpoints", "create", "--name", "x", "--upstream", "nope"}, `kctl: upstreams[0]: invalid address "nope": want host:port (HTTP 400)`},
		{[]string{"endpoints", "create", "--name", "x", "--type", "tcp", "--tls-mode", "mtls"}, `kctl: tls.client_ca_pem: required when tls.mode is "mtls"`},
		{[]string{"endpoints", "update", "ep_0000000000000000", "--rps", "1"}, "kctl: endpoint ep_0000000000000000 not found (HTTP 404)"},
		{[]string{"whoami", "--token", "wrong"}, "kctl: invalid or revoked token (HTTP 401)"},
	} {
		code, _, errs := a.kctl(c.args...)
		if code != 1 || !strings.HasPrefix(errs, c.want) {
			t.Errorf("kctl %s = %d %q, want 1 %q", strings.Join(c.args, " "), code, errs, c.want)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	a := newTestAPI(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "kctl: no command given"},
		{[]string{"frobnicate"}, `kctl: unknown command "frobnicate"`},
		{[]string{"endpoints"}, "kctl: endpoints: missing subcommand"},
		{[]string{"endpoints", "show"}, "kctl: usage: kctl endpoints show ID"},
		{[]string{"endpoints", "list", "-o", "yaml"}, "kctl: -o yaml: want table or json"},
		{[]string{"endpoints", "create"}, "kctl: endpoints create: --name is required"},
		{[]string{"endpoints", "create", "--name", "x", "--bogus"}, "kctl: endpoints create: flag provided but not defined: -bogus"},
		{[]string{"endpoints", "update", "ep_1"}, "kctl: endpoints update: nothing to change"},
		{[]string{"endpoints", "rotate-key", "ep_1", "--grace", "soon"}, `kctl: endpoints rotate-key: invalid value "soon" for flag -grace`},
		{[]string{"login"}, "kctl: login needs --api and --token"},
	} {
		code, _, errs := a.kctl(c.args...)
		if code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("kctl %s = %d %q, want 2 %q", strings.Join(c.args, " "), code, errs, c.want)
		}
	}
	code, _, errs := a.kctl("endpoints", "list")
	if code != 1 || !strings.Contains(errs, "not logged in") {
		t.Errorf("without login = %d %q", code, errs)
	}
	if code, out, _ := a.kctl("help"); code != 0 || !strings.Contains(out, "endpoints rotate-key ID") {
		t.Errorf("help = %d %q", code, out)
	}
	if code, out, _ := a.kctl("version"); code != 0 || !strings.HasPrefix(out, "kctl ") {
		t.Errorf("version = %d %q", code, out)
	}
}

func TestLoginDevJSON(t *testing.T) {
	a := newTestAPI(t)
	state := t.TempDir()
	ca, _ := os.ReadFile(a.ca)
	os.WriteFile(filepath.Join(state, "ca.pem"), ca, 0o600)
	dev, _ := json.Marshal(map[string]string{"api_url": a.srv.URL, "token": a.token, "ca_file": "ca.pem", "relay_url": "https://x/relay/k/"})
	devPath := filepath.Join(state, "dev.json")
	os.WriteFile(devPath, dev, 0o600)

	a.ok("login", "--dev-json", devPath)
	var w apitype.Whoami
	a.okJSON(&w, "whoami")
	if w.TenantID != "dev" || !w.Admin || w.TenantName != "Dev tenant" {
		t.Errorf("whoami %+v", w)
	}
	var cfg config
	b, _ := os.ReadFile(a.config)
	json.Unmarshal(b, &cfg)
	if cfg.CAFile != filepath.Join(state, "ca.pem") {
		t.Errorf("ca_file %q not resolved against dev.json's directory", cfg.CAFile)
	}
	// A failed check saves nothing.
	os.Remove(a.config)
	if code, _, errs := a.kctl("login", "--api", a.srv.URL, "--token", "wrong", "--ca", a.ca); code != 1 ||
		!strings.Contains(errs, "login check failed, nothing saved: invalid or revoked token (HTTP 401)") {
		t.Errorf("bad login = %d %q", code, errs)
	}
	if _, err := os.Stat(a.config); err == nil {
		t.Error("a failed login saved the config")
	}
}

func TestEnvironment(t *testing.T) {
	a := newTestAPI(t)
	t.Setenv("KCTL_API", a.srv.URL)
	t.Setenv("KCTL_TOKEN", a.token)
	t.Setenv("KCTL_CA", a.ca)
	var w apitype.Whoami
	a.okJSON(&w, "whoami")
	if w.TenantID != "dev" {
		t.Errorf("whoami %+v", w)
	}
	// A flag beats the environment, before or after the command.
	for _, args := range [][]string{{"--token", "wrong", "whoami"}, {"whoami", "--token", "wrong"}} {
		if code, _, errs := a.kctl(args...); code != 1 || !strings.Contains(errs, "(HTTP 401)") {
			t.Errorf("kctl %v = %d %q", args, code, errs)
		}
	}
	t.Setenv("KCTL_CA", "")
	if code, _, errs := a.kctl("whoami"); code != 1 || !strings.Contains(errs, "certificate") {
		t.Errorf("without the CA = %d %q", code, errs)
	}
}

func testCA(t *testing.T) string {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "customer ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "client-ca.pem")
	os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	return p
}

func TestTCPEndpoint(t *testing.T) {
	a := newTestAPI(t)
	a.login()
	ca := testCA(t)
	var ep apitype.Endpoint
	a.okJSON(&ep, "endpoints", "create", "--name", "db", "--type", "tcp", "--upstream", "127.0.0.1:5432",
		"--tls-mode", "mtls", "--client-ca", ca, "--proxy-protocol")
	if ep.Address != "z1.r1.portal.localhost:42000" || ep.Port != 42000 || ep.TLS.Mode != "mtls" || !ep.ProxyProtocol || ep.AccessKey != "" {
		t.Fatalf("tcp create %+v", ep)
	}
	out := a.ok("endpoints", "update", ep.ID, "--tls-mode", "tls", "--proxy-protocol=false")
	if !strings.Contains(out, "tls (client CA set)") || !strings.Contains(out, "z1.r1.portal.localhost:42000") {
		t.Errorf("update:\n%s", out)
	}
	var ep2 apitype.Endpoint
	a.okJSON(&ep2, "endpoints", "create", "--name", "db2", "--type", "tcp", "--upstream", "127.0.0.1:5432")
	if ep2.Port == ep.Port {
		t.Errorf("two tcp endpoints share port %d", ep.Port)
	}
	if out := a.ok("endpoints", "list"); !strings.Contains(out, "z1.r1.portal.localhost:42001") {
		t.Errorf("list:\n%s", out)
	}
}

func TestAdminCommands(t *testing.T) {
	a := newTestAPI(t)
	a.login()
	var tn apitype.Tenant
	a.okJSON(&tn, "tenants", "create", "--id", "acme", "--name", "Acme Corp")
	if tn.ID != "acme" {
		t.Fatalf("tenant %+v", tn)
	}
	if out := a.ok("tenants", "list"); !strings.Contains(out, "Acme Corp") || !strings.Contains(out, "dev") {
		t.Errorf("tenants list:\n%s", out)
	}
	var tok apitype.Token
	a.okJSON(&tok, "tokens", "create", "acme", "--name", "ci")
	if tok.Token == "" || tok.TenantID != "acme" || tok.Admin {
		t.Fatalf("token %+v", tok)
	}
	// The new tenant's token works and is not admin.
	if code, _, errs := a.kctl("tenants", "list", "--token", tok.Token); code != 1 || !strings.Contains(errs, "(HTTP 403)") {
		t.Errorf("tenant token on admin route = %d %q", code, errs)
	}
	a.ok("tokens", "delete", tok.ID)
	if code, _, errs := a.kctl("whoami", "--token", tok.Token); code != 1 || !strings.Contains(errs, "(HTTP 401)") {
		t.Errorf("deleted token = %d %q", code, errs)
	}
}
