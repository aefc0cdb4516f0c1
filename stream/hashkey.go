package stream

import (
	"crypto/md5"
	"encoding/binary"
	"math/big"
	"math/bits"
)

// hashKey is a point of the 128-bit hash-key space, 0 to 2^128-1.
type hashKey struct{ hi, lo uint64 }

var maxHashKey = hashKey{^uint64(0), ^uint64(0)}

// partitionHash maps a partition key to its hash key: the MD5 digest read as a big-endian integer.
func partitionHash(partitionKey string) hashKey {
	sum := md5.Sum([]byte(partitionKey))
	return hashKey{binary.BigEndian.Uint64(sum[:8]), binary.BigEndian.Uint64(sum[8:])}
}

// parseHashKey parses a decimal hash key. ok is false unless s is a decimal integer in [0, 2^128-1].
func parseHashKey(s string) (hashKey, bool) {
	if s == "" || len(s) > 39 {
		return hashKey{}, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return hashKey{}, false
		}
	}
	var b big.Int
	if _, ok := b.SetString(s, 10); !ok || b.BitLen() > 128 {
		return hashKey{}, false
	}
	return hashKeyFromBig(&b), true
}

func hashKeyFromBig(b *big.Int) hashKey {
	var buf [16]byte
	b.FillBytes(buf[:])
	return hashKey{binary.BigEndian.Uint64(buf[:8]), binary.BigEndian.Uint64(buf[8:])}
}

func (h hashKey) big() *big.Int {
	var buf [16]byte
	binary.BigEndian.PutUint64(buf[:8], h.hi)
	binary.BigEndian.PutUint64(buf[8:], h.lo)
	return new(big.Int).SetBytes(buf[:])
}

// String renders h in decimal, as the API does.
func (h hashKey) String() string {
	if h.hi == 0 {
		return new(big.Int).SetUint64(h.lo).String()
	}
	return h.big().String()
}

func (h hashKey) cmp(o hashKey) int {
	switch {
	case h.hi < o.hi:
		return -1
	case h.hi > o.hi:
		return 1
	case h.lo < o.lo:
		return -1
	case h.lo > o.lo:
		return 1
	}
	return 0
}

func (h hashKey) add1() hashKey {
	lo, c := bits.Add64(h.lo, 1, 0)
	return hashKey{h.hi + c, lo}
}

func (h hashKey) sub1() hashKey {
	lo, b := bits.Sub64(h.lo, 1, 0)
	return hashKey{h.hi - b, lo}
}

// mid returns the midpoint of [h, o], rounded up so that [h, mid-1] and [mid, o] are both non-empty
// when o > h.
func (h hashKey) mid(o hashKey) hashKey {
	s := new(big.Int).Add(h.big(), o.big())
	s.Add(s, big.NewInt(1))
	s.Rsh(s, 1)
	return hashKeyFromBig(s)
}

// uniformRanges splits the key space into n ranges the way the service does: range i starts at
// i*floor(2^128/n) and the last range ends at 2^128-1.
func uniformRanges(n int) [][2]hashKey {
	space := new(big.Int).Lsh(big.NewInt(1), 128)
	step := new(big.Int).Div(space, big.NewInt(int64(n)))
	out := make([][2]hashKey, n)
	for i := range n {
		start := new(big.Int).Mul(step, big.NewInt(int64(i)))
		out[i][0] = hashKeyFromBig(start)
		if i > 0 {
			out[i-1][1] = out[i][0].sub1()
		}
	}
	out[n-1][1] = maxHashKey
	return out
}
