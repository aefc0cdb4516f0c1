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
	closeDst             func()

	// Linux readiness waiting (see copy_linux.go); raw is nil when unavailable.
	raw    syscall.RawConn
	splice *net.TCPConn // dst, when both ends are TCP sockets
	probe  func(fd uintptr) bool
	avail  int32
	peek   [1]byte
	perr   error
	lr     io.LimitedReader
}

// copyBoth writes hdr and data (bytes already read from the client) to the backend, then copies
// both directions until both ended or one failed.
func (c *conn) copyBoth(client, backend net.Conn, hdr, data []byte) {
	c.last.Store(c.s.now() + 1)
	if len(hdr)+len(data) > 0 {
		if _, err := backend.Write(append(hdr, data...)); err != nil {
			c.setReason(ReasonBackendClosed, err)
			return
		}
		c.bytesIn.Add(int64(len(data)))
		c.ep.m.received.Add(float64(len(data)))
	}
	up := &half{c: c, src: client, dst: backend, srcReason: ReasonClientClosed, dstReason: ReasonBackendClosed,
		count: &c.bytesIn, metric: c.ep.m.received}
	up.closeDst = func() { closeWrite(backend) }
	down := &half{c: c, src: backend, dst: client, srcReason: ReasonBackendClosed, dstReason: ReasonClientClosed,
		count: &c.bytout, metric: c.ep.m.sent}
	down.closeDst = func() {
		if tc, ok := client.(*tls.Conn); ok {
			tc.CloseWrite() // close_notify
		}
		closeWrite(c.nc)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		down.run()
	}()
	up.run()
	<-done
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

// copyBlocking is the portable path: a pooled buffer held while blocked in Read. It serves TLS
// clients and non-TCP instance connections.
func (h *half) copyBlocking() (dstFailed bool, err error) {
	buf := bufPool.Get().(*[bufSize]byte)
	defer bufPool.Put(buf)
	for {
		n, rerr := h.src.Read(buf[:])
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
	}
}

// spliceWriteFailed guesses which side broke a splice: writing to a closed peer gives EPIPE;
// everything else is blamed on the source.
func spliceWriteFailed(err error) bool {
	return errors.Is(err, syscall.EPIPE)
}
