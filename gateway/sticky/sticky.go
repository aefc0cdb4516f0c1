// Package sticky encodes and verifies the HTTPS relay's sticky-session cookie.
//
// The cookie names an instance opaquely: it carries a tag derived by HMAC from the endpoint id and
// the instance id (never the instance's address), an expiry, and a MAC over both bound to the endpoint,
// all under a secret that every portal of a fleet shares. Any portal can verify a cookie without shared
// state; a cookie cannot be forged, replayed against another endpoint, or pointed at another endpoint's
// instance.
package sticky

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash"
	"sync"
	"time"
)

// Tag is the opaque per-(endpoint, instance) name carried in a cookie.
type Tag [8]byte

const (
	macLen   = 16
	rawLen   = 1 + len(Tag{}) + 8 + macLen // version, tag, expiry (unix seconds), mac
	version1 = 1
)

// EncodedLen is the length of an encoded cookie value.
var EncodedLen = base64.RawURLEncoding.EncodedLen(rawLen)

// Errors returned by Decode.
var (
	ErrMalformed = errors.New("sticky: malformed cookie")
	ErrBadMAC    = errors.New("sticky: cookie signature mismatch")
	ErrExpired   = errors.New("sticky: cookie expired")
)

// Codec signs and verifies cookies for one fleet secret. Safe for concurrent use.
type Codec struct {
	secret []byte
	macs   sync.Pool // of hash.Hash: HMAC-SHA256 under secret, reset before use
}

// NewCodec returns a codec for secret (at least 32 random bytes are recommended).
func NewCodec(secret []byte) *Codec {
	c := &Codec{secret: append([]byte(nil), secret...)}
	c.macs.New = func() any { return hmac.New(sha256.New, c.secret) }
	return c
}

// sum returns HMAC-SHA256(secret, parts...) into out, reusing pooled HMAC state.
func (c *Codec) sum(out *[sha256.Size]byte, parts ...[]byte) {
	m := c.macs.Get().(hash.Hash)
	m.Reset()
	for _, p := range parts {
		m.Write(p)
	}
	m.Sum(out[:0])
	c.macs.Put(m)
}

// CookieName returns the cookie name for an endpoint: stable, short, and without the endpoint id.
func (c *Codec) CookieName(endpointID string) string {
	var sum [sha256.Size]byte
	c.sum(&sum, []byte("name\x00"), []byte(endpointID))
	return "kp_" + base64.RawURLEncoding.EncodeToString(sum[:6])
}

// TagFor returns the opaque tag of an instance of an endpoint.
func (c *Codec) TagFor(endpointID, instanceID string) Tag {
	var sum [sha256.Size]byte
	c.sum(&sum, []byte("tag\x00"), []byte(endpointID), []byte{0}, []byte(instanceID))
	var t Tag
	copy(t[:], sum[:])
	return t
}

func (c *Codec) mac(endpointID string, body []byte, out *[sha256.Size]byte) []byte {
	c.sum(out, []byte("mac\x00"), []byte(endpointID), []byte{0}, body)
	return out[:macLen]
}

// Encode returns the cookie value naming tag on endpointID, valid until expires.
func (c *Codec) Encode(endpointID string, tag Tag, expires time.Time) string {
	var raw [rawLen]byte
	raw[0] = version1
	copy(raw[1:], tag[:])
	binary.BigEndian.PutUint64(raw[1+len(tag):], uint64(expires.Unix()))
	var sum [sha256.Size]byte
	copy(raw[rawLen-macLen:], c.mac(endpointID, raw[:rawLen-macLen], &sum))
	return base64.RawURLEncoding.EncodeToString(raw[:])
}

// Decode verifies value for endpointID at now and returns the instance tag it names.
func (c *Codec) Decode(endpointID, value string, now time.Time) (Tag, error) {
	var t Tag
	if len(value) != EncodedLen {
		return t, ErrMalformed
	}
	var raw [rawLen + 2]byte // decoding may write up to 2 bytes past rawLen on bad input
	n, err := base64.RawURLEncoding.Decode(raw[:], []byte(value))
	if err != nil || n != rawLen || raw[0] != version1 {
		return t, ErrMalformed
	}
	var sum [sha256.Size]byte
	if !hmac.Equal(raw[rawLen-macLen:rawLen], c.mac(endpointID, raw[:rawLen-macLen], &sum)) {
		return t, ErrBadMAC
	}
	exp := int64(binary.BigEndian.Uint64(raw[1+len(t):]))
	if now.Unix() >= exp {
		return t, ErrExpired
	}
	copy(t[:], raw[1:])
	return t, nil
}
