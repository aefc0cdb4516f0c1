package disk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// A segment file, named "%020d.seg" after the index of its first record, is a 16-byte header
// ("KPS1", u64 first index, u32 CRC32C of the previous 12 bytes) followed by record frames.
const (
	segHeaderSize = 16
	segExt        = ".seg"
	idxExt        = ".idx"
)

var segMagic = [4]byte{'K', 'P', 'S', '1'}

// indexInterval is the spacing in bytes of the sparse index: a record starting at least this far
// past the previous index entry gets an entry, as does the first record of each segment. A read
// decodes at most about this many bytes before the record it wants. The in-memory index costs 24
// bytes per entry, about 0.15% of the data.
const indexInterval = 16 << 10

// indexEntry locates one record.
type indexEntry struct {
	index   uint64
	arrival int64
	off     int64
}

// segment is one segment file of a log. Its fields other than base and path are guarded by the
// log's mu and describe only published (readable) records.
type segment struct {
	base uint64
	path string

	f            *os.File // open for reading while the segment is active; nil once sealed
	next         uint64   // index after the last record
	size         int64    // bytes of header and records
	firstArrival int64    // of the first record; meaningless while next == base
	lastArrival  int64    // of the last record; meaningless while next == base
	idx          []indexEntry
}

func (s *segment) empty() bool { return s.next == s.base }

func segName(base uint64) string { return fmt.Sprintf("%020d%s", base, segExt) }

func idxPath(segPath string) string { return strings.TrimSuffix(segPath, segExt) + idxExt }

// parseSegName returns the base index of a segment file name.
func parseSegName(name string) (uint64, bool) {
	s, ok := strings.CutSuffix(name, segExt)
	if !ok || len(s) != 20 {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

func segHeader(base uint64) []byte {
	h := make([]byte, segHeaderSize)
	copy(h, segMagic[:])
	binary.LittleEndian.PutUint64(h[4:], base)
	binary.LittleEndian.PutUint32(h[12:], crc32.Checksum(h[:12], castagnoli))
	return h
}

// checkSegHeader verifies a segment header against the base index from the file name.
func checkSegHeader(h []byte, base uint64) error {
	if len(h) < segHeaderSize || [4]byte(h[:4]) != segMagic ||
		binary.LittleEndian.Uint32(h[12:]) != crc32.Checksum(h[:12], castagnoli) {
		return fmt.Errorf("%w: bad segment header", errCorrupt)
	}
	if b := binary.LittleEndian.Uint64(h[4:]); b != base {
		return fmt.Errorf("%w: segment header says first index %d, file name %d", errCorrupt, b, base)
	}
	return nil
}

// createSegment durably creates an empty segment file in dir and returns it open for reading and
// writing. A crash may leave the file with a partial header; as the last segment it is then
// rewritten by recovery.
func createSegment(dir string, base uint64) (_ *segment, _ *os.File, err error) {
	path := filepath.Join(dir, segName(base))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("create segment: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(path)
			err = fmt.Errorf("create segment %s: %w", path, err)
		}
	}()
	if _, err := f.Write(segHeader(base)); err != nil {
		return nil, nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, nil, err
	}
	if err := syncDir(dir); err != nil {
		return nil, nil, err
	}
	s := &segment{base: base, path: path, next: base, size: segHeaderSize}
	return s, f, nil
}

// writeIndex writes the index side file of a sealed segment. It is not flushed: a torn or
// missing one is detected and the segment scanned instead.
func writeIndex(s *segment) error {
	return os.WriteFile(idxPath(s.path), encodeIndex(s), 0o644)
}

// readBufPool holds buffers for reading segments.
var readBufPool = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}

const readBufSize = 64 << 10

// frameReader reads the frames of a segment from off up to end, reading ahead in chunks that grow
// from small (a short read of the tail) to the buffer's size (a long scan).
type frameReader struct {
	r      io.ReaderAt
	off    int64 // file offset of buf[pos]
	end    int64
	buf    []byte
	pooled *[]byte
	pos, n int
	chunk  int
}

func newFrameReader(r io.ReaderAt, off, end int64) *frameReader {
	p := readBufPool.Get().(*[]byte)
	return &frameReader{r: r, off: off, end: end, buf: *p, pooled: p, chunk: 32 << 10}
}

// release returns the buffer to the pool; frames returned earlier become invalid.
func (fr *frameReader) release() {
	if fr.pooled != nil {
		readBufPool.Put(fr.pooled)
		fr.pooled, fr.buf = nil, nil
	}
}

// next returns the next whole frame's bytes (valid until the next call) and its file offset. It
// returns io.EOF at end, errTorn if the data ends inside a frame and errCorrupt for an impossible
// length. Checksums are left to decodeRecord.
func (fr *frameReader) next() ([]byte, int64, error) {
	if fr.off >= fr.end {
		return nil, fr.off, io.EOF
	}
	if fr.n-fr.pos < frameHeaderSize {
		if err := fr.fill(frameHeaderSize); err != nil {
			return nil, fr.off, err
		}
	}
	n, err := frameLen(fr.buf[fr.pos:fr.n])
	if err != nil {
		return nil, fr.off, err
	}
	if int64(n) > fr.end-fr.off {
		return nil, fr.off, errTorn
	}
	if fr.n-fr.pos < n {
		if err := fr.fill(n); err != nil {
			return nil, fr.off, err
		}
	}
	b := fr.buf[fr.pos : fr.pos+n]
	off := fr.off
	fr.pos += n
	fr.off += int64(n)
	return b, off, nil
}

// fill makes at least need bytes available at buf[pos:], or returns errTorn if end comes first.
func (fr *frameReader) fill(need int) error {
	avail := fr.n - fr.pos
	if int64(need) > fr.end-fr.off {
		return errTorn
	}
	if need > len(fr.buf) {
		nb := make([]byte, need)
		copy(nb, fr.buf[fr.pos:fr.n])
		fr.release()
		fr.buf = nb
	} else {
		copy(fr.buf, fr.buf[fr.pos:fr.n])
	}
	fr.pos, fr.n = 0, avail
	want := max(need, min(fr.chunk, len(fr.buf)))
	fr.chunk *= 2
	if rem := fr.end - fr.off; int64(want) > rem {
		want = int(rem)
	}
	for fr.n < want {
		k, err := fr.r.ReadAt(fr.buf[fr.n:want], fr.off+int64(fr.n))
		fr.n += k
		if err != nil {
			if errors.Is(err, io.EOF) {
				if fr.n >= need {
					return nil
				}
				return errTorn
			}
			return err
		}
	}
	return nil
}

// scanResult describes the valid records at the front of a segment.
type scanResult struct {
	seg      *segment
	fileSize int64
	err      error // why the scan stopped before fileSize, if it did
}

// scanSegment reads every record of the segment file at path, checking the header, checksums and
// index sequence, and builds the segment's sparse index. The scan stops at the first bad record;
// res.err says why and res.seg.size is where the valid records end.
func scanSegment(path string, base uint64) (res scanResult, err error) {
	f, err := os.Open(path)
	if err != nil {
		return res, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return res, err
	}
	s := &segment{base: base, path: path, next: base, size: segHeaderSize}
	res = scanResult{seg: s, fileSize: st.Size()}
	h := make([]byte, segHeaderSize)
	if _, err := f.ReadAt(h, 0); err != nil {
		if !errors.Is(err, io.EOF) {
			return res, err
		}
		res.err = fmt.Errorf("%w: short segment header", errCorrupt)
		s.size = 0
		return res, nil
	}
	if err := checkSegHeader(h, base); err != nil {
		res.err = err
		s.size = 0
		return res, nil
	}
	fr := newFrameReader(f, segHeaderSize, st.Size())
	defer fr.release()
	lastIdx := int64(-indexInterval)
	for {
		b, off, err := fr.next()
		if err == io.EOF {
			return res, nil
		}
		if err == nil {
			var fm frame
			fm, _, err = decodeRecord(b)
			if err == nil && fm.index != s.next {
				err = fmt.Errorf("%w: index %d, want %d", errCorrupt, fm.index, s.next)
			}
			if err == nil {
				if s.empty() {
					s.firstArrival = fm.arrival
				}
				if off-lastIdx >= indexInterval {
					s.idx = append(s.idx, indexEntry{fm.index, fm.arrival, off})
					lastIdx = off
				}
				s.lastArrival = fm.arrival
				s.next++
				s.size = off + int64(len(b))
				continue
			}
		}
		if errors.Is(err, errTorn) || errors.Is(err, errCorrupt) {
			res.err = fmt.Errorf("at offset %d: %w", off, err)
			return res, nil
		}
		return res, err
	}
}

// An index side file ("%020d.idx", next to its sealed segment) saves rescanning the segment on
// open: "KPX1", u32 CRC32C of the rest, then u64 base, u64 next, i64 size, i64 first arrival,
// i64 last arrival, u32 entry count and the entries (u64 index, i64 arrival, i64 offset). It is
// written without flushing when a segment is sealed; a missing, stale or corrupt one is ignored and
// the segment is scanned instead.
var idxMagic = [4]byte{'K', 'P', 'X', '1'}

func encodeIndex(s *segment) []byte {
	b := make([]byte, 8, 8+44+24*len(s.idx))
	copy(b, idxMagic[:])
	b = binary.LittleEndian.AppendUint64(b, s.base)
	b = binary.LittleEndian.AppendUint64(b, s.next)
	b = binary.LittleEndian.AppendUint64(b, uint64(s.size))
	b = binary.LittleEndian.AppendUint64(b, uint64(s.firstArrival))
	b = binary.LittleEndian.AppendUint64(b, uint64(s.lastArrival))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s.idx)))
	for _, e := range s.idx {
		b = binary.LittleEndian.AppendUint64(b, e.index)
		b = binary.LittleEndian.AppendUint64(b, uint64(e.arrival))
		b = binary.LittleEndian.AppendUint64(b, uint64(e.off))
	}
	binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(b[8:], castagnoli))
	return b
}

// decodeIndex parses an index side file for the segment at path with the given base index and
// file size, rejecting it unless it is intact and consistent with them.
func decodeIndex(b []byte, path string, base uint64, fileSize int64) (*segment, bool) {
	if len(b) < 8+44 || [4]byte(b[:4]) != idxMagic ||
		binary.LittleEndian.Uint32(b[4:]) != crc32.Checksum(b[8:], castagnoli) {
		return nil, false
	}
	le := binary.LittleEndian
	s := &segment{
		base:         le.Uint64(b[8:]),
		path:         path,
		next:         le.Uint64(b[16:]),
		size:         int64(le.Uint64(b[24:])),
		firstArrival: int64(le.Uint64(b[32:])),
		lastArrival:  int64(le.Uint64(b[40:])),
	}
	n := le.Uint32(b[48:])
	rest := b[52:]
	if s.base != base || s.size != fileSize || s.next <= s.base || uint64(len(rest)) != 24*uint64(n) || n == 0 {
		return nil, false
	}
	s.idx = make([]indexEntry, n)
	for i := range s.idx {
		e := rest[24*i:]
		s.idx[i] = indexEntry{le.Uint64(e), int64(le.Uint64(e[8:])), int64(le.Uint64(e[16:]))}
		if i > 0 && (s.idx[i].index <= s.idx[i-1].index || s.idx[i].off <= s.idx[i-1].off) ||
			s.idx[i].index >= s.next || s.idx[i].off >= s.size {
			return nil, false
		}
	}
	if s.idx[0].index != s.base || s.idx[0].off != segHeaderSize {
		return nil, false
	}
	return s, true
}
