package disk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/kinesis-network/portal/stream/storage"
)

// A metadata file, named fileName(key), holds "KPM1", a u32 CRC32C of the rest, the uvarint length
// of the key, the key and the value. Keeping the key inside makes hashed (long) names reversible.
var metaMagic = [4]byte{'K', 'P', 'M', '1'}

// metaStore keeps every metadata key and value in memory, loaded at Open, and on disk. Values are
// small (stream and consumer definitions), so reads never touch the disk.
type metaStore struct {
	dir    string
	mu     sync.RWMutex
	values map[string][]byte // guarded by mu
	// writes serialises writers of one key (striped), so that the file and the map agree.
	writes [16]sync.Mutex
}

func (m *metaStore) load(dir string) error {
	m.dir = dir
	m.values = map[string][]byte{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		path := filepath.Join(dir, e.Name())
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			if err := os.Remove(path); err != nil {
				return err
			}
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		key, value, err := decodeMeta(b)
		if err == nil && fileName(key) != e.Name() {
			err = fmt.Errorf("%w: key %q does not match the file name", errCorrupt, key)
		}
		if err != nil {
			return fmt.Errorf("metadata file %s: %w", path, err)
		}
		m.values[key] = value
	}
	return nil
}

func encodeMeta(key string, value []byte) []byte {
	b := make([]byte, 8, 8+binary.MaxVarintLen64+len(key)+len(value))
	copy(b, metaMagic[:])
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	b = append(b, value...)
	binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(b[8:], castagnoli))
	return b
}

func decodeMeta(b []byte) (string, []byte, error) {
	if len(b) < 8 || !bytes.Equal(b[:4], metaMagic[:]) {
		return "", nil, fmt.Errorf("%w: bad metadata header", errCorrupt)
	}
	if binary.LittleEndian.Uint32(b[4:]) != crc32.Checksum(b[8:], castagnoli) {
		return "", nil, fmt.Errorf("%w: metadata checksum mismatch", errCorrupt)
	}
	key, value, err := lengthPrefixed(b[8:])
	if err != nil {
		return "", nil, err
	}
	return string(key), append([]byte{}, value...), nil
}

func (m *metaStore) stripe(key string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(key))
	return &m.writes[h.Sum32()%uint32(len(m.writes))]
}

// PutMeta implements storage.Backend. The value is on stable storage when it returns.
func (b *Backend) PutMeta(key string, value []byte) error {
	if b.closedFlag.Load() {
		return fmt.Errorf("disk: put meta %q: %w", key, storage.ErrClosed)
	}
	m := &b.meta
	w := m.stripe(key)
	w.Lock()
	defer w.Unlock()
	if err := writeFileAtomic(m.dir, fileName(key), encodeMeta(key, value)); err != nil {
		return fmt.Errorf("disk: put meta %q: %w", key, err)
	}
	v := append([]byte{}, value...)
	m.mu.Lock()
	m.values[key] = v
	m.mu.Unlock()
	return nil
}

// GetMeta implements storage.Backend. It reads from memory.
func (b *Backend) GetMeta(key string) ([]byte, error) {
	if b.closedFlag.Load() {
		return nil, fmt.Errorf("disk: get meta %q: %w", key, storage.ErrClosed)
	}
	m := &b.meta
	m.mu.RLock()
	v, ok := m.values[key]
	m.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("disk: get meta %q: %w", key, storage.ErrNotFound)
	}
	return append([]byte{}, v...), nil
}

// DeleteMeta implements storage.Backend. The removal is on stable storage when it returns.
func (b *Backend) DeleteMeta(key string) error {
	if b.closedFlag.Load() {
		return fmt.Errorf("disk: delete meta %q: %w", key, storage.ErrClosed)
	}
	m := &b.meta
	w := m.stripe(key)
	w.Lock()
	defer w.Unlock()
	err := os.Remove(filepath.Join(m.dir, fileName(key)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil {
		err = syncDir(m.dir)
	}
	if err != nil {
		return fmt.Errorf("disk: delete meta %q: %w", key, err)
	}
	m.mu.Lock()
	delete(m.values, key)
	m.mu.Unlock()
	return nil
}

// ListMeta implements storage.Backend. It reads from memory.
func (b *Backend) ListMeta(prefix string) ([]string, error) {
	if b.closedFlag.Load() {
		return nil, fmt.Errorf("disk: list meta %q: %w", prefix, storage.ErrClosed)
	}
	m := &b.meta
	m.mu.RLock()
	var out []string
	for k := range m.values {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	m.mu.RUnlock()
	sort.Strings(out)
	return out, nil
}
