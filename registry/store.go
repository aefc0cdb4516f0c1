package registry

import (
	"context"
	"errors"
	"io/fs"
	"time"
)

// Errors every Store returns; test with errors.Is.
var (
	// ErrNotFound: the object does not exist (or belongs to another tenant). Wraps fs.ErrNotExist.
	ErrNotFound = notFound{}
	// ErrConflict: a unique name or id is taken, or a compare-and-swap lost.
	ErrConflict = errors.New("registry: conflict")
	// ErrNoPorts: the configured port range has no free port.
	ErrNoPorts = errors.New("registry: no free port in the configured range")
	// ErrResync: a Watch fell behind the change feed; the watcher must take a new Snapshot.
	ErrResync = errors.New("registry: change feed overrun, resync needed")
	// ErrUnavailable: the backing store cannot be reached. Wraps the cause.
	ErrUnavailable = errors.New("registry: store unavailable")
)

type notFound struct{}

func (notFound) Error() string        { return "registry: not found" }
func (notFound) Is(target error) bool { return target == fs.ErrNotExist }

// ChangeKind says what happened to an endpoint.
type ChangeKind string

// Change kinds.
const (
	Put    ChangeKind = "put"
	Delete ChangeKind = "delete"
)

// Change is one entry of the change feed. Seq increases by one per change, fleet-wide.
type Change struct {
	Seq      uint64     `json:"seq"`
	Kind     ChangeKind `json:"kind"`
	Endpoint *Endpoint  `json:"endpoint"` // for Delete, the endpoint as it was
}

// Snapshot is every endpoint at one point of the change feed.
type Snapshot struct {
	Seq       uint64
	Endpoints []*Endpoint
}

// Store is the registry's storage contract. Implementations (the in-memory store, Redis) must:
//   - be safe for concurrent use and honour ctx cancellation;
//   - return ErrNotFound (wrapping fs.ErrNotExist) for absent objects, and for endpoints of another
//     tenant when a tenant id is given (tenants cannot tell whether another tenant's object exists);
//   - never return shared mutable state: callers may modify what they get;
//   - publish exactly one Change per successful Create/Update/Delete of an endpoint, in Seq order;
//   - allocate TCP ports atomically: no two live endpoints share a port in a zone, and a freed port is
//     not reused before its quarantine ends;
//   - wrap backend connectivity failures in ErrUnavailable.
//
// Store is not on the request hot path: gateways serve from a route cache built from Snapshot + Watch.
type Store interface {
	// CreateTenant stores a new tenant; ErrConflict when the id exists.
	CreateTenant(ctx context.Context, t Tenant) error
	// GetTenant returns the tenant or ErrNotFound.
	GetTenant(ctx context.Context, id string) (Tenant, error)
	// ListTenants returns every tenant sorted by id.
	ListTenants(ctx context.Context) ([]Tenant, error)

	// CreateToken stores an API token (by hash); ErrConflict when the hash or id exists.
	CreateToken(ctx context.Context, t APIToken) error
	// TokenByHash returns the token whose Hash equals hash, or ErrNotFound.
	TokenByHash(ctx context.Context, hash string) (APIToken, error)
	// DeleteToken removes a token; ErrNotFound when absent.
	DeleteToken(ctx context.Context, id string) error

	// CreateEndpoint stores e, filling ID (when empty), Version=1, CreatedAt and UpdatedAt, and for TCP
	// endpoints with Port 0 allocates a port in e.Zone. It returns the stored endpoint.
	CreateEndpoint(ctx context.Context, e *Endpoint) (*Endpoint, error)
	// GetEndpoint returns the endpoint; tenantID "" means any tenant (operators).
	GetEndpoint(ctx context.Context, tenantID, id string) (*Endpoint, error)
	// ListEndpoints returns the tenant's endpoints sorted by id ("" means all).
	ListEndpoints(ctx context.Context, tenantID string) ([]*Endpoint, error)
	// UpdateEndpoint applies fn to a copy of the current endpoint and stores the result atomically,
	// bumping Version and UpdatedAt. fn's error aborts the update and is returned as is. ID, TenantID,
	// Type, Zone and Port cannot be changed by fn.
	UpdateEndpoint(ctx context.Context, tenantID, id string, fn func(*Endpoint) error) (*Endpoint, error)
	// DeleteEndpoint removes the endpoint and quarantines its port.
	DeleteEndpoint(ctx context.Context, tenantID, id string) error

	// PutNode creates or replaces a node.
	PutNode(ctx context.Context, n Node) error
	// ListNodes returns every node sorted by id.
	ListNodes(ctx context.Context) ([]Node, error)

	// Snapshot returns every endpoint and the Seq of the last change they include.
	Snapshot(ctx context.Context) (Snapshot, error)
	// Watch delivers every change with Seq > after, in order, until ctx ends. It returns ErrResync at
	// once when after is older than the feed's retained history. When the watch ends on its own (the
	// watcher fell behind, the store closed or failed) the channel is closed and the returned function
	// reports why (nil after ctx ended); a watcher then takes a new Snapshot.
	Watch(ctx context.Context, after uint64) (<-chan Change, func() error, error)

	// Close releases the store; it is idempotent.
	Close() error
}

// Options configure a store.
type Options struct {
	// PortMin and PortMax bound TCP port allocation (inclusive). Zero: 20000–29999.
	PortMin, PortMax int
	// PortQuarantine is how long a freed port stays unused. Zero: 10 minutes.
	PortQuarantine time.Duration
	// FeedHistory is how many changes the feed retains for late watchers. Zero: 10,000.
	FeedHistory int
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.PortMin == 0 && o.PortMax == 0 {
		o.PortMin, o.PortMax = 20000, 29999
	}
	if o.PortQuarantine == 0 {
		o.PortQuarantine = 10 * time.Minute
	}
	if o.FeedHistory == 0 {
		o.FeedHistory = 10000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}
