// Package apitype holds the JSON wire types of the portal's control API (/v1). The server (package api),
// the Go client (package api/client) and kctl share them, so a field is spelled in one place only.
//
// apitype imports nothing of this project: a client can use it without pulling in the server.
//
// Secrecy: AccessKey, URL (which embeds the access key) and Token.Token are filled only in the one
// response that creates the secret (endpoint create, rotate-key, token create). Every other response
// leaves them empty; an HTTPS endpoint carries URLTemplate instead of URL.
package apitype

import "time"

// Endpoint types, as the API spells them.
const (
	TypeHTTPS = "https"
	TypeTCP   = "tcp"
	TypeIP    = "ip"
)

// TLS modes of TCP and IP endpoints.
const (
	TLSPlain       = "plain"
	TLSTerminate   = "tls"
	TLSOrPlain     = "tls+plain"
	TLSMutual      = "mtls"
	TLSPassthrough = "passthrough"
)

// KeyPlaceholder stands for the access key in Endpoint.URLTemplate.
const KeyPlaceholder = "<access-key>"

// Sticky configures sticky sessions. For HTTPS endpoints it is a signed cookie naming the instance;
// TCP and IP endpoints may use it as source-IP affinity.
type Sticky struct {
	// Enabled turns sticky sessions on. Default false.
	Enabled bool `json:"enabled"`
	// TTLSeconds is the cookie lifetime in seconds. Zero: the gateway default (one hour).
	TTLSeconds int `json:"ttl_seconds,omitempty"`
}

// Firewall lists allowed and denied CIDRs (IPv4 and IPv6). A deny match wins; an empty allow list allows
// every source that is not denied. DestAllow and DestDeny (destination addresses) are for IP endpoints.
type Firewall struct {
	Allow     []string `json:"allow"`
	Deny      []string `json:"deny"`
	DestAllow []string `json:"dest_allow,omitempty"`
	DestDeny  []string `json:"dest_deny,omitempty"`
}

// RateLimit is a token bucket per access key (HTTPS endpoints).
type RateLimit struct {
	// RPS is the sustained rate in requests per second. Zero: unlimited.
	RPS float64 `json:"rps"`
	// Burst is the bucket size. Zero or omitted with RPS > 0: max(1, ceil(RPS)).
	Burst int `json:"burst"`
}

// TLS configures TLS of a TCP or IP endpoint. HTTPS endpoints always use TLS and have no TLS object.
type TLS struct {
	// Mode is one of "plain" (the default), "tls", "tls+plain", "mtls", "passthrough".
	Mode string `json:"mode"`
	// ClientCAPEM is the PEM bundle client certificates must chain to. Required for "mtls"; kept (not
	// used) in the other modes so that mTLS can be toggled off and on again.
	ClientCAPEM string `json:"client_ca_pem,omitempty"`
}

// Limits caps concurrent connections of a TCP or IP endpoint; zero means unlimited.
type Limits struct {
	// MaxConns caps the endpoint's concurrent connections.
	MaxConns int `json:"max_conns"`
	// MaxConnsPerIP caps concurrent connections from one client IP.
	MaxConnsPerIP int `json:"max_conns_per_ip"`
}

// EndpointSpec is the body of POST /v1/endpoints: the settings a customer chooses. PATCH takes any
// subset of the same fields (a JSON merge patch).
type EndpointSpec struct {
	// Name is unique per tenant: 1–63 characters of a-z, 0-9 and '-', starting and ending with a letter
	// or digit.
	Name string `json:"name"`
	// Type is "https", "tcp" or "ip". Cannot be changed.
	Type string `json:"type"`
	// Zone and Region place the endpoint. Empty: the portal's own. Cannot be changed.
	Zone   string `json:"zone,omitempty"`
	Region string `json:"region,omitempty"`
	// Upstreams are the host:port addresses of the instances. In PATCH the list replaces the
	// instances (an instance whose address stays keeps its id).
	Upstreams []string `json:"upstreams"`
	// Sticky turns sticky sessions on.
	Sticky Sticky `json:"sticky"`
	// Firewall filters clients by source (and, for IP endpoints, destination) address.
	Firewall Firewall `json:"firewall"`
	// RateLimit limits requests per access key.
	RateLimit RateLimit `json:"rate_limit"`
	// Balance is "p2c" (the default: power of two choices on in-flight work) or "round_robin".
	Balance string `json:"balance,omitempty"`
	// TLS is for TCP and IP endpoints only.
	TLS *TLS `json:"tls,omitempty"`
	// ProxyProtocol sends a PROXY protocol v2 header to the backend (TCP and IP endpoints only).
	ProxyProtocol bool `json:"proxy_protocol,omitempty"`
	// Limits caps concurrent connections (TCP and IP endpoints only).
	Limits *Limits `json:"limits,omitempty"`
}

// Instance is one backing instance of an endpoint.
type Instance struct {
	ID        string    `json:"id"`
	Addr      string    `json:"addr"`
	NodeID    string    `json:"node_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// KeyInfo describes one access key of an HTTPS endpoint without revealing it or its hash.
type KeyInfo struct {
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is set on a key that a rotation with grace retired; nil: the key does not expire.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Active reports whether the key worked when the response was made.
	Active bool `json:"active"`
}

// Endpoint is an endpoint as the API returns it.
type Endpoint struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Type   string `json:"type"`
	Zone   string `json:"zone"`
	Region string `json:"region"`

	// AccessKey is the HTTPS endpoint's new access key. Set only in the responses of create and
	// rotate-key; it is never shown again.
	AccessKey string `json:"access_key,omitempty"`
	// URL is the relay URL with the access key in it. Set only where AccessKey is.
	URL string `json:"url,omitempty"`
	// URLTemplate is the relay URL with KeyPlaceholder where the key goes (HTTPS endpoints, every
	// response).
	URLTemplate string `json:"url_template,omitempty"`
	// Address is "host:port" of a TCP or IP endpoint.
	Address string `json:"address,omitempty"`
	// Port is the allocated port of a TCP or IP endpoint.
	Port int `json:"port,omitempty"`

	Upstreams     []string   `json:"upstreams"`
	Instances     []Instance `json:"instances"`
	Sticky        Sticky     `json:"sticky"`
	Firewall      Firewall   `json:"firewall"`
	RateLimit     RateLimit  `json:"rate_limit"`
	Balance       string     `json:"balance"`
	TLS           *TLS       `json:"tls,omitempty"`
	ProxyProtocol bool       `json:"proxy_protocol"`
	Limits        *Limits    `json:"limits,omitempty"`
	// Keys lists the HTTPS endpoint's access keys (more than one during a rotation grace period).
	Keys      []KeyInfo `json:"keys,omitempty"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// EndpointList is the body of GET /v1/endpoints.
type EndpointList struct {
	Endpoints []Endpoint `json:"endpoints"`
}

// InstanceList is the body of GET /v1/endpoints/{id}/instances.
type InstanceList struct {
	Instances []Instance `json:"instances"`
}

// AddInstanceRequest is the body of POST /v1/endpoints/{id}/instances.
type AddInstanceRequest struct {
	Addr string `json:"addr"`
}

// RotateKeyRequest is the body of POST /v1/endpoints/{id}/rotate-key.
type RotateKeyRequest struct {
	// GraceSeconds keeps the old keys working this many seconds. Zero: they stop at once.
	GraceSeconds int64 `json:"grace_seconds,omitempty"`
}

// Tenant is a customer account.
type Tenant struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// TenantList is the body of GET /v1/tenants.
type TenantList struct {
	Tenants []Tenant `json:"tenants"`
}

// CreateTenantRequest is the body of POST /v1/tenants.
type CreateTenantRequest struct {
	// ID is optional: empty picks a random "tn_..." id.
	ID   string `json:"id,omitempty"`
	Name string `json:"name"`
}

// CreateTokenRequest is the body of POST /v1/tenants/{id}/tokens.
type CreateTokenRequest struct {
	Name string `json:"name"`
	// Admin lets the token call the admin routes.
	Admin bool `json:"admin,omitempty"`
}

// Token describes an API token. Token (the secret) is set only in the response that creates it.
type Token struct {
	ID        string    `json:"id"`
	TenantID  string    `json:"tenant_id"`
	Name      string    `json:"name"`
	Admin     bool      `json:"admin"`
	CreatedAt time.Time `json:"created_at"`
	Token     string    `json:"token,omitempty"`
}

// Whoami is the body of GET /v1/whoami.
type Whoami struct {
	TenantID   string `json:"tenant_id"`
	TenantName string `json:"tenant_name,omitempty"`
	TokenID    string `json:"token_id"`
	TokenName  string `json:"token_name,omitempty"`
	Admin      bool   `json:"admin"`
}

// Error codes of ErrorDetail.Code.
const (
	CodeInvalidJSON      = "invalid_json"           // 400: the body is not the JSON expected
	CodeInvalidArgument  = "invalid_argument"       // 400: a field has a bad value; Field names it
	CodeUnauthenticated  = "unauthenticated"        // 401
	CodeForbidden        = "forbidden"              // 403
	CodeNotFound         = "not_found"              // 404
	CodeMethodNotAllowed = "method_not_allowed"     // 405
	CodeConflict         = "conflict"               // 409
	CodeTooLarge         = "request_too_large"      // 413
	CodeMediaType        = "unsupported_media_type" // 415
	CodeInternal         = "internal"               // 500
	CodeUnavailable      = "unavailable"            // 503: the registry cannot be reached
	CodeNoFreePort       = "no_free_port"           // 503: the zone's TCP port range is exhausted
)

// ErrorDetail describes what went wrong.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Field names the offending request field ("firewall.deny[0]"), when there is one.
	Field string `json:"field,omitempty"`
}

// ErrorBody is the body of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// EndpointPatch is a typed PATCH body for clients: nil fields are left out of the JSON and so left
// unchanged. Nested objects merge the same way (only set fields change).
type EndpointPatch struct {
	Name          *string         `json:"name,omitempty"`
	Upstreams     *[]string       `json:"upstreams,omitempty"`
	Sticky        *StickyPatch    `json:"sticky,omitempty"`
	Firewall      *FirewallPatch  `json:"firewall,omitempty"`
	RateLimit     *RateLimitPatch `json:"rate_limit,omitempty"`
	Balance       *string         `json:"balance,omitempty"`
	TLS           *TLSPatch       `json:"tls,omitempty"`
	ProxyProtocol *bool           `json:"proxy_protocol,omitempty"`
	Limits        *LimitsPatch    `json:"limits,omitempty"`
}

// LimitsPatch is the connection-limits part of an EndpointPatch.
type LimitsPatch struct {
	MaxConns      *int `json:"max_conns,omitempty"`
	MaxConnsPerIP *int `json:"max_conns_per_ip,omitempty"`
}

// StickyPatch is the sticky part of an EndpointPatch.
type StickyPatch struct {
	Enabled    *bool `json:"enabled,omitempty"`
	TTLSeconds *int  `json:"ttl_seconds,omitempty"`
}

// FirewallPatch is the firewall part of an EndpointPatch. A non-nil empty list clears that list.
type FirewallPatch struct {
	Allow     *[]string `json:"allow,omitempty"`
	Deny      *[]string `json:"deny,omitempty"`
	DestAllow *[]string `json:"dest_allow,omitempty"`
	DestDeny  *[]string `json:"dest_deny,omitempty"`
}

// RateLimitPatch is the rate-limit part of an EndpointPatch. Setting RPS without Burst resets Burst to
// its default.
type RateLimitPatch struct {
	RPS   *float64 `json:"rps,omitempty"`
	Burst *int     `json:"burst,omitempty"`
}

// TLSPatch is the TLS part of an EndpointPatch.
type TLSPatch struct {
	Mode        *string `json:"mode,omitempty"`
	ClientCAPEM *string `json:"client_ca_pem,omitempty"`
}
