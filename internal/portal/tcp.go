package portal

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"strconv"
	"sync"

	"github.com/kinesis-network/portal/gateway/balance"
	"github.com/kinesis-network/portal/gateway/l4"
	"github.com/kinesis-network/portal/gateway/routes"
	"github.com/kinesis-network/portal/registry"
)

// tcpSync opens, reconfigures and closes TCP endpoint listeners as route tables change: a new TCP
// endpoint gets a listener on its allocated port, a changed one has its configuration swapped (new
// connections use it; open ones keep theirs), and a deleted one stops accepting at once and drains.
type tcpSync struct {
	p       *Portal
	srv     *l4.Server
	getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)

	mu   sync.Mutex
	live map[string]*routes.Route // endpoint id -> route applied
}

func newTCPSync(p *Portal, getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tcpSync {
	return &tcpSync{
		p: p, getCert: getCert, live: map[string]*routes.Route{},
		srv: l4.New(l4.Options{Logger: p.cfg.AccessLog, Registerer: p.Registry, DrainPeriod: p.cfg.TCPDrain, DenyAction: denyAction(p.cfg.TCPDenyReset)}),
	}
}

// apply brings the listeners in line with t. Called from the route cache's goroutine, one at a time.
func (s *tcpSync) apply(t *routes.Table) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	for _, r := range t.Routes() {
		e := r.Endpoint
		if e.Type != registry.TCP || e.Zone != s.p.cfg.Zone || e.Port == 0 {
			continue
		}
		seen[e.ID] = true
		if s.live[e.ID] == r {
			continue
		}
		cfg, err := s.endpointConfig(r)
		if err != nil {
			s.p.log.Error("tcp: endpoint configuration rejected", "endpoint", e.ID, "err", err)
			continue
		}
		addr := net.JoinHostPort(s.p.cfg.TCPBindHost, strconv.Itoa(e.Port))
		if _, err := s.srv.Set(addr, cfg); err != nil {
			s.p.log.Error("tcp: cannot serve endpoint", "endpoint", e.ID, "addr", addr, "err", err)
			continue
		}
		s.live[e.ID] = r
	}
	for id := range s.live {
		if !seen[id] {
			s.srv.Remove(id)
			delete(s.live, id)
		}
	}
}

func (s *tcpSync) endpointConfig(r *routes.Route) (*l4.EndpointConfig, error) {
	e := r.Endpoint
	mode, err := l4.ParseTLSMode(e.TLS.Mode)
	if err != nil {
		return nil, err
	}
	cfg := &l4.EndpointConfig{
		ID: e.ID, Firewall: r.Firewall, TLSMode: mode, ProxyProtocol: e.ProxyProtocol, Pool: r.Pool,
		SourceAffinity: r.Pool.Policy() == balance.SourceIP,
		MaxConns:       e.Limits.MaxConns, MaxConnsPerIP: e.Limits.MaxConnsPerIP,
	}
	if mode != l4.ModePlain && mode != l4.ModePassthrough {
		cfg.Certificate = s.getCert
	}
	if mode == l4.ModeMTLS {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(e.TLS.ClientCAPEM)) {
			return nil, errNoClientCA
		}
		cfg.ClientCAs = pool
	}
	return cfg, nil
}

func denyAction(reset bool) l4.DenyAction {
	if reset {
		return l4.DenyReset
	}
	return l4.DenyClose
}

type constErr string

func (e constErr) Error() string { return string(e) }

const errNoClientCA = constErr("portal: mtls endpoint has no parsable client CA")

// addr returns the bound address of a TCP endpoint, or nil.
func (s *tcpSync) addr(id string) net.Addr { return s.srv.Addr(id) }

func (s *tcpSync) close() { s.srv.Close() }
