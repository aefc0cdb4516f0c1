package disk

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kinesis-network/portal/stream/storage"
	"github.com/kinesis-network/portal/stream/storage/storagetest"
)

// configs are the option sets the contract suite runs with.
var configs = []struct {
	name string
	opts Options
}{
	{"Default", Options{}},
	{"SmallSegments", Options{SegmentBytes: 4 << 10}},
	{"SyncNever", Options{Sync: SyncNever, SegmentBytes: 16 << 10}},
	{"SyncInterval", Options{Sync: SyncInterval, SyncPeriod: 5 * time.Millisecond, SegmentBytes: 64 << 10}},
}

func TestContract(t *testing.T) {
	for _, c := range configs {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			storagetest.Run(t, func(t *testing.T) storage.Backend { return openT(t, t.TempDir(), c.opts) })
		})
	}
}

func TestContractDurable(t *testing.T) {
	for _, c := range configs {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			storagetest.RunDurable(t, func(t *testing.T, dir string) storage.Backend { return openT(t, dir, c.opts) })
		})
	}
}

// openT opens a backend that is closed when the test ends.
func openT(t testing.TB, dir string, opts Options) *Backend {
	t.Helper()
	b, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func openLogT(t testing.TB, b *Backend, stream, shard string) *diskLog {
	t.Helper()
	l, err := b.OpenLog(stream, shard)
	if err != nil {
		t.Fatal(err)
	}
	return l.(*diskLog)
}

var base = time.Unix(1_700_000_000, 0)

// testRecord is record i of the tests in this file: its content follows from i.
func testRecord(i int) storage.Record {
	return storage.Record{
		Arrival:      base.Add(time.Duration(i) * time.Millisecond),
		PartitionKey: fmt.Sprintf("key-%d", i),
		Data:         bytes.Repeat([]byte{byte(i)}, 50+i%150),
	}
}

func appendN(t testing.TB, l storage.Log, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		first, err := l.Append([]storage.Record{testRecord(i)})
		if err != nil {
			t.Fatal(err)
		}
		if first != uint64(i) {
			t.Fatalf("Append returned %d, want %d", first, i)
		}
	}
}

// checkLog checks that l holds exactly records first..next-1 of testRecord.
func checkLog(t testing.TB, l storage.Log, first, next int) {
	t.Helper()
	if l.First() != uint64(first) || l.Next() != uint64(next) {
		t.Fatalf("First %d Next %d, want %d %d", l.First(), l.Next(), first, next)
	}
	from := uint64(0)
	for {
		rs, err := l.Read(from, 50, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) == 0 {
			break
		}
		for _, r := range rs {
			if from == 0 && r.Index != uint64(first) || from != 0 && r.Index != from {
				t.Fatalf("read index %d after %d, want contiguous from %d", r.Index, from, first)
			}
			w := testRecord(int(r.Index))
			if r.PartitionKey != w.PartitionKey || !bytes.Equal(r.Data, w.Data) || !r.Arrival.Equal(w.Arrival) {
				t.Fatalf("record %d differs", r.Index)
			}
			from = r.Index + 1
		}
	}
	if from != uint64(next) && next > first {
		t.Fatalf("read up to %d, want %d", from, next)
	}
}

func shardDir(dir, stream, shard string) string {
	return filepath.Join(dir, streamsDir, fileName(stream), fileName(shard))
}

func segFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segExt))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

func TestOptions(t *testing.T) {
	cases := []struct {
		opts    Options
		wantErr string
	}{
		{Options{}, ""},
		{Options{Sync: SyncNever, SegmentBytes: 1, SegmentDuration: -1}, ""},
		{Options{Sync: 7}, "disk: Options.Sync: unknown policy 7"},
		{Options{SyncPeriod: -time.Second}, "disk: Options.SyncPeriod must not be negative, got -1s"},
		{Options{SegmentBytes: -1}, "disk: Options.SegmentBytes must not be negative, got -1"},
	}
	for _, c := range cases {
		b, err := Open(t.TempDir(), c.opts)
		if c.wantErr == "" {
			if err != nil {
				t.Errorf("Open(%+v): %v", c.opts, err)
				continue
			}
			b.Close()
			continue
		}
		if err == nil || err.Error() != c.wantErr {
			t.Errorf("Open(%+v) error %v, want %q", c.opts, err, c.wantErr)
		}
	}
	o, _ := Options{}.withDefaults()
	if o.Sync != SyncAlways || o.SegmentBytes != 64<<20 || o.SyncPeriod != time.Second || o.SegmentDuration != time.Hour {
		t.Errorf("defaults: %+v", o)
	}
}

func TestFileName(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", "k"},
		{"abc-1_2.x", "kabc-1_2.x"},
		{"Stream", "k%53tream"},
		{"a/b", "ka%2fb"},
		{"..", "k.."},
		{"a:b%c~", "ka%3ab%25c%7e"},
		{"\x00\xff", "k%00%ff"},
	}
	for _, c := range cases {
		if got := fileName(c.in); got != c.want {
			t.Errorf("fileName(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	seen := map[string]string{}
	for _, s := range []string{strings.Repeat("a", 199), strings.Repeat("a", 200), strings.Repeat("a", 201),
		strings.Repeat("/", 100), strings.Repeat("/", 101), strings.Repeat("A", 300), strings.Repeat("a", 300), "a", "A"} {
		n := fileName(s)
		if len(n) > maxNameLen {
			t.Errorf("fileName of %d bytes is %d bytes long", len(s), len(n))
		}
		if strings.ContainsAny(n, "/\x00") || strings.HasPrefix(n, ".") {
			t.Errorf("fileName(%q) = %q is not a safe name", s, n)
		}
		if prev, ok := seen[strings.ToLower(n)]; ok {
			t.Errorf("fileName(%q) and fileName(%q) collide (ignoring case): %q", s, prev, n)
		}
		seen[strings.ToLower(n)] = s
	}
}

func TestOpenLocked(t *testing.T) {
	dir := t.TempDir()
	openT(t, dir, Options{})
	if b, err := Open(dir, Options{}); err == nil {
		b.Close()
		t.Fatal("a second Open of the same directory succeeded")
	} else if !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Open: %v, want an error saying the directory is in use", err)
	}
}

// writeTail appends n records to a fresh log in dir, closes it and returns its segment's path
// and the offsets at which its records start.
func writeTail(t *testing.T, dir string, n int) (string, []int64) {
	b := openT(t, dir, Options{Sync: SyncNever})
	l := openLogT(t, b, "s", "0")
	appendN(t, l, 0, n)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	var offs []int64
	off := int64(segHeaderSize)
	for i := range n {
		offs = append(offs, off)
		r := testRecord(i)
		off += int64(frameSize(&r))
	}
	path := filepath.Join(shardDir(dir, "s", "0"), segName(0))
	if st, err := os.Stat(path); err != nil || st.Size() != off {
		t.Fatalf("segment size %v, %v; want %d", st.Size(), err, off)
	}
	return path, offs
}

// recoverAndCheck opens dir and checks that the log holds exactly records 0..want-1, that the
// next Append gets index want, and, if again is set, that it survives another reopen.
func recoverAndCheck(t *testing.T, dir string, want int, what string, again bool) {
	t.Helper()
	rounds := 1
	if again {
		rounds = 2
	}
	for round := range rounds {
		b, err := Open(dir, Options{Sync: SyncNever})
		if err != nil {
			t.Fatalf("%s: Open: %v", what, err)
		}
		l := openLogT(t, b, "s", "0")
		if l.Next() != uint64(want+round) {
			b.Close()
			t.Fatalf("%s: recovered Next %d, want %d", what, l.Next(), want+round)
		}
		checkLog(t, l, 0, want+round)
		if round == 0 {
			appendN(t, l, want, want+1)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTornTail(t *testing.T) {
	t.Parallel()
	const n = 6
	dir := t.TempDir()
	path, offs := writeTail(t, dir, n)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Every cut inside the last record, and a sample of cuts in earlier ones.
	var cuts []int
	for c := int(offs[n-1]); c < len(orig); c++ {
		cuts = append(cuts, c)
	}
	for c := segHeaderSize; c < int(offs[n-1]); c += 13 {
		cuts = append(cuts, c)
	}
	for _, cut := range cuts {
		if err := os.WriteFile(path, orig[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		want := 0 // the records whose frames end at or before the cut
		for i := range n {
			end := int64(len(orig))
			if i+1 < n {
				end = offs[i+1]
			}
			if end <= int64(cut) {
				want = i + 1
			}
		}
		recoverAndCheck(t, dir, want, fmt.Sprintf("cut at %d", cut), cut%8 == 0)
	}
	// Garbage after the last record (a torn write of a batch that never completed).
	if err := os.WriteFile(path, append(slices.Clone(orig), 0x42, 0, 0, 0, 1, 2, 3), 0o644); err != nil {
		t.Fatal(err)
	}
	recoverAndCheck(t, dir, n, "garbage tail", true)
}

func TestBitFlips(t *testing.T) {
	t.Parallel()
	const n = 5
	dir := t.TempDir()
	path, offs := writeTail(t, dir, n)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(pos int, bit byte) {
		b := slices.Clone(orig)
		b[pos] ^= bit
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Any single flipped bit in the last record loses that record only.
	for pos := int(offs[n-1]); pos < len(orig); pos++ {
		flip(pos, 1<<(pos%8))
		recoverAndCheck(t, dir, n-1, fmt.Sprintf("bit %d of byte %d flipped", pos%8, pos), pos%8 == 0)
	}
	// A flipped bit in the middle loses the records from there on (the tail is untrusted).
	for _, rec := range []int{0, 2} {
		flip(int(offs[rec])+10, 0x10)
		recoverAndCheck(t, dir, rec, fmt.Sprintf("record %d corrupt", rec), true)
	}
	// A corrupt segment header: the segment is rewritten empty.
	flip(2, 0x01)
	recoverAndCheck(t, dir, 0, "header corrupt", true)
}

// fillSegments writes records 0..n-1 to a log with small segments and returns the directory.
func fillSegments(t *testing.T, n int) (string, *Backend, *diskLog) {
	dir := t.TempDir()
	b := openT(t, dir, Options{Sync: SyncNever, SegmentBytes: 2 << 10})
	l := openLogT(t, b, "s", "0")
	for i := 0; i < n; i += 3 {
		var rs []storage.Record
		for j := i; j < min(i+3, n); j++ {
			rs = append(rs, testRecord(j))
		}
		if _, err := l.Append(rs); err != nil {
			t.Fatal(err)
		}
	}
	return dir, b, l
}

func TestSealedSegments(t *testing.T) {
	t.Parallel()
	const n = 300
	dir, b, l := fillSegments(t, n)
	sdir := shardDir(dir, "s", "0")
	segs := segFiles(t, sdir)
	if len(segs) < 10 {
		t.Fatalf("%d segments, want many", len(segs))
	}
	b.Close()
	idx, _ := filepath.Glob(filepath.Join(sdir, "*"+idxExt))
	if len(idx) != len(segs)-1 {
		t.Fatalf("%d index files for %d segments, want one per sealed segment", len(idx), len(segs))
	}
	reopen := func(what string) (*Backend, *diskLog) {
		t.Helper()
		b := openT(t, dir, Options{Sync: SyncNever, SegmentBytes: 2 << 10})
		l := openLogT(t, b, "s", "0")
		checkLog(t, l, 0, n)
		for _, i := range []int{0, 1, 77, 150, 299} {
			if got, err := l.SeekTime(testRecord(i).Arrival); err != nil || got != uint64(i) {
				t.Fatalf("%s: SeekTime(arrival of %d) = %d, %v", what, i, got, err)
			}
		}
		return b, l
	}
	b, _ = reopen("with index files")
	b.Close()
	for _, p := range idx {
		os.Remove(p)
	}
	b, _ = reopen("index files removed")
	b.Close()
	if again, _ := filepath.Glob(filepath.Join(sdir, "*"+idxExt)); len(again) != len(idx) {
		t.Fatalf("index files not rewritten: %d, want %d", len(again), len(idx))
	}
	for _, p := range idx { // corrupt or stale index files are ignored
		data, _ := os.ReadFile(p)
		data[len(data)-1] ^= 1
		os.WriteFile(p, data, 0o644)
	}
	b, _ = reopen("index files corrupt")
	b.Close()

	// A corrupt record in a sealed segment: reads report it while the index file vouches for
	// the segment, and skip the rest of it once it has to be scanned.
	victim := segs[3]
	vb, _ := parseSegName(filepath.Base(victim))
	data, _ := os.ReadFile(victim)
	data[len(data)-5] ^= 0x40 // in the segment's last record
	os.WriteFile(victim, data, 0o644)
	b = openT(t, dir, Options{Sync: SyncNever, SegmentBytes: 2 << 10})
	l = openLogT(t, b, "s", "0")
	if _, err := l.Read(vb, 1000, 1<<30); !errors.Is(err, errCorrupt) {
		t.Fatalf("Read over a corrupt record: %v, want errCorrupt", err)
	}
	b.Close()
	os.Remove(idxPath(victim))
	b = openT(t, dir, Options{Sync: SyncNever, SegmentBytes: 2 << 10})
	l = openLogT(t, b, "s", "0")
	next, _ := parseSegName(filepath.Base(segs[4]))
	lost := next - 1 // the corrupt last record of the victim segment
	rs, err := l.Read(vb, 1000, 1<<30)
	if err != nil || uint64(len(rs)) != lost-vb {
		t.Fatalf("Read up to a lost record: %d records, %v; want %d", len(rs), err, lost-vb)
	}
	rs, err = l.Read(lost, 1000, 1<<30)
	if err != nil || len(rs) == 0 || rs[0].Index != next || rs[len(rs)-1].Index != n-1 {
		t.Fatalf("Read from a lost record: %d records, %v; want %d.. %d", len(rs), err, next, n-1)
	}
	b.Close()
}

func TestTrimSegments(t *testing.T) {
	t.Parallel()
	const n = 300
	dir, b, l := fillSegments(t, n)
	sdir := shardDir(dir, "s", "0")
	segs := segFiles(t, sdir)
	var bases []uint64
	for _, p := range segs {
		v, _ := parseSegName(filepath.Base(p))
		bases = append(bases, v)
	}
	cut := 157
	if err := l.Trim(testRecord(cut).Arrival); err != nil {
		t.Fatal(err)
	}
	// Exactly the segments whose every record arrived before the cut are gone.
	k := 0
	for k+1 < len(bases) && bases[k+1] <= uint64(cut) {
		k++
	}
	if l.First() != bases[k] {
		t.Fatalf("First %d after Trim, want %d (base of the segment holding %d)", l.First(), bases[k], cut)
	}
	if left := segFiles(t, sdir); !slices.Equal(left, segs[k:]) {
		t.Fatalf("segments left: %d, want %d", len(left), len(segs)-k)
	}
	if idx, _ := filepath.Glob(filepath.Join(sdir, "*"+idxExt)); len(idx) != len(segs)-k-1 {
		t.Fatalf("%d index files left, want %d", len(idx), len(segs)-k-1)
	}
	checkLog(t, l, int(bases[k]), n)

	// Trimming after every arrival seals the active segment and deletes everything.
	if err := l.Trim(testRecord(n).Arrival); err != nil {
		t.Fatal(err)
	}
	if l.First() != n || l.Next() != n {
		t.Fatalf("after Trim of everything First %d Next %d, want %d %d", l.First(), l.Next(), n, n)
	}
	if left := segFiles(t, sdir); len(left) != 1 || filepath.Base(left[0]) != segName(n) {
		t.Fatalf("segments left: %q, want one empty one from %d", left, n)
	}
	if rs, err := l.Read(0, 10, 1<<20); err != nil || len(rs) != 0 {
		t.Fatalf("Read after Trim of everything: %d records, %v", len(rs), err)
	}
	if i, err := l.SeekTime(base); err != nil || i != n {
		t.Fatalf("SeekTime after Trim of everything = %d, %v; want %d", i, err, n)
	}
	b.Close()
	b = openT(t, dir, Options{Sync: SyncNever, SegmentBytes: 2 << 10})
	l = openLogT(t, b, "s", "0")
	checkLog(t, l, n, n)
	appendN(t, l, n, n+5)
	checkLog(t, l, n, n+5)
}

func TestSegmentDuration(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := openT(t, dir, Options{Sync: SyncNever, SegmentDuration: 10 * time.Millisecond})
	l := openLogT(t, b, "s", "0")
	appendN(t, l, 0, 35) // arrivals 1 ms apart: a segment per 10 ms
	if got := len(segFiles(t, shardDir(dir, "s", "0"))); got != 4 {
		t.Fatalf("%d segments, want 4", got)
	}
	if err := l.Trim(testRecord(25).Arrival); err != nil {
		t.Fatal(err)
	}
	checkLog(t, l, 20, 35)
}

// TestReadsDuringSealAndTrim reads while segments are sealed and trimmed under the readers, which
// then retry with the segment's path or from the new First.
func TestReadsDuringSealAndTrim(t *testing.T) {
	t.Parallel()
	b := openT(t, t.TempDir(), Options{Sync: SyncNever, SegmentBytes: 2 << 10})
	l := openLogT(t, b, "s", "0")
	const n = 600
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		defer close(done)
		for i := 0; i < n; i++ {
			if _, err := l.Append([]storage.Record{testRecord(i)}); err != nil {
				t.Error(err)
				return
			}
			if i%50 == 0 {
				if err := l.Trim(base.Add(time.Duration(i-100) * time.Millisecond)); err != nil {
					t.Error(err)
					return
				}
			}
		}
	})
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				first := l.First()
				rs, err := l.Read(first, 100, 1<<20)
				if err != nil {
					t.Errorf("Read(%d): %v", first, err)
					return
				}
				for i, r := range rs {
					w := testRecord(int(r.Index))
					if i > 0 && r.Index != rs[i-1].Index+1 || !bytes.Equal(r.Data, w.Data) {
						t.Errorf("Read(%d): record %d (#%d of %d) wrong", first, r.Index, i, len(rs))
						return
					}
				}
				if _, err := l.SeekTime(testRecord(int(first) + 10).Arrival); err != nil {
					t.Errorf("SeekTime: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestGroupCommit(t *testing.T) {
	t.Parallel()
	b := openT(t, t.TempDir(), Options{})
	l := openLogT(t, b, "s", "0")
	const writers, appends = 16, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range appends {
				if _, err := l.Append([]storage.Record{testRecord(w*1000 + i)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	syncs := l.syncs.Load()
	t.Logf("%d appends, %d flushes", writers*appends, syncs)
	if syncs >= writers*appends {
		t.Errorf("%d flushes for %d concurrent appends: no group commit", syncs, writers*appends)
	}
	if l.Next() != writers*appends {
		t.Fatalf("Next %d, want %d", l.Next(), writers*appends)
	}
}

// TestNotVisibleBeforeFlush: under SyncAlways a reader never sees a record before it is flushed.
func TestNotVisibleBeforeFlush(t *testing.T) {
	t.Parallel()
	b := openT(t, t.TempDir(), Options{})
	l := openLogT(t, b, "s", "0")
	started := make(chan struct{})
	l.syncMu.Lock()
	l.syncing = true // hold off every flush
	l.syncMu.Unlock()
	res := make(chan error, 1)
	go func() {
		close(started)
		_, err := l.Append([]storage.Record{testRecord(0)})
		res <- err
	}()
	<-started
	time.Sleep(20 * time.Millisecond)
	if l.Next() != 0 {
		t.Fatalf("record visible (Next %d) before its flush", l.Next())
	}
	select {
	case err := <-res:
		t.Fatalf("Append returned %v before its flush", err)
	default:
	}
	l.syncMu.Lock()
	l.syncing = false
	l.syncCond.Broadcast()
	l.syncMu.Unlock()
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	if l.Next() != 1 {
		t.Fatalf("Next %d after the flush, want 1", l.Next())
	}
}

func TestLogCloseReopens(t *testing.T) {
	t.Parallel()
	b := openT(t, t.TempDir(), Options{})
	l := openLogT(t, b, "s", "0")
	appendN(t, l, 0, 3)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := openLogT(t, b, "s", "0")
	if l2 == l {
		t.Fatal("OpenLog returned the closed log")
	}
	appendN(t, l2, 3, 5)
	checkLog(t, l2, 0, 5)
}

func TestCorruptMeta(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := openT(t, dir, Options{})
	if err := b.PutMeta("stream/x", []byte("v")); err != nil {
		t.Fatal(err)
	}
	b.Close()
	path := filepath.Join(dir, metaDir, fileName("stream/x"))
	data, _ := os.ReadFile(path)
	data[len(data)-1] ^= 1
	os.WriteFile(path, data, 0o644)
	os.WriteFile(filepath.Join(dir, metaDir, tmpPrefix+"123"), []byte("half-written"), 0o644)
	_, err := Open(dir, Options{})
	if err == nil || !strings.Contains(err.Error(), path) || !errors.Is(err, errCorrupt) {
		t.Fatalf("Open with a corrupt metadata file: %v, want an error naming it", err)
	}
	os.Remove(path)
	b = openT(t, dir, Options{})
	if keys, _ := b.ListMeta(""); len(keys) != 0 {
		t.Fatalf("keys %q, want none", keys)
	}
	if _, err := os.Stat(filepath.Join(dir, metaDir, tmpPrefix+"123")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("leftover temporary file not removed")
	}
}

// TestCloseStopsGoroutines checks that Close waits for the background flusher. It looks for the
// flusher by name in the goroutine dump (other tests of the package run in parallel, so a plain
// goroutine count would be noise).
func TestCloseStopsGoroutines(t *testing.T) {
	flushers := func() int {
		buf := make([]byte, 1<<20)
		return strings.Count(string(buf[:runtime.Stack(buf, true)]), "disk.(*Backend).syncLoop")
	}
	before := flushers()
	b, err := Open(t.TempDir(), Options{Sync: SyncInterval, SyncPeriod: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(2 * time.Second); flushers() <= before; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no background flusher running with SyncInterval")
		}
	}
	l, _ := b.OpenLog("s", "0")
	appendN(t, l, 0, 3)
	time.Sleep(5 * time.Millisecond)
	b.Close()
	if after := flushers(); after > before {
		t.Fatalf("%d flusher goroutines after Close, %d before", after, before)
	}
}

func TestSyncIntervalFlushes(t *testing.T) {
	t.Parallel()
	b := openT(t, t.TempDir(), Options{Sync: SyncInterval, SyncPeriod: time.Millisecond})
	l := openLogT(t, b, "s", "0")
	appendN(t, l, 0, 3)
	deadline := time.Now().Add(5 * time.Second)
	for l.syncs.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no background flush")
		}
		time.Sleep(time.Millisecond)
	}
}
