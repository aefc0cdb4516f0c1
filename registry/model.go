// Package registry holds the portal fleet's shared state: the model types (tenants, API tokens,
// endpoints with their access keys and instances, nodes), the Store interface every backend implements,
// and the embedded in-memory store. Secrets are stored only as SHA-256 hashes.
//
// registry imports no other package of this project, so every other package may depend on it.
package registry

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"time"
)

// EndpointType is the kind of front door an endpoint is.
type EndpointType string

// Endpoint types (seed 000).
const (
	// HTTPS is an HTTPS relay endpoint: https://<zone>.<region>.portal.<domain>/relay/<key>/...
	HTTPS EndpointType = "https"
	// TCP is a domain:port endpoint on the portal fleet.
	TCP EndpointType = "tcp"
	// IP is a direct IP:port endpoint served by a DC node's agent.
	IP EndpointType = "ip"
)

// Valid reports whether t is a known endpoint type.
func (t EndpointType) Valid() bool { return t == HTTPS || t == TCP || t == IP }

// Tenant is a customer account. Tenants cannot see each other's endpoints.
type Tenant struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// APIToken authorises control-API calls for one tenant. Only the hash of the token is stored.
type APIToken struct {
	ID        string    `json:"id"`
	TenantID  string    `json:"tenant_id"`
	Name      string    `json:"name"`
	Hash      string    `json:"hash"` // hex SHA-256 of the token
	Admin     bool      `json:"admin"`
	CreatedAt time.Time `json:"created_at"`
}

// Sticky configures sticky sessions of an HTTPS endpoint.
type Sticky struct {
	Enabled    bool `json:"enabled"`
	TTLSeconds int  `json:"ttl_seconds,omitempty"` // zero: the gateway default (1 hour)
}

// Firewall lists allowed and denied CIDRs. Deny wins; an empty allow list allows every source not denied.
// The gateway validates and compiles it (package firewall); the registry only stores it.
type Firewall struct {
	Allow     []string `json:"allow"`
	Deny      []string `json:"deny"`
	DestAllow []string `json:"dest_allow,omitempty"`
	DestDeny  []string `json:"dest_deny,omitempty"`
}

// RateLimit is a token bucket per access key. Zero RPS means unlimited.
type RateLimit struct {
	RPS   float64 `json:"rps"`
	Burst int     `json:"burst"`
}

// Limits caps concurrent connections of a TCP (or IP) endpoint. Zero means unlimited.
type Limits struct {
	MaxConns      int `json:"max_conns"`
	MaxConnsPerIP int `json:"max_conns_per_ip"`
}

// TLS configures TLS of a TCP (or IP) endpoint.
type TLS struct {
	// Mode is one of "plain" (also ""), "tls", "tls+plain", "mtls", "passthrough".
	Mode string `json:"mode"`
	// ClientCAPEM holds the PEM CA bundle client certificates must chain to (mode "mtls").
	ClientCAPEM string `json:"client_ca_pem,omitempty"`
}

// AccessKey is one key of an HTTPS endpoint, stored as its hash. During a rotation with grace the old key
// stays with an ExpiresAt; keys with ExpiresAt in the past no longer work.
type AccessKey struct {
	Hash      string     `json:"hash"` // hex SHA-256 of the key
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// ActiveAt reports whether the key works at t.
func (k AccessKey) ActiveAt(t time.Time) bool { return k.ExpiresAt == nil || t.Before(*k.ExpiresAt) }

// Instance is one backing instance of an endpoint. For now an instance is an upstream host:port the
// portal dials directly; tunnelled instances (behind a node agent) set NodeID.
type Instance struct {
	ID        string    `json:"id"`
	Addr      string    `json:"addr"`
	NodeID    string    `json:"node_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Endpoint is a customer's front door with its settings, keys and instances.
type Endpoint struct {
	ID            string       `json:"id"`
	TenantID      string       `json:"tenant_id"`
	Name          string       `json:"name"`
	Type          EndpointType `json:"type"`
	Zone          string       `json:"zone"`
	Region        string       `json:"region"`
	Port          int          `json:"port,omitempty"` // TCP endpoints: the allocated port
	Balance       string       `json:"balance,omitempty"`
	Sticky        Sticky       `json:"sticky"`
	Firewall      Firewall     `json:"firewall"`
	RateLimit     RateLimit    `json:"rate_limit"`
	TLS           TLS          `json:"tls"`
	Limits        Limits       `json:"limits"`
	ProxyProtocol bool         `json:"proxy_protocol"`
	Keys          []AccessKey  `json:"keys,omitempty"`
	Instances     []Instance   `json:"instances"`
	Version       int64        `json:"version"`
	CreatedAt     time.Time    `json:"created_at"`
	UpdatedAt     time.Time    `json:"updated_at"`
}

// Clone returns a deep copy of e.
func (e *Endpoint) Clone() *Endpoint {
	c := *e
	c.Firewall.Allow = append([]string(nil), e.Firewall.Allow...)
	c.Firewall.Deny = append([]string(nil), e.Firewall.Deny...)
	c.Firewall.DestAllow = append([]string(nil), e.Firewall.DestAllow...)
	c.Firewall.DestDeny = append([]string(nil), e.Firewall.DestDeny...)
	c.Keys = make([]AccessKey, len(e.Keys))
	for i, k := range e.Keys {
		c.Keys[i] = k
		if k.ExpiresAt != nil {
			t := *k.ExpiresAt
			c.Keys[i].ExpiresAt = &t
		}
	}
	c.Instances = append([]Instance(nil), e.Instances...)
	return &c
}

// Node is a machine running a node agent.
type Node struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"` // "dc" or "global"
	Zone      string    `json:"zone"`
	Region    string    `json:"region"`
	PublicIPs []string  `json:"public_ips,omitempty"`
	LastSeen  time.Time `json:"last_seen"`
}

// NewSecret returns a URL-safe random secret of 32 bytes (256 bits; 43 characters).
func NewSecret() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("registry: crypto/rand failed: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// HashSecret returns the hex SHA-256 of a secret. Secrets are 256-bit random values, so a fast hash is
// enough: there is nothing to brute-force.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// HashEqual compares two hashes in constant time.
func HashEqual(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// NewID returns a random id with the given prefix, e.g. "ep_3f9c1a2b7d4e5f60".
func NewID(prefix string) string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("registry: crypto/rand failed: %v", err))
	}
	return prefix + "_" + hex.EncodeToString(b[:])
}
