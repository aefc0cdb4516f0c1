package httprelay_test

import (
	"strings"
	"testing"

	"github.com/kinesis-network/portal/gateway/httprelay"
)

const goodKey = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCdE" // 43 base64url characters

func TestParsePath(t *testing.T) {
	tests := []struct {
		name, in  string
		key, rest string
		ok        bool
	}{
		{"key only", "/relay/" + goodKey, goodKey, "/", true},
		{"key and slash", "/relay/" + goodKey + "/", goodKey, "/", true},
		{"key and path", "/relay/" + goodKey + "/a/b", goodKey, "/a/b", true},
		{"escapes kept", "/relay/" + goodKey + "/a%2Fb%20c", goodKey, "/a%2Fb%20c", true},
		{"double slash kept", "/relay/" + goodKey + "//x", goodKey, "//x", true},
		{"key-like rest", "/relay/" + goodKey + "/" + goodKey, goodKey, "/" + goodKey, true},
		{"empty", "", "", "", false},
		{"root", "/", "", "", false},
		{"prefix only", "/relay/", "", "", false},
		{"prefix without slash", "/relay", "", "", false},
		{"case matters", "/Relay/" + goodKey, "", "", false},
		{"not at start", "/x/relay/" + goodKey, "", "", false},
		{"short key", "/relay/" + goodKey[:42], "", "", false},
		{"long key", "/relay/" + goodKey + "A", "", "", false},
		{"long key then path", "/relay/" + goodKey + "A/x", "", "", false},
		{"std base64 plus", "/relay/" + goodKey[:42] + "+", "", "", false},
		{"std base64 slash splits the key", "/relay/" + goodKey[:21] + "/" + goodKey[22:], "", "", false},
		{"padding", "/relay/" + goodKey[:42] + "=", "", "", false},
		{"percent-encoded key", "/relay/%41" + goodKey[3:], "", "", false},
		{"dot", "/relay/" + goodKey[:42] + ".", "", "", false},
		{"non-ASCII", "/relay/" + goodKey[:41] + "é", "", "", false},
		{"query is not part of the path", "/relay/" + goodKey + "?x", "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key, rest, ok := httprelay.ParsePath(tc.in)
			if ok != tc.ok || key != tc.key || rest != tc.rest {
				t.Fatalf("ParsePath(%q) = %q, %q, %v; want %q, %q, %v", tc.in, key, rest, ok, tc.key, tc.rest, tc.ok)
			}
		})
	}
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{
		"", "/", "/relay", "/relay/", "/relay//", "/relay/" + goodKey, "/relay/" + goodKey + "/",
		"/relay/" + goodKey + "/a/b?c", "/relay/" + goodKey + "x", "/relay/" + goodKey[:42],
		"/relay/" + strings.Repeat("_", 43) + "/%2F", "/relay/" + strings.Repeat("-", 43) + "//",
		"/relay/" + goodKey[:40] + "%41", "\x00/relay/" + goodKey,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		key, rest, ok := httprelay.ParsePath(in)
		if !ok {
			if key != "" || rest != "" {
				t.Fatalf("not ok but returned %q, %q", key, rest)
			}
			return
		}
		if len(key) != httprelay.KeyLen {
			t.Fatalf("key %q has %d characters", key, len(key))
		}
		for _, c := range key {
			if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				t.Fatalf("key %q has %q, not base64url", key, c)
			}
		}
		if !strings.HasPrefix(rest, "/") {
			t.Fatalf("rest %q does not start with /", rest)
		}
		if whole := httprelay.Prefix + key + rest; whole != in && in != httprelay.Prefix+key {
			t.Fatalf("%q does not reconstruct %q", whole, in)
		}
		if in == httprelay.Prefix+key && rest != "/" {
			t.Fatalf("bare key path gave rest %q", rest)
		}
	})
}
