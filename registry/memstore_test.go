package registry_test

import (
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
