package httprelay

import "strings"

// Prefix is the path prefix of relay URLs.
const Prefix = "/relay/"

// KeyLen is the length of an access key: 32 random bytes in unpadded base64url.
const KeyLen = 43

// ParsePath splits an escaped request path "/relay/<key>/<rest>" into the key and the rest, which
// always starts with "/" ("/relay/<key>" gives "/"). ok is false when the path is not a relay path or
// the key is not KeyLen base64url characters.
func ParsePath(escaped string) (key, rest string, ok bool) {
	if !strings.HasPrefix(escaped, Prefix) {
		return "", "", false
	}
	s := escaped[len(Prefix):]
	i := strings.IndexByte(s, '/')
	if i < 0 {
		key, rest = s, "/"
	} else {
		key, rest = s[:i], s[i:]
	}
	if len(key) != KeyLen {
		return "", "", false
	}
	for j := 0; j < len(key); j++ {
		c := key[j]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return "", "", false
		}
	}
	return key, rest, true
}
