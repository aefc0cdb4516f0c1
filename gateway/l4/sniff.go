package l4

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"time"
)

// recordTypeHandshake is the first byte of every TLS ClientHello record.
const recordTypeHandshake = 0x16

// LooksLikeTLS reports whether a connection whose first byte is b starts a TLS handshake. It is the
// whole of ModeTLSPlain's sniffer: no plain-text protocol we know of starts with 0x16 (SYN).
func LooksLikeTLS(b byte) bool { return b == recordTypeHandshake }

// peekConn is a net.Conn whose first bytes have been read already (to sniff them) and are replayed
// before the rest of the stream. Only Read is affected; everything else is the wrapped conn's.
type peekConn struct {
	net.Conn
	buf []byte // unread peeked bytes
}

// peek reads from the conn until at least one byte is buffered, without consuming anything, and
// returns the buffered bytes.
func (p *peekConn) peek(scratch []byte) ([]byte, error) {
	for len(p.buf) == 0 {
		n, err := p.Conn.Read(scratch)
		p.buf = scratch[:n]
		if n > 0 {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	return p.buf, nil
}

func (p *peekConn) Read(b []byte) (int, error) {
	if len(p.buf) > 0 {
		n := copy(b, p.buf)
		p.buf = p.buf[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// maxClientHello bounds what passthrough buffers while looking for the SNI: crypto/tls accepts
// handshake messages up to 64 KiB, plus record headers.
const maxClientHello = 64<<10 + 4<<10

// helloInfo is what passthrough logs from a ClientHello.
type helloInfo struct {
	sni  string
	alpn []string
}

var errHelloSeen = errors.New("l4: client hello read")

// readClientHello reads a TLS ClientHello from r using crypto/tls's own parser (so we never parse
// handshake bytes by hand) and returns what it found plus every byte it consumed, which the caller
// must replay to the backend. A stream that is not TLS returns an error together with the bytes read
// so far; the caller decides whether to forward them.
func readClientHello(r io.Reader) (helloInfo, []byte, error) {
	var info helloInfo
	hc := &helloConn{r: io.LimitReader(r, maxClientHello)}
	cfg := &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		info.sni = h.ServerName
		info.alpn = h.SupportedProtos
		return nil, errHelloSeen
	}}
	err := tls.Server(hc, cfg).Handshake()
	if errors.Is(err, errHelloSeen) {
		err = nil
	} else if err == nil {
		err = errors.New("l4: handshake completed without a client hello") // cannot happen
	}
	return info, hc.seen.Bytes(), err
}

// helloConn feeds crypto/tls during readClientHello: reads come from r and are recorded, writes
// (alerts) are dropped, everything else is a no-op.
type helloConn struct {
	r    io.Reader
	seen bytes.Buffer
}

func (c *helloConn) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.seen.Write(b[:n])
	return n, err
}
func (c *helloConn) Write(b []byte) (int, error)        { return len(b), nil }
func (c *helloConn) Close() error                       { return nil }
func (c *helloConn) LocalAddr() net.Addr                { return nil }
func (c *helloConn) RemoteAddr() net.Addr               { return nil }
func (c *helloConn) SetDeadline(time.Time) error        { return nil }
func (c *helloConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *helloConn) SetWriteDeadline(t time.Time) error { return nil }
