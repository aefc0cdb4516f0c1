// Package client is a Go client for the portal's control API (/v1): kctl, the end-to-end tests and other
// tools use it. Requests and responses are the apitype wire types; an error answer of the API becomes an
// *Error with its status, code and message.
//
// A Client is safe for concurrent use. It never logs, and it keeps the token only to send it.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/kinesis-network/portal/api/apitype"
)

// DefaultTimeout bounds one API call when the caller's context has no deadline.
const DefaultTimeout = 30 * time.Second

// Client calls one portal's control API with one token.
type Client struct {
	base  string // "https://host:port", no trailing slash
	token string
	hc    *http.Client
	// UserAgent is sent with every request. Default "portal-api-client".
	UserAgent string
}

// New returns a client for the API at baseURL (e.g. "https://127.0.0.1:8444") authenticating with
// token. caFile, when not empty, names a PEM file of CA certificates the server's certificate must
// chain to (the dev CA); empty uses the system roots.
func New(baseURL, token, caFile string) (*Client, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("client: read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client: CA file %s holds no PEM certificate", caFile)
		}
		tlsCfg.RootCAs = pool
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	return NewWithHTTPClient(baseURL, token, &http.Client{Transport: tr, Timeout: DefaultTimeout})
}

// NewWithHTTPClient is New with a caller-built HTTP client (for example httptest.Server.Client()).
func NewWithHTTPClient(baseURL, token string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("client: API URL %q: want https://host:port", baseURL)
	}
	if hc == nil {
		hc = &http.Client{Timeout: DefaultTimeout}
	}
	return &Client{base: strings.TrimRight(u.String(), "/"), token: token, hc: hc, UserAgent: "portal-api-client"}, nil
}

// BaseURL returns the API URL the client calls.
func (c *Client) BaseURL() string { return c.base }

// Error is an error answer of the API.
type Error struct {
	// StatusCode is the HTTP status, e.g. 404.
	StatusCode int
	// Code is the API's error code, e.g. "not_found" (see apitype.Code*).
	Code string
	// Field names the offending request field, when the API named one.
	Field string
	// Message is the API's message.
	Message string
}

// Error returns "<message> (HTTP <status>)".
func (e *Error) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.Message, e.StatusCode) }

// IsNotFound reports whether err is an API answer 404.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.StatusCode == http.StatusNotFound
}

// do sends one request with a JSON body (nil: none) and decodes a 2xx answer into out (nil: discard).
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("client: encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("client: %s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return apiError(resp.StatusCode, data)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("client: %s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// apiError builds an *Error from an error answer, JSON or not.
func apiError(status int, data []byte) error {
	var eb apitype.ErrorBody
	if err := json.Unmarshal(data, &eb); err == nil && eb.Error.Message != "" {
		return &Error{StatusCode: status, Code: eb.Error.Code, Field: eb.Error.Field, Message: eb.Error.Message}
	}
	msg := http.StatusText(status)
	if s := strings.TrimSpace(string(data)); s != "" {
		if len(s) > 200 {
			s = s[:200] + "..."
		}
		msg += ": " + s
	}
	return &Error{StatusCode: status, Message: msg}
}

func esc(s string) string { return url.PathEscape(s) }

// Health calls GET /healthz (no token needed).
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/healthz", nil, nil)
}

// Whoami returns the caller's tenant and token.
func (c *Client) Whoami(ctx context.Context) (*apitype.Whoami, error) {
	var out apitype.Whoami
	if err := c.do(ctx, http.MethodGet, "/v1/whoami", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateEndpoint creates an endpoint. For an HTTPS endpoint the answer holds AccessKey and URL: the
// only time the key is shown.
func (c *Client) CreateEndpoint(ctx context.Context, spec apitype.EndpointSpec) (*apitype.Endpoint, error) {
	var out apitype.Endpoint
	if err := c.do(ctx, http.MethodPost, "/v1/endpoints", spec, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListEndpoints returns the tenant's endpoints, sorted by id.
func (c *Client) ListEndpoints(ctx context.Context) ([]apitype.Endpoint, error) {
	var out apitype.EndpointList
	if err := c.do(ctx, http.MethodGet, "/v1/endpoints", nil, &out); err != nil {
		return nil, err
	}
	return out.Endpoints, nil
}

// GetEndpoint returns one endpoint.
func (c *Client) GetEndpoint(ctx context.Context, id string) (*apitype.Endpoint, error) {
	var out apitype.Endpoint
	if err := c.do(ctx, http.MethodGet, "/v1/endpoints/"+esc(id), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateEndpoint changes the fields that patch sets and returns the updated endpoint.
func (c *Client) UpdateEndpoint(ctx context.Context, id string, patch apitype.EndpointPatch) (*apitype.Endpoint, error) {
	return c.PatchEndpoint(ctx, id, patch)
}

// PatchEndpoint sends any JSON merge patch (a map, json.RawMessage or struct) and returns the updated
// endpoint. Use it to send null, which EndpointPatch cannot express.
func (c *Client) PatchEndpoint(ctx context.Context, id string, patch any) (*apitype.Endpoint, error) {
	var out apitype.Endpoint
	if err := c.do(ctx, http.MethodPatch, "/v1/endpoints/"+esc(id), patch, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteEndpoint deletes an endpoint.
func (c *Client) DeleteEndpoint(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/v1/endpoints/"+esc(id), nil, nil)
}

// RotateKey issues a new access key for an HTTPS endpoint; the old keys keep working for grace
// (rounded down to whole seconds; zero: they stop at once). The answer holds the new AccessKey and URL.
func (c *Client) RotateKey(ctx context.Context, id string, grace time.Duration) (*apitype.Endpoint, error) {
	var out apitype.Endpoint
	req := apitype.RotateKeyRequest{GraceSeconds: int64(grace / time.Second)}
	if err := c.do(ctx, http.MethodPost, "/v1/endpoints/"+esc(id)+"/rotate-key", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListInstances returns an endpoint's instances.
func (c *Client) ListInstances(ctx context.Context, id string) ([]apitype.Instance, error) {
	var out apitype.InstanceList
	if err := c.do(ctx, http.MethodGet, "/v1/endpoints/"+esc(id)+"/instances", nil, &out); err != nil {
		return nil, err
	}
	return out.Instances, nil
}

// AddInstance adds an upstream host:port to an endpoint.
func (c *Client) AddInstance(ctx context.Context, id, addr string) (*apitype.Instance, error) {
	var out apitype.Instance
	if err := c.do(ctx, http.MethodPost, "/v1/endpoints/"+esc(id)+"/instances", apitype.AddInstanceRequest{Addr: addr}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RemoveInstance removes an instance from an endpoint.
func (c *Client) RemoveInstance(ctx context.Context, id, instanceID string) error {
	return c.do(ctx, http.MethodDelete, "/v1/endpoints/"+esc(id)+"/instances/"+esc(instanceID), nil, nil)
}

// CreateTenant creates a tenant (admin). An empty id lets the API pick one.
func (c *Client) CreateTenant(ctx context.Context, id, name string) (*apitype.Tenant, error) {
	var out apitype.Tenant
	if err := c.do(ctx, http.MethodPost, "/v1/tenants", apitype.CreateTenantRequest{ID: id, Name: name}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListTenants returns every tenant (admin).
func (c *Client) ListTenants(ctx context.Context) ([]apitype.Tenant, error) {
	var out apitype.TenantList
	if err := c.do(ctx, http.MethodGet, "/v1/tenants", nil, &out); err != nil {
		return nil, err
	}
	return out.Tenants, nil
}

// CreateToken issues an API token for a tenant (admin). The answer's Token field is the secret, shown
// only this once.
func (c *Client) CreateToken(ctx context.Context, tenantID, name string, admin bool) (*apitype.Token, error) {
	var out apitype.Token
	req := apitype.CreateTokenRequest{Name: name, Admin: admin}
	if err := c.do(ctx, http.MethodPost, "/v1/tenants/"+esc(tenantID)+"/tokens", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteToken revokes an API token (admin).
func (c *Client) DeleteToken(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/v1/tokens/"+esc(id), nil, nil)
}
