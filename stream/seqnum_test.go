package stream

import (
	"fmt"
	"math/big"
	"testing"
)

func TestSeqNumRoundTrip(t *testing.T) {
	cases := []seqNum{
		{created: 1700000000, shard: 0, seqIx: 0},
		{created: 1700000000, shard: 1, seqIx: 1},
		{created: 0xfffffffff, shard: 0xffffffff, seqIx: maxSeqIx},
		{created: 1795562308, shard: 17, seqIx: 123456789},
	}
	for _, c := range cases {
		s := c.String()
		if len(s) != 56 {
			t.Fatalf("%+v: %q is not 56 digits", c, s)
		}
		// Same value as the hexadecimal layout documented in seqnum.go.
		hex := fmt.Sprintf("2%09x%01x%016x00%09x%08x2", uint64(c.created), c.shard&0xf, c.seqIx, uint64(c.created), c.shard)
		want, _ := new(big.Int).SetString(hex, 16)
		if s != want.String() {
			t.Fatalf("%+v: %s, want %s", c, s, want)
		}
		got, err := parseSeqNum(s)
		if err != nil || got != c {
			t.Fatalf("parse %s: %+v %v, want %+v", s, got, err, c)
		}
	}
	a := seqNum{created: 1700000000, shard: 3, seqIx: 41}.String()
	b := seqNum{created: 1700000000, shard: 3, seqIx: 42}.String()
	if a >= b {
		t.Fatalf("not increasing: %s %s", a, b)
	}
	for _, bad := range []string{"", "1", "49680535348009140489814210228268291169138913616586604546x",
		"99999999999999999999999999999999999999999999999999999999", "12345678901234567890123456789012345678901234567890123456"} {
		if _, err := parseSeqNum(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParseSeqNum(f *testing.F) {
	f.Add(seqNum{created: 1700000000, shard: 5, seqIx: 77}.String())
	f.Add("49680535348009140489814210228268291169138913616586604546")
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSeqNum(s)
		if err != nil {
			return
		}
		if n.String() != s {
			t.Fatalf("%q parsed to %+v which renders %q", s, n, n.String())
		}
	})
}
