package l4

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// chunkConn is a net.Conn that reads from a byte slice in chunks of at most n bytes.
type chunkConn struct {
	net.Conn
	data []byte
	n    int
}

func (c *chunkConn) Read(b []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	k := min(len(b), c.n, len(c.data))
	copy(b, c.data[:k])
	c.data = c.data[k:]
	return k, nil
}

func FuzzSniff(f *testing.F) {
	f.Add([]byte{0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5}, uint8(1))
	f.Add([]byte("GET / HTTP/1.1\r\n"), uint8(3))
	f.Add([]byte("SSH-2.0-OpenSSH_9.6\r\n"), uint8(200))
	f.Add([]byte{0x16}, uint8(0))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		if len(in) == 0 {
			return
		}
		pc := &peekConn{Conn: &chunkConn{data: bytes.Clone(in), n: int(chunk)%64 + 1}}
		b, err := pc.peek(make([]byte, 512))
		if err != nil || len(b) == 0 {
			t.Fatalf("peek = %q, %v", b, err)
		}
		if LooksLikeTLS(b[0]) != (in[0] == 0x16) {
			t.Fatalf("sniffed %#x as tls=%v", in[0], LooksLikeTLS(b[0]))
		}
		// Peeking consumed nothing: the whole stream reads back intact, and peeking again is stable.
		if b2, _ := pc.peek(make([]byte, 512)); !bytes.Equal(b2, b) {
			t.Fatalf("second peek %q, first %q", b2, b)
		}
		got, err := io.ReadAll(pc)
		if err != nil || !bytes.Equal(got, in) {
			t.Fatalf("replayed %q, %v; want %q", got, err, in)
		}
	})
}

// recordConn captures what a TLS client writes and fails its reads, to obtain a ClientHello.
type recordConn struct {
	net.Conn
	out bytes.Buffer
}

func (c *recordConn) Write(b []byte) (int, error)      { return c.out.Write(b) }
func (c *recordConn) Read([]byte) (int, error)         { return 0, errors.New("no server") }
func (c *recordConn) Close() error                     { return nil }
func (c *recordConn) SetDeadline(time.Time) error      { return nil }
func (c *recordConn) SetReadDeadline(time.Time) error  { return nil }
func (c *recordConn) SetWriteDeadline(time.Time) error { return nil }

func clientHello(t testing.TB, sni string, alpn ...string) []byte {
	rc := &recordConn{}
	tls.Client(rc, &tls.Config{ServerName: sni, NextProtos: alpn, InsecureSkipVerify: true}).Handshake()
	if rc.out.Len() == 0 {
		t.Fatal("no client hello written")
	}
	return rc.out.Bytes()
}

func TestReadClientHello(t *testing.T) {
	hello := clientHello(t, "db.example.test", "postgresql")
	for _, tt := range []struct {
		name    string
		in      []byte
		chunk   int
		sni     string
		wantErr string
	}{
		{"whole", append(bytes.Clone(hello), "after"...), 1 << 20, "db.example.test", ""},
		{"byte by byte", hello, 1, "db.example.test", ""},
		{"no sni", clientHello(t, ""), 1 << 20, "", ""},
		{"plain text", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 1 << 20, "", "tls"},
		{"truncated", hello[:len(hello)/2], 1 << 20, "", "EOF"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			info, seen, err := readClientHello(&chunkConn{data: bytes.Clone(tt.in), n: tt.chunk})
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if info.sni != tt.sni {
				t.Fatalf("sni = %q, want %q", info.sni, tt.sni)
			}
			if !bytes.HasPrefix(tt.in, seen) || len(seen) == 0 {
				t.Fatalf("replay bytes are not a prefix of the input (%d of %d)", len(seen), len(tt.in))
			}
			if tt.wantErr == "" && len(seen) < len(hello)-1 && tt.name != "no sni" {
				t.Fatalf("replay holds %d bytes, the hello has %d", len(seen), len(hello))
			}
		})
	}
	info, _, _ := readClientHello(bytes.NewReader(hello))
	if len(info.alpn) != 1 || info.alpn[0] != "postgresql" {
		t.Fatalf("alpn = %v", info.alpn)
	}
}

func FuzzClientHello(f *testing.F) {
	f.Add(clientHello(f, "db.example.test", "h2"), uint8(0))
	f.Add([]byte{0x16, 3, 1, 0, 4, 1, 0, 0, 0}, uint8(2))
	f.Add([]byte("plain"), uint8(7))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		_, seen, _ := readClientHello(&chunkConn{data: bytes.Clone(in), n: int(chunk) + 1})
		if !bytes.HasPrefix(in, seen) {
			t.Fatalf("replay bytes are not a prefix of the input")
		}
	})
}

// TestIdleConnectionsHoldNoPipes checks the Linux fast path's promise: an idle spliced connection
// holds two sockets and no splice pipe.
func TestIdleConnectionsHoldNoPipes(t *testing.T) {
	if runtime.GOOS != "linux" {
		return // splice is Linux-only; elsewhere io.Copy's buffers hold no pipes either
	}
	h := newHarness(t, Options{})
	b := startBackend(t, "b1", echo)
	addr := h.set(t, &EndpointConfig{ID: "ep", Pool: pool(b)})
	before := countPipes(t)
	const n = 40
	for i := 0; i < n; i++ {
		mustEcho(t, dial(t, addr), strings.Repeat("p", 100_000))
	}
	time.Sleep(50 * time.Millisecond)
	// The pipe pool may keep a few pipes around; held pipes would be 2 fds per direction.
	if got := countPipes(t) - before; got >= n {
		t.Fatalf("%d new pipe fds with %d idle connections", got, n)
	}
}

func countPipes(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, "pipe:") {
			n++
		}
	}
	return n
}
