package disk

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// maxNameLen bounds the file names made by fileName, well under the 255-byte limit of common file
// systems.
const maxNameLen = 200

// fileName encodes an arbitrary string (a stream key, shard id or metadata key) as a file name that
// is safe on every common file system: it starts with 'k', keeps the bytes [a-z0-9._-] and writes
// every other byte as %xx (lower-case hex), so distinct strings get distinct names even on
// case-insensitive file systems and no name is ".", ".." or hidden. A name that would exceed
// maxNameLen keeps a readable prefix and ends in '~' and a 128-bit SHA-256 prefix of the string,
// starting with 'h' instead ('~' never appears in the short form, so the forms cannot collide).
func fileName(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 1)
	b.WriteByte('k')
	const hexdigits = "0123456789abcdef"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexdigits[c>>4])
		b.WriteByte(hexdigits[c&15])
	}
	name := b.String()
	if len(name) <= maxNameLen {
		return name
	}
	prefix := name[1:100]
	if i := strings.LastIndexByte(prefix, '%'); i >= 0 && i > len(prefix)-3 {
		prefix = prefix[:i] // do not cut an escape in half
	}
	sum := sha256.Sum256([]byte(s))
	return "h" + prefix + "~" + hex.EncodeToString(sum[:16])
}
