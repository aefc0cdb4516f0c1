package stream

import (
	"fmt"
	"math/big"
	"strconv"
	"time"
)

// Sequence numbers are 56-digit decimal strings, as the service's. Read as an integer and written in
// hexadecimal they have 47 digits laid out like the service's current ("version 2") numbers:
//
//	2 | shard creation time, 9 hex digits of Unix seconds | shard index & 0xf, 1 digit |
//	sequence index, 16 digits (top bit clear) | 00 | shard creation time again, 9 digits |
//	shard index, 8 digits | 2
//
// The value always lies in [2^185, 1.5*2^185), so it always has 56 decimal digits. Only the sequence
// index varies within a shard, and it is the most significant varying field, so sequence numbers are
// strictly increasing in the index. The sequence index of a record is its storage index plus one;
// index 0 is the shard's StartingSequenceNumber, which no record carries. AFTER_SEQUENCE_NUMBER of the
// starting number therefore reads from the first record, and a continuation number exists before any
// record was written.

// seqNum identifies a position in a shard.
type seqNum struct {
	created int64  // shard creation time, Unix seconds
	shard   uint32 // shard index
	seqIx   uint64 // storage index + 1; 0 is the shard's starting number
}

const maxSeqIx = 1<<63 - 1

var (
	seqMin = new(big.Int).Lsh(big.NewInt(1), 185)
	seqMax = new(big.Int).Mul(seqMin, big.NewInt(3)) // exclusive bound of 1.5*2^185, doubled
)

func init() { seqMax.Rsh(seqMax, 1) }

// String renders the 56-digit decimal form.
func (s seqNum) String() string {
	// Pack the 188 bits (47 hex digits) into 24 bytes, most significant first, then print in decimal.
	var buf [24]byte
	bit := 192 - 188 // leading zero bits
	put := func(v uint64, n int) {
		for i := n - 1; i >= 0; i-- {
			if v>>uint(i)&1 == 1 {
				buf[bit/8] |= 0x80 >> uint(bit%8)
			}
			bit++
		}
	}
	created := uint64(s.created) & 0xfffffffff
	put(2, 4)
	put(created, 36)
	put(uint64(s.shard&0xf), 4)
	put(s.seqIx&maxSeqIx, 64)
	put(0, 8)
	put(created, 36)
	put(uint64(s.shard), 32)
	put(2, 4)
	return new(big.Int).SetBytes(buf[:]).String()
}

// parseSeqNum decodes a sequence number produced by seqNum.String.
func parseSeqNum(str string) (seqNum, error) {
	if len(str) != 56 {
		return seqNum{}, fmt.Errorf("sequence number %q: not 56 digits", str)
	}
	var b big.Int
	if _, ok := b.SetString(str, 10); !ok {
		return seqNum{}, fmt.Errorf("sequence number %q: not a decimal number", str)
	}
	if b.Cmp(seqMin) < 0 || b.Cmp(seqMax) >= 0 {
		return seqNum{}, fmt.Errorf("sequence number %q: out of range", str)
	}
	hex := b.Text(16)
	if len(hex) != 47 || hex[0] != '2' || hex[46] != '2' || hex[27:29] != "00" {
		return seqNum{}, fmt.Errorf("sequence number %q: unknown layout", str)
	}
	created, err1 := strconv.ParseUint(hex[1:10], 16, 64)
	nibble, err2 := strconv.ParseUint(hex[10:11], 16, 8)
	seqIx, err3 := strconv.ParseUint(hex[11:27], 16, 64)
	created2, err4 := strconv.ParseUint(hex[29:38], 16, 64)
	shard, err5 := strconv.ParseUint(hex[38:46], 16, 32)
	for _, err := range []error{err1, err2, err3, err4, err5} {
		if err != nil {
			return seqNum{}, fmt.Errorf("sequence number %q: %w", str, err)
		}
	}
	if created != created2 || nibble != shard&0xf || seqIx > maxSeqIx {
		return seqNum{}, fmt.Errorf("sequence number %q: inconsistent fields", str)
	}
	return seqNum{created: int64(created), shard: uint32(shard), seqIx: seqIx}, nil
}

var (
	seqPow124 = new(big.Int).Lsh(big.NewInt(1), 124)
	seqPow129 = new(big.Int).Lsh(big.NewInt(1), 129)
)

// validOrderingSeq reports whether s (already matching the SequenceNumber pattern) is a sequence number
// the service accepts as SequenceNumberForOrdering: one of its layouts (the 56-digit "version 2" numbers
// this package produces, the older version 1, or the short version 0 numbers), with the sequence and
// shard indexes in range and no time in the future. It need not come from the same stream.
func validOrderingSeq(s string, now time.Time) bool {
	var v big.Int
	if _, ok := v.SetString(s, 10); !ok {
		return false
	}
	if v.Cmp(seqPow124) < 0 {
		v.Add(&v, seqPow124)
	}
	hexOf := func(from, to int, h string) (uint64, bool) {
		if to > len(h) {
			return 0, false
		}
		n, err := strconv.ParseUint(h[from:to], 16, 64)
		return n, err == nil
	}
	const maxCreateSecs = 16025175000
	h := v.Text(16)
	if v.Cmp(seqPow129) < 0 { // version 0
		secs, ok := hexOf(1, 10, h)
		return ok && secs < maxCreateSecs
	}
	if v.Cmp(seqMin) <= 0 || v.Cmp(seqMax) >= 0 {
		return false
	}
	future := func(secs uint64) bool { return int64(secs) > now.Unix() }
	switch h[len(h)-1] {
	case '2':
		secs, ok := hexOf(29, 38, h)
		return ok && h[11] < '8' && h[38] < '8' && !future(secs)
	case '1':
		secs, ok := hexOf(13, 22, h)
		return ok && !future(secs)
	case '0':
		secs, ok := hexOf(1, 10, h)
		return ok && secs < maxCreateSecs
	}
	return false
}
