package httprelay

import (
	"net/http"
	"testing"
)

const testPrefix = "/relay/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

func TestRewriteLocation(t *testing.T) {
	const backend, client = "10.0.0.5:8080", "z1.r1.portal.example.com"
	tests := []struct {
		name, in, want string
	}{
		{"absolute path", "/login?next=%2Fa", testPrefix + "/login?next=%2Fa"},
		{"root", "/", testPrefix + "/"},
		{"already under prefix", testPrefix + "/x", testPrefix + "/x"},
		{"exactly the prefix", testPrefix, testPrefix},
		{"other key's prefix is a backend path", "/relay/BBBB/x", testPrefix + "/relay/BBBB/x"},
		{"relative reference", "next/page", "next/page"},
		{"dot relative", "../up", "../up"},
		{"query only", "?page=2", "?page=2"},
		{"fragment only", "#top", "#top"},
		{"protocol-relative other host", "//evil.example/x", "//evil.example/x"},
		{"backend absolute http", "http://" + backend + "/a/b?c=d", "https://" + client + testPrefix + "/a/b?c=d"},
		{"backend absolute https", "https://" + backend + "/a", "https://" + client + testPrefix + "/a"},
		{"backend without path", "http://" + backend, "https://" + client + testPrefix + "/"},
		{"backend with query only", "http://" + backend + "?q=1", "https://" + client + testPrefix + "/?q=1"},
		{"backend host case-insensitive", "http://10.0.0.5:8080/A", "https://" + client + testPrefix + "/A"},
		{"client host without prefix", "https://" + client + "/done", "https://" + client + testPrefix + "/done"},
		{"client host with prefix", "https://" + client + testPrefix + "/done", "https://" + client + testPrefix + "/done"},
		{"client host exactly the prefix", "https://" + client + testPrefix, "https://" + client + testPrefix},
		{"other host", "https://accounts.example.org/oauth?x=1", "https://accounts.example.org/oauth?x=1"},
		{"backend name prefix is another host", "http://10.0.0.5:80801/x", "http://10.0.0.5:80801/x"},
		{"other scheme", "mailto:a@example.com", "mailto:a@example.com"},
		{"empty", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := rewriteLocation(tc.in, testPrefix, backend, client); got != tc.want {
				t.Fatalf("rewriteLocation(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestRewriteCookiePath(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"path prefixed", "sid=1; Path=/app; HttpOnly", "sid=1; Path=" + testPrefix + "/app; HttpOnly"},
		{"root path becomes the prefix", "sid=1; Path=/", "sid=1; Path=" + testPrefix},
		{"lower-case attribute", "sid=1; path=/x", "sid=1; Path=" + testPrefix + "/x"},
		{"already under prefix", "sid=1; Path=" + testPrefix + "/x", "sid=1; Path=" + testPrefix + "/x"},
		{"exactly the prefix", "sid=1; Path=" + testPrefix, "sid=1; Path=" + testPrefix},
		{"domain dropped", "sid=1; Domain=backend.internal; Path=/a; Secure", "sid=1; Path=" + testPrefix + "/a; Secure"},
		{"no path: scoped to the endpoint", "sid=1; HttpOnly", "sid=1; HttpOnly; Path=" + testPrefix},
		{"bare cookie", "sid=1", "sid=1; Path=" + testPrefix},
		{"empty path attribute", "sid=1; Path=", "sid=1; Path=" + testPrefix},
		{"relative path attribute", "sid=1; Path=rel", "sid=1; Path=" + testPrefix},
		{"expires with comma kept", "a=b; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/", "a=b; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=" + testPrefix},
		{"value with equals", "tok=a=b==; Path=/p", "tok=a=b==; Path=" + testPrefix + "/p"},
		{"samesite kept", "s=1; SameSite=Strict; Path=/", "s=1; SameSite=Strict; Path=" + testPrefix},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := rewriteCookiePath(tc.in, testPrefix)
			if got != tc.want {
				t.Fatalf("rewriteCookiePath(%q) = %q, want %q", tc.in, got, tc.want)
			}
			// Whatever the backend sent, the browser must scope the cookie to this endpoint.
			c, err := http.ParseSetCookie(got)
			if err != nil {
				t.Fatalf("rewritten cookie does not parse: %v", err)
			}
			if c.Path != testPrefix && (len(c.Path) <= len(testPrefix) || c.Path[:len(testPrefix)+1] != testPrefix+"/") {
				t.Fatalf("cookie path %q escapes the endpoint prefix", c.Path)
			}
			if c.Domain != "" {
				t.Fatalf("cookie keeps domain %q", c.Domain)
			}
		})
	}
}

func TestRemoveCookie(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"only ours", []string{"kp_x=1"}, nil},
		{"ours among others", []string{"a=1; kp_x=2; b=3"}, []string{"a=1; b=3"}},
		{"several lines", []string{"a=1", "kp_x=2", "b=3"}, []string{"a=1; b=3"}},
		{"name prefix is another cookie", []string{"kp_xy=1; kp_x=2"}, []string{"kp_xy=1"}},
		{"none", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hd := http.Header{}
			for _, v := range tc.in {
				hd.Add("Cookie", v)
			}
			removeCookie(hd, "kp_x")
			got := hd.Values("Cookie")
			if len(got) != len(tc.want) || (len(got) > 0 && got[0] != tc.want[0]) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestStatusClass(t *testing.T) {
	for code, want := range map[int]string{101: "1xx", 200: "2xx", 302: "3xx", 404: "4xx", 499: "4xx", 503: "5xx", 0: "0", 99: "99", 600: "600"} {
		if got := class(code); got != want {
			t.Errorf("class(%d) = %q, want %q", code, got, want)
		}
	}
}
