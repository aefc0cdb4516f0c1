// Package proxyproto writes and reads version 2 of the PROXY protocol (the binary form described in
// HAProxy's proxy-protocol.txt), with which a TCP proxy tells a backend who the real client was: the
// L4 engine writes it in front of a proxied connection, and the HTTPS relay reads it from trusted
// load balancers.
//
// A header is a 16-byte preamble (12-byte signature, version and command, family and transport, a
// big-endian length) followed by an address block whose size the family fixes (12 bytes for IPv4, 36
// for IPv6, 216 for Unix) and then a list of type-length-value entries (TLVs). The reader is strict:
// it rejects every value the specification says a receiver must reject, checks that every TLV fits,
// verifies a CRC32C TLV when one is present, and never reads a byte past the header, so the
// connection's payload is left untouched.
//
// Version 1 (the text form) is not supported. Written by hand because the protocol is small and the
// well-known Go implementations wrap net.Listener, while we need a plain encoder and decoder.
package proxyproto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/netip"
)

// Signature is the 12-byte magic that starts every version 2 header.
const Signature = "\r\n\r\n\x00\r\nQUIT\n"

// Sizes fixed by the specification.
const (
	// PreambleLen is the size of the fixed part: signature, version/command, family, length.
	PreambleLen = 16
	// MaxLen is the largest possible header: the preamble plus a 16-bit length.
	MaxLen = PreambleLen + 0xFFFF
	// MaxUniqueIDLen bounds the value of a TypeUniqueID TLV.
	MaxUniqueIDLen = 128

	lenInet  = 12  // 2×4 address bytes + 2×2 port bytes
	lenInet6 = 36  // 2×16 + 2×2
	lenUnix  = 216 // 2×108
)

const (
	version2  = 0x20
	cmdLocal  = 0x0
	cmdProxy  = 0x1
	famUnspec = 0x0
	famInet   = 0x1
	famInet6  = 0x2
	famUnix   = 0x3
	protoNone = 0x0
	protoTCP  = 0x1
	protoUDP  = 0x2
)

// Errors returned by the reader. Every parse error wraps ErrInvalid except a missing signature
// (ErrNoSignature) and a stream that ends early (io.ErrUnexpectedEOF, or io.EOF before any byte).
var (
	// ErrNoSignature means the bytes do not start with the version 2 signature: the peer did not
	// send a PROXY v2 header.
	ErrNoSignature = errors.New("proxyproto: no PROXY v2 signature")
	// ErrInvalid means a header starts with the signature but breaks the specification.
	ErrInvalid = errors.New("proxyproto: invalid header")
	// ErrTooLong is returned by the writer when addresses and TLVs exceed the 16-bit length.
	ErrTooLong = errors.New("proxyproto: header longer than 65535 bytes")
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Transport is the transport protocol of the proxied connection.
type Transport uint8

const (
	// Stream is TCP (SOCK_STREAM); the zero value.
	Stream Transport = iota
	// Datagram is UDP (SOCK_DGRAM).
	Datagram
)

// String returns "stream" or "datagram".
func (t Transport) String() string {
	if t == Datagram {
		return "datagram"
	}
	return "stream"
}

// Header is one PROXY v2 header. The zero value, with Src and Dst set, describes a proxied TCP
// connection.
type Header struct {
	// Local marks the LOCAL command: the connection was opened by the proxy itself (a health check)
	// and carries no client. A LOCAL header has no addresses and no TLVs; the writer ignores Src,
	// Dst and TLVs, and the reader discards the whole block as the specification requires.
	Local bool
	// Transport is the proxied transport; zero is Stream (TCP).
	Transport Transport
	// Src and Dst are the client's address and the address it connected to. Both must be valid and
	// of the same family (an IPv4-mapped IPv6 address counts as IPv4 when the other is IPv4);
	// otherwise the writer sends family AF_UNSPEC with no addresses and no TLVs. The reader leaves
	// them invalid for AF_UNSPEC and AF_UNIX.
	Src, Dst netip.AddrPort
	// Unix is set by the reader for an AF_UNIX header (the socket paths are not decoded). The writer
	// refuses it.
	Unix bool
	// TLVs are the type-length-value entries after the addresses, in wire order. A TypeCRC32C entry
	// makes the writer compute the checksum (its Value is ignored) and the reader verify it.
	TLVs []TLV
}

// TLVType is the type byte of a TLV.
type TLVType uint8

// TLV types assigned by the specification.
const (
	TypeALPN      TLVType = 0x01 // the application protocol negotiated by TLS, e.g. "h2"
	TypeAuthority TLVType = 0x02 // the host name the client asked for (TLS SNI), UTF-8
	TypeCRC32C    TLVType = 0x03 // 4-byte CRC32C of the whole header with this field zeroed
	TypeNoop      TLVType = 0x04 // padding, ignored
	TypeUniqueID  TLVType = 0x05 // opaque connection id, at most 128 bytes
	TypeSSL       TLVType = 0x20 // TLS details; see SSL
	TypeNetNS     TLVType = 0x30 // network namespace name
	// Sub-types inside a TypeSSL value.
	SubtypeSSLVersion TLVType = 0x21 // TLS version, e.g. "TLSv1.3"
	SubtypeSSLCN      TLVType = 0x22 // the client certificate's subject Common Name
	SubtypeSSLCipher  TLVType = 0x23 // cipher suite name
	SubtypeSSLSigAlg  TLVType = 0x24 // certificate signature algorithm
	SubtypeSSLKeyAlg  TLVType = 0x25 // certificate key algorithm
	// TypeMinCustom..0xEF are for application use; 0xF0..0xF7 for experiments.
	TypeMinCustom     TLVType = 0xE0
	TypeMinExperiment TLVType = 0xF0
)

// TLV is one type-length-value entry. Value may be empty; it must not exceed 65535 bytes.
type TLV struct {
	Type  TLVType
	Value []byte
}

// TLV returns the value of the first TLV of type t.
func (h *Header) TLV(t TLVType) ([]byte, bool) {
	for _, v := range h.TLVs {
		if v.Type == t {
			return v.Value, true
		}
	}
	return nil, false
}

// HasSignature reports whether b (a prefix of a stream, of any length) could start a version 2
// header: it is a prefix of the signature, or starts with it.
func HasSignature(b []byte) bool {
	if len(b) > len(Signature) {
		b = b[:len(Signature)]
	}
	return string(b) == Signature[:len(b)]
}

// AppendV2 appends h's wire form to b.
func (h *Header) AppendV2(b []byte) ([]byte, error) {
	start := len(b)
	b = append(b, Signature...)
	if h.Local {
		return append(b, version2|cmdLocal, famUnspec<<4|protoNone, 0, 0), nil
	}
	if h.Unix {
		return b[:start], fmt.Errorf("proxyproto: writing AF_UNIX addresses is not supported")
	}
	proto := byte(protoTCP)
	if h.Transport == Datagram {
		proto = protoUDP
	}
	src, dst := h.Src.Addr(), h.Dst.Addr()
	fam := byte(famUnspec)
	if h.Src.IsValid() && h.Dst.IsValid() {
		if s4, d4 := src.Unmap(), dst.Unmap(); s4.Is4() && d4.Is4() {
			fam, src, dst = famInet, s4, d4
		} else {
			fam = famInet6
		}
	}
	if fam == famUnspec {
		return append(b, version2|cmdProxy, famUnspec<<4|protoNone, 0, 0), nil
	}
	b = append(b, version2|cmdProxy, fam<<4|proto, 0, 0) // length patched below
	if fam == famInet {
		s, d := src.As4(), dst.As4()
		b = append(b, s[:]...)
		b = append(b, d[:]...)
	} else {
		s, d := src.As16(), dst.As16()
		b = append(b, s[:]...)
		b = append(b, d[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, h.Src.Port())
	b = binary.BigEndian.AppendUint16(b, h.Dst.Port())
	crcAt := -1
	for _, t := range h.TLVs {
		v := t.Value
		switch t.Type {
		case TypeCRC32C:
			if crcAt >= 0 {
				return b[:start], fmt.Errorf("proxyproto: more than one CRC32C TLV")
			}
			v = []byte{0, 0, 0, 0}
			crcAt = len(b) + 3
		case TypeUniqueID:
			if len(v) > MaxUniqueIDLen {
				return b[:start], fmt.Errorf("proxyproto: unique id TLV of %d bytes exceeds %d", len(v), MaxUniqueIDLen)
			}
		case TypeSSL:
			if _, err := ParseSSL(v); err != nil {
				return b[:start], fmt.Errorf("proxyproto: SSL TLV: %w", err)
			}
		}
		if len(v) > 0xFFFF {
			return b[:start], ErrTooLong
		}
		b = append(b, byte(t.Type))
		b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
		b = append(b, v...)
	}
	n := len(b) - start - PreambleLen
	if n > 0xFFFF {
		return b[:start], ErrTooLong
	}
	binary.BigEndian.PutUint16(b[start+14:], uint16(n))
	if crcAt >= 0 {
		binary.BigEndian.PutUint32(b[crcAt:], crc32.Checksum(b[start:], castagnoli))
	}
	return b, nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// WriteV2 writes h to w in one Write call.
func WriteV2(w io.Writer, h *Header) error {
	b, err := h.AppendV2(make([]byte, 0, 64))
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("proxyproto: write header: %w", err)
	}
	return nil
}

// ReadV2 reads one version 2 header from r, consuming exactly its bytes and nothing after it (r is
// read with io.ReadFull, first the 16-byte preamble then the announced length). It returns
// ErrNoSignature when the first 12 bytes are not the signature, an error wrapping ErrInvalid when the
// header breaks the specification, io.EOF when r ends before any byte, and io.ErrUnexpectedEOF when
// it ends inside the header. Callers reading from a network connection should set a read deadline.
func ReadV2(r io.Reader) (*Header, error) {
	var pre [PreambleLen]byte
	if n, err := io.ReadFull(r, pre[:]); err != nil {
		if err == io.ErrUnexpectedEOF && !HasSignature(pre[:n]) {
			return nil, ErrNoSignature
		}
		return nil, err
	}
	if string(pre[:len(Signature)]) != Signature {
		return nil, ErrNoSignature
	}
	n := int(binary.BigEndian.Uint16(pre[14:]))
	buf := make([]byte, PreambleLen+n)
	copy(buf, pre[:])
	if _, err := io.ReadFull(r, buf[PreambleLen:]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	h, _, err := ParseV2(buf)
	return h, err
}

// ParseV2 parses the header at the start of b and returns it with its length in bytes. It returns
// io.ErrUnexpectedEOF when b holds only part of a header that could still be valid. The returned
// TLV values alias b.
func ParseV2(b []byte) (*Header, int, error) {
	if !HasSignature(b) {
		return nil, 0, ErrNoSignature
	}
	if len(b) < PreambleLen {
		return nil, 0, io.ErrUnexpectedEOF
	}
	verCmd, famProto := b[12], b[13]
	if verCmd&0xF0 != version2 {
		return nil, 0, invalid("version %#x, want 2", verCmd>>4)
	}
	n := PreambleLen + int(binary.BigEndian.Uint16(b[14:]))
	if len(b) < n {
		return nil, 0, io.ErrUnexpectedEOF
	}
	switch verCmd & 0x0F {
	case cmdLocal:
		// The receiver must use the real connection endpoints and discard the block, family included.
		return &Header{Local: true}, n, nil
	case cmdProxy:
	default:
		return nil, 0, invalid("command %#x", verCmd&0x0F)
	}
	h := &Header{}
	var addrLen int
	switch famProto {
	case famUnspec<<4 | protoNone:
		// Unknown protocol: the address block, if any, has no defined layout and is ignored.
		return h, n, nil
	case famInet<<4 | protoTCP, famInet<<4 | protoUDP:
		addrLen = lenInet
	case famInet6<<4 | protoTCP, famInet6<<4 | protoUDP:
		addrLen = lenInet6
	case famUnix<<4 | protoTCP, famUnix<<4 | protoUDP:
		addrLen = lenUnix
		h.Unix = true
	default:
		return nil, 0, invalid("family and transport %#02x", famProto)
	}
	if famProto&0x0F == protoUDP {
		h.Transport = Datagram
	}
	body := b[PreambleLen:n]
	if len(body) < addrLen {
		return nil, 0, invalid("length %d shorter than the %d-byte address block", len(body), addrLen)
	}
	switch addrLen {
	case lenInet:
		src, dst := netip.AddrFrom4([4]byte(body[0:4])), netip.AddrFrom4([4]byte(body[4:8]))
		h.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(body[8:]))
		h.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[10:]))
	case lenInet6:
		src, dst := netip.AddrFrom16([16]byte(body[0:16])), netip.AddrFrom16([16]byte(body[16:32]))
		h.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(body[32:]))
		h.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[34:]))
	}
	tlvs, crcAt, err := parseTLVs(body[addrLen:], PreambleLen+addrLen, true)
	if err != nil {
		return nil, 0, err
	}
	h.TLVs = tlvs
	if crcAt >= 0 {
		want := binary.BigEndian.Uint32(b[crcAt:])
		c := crc32.Update(0, castagnoli, b[:crcAt])
		c = crc32.Update(c, castagnoli, []byte{0, 0, 0, 0})
		c = crc32.Update(c, castagnoli, b[crcAt+4:n])
		if c != want {
			return nil, 0, invalid("CRC32C mismatch: header says %#08x, computed %#08x", want, c)
		}
	}
	return h, n, nil
}

// parseTLVs splits b into TLVs. base is b's offset in the header; crcAt is the header offset of a
// CRC32C value, or -1. Type-specific rules apply only at the top level (sub-TLVs of an SSL TLV have
// their own type space).
func parseTLVs(b []byte, base int, top bool) (tlvs []TLV, crcAt int, err error) {
	crcAt = -1
	for off := 0; off < len(b); {
		if len(b)-off < 3 {
			return nil, -1, invalid("truncated TLV at offset %d", base+off)
		}
		t := TLVType(b[off])
		l := int(binary.BigEndian.Uint16(b[off+1:]))
		v := b[off+3:]
		if len(v) < l {
			return nil, -1, invalid("TLV %#02x at offset %d: length %d exceeds the remaining %d bytes", t, base+off, l, len(v))
		}
		v = v[:l:l]
		switch {
		case !top:
		case t == TypeCRC32C:
			if l != 4 {
				return nil, -1, invalid("CRC32C TLV of %d bytes, want 4", l)
			}
			if crcAt >= 0 {
				return nil, -1, invalid("more than one CRC32C TLV")
			}
			crcAt = base + off + 3
		case t == TypeUniqueID:
			if l > MaxUniqueIDLen {
				return nil, -1, invalid("unique id TLV of %d bytes exceeds %d", l, MaxUniqueIDLen)
			}
		case t == TypeSSL:
			if _, err := ParseSSL(v); err != nil {
				return nil, -1, err
			}
		}
		tlvs = append(tlvs, TLV{Type: t, Value: v})
		off += 3 + l
	}
	return tlvs, crcAt, nil
}

// Client bits of an SSL TLV.
const (
	// ClientSSL: the client connected over TLS.
	ClientSSL uint8 = 0x01
	// ClientCertConn: the client presented a certificate on this connection.
	ClientCertConn uint8 = 0x02
	// ClientCertSess: the client presented a certificate at least once on this TLS session.
	ClientCertSess uint8 = 0x04
)

// SSL is the decoded value of a TypeSSL TLV: how the client's TLS connection, terminated by the
// proxy, looked. Empty strings are not written.
type SSL struct {
	// Client is a combination of ClientSSL, ClientCertConn and ClientCertSess.
	Client uint8
	// Verify is zero when the client certificate was verified successfully (or none was required).
	Verify uint32
	// Version is the TLS version, e.g. "TLSv1.3" (SubtypeSSLVersion).
	Version string
	// CN is the verified client certificate's subject Common Name (SubtypeSSLCN).
	CN string
	// Cipher is the cipher suite, e.g. "TLS_AES_128_GCM_SHA256" (SubtypeSSLCipher).
	Cipher string
	// SigAlg and KeyAlg describe the client certificate (SubtypeSSLSigAlg, SubtypeSSLKeyAlg).
	SigAlg, KeyAlg string
	// Other holds sub-TLVs the fields above do not cover, in wire order.
	Other []TLV
}

// TLV encodes s as a TypeSSL TLV.
func (s SSL) TLV() TLV {
	v := make([]byte, 5, 5+len(s.Version)+len(s.CN)+len(s.Cipher)+len(s.SigAlg)+len(s.KeyAlg)+15)
	v[0] = s.Client
	binary.BigEndian.PutUint32(v[1:], s.Verify)
	add := func(t TLVType, val []byte) {
		if len(val) == 0 {
			return
		}
		v = append(v, byte(t))
		v = binary.BigEndian.AppendUint16(v, uint16(len(val)))
		v = append(v, val...)
	}
	add(SubtypeSSLVersion, []byte(s.Version))
	add(SubtypeSSLCN, []byte(s.CN))
	add(SubtypeSSLCipher, []byte(s.Cipher))
	add(SubtypeSSLSigAlg, []byte(s.SigAlg))
	add(SubtypeSSLKeyAlg, []byte(s.KeyAlg))
	for _, o := range s.Other {
		add(o.Type, o.Value)
	}
	return TLV{Type: TypeSSL, Value: v}
}

// ParseSSL decodes the value of a TypeSSL TLV.
func ParseSSL(v []byte) (SSL, error) {
	if len(v) < 5 {
		return SSL{}, invalid("SSL TLV of %d bytes, want at least 5", len(v))
	}
	s := SSL{Client: v[0], Verify: binary.BigEndian.Uint32(v[1:])}
	subs, _, err := parseTLVs(v[5:], 0, false)
	if err != nil {
		return SSL{}, fmt.Errorf("SSL TLV: %w", err)
	}
	for _, t := range subs {
		switch t.Type {
		case SubtypeSSLVersion:
			s.Version = string(t.Value)
		case SubtypeSSLCN:
			s.CN = string(t.Value)
		case SubtypeSSLCipher:
			s.Cipher = string(t.Value)
		case SubtypeSSLSigAlg:
			s.SigAlg = string(t.Value)
		case SubtypeSSLKeyAlg:
			s.KeyAlg = string(t.Value)
		default:
			s.Other = append(s.Other, t)
		}
	}
	return s, nil
}

// SSL returns the decoded TypeSSL TLV of h, if any. The reader has already validated it.
func (h *Header) SSL() (SSL, bool) {
	v, ok := h.TLV(TypeSSL)
	if !ok {
		return SSL{}, false
	}
	s, err := ParseSSL(v)
	return s, err == nil
}
