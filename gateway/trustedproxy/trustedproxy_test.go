package trustedproxy

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/kinesis-network/portal/gateway/proxyproto"
)

func serveOne(t *testing.T, ln net.Listener) chan [2]string {
	out := make(chan [2]string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		remote := c.RemoteAddr().String()
		b, err := io.ReadAll(c)
		if err != nil {
			out <- [2]string{remote, "ERR " + err.Error()}
			return
		}
		out <- [2]string{remote, string(b)}
	}()
	return out
}

func TestTrustedSourceHeaderBecomesRemoteAddr(t *testing.T) {
	pol, err := Compile([]string{"127.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := net.Listen("tcp", "127.0.0.1:0")
	ln := Listener(raw, pol, time.Second)
	defer ln.Close()
	got := serveOne(t, ln)
	c, _ := net.Dial("tcp", raw.Addr().String())
	h := &proxyproto.Header{Src: netip.MustParseAddrPort("203.0.113.7:5555"), Dst: netip.MustParseAddrPort("198.51.100.1:443")}
	if err := proxyproto.WriteV2(c, h); err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("hello"))
	c.(*net.TCPConn).CloseWrite()
	r := <-got
	c.Close()
	if r[0] != "203.0.113.7:5555" || r[1] != "hello" {
		t.Fatalf("got %v", r)
	}
}

func TestTrustedSourceWithoutHeaderFails(t *testing.T) {
	pol, _ := Compile([]string{"127.0.0.0/8"})
	raw, _ := net.Listen("tcp", "127.0.0.1:0")
	ln := Listener(raw, pol, time.Second)
	defer ln.Close()
	got := serveOne(t, ln)
	c, _ := net.Dial("tcp", raw.Addr().String())
	c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	c.(*net.TCPConn).CloseWrite()
	r := <-got
	c.Close()
	if r[1][:3] != "ERR" {
		t.Fatalf("read without a header succeeded: %v", r)
	}
}

func TestUntrustedSourceIsNeverParsed(t *testing.T) {
	pol, _ := Compile([]string{"10.0.0.0/8"})
	raw, _ := net.Listen("tcp", "127.0.0.1:0")
	ln := Listener(raw, pol, time.Second)
	defer ln.Close()
	got := serveOne(t, ln)
	c, _ := net.Dial("tcp", raw.Addr().String())
	h := &proxyproto.Header{Src: netip.MustParseAddrPort("203.0.113.7:5555"), Dst: netip.MustParseAddrPort("198.51.100.1:443")}
	proxyproto.WriteV2(c, h)
	c.(*net.TCPConn).CloseWrite()
	r := <-got
	c.Close()
	if r[0] == "203.0.113.7:5555" || r[0][:10] != "127.0.0.1:" {
		t.Fatalf("untrusted client spoofed its address: %v", r)
	}
	if len(r[1]) < len(proxyproto.Signature) {
		t.Fatalf("header bytes were consumed for an untrusted client: %q", r[1])
	}
}

func TestNoTrustedListIsPassThrough(t *testing.T) {
	raw, _ := net.Listen("tcp", "127.0.0.1:0")
	defer raw.Close()
	pol, err := Compile(nil)
	if err != nil || pol != nil {
		t.Fatalf("Compile(nil) = %v, %v", pol, err)
	}
	if Listener(raw, nil, 0) != raw {
		t.Fatal("nil policy should return the listener itself")
	}
	if _, err := Compile([]string{"bogus"}); err == nil {
		t.Fatal("bad CIDR accepted")
	}
}
