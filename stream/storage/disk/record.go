package disk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"time"

	"github.com/kinesis-network/portal/stream/storage"
)

// A record frame in a segment file (all integers little-endian):
//
//	u32  body length
//	u32  CRC32C (Castagnoli) of the length field followed by the body
//	body:
//	  u64      index
//	  i64      arrival, unix nanoseconds (math.MinInt64 for the zero time)
//	  uvarint  len(partition key), partition key
//	  uvarint  len(explicit hash key), explicit hash key
//	  data     (the rest of the body)
const (
	frameHeaderSize = 8
	minBodySize     = 8 + 8 + 1 + 1
	// maxBodySize bounds one record's frame so that a corrupt length never makes us read or
	// allocate absurd amounts. Far above the service's 10 MiB record limit.
	maxBodySize = 1 << 28
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errCorrupt marks bytes that are not a valid frame. errTorn marks a frame cut short by the end of
// the data, as a crash during a write leaves it.
var (
	errCorrupt = errors.New("disk: corrupt record")
	errTorn    = fmt.Errorf("disk: torn record: %w", io.ErrUnexpectedEOF)
)

// frame is a decoded record whose byte fields alias the buffer it was decoded from.
type frame struct {
	index   uint64
	arrival int64
	pk, ehk []byte
	data    []byte
}

// size is the record's accounted size, as storage.Record.Size.
func (f *frame) size() int { return len(f.data) + len(f.pk) }

// record copies f into a storage.Record, taking Data from arena (see carve).
func (f *frame) record(arena *[]byte) storage.Record {
	return storage.Record{
		Index:           f.index,
		Arrival:         fromNanos(f.arrival),
		PartitionKey:    string(f.pk),
		ExplicitHashKey: string(f.ehk),
		Data:            carve(arena, f.data),
	}
}

// carve copies b into the spare capacity of *arena (allocating a new arena chunk when it does not
// fit) and returns the copy, capped so that appending to it never touches a neighbour. Reads copy
// many small records this way with few allocations.
func carve(arena *[]byte, b []byte) []byte {
	const chunk = 64 << 10
	if len(b) == 0 {
		return []byte{}
	}
	if len(b) > chunk/4 {
		return append([]byte(nil), b...)
	}
	a := *arena
	if cap(a)-len(a) < len(b) {
		a = make([]byte, 0, chunk)
	}
	n := len(a)
	a = append(a, b...)
	*arena = a
	return a[n:len(a):len(a)]
}

// toNanos converts an arrival time for storage; the zero time gets a sentinel so it round-trips.
func toNanos(t time.Time) int64 {
	if t.IsZero() {
		return math.MinInt64
	}
	return t.UnixNano()
}

// fromNanos is the inverse of toNanos.
func fromNanos(n int64) time.Time {
	if n == math.MinInt64 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// frameSize returns the encoded size of r's frame.
func frameSize(r *storage.Record) int {
	return frameHeaderSize + 16 +
		uvarintLen(len(r.PartitionKey)) + len(r.PartitionKey) +
		uvarintLen(len(r.ExplicitHashKey)) + len(r.ExplicitHashKey) +
		len(r.Data)
}

func uvarintLen(n int) int {
	l := 1
	for n >= 0x80 {
		n >>= 7
		l++
	}
	return l
}

// appendFrame appends r's frame, with the given index, to dst.
func appendFrame(dst []byte, index uint64, r *storage.Record) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	dst = binary.LittleEndian.AppendUint64(dst, index)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(toNanos(r.Arrival)))
	dst = binary.AppendUvarint(dst, uint64(len(r.PartitionKey)))
	dst = append(dst, r.PartitionKey...)
	dst = binary.AppendUvarint(dst, uint64(len(r.ExplicitHashKey)))
	dst = append(dst, r.ExplicitHashKey...)
	dst = append(dst, r.Data...)
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-start-frameHeaderSize))
	binary.LittleEndian.PutUint32(dst[start+4:], frameCRC(dst[start:]))
	return dst
}

// frameCRC computes the checksum of a whole frame (length field and body; the CRC field is skipped).
func frameCRC(f []byte) uint32 {
	crc := crc32.Update(0, castagnoli, f[:4])
	return crc32.Update(crc, castagnoli, f[frameHeaderSize:])
}

// frameLen validates the header at the start of b and returns the frame's total length. It returns
// errTorn if b is too short to hold the header and errCorrupt if the length is impossible.
func frameLen(b []byte) (int, error) {
	if len(b) < frameHeaderSize {
		return 0, errTorn
	}
	n := binary.LittleEndian.Uint32(b)
	if n < minBodySize || n > maxBodySize {
		return 0, fmt.Errorf("%w: body length %d", errCorrupt, n)
	}
	return frameHeaderSize + int(n), nil
}

// decodeRecord decodes the frame at the start of b and returns it with its total length. The
// frame's fields alias b. It returns an error wrapping errTorn when b ends inside the frame and
// errCorrupt when the bytes are not a valid frame (bad length, checksum or field lengths).
func decodeRecord(b []byte) (frame, int, error) {
	n, err := frameLen(b)
	if err != nil {
		return frame{}, 0, err
	}
	if len(b) < n {
		return frame{}, 0, errTorn
	}
	fb := b[:n]
	if got, want := frameCRC(fb), binary.LittleEndian.Uint32(fb[4:]); got != want {
		return frame{}, 0, fmt.Errorf("%w: checksum %08x, want %08x", errCorrupt, got, want)
	}
	body := fb[frameHeaderSize:]
	f := frame{
		index:   binary.LittleEndian.Uint64(body),
		arrival: int64(binary.LittleEndian.Uint64(body[8:])),
	}
	rest := body[16:]
	if f.pk, rest, err = lengthPrefixed(rest); err != nil {
		return frame{}, 0, err
	}
	if f.ehk, rest, err = lengthPrefixed(rest); err != nil {
		return frame{}, 0, err
	}
	f.data = rest
	return f, n, nil
}

// lengthPrefixed splits a uvarint-length-prefixed field off the front of b.
func lengthPrefixed(b []byte) (field, rest []byte, err error) {
	l, k := binary.Uvarint(b)
	if k <= 0 || l > uint64(len(b)-k) {
		return nil, nil, fmt.Errorf("%w: bad field length", errCorrupt)
	}
	end := k + int(l)
	return b[k:end:end], b[end:], nil
}
