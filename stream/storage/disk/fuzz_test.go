package disk

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/kinesis-network/portal/stream/storage"
)

// FuzzDecodeRecord feeds arbitrary bytes to the record decoder, which reads what a crash or a bad
// disk left in a segment: it must never panic or read out of bounds, must classify every failure
// as torn or corrupt, and whatever it accepts must survive re-encoding.
func FuzzDecodeRecord(f *testing.F) {
	seeds := []storage.Record{
		{Arrival: time.Unix(1_700_000_000, 5), PartitionKey: "pk", Data: []byte("hello")},
		{},
		{Arrival: time.Unix(0, 1), PartitionKey: "ключ", ExplicitHashKey: "340282366920938463463374607431768211455", Data: bytes.Repeat([]byte{0xff}, 300)},
	}
	for i, r := range seeds {
		fr := appendFrame(nil, uint64(i)*1_000_003, &r)
		f.Add(fr)
		f.Add(fr[:len(fr)-1])
		f.Add(fr[:frameHeaderSize])
		f.Add(append(fr, fr...))
		bad := bytes.Clone(fr)
		bad[len(bad)-1] ^= 1
		f.Add(bad)
	}
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Add([]byte{18, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		fm, n, err := decodeRecord(b)
		if err != nil {
			if !errors.Is(err, errTorn) && !errors.Is(err, errCorrupt) {
				t.Fatalf("error %v is neither torn nor corrupt", err)
			}
			return
		}
		if n < frameHeaderSize+minBodySize || n > len(b) {
			t.Fatalf("frame length %d of %d bytes", n, len(b))
		}
		var arena []byte
		r := fm.record(&arena)
		again := appendFrame(nil, fm.index, &r)
		fm2, n2, err := decodeRecord(again)
		if err != nil || n2 != len(again) {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if fm2.index != fm.index || fm2.arrival != fm.arrival || !bytes.Equal(fm2.pk, fm.pk) ||
			!bytes.Equal(fm2.ehk, fm.ehk) || !bytes.Equal(fm2.data, fm.data) {
			t.Fatalf("round trip changed the record: %+v vs %+v", fm2, fm)
		}
		if r.Size() != fm.size() {
			t.Fatalf("size %d, want %d", fm.size(), r.Size())
		}
	})
}

// FuzzDecodeIndex does the same for index side files, which are read on open.
func FuzzDecodeIndex(f *testing.F) {
	s := &segment{base: 10, next: 20, size: 5000, firstArrival: 1, lastArrival: 9,
		idx: []indexEntry{{10, 1, segHeaderSize}, {15, 4, 2000}}}
	good := encodeIndex(s)
	f.Add(good, int64(5000))
	f.Add(good[:len(good)-3], int64(5000))
	f.Add([]byte("KPX1"), int64(0))
	f.Fuzz(func(t *testing.T, b []byte, size int64) {
		if s, ok := decodeIndex(b, "x.seg", 10, size); ok {
			if s.size != size || s.base != 10 || len(s.idx) == 0 || s.next <= s.base {
				t.Fatalf("accepted an inconsistent index: %+v", s)
			}
		}
	})
}
