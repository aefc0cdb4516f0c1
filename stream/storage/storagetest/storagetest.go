// Package storagetest is the contract test suite of storage.Backend and storage.Log. Every backend
// runs the very same tests; a new backend is done when Run (and, if it persists data, RunDurable)
// passes under -race.
package storagetest

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kinesis-network/portal/stream/storage"
)

// t0 is the arrival time of the first record of most tests; nanoseconds must survive.
var t0 = time.Unix(1_700_000_000, 123_456_789)

// Run runs the contract suite. newBackend must return a new, empty backend each time it is
// called; the suite closes it (Close is idempotent, so newBackend may register a Close as well).
func Run(t *testing.T, newBackend func(t *testing.T) storage.Backend) {
	open := func(t *testing.T) storage.Backend {
		b := newBackend(t)
		t.Cleanup(func() { b.Close() })
		return b
	}
	tests := []struct {
		name string
		fn   func(*testing.T, storage.Backend)
	}{
		{"EmptyLog", testEmptyLog},
		{"AppendRead", testAppendRead},
		{"RecordFields", testRecordFields},
		{"AppendCopiesInput", testAppendCopiesInput},
		{"ReadLimits", testReadLimits},
		{"ReadBounds", testReadBounds},
		{"SeekTime", testSeekTime},
		{"Trim", testTrim},
		{"ManyRecords", testManyRecords},
		{"LogsAreSeparate", testLogsAreSeparate},
		{"Names", testNames},
		{"Meta", testMeta},
		{"MetaKeys", testMetaKeys},
		{"DeleteStream", testDeleteStream},
		{"Concurrent", testConcurrent},
		{"LogClose", testLogClose},
		{"Close", testClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// RunDurable runs the persistence tests: open must open the backend stored in dir (creating it
// when dir is empty). The suite closes every backend it opens before opening dir again.
func RunDurable(t *testing.T, open func(t *testing.T, dir string) storage.Backend) {
	tests := []struct {
		name string
		fn   func(*testing.T, func() storage.Backend)
	}{
		{"Reopen", testReopen},
		{"TrimPersists", testTrimPersists},
		{"DeleteStreamPersists", testDeleteStreamPersists},
		{"MetaPersists", testMetaPersists},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			var last storage.Backend
			t.Cleanup(func() {
				if last != nil {
					last.Close()
				}
			})
			tc.fn(t, func() storage.Backend {
				last = open(t, dir)
				return last
			})
		})
	}
}

// rec returns a record with content derived from i: a test knows what record i must hold. Its
// Data may be shared with other calls: clone it before modifying it.
func rec(i int, arrival time.Time) storage.Record {
	if c := recCache(); i < len(c) {
		r := c[i]
		r.Arrival = arrival
		return r
	}
	return makeRec(i, arrival)
}

func makeRec(i int, arrival time.Time) storage.Record {
	r := storage.Record{
		Arrival:      arrival,
		PartitionKey: fmt.Sprintf("pk-%d", i),
		Data:         payload(i, (i*37)%700),
	}
	if i%3 == 0 {
		r.ExplicitHashKey = fmt.Sprint(uint64(i) * 1_000_000_007)
	}
	return r
}

// recCache holds the records the tests use most, computed once.
var recCache = sync.OnceValue(func() []storage.Record {
	c := make([]storage.Record, 4000)
	for i := range c {
		c[i] = makeRec(i, time.Time{})
	}
	return c
})

func payload(seed, n int) []byte {
	b := make([]byte, n)
	x := uint32(seed)*2654435761 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// recs returns records from..to-1 of rec, arriving one millisecond apart from t0.
func recs(from, to int) []storage.Record {
	var out []storage.Record
	for i := from; i < to; i++ {
		out = append(out, rec(i, arrivalOf(i)))
	}
	return out
}

func arrivalOf(i int) time.Time { return t0.Add(time.Duration(i) * time.Millisecond) }

func openLog(t *testing.T, b storage.Backend, stream, shard string) storage.Log {
	t.Helper()
	l, err := b.OpenLog(stream, shard)
	if err != nil {
		t.Fatalf("OpenLog(%q, %q): %v", stream, shard, err)
	}
	return l
}

func appendRecs(t *testing.T, l storage.Log, rs []storage.Record) uint64 {
	t.Helper()
	first, err := l.Append(rs)
	if err != nil {
		t.Fatalf("Append(%d records): %v", len(rs), err)
	}
	return first
}

// equalRecord reports how got differs from want, which must have Index set.
func diffRecord(got, want storage.Record) string {
	var d []string
	if got.Index != want.Index {
		d = append(d, fmt.Sprintf("Index %d, want %d", got.Index, want.Index))
	}
	if !got.Arrival.Equal(want.Arrival) {
		d = append(d, fmt.Sprintf("Arrival %v, want %v", got.Arrival, want.Arrival))
	}
	if got.PartitionKey != want.PartitionKey {
		d = append(d, fmt.Sprintf("PartitionKey %q, want %q", got.PartitionKey, want.PartitionKey))
	}
	if got.ExplicitHashKey != want.ExplicitHashKey {
		d = append(d, fmt.Sprintf("ExplicitHashKey %q, want %q", got.ExplicitHashKey, want.ExplicitHashKey))
	}
	if !bytes.Equal(got.Data, want.Data) {
		d = append(d, fmt.Sprintf("Data (%d bytes) differs from want (%d bytes)", len(got.Data), len(want.Data)))
	}
	return strings.Join(d, "; ")
}

// checkRecords compares got with the records of rec starting at index from, arriving as arrivalOf.
func checkRecords(t *testing.T, got []storage.Record, from int) {
	t.Helper()
	for i, g := range got {
		want := rec(from+i, arrivalOf(from+i))
		want.Index = uint64(from + i)
		if d := diffRecord(g, want); d != "" {
			t.Fatalf("record %d: %s", from+i, d)
		}
	}
}

// readAll reads every retained record, in chunks, checking that indexes are contiguous.
func readAll(t *testing.T, l storage.Log) []storage.Record {
	t.Helper()
	var out []storage.Record
	from := l.First()
	for {
		rs, err := l.Read(from, 97, 1<<20)
		if err != nil {
			t.Fatalf("Read(%d): %v", from, err)
		}
		if len(rs) == 0 {
			return out
		}
		for _, r := range rs {
			if r.Index != from {
				t.Fatalf("Read returned index %d, want %d", r.Index, from)
			}
			from++
		}
		out = append(out, rs...)
	}
}

func testEmptyLog(t *testing.T, b storage.Backend) {
	l := openLog(t, b, "s", "shard-0")
	if l.First() != 0 || l.Next() != 0 {
		t.Fatalf("new log: First %d Next %d, want 0 0", l.First(), l.Next())
	}
	rs, err := l.Read(0, 10, 1<<20)
	if err != nil || len(rs) != 0 {
		t.Fatalf("Read on empty log = %d records, %v; want none, nil", len(rs), err)
	}
	if i, err := l.SeekTime(t0); err != nil || i != 0 {
		t.Fatalf("SeekTime on empty log = %d, %v; want 0, nil", i, err)
	}
	if err := l.Trim(t0.Add(time.Hour)); err != nil {
		t.Fatalf("Trim on empty log: %v", err)
	}
	if first, err := l.Append(nil); err != nil || first != 0 || l.Next() != 0 {
		t.Fatalf("Append(nil) = %d, %v, Next %d; want 0, nil, 0", first, err, l.Next())
	}
}

func testAppendRead(t *testing.T, b storage.Backend) {
	l := openLog(t, b, "s", "shard-0")
	if first := appendRecs(t, l, recs(0, 3)); first != 0 {
		t.Fatalf("first Append returned %d, want 0", first)
	}
	if first := appendRecs(t, l, recs(3, 5)); first != 3 {
		t.Fatalf("second Append returned %d, want 3", first)
	}
	if first := appendRecs(t, l, recs(5, 6)); first != 5 {
		t.Fatalf("third Append returned %d, want 5", first)
	}
	if l.First() != 0 || l.Next() != 6 {
		t.Fatalf("First %d Next %d, want 0 6", l.First(), l.Next())
	}
	if first, err := l.Append([]storage.Record{}); err != nil || first != 6 || l.Next() != 6 {
		t.Fatalf("Append(empty) = %d, %v, Next %d; want 6, nil, 6", first, err, l.Next())
	}
	rs, err := l.Read(0, 100, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 6 {
		t.Fatalf("Read returned %d records, want 6", len(rs))
	}
	checkRecords(t, rs, 0)
	rs, err = l.Read(4, 100, 1<<20)
	if err != nil || len(rs) != 2 {
		t.Fatalf("Read(4) = %d records, %v; want 2", len(rs), err)
	}
	checkRecords(t, rs, 4)
	// The same log opened again sees the same records.
	l2 := openLog(t, b, "s", "shard-0")
	if l2.Next() != 6 {
		t.Fatalf("log opened again: Next %d, want 6", l2.Next())
	}
}

func testRecordFields(t *testing.T, b storage.Backend) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	cases := []storage.Record{
		{PartitionKey: "k", Data: []byte("hello")},
		{PartitionKey: "", Data: nil},
		{PartitionKey: "ключ/日本:\x00\xff", Data: all},
		{PartitionKey: strings.Repeat("p", 256), ExplicitHashKey: "340282366920938463463374607431768211455", Data: []byte{0}},
		{PartitionKey: "big", Data: payload(1, 1<<20)},
		{PartitionKey: "k2", Data: bytes.Repeat([]byte{0xff}, 200)},
	}
	for i := range cases {
		cases[i].Arrival = t0.Add(time.Duration(i))
	}
	l := openLog(t, b, "s", "fields")
	appendRecs(t, l, cases)
	rs, err := l.Read(0, 100, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != len(cases) {
		t.Fatalf("Read returned %d records, want %d", len(rs), len(cases))
	}
	for i, r := range rs {
		want := cases[i]
		want.Index = uint64(i)
		if d := diffRecord(r, want); d != "" {
			t.Errorf("record %d: %s", i, d)
		}
	}

	// The zero arrival time round-trips too.
	l = openLog(t, b, "s", "zero-time")
	appendRecs(t, l, []storage.Record{{PartitionKey: "z", Data: []byte("z")}})
	rs, err = l.Read(0, 1, 100)
	if err != nil || len(rs) != 1 || !rs[0].Arrival.IsZero() {
		t.Fatalf("zero arrival: Read = %v, %v; want one record with a zero Arrival", rs, err)
	}
}

func testAppendCopiesInput(t *testing.T, b storage.Backend) {
	l := openLog(t, b, "s", "shard-0")
	in := recs(0, 2)
	for i := range in {
		in[i].Data = bytes.Clone(in[i].Data)
	}
	in[0].Index, in[1].Index = 77, 99 // ignored
	appendRecs(t, l, in)
	for i := range in {
		for j := range in[i].Data {
			in[i].Data[j] ^= 0xff
		}
	}
	rs, err := l.Read(0, 10, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, rs, 0)
}

func testReadLimits(t *testing.T, b storage.Backend) {
	l := openLog(t, b, "s", "limits")
	// Ten records of Size 10 (partition key "k" and 9 bytes of data), then one of Size 1000.
	var in []storage.Record
	for i := range 10 {
		in = append(in, storage.Record{Arrival: t0, PartitionKey: "k", Data: payload(i, 9)})
	}
	in = append(in, storage.Record{Arrival: t0, PartitionKey: "k", Data: payload(10, 999)})
	appendRecs(t, l, in)
	cases := []struct {
		from, maxRecords, maxBytes int
		want                       int // records returned, from from
	}{
		{0, 100, 1 << 20, 11},
		{0, 3, 1 << 20, 3},
		{0, 1, 1 << 20, 1},
		{0, 0, 1 << 20, 0},
		{0, -1, 1 << 20, 0},
		{0, 100, 25, 2},
		{0, 100, 30, 3},  // exactly at the limit
		{0, 100, 0, 1},   // the first record is always returned
		{0, 100, -5, 1},  // even with a nonsensical limit
		{10, 100, 10, 1}, // even when it alone exceeds maxBytes
		{9, 100, 500, 1}, // stops before a record that does not fit
		{9, 100, 1010, 2},
		{5, 2, 1 << 20, 2},
	}
	for _, c := range cases {
		rs, err := l.Read(uint64(c.from), c.maxRecords, c.maxBytes)
		if err != nil {
			t.Fatalf("Read(%d, %d, %d): %v", c.from, c.maxRecords, c.maxBytes, err)
		}
		if len(rs) != c.want {
			t.Errorf("Read(%d, %d, %d) returned %d records, want %d", c.from, c.maxRecords, c.maxBytes, len(rs), c.want)
			continue
		}
		for i, r := range rs {
			w := in[c.from+i]
			w.Index = uint64(c.from + i)
			if d := diffRecord(r, w); d != "" {
				t.Errorf("Read(%d, %d, %d) record %d: %s", c.from, c.maxRecords, c.maxBytes, i, d)
			}
		}
	}
}

func testReadBounds(t *testing.T, b storage.Backend) {
	l := openLog(t, b, "s", "bounds")
	appendRecs(t, l, recs(0, 5))
	for _, from := range []uint64{5, 6, 1000, 1<<63 + 5, ^uint64(0)} {
		rs, err := l.Read(from, 10, 1<<20)
		if err != nil || len(rs) != 0 {
			t.Errorf("Read(%d) past Next = %d records, %v; want none, nil", from, len(rs), err)
		}
	}
	rs, err := l.Read(4, 10, 1<<20)
	if err != nil || len(rs) != 1 || rs[0].Index != 4 {
		t.Fatalf("Read(Next-1) = %v, %v; want record 4", rs, err)
	}
}

func testSeekTime(t *testing.T, b storage.Backend) {
	l := openLog(t, b, "s", "seek")
	// Arrivals: 0,0,0,10,10,20,30,30,30,40 seconds after t0.
	secs := []int{0, 0, 0, 10, 10, 20, 30, 30, 30, 40}
	var in []storage.Record
	for i, s := range secs {
		r := rec(i, t0.Add(time.Duration(s)*time.Second))
		in = append(in, r)
	}
	appendRecs(t, l, in[:4])
	appendRecs(t, l, in[4:])
	cases := []struct {
		at   time.Duration
		want uint64
	}{
		{-time.Hour, 0},
		{-time.Nanosecond, 0},
		{0, 0},
		{time.Nanosecond, 3},
		{10 * time.Second, 3},
		{15 * time.Second, 5},
		{20 * time.Second, 5},
		{20*time.Second + 1, 6},
		{30 * time.Second, 6},
		{40 * time.Second, 9},
		{40*time.Second + 1, 10},
		{time.Hour, 10},
	}
	for _, c := range cases {
		got, err := l.SeekTime(t0.Add(c.at))
		if err != nil || got != c.want {
			t.Errorf("SeekTime(t0%+v) = %d, %v; want %d", c.at, got, err, c.want)
		}
	}
	if got, err := l.SeekTime(time.Time{}); err != nil || got != 0 {
		t.Errorf("SeekTime(zero time) = %d, %v; want 0", got, err)
	}
}

func testTrim(t *testing.T, b storage.Backend) {
	l := openLog(t, b, "s", "trim")
	for i := 0; i < 100; i += 10 {
		appendRecs(t, l, recs(i, i+10))
	}
	if err := l.Trim(t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if l.First() != 0 {
		t.Fatalf("Trim before every arrival moved First to %d", l.First())
	}
	prevFirst, maxCut := uint64(0), 0
	for _, cut := range []int{0, 30, 29, 55, 99, 100} {
		if err := l.Trim(arrivalOf(cut)); err != nil {
			t.Fatalf("Trim(arrival of %d): %v", cut, err)
		}
		maxCut = max(maxCut, cut)
		first := l.First()
		if first > uint64(maxCut) {
			t.Fatalf("Trim(arrival of %d) dropped records that arrived at or after it: First %d", cut, first)
		}
		if first < prevFirst {
			t.Fatalf("First went back from %d to %d", prevFirst, first)
		}
		prevFirst = first
		if l.Next() != 100 {
			t.Fatalf("Trim changed Next to %d", l.Next())
		}
		rs := readAll(t, l)
		if uint64(len(rs)) != 100-first {
			t.Fatalf("after Trim: read %d records, want %d from First %d", len(rs), 100-first, first)
		}
		checkRecords(t, rs, int(first))
		// Reading below First starts at First.
		rs, err := l.Read(0, 1, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if first < 100 && (len(rs) != 1 || rs[0].Index != first) {
			t.Fatalf("Read(0) after Trim returned %v, want record %d", rs, first)
		}
		if i, err := l.SeekTime(t0.Add(-time.Hour)); err != nil || i != first {
			t.Fatalf("SeekTime(before all) after Trim = %d, %v; want First %d", i, err, first)
		}
	}
	// Trimming past every arrival may empty the log; indexes continue regardless.
	if err := l.Trim(arrivalOf(1000)); err != nil {
		t.Fatal(err)
	}
	if first := appendRecs(t, l, recs(100, 110)); first != 100 {
		t.Fatalf("Append after Trim returned %d, want 100", first)
	}
	rs, err := l.Read(100, 100, 1<<20)
	if err != nil || len(rs) != 10 {
		t.Fatalf("Read(100) after Trim = %d records, %v; want 10", len(rs), err)
	}
	checkRecords(t, rs, 100)
}

func testManyRecords(t *testing.T, b storage.Backend) {
	l := openLog(t, b, "s", "many")
	const n = 3000
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < n; {
		k := min(1+rng.IntN(60), n-i)
		if first := appendRecs(t, l, recs(i, i+k)); first != uint64(i) {
			t.Fatalf("Append returned %d, want %d", first, i)
		}
		i += k
	}
	rs := readAll(t, l)
	if len(rs) != n {
		t.Fatalf("read %d records, want %d", len(rs), n)
	}
	checkRecords(t, rs, 0)
	for range 200 {
		from := rng.IntN(n + 10)
		maxRecords := 1 + rng.IntN(300)
		maxBytes := rng.IntN(64 << 10)
		rs, err := l.Read(uint64(from), maxRecords, maxBytes)
		if err != nil {
			t.Fatalf("Read(%d): %v", from, err)
		}
		want, size := 0, 0
		for i := from; i < n && want < maxRecords; i++ {
			s := rec(i, t0).Size()
			if want > 0 && size+s > maxBytes {
				break
			}
			size += s
			want++
		}
		if len(rs) != want {
			t.Fatalf("Read(%d, %d, %d) returned %d records, want %d", from, maxRecords, maxBytes, len(rs), want)
		}
		checkRecords(t, rs, from)
	}
	for range 100 {
		i := rng.IntN(n + 1)
		at := arrivalOf(i).Add(-time.Duration(rng.IntN(int(time.Millisecond))))
		if rng.IntN(2) == 0 {
			at = arrivalOf(i)
		}
		got, err := l.SeekTime(at)
		if err != nil || got != uint64(i) {
			t.Fatalf("SeekTime(arrival of %d) = %d, %v; want %d", i, got, err, i)
		}
	}
	cut := 1234
	if err := l.Trim(arrivalOf(cut)); err != nil {
		t.Fatal(err)
	}
	first := l.First()
	if first > uint64(cut) {
		t.Fatalf("Trim(arrival of %d) moved First to %d", cut, first)
	}
	rs = readAll(t, l)
	if uint64(len(rs)) != n-first {
		t.Fatalf("after Trim read %d records, want %d", len(rs), n-first)
	}
	checkRecords(t, rs, int(first))
	if got, err := l.SeekTime(arrivalOf(cut + 10)); err != nil || got != uint64(cut+10) {
		t.Fatalf("SeekTime after Trim = %d, %v; want %d", got, err, cut+10)
	}
}

func testLogsAreSeparate(t *testing.T, b storage.Backend) {
	a := openLog(t, b, "s1", "shard-0")
	c := openLog(t, b, "s1", "shard-1")
	d := openLog(t, b, "s2", "shard-0")
	appendRecs(t, a, recs(0, 3))
	if first := appendRecs(t, c, recs(0, 2)); first != 0 {
		t.Fatalf("second shard's first index %d, want 0", first)
	}
	if d.Next() != 0 {
		t.Fatalf("other stream's shard has Next %d, want 0", d.Next())
	}
	if a.Next() != 3 || c.Next() != 2 {
		t.Fatalf("Next: %d and %d, want 3 and 2", a.Next(), c.Next())
	}
	// Two handles on one log see each other's appends.
	a2 := openLog(t, b, "s1", "shard-0")
	appendRecs(t, a2, recs(3, 4))
	if a.Next() != 4 {
		t.Fatalf("append through a second handle: Next %d, want 4", a.Next())
	}
	checkRecords(t, readAll(t, a), 0)
}

// awkwardNames are stream keys, shard ids and metadata keys that are hard to use as file names.
var awkwardNames = []string{
	"plain", "Plain", "PLAIN", "a/b", "a/b/../c", "..", ".", "/", "a:b", "arn:aws:kinesis:us-east-1:123456789012:stream/x",
	"with space", "tab\there", "nul\x00byte", "percent%2F", "%", "~", "ünïcödé", "\xff\xfe", strings.Repeat("x", 300),
	strings.Repeat("Y", 300), strings.Repeat("x", 299) + "y", "",
}

func testNames(t *testing.T, b storage.Backend) {
	logs := map[[2]string]storage.Log{}
	for i, s := range awkwardNames {
		sh := awkwardNames[(i+3)%len(awkwardNames)]
		l := openLog(t, b, s, sh)
		logs[[2]string{s, sh}] = l
		appendRecs(t, l, recs(0, i+1))
	}
	i := 0
	for _, s := range awkwardNames {
		sh := awkwardNames[(i+3)%len(awkwardNames)]
		l := openLog(t, b, s, sh)
		if l.Next() != uint64(i+1) {
			t.Errorf("log %q/%q: Next %d, want %d", s, sh, l.Next(), i+1)
		}
		i++
	}
	if err := b.DeleteStream("a/b"); err != nil {
		t.Fatal(err)
	}
	if l := openLog(t, b, "a/b/../c", awkwardNames[7]); l.Next() != 5 {
		t.Errorf("deleting stream %q affected stream %q: Next %d, want 5", "a/b", "a/b/../c", l.Next())
	}
}

func testMeta(t *testing.T, b storage.Backend) {
	_, err := b.GetMeta("missing")
	if !errors.Is(err, storage.ErrNotFound) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("GetMeta(missing) error %v; want storage.ErrNotFound, which is fs.ErrNotExist", err)
	}
	val := []byte("value-1")
	if err := b.PutMeta("k", val); err != nil {
		t.Fatal(err)
	}
	val[0] = 'X' // the stored value is a copy
	got, err := b.GetMeta("k")
	if err != nil || string(got) != "value-1" {
		t.Fatalf("GetMeta(k) = %q, %v; want value-1", got, err)
	}
	got[0] = 'Y' // so is the returned one
	if got, _ := b.GetMeta("k"); string(got) != "value-1" {
		t.Fatalf("modifying a returned value changed the stored one to %q", got)
	}
	if err := b.PutMeta("k", []byte("value-2")); err != nil {
		t.Fatal(err)
	}
	if got, err := b.GetMeta("k"); err != nil || string(got) != "value-2" {
		t.Fatalf("after overwrite GetMeta(k) = %q, %v; want value-2", got, err)
	}
	if err := b.PutMeta("empty", nil); err != nil {
		t.Fatal(err)
	}
	if got, err := b.GetMeta("empty"); err != nil || len(got) != 0 {
		t.Fatalf("GetMeta(empty) = %q, %v; want an empty value", got, err)
	}
	big := payload(7, 1<<20)
	if err := b.PutMeta("big", big); err != nil {
		t.Fatal(err)
	}
	if got, err := b.GetMeta("big"); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("GetMeta(big) = %d bytes, %v; want the 1 MiB value", len(got), err)
	}
	if err := b.DeleteMeta("k"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.GetMeta("k"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetMeta after DeleteMeta: %v, want storage.ErrNotFound", err)
	}
	if err := b.DeleteMeta("k"); err != nil {
		t.Fatalf("DeleteMeta of a missing key: %v, want nil", err)
	}
	if err := b.DeleteMeta("never-existed"); err != nil {
		t.Fatalf("DeleteMeta of a missing key: %v, want nil", err)
	}

	for _, k := range []string{"stream/b", "stream/a", "stream/a/consumer/1", "streamx", "tag/a", "stream/"} {
		if err := b.PutMeta(k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		prefix string
		want   []string
	}{
		{"stream/", []string{"stream/", "stream/a", "stream/a/consumer/1", "stream/b"}},
		{"stream/a", []string{"stream/a", "stream/a/consumer/1"}},
		{"stream", []string{"stream/", "stream/a", "stream/a/consumer/1", "stream/b", "streamx"}},
		{"tag/", []string{"tag/a"}},
		{"nothing", nil},
		{"", []string{"big", "empty", "stream/", "stream/a", "stream/a/consumer/1", "stream/b", "streamx", "tag/a"}},
	}
	for _, c := range cases {
		got, err := b.ListMeta(c.prefix)
		if err != nil {
			t.Fatalf("ListMeta(%q): %v", c.prefix, err)
		}
		if len(got) != len(c.want) || len(got) > 0 && !slices.Equal(got, c.want) {
			t.Errorf("ListMeta(%q) = %q, want %q", c.prefix, got, c.want)
		}
	}
}

func testMetaKeys(t *testing.T, b storage.Backend) {
	for i, k := range awkwardNames {
		if err := b.PutMeta(k, []byte(fmt.Sprint(i))); err != nil {
			t.Fatalf("PutMeta(%q): %v", k, err)
		}
	}
	for i, k := range awkwardNames {
		got, err := b.GetMeta(k)
		if err != nil || string(got) != fmt.Sprint(i) {
			t.Errorf("GetMeta(%q) = %q, %v; want %d", k, got, err, i)
		}
	}
	keys, err := b.ListMeta("")
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(awkwardNames)
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Errorf("ListMeta(\"\") = %q, want %q", keys, want)
	}
}

func testDeleteStream(t *testing.T, b storage.Backend) {
	a0 := openLog(t, b, "doomed", "shard-0")
	a1 := openLog(t, b, "doomed", "shard-1")
	keep := openLog(t, b, "kept", "shard-0")
	prefix := openLog(t, b, "doomed-not", "shard-0")
	for _, l := range []storage.Log{a0, a1, keep, prefix} {
		appendRecs(t, l, recs(0, 5))
	}
	if err := b.DeleteStream("doomed"); err != nil {
		t.Fatal(err)
	}
	if _, err := a0.Append(recs(5, 6)); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("Append to a log of a deleted stream: %v, want storage.ErrClosed", err)
	}
	if _, err := a1.Read(0, 10, 1<<20); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("Read of a log of a deleted stream: %v, want storage.ErrClosed", err)
	}
	for _, l := range []storage.Log{keep, prefix} {
		if l.Next() != 5 {
			t.Fatalf("another stream's log lost records: Next %d", l.Next())
		}
		checkRecords(t, readAll(t, l), 0)
	}
	fresh := openLog(t, b, "doomed", "shard-0")
	if fresh.First() != 0 || fresh.Next() != 0 {
		t.Fatalf("log of a deleted stream opened again: First %d Next %d, want 0 0", fresh.First(), fresh.Next())
	}
	if first := appendRecs(t, fresh, recs(0, 2)); first != 0 {
		t.Fatalf("Append to a recreated log returned %d, want 0", first)
	}
	if err := b.DeleteStream("never-existed"); err != nil {
		t.Fatalf("DeleteStream of an unknown stream: %v, want nil", err)
	}
}

// testConcurrent runs appenders and readers on one log, and other operations alongside.
func testConcurrent(t *testing.T, b storage.Backend) {
	const writers, appends = 4, 40
	l := openLog(t, b, "s", "hot")
	type ack struct{ first, n uint64 }
	acks := make([][]ack, writers)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			for s := range appends {
				n := 1 + (w+s)%7
				var rs []storage.Record
				for j := range n {
					rs = append(rs, concRecord(w, s, j))
				}
				first, err := l.Append(rs)
				if err != nil {
					t.Errorf("writer %d: Append: %v", w, err)
					return
				}
				acks[w] = append(acks[w], ack{first, uint64(n)})
			}
		})
	}
	var readers sync.WaitGroup
	for r := range 2 {
		readers.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 9))
			for {
				select {
				case <-stop:
					return
				default:
				}
				next := l.Next()
				from := uint64(0)
				if next > 0 {
					from = rng.Uint64N(next)
				}
				rs, err := l.Read(from, 1+rng.IntN(50), 1<<20)
				if err != nil {
					t.Errorf("reader: Read: %v", err)
					return
				}
				if len(rs) == 0 && from < next {
					t.Errorf("reader: Read(%d) returned nothing though Next was %d", from, next)
					return
				}
				for i, r := range rs {
					if r.Index != from+uint64(i) {
						t.Errorf("reader: index %d, want %d", r.Index, from+uint64(i))
						return
					}
					if err := checkConcRecord(r); err != nil {
						t.Errorf("reader: record %d: %v", r.Index, err)
						return
					}
				}
				if _, err := l.SeekTime(t0); err != nil {
					t.Errorf("reader: SeekTime: %v", err)
					return
				}
			}
		})
	}
	// Other logs and metadata, at the same time.
	for g := range 2 {
		wg.Go(func() {
			for i := range 20 {
				ol := openLog(t, b, "other", fmt.Sprintf("shard-%d-%d", g, i%3))
				if _, err := ol.Append(recs(0, 1)); err != nil {
					t.Errorf("other log: Append: %v", err)
					return
				}
				key := fmt.Sprintf("conc/%d/%d", g, i)
				if err := b.PutMeta(key, []byte(key)); err != nil {
					t.Errorf("PutMeta: %v", err)
					return
				}
				if _, err := b.ListMeta("conc/"); err != nil {
					t.Errorf("ListMeta: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	if t.Failed() {
		return
	}
	all := readAll(t, l)
	total := 0
	for w := range writers {
		for s, a := range acks[w] {
			total += int(a.n)
			for j := range a.n {
				r := all[a.first+j]
				if d := diffRecord(r, withIndex(concRecord(w, s, int(j)), a.first+j)); d != "" {
					t.Fatalf("writer %d append %d record %d: %s", w, s, j, d)
				}
			}
			if s > 0 && a.first <= acks[w][s-1].first {
				t.Fatalf("writer %d: append %d got index %d, not after %d", w, s, a.first, acks[w][s-1].first)
			}
		}
	}
	if len(all) != total || l.Next() != uint64(total) {
		t.Fatalf("log holds %d records (Next %d), want %d", len(all), l.Next(), total)
	}
	keys, err := b.ListMeta("conc/")
	if err != nil || len(keys) != 40 {
		t.Fatalf("ListMeta(conc/) = %d keys, %v; want 40", len(keys), err)
	}
}

func withIndex(r storage.Record, i uint64) storage.Record {
	r.Index = i
	return r
}

func concRecord(w, s, j int) storage.Record {
	return storage.Record{
		Arrival:      t0,
		PartitionKey: fmt.Sprintf("w%d/s%d/j%d", w, s, j),
		Data:         payload(w*10000+s*10+j, 50+(w*31+s*7+j*3)%900),
	}
}

func checkConcRecord(r storage.Record) error {
	var w, s, j int
	if _, err := fmt.Sscanf(r.PartitionKey, "w%d/s%d/j%d", &w, &s, &j); err != nil {
		return fmt.Errorf("partition key %q: %v", r.PartitionKey, err)
	}
	if d := diffRecord(r, withIndex(concRecord(w, s, j), r.Index)); d != "" {
		return errors.New(d)
	}
	return nil
}

func testLogClose(t *testing.T, b storage.Backend) {
	l := openLog(t, b, "s", "shard-0")
	appendRecs(t, l, recs(0, 3))
	if err := l.Close(); err != nil {
		t.Fatalf("Log.Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Log.Close: %v", err)
	}
	if _, err := l.Append(recs(3, 4)); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("Append after Log.Close: %v, want storage.ErrClosed", err)
	}
	if _, err := l.Read(0, 10, 1<<20); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("Read after Log.Close: %v, want storage.ErrClosed", err)
	}
}

func testClose(t *testing.T, b storage.Backend) {
	l := openLog(t, b, "s", "shard-0")
	appendRecs(t, l, recs(0, 3))
	if err := b.PutMeta("k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := b.OpenLog("s", "shard-1"); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("OpenLog after Close: %v, want storage.ErrClosed", err)
	}
	if _, err := l.Append(recs(3, 4)); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("Append after Close: %v, want storage.ErrClosed", err)
	}
	if _, err := l.Read(0, 10, 1<<20); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("Read after Close: %v, want storage.ErrClosed", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Log.Close after Close: %v", err)
	}
}

// Persistence tests.

func testReopen(t *testing.T, open func() storage.Backend) {
	b := open()
	a := openLog(t, b, "s", "shard-0")
	c := openLog(t, b, "s/x:y", "shard-1")
	appendRecs(t, a, recs(0, 10))
	appendRecs(t, a, recs(10, 25))
	appendRecs(t, c, recs(0, 3))
	if err := b.PutMeta("stream/s", []byte("def")); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		b = open()
		a = openLog(t, b, "s", "shard-0")
		n := 25 + round*5
		if a.First() != 0 || a.Next() != uint64(n) {
			t.Fatalf("round %d: after reopen First %d Next %d, want 0 %d", round, a.First(), a.Next(), n)
		}
		rs := readAll(t, a)
		if len(rs) != n {
			t.Fatalf("round %d: read %d records, want %d", round, len(rs), n)
		}
		checkRecords(t, rs, 0)
		if got, err := a.SeekTime(arrivalOf(7)); err != nil || got != 7 {
			t.Fatalf("round %d: SeekTime after reopen = %d, %v; want 7", round, got, err)
		}
		if first := appendRecs(t, a, recs(n, n+5)); first != uint64(n) {
			t.Fatalf("round %d: Append after reopen returned %d, want %d", round, first, n)
		}
		c = openLog(t, b, "s/x:y", "shard-1")
		checkRecords(t, readAll(t, c), 0)
		if c.Next() != 3 {
			t.Fatalf("round %d: second log Next %d, want 3", round, c.Next())
		}
		if v, err := b.GetMeta("stream/s"); err != nil || string(v) != "def" {
			t.Fatalf("round %d: GetMeta after reopen = %q, %v", round, v, err)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func testTrimPersists(t *testing.T, open func() storage.Backend) {
	b := open()
	l := openLog(t, b, "s", "shard-0")
	for i := 0; i < 200; i += 20 {
		appendRecs(t, l, recs(i, i+20))
	}
	if err := l.Trim(arrivalOf(150)); err != nil {
		t.Fatal(err)
	}
	first := l.First()
	b.Close()

	b = open()
	l = openLog(t, b, "s", "shard-0")
	if l.First() != first || l.Next() != 200 {
		t.Fatalf("after reopen First %d Next %d, want %d 200", l.First(), l.Next(), first)
	}
	checkRecords(t, readAll(t, l), int(first))
	if err := l.Trim(arrivalOf(1000)); err != nil {
		t.Fatal(err)
	}
	first = l.First()
	b.Close()

	b = open()
	l = openLog(t, b, "s", "shard-0")
	if l.First() != first || l.Next() != 200 {
		t.Fatalf("after Trim of everything and reopen: First %d Next %d, want %d 200", l.First(), l.Next(), first)
	}
	if got := appendRecs(t, l, recs(200, 201)); got != 200 {
		t.Fatalf("Append after reopen returned %d, want 200", got)
	}
	checkRecords(t, readAll(t, l), int(first))
	b.Close()
}

func testDeleteStreamPersists(t *testing.T, open func() storage.Backend) {
	b := open()
	appendRecs(t, openLog(t, b, "gone", "shard-0"), recs(0, 5))
	appendRecs(t, openLog(t, b, "kept", "shard-0"), recs(0, 5))
	if err := b.DeleteStream("gone"); err != nil {
		t.Fatal(err)
	}
	b.Close()
	b = open()
	if l := openLog(t, b, "gone", "shard-0"); l.Next() != 0 {
		t.Fatalf("deleted stream's log after reopen: Next %d, want 0", l.Next())
	}
	l := openLog(t, b, "kept", "shard-0")
	if l.Next() != 5 {
		t.Fatalf("kept stream's log after reopen: Next %d, want 5", l.Next())
	}
	checkRecords(t, readAll(t, l), 0)
	b.Close()
}

func testMetaPersists(t *testing.T, open func() storage.Backend) {
	b := open()
	for i, k := range awkwardNames {
		if err := b.PutMeta(k, []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.PutMeta("plain", []byte("overwritten")); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteMeta("a/b"); err != nil {
		t.Fatal(err)
	}
	b.Close()
	b = open()
	defer b.Close()
	for i, k := range awkwardNames {
		want := fmt.Sprint(i)
		switch k {
		case "plain":
			want = "overwritten"
		case "a/b":
			if _, err := b.GetMeta(k); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("deleted key %q after reopen: %v, want storage.ErrNotFound", k, err)
			}
			continue
		}
		if got, err := b.GetMeta(k); err != nil || string(got) != want {
			t.Errorf("GetMeta(%q) after reopen = %q, %v; want %q", k, got, err, want)
		}
	}
	keys, err := b.ListMeta("")
	if err != nil || len(keys) != len(awkwardNames)-1 {
		t.Errorf("ListMeta after reopen = %d keys, %v; want %d", len(keys), err, len(awkwardNames)-1)
	}
}
