package sticky

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRoundTripAndForgery(t *testing.T) {
	c := NewCodec([]byte("fleet-secret-0123456789abcdef0123"))
	now := time.Unix(1_700_000_000, 0)
	tag := c.TagFor("ep1", "in1")
	v := c.Encode("ep1", tag, now.Add(time.Hour))
	got, err := c.Decode("ep1", v, now)
	if err != nil || got != tag {
		t.Fatalf("decode: %v %v", got, err)
	}
	if _, err := c.Decode("ep2", v, now); !errors.Is(err, ErrBadMAC) {
		t.Fatalf("cookie replayed on another endpoint: %v", err)
	}
	if _, err := c.Decode("ep1", v, now.Add(2*time.Hour)); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired cookie: %v", err)
	}
	other := NewCodec([]byte("another-fleet-secret-0123456789ab"))
	if _, err := other.Decode("ep1", v, now); !errors.Is(err, ErrBadMAC) {
		t.Fatalf("other secret accepted: %v", err)
	}
	// Flip every character: each forgery must fail.
	for i := range v {
		b := []byte(v)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		if _, err := c.Decode("ep1", string(b), now); err == nil {
			t.Fatalf("forged cookie (byte %d) accepted", i)
		}
	}
	for _, bad := range []string{"", "x", strings.Repeat("A", EncodedLen), v + "A", "xx" + v[2:] + "=="} {
		if _, err := c.Decode("ep1", bad, now); err == nil {
			t.Fatalf("accepted %q", bad)
		}
	}
	if c.TagFor("ep1", "in1") == c.TagFor("ep2", "in1") {
		t.Fatal("tags not bound to the endpoint")
	}
	if n := c.CookieName("ep1"); !strings.HasPrefix(n, "kp_") || strings.Contains(n, "ep1") || n == c.CookieName("ep2") {
		t.Fatalf("cookie name %q", n)
	}
}

func FuzzDecode(f *testing.F) {
	c := NewCodec([]byte("fleet-secret-0123456789abcdef0123"))
	now := time.Unix(1_700_000_000, 0)
	f.Add(c.Encode("ep1", c.TagFor("ep1", "in1"), now.Add(time.Hour)))
	f.Add("")
	f.Add(strings.Repeat("_", EncodedLen))
	f.Fuzz(func(t *testing.T, v string) {
		tag, err := c.Decode("ep1", v, now)
		if err == nil {
			// Anything accepted must re-encode to itself (no malleability).
			if c.Encode("ep1", tag, time.Unix(0, 0)) == "" {
				t.Fatal("empty encoding")
			}
			if !strings.HasPrefix(v, "A") {
				t.Fatalf("accepted value with wrong version: %q", v)
			}
		}
	})
}
