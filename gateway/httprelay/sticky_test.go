package httprelay_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kinesis-network/portal/gateway/httprelay"
	"github.com/kinesis-network/portal/gateway/sticky"
	"github.com/kinesis-network/portal/registry"
)

// stickyCookie returns the relay's sticky cookie among resp's Set-Cookie headers, or nil.
func stickyCookie(h *harness, resp *http.Response, endpointID string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == h.codec.CookieName(endpointID) {
			return c
		}
	}
	return nil
}

func TestStickySessions(t *testing.T) {
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			h := newHarness(t, harnessOptions{})
			bes := map[string]*backend{}
			var specs []instanceSpec
			for _, n := range []string{"a", "b", "c"} {
				bes["in_"+n] = newBackend(t, n, nil)
				specs = append(specs, bes["in_"+n].spec())
			}
			ep, key := h.endpoint(func(e *registry.Endpoint) { e.Sticky = registry.Sticky{Enabled: true, TTLSeconds: 600} }, specs...)
			other, otherKey := h.endpoint(func(e *registry.Endpoint) { e.Sticky.Enabled = true }, specs...)
			c := h.client(proto)
			name := h.codec.CookieName(ep.ID)

			// get sends a request with the cookie value (none when ""), checks it was served, and returns
			// the instance that served it and the sticky cookie set in the answer (nil when none).
			get := func(value string, extra ...string) (string, *http.Cookie) {
				t.Helper()
				var hdr []string
				if value != "" {
					hdr = []string{"Cookie", "app=1; " + name + "=" + value + "; theme=dark"}
				}
				resp, b := do(t, c, http.MethodGet, h.url(key, "/"), nil, append(hdr, extra...)...)
				e := decodeEcho(t, resp, b)
				if value != "" {
					if got := e.Header.Get("Cookie"); got != "app=1; theme=dark" {
						t.Fatalf("backend got Cookie %q: the sticky cookie must be removed, others kept", got)
					}
				}
				return "in_" + e.Instance, stickyCookie(h, resp, ep.ID)
			}
			// checkCookie verifies the cookie's attributes and that it names instance.
			checkCookie := func(ck *http.Cookie, instance string) {
				t.Helper()
				if ck == nil {
					t.Fatal("no sticky cookie set")
				}
				if !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteLaxMode || ck.Path != httprelay.Prefix+key || ck.MaxAge != 600 {
					t.Fatalf("cookie attributes: %s", ck.String())
				}
				// The value is a fixed-length opaque token: no address, no instance id.
				if len(ck.Value) != sticky.EncodedLen {
					t.Fatalf("cookie value %q is not an opaque token", ck.Value)
				}
				for _, be := range bes {
					if strings.Contains(ck.Value, be.addr) || strings.Contains(ck.Value, "in_"+be.name) {
						t.Fatalf("cookie %q reveals an instance", ck.Value)
					}
				}
				tag, err := h.codec.Decode(ep.ID, ck.Value, time.Now())
				if err != nil || tag != h.codec.TagFor(ep.ID, instance) {
					t.Fatalf("cookie does not name %s: %v", instance, err)
				}
			}

			first, ck := get("")
			checkCookie(ck, first)
			for range 30 {
				in, again := get(ck.Value)
				if in != first {
					t.Fatalf("sticky client moved from %s to %s", first, in)
				}
				if again != nil {
					t.Fatalf("valid cookie re-issued: %s", again)
				}
			}

			// Forgeries are served and the cookie replaced with a valid one.
			v := []byte(ck.Value)
			v[len(v)/2] ^= 1
			resp, _ := do(t, c, http.MethodGet, h.url(otherKey, "/"), nil)
			otherValue := stickyCookie(h, resp, other.ID).Value
			for name, forged := range map[string]string{
				"flipped bit":          string(v),
				"garbage":              "not-a-cookie",
				"empty-ish":            "x",
				"long":                 strings.Repeat("A", 4000),
				"other endpoint's":     otherValue,
				"expired":              h.codec.Encode(ep.ID, h.codec.TagFor(ep.ID, first), time.Now().Add(-time.Second)),
				"other endpoint's tag": h.codec.Encode(other.ID, h.codec.TagFor(other.ID, first), time.Now().Add(time.Hour)),
			} {
				in, ck := get(forged)
				if ck == nil {
					t.Fatalf("%s cookie not replaced", name)
				}
				checkCookie(ck, in)
			}
			// The other endpoint's cookie under its own name is not even looked at.
			in, ck2 := get("", "Cookie", h.codec.CookieName(other.ID)+"="+otherValue)
			checkCookie(ck2, in)

			// A cookie naming an instance removed from the endpoint is replaced.
			h.update(ep.ID, func(e *registry.Endpoint) {
				var keep []registry.Instance
				for _, in := range e.Instances {
					if in.ID != first {
						keep = append(keep, in)
					}
				}
				e.Instances = keep
			})
			second, ck3 := get(ck.Value)
			if second == first {
				t.Fatalf("served by removed instance %s", first)
			}
			checkCookie(ck3, second)

			// A cookie naming an instance that died is replaced on the request that finds it dead, and
			// the client then sticks to the new instance.
			bes[second].kill()
			third, ck4 := get(ck3.Value)
			if third == second || third == first {
				t.Fatalf("served by %s", third)
			}
			checkCookie(ck4, third)
			for range 5 {
				if in, again := get(ck4.Value); in != third || again != nil {
					t.Fatalf("after failover: served by %s (want %s), cookie re-issued %v", in, third, again != nil)
				}
			}
		})
	}
}
