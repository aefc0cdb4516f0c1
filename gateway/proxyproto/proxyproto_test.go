package proxyproto

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const sigHex = "0d0a0d0a000d0a515549540a"

func TestWriteKnownBytes(t *testing.T) {
	tests := []struct {
		name string
		h    Header
		want string
	}{
		{"ipv4 tcp", Header{Src: netip.MustParseAddrPort("192.0.2.1:56324"), Dst: netip.MustParseAddrPort("198.51.100.7:443")},
			sigHex + "21 11 000c c0000201 c6336407 dc04 01bb"},
		{"mapped v4 is sent as v4", Header{Src: netip.MustParseAddrPort("[::ffff:192.0.2.1]:1"), Dst: netip.MustParseAddrPort("198.51.100.7:2")},
			sigHex + "21 11 000c c0000201 c6336407 0001 0002"},
		{"ipv6 udp", Header{Transport: Datagram, Src: netip.MustParseAddrPort("[2001:db8::1]:1"), Dst: netip.MustParseAddrPort("[2001:db8::2]:2")},
			sigHex + "21 22 0024 20010db8000000000000000000000001 20010db8000000000000000000000002 0001 0002"},
		{"local", Header{Local: true, Src: netip.MustParseAddrPort("192.0.2.1:1"), TLVs: []TLV{{TypeNoop, nil}}},
			sigHex + "20 00 0000"},
		{"unspec when an address is missing", Header{Src: netip.MustParseAddrPort("192.0.2.1:1")},
			sigHex + "21 00 0000"},
		{"tlvs", Header{Src: netip.MustParseAddrPort("10.0.0.1:1"), Dst: netip.MustParseAddrPort("10.0.0.2:2"),
			TLVs: []TLV{{TypeAuthority, []byte("db.example")}, {TypeNoop, nil}}},
			sigHex + "21 11 001c 0a000001 0a000002 0001 0002 02 000a 64622e6578616d706c65 04 0000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteV2(&buf, &tt.h); err != nil {
				t.Fatal(err)
			}
			if want := mustHex(t, tt.want); !bytes.Equal(buf.Bytes(), want) {
				t.Fatalf("got  %x\nwant %x", buf.Bytes(), want)
			}
		})
	}
}

func TestWriteErrors(t *testing.T) {
	a, b := netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("10.0.0.2:2")
	tests := []struct {
		name string
		h    Header
		want string
	}{
		{"unix", Header{Unix: true}, "AF_UNIX"},
		{"unique id too long", Header{Src: a, Dst: b, TLVs: []TLV{{TypeUniqueID, make([]byte, 129)}}}, "exceeds 128"},
		{"bad ssl", Header{Src: a, Dst: b, TLVs: []TLV{{TypeSSL, []byte{1}}}}, "SSL TLV"},
		{"two crcs", Header{Src: a, Dst: b, TLVs: []TLV{{TypeCRC32C, nil}, {TypeCRC32C, nil}}}, "more than one CRC32C"},
		{"too long", Header{Src: a, Dst: b, TLVs: []TLV{{TypeNoop, make([]byte, 40000)}, {TypeNoop, make([]byte, 40000)}}}, "longer than 65535"},
		{"tlv too long", Header{Src: a, Dst: b, TLVs: []TLV{{TypeNoop, make([]byte, 70000)}}}, "longer than 65535"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := tt.h.AppendV2([]byte("x"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if string(out) != "x" {
				t.Fatalf("failed append left %q, want the input untouched", out)
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		is   error
		want string
	}{
		{"empty", "", io.EOF, ""},
		{"http", hex.EncodeToString([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")), ErrNoSignature, ""},
		{"short non-signature", "474554", ErrNoSignature, ""},
		{"short signature", sigHex[:10], io.ErrUnexpectedEOF, ""},
		{"truncated body", sigHex + "21 11 000c c0000201", io.ErrUnexpectedEOF, ""},
		{"version 1 bit pattern", sigHex + "11 11 0000", ErrInvalid, "version"},
		{"bad command", sigHex + "22 11 000c c0000201 c6336407 0001 0002", ErrInvalid, "command"},
		{"bad family", sigHex + "21 41 0000", ErrInvalid, "family"},
		{"inet with unspec transport", sigHex + "21 10 000c c0000201 c6336407 0001 0002", ErrInvalid, "family"},
		{"unspec with tcp", sigHex + "21 01 0000", ErrInvalid, "family"},
		{"short address block", sigHex + "21 21 000c c0000201 c6336407 0001 0002", ErrInvalid, "shorter than the 36-byte"},
		{"truncated tlv header", sigHex + "21 11 000e c0000201 c6336407 0001 0002 0400", ErrInvalid, "truncated TLV"},
		{"tlv overruns", sigHex + "21 11 0010 c0000201 c6336407 0001 0002 02 0005 6162", ErrInvalid, "exceeds the remaining"},
		{"crc wrong size", sigHex + "21 11 0011 c0000201 c6336407 0001 0002 03 0002 0000 ", ErrInvalid, "want 4"},
		{"crc mismatch", sigHex + "21 11 0013 c0000201 c6336407 0001 0002 03 0004 deadbeef", ErrInvalid, "CRC32C mismatch"},
		{"ssl too short", sigHex + "21 11 0011 c0000201 c6336407 0001 0002 20 0002 0100", ErrInvalid, "want at least 5"},
		{"ssl sub-tlv overruns", sigHex + "21 11 0017 c0000201 c6336407 0001 0002 20 0008 01 00000000 22 0009", ErrInvalid, "SSL TLV"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadV2(bytes.NewReader(mustHex(t, tt.in)))
			if !errors.Is(err, tt.is) || !strings.Contains(fmtErr(err), tt.want) {
				t.Fatalf("err = %v, want errors.Is %v containing %q", err, tt.is, tt.want)
			}
		})
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestReadAccepts(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Header
	}{
		{"local ignores block", sigHex + "20 11 000c c0000201 c6336407 0001 0002", Header{Local: true}},
		{"local with garbage family", sigHex + "20 ff 0003 010203", Header{Local: true}},
		{"unspec ignores block", sigHex + "21 00 0003 010203", Header{}},
		{"unix", sigHex + "21 31 00d8" + strings.Repeat("00", 216), Header{Unix: true}},
		{"unix dgram with tlv", sigHex + "21 32 00db" + strings.Repeat("00", 216) + "04 0000", Header{Unix: true, Transport: Datagram, TLVs: []TLV{{TypeNoop, []byte{}}}}},
		{"ipv6 udp", sigHex + "21 22 0024 20010db8000000000000000000000001 20010db8000000000000000000000002 0001 0002",
			Header{Transport: Datagram, Src: netip.MustParseAddrPort("[2001:db8::1]:1"), Dst: netip.MustParseAddrPort("[2001:db8::2]:2")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ReadV2(bytes.NewReader(mustHex(t, tt.in)))
			if err != nil {
				t.Fatal(err)
			}
			if !equal(h, &tt.want) {
				t.Fatalf("got %+v, want %+v", h, tt.want)
			}
		})
	}
}

func TestReadStopsAtHeader(t *testing.T) {
	h := &Header{Src: netip.MustParseAddrPort("10.1.2.3:4000"), Dst: netip.MustParseAddrPort("10.9.9.9:22"),
		TLVs: []TLV{{TypeCRC32C, nil}, SSL{Client: ClientSSL | ClientCertConn, Version: "TLSv1.3", CN: "alice"}.TLV()}}
	b, err := h.AppendV2(nil)
	if err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(append(b, "SSH-2.0-payload"...))
	got, err := ReadV2(r)
	if err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(r)
	if string(rest) != "SSH-2.0-payload" {
		t.Fatalf("payload after header = %q", rest)
	}
	if got.Src != h.Src || got.Dst != h.Dst {
		t.Fatalf("addresses %v %v", got.Src, got.Dst)
	}
	ssl, ok := got.SSL()
	if !ok || ssl.CN != "alice" || ssl.Version != "TLSv1.3" || ssl.Client != ClientSSL|ClientCertConn {
		t.Fatalf("ssl = %+v, %v", ssl, ok)
	}
	// The CRC was computed: flipping a port byte must break it.
	b[len(Signature)+4+8] ^= 1
	if _, err := ReadV2(bytes.NewReader(b)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("corrupted header accepted: %v", err)
	}
}

func TestHasSignature(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool
	}{{"", true}, {"\r\n", true}, {Signature, true}, {Signature + "\x21", true}, {"GET", false}, {"\r\n\r\n\x01", false}} {
		if got := HasSignature([]byte(tt.in)); got != tt.want {
			t.Errorf("HasSignature(%q) = %v", tt.in, got)
		}
	}
}

// equal compares two headers as their wire forms would: TLV values by content.
func equal(a, b *Header) bool {
	if a.Local || b.Local {
		return a.Local == b.Local
	}
	if a.Transport != b.Transport || a.Src != b.Src || a.Dst != b.Dst || a.Unix != b.Unix || len(a.TLVs) != len(b.TLVs) {
		return false
	}
	for i := range a.TLVs {
		if a.TLVs[i].Type != b.TLVs[i].Type || !bytes.Equal(a.TLVs[i].Value, b.TLVs[i].Value) {
			return false
		}
	}
	return true
}

// headerFromFuzz builds a header from fuzzer-chosen parts.
func headerFromFuzz(flags uint8, src, dst []byte, sport, dport uint16, tlvs []byte) *Header {
	h := &Header{Local: flags&1 != 0}
	if flags&2 != 0 {
		h.Transport = Datagram
	}
	addr := func(b []byte) netip.Addr {
		switch {
		case len(b) >= 16 && flags&4 != 0:
			return netip.AddrFrom16([16]byte(b[:16]))
		case len(b) >= 4:
			return netip.AddrFrom4([4]byte(b[:4]))
		}
		return netip.Addr{}
	}
	if a := addr(src); a.IsValid() {
		h.Src = netip.AddrPortFrom(a, sport)
	}
	if a := addr(dst); a.IsValid() {
		h.Dst = netip.AddrPortFrom(a, dport)
	}
	// tlvs: repeated (type, len byte, value...).
	for len(tlvs) >= 2 {
		t, l := TLVType(tlvs[0]), int(tlvs[1])
		tlvs = tlvs[2:]
		if l > len(tlvs) {
			l = len(tlvs)
		}
		h.TLVs = append(h.TLVs, TLV{Type: t, Value: tlvs[:l]})
		tlvs = tlvs[l:]
	}
	return h
}

// expectAfterRoundTrip is what a reader must return for h, per the writer's documented rules.
func expectAfterRoundTrip(h *Header) *Header {
	if h.Local {
		return &Header{Local: true}
	}
	if !h.Src.IsValid() || !h.Dst.IsValid() {
		return &Header{}
	}
	e := *h
	s, d := h.Src.Addr(), h.Dst.Addr()
	if s.Unmap().Is4() && d.Unmap().Is4() {
		s, d = s.Unmap(), d.Unmap()
	} else {
		s, d = netip.AddrFrom16(s.As16()), netip.AddrFrom16(d.As16())
	}
	e.Src, e.Dst = netip.AddrPortFrom(s, h.Src.Port()), netip.AddrPortFrom(d, h.Dst.Port())
	e.TLVs = nil
	for _, t := range h.TLVs {
		if t.Type == TypeCRC32C {
			t.Value = nil // compared below by type only
		}
		e.TLVs = append(e.TLVs, t)
	}
	return &e
}

func FuzzProxyV2RoundTrip(f *testing.F) {
	f.Add(uint8(0), []byte{10, 0, 0, 1}, []byte{10, 0, 0, 2}, uint16(1234), uint16(22), []byte{})
	f.Add(uint8(4), bytes.Repeat([]byte{0x20}, 16), bytes.Repeat([]byte{0xfe}, 16), uint16(1), uint16(443), []byte{2, 3, 'a', 'b', 'c', 3, 0})
	f.Add(uint8(1), []byte{1, 2, 3, 4}, []byte{}, uint16(0), uint16(0), []byte{4, 0})
	f.Add(uint8(2), []byte{1, 2, 3, 4}, []byte{5, 6, 7, 8}, uint16(53), uint16(53), []byte{0x20, 5, 1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, flags uint8, src, dst []byte, sport, dport uint16, tlvs []byte) {
		h := headerFromFuzz(flags, src, dst, sport, dport, tlvs)
		b, err := h.AppendV2(nil)
		if err != nil {
			return // the writer refused it (e.g. a malformed SSL value); fine as long as it did not panic
		}
		got, err := ReadV2(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("reader rejected the writer's header %x: %v", b, err)
		}
		h2, n, err := ParseV2(append(b, 0xAA))
		if err != nil || n != len(b) || !equal(h2, got) {
			t.Fatalf("ParseV2 disagrees with ReadV2: n=%d len=%d err=%v", n, len(b), err)
		}
		want := expectAfterRoundTrip(h)
		for i := range got.TLVs {
			if got.TLVs[i].Type == TypeCRC32C {
				got.TLVs[i].Value = nil
			}
		}
		if !equal(got, want) {
			t.Fatalf("round trip\n got %+v\nwant %+v", got, want)
		}
	})
}

func FuzzReadV2(f *testing.F) {
	valid, _ := (&Header{Src: netip.MustParseAddrPort("1.2.3.4:5"), Dst: netip.MustParseAddrPort("5.6.7.8:9"),
		TLVs: []TLV{{TypeCRC32C, nil}, SSL{Client: 7, CN: "x"}.TLV()}}).AppendV2(nil)
	f.Add(valid)
	f.Add([]byte(Signature + "\x20\x00\x00\x00"))
	f.Add([]byte(Signature + "\x21\x31\x00\xd8"))
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		h, err := ReadV2(r)
		if err != nil {
			return
		}
		n := len(b) - r.Len()
		if n != PreambleLen+int(binary.BigEndian.Uint16(b[14:])) {
			t.Fatalf("consumed %d bytes, header says %d", n, PreambleLen+int(binary.BigEndian.Uint16(b[14:])))
		}
		// A header the reader accepted re-encodes to something the reader accepts again, unless it
		// holds what the writer refuses (AF_UNIX).
		if h.Unix {
			return
		}
		out, err := h.AppendV2(nil)
		if err != nil {
			t.Fatalf("re-encoding an accepted header: %v", err)
		}
		if _, err := ReadV2(bytes.NewReader(out)); err != nil {
			t.Fatalf("re-encoded header rejected: %v", err)
		}
	})
}
