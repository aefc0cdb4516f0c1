package l4

import (
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kinesis-network/portal/gateway/balance"
	"github.com/kinesis-network/portal/gateway/proxyproto"
)

// End reasons recorded in the access log and the connections_closed_total metric.
const (
	ReasonClientClosed  = "client_closed"  // the client finished (or failed) first
	ReasonBackendClosed = "backend_closed" // the instance finished (or failed) first
	ReasonIdleTimeout   = "idle_timeout"   // no byte moved for IdleTimeout
	ReasonDenied        = "denied"         // refused by the firewall
	ReasonLimit         = "limit"          // refused by MaxConns or MaxConnsPerIP
	ReasonNoInstance    = "no_instance"    // no healthy instance, or every dial failed
	ReasonTLSError      = "tls_error"      // TLS handshake (or ClientHello read) failed or timed out
	ReasonDrained       = "drained"        // the endpoint was removed and DrainPeriod ran out
	ReasonShutdown      = "shutdown"       // the Server was closed
)

// conn is one client connection and, once dialled, its instance connection. The connection's
// goroutine (handle) owns both sockets; abort may close them from anywhere.
type conn struct {
	s     *Server
	ep    *endpoint
	cfg   *config
	nc    net.Conn // the accepted socket
	src   netip.AddrPort
	dst   netip.AddrPort
	ip    netip.Addr // src's address, unmapped: the per-IP limit and affinity key
	start time.Time
	idle  time.Duration
	last  atomic.Int64 // coarse clock of the last byte moved; 0 until copying starts

	halves atomic.Int32 // copy goroutines still running; the last one calls end

	mu      sync.Mutex
	backend net.Conn
	reason  string
	err     error
	closed  bool

	// Filled in by the pipeline for the access log.
	inst            *balance.Instance
	tlsMode         string // "tls" when the portal terminated TLS, "passthrough", or ""
	sni, subject    string
	bytesIn, bytout atomic.Int64
}

// setReason records why the connection ends; the first reason wins.
func (c *conn) setReason(reason string, err error) {
	c.mu.Lock()
	if c.reason == "" {
		c.reason, c.err = reason, err
	}
	c.mu.Unlock()
}

// abort records reason and closes both sockets, unblocking whatever the connection goroutines do.
func (c *conn) abort(reason string, err error) {
	c.mu.Lock()
	if c.reason == "" {
		c.reason, c.err = reason, err
	}
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	b := c.backend
	c.mu.Unlock()
	c.nc.Close()
	if b != nil {
		b.Close()
	}
}

// setBackend attaches the instance connection; it reports false (and closes b) when the connection
// was aborted meanwhile.
func (c *conn) setBackend(b net.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		b.Close()
		return false
	}
	c.backend = b
	return true
}

func addrPort(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort()
	case nil:
		return netip.AddrPort{}
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// handle runs the pipeline for one accepted connection. It owns nc and closes it.
func (s *Server) handle(ep *endpoint, nc net.Conn) {
	defer s.wg.Done()
	cfg := ep.cfg.Load()
	c := &conn{s: s, ep: ep, cfg: cfg, nc: nc, src: addrPort(nc.RemoteAddr()), dst: addrPort(nc.LocalAddr()),
		start: time.Now(), idle: cfg.IdleTimeout}
	c.ip = c.src.Addr().Unmap()
	ep.m.accepted.Inc()

	// Firewall first: nothing has been read from the socket.
	if !cfg.Firewall.Allow(c.ip, c.dst.Addr()) {
		ep.m.deniedFirewall.Inc()
		s.refuse(c, ReasonDenied, "firewall")
		return
	}
	switch why := ep.admit(c); why {
	case "":
	case "limit_endpoint", "limit_source":
		if why == "limit_endpoint" {
			ep.m.deniedLimit.Inc()
		} else {
			ep.m.deniedLimIP.Inc()
		}
		s.refuse(c, ReasonLimit, why)
		return
	default: // the endpoint stopped between accept and now
		s.refuse(c, ReasonDrained, why)
		return
	}
	ep.m.active.Inc()
	if !c.run() {
		c.end()
	}
}

// end closes both sockets and accounts for the connection: limits, instance load, metrics, log.
func (c *conn) end() {
	c.abort("", nil) // the reason is already set
	c.ep.release(c)
	c.ep.m.active.Dec()
	if c.inst != nil {
		c.inst.Release()
	}
	c.s.finish(c)
}

// refuse closes a connection that did not pass the firewall or the limits and logs it.
func (s *Server) refuse(c *conn, reason, detail string) {
	if tc, ok := c.nc.(*net.TCPConn); ok && s.deny == DenyReset {
		tc.SetLinger(0)
	}
	c.nc.Close()
	c.reason = reason
	c.ep.m.closed.WithLabelValues(c.ep.id, reason).Inc()
	s.log.LogAttrs(s.ctx, slog.LevelInfo, "tcp connection",
		slog.String("endpoint", c.ep.id), slog.String("src", c.src.String()), slog.String("dst", c.dst.String()),
		slog.String("reason", reason), slog.String("detail", detail), slog.Float64("duration", time.Since(c.start).Seconds()))
}

// finish writes the access-log record and the end-of-connection metrics.
func (s *Server) finish(c *conn) {
	c.mu.Lock()
	reason, err := c.reason, c.err
	c.mu.Unlock()
	if reason == "" {
		reason = ReasonClientClosed
	}
	d := time.Since(c.start)
	c.ep.m.duration.Observe(d.Seconds())
	c.ep.m.closed.WithLabelValues(c.ep.id, reason).Inc()
	attrs := make([]slog.Attr, 0, 14)
	attrs = append(attrs, slog.String("endpoint", c.ep.id), slog.String("src", c.src.String()), slog.String("dst", c.dst.String()))
	if c.inst != nil {
		attrs = append(attrs, slog.String("instance", c.inst.ID))
	}
	if c.tlsMode != "" {
		attrs = append(attrs, slog.String("tls", c.tlsMode))
	}
	if c.sni != "" {
		attrs = append(attrs, slog.String("sni", c.sni))
	}
	if c.subject != "" {
		attrs = append(attrs, slog.String("client_subject", c.subject))
	}
	attrs = append(attrs, slog.Int64("bytes_in", c.bytesIn.Load()), slog.Int64("bytes_out", c.bytout.Load()),
		slog.Float64("duration", d.Seconds()), slog.String("reason", reason))
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	s.log.LogAttrs(s.ctx, slog.LevelInfo, "tcp connection", attrs...)
}

// run is the pipeline after the limits: TLS, instance, PROXY header, then the copy. It reports
// whether the copy goroutines took the connection over (they call end); otherwise the caller must.
func (c *conn) run() bool {
	s, cfg := c.s, c.cfg
	client, prefix, ok := c.front()
	if !ok {
		return false
	}
	in, bc, err := s.pickInstance(c)
	if err != nil {
		c.setReason(ReasonNoInstance, err)
		return false
	}
	c.inst = in
	if !c.setBackend(bc) {
		return false
	}
	var hdr []byte
	if cfg.ProxyProtocol {
		h := proxyproto.Header{Src: c.src, Dst: c.dst}
		if tc, ok := client.(*tls.Conn); ok {
			h.TLVs = append(h.TLVs, sslTLV(tc.ConnectionState()))
		}
		if hdr, err = h.AppendV2(make([]byte, 0, 64+len(prefix))); err != nil {
			c.setReason(ReasonBackendClosed, err)
			return false
		}
	}
	return c.copyBoth(client, bc, hdr, prefix)
}

// front runs the TLS stage of the endpoint's mode. It returns the connection to read client bytes
// from and write them to, plus bytes already read that must reach the instance first.
func (c *conn) front() (client net.Conn, prefix []byte, ok bool) {
	s, cfg := c.s, c.cfg
	switch cfg.TLSMode {
	case ModePlain:
		return c.nc, nil, true
	case ModeTLS, ModeMTLS:
		return c.handshake(c.nc)
	case ModeTLSPlain:
		pc := &peekConn{Conn: c.nc}
		c.nc.SetReadDeadline(time.Now().Add(s.sniffTO))
		b, err := pc.peek(make([]byte, 512))
		c.nc.SetReadDeadline(time.Time{})
		switch {
		case err != nil && isTimeout(err):
			return c.nc, nil, true // silent client: a server-speaks-first protocol
		case err != nil:
			c.setReason(ReasonClientClosed, clientErr(err))
			return nil, nil, false
		case LooksLikeTLS(b[0]):
			return c.handshake(pc)
		}
		return c.nc, pc.buf, true
	case ModePassthrough:
		c.tlsMode = "passthrough"
		c.nc.SetReadDeadline(time.Now().Add(s.hsTimeout))
		info, seen, err := readClientHello(c.nc)
		c.nc.SetReadDeadline(time.Time{})
		if err != nil && len(seen) == 0 {
			if isTimeout(err) {
				c.setReason(ReasonTLSError, errors.New("l4: no client hello before the handshake timeout"))
			} else {
				c.setReason(ReasonClientClosed, clientErr(err))
			}
			return nil, nil, false
		}
		// Bytes that are not a (complete) ClientHello are still forwarded untouched: the backend
		// owns the TLS session and will judge them.
		c.sni = info.sni
		return c.nc, seen, true
	}
	return c.nc, nil, true
}

// handshake terminates TLS on raw within the handshake timeout.
func (c *conn) handshake(raw net.Conn) (net.Conn, []byte, bool) {
	c.tlsMode = "tls"
	tc := tls.Server(raw, c.cfg.tls)
	c.nc.SetDeadline(time.Now().Add(c.s.hsTimeout))
	err := tc.Handshake()
	c.nc.SetDeadline(time.Time{})
	if err != nil {
		c.setReason(ReasonTLSError, err)
		return nil, nil, false
	}
	st := tc.ConnectionState()
	c.sni = st.ServerName
	if len(st.VerifiedChains) > 0 && len(st.VerifiedChains[0]) > 0 {
		c.subject = st.VerifiedChains[0][0].Subject.String()
	} else if len(st.PeerCertificates) > 0 {
		c.subject = st.PeerCertificates[0].Subject.String()
	}
	return tc, nil, true
}

// sslTLV describes a terminated TLS connection for the PROXY v2 header.
func sslTLV(st tls.ConnectionState) proxyproto.TLV {
	ssl := proxyproto.SSL{Client: proxyproto.ClientSSL, Version: tlsVersionName(st.Version), Cipher: tls.CipherSuiteName(st.CipherSuite)}
	if len(st.PeerCertificates) > 0 {
		cert := st.PeerCertificates[0]
		ssl.Client |= proxyproto.ClientCertSess
		if !st.DidResume {
			ssl.Client |= proxyproto.ClientCertConn
		}
		ssl.CN = cert.Subject.CommonName
		ssl.SigAlg = cert.SignatureAlgorithm.String()
		ssl.KeyAlg = cert.PublicKeyAlgorithm.String()
	}
	return ssl.TLV()
}

// tlsVersionName spells versions as OpenSSL (and so HAProxy) does: "TLSv1.3".
func tlsVersionName(v uint16) string {
	return strings.Replace(tls.VersionName(v), "TLS 1.", "TLSv1.", 1)
}

func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}

// clientErr drops the error of a client that simply went away.
func clientErr(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}
