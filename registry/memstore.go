package registry

import (
	"context"
	"fmt"
	"sort"
	"sync"
)

// Memory is the embedded, in-memory Store. It keeps everything in the process.
type Memory struct {
	opts Options
	path string // file-backed when set (OpenFile)

	mu        sync.Mutex
	closed    bool
	tenants   map[string]Tenant
	tokens    map[string]APIToken // by id
	endpoints map[string]*Endpoint
	nodes     map[string]Node
	ports     map[string]map[int]bool       // zone -> port -> in use
	freed     map[string]map[int]portFreeAt // zone -> port -> quarantine end
	seq       uint64
	feed      []Change      // last FeedHistory changes, oldest first
	wake      chan struct{} // closed and replaced on every change
}

type portFreeAt struct{ until int64 }

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory(opts Options) *Memory {
	return &Memory{
		opts:      opts.withDefaults(),
		tenants:   map[string]Tenant{},
		tokens:    map[string]APIToken{},
		endpoints: map[string]*Endpoint{},
		nodes:     map[string]Node{},
		ports:     map[string]map[int]bool{},
		freed:     map[string]map[int]portFreeAt{},
		wake:      make(chan struct{}),
	}
}

func (m *Memory) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return fmt.Errorf("%w: closed", ErrUnavailable)
	}
	return nil
}

// CreateTenant implements Store.
func (m *Memory) CreateTenant(ctx context.Context, t Tenant) error {
	if err := m.lock(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if _, ok := m.tenants[t.ID]; ok {
		return fmt.Errorf("%w: tenant %q exists", ErrConflict, t.ID)
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = m.opts.Now().UTC()
	}
	m.tenants[t.ID] = t
	return m.persist()
}

// GetTenant implements Store.
func (m *Memory) GetTenant(ctx context.Context, id string) (Tenant, error) {
	if err := m.lock(ctx); err != nil {
		return Tenant{}, err
	}
	defer m.mu.Unlock()
	t, ok := m.tenants[id]
	if !ok {
		return Tenant{}, ErrNotFound
	}
	return t, nil
}

// ListTenants implements Store.
func (m *Memory) ListTenants(ctx context.Context) ([]Tenant, error) {
	if err := m.lock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	out := make([]Tenant, 0, len(m.tenants))
	for _, t := range m.tenants {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// CreateToken implements Store.
func (m *Memory) CreateToken(ctx context.Context, t APIToken) error {
	if err := m.lock(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if _, ok := m.tokens[t.ID]; ok {
		return fmt.Errorf("%w: token %q exists", ErrConflict, t.ID)
	}
	for _, o := range m.tokens {
		if o.Hash == t.Hash {
			return fmt.Errorf("%w: token hash exists", ErrConflict)
		}
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = m.opts.Now().UTC()
	}
	m.tokens[t.ID] = t
	return m.persist()
}

// TokenByHash implements Store.
func (m *Memory) TokenByHash(ctx context.Context, hash string) (APIToken, error) {
	if err := m.lock(ctx); err != nil {
		return APIToken{}, err
	}
	defer m.mu.Unlock()
	var found APIToken
	ok := false
	for _, t := range m.tokens { // constant-time compare of every candidate
		if HashEqual(t.Hash, hash) {
			found, ok = t, true
		}
	}
	if !ok {
		return APIToken{}, ErrNotFound
	}
	return found, nil
}

// DeleteToken implements Store.
func (m *Memory) DeleteToken(ctx context.Context, id string) error {
	if err := m.lock(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if _, ok := m.tokens[id]; !ok {
		return ErrNotFound
	}
	delete(m.tokens, id)
	return m.persist()
}

// allocPort picks the lowest free, unquarantined port of zone. Called with mu held.
func (m *Memory) allocPort(zone string) (int, error) {
	used := m.ports[zone]
	if used == nil {
		used = map[int]bool{}
		m.ports[zone] = used
	}
	now := m.opts.Now().UnixNano()
	freed := m.freed[zone]
	for p := m.opts.PortMin; p <= m.opts.PortMax; p++ {
		if used[p] {
			continue
		}
		if f, ok := freed[p]; ok {
			if now < f.until {
				continue
			}
			delete(freed, p)
		}
		used[p] = true
		return p, nil
	}
	return 0, ErrNoPorts
}

// CreateEndpoint implements Store.
func (m *Memory) CreateEndpoint(ctx context.Context, e *Endpoint) (*Endpoint, error) {
	if err := m.lock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	e = e.Clone()
	if e.ID == "" {
		e.ID = NewID("ep")
	}
	if _, ok := m.endpoints[e.ID]; ok {
		return nil, fmt.Errorf("%w: endpoint %q exists", ErrConflict, e.ID)
	}
	for _, o := range m.endpoints {
		if o.TenantID == e.TenantID && e.Name != "" && o.Name == e.Name {
			return nil, fmt.Errorf("%w: an endpoint named %q exists", ErrConflict, e.Name)
		}
	}
	if e.Type == TCP || e.Type == IP {
		if e.Port == 0 {
			p, err := m.allocPort(e.Zone)
			if err != nil {
				return nil, err
			}
			e.Port = p
		} else {
			if m.ports[e.Zone] == nil {
				m.ports[e.Zone] = map[int]bool{}
			}
			if m.ports[e.Zone][e.Port] {
				return nil, fmt.Errorf("%w: port %d is taken", ErrConflict, e.Port)
			}
			m.ports[e.Zone][e.Port] = true
		}
	}
	now := m.opts.Now().UTC()
	e.Version, e.CreatedAt, e.UpdatedAt = 1, now, now
	m.endpoints[e.ID] = e
	m.publish(Put, e)
	if err := m.persist(); err != nil {
		return nil, err
	}
	return e.Clone(), nil
}

func (m *Memory) get(tenantID, id string) (*Endpoint, error) {
	e, ok := m.endpoints[id]
	if !ok || (tenantID != "" && e.TenantID != tenantID) {
		return nil, ErrNotFound
	}
	return e, nil
}

// GetEndpoint implements Store.
func (m *Memory) GetEndpoint(ctx context.Context, tenantID, id string) (*Endpoint, error) {
	if err := m.lock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	e, err := m.get(tenantID, id)
	if err != nil {
		return nil, err
	}
	return e.Clone(), nil
}

// ListEndpoints implements Store.
func (m *Memory) ListEndpoints(ctx context.Context, tenantID string) ([]*Endpoint, error) {
	if err := m.lock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	out := []*Endpoint{}
	for _, e := range m.endpoints {
		if tenantID == "" || e.TenantID == tenantID {
			out = append(out, e.Clone())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// UpdateEndpoint implements Store.
func (m *Memory) UpdateEndpoint(ctx context.Context, tenantID, id string, fn func(*Endpoint) error) (*Endpoint, error) {
	if err := m.lock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	cur, err := m.get(tenantID, id)
	if err != nil {
		return nil, err
	}
	next := cur.Clone()
	if err := fn(next); err != nil {
		return nil, err
	}
	next.ID, next.TenantID, next.Type, next.Zone, next.Port = cur.ID, cur.TenantID, cur.Type, cur.Zone, cur.Port
	next.CreatedAt = cur.CreatedAt
	next.Version = cur.Version + 1
	next.UpdatedAt = m.opts.Now().UTC()
	if next.Name != cur.Name && next.Name != "" {
		for _, o := range m.endpoints {
			if o.ID != id && o.TenantID == cur.TenantID && o.Name == next.Name {
				return nil, fmt.Errorf("%w: an endpoint named %q exists", ErrConflict, next.Name)
			}
		}
	}
	m.endpoints[id] = next
	m.publish(Put, next)
	if err := m.persist(); err != nil {
		return nil, err
	}
	return next.Clone(), nil
}

// DeleteEndpoint implements Store.
func (m *Memory) DeleteEndpoint(ctx context.Context, tenantID, id string) error {
	if err := m.lock(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	e, err := m.get(tenantID, id)
	if err != nil {
		return err
	}
	delete(m.endpoints, id)
	if e.Port != 0 {
		delete(m.ports[e.Zone], e.Port)
		if m.freed[e.Zone] == nil {
			m.freed[e.Zone] = map[int]portFreeAt{}
		}
		m.freed[e.Zone][e.Port] = portFreeAt{until: m.opts.Now().Add(m.opts.PortQuarantine).UnixNano()}
	}
	m.publish(Delete, e)
	return m.persist()
}

// PutNode implements Store.
func (m *Memory) PutNode(ctx context.Context, n Node) error {
	if err := m.lock(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	n.PublicIPs = append([]string(nil), n.PublicIPs...)
	m.nodes[n.ID] = n
	return m.persist()
}

// ListNodes implements Store.
func (m *Memory) ListNodes(ctx context.Context) ([]Node, error) {
	if err := m.lock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	out := make([]Node, 0, len(m.nodes))
	for _, n := range m.nodes {
		n.PublicIPs = append([]string(nil), n.PublicIPs...)
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// publish appends a change to the feed and wakes watchers. Called with mu held.
func (m *Memory) publish(kind ChangeKind, e *Endpoint) {
	m.seq++
	m.feed = append(m.feed, Change{Seq: m.seq, Kind: kind, Endpoint: e.Clone()})
	if over := len(m.feed) - m.opts.FeedHistory; over > 0 {
		m.feed = append([]Change(nil), m.feed[over:]...)
	}
	close(m.wake)
	m.wake = make(chan struct{})
}

// Snapshot implements Store.
func (m *Memory) Snapshot(ctx context.Context) (Snapshot, error) {
	if err := m.lock(ctx); err != nil {
		return Snapshot{}, err
	}
	defer m.mu.Unlock()
	s := Snapshot{Seq: m.seq}
	for _, e := range m.endpoints {
		s.Endpoints = append(s.Endpoints, e.Clone())
	}
	sort.Slice(s.Endpoints, func(i, j int) bool { return s.Endpoints[i].ID < s.Endpoints[j].ID })
	return s, nil
}

// changesAfter returns the retained changes with Seq > after and a channel closed on the next change.
func (m *Memory) changesAfter(after uint64) ([]Change, <-chan struct{}, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, nil, fmt.Errorf("%w: closed", ErrUnavailable)
	}
	if after > m.seq {
		return nil, m.wake, nil
	}
	if len(m.feed) > 0 && after+1 < m.feed[0].Seq || len(m.feed) == 0 && after < m.seq {
		return nil, nil, ErrResync
	}
	i := sort.Search(len(m.feed), func(i int) bool { return m.feed[i].Seq > after })
	out := make([]Change, 0, len(m.feed)-i)
	for _, c := range m.feed[i:] {
		c.Endpoint = c.Endpoint.Clone()
		out = append(out, c)
	}
	return out, m.wake, nil
}

// Watch implements Store.
func (m *Memory) Watch(ctx context.Context, after uint64) (<-chan Change, func() error, error) {
	if _, _, err := m.changesAfter(after); err != nil {
		return nil, nil, err
	}
	ch := make(chan Change, 64)
	var (
		errMu sync.Mutex
		werr  error
	)
	go func() {
		defer close(ch)
		for {
			batch, wake, err := m.changesAfter(after)
			if err != nil {
				errMu.Lock()
				werr = err
				errMu.Unlock()
				return
			}
			for _, c := range batch {
				select {
				case ch <- c:
					after = c.Seq
				case <-ctx.Done():
					return
				}
			}
			select {
			case <-wake:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, func() error { errMu.Lock(); defer errMu.Unlock(); return werr }, nil
}

// Close implements Store. Watchers end.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.closed {
		m.closed = true
		close(m.wake)
	}
	return nil
}
