package client_test

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kinesis-network/portal/api"
	"github.com/kinesis-network/portal/api/apitype"
	"github.com/kinesis-network/portal/api/client"
	"github.com/kinesis-network/portal/registry"
)

// start serves the real API over TLS and returns the server, the file of its CA certificate and an
// admin token.
func start(t testing.TB) (*httptest.Server, string, string) {
	store := registry.NewMemory(registry.Options{})
	token, err := api.Bootstrap(context.Background(), store, "dev", "Dev")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(api.New(api.Config{Store: store}))
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv, ca, token
}

func TestClient(t *testing.T) {
	srv, ca, token := start(t)
	defer srv.Close()
	ctx := context.Background()
	c, err := client.New(srv.URL+"/", token, ca)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Health(ctx); err != nil {
		t.Fatal(err)
	}
	ep, err := c.CreateEndpoint(ctx, apitype.EndpointSpec{Name: "web", Type: "https", Upstreams: []string{"127.0.0.1:1"}})
	if err != nil || len(ep.AccessKey) < 43 || ep.URL == "" {
		t.Fatalf("create: %+v %v", ep, err)
	}
	on, ttl := true, 60
	up, err := c.UpdateEndpoint(ctx, ep.ID, apitype.EndpointPatch{Sticky: &apitype.StickyPatch{Enabled: &on, TTLSeconds: &ttl}})
	if err != nil || !up.Sticky.Enabled || up.Sticky.TTLSeconds != 60 || len(up.Instances) != 1 {
		t.Fatalf("update: %+v %v", up, err)
	}
	up, err = c.PatchEndpoint(ctx, ep.ID, map[string]any{"sticky": nil})
	if err != nil || up.Sticky.Enabled {
		t.Fatalf("patch null: %+v %v", up, err)
	}
	in, err := c.AddInstance(ctx, ep.ID, "127.0.0.1:2")
	if err != nil {
		t.Fatal(err)
	}
	ins, err := c.ListInstances(ctx, ep.ID)
	if err != nil || len(ins) != 2 {
		t.Fatalf("instances %+v %v", ins, err)
	}
	if err := c.RemoveInstance(ctx, ep.ID, in.ID); err != nil {
		t.Fatal(err)
	}
	rot, err := c.RotateKey(ctx, ep.ID, 90*time.Second)
	if err != nil || rot.AccessKey == ep.AccessKey || len(rot.Keys) != 2 || rot.Keys[0].ExpiresAt == nil {
		t.Fatalf("rotate %+v %v", rot, err)
	}
	list, err := c.ListEndpoints(ctx)
	if err != nil || len(list) != 1 || list[0].AccessKey != "" {
		t.Fatalf("list %+v %v", list, err)
	}
	tn, err := c.CreateTenant(ctx, "acme", "Acme")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.CreateToken(ctx, tn.ID, "ci", false)
	if err != nil || tok.Token == "" {
		t.Fatalf("token %+v %v", tok, err)
	}
	other, _ := client.New(srv.URL, tok.Token, ca)
	_, err = other.GetEndpoint(ctx, ep.ID)
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Code != "not_found" || !client.IsNotFound(err) ||
		err.Error() != "endpoint "+ep.ID+" not found (HTTP 404)" {
		t.Fatalf("other tenant's endpoint: %v", err)
	}
	if _, err := other.ListTenants(ctx); err == nil || err.Error() != "this route needs an admin token (HTTP 403)" {
		t.Fatalf("non-admin list tenants: %v", err)
	}
	if err := c.DeleteToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Whoami(ctx); !errors.As(err, &apiErr) || apiErr.StatusCode != 401 {
		t.Fatalf("revoked token: %v", err)
	}
	if err := c.DeleteEndpoint(ctx, ep.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateEndpoint(ctx, apitype.EndpointSpec{Name: "x", Type: "bogus"}); !errors.As(err, &apiErr) || apiErr.Field != "type" {
		t.Fatalf("bad type: %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := client.New("ftp://x", "t", ""); err == nil {
		t.Error("ftp URL accepted")
	}
	if _, err := client.New("https://x", "t", filepath.Join(t.TempDir(), "none.pem")); err == nil {
		t.Error("missing CA file accepted")
	}
	bad := filepath.Join(t.TempDir(), "bad.pem")
	os.WriteFile(bad, []byte("not pem"), 0o600)
	if _, err := client.New("https://x", "t", bad); err == nil {
		t.Error("CA file without certificates accepted")
	}
	srv, _, token := start(t)
	defer srv.Close()
	c, _ := client.New(srv.URL, token, "") // system roots do not trust the test server
	if err := c.Health(context.Background()); err == nil {
		t.Error("untrusted server accepted")
	}
}

func ExampleClient_CreateEndpoint() {
	store := registry.NewMemory(registry.Options{})
	token, _ := api.Bootstrap(context.Background(), store, "dev", "Dev")
	srv := httptest.NewTLSServer(api.New(api.Config{Store: store, Zone: "z1", Region: "r1"}))
	defer srv.Close()

	c, _ := client.NewWithHTTPClient(srv.URL, token, srv.Client())
	ep, err := c.CreateEndpoint(context.Background(), apitype.EndpointSpec{
		Name: "web", Type: apitype.TypeHTTPS, Upstreams: []string{"127.0.0.1:8080"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ep.Type, ep.URLTemplate, len(ep.AccessKey))
	// Output: https https://z1.r1.portal.localhost/relay/<access-key>/ 43
}
