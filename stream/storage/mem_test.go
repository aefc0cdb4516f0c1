package storage_test

import (
	"testing"

	"github.com/kinesis-network/portal/stream/storage"
	"github.com/kinesis-network/portal/stream/storage/storagetest"
)

func TestMemoryContract(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Backend { return storage.NewMemory() })
}
