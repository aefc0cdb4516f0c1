package l4

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
)

// bufSize is the copy buffer for directions that cannot splice (TLS, non-TCP instance dialers).
const bufSize = 32 << 10

// smallBufSize is what a blocking direction holds while its connection idles.
const smallBufSize = 2 << 10

// maxBurst bounds one splice so the activity stamp is refreshed at least every MiB.
const maxBurst = 1 << 20

var bufPool = sync.Pool{New: func() any { return new([bufSize]byte) }}

// half is one direction of a proxied connection.
type half struct {
	c        *conn
	src, dst net.Conn
	// Reasons recorded when src ends first (EOF) or fails, and when writing to dst fails.
	srcReason, dstReason string
	count                *atomic.Int64
	metric               prometheus.Counter
	toClient             bool // dst is the client: half-close it with close_notify first when TLS

	// Linux readiness waiting (see copy_linux.go); raw is nil when unavailable.
	raw    syscall.RawConn
	splice *net.TCPConn // dst, when both ends are TCP sockets
	probe  func(fd uintptr) bool
	avail  int32
	peek   [1]byte
	perr   error
	lr     io.LimitedReader
}

// copyBoth writes hdr and data (bytes already read from the client) to the backend, then starts
// one goroutine per direction and returns true: those goroutines own the connection from then on
// and the last to finish calls end. Fresh goroutines keep an idle connection's stacks minimal (the
// handler's stack grew during TLS and the dial). It returns false if the first write failed.
func (c *conn) copyBoth(client, backend net.Conn, hdr, data []byte) bool {
	c.last.Store(c.s.now() + 1)
	if len(hdr)+len(data) > 0 {
		if _, err := backend.Write(append(hdr, data...)); err != nil {
			c.setReason(ReasonBackendClosed, err)
			return false
		}
		c.bytesIn.Add(int64(len(data)))
		c.ep.m.received.Add(float64(len(data)))
	}
	up := &half{c: c, src: client, dst: backend, srcReason: ReasonClientClosed, dstReason: ReasonBackendClosed,
		count: &c.bytesIn, metric: c.ep.m.received}
	down := &half{c: c, src: backend, dst: client, srcReason: ReasonBackendClosed, dstReason: ReasonClientClosed,
		count: &c.bytout, metric: c.ep.m.sent, toClient: true}
	c.halves.Store(2)
	c.s.wg.Add(2)
	go down.run()
	go up.run()
	return true
}

type closeWriter interface{ CloseWrite() error }

func closeWrite(c net.Conn) {
	if cw, ok := c.(closeWriter); ok {
		cw.CloseWrite()
	}
}

// run copies until src ends or an error. On EOF it half-closes dst and leaves the other direction
// running; on error it aborts the whole connection.
func (h *half) run() {
	defer func() {
		if h.c.halves.Add(-1) == 0 {
			h.c.end()
		}
		h.c.s.wg.Done()
	}()
	h.setup()
	var err error
	var dstFailed bool
	if h.raw != nil {
		dstFailed, err = h.copyWaiting()
	} else {
		dstFailed, err = h.copyBlocking()
	}
	switch {
	case err == nil:
		h.c.setReason(h.srcReason, nil)
		h.closeDst()
	case dstFailed:
		h.c.abort(h.dstReason, err)
	default:
		h.c.abort(h.srcReason, clientErr(err))
	}
}

// closeDst half-closes dst after src ended cleanly, so the peer sees the end of the stream while
// the other direction keeps running.
func (h *half) closeDst() {
	if tc, ok := h.dst.(*tls.Conn); ok && h.toClient {
		tc.CloseWrite() // close_notify; then the TCP FIN below
		closeWrite(h.c.nc)
		return
	}
	closeWrite(h.dst)
}

func (h *half) account(n int) {
	h.count.Add(int64(n))
	h.metric.Add(float64(n))
}

func (h *half) stamp() { h.c.last.Store(h.c.s.now() + 1) }

// copyWaiting waits for src to be readable without holding a buffer or a pipe, then moves exactly
// the queued bytes: by splice(2) when dst is a TCP socket, through a pooled buffer otherwise.
func (h *half) copyWaiting() (dstFailed bool, err error) {
	for {
		avail, err := h.wait()
		if err != nil {
			return false, err
		}
		if avail == 0 {
			return false, nil // EOF
		}
		if h.splice != nil {
			for avail > 0 {
				h.stamp()
				h.lr.N = min(avail, maxBurst)
				want := h.lr.N
				n, err := h.splice.ReadFrom(&h.lr)
				h.account(int(n))
				avail -= n
				if err != nil {
					return spliceWriteFailed(err), err
				}
				if n < want {
					break // src hit EOF; the next wait reports it
				}
			}
			continue
		}
		h.stamp()
		buf := bufPool.Get().(*[bufSize]byte)
		for avail > 0 {
			n, rerr := h.src.Read(buf[:min(avail, bufSize)])
			if n > 0 {
				avail -= int64(n)
				if _, werr := h.dst.Write(buf[:n]); werr != nil {
					bufPool.Put(buf)
					return true, werr
				}
				h.account(n)
			}
			if rerr != nil {
				bufPool.Put(buf)
				if rerr == io.EOF {
					return false, nil
				}
				return false, rerr
			}
		}
		bufPool.Put(buf)
	}
}

// copyBlocking is the portable path, for TLS clients and non-TCP instance connections: blocking
// reads into a small buffer while the stream trickles or idles, switching to a pooled 32 KiB buffer
// while reads fill the small one, and back once they stop doing so.
func (h *half) copyBlocking() (dstFailed bool, err error) {
	small := make([]byte, smallBufSize)
	var big *[bufSize]byte
	defer func() {
		if big != nil {
			bufPool.Put(big)
		}
	}()
	buf := small
	for {
		n, rerr := h.src.Read(buf)
		if n > 0 {
			h.stamp()
			if _, werr := h.dst.Write(buf[:n]); werr != nil {
				return true, werr
			}
			h.account(n)
		}
		if rerr == io.EOF {
			return false, nil
		}
		if rerr != nil {
			return false, rerr
		}
		switch {
		case big == nil && n == len(small):
			big = bufPool.Get().(*[bufSize]byte)
			buf = big[:]
		case big != nil && n < len(small):
			bufPool.Put(big)
			big, buf = nil, small
		}
	}
}

// spliceWriteFailed guesses which side broke a splice: writing to a closed peer gives EPIPE;
// everything else is blamed on the source.
func spliceWriteFailed(err error) bool {
	return errors.Is(err, syscall.EPIPE)
}
