package httprelay

import (
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// ServerOptions configure the relay's HTTPS server. Zero values take the documented defaults.
type ServerOptions struct {
	// GetCertificate supplies the server certificate by SNI. Required.
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// ReadHeaderTimeout cuts off clients that do not finish their request headers (slow loris). Zero: 10 s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes idle keep-alive connections. Zero: 120 s.
	IdleTimeout time.Duration
	// MaxHeaderBytes limits request header size. Zero: 64 KiB.
	MaxHeaderBytes int
	// Logger receives server errors (TLS handshake failures and such). Nil: slog.Default().
	Logger *slog.Logger
	// Metrics' ActiveConns tracks open connections. Nil: none.
	Metrics *Metrics
}

// NewServer returns an http.Server serving h over TLS with HTTP/2 and HTTP/1.1, with timeouts against
// slow clients. Serve it with srv.ServeTLS(ln, "", "") or on a tls.Listener.
func NewServer(h http.Handler, o ServerOptions) *http.Server {
	if o.ReadHeaderTimeout == 0 {
		o.ReadHeaderTimeout = 10 * time.Second
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 120 * time.Second
	}
	if o.MaxHeaderBytes == 0 {
		o.MaxHeaderBytes = 64 << 10
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    o.MaxHeaderBytes,
		TLSConfig: &tls.Config{
			GetCertificate: o.GetCertificate,
			MinVersion:     tls.VersionTLS12,
			NextProtos:     []string{"h2", "http/1.1"},
		},
		ErrorLog: slog.NewLogLogger(o.Logger.Handler(), slog.LevelDebug),
	}
	if m := o.Metrics; m != nil {
		srv.ConnState = func(_ net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				m.ActiveConns.Inc()
			case http.StateClosed, http.StateHijacked:
				m.ActiveConns.Dec()
			}
		}
	}
	return srv
}
