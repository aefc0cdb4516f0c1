package disk

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kinesis-network/portal/stream/storage"
)

// diskLog is the storage.Log of one shard: a directory of segment files. Locks, always taken in
// this order: appendMu (serialises writers: Append, Trim, sealing, Close), syncMu (the group
// commit), mu (the state readers see).
type diskLog struct {
	b           *Backend
	stream      string
	shard       string
	dir         string
	name        string // for messages
	policy      SyncPolicy
	segBytes    int64
	segDuration int64        // nanoseconds; <= 0 means no time-based sealing
	syncs       atomic.Int64 // flushes done, for tests

	// The writer's state, guarded by appendMu.
	appendMu sync.Mutex
	wclosed  bool
	active   *segment
	wf       *os.File
	wsize    int64  // bytes written to the active segment
	wnext    uint64 // index of the next record written
	wFirst   int64  // arrival of the active segment's first written record
	wLast    int64  // arrival of the last written record
	wIdxOff  int64  // offset of the active segment's last index entry
	enc      []byte // reused encoding buffer

	// The group commit, guarded by syncMu.
	syncMu   sync.Mutex
	syncCond sync.Cond
	syncing  bool     // a flush is under way (by a "leader", see flushLocked)
	syncFile *os.File // the file unflushed writes went to; nil once closed
	written  uint64   // sequence number of the last written batch
	synced   uint64   // sequence number of the last flushed batch
	pending  []batch  // written but not yet published batches (SyncAlways)
	syncErr  error    // sticky: once a flush or a write fails, the log refuses writes

	// What readers see, guarded by mu.
	mu          sync.RWMutex
	segs        []*segment
	first, next uint64
	closed      bool
}

var _ storage.Log = (*diskLog)(nil)

// batch is one Append's records, written to seg, awaiting publication.
type batch struct {
	seq         uint64
	seg         *segment
	end         int64
	next        uint64
	first, last int64 // arrivals
	idx         []indexEntry
}

// openLog opens (creating it if needed) the log in dir, recovering from a crash: leftover
// temporary files are removed, sealed segments are loaded from their index side files or scanned,
// and the last segment is scanned and truncated after its last valid record.
func openLog(b *Backend, stream, shard string) (*diskLog, error) {
	dir := filepath.Join(b.dir, streamsDir, fileName(stream), fileName(shard))
	l := &diskLog{
		b:           b,
		stream:      stream,
		shard:       shard,
		dir:         dir,
		name:        fmt.Sprintf("%q/%q", stream, shard),
		policy:      b.opts.Sync,
		segBytes:    b.opts.SegmentBytes,
		segDuration: int64(b.opts.SegmentDuration),
	}
	l.syncCond.L = &l.syncMu
	if err := l.recover(); err != nil {
		for _, s := range l.segs {
			if s.f != nil {
				s.f.Close()
			}
		}
		return nil, fmt.Errorf("disk: open log %s: %w", l.name, err)
	}
	return l, nil
}

func (l *diskLog) recover() error {
	if err := os.MkdirAll(l.dir, 0o755); err != nil {
		return err
	}
	ents, err := os.ReadDir(l.dir)
	if err != nil {
		return err
	}
	var bases []uint64
	idxFiles := map[string]bool{}
	for _, e := range ents {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, tmpPrefix):
			if err := os.Remove(filepath.Join(l.dir, name)); err != nil {
				return err
			}
		case strings.HasSuffix(name, idxExt):
			idxFiles[name] = true
		default:
			if base, ok := parseSegName(name); ok {
				bases = append(bases, base)
			}
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	for name := range idxFiles { // orphans of a trim interrupted by a crash
		base, _ := parseSegName(strings.TrimSuffix(name, idxExt) + segExt)
		if i := sort.Search(len(bases), func(i int) bool { return bases[i] >= base }); i == len(bases) || bases[i] != base {
			os.Remove(filepath.Join(l.dir, name))
		}
	}
	log := l.b.opts.Logger
	for i, base := range bases {
		path := filepath.Join(l.dir, segName(base))
		last := i == len(bases)-1
		var s *segment
		if !last {
			if s, err = l.loadSealed(path, base); err != nil {
				return err
			}
		} else {
			if s, err = l.recoverActive(path, base); err != nil {
				return err
			}
		}
		if s == nil {
			continue
		}
		if n := len(l.segs); n > 0 {
			prev := l.segs[n-1]
			if s.base < prev.next {
				if s.f != nil {
					s.f.Close()
				}
				return fmt.Errorf("%w: segment %s overlaps the previous one (ends at index %d)", errCorrupt, path, prev.next)
			}
			if s.base > prev.next {
				log.Warn("disk: records lost to corruption", "log", l.name, "first_index", prev.next, "count", s.base-prev.next)
			}
		}
		l.segs = append(l.segs, s)
	}
	if len(l.segs) == 0 {
		s, f, err := createSegment(l.dir, 0)
		if err != nil {
			return err
		}
		s.f = f
		l.segs = append(l.segs, s)
		// Make the new directories durable too.
		for _, d := range []string{filepath.Dir(l.dir), filepath.Dir(filepath.Dir(l.dir))} {
			if err := syncDir(d); err != nil {
				return err
			}
		}
	}
	act := l.segs[len(l.segs)-1]
	l.active, l.wf = act, act.f
	l.syncFile = act.f
	l.wsize, l.wnext = act.size, act.next
	l.wFirst, l.wLast = act.firstArrival, act.lastArrival
	l.wIdxOff = -indexInterval
	if len(act.idx) > 0 {
		l.wIdxOff = act.idx[len(act.idx)-1].off
	}
	l.first, l.next = l.segs[0].base, act.next
	return nil
}

// loadSealed loads a sealed segment from its index side file, or scans it. It returns nil for a
// segment without any valid record.
func (l *diskLog) loadSealed(path string, base uint64) (*segment, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if b, err := os.ReadFile(idxPath(path)); err == nil {
		if s, ok := decodeIndex(b, path, base, st.Size()); ok {
			return s, nil
		}
	}
	res, err := scanSegment(path, base)
	if err != nil {
		return nil, err
	}
	s := res.seg
	if res.err != nil {
		l.b.opts.Logger.Warn("disk: corrupt sealed segment; later records of it are skipped",
			"log", l.name, "segment", path, "valid_bytes", s.size, "file_bytes", res.fileSize, "err", res.err)
	} else if !s.empty() {
		if err := writeIndex(s); err != nil {
			l.b.opts.Logger.Warn("disk: cannot write segment index", "log", l.name, "segment", path, "err", err)
		}
	}
	if s.empty() {
		return nil, nil
	}
	return s, nil
}

// recoverActive scans the last segment, truncates whatever follows its last valid record (a torn
// write) and opens it for appending.
func (l *diskLog) recoverActive(path string, base uint64) (*segment, error) {
	res, err := scanSegment(path, base)
	if err != nil {
		return nil, err
	}
	s := res.seg
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	if res.err != nil || res.fileSize != s.size {
		l.b.opts.Logger.Warn("disk: truncating torn or corrupt tail of segment",
			"log", l.name, "segment", path, "valid_bytes", s.size, "file_bytes", res.fileSize, "err", res.err)
		if s.size < segHeaderSize { // the header itself is bad: rewrite it
			s.size = segHeaderSize
			if _, err := f.WriteAt(segHeader(base), 0); err != nil {
				f.Close()
				return nil, err
			}
		}
		if err := f.Truncate(s.size); err != nil {
			f.Close()
			return nil, err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, err
		}
	}
	s.f = f
	return s, nil
}

// Append implements storage.Log. The batch is encoded into one buffer and written with one
// write; under SyncAlways it then waits for a flush covering it, which one of the waiting
// appenders performs for all of them.
func (l *diskLog) Append(recs []storage.Record) (uint64, error) {
	l.appendMu.Lock()
	if l.wclosed {
		l.appendMu.Unlock()
		return 0, fmt.Errorf("disk: append to %s: %w", l.name, storage.ErrClosed)
	}
	if err := l.failure(); err != nil {
		l.appendMu.Unlock()
		return 0, fmt.Errorf("disk: append to %s: %w", l.name, err)
	}
	first := l.wnext
	if len(recs) == 0 {
		l.appendMu.Unlock()
		return first, nil
	}
	total := 0
	for i := range recs {
		n := frameSize(&recs[i])
		if n-frameHeaderSize > maxBodySize {
			l.appendMu.Unlock()
			return 0, fmt.Errorf("disk: append to %s: record of %d bytes is too large", l.name, len(recs[i].Data))
		}
		total += n
	}
	if l.wnext > l.active.base {
		full := l.wsize+int64(total) > l.segBytes
		old := l.segDuration > 0 && toNanos(recs[0].Arrival)-l.wFirst >= l.segDuration
		if full || old {
			if err := l.sealLocked(); err != nil {
				l.appendMu.Unlock()
				return 0, fmt.Errorf("disk: append to %s: %w", l.name, err)
			}
		}
	}
	buf := l.enc[:0]
	if cap(buf) < total {
		buf = make([]byte, 0, total)
	}
	bt := batch{seg: l.active, next: first + uint64(len(recs))}
	idxOff := l.wIdxOff
	for i := range recs {
		off := l.wsize + int64(len(buf))
		arr := toNanos(recs[i].Arrival)
		if off-idxOff >= indexInterval || l.active.base == first+uint64(i) {
			bt.idx = append(bt.idx, indexEntry{first + uint64(i), arr, off})
			idxOff = off
		}
		buf = appendFrame(buf, first+uint64(i), &recs[i])
	}
	bt.first, bt.last = toNanos(recs[0].Arrival), toNanos(recs[len(recs)-1].Arrival)
	bt.end = l.wsize + int64(len(buf))
	if _, err := l.wf.WriteAt(buf, l.wsize); err != nil {
		// Cut off whatever part was written, so that no stale frame can follow the next write.
		if terr := l.wf.Truncate(l.wsize); terr != nil {
			l.fail(fmt.Errorf("write failed and could not be undone: %w", terr))
		}
		l.appendMu.Unlock()
		return 0, fmt.Errorf("disk: append to %s: %w", l.name, err)
	}
	if cap(buf) <= 4<<20 {
		l.enc = buf[:0]
	} else {
		l.enc = nil
	}
	if l.wnext == l.active.base {
		l.wFirst = bt.first
	}
	l.wsize, l.wnext, l.wLast, l.wIdxOff = bt.end, bt.next, bt.last, idxOff

	l.syncMu.Lock()
	l.written++
	bt.seq = l.written
	if l.policy == SyncAlways {
		l.pending = append(l.pending, bt)
	} else {
		l.mu.Lock()
		l.publishLocked(&bt)
		l.mu.Unlock()
	}
	l.syncMu.Unlock()
	l.appendMu.Unlock()

	if l.policy == SyncAlways {
		if err := l.waitFlushed(bt.seq); err != nil {
			return 0, fmt.Errorf("disk: append to %s: %w", l.name, err)
		}
	}
	return first, nil
}

// failure returns the sticky error that stops writes, if any.
func (l *diskLog) failure() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	return l.syncErr
}

// fail records a sticky failure and wakes every appender waiting for a flush.
func (l *diskLog) fail(err error) {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.failLocked(err)
}

func (l *diskLog) failLocked(err error) {
	if l.syncErr == nil {
		l.syncErr = fmt.Errorf("log failed, reopen it: %w", err)
		l.b.opts.Logger.Error("disk: log failed", "log", l.name, "err", err)
	}
	l.syncCond.Broadcast()
}

// closedLocked fails the appenders waiting for a flush that will not happen because the log is
// closed.
func (l *diskLog) closedLocked() {
	if l.syncErr == nil {
		l.syncErr = storage.ErrClosed
	}
	l.syncCond.Broadcast()
}

// publishLocked makes a written batch visible to readers. mu must be held for writing.
func (l *diskLog) publishLocked(bt *batch) {
	s := bt.seg
	if s.empty() {
		s.firstArrival = bt.first
	}
	s.lastArrival = bt.last
	s.idx = append(s.idx, bt.idx...)
	s.size, s.next = bt.end, bt.next
	l.next = bt.next
}

// waitFlushed waits until batch seq is flushed, leading a flush if none is under way: the group
// commit. Batches written while a flush runs are covered by the next one.
func (l *diskLog) waitFlushed(seq uint64) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	for l.synced < seq {
		if l.syncErr != nil {
			return l.syncErr
		}
		if l.syncing {
			l.syncCond.Wait()
			continue
		}
		l.flushLocked()
	}
	return nil
}

// flushLocked flushes every batch written so far and publishes the pending ones. syncMu must be
// held and no flush under way; syncMu is released during the flush itself.
func (l *diskLog) flushLocked() {
	target, f := l.written, l.syncFile
	if f == nil {
		l.closedLocked()
		return
	}
	l.syncing = true
	l.syncMu.Unlock()
	err := datasync(f)
	l.syncs.Add(1)
	l.syncMu.Lock()
	l.syncing = false
	if err != nil {
		l.failLocked(fmt.Errorf("flush: %w", err))
		return
	}
	l.publishUpToLocked(target)
	l.synced = target
	l.syncCond.Broadcast()
}

// publishUpToLocked publishes the pending batches up to sequence number target. syncMu must be held.
func (l *diskLog) publishUpToLocked(target uint64) {
	n := 0
	for n < len(l.pending) && l.pending[n].seq <= target {
		n++
	}
	if n == 0 {
		return
	}
	l.mu.Lock()
	for i := range l.pending[:n] {
		l.publishLocked(&l.pending[i])
	}
	l.mu.Unlock()
	rest := copy(l.pending, l.pending[n:])
	clear(l.pending[rest:])
	l.pending = l.pending[:rest]
}

// flush flushes unflushed writes, if any (for SyncInterval).
func (l *diskLog) flush() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	for {
		if l.syncErr != nil {
			return l.syncErr
		}
		if l.synced >= l.written || l.syncFile == nil {
			return nil
		}
		if !l.syncing {
			l.flushLocked()
			continue
		}
		l.syncCond.Wait()
	}
}

// flushAllLocked waits until no flush is under way and flushes everything written, leaving
// syncMu held. With appendMu held by the caller nothing more can be written meanwhile, so all is
// flushed and published when it returns nil.
func (l *diskLog) flushAllLocked() error {
	for {
		if l.syncErr != nil {
			return l.syncErr
		}
		if l.syncing {
			l.syncCond.Wait()
			continue
		}
		if l.synced >= l.written {
			return nil
		}
		l.flushLocked()
	}
}

// sealLocked flushes the active segment, writes its index side file and starts a new active
// segment. appendMu must be held. The order matters for recovery: the old segment is complete on
// stable storage before the new one exists.
func (l *diskLog) sealLocked() error {
	l.syncMu.Lock()
	err := l.flushAllLocked()
	l.syncMu.Unlock()
	if err != nil {
		return err
	}
	old, oldf := l.active, l.wf
	s, f, err := createSegment(l.dir, l.wnext)
	if err != nil {
		return err
	}
	s.f = f
	l.syncMu.Lock()
	l.syncFile = f
	l.mu.Lock()
	old.f = nil
	l.segs = append(l.segs, s)
	l.mu.Unlock()
	l.syncMu.Unlock()
	oldf.Close() // readers still using it see os.ErrClosed and retry with the file's path
	l.active, l.wf = s, f
	l.wsize, l.wIdxOff = s.size, -indexInterval
	if err := writeIndex(old); err != nil {
		l.b.opts.Logger.Warn("disk: cannot write segment index", "log", l.name, "segment", old.path, "err", err)
	}
	return nil
}

// view is what a reader needs to read one segment without holding mu.
type view struct {
	seg     *segment
	f       *os.File // the active segment's file, or nil: open seg.path
	off     int64    // where to start decoding
	end     int64    // end of the published records
	endNext uint64
}

// locate finds the segment holding index from (or the first retained record after it) and the
// nearest index entry at or before it. It returns the possibly raised from, and ok false when
// there is nothing to read at or after it.
func (l *diskLog) locate(from uint64) (view, uint64, bool, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return view{}, from, false, storage.ErrClosed
	}
	from = max(from, l.first)
	if from >= l.next {
		return view{}, from, false, nil
	}
	i := max(sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > from })-1, 0)
	for i < len(l.segs) && from >= l.segs[i].next { // skip a gap left by corruption
		i++
		if i < len(l.segs) {
			from = max(from, l.segs[i].base)
		}
	}
	if i == len(l.segs) {
		return view{}, from, false, nil
	}
	s := l.segs[i]
	j := max(sort.Search(len(s.idx), func(j int) bool { return s.idx[j].index > from })-1, 0)
	return view{seg: s, f: s.f, off: s.idx[j].off, end: s.size, endNext: s.next}, from, true, nil
}

// open returns a reader of v's file and a function to release it.
func (v *view) open() (io.ReaderAt, func(), error) {
	if v.f != nil {
		return v.f, func() {}, nil
	}
	f, err := os.Open(v.seg.path)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

// retryable reports whether a read failed only because the segment was sealed (its shared file
// closed) or trimmed (its file removed) under it: locating again will succeed or skip it.
func retryable(err error) bool {
	return errors.Is(err, os.ErrClosed) || errors.Is(err, fs.ErrNotExist)
}

const maxReadRetries = 8

// Read implements storage.Log. It locates the start with the in-memory sparse index, reads the
// segment with pread through a pooled buffer, verifies each record's checksum and copies the
// records out.
func (l *diskLog) Read(from uint64, maxRecords, maxBytes int) ([]storage.Record, error) {
	var (
		out   []storage.Record
		size  int
		arena []byte
	)
	for retries := 0; ; {
		v, f, ok, err := l.locate(from)
		if err != nil {
			return nil, fmt.Errorf("disk: read %s: %w", l.name, err)
		}
		if f != from && len(out) > 0 {
			// The records after out were trimmed meanwhile (or lost to corruption): return a
			// contiguous run; the next Read continues from First.
			return out, nil
		}
		from = f
		if !ok || len(out) >= maxRecords {
			return out, nil
		}
		done := false
		err = l.scan(&v, func(fm *frame) bool {
			if fm.index < from {
				return true
			}
			if len(out) >= maxRecords || len(out) > 0 && size+fm.size() > maxBytes {
				done = true
				return false
			}
			size += fm.size()
			out = append(out, fm.record(&arena))
			from = fm.index + 1
			return true
		})
		if err != nil {
			if retryable(err) && retries < maxReadRetries {
				retries++
				continue
			}
			return nil, fmt.Errorf("disk: read %s at index %d: %w", l.name, from, err)
		}
		if done {
			return out, nil
		}
		from = max(from, v.endNext)
	}
}

// scan decodes the records of v in order, calling fn for each until it returns false.
func (l *diskLog) scan(v *view, fn func(*frame) bool) error {
	r, release, err := v.open()
	if err != nil {
		return err
	}
	defer release()
	fr := newFrameReader(r, v.off, v.end)
	defer fr.release()
	want := uint64(0)
	var fm frame // one for the whole scan: fn's argument escapes
	for {
		b, off, err := fr.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("segment %s offset %d: %w", v.seg.path, off, err)
		}
		fm, _, err = decodeRecord(b)
		if err == nil && want != 0 && fm.index != want {
			err = fmt.Errorf("%w: index %d, want %d", errCorrupt, fm.index, want)
		}
		if err != nil {
			return fmt.Errorf("segment %s offset %d: %w", v.seg.path, off, err)
		}
		want = fm.index + 1
		if !fn(&fm) {
			return nil
		}
	}
}

// SeekTime implements storage.Log: a binary search over segments by last arrival, then over the
// segment's sparse index, then a scan of at most about indexInterval bytes.
func (l *diskLog) SeekTime(t time.Time) (uint64, error) {
	tn := toNanos(t)
	for retries := 0; ; retries++ {
		v, idx, ok, err := l.seekLocate(tn)
		if err != nil || !ok {
			return idx, err
		}
		found := v.endNext
		err = l.scan(&v, func(fm *frame) bool {
			if fm.arrival >= tn {
				found = fm.index
				return false
			}
			return true
		})
		if err != nil {
			if retryable(err) && retries < maxReadRetries {
				continue
			}
			return 0, fmt.Errorf("disk: seek %s: %w", l.name, err)
		}
		return found, nil
	}
}

// seekLocate returns the index SeekTime answers, if the in-memory state is enough, or the view to
// scan for it.
func (l *diskLog) seekLocate(tn int64) (view, uint64, bool, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return view{}, 0, false, fmt.Errorf("disk: seek %s: %w", l.name, storage.ErrClosed)
	}
	// Only the active (last) segment can be empty; arrivals are non-decreasing.
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].empty() || l.segs[i].lastArrival >= tn })
	if i == len(l.segs) || l.segs[i].empty() {
		return view{}, l.next, false, nil
	}
	s := l.segs[i]
	if s.firstArrival >= tn {
		return view{}, max(s.base, l.first), false, nil
	}
	j := max(sort.Search(len(s.idx), func(j int) bool { return s.idx[j].arrival >= tn })-1, 0)
	return view{seg: s, f: s.f, off: s.idx[j].off, end: s.size, endNext: s.next}, 0, true, nil
}

// First implements storage.Log.
func (l *diskLog) First() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.first
}

// Next implements storage.Log.
func (l *diskLog) Next() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.next
}

// Trim implements storage.Log. It deletes, oldest first, every sealed segment whose last record
// arrived before t, sealing the active segment first if all of it arrived before t, so that an idle
// shard's data goes too. An empty active segment always remains: its name keeps Next across restarts.
func (l *diskLog) Trim(t time.Time) error {
	tn := toNanos(t)
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.wclosed {
		return fmt.Errorf("disk: trim %s: %w", l.name, storage.ErrClosed)
	}
	if l.wnext > l.active.base && l.wLast < tn {
		if err := l.sealLocked(); err != nil {
			return fmt.Errorf("disk: trim %s: %w", l.name, err)
		}
	}
	l.mu.Lock()
	k := 0
	for k < len(l.segs)-1 && l.segs[k].lastArrival < tn {
		k++
	}
	drop := l.segs[:k:k]
	l.segs = append([]*segment(nil), l.segs[k:]...)
	l.first = max(l.first, l.segs[0].base)
	l.mu.Unlock()
	for _, s := range drop {
		// One at a time, flushing the directory, so that a crash cannot leave a gap.
		if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("disk: trim %s: %w", l.name, err)
		}
		if err := syncDir(l.dir); err != nil {
			return fmt.Errorf("disk: trim %s: %w", l.name, err)
		}
		os.Remove(idxPath(s.path))
	}
	return nil
}

// Close implements storage.Log: it flushes unflushed records, closes the files and forgets the log,
// so that OpenLog opens it afresh.
func (l *diskLog) Close() error {
	err := l.close(true)
	l.b.forget(l)
	return err
}

// close closes the log, flushing first if flush is set; appenders still waiting for a flush that
// does not happen fail with storage.ErrClosed.
func (l *diskLog) close(flush bool) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.wclosed {
		return nil
	}
	l.wclosed = true
	var err error
	l.syncMu.Lock()
	if flush {
		err = l.flushAllLocked()
	} else {
		for l.syncing {
			l.syncCond.Wait()
		}
	}
	if len(l.pending) > 0 {
		l.closedLocked()
	}
	l.syncFile = nil
	l.syncMu.Unlock()
	l.mu.Lock()
	l.closed = true
	l.active.f = nil
	l.mu.Unlock()
	if cerr := l.wf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("disk: close %s: %w", l.name, err)
	}
	return nil
}
