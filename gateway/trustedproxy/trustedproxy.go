// Package trustedproxy wraps a listener so that connections from trusted sources (a load balancer in
// front of the portal) carry the real client address in a PROXY protocol v2 header. The header is
// required from trusted sources and never read from anyone else, so an untrusted client cannot spoof
// its address. The firewall then sees the real client address, never X-Forwarded-For.
package trustedproxy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/kinesis-network/portal/firewall"
	"github.com/kinesis-network/portal/gateway/proxyproto"
)

// DefaultHeaderTimeout bounds reading the PROXY header.
const DefaultHeaderTimeout = 5 * time.Second

// Listener returns ln wrapped: connections whose peer matches trusted must start with a PROXY v2
// header, whose source address becomes the connection's RemoteAddr. A nil trusted returns ln itself.
// The header is read lazily on the connection's first Read or RemoteAddr call (in the connection's own
// goroutine, so Accept never blocks on a slow peer); a missing or malformed header fails every read.
func Listener(ln net.Listener, trusted *firewall.Policy, timeout time.Duration) net.Listener {
	if trusted == nil {
		return ln
	}
	if timeout <= 0 {
		timeout = DefaultHeaderTimeout
	}
	return &listener{Listener: ln, trusted: trusted, timeout: timeout}
}

// Compile builds the trusted-source policy from CIDRs; an empty list gives nil (trust nobody).
func Compile(cidrs []string) (*firewall.Policy, error) {
	if len(cidrs) == 0 {
		return nil, nil
	}
	// Deny-everything-but: an allow list of the trusted CIDRs.
	p, err := firewall.Compile(firewall.Rules{Allow: cidrs})
	if err != nil {
		return nil, fmt.Errorf("trustedproxy: %w", err)
	}
	return p, nil
}

type listener struct {
	net.Listener
	trusted *firewall.Policy
	timeout time.Duration
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil || !l.trusted.AllowSource(ap.Addr()) {
		return c, nil
	}
	return &conn{Conn: c, timeout: l.timeout}, nil
}

// ErrBadHeader is returned by reads on a trusted connection without a valid PROXY v2 header.
var ErrBadHeader = errors.New("trustedproxy: trusted source sent no valid PROXY v2 header")

type conn struct {
	net.Conn
	timeout time.Duration
	once    sync.Once
	remote  net.Addr
	local   net.Addr
	err     error
}

func (c *conn) init() {
	c.once.Do(func() {
		c.remote, c.local = c.Conn.RemoteAddr(), c.Conn.LocalAddr()
		c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
		h, err := proxyproto.ReadV2(c.Conn)
		c.Conn.SetReadDeadline(time.Time{})
		if err != nil {
			c.err = fmt.Errorf("%w: %w", ErrBadHeader, err)
			return
		}
		if !h.Local && h.Src.IsValid() {
			c.remote = net.TCPAddrFromAddrPort(h.Src)
			if h.Dst.IsValid() {
				c.local = net.TCPAddrFromAddrPort(h.Dst)
			}
		}
	})
}

func (c *conn) Read(b []byte) (int, error) {
	c.init()
	if c.err != nil {
		return 0, c.err
	}
	return c.Conn.Read(b)
}

func (c *conn) RemoteAddr() net.Addr { c.init(); return c.remote }

func (c *conn) LocalAddr() net.Addr { c.init(); return c.local }
