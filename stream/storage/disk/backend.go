// Package disk is the durable storage.Backend of the stream service: an append-only log per shard
// in segment files of checksummed records on local disk, and metadata in one file per key.
//
// # Layout
//
//	DIR/LOCK                        held (flock) while a Backend has DIR open
//	DIR/meta/<name(key)>            one file per metadata key
//	DIR/streams/<name(stream)>/<name(shard)>/
//	    00000000000000000000.seg    a segment: records from index 0
//	    00000000000000000000.idx    its sparse index, written when the segment is sealed
//	    00000000000000004711.seg    the active segment: records from index 4711
//	DIR/trash/                      deleted streams on their way out
//
// Names are escaped (see fileName) so that any stream key, shard id or metadata key is a safe file
// name. A record frame is length-prefixed and carries a CRC32C, its index, arrival time (unix
// nanoseconds), partition key, explicit hash key and data (see appendFrame).
//
// # Reads
//
// Each open log keeps in memory, per segment, its first and last index and arrival and a sparse
// index (one entry per 16 KiB) from index and arrival to file offset. Read and SeekTime find the
// segment and the nearest entry by binary search and pread from there, so they never rescan a
// segment. Sealed segments keep their sparse index in a side file, so opening a log reads only the
// active segment.
//
// # Durability and recovery
//
// Under SyncAlways (the default) Append writes its batch with one write and returns once an
// fdatasync covers it; concurrent appenders share one fdatasync (group commit), and records become
// readable only once flushed, so no reader ever sees a record a crash could take back. A segment
// is sealed (flushed, then a new one created) at Options.SegmentBytes. Opening a log scans the
// active segment, checking every checksum and the index sequence, and truncates the file after the
// last valid record: a torn write is cut off, and an acknowledged record is never lost. Sealed
// segments are checked against their index side files and rescanned when these are missing or
// stale. Metadata files are replaced atomically (temporary file, fsync, rename, directory fsync).
//
// # Retention
//
// Trim deletes whole segments whose last record arrived before the cut-off, so records may outlive
// it by up to a segment's span (bounded by Options.SegmentBytes and Options.SegmentDuration).
package disk

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kinesis-network/portal/stream/storage"
)

const (
	streamsDir = "streams"
	metaDir    = "meta"
	trashDir   = "trash"
	lockName   = "LOCK"
)

// Backend is a storage.Backend on local disk. It is safe for concurrent use. Open one Backend per
// directory: Open fails while another holds it.
type Backend struct {
	dir  string
	opts Options
	lock *os.File

	mu       sync.Mutex
	cond     sync.Cond
	closed   bool
	streams  map[string]map[string]*logEntry // stream key → shard id → log
	deleting map[string]int                  // streams being deleted

	meta       metaStore
	closedFlag atomic.Bool
	closeOnce  sync.Once
	closeErr   error
	stop       chan struct{}
	done       chan struct{}
}

var _ storage.Backend = (*Backend)(nil)

// logEntry is a log in the backend's table; ready is false while OpenLog is recovering it.
type logEntry struct {
	l     *diskLog
	ready bool
}

// Open opens the backend in dir, creating the directory if needed. It takes an exclusive lock on
// dir, loads the metadata and clears leftovers of interrupted operations; shard logs are recovered
// lazily, by OpenLog.
func Open(dir string, opts Options) (*Backend, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	for _, d := range []string{dir, filepath.Join(dir, metaDir), filepath.Join(dir, streamsDir), filepath.Join(dir, trashDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("disk: open %s: %w", dir, err)
		}
	}
	if err := syncDir(dir); err != nil { // make the subdirectories durable
		return nil, fmt.Errorf("disk: open %s: %w", dir, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("disk: open %s: %w", dir, err)
	}
	if err := lockDir(lock); err != nil {
		lock.Close()
		return nil, fmt.Errorf("disk: open %s: directory in use by another backend: %w", dir, err)
	}
	b := &Backend{
		dir:      dir,
		opts:     opts,
		lock:     lock,
		streams:  map[string]map[string]*logEntry{},
		deleting: map[string]int{},
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	b.cond.L = &b.mu
	if err := b.meta.load(filepath.Join(dir, metaDir)); err != nil {
		lock.Close()
		return nil, fmt.Errorf("disk: open %s: %w", dir, err)
	}
	if err := b.emptyTrash(); err != nil {
		lock.Close()
		return nil, fmt.Errorf("disk: open %s: %w", dir, err)
	}
	if opts.Sync == SyncInterval {
		go b.syncLoop()
	} else {
		close(b.done)
	}
	return b, nil
}

// lockDir takes the directory's lock, retrying for a moment: a process this one forks holds a
// copy of the lock of a backend closed meanwhile until it execs.
func lockDir(f *os.File) error {
	var err error
	for range 50 {
		if err = lockFile(f); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

// emptyTrash removes deleted streams whose removal a crash interrupted.
func (b *Backend) emptyTrash() error {
	ents, err := os.ReadDir(filepath.Join(b.dir, trashDir))
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(b.dir, trashDir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// syncLoop flushes every open log's unflushed records each SyncPeriod (SyncInterval).
func (b *Backend) syncLoop() {
	defer close(b.done)
	t := time.NewTicker(b.opts.SyncPeriod)
	defer t.Stop()
	failed := map[*diskLog]bool{}
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		for _, l := range b.openLogs() {
			if err := l.flush(); err != nil && !failed[l] && !errors.Is(err, storage.ErrClosed) {
				failed[l] = true
				b.opts.Logger.Error("disk: background flush failed", "log", l.name, "err", err)
			}
		}
	}
}

// openLogs returns every open (recovered) log.
func (b *Backend) openLogs() []*diskLog {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*diskLog
	for _, shards := range b.streams {
		for _, e := range shards {
			if e.ready {
				out = append(out, e.l)
			}
		}
	}
	return out
}

// OpenLog implements storage.Backend. Opening a log recovers it (see the package comment); later
// calls return the same log until it is closed.
func (b *Backend) OpenLog(streamKey, shardID string) (storage.Log, error) {
	b.mu.Lock()
	var e *logEntry
	for {
		if b.closed {
			b.mu.Unlock()
			return nil, fmt.Errorf("disk: open log %q/%q: %w", streamKey, shardID, storage.ErrClosed)
		}
		if b.deleting[streamKey] > 0 {
			b.cond.Wait()
			continue
		}
		e = b.streams[streamKey][shardID]
		if e == nil {
			break
		}
		if e.ready {
			b.mu.Unlock()
			return e.l, nil
		}
		b.cond.Wait()
	}
	e = &logEntry{}
	if b.streams[streamKey] == nil {
		b.streams[streamKey] = map[string]*logEntry{}
	}
	b.streams[streamKey][shardID] = e
	b.mu.Unlock()

	l, err := openLog(b, streamKey, shardID)

	b.mu.Lock()
	defer b.mu.Unlock()
	defer b.cond.Broadcast()
	if err == nil && b.closed {
		l.close(false)
		err = fmt.Errorf("disk: open log %q/%q: %w", streamKey, shardID, storage.ErrClosed)
	}
	if err != nil {
		b.removeEntryLocked(streamKey, shardID, e)
		return nil, err
	}
	e.l, e.ready = l, true
	return l, nil
}

func (b *Backend) removeEntryLocked(stream, shard string, e *logEntry) {
	if shards := b.streams[stream]; shards[shard] == e {
		delete(shards, shard)
		if len(shards) == 0 {
			delete(b.streams, stream)
		}
	}
}

// forget removes a closed log from the table, so that OpenLog opens it afresh.
func (b *Backend) forget(l *diskLog) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e := b.streams[l.stream][l.shard]; e != nil && e.l == l {
		b.removeEntryLocked(l.stream, l.shard, e)
	}
}

// DeleteStream implements storage.Backend: it closes the stream's open logs (their pending and
// later operations fail with storage.ErrClosed), moves the stream's directory to the trash, durably,
// and removes it. It does not touch metadata: like storage.Memory, it leaves metadata keys to
// the caller.
func (b *Backend) DeleteStream(streamKey string) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return fmt.Errorf("disk: delete stream %q: %w", streamKey, storage.ErrClosed)
	}
	b.deleting[streamKey]++
	for b.opening(streamKey) {
		b.cond.Wait()
	}
	shards := b.streams[streamKey]
	delete(b.streams, streamKey)
	b.mu.Unlock()

	defer func() {
		b.mu.Lock()
		if b.deleting[streamKey]--; b.deleting[streamKey] == 0 {
			delete(b.deleting, streamKey)
		}
		b.cond.Broadcast()
		b.mu.Unlock()
	}()
	for _, e := range shards {
		e.l.close(false)
	}
	src := filepath.Join(b.dir, streamsDir, fileName(streamKey))
	var rnd [8]byte
	rand.Read(rnd[:])
	dst := filepath.Join(b.dir, trashDir, hex.EncodeToString(rnd[:]))
	if err := os.Rename(src, dst); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("disk: delete stream %q: %w", streamKey, err)
	}
	if err := syncDir(filepath.Join(b.dir, streamsDir)); err != nil {
		return fmt.Errorf("disk: delete stream %q: %w", streamKey, err)
	}
	if err := os.RemoveAll(dst); err != nil {
		return fmt.Errorf("disk: delete stream %q: %w", streamKey, err)
	}
	return nil
}

// opening reports whether a log of streamKey is being recovered by OpenLog. mu must be held.
func (b *Backend) opening(streamKey string) bool {
	for _, e := range b.streams[streamKey] {
		if !e.ready {
			return true
		}
	}
	return false
}

// Close implements storage.Backend: it flushes and closes every open log, stops the background
// flusher and releases the directory. It is idempotent; every call waits until the first is done.
func (b *Backend) Close() error {
	b.closeOnce.Do(func() { b.closeErr = b.close() })
	return b.closeErr
}

func (b *Backend) close() error {
	b.mu.Lock()
	b.closed = true
	b.closedFlag.Store(true)
	for b.anyOpening() {
		b.cond.Wait()
	}
	var logs []*diskLog
	for _, shards := range b.streams {
		for _, e := range shards {
			logs = append(logs, e.l)
		}
	}
	b.streams = map[string]map[string]*logEntry{}
	b.mu.Unlock()

	var errs []error
	for _, l := range logs {
		errs = append(errs, l.close(true))
	}
	close(b.stop)
	<-b.done
	errs = append(errs, b.lock.Close())
	return errors.Join(errs...)
}

func (b *Backend) anyOpening() bool {
	for s := range b.streams {
		if b.opening(s) {
			return true
		}
	}
	return false
}
