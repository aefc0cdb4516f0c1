package storage

import (
	"sort"
	"strings"
	"sync"
	"time"
)

// Memory is an in-memory Backend: nothing survives the process. Useful for tests and for a throwaway
// stream service.
type Memory struct {
	mu     sync.Mutex
	logs   map[string]*memLog
	meta   map[string][]byte
	closed bool
}

var _ Backend = (*Memory)(nil)
var _ Log = (*memLog)(nil)

// NewMemory returns an empty in-memory backend.
func NewMemory() *Memory {
	return &Memory{logs: map[string]*memLog{}, meta: map[string][]byte{}}
}

// OpenLog implements Backend.
func (m *Memory) OpenLog(streamKey, shardID string) (Log, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	k := streamKey + "\x00" + shardID
	l, ok := m.logs[k]
	if !ok {
		l = &memLog{}
		m.logs[k] = l
	}
	return l, nil
}

// DeleteStream implements Backend.
func (m *Memory) DeleteStream(streamKey string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, l := range m.logs {
		if strings.HasPrefix(k, streamKey+"\x00") {
			l.Close()
			delete(m.logs, k)
		}
	}
	return nil
}

// PutMeta implements Backend.
func (m *Memory) PutMeta(key string, value []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.meta[key] = append([]byte(nil), value...)
	return nil
}

// GetMeta implements Backend.
func (m *Memory) GetMeta(key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.meta[key]
	if !ok {
		return nil, ErrNotFound
	}
	return append([]byte(nil), v...), nil
}

// DeleteMeta implements Backend.
func (m *Memory) DeleteMeta(key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.meta, key)
	return nil
}

// ListMeta implements Backend.
func (m *Memory) ListMeta(prefix string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k := range m.meta {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Close implements Backend.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	for _, l := range m.logs {
		l.Close()
	}
	return nil
}

type memLog struct {
	mu     sync.RWMutex
	base   uint64 // index of recs[0]
	recs   []Record
	closed bool
}

func (l *memLog) Append(recs []Record) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	first := l.base + uint64(len(l.recs))
	for i, r := range recs {
		r.Index = first + uint64(i)
		r.Data = append([]byte(nil), r.Data...)
		l.recs = append(l.recs, r)
	}
	return first, nil
}

func (l *memLog) Read(from uint64, maxRecords, maxBytes int) ([]Record, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return nil, ErrClosed
	}
	if from < l.base {
		from = l.base
	}
	var out []Record
	size := 0
	for i := from - l.base; i < uint64(len(l.recs)) && len(out) < maxRecords; i++ {
		r := l.recs[i]
		if len(out) > 0 && size+r.Size() > maxBytes {
			break
		}
		size += r.Size()
		out = append(out, r)
	}
	return out, nil
}

func (l *memLog) SeekTime(t time.Time) (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	i := sort.Search(len(l.recs), func(i int) bool { return !l.recs[i].Arrival.Before(t) })
	return l.base + uint64(i), nil
}

func (l *memLog) First() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.base
}

func (l *memLog) Next() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.base + uint64(len(l.recs))
}

func (l *memLog) Trim(t time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := sort.Search(len(l.recs), func(i int) bool { return !l.recs[i].Arrival.Before(t) })
	l.base += uint64(i)
	l.recs = append([]Record(nil), l.recs[i:]...)
	return nil
}

func (l *memLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	return nil
}
