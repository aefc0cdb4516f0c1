package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// fileState is the on-disk form of a file-backed Memory store.
type fileState struct {
	Version   int                      `json:"version"`
	Seq       uint64                   `json:"seq"`
	Tenants   []Tenant                 `json:"tenants"`
	Tokens    []APIToken               `json:"tokens"`
	Endpoints []*Endpoint              `json:"endpoints"`
	Nodes     []Node                   `json:"nodes"`
	Freed     map[string]map[int]int64 `json:"freed_ports"` // zone -> port -> quarantine end (unix nanos)
}

const fileStateVersion = 1

// OpenFile returns an in-memory store that keeps its state in the JSON file at path: loaded now (an
// absent file starts empty) and rewritten atomically (temp file, fsync, rename) after every change, so
// a single portal keeps its tenants, tokens and endpoints across restarts. A failed write returns an
// error wrapping ErrUnavailable; the change stays in memory and the next successful write stores it.
// The change feed starts empty after a restart: watchers from before resync from a Snapshot.
func OpenFile(path string, opts Options) (*Memory, error) {
	m := NewMemory(opts)
	m.path = path
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return m, m.persist()
	}
	if err != nil {
		return nil, fmt.Errorf("registry: read %s: %w", path, err)
	}
	var st fileState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("registry: parse %s: %w", path, err)
	}
	if st.Version != fileStateVersion {
		return nil, fmt.Errorf("registry: %s has format version %d, want %d", path, st.Version, fileStateVersion)
	}
	m.seq = st.Seq
	for _, t := range st.Tenants {
		m.tenants[t.ID] = t
	}
	for _, t := range st.Tokens {
		m.tokens[t.ID] = t
	}
	for _, e := range st.Endpoints {
		m.endpoints[e.ID] = e
		if e.Port != 0 {
			if m.ports[e.Zone] == nil {
				m.ports[e.Zone] = map[int]bool{}
			}
			m.ports[e.Zone][e.Port] = true
		}
	}
	for _, n := range st.Nodes {
		m.nodes[n.ID] = n
	}
	for zone, ports := range st.Freed {
		m.freed[zone] = map[int]portFreeAt{}
		for p, until := range ports {
			m.freed[zone][p] = portFreeAt{until: until}
		}
	}
	return m, nil
}

// persist writes the whole state to m.path. Called with mu held (or before the store is shared).
func (m *Memory) persist() error {
	if m.path == "" {
		return nil
	}
	st := fileState{Version: fileStateVersion, Seq: m.seq, Freed: map[string]map[int]int64{}}
	for _, t := range m.tenants {
		st.Tenants = append(st.Tenants, t)
	}
	for _, t := range m.tokens {
		st.Tokens = append(st.Tokens, t)
	}
	for _, e := range m.endpoints {
		st.Endpoints = append(st.Endpoints, e)
	}
	for _, n := range m.nodes {
		st.Nodes = append(st.Nodes, n)
	}
	for zone, ports := range m.freed {
		st.Freed[zone] = map[int]int64{}
		for p, f := range ports {
			st.Freed[zone][p] = f.until
		}
	}
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("%w: encode state: %w", ErrUnavailable, err)
	}
	if err := writeFileAtomic(m.path, b); err != nil {
		return fmt.Errorf("%w: write %s: %w", ErrUnavailable, m.path, err)
	}
	return nil
}

func writeFileAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
