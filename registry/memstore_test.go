package registry_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/kinesis-network/portal/registry"
	"github.com/kinesis-network/portal/registry/storetest"
)

func TestMemoryContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, o registry.Options) registry.Store { return registry.NewMemory(o) })
}

func TestSecrets(t *testing.T) {
	a, b := registry.NewSecret(), registry.NewSecret()
	if len(a) < 43 || a == b {
		t.Fatalf("weak secrets %q %q", a, b)
	}
	if !registry.HashEqual(registry.HashSecret(a), registry.HashSecret(a)) || registry.HashEqual(registry.HashSecret(a), registry.HashSecret(b)) {
		t.Fatal("hash compare broken")
	}
}

func TestFileContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, o registry.Options) registry.Store {
		s, err := registry.OpenFile(filepath.Join(t.TempDir(), "registry.json"), o)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestFileSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "registry.json")
	opts := registry.Options{PortMin: 40000, PortMax: 40001}
	s, err := registry.OpenFile(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTenant(ctx, registry.Tenant{ID: "t1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateToken(ctx, registry.APIToken{ID: "tok", TenantID: "t1", Hash: registry.HashSecret("x")}); err != nil {
		t.Fatal(err)
	}
	a, err := s.CreateEndpoint(ctx, &registry.Endpoint{TenantID: "t1", Name: "a", Type: registry.TCP, Zone: "z"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.CreateEndpoint(ctx, &registry.Endpoint{TenantID: "t1", Name: "b", Type: registry.TCP, Zone: "z"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteEndpoint(ctx, "t1", b.ID); err != nil {
		t.Fatal(err)
	}
	snap1, _ := s.Snapshot(ctx)
	s.Close()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v %v", fi, err)
	}

	r, err := registry.OpenFile(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.TokenByHash(ctx, registry.HashSecret("x")); err != nil {
		t.Fatalf("token lost: %v", err)
	}
	got, err := r.GetEndpoint(ctx, "t1", a.ID)
	if err != nil || got.Port != a.Port {
		t.Fatalf("endpoint lost: %+v %v", got, err)
	}
	snap2, _ := r.Snapshot(ctx)
	if snap2.Seq != snap1.Seq || len(snap2.Endpoints) != 1 {
		t.Fatalf("snapshot after restart: seq %d (was %d), %d endpoints", snap2.Seq, snap1.Seq, len(snap2.Endpoints))
	}
	// a's port stays taken and b's freed port stays quarantined across the restart.
	if _, err := r.CreateEndpoint(ctx, &registry.Endpoint{TenantID: "t1", Name: "c", Type: registry.TCP, Zone: "z"}); !errors.Is(err, registry.ErrNoPorts) {
		t.Fatalf("port allocation after restart: %v", err)
	}
	if _, _, err := r.Watch(ctx, 0); !errors.Is(err, registry.ErrResync) {
		t.Fatalf("watch from before the restart: %v", err)
	}
	os.WriteFile(path, []byte("{not json"), 0o600)
	if _, err := registry.OpenFile(path, opts); err == nil {
		t.Fatal("corrupt state file accepted")
	}
}
