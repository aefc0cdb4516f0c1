package l4

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kinesis-network/portal/firewall"
	"github.com/kinesis-network/portal/gateway/balance"
)

// TLSMode says how an endpoint treats TLS. The zero value "" is ModePlain.
type TLSMode string

// TLS modes, spelled as the control API spells them.
const (
	// ModePlain forwards bytes as they come; the workload handles any TLS itself.
	ModePlain TLSMode = "plain"
	// ModeTLS terminates TLS with EndpointConfig.Certificate and forwards the plaintext.
	ModeTLS TLSMode = "tls"
	// ModeTLSPlain accepts both on one port: a first byte of 0x16 (a TLS handshake record) means TLS,
	// anything else — or silence for SniffTimeout, so server-speaks-first protocols work — plain.
	ModeTLSPlain TLSMode = "tls+plain"
	// ModeMTLS terminates TLS and requires a client certificate that verifies against
	// EndpointConfig.ClientCAs; the verified subject is logged and, with ProxyProtocol, sent to the
	// backend in the PROXY v2 SSL TLV.
	ModeMTLS TLSMode = "mtls"
	// ModePassthrough does not terminate TLS: it reads the ClientHello only to log its SNI and then
	// forwards every byte, the ClientHello included, untouched.
	ModePassthrough TLSMode = "passthrough"
)

// ParseTLSMode maps the control API's spelling to a TLSMode; "" is ModePlain.
func ParseTLSMode(s string) (TLSMode, error) {
	switch m := TLSMode(s); m {
	case "", ModePlain:
		return ModePlain, nil
	case ModeTLS, ModeTLSPlain, ModeMTLS, ModePassthrough:
		return m, nil
	}
	return "", fmt.Errorf("l4: unknown TLS mode %q (want plain, tls, tls+plain, mtls or passthrough)", s)
}

// terminates reports whether the portal runs the TLS handshake in mode m (always or maybe).
func (m TLSMode) terminates() bool { return m == ModeTLS || m == ModeTLSPlain || m == ModeMTLS }

// EndpointConfig is the per-endpoint configuration of a TCP listener. Set copies it; the caller
// may reuse the struct afterwards. Every connection uses the configuration current when it was
// accepted for its whole life.
type EndpointConfig struct {
	// ID names the endpoint: the key for Set and Remove, the "endpoint" metric label and log field.
	// Required.
	ID string
	// Firewall is checked right after accept, before any byte is read, on the client's address and
	// the local address it connected to (which matters for listeners on several local addresses).
	// nil allows everything.
	Firewall *firewall.Policy
	// TLSMode selects TLS handling; "" is ModePlain.
	TLSMode TLSMode
	// Certificate returns the server certificate for ModeTLS, ModeTLSPlain and ModeMTLS (typically
	// certmagic's GetCertificate). Required in those modes.
	Certificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// ClientCAs verifies client certificates in ModeMTLS. Required in that mode, ignored otherwise.
	ClientCAs *x509.CertPool
	// ProxyProtocol makes the engine send a PROXY protocol v2 header to the instance before any
	// client byte: client and local addresses and, when it terminated TLS, an SSL TLV (version,
	// cipher and, in ModeMTLS, the client certificate's CN). false sends nothing.
	ProxyProtocol bool
	// Pool holds the instances. Each connection picks one by the pool's policy (P2C least
	// connections by default). nil or empty: every connection is closed with reason no_instance.
	Pool *balance.Pool
	// SourceAffinity picks by rendezvous hashing of the client IP instead, so a client keeps
	// landing on the same instance while it lives. false uses the pool's policy.
	SourceAffinity bool
	// MaxConns caps the endpoint's concurrent connections; 0 means unlimited.
	MaxConns int
	// MaxConnsPerIP caps concurrent connections from one client IP; 0 means unlimited.
	MaxConnsPerIP int
	// ConnectTimeout bounds each dial to an instance; 0 means DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// IdleTimeout closes a connection when no byte moved in either direction for this long; 0 means
	// DefaultIdleTimeout, negative disables it. A periodic sweep enforces it, so a connection is
	// closed between IdleTimeout and IdleTimeout plus half of it (at most two seconds more).
	IdleTimeout time.Duration
}

// Defaults for zero-valued fields.
const (
	DefaultConnectTimeout      = 5 * time.Second
	DefaultIdleTimeout         = 5 * time.Minute
	DefaultDrainPeriod         = 30 * time.Second
	DefaultTLSHandshakeTimeout = 10 * time.Second
	DefaultSniffTimeout        = time.Second
	DefaultConnectRetries      = 2
)

// DenyAction says how a refused connection is closed.
type DenyAction uint8

const (
	// DenyClose closes the socket normally (FIN); the zero value.
	DenyClose DenyAction = iota
	// DenyReset aborts it with a TCP RST (SO_LINGER 0), which costs the server no TIME_WAIT state.
	DenyReset
)

// Options configure a Server. The zero value is usable.
type Options struct {
	// Logger receives one access-log record per connection ("tcp connection") and operational
	// messages. nil discards them.
	Logger *slog.Logger
	// Registerer registers the Server's metrics (namespace "portal", subsystem "tcp"); they are
	// unregistered by Close. nil registers nothing.
	Registerer prometheus.Registerer
	// DrainPeriod is how long Remove lets existing connections of a removed endpoint run before
	// closing them; 0 means DefaultDrainPeriod, negative closes them at once.
	DrainPeriod time.Duration
	// DenyAction says how connections refused by the firewall or a connection limit are closed;
	// the zero value is DenyClose.
	DenyAction DenyAction
	// TLSHandshakeTimeout bounds a TLS handshake and, in ModePassthrough, reading the ClientHello;
	// 0 means DefaultTLSHandshakeTimeout.
	TLSHandshakeTimeout time.Duration
	// SniffTimeout is how long ModeTLSPlain waits for the client's first byte before treating the
	// connection as plain (for protocols where the server speaks first); 0 means
	// DefaultSniffTimeout.
	SniffTimeout time.Duration
	// EjectBase and EjectMax bound the ejection back-off of an instance whose dial failed (doubling
	// from EjectBase up to EjectMax); 0 means balance.DefaultEjectBase and balance.DefaultEjectMax.
	EjectBase, EjectMax time.Duration
	// ConnectRetries is how many other instances are tried after a failed dial before the client is
	// closed; 0 means DefaultConnectRetries, negative means none.
	ConnectRetries int
}

// config is a validated EndpointConfig with defaults applied and its TLS config built once.
type config struct {
	EndpointConfig
	tls *tls.Config
}

func newConfig(c *EndpointConfig) (*config, error) {
	if c == nil {
		return nil, fmt.Errorf("l4: nil endpoint config")
	}
	if c.ID == "" {
		return nil, fmt.Errorf("l4: endpoint config: ID is required")
	}
	cfg := &config{EndpointConfig: *c}
	mode, err := ParseTLSMode(string(c.TLSMode))
	if err != nil {
		return nil, fmt.Errorf("l4: endpoint %s: TLSMode: %w", c.ID, err)
	}
	cfg.TLSMode = mode
	if c.MaxConns < 0 || c.MaxConnsPerIP < 0 {
		return nil, fmt.Errorf("l4: endpoint %s: MaxConns and MaxConnsPerIP must not be negative", c.ID)
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if mode.terminates() {
		if c.Certificate == nil {
			return nil, fmt.Errorf("l4: endpoint %s: TLSMode %q needs Certificate", c.ID, mode)
		}
		cfg.tls = &tls.Config{GetCertificate: c.Certificate, MinVersion: tls.VersionTLS12}
		if mode == ModeMTLS {
			if c.ClientCAs == nil {
				return nil, fmt.Errorf("l4: endpoint %s: TLSMode mtls needs ClientCAs", c.ID)
			}
			cfg.tls.ClientAuth = tls.RequireAndVerifyClientCert
			cfg.tls.ClientCAs = c.ClientCAs
		}
	}
	return cfg, nil
}
