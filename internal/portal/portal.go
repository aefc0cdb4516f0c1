// Package portal assembles one portal process: the registry store, route cache, HTTPS relay, TCP
// listeners, control API and metrics listener, with graceful shutdown. cmd/portal configures it from
// flags; e2e tests and benchmarks start it in-process and read back the bound addresses.
package portal

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/quic-go/quic-go/http3"

	"github.com/kinesis-network/portal/api"
	"github.com/kinesis-network/portal/certs"
	"github.com/kinesis-network/portal/gateway/httprelay"
	"github.com/kinesis-network/portal/gateway/routes"
	"github.com/kinesis-network/portal/gateway/sticky"
	"github.com/kinesis-network/portal/gateway/trustedproxy"
	"github.com/kinesis-network/portal/registry"
)

// Config configures a portal. Zero values take the documented defaults.
type Config struct {
	// Domain is the portal domain: hosts are <zone>.<region>.portal.<Domain>. Zero: "localhost", which
	// resolves to loopback without DNS set-up (RFC 6761).
	Domain string
	// Region and Zone name this portal's place. Zero: "dev" and "z1".
	Region, Zone string
	// RelayListen is the HTTPS relay's listen address. Zero: 127.0.0.1:8443.
	RelayListen string
	// APIListen is the control API's (HTTPS) listen address. Zero: 127.0.0.1:8444.
	APIListen string
	// MetricsListen is the Prometheus listener (plain HTTP, /metrics). Zero: 127.0.0.1:9464; "off" disables.
	MetricsListen string
	// TCPBindHost is the local address TCP endpoints listen on. Zero: 127.0.0.1.
	TCPBindHost string
	// PublicRelayPort is the port written into relay URLs. Zero: the relay listener's bound port.
	PublicRelayPort int
	// PortMin and PortMax bound TCP endpoint ports when Store is nil. Zero: 20000–20999.
	PortMin, PortMax int
	// StateDir keeps the CA, the sticky secret and logs. Required.
	StateDir string
	// Store is the registry. Nil: RegistryFile's store, or a new in-memory store.
	Store registry.Store
	// RegistryFile keeps the embedded registry in a JSON file across restarts (ignored when Store is
	// set). Zero: in memory only.
	RegistryFile string
	// StickySecret signs sticky cookies; every portal of a fleet must share it. Nil: read from (or
	// created in) StateDir/sticky.key.
	StickySecret []byte
	// CA issues the portal's certificates. Nil: loaded from (or created in) StateDir.
	CA *certs.CA
	// Logger receives operational logs. Nil: slog.Default().
	Logger *slog.Logger
	// AccessLog receives one record per relayed request and per TCP connection. Nil: Logger.
	AccessLog *slog.Logger
	// TrustedProxies lists CIDRs of load balancers in front of the relay listener; connections from
	// them must start with a PROXY v2 header whose source address the firewall and logs then use.
	// Empty: trust nobody (the TCP peer address is the client).
	TrustedProxies []string
	// DisableHTTP3 turns off HTTP/3 (QUIC, UDP) on the relay's port. Zero: HTTP/3 is served and
	// announced with Alt-Svc on HTTP/1.1 and HTTP/2 responses.
	DisableHTTP3 bool
	// ShutdownGrace bounds graceful shutdown. Zero: 10 s.
	ShutdownGrace time.Duration
	// TCPDenyReset closes connections refused by a TCP endpoint's firewall or limits with a TCP RST
	// instead of a normal close (FIN). Zero: normal close.
	TCPDenyReset bool
	// TCPDrain is how long a deleted TCP endpoint's open connections may live. Zero: 30 s.
	TCPDrain time.Duration
}

// Portal is a running portal.
type Portal struct {
	cfg      Config
	log      *slog.Logger
	Store    registry.Store
	CA       *certs.CA
	Routes   *routes.Cache
	Registry *prometheus.Registry

	relayLn, apiLn, metricsLn net.Listener
	relaySrv, apiSrv          *http.Server
	h3Srv                     *http3.Server
	h3Conn                    net.PacketConn
	metricsSrv                *http.Server
	relay                     *httprelay.Handler
	tcp                       *tcpSync

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

func (c *Config) defaults() error {
	if c.StateDir == "" {
		return errors.New("portal: config: state_dir is required")
	}
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.Domain, "localhost")
	def(&c.Region, "dev")
	def(&c.Zone, "z1")
	def(&c.RelayListen, "127.0.0.1:8443")
	def(&c.APIListen, "127.0.0.1:8444")
	def(&c.MetricsListen, "127.0.0.1:9464")
	def(&c.TCPBindHost, "127.0.0.1")
	if c.PortMin == 0 && c.PortMax == 0 {
		c.PortMin, c.PortMax = 20000, 20999
	}
	if c.PortMin <= 0 || c.PortMax > 65535 || c.PortMin > c.PortMax {
		return fmt.Errorf("portal: config: bad TCP port range %d-%d", c.PortMin, c.PortMax)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.AccessLog == nil {
		c.AccessLog = c.Logger
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = 10 * time.Second
	}
	if c.TCPDrain == 0 {
		c.TCPDrain = 30 * time.Second
	}
	return nil
}

// HostFor returns the public host name of a zone in a region.
func (p *Portal) HostFor(zone, region string) string {
	return zone + "." + region + ".portal." + p.cfg.Domain
}

// Host returns this portal's own zone host name.
func (p *Portal) Host() string { return p.HostFor(p.cfg.Zone, p.cfg.Region) }

// RelayURL returns the relay URL of an access key in this portal's zone.
func (p *Portal) RelayURL(key string) string { return p.relayURL(p.cfg.Zone, p.cfg.Region, key) }

func (p *Portal) relayURL(zone, region, key string) string {
	port := p.cfg.PublicRelayPort
	if port == 0 {
		port = p.relayLn.Addr().(*net.TCPAddr).Port
	}
	host := p.HostFor(zone, region)
	if port != 443 {
		host += ":" + strconv.Itoa(port)
	}
	return "https://" + host + httprelay.Prefix + key + "/"
}

// APIURL returns the control API's base URL.
func (p *Portal) APIURL() string {
	return "https://localhost:" + strconv.Itoa(p.apiLn.Addr().(*net.TCPAddr).Port)
}

// RelayAddr returns the relay listener's address.
func (p *Portal) RelayAddr() net.Addr { return p.relayLn.Addr() }

// MetricsAddr returns the metrics listener's address, or nil when disabled.
func (p *Portal) MetricsAddr() net.Addr {
	if p.metricsLn == nil {
		return nil
	}
	return p.metricsLn.Addr()
}

// Config returns the effective configuration.
func (p *Portal) Config() Config { return p.cfg }

func loadOrCreateSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil && len(b) >= 32 {
		return b, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	b = make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return b, os.WriteFile(path, b, 0o600)
}

// Start starts a portal and returns once every listener is bound and the route cache holds its first
// snapshot. Close stops it.
func Start(ctx context.Context, cfg Config) (_ *Portal, err error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("portal: state dir: %w", err)
	}
	p := &Portal{cfg: cfg, log: cfg.Logger, Store: cfg.Store, CA: cfg.CA, Registry: prometheus.NewRegistry()}
	defer func() {
		if err != nil {
			p.Close(context.Background())
		}
	}()
	p.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if p.CA == nil {
		if p.CA, err = certs.LoadOrCreateCA(cfg.StateDir, "Kinesis Portal dev CA"); err != nil {
			return nil, err
		}
	}
	if p.Store == nil {
		ropts := registry.Options{PortMin: cfg.PortMin, PortMax: cfg.PortMax}
		if cfg.RegistryFile != "" {
			if p.Store, err = registry.OpenFile(cfg.RegistryFile, ropts); err != nil {
				return nil, fmt.Errorf("portal: %w", err)
			}
		} else {
			p.Store = registry.NewMemory(ropts)
		}
	}
	secret := cfg.StickySecret
	if secret == nil {
		if secret, err = loadOrCreateSecret(filepath.Join(cfg.StateDir, "sticky.key")); err != nil {
			return nil, fmt.Errorf("portal: sticky secret: %w", err)
		}
	}
	codec := sticky.NewCodec(secret)
	runCtx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.Routes = routes.New(p.Store, routes.Options{Logger: p.log, Sticky: codec})

	getCert := p.CA.ServerCertificate(certs.HostUnder("portal."+cfg.Domain, "localhost"), []string{"localhost", "127.0.0.1", "::1"})

	// Relay.
	trusted, err := trustedproxy.Compile(cfg.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("portal: config: trusted_proxies: %w", err)
	}
	if p.relayLn, err = net.Listen("tcp", cfg.RelayListen); err != nil {
		return nil, fmt.Errorf("portal: relay listener: %w", err)
	}
	p.relayLn = trustedproxy.Listener(p.relayLn, trusted, 0)
	relayMetrics := httprelay.NewMetrics(p.Registry)
	p.relay = httprelay.New(httprelay.Options{Routes: p.Routes, Sticky: codec, Logger: cfg.AccessLog, Metrics: relayMetrics})
	var relayHandler http.Handler = p.relay
	if !cfg.DisableHTTP3 {
		// HTTP/3 on the same port number, over UDP.
		if p.h3Conn, err = net.ListenPacket("udp", p.relayLn.Addr().String()); err != nil {
			return nil, fmt.Errorf("portal: relay HTTP/3 listener: %w", err)
		}
		p.h3Srv = &http3.Server{
			Handler:        p.relay,
			TLSConfig:      http3.ConfigureTLSConfig(&tls.Config{GetCertificate: getCert, MinVersion: tls.VersionTLS13}),
			MaxHeaderBytes: 64 << 10,
			IdleTimeout:    120 * time.Second,
			Port:           cfg.PublicRelayPort,
			Logger:         p.log,
		}
		h3 := p.h3Srv
		relayHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h3.SetQUICHeaders(w.Header())
			p.relay.ServeHTTP(w, r)
		})
	}
	p.relaySrv = httprelay.NewServer(relayHandler, httprelay.ServerOptions{GetCertificate: getCert, Logger: p.log, Metrics: relayMetrics})

	// Control API.
	if p.apiLn, err = net.Listen("tcp", cfg.APIListen); err != nil {
		return nil, fmt.Errorf("portal: API listener: %w", err)
	}
	apiHandler := api.New(api.Config{
		Store: p.Store, Logger: p.log, Zone: cfg.Zone, Region: cfg.Region,
		RelayURL: p.relayURL,
		TCPAddress: func(zone, region string, port int) string {
			return net.JoinHostPort(p.HostFor(zone, region), strconv.Itoa(port))
		},
	})
	p.apiSrv = httprelay.NewServer(apiHandler, httprelay.ServerOptions{GetCertificate: getCert, Logger: p.log})

	// Metrics.
	if cfg.MetricsListen != "off" {
		if p.metricsLn, err = net.Listen("tcp", cfg.MetricsListen); err != nil {
			return nil, fmt.Errorf("portal: metrics listener: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(p.Registry, promhttp.HandlerOpts{}))
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
		p.metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	}

	// TCP endpoints.
	p.tcp = newTCPSync(p, getCert)

	p.wg.Add(1)
	go func() { defer p.wg.Done(); p.Routes.Run(runCtx) }()
	select {
	case <-p.Routes.Ready():
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(30 * time.Second):
		return nil, errors.New("portal: route cache did not load a snapshot in 30 s")
	}
	p.Routes.OnSwap(p.tcp.apply)

	serve := func(name string, srv *http.Server, ln net.Listener, tls bool) {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			var err error
			if tls {
				err = srv.ServeTLS(ln, "", "")
			} else {
				err = srv.Serve(ln)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				p.log.Error("portal: server stopped", "server", name, "err", err)
			}
		}()
	}
	serve("relay", p.relaySrv, p.relayLn, true)
	if p.h3Srv != nil {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			if err := p.h3Srv.Serve(p.h3Conn); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				p.log.Error("portal: HTTP/3 server stopped", "err", err)
			}
		}()
	}
	serve("api", p.apiSrv, p.apiLn, true)
	if p.metricsSrv != nil {
		serve("metrics", p.metricsSrv, p.metricsLn, false)
	}
	p.log.Info("portal started", "relay", p.relayLn.Addr().String(), "api", p.apiLn.Addr().String(),
		"metrics", addrString(p.metricsLn), "host", p.Host())
	return p, nil
}

func addrString(ln net.Listener) string {
	if ln == nil {
		return "off"
	}
	return ln.Addr().String()
}

// Close shuts the portal down gracefully: listeners stop accepting, in-flight requests finish within
// the grace period, then everything is closed. It is idempotent.
func (p *Portal) Close(ctx context.Context) error {
	p.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(ctx, p.cfg.ShutdownGrace)
		defer cancel()
		var errs []error
		for _, s := range []*http.Server{p.relaySrv, p.apiSrv, p.metricsSrv} {
			if s != nil {
				if err := s.Shutdown(ctx); err != nil {
					errs = append(errs, err)
					s.Close()
				}
			}
		}
		if p.h3Srv != nil {
			if err := p.h3Srv.Shutdown(ctx); err != nil {
				p.h3Srv.Close()
			}
		}
		if p.h3Conn != nil {
			p.h3Conn.Close()
		}
		for _, ln := range []net.Listener{p.relayLn, p.apiLn, p.metricsLn} {
			if ln != nil {
				ln.Close()
			}
		}
		if p.tcp != nil {
			p.tcp.close()
		}
		if p.relay != nil {
			p.relay.Close()
		}
		if p.cancel != nil {
			p.cancel()
		}
		p.wg.Wait()
		if p.cfg.Store == nil && p.Store != nil {
			p.Store.Close()
		}
		p.closeErr = errors.Join(errs...)
	})
	return p.closeErr
}
