//go:build linux

package l4

import (
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// setup prepares readiness waiting when src is a TCP socket, and splicing when dst is one too.
func (h *half) setup() {
	s, ok := h.src.(*net.TCPConn)
	if !ok {
		return
	}
	raw, err := s.SyscallConn()
	if err != nil {
		return
	}
	h.raw = raw
	h.probe = h.probeFD
	if d, ok := h.dst.(*net.TCPConn); ok {
		h.splice = d
		h.lr.R = s
	}
}

// wait blocks until src has queued bytes or reached EOF, and returns how many bytes are queued (0
// at EOF). It holds no buffer and no pipe while it waits; the Go poller parks the goroutine.
func (h *half) wait() (int64, error) {
	h.avail, h.perr = 0, nil
	if err := h.raw.Read(h.probe); err != nil {
		return 0, err
	}
	return int64(h.avail), h.perr
}

// probeFD runs on the socket: it reports true once bytes are queued (their count in h.avail), the
// peer has shut its write side (h.avail 0), or the socket failed (h.perr); false makes the poller
// wait for the next readiness event. Raw syscalls on fields of h keep it allocation-free.
func (h *half) probeFD(fd uintptr) bool {
	for {
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, fd, unix.SIOCINQ, uintptr(unsafe.Pointer(&h.avail))); e != 0 {
			h.perr = e
			return true
		}
		if h.avail > 0 {
			return true
		}
		// Nothing queued: EOF, a pending error, or simply no data yet. A one-byte peek tells.
		r, _, e := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&h.peek[0])), 1,
			unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
		switch {
		case e == unix.EINTR:
			continue
		case e == unix.EAGAIN:
			return false
		case e != 0:
			h.perr = e
			return true
		case r == 0:
			return true // orderly shutdown by the peer
		}
		// A byte arrived between the two calls: count again.
	}
}
