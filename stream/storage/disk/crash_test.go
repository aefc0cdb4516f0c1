package disk

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kinesis-network/portal/stream/storage"
)

const crashDirEnv = "DISK_CRASH_HELPER_DIR"

// crashRecord is record j of append s of writer w in run r of TestCrash: its content follows from
// those numbers, which its partition key carries.
func crashRecord(r, w, s, j int) storage.Record {
	key := fmt.Sprintf("r%d/w%d/s%d/j%d", r, w, s, j)
	n := 20 + (r*131+w*37+s*11+j*7)%3000
	data := make([]byte, n)
	x := uint32(r*1_000_003+w*10_007+s*101+j) | 1
	for i := range data {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		data[i] = byte(x)
	}
	return storage.Record{Arrival: time.Now(), PartitionKey: key, Data: data}
}

// TestHelperProcess is the child of TestCrash, not a test: it appends to a log under SyncAlways
// from several goroutines and prints "run writer seq first count" for every acknowledged Append
// until it is killed.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		return // not a test of its own: TestCrash runs it as a child process
	}
	run, _ := strconv.Atoi(os.Getenv(crashDirEnv + "_RUN"))
	b, err := Open(dir, Options{SegmentBytes: 64 << 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	l, err := b.OpenLog("crash", "shardId-000000000000")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	for w := range 3 {
		go func() {
			for s := 0; ; s++ {
				n := 1 + (s+w)%5
				var rs []storage.Record
				for j := range n {
					rs = append(rs, crashRecord(run, w, s, j))
				}
				first, err := l.Append(rs)
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "%d %d %d %d %d\n", run, w, s, first, n) // one write(2)
				mu.Unlock()
			}
		}()
	}
	select {}
}

// crashAck is an Append the child acknowledged: its records are crashRecord(run, w, s, 0..n-1) at
// indexes first...
type crashAck struct{ run, w, s, first, n int }

// TestCrash kills a child process that appends under SyncAlways with SIGKILL at random moments,
// then checks that every acknowledged record is present and intact and that indexes are
// contiguous, over and over on the same directory.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: starts processes")
	}
	t.Parallel()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	var acks []crashAck
	for run := range 20 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, fmt.Sprintf("%s_RUN=%d", crashDirEnv, run))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1024)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		// Most runs die while appending; some while still starting (recovering).
		var (
			wait time.Duration
			got  []string
		)
		if rng.IntN(4) > 0 {
			select {
			case l, ok := <-lines:
				if ok {
					got = append(got, l)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("run %d: child acknowledged nothing; stderr: %s", run, stderr.String())
			}
			wait = time.Duration(rng.IntN(150)) * time.Millisecond
		} else {
			wait = time.Duration(rng.IntN(40)) * time.Millisecond
		}
		time.Sleep(wait)
		cmd.Process.Kill()
		for l := range lines {
			got = append(got, l)
		}
		n := 0
		for _, l := range got {
			f := strings.Fields(l)
			if len(f) != 5 {
				t.Fatalf("run %d: bad line %q", run, l)
			}
			var a crashAck
			for i, p := range []*int{&a.run, &a.w, &a.s, &a.first, &a.n} {
				*p, _ = strconv.Atoi(f[i])
			}
			acks = append(acks, a)
			n++
		}
		err = cmd.Wait()
		if !strings.Contains(fmt.Sprint(err), "killed") {
			t.Fatalf("run %d: child ended with %v, not killed; stderr: %s", run, err, stderr.String())
		}
		t.Logf("run %d: killed after %v, %d appends acknowledged", run, wait, n)
		verifyCrashLog(t, dir, acks)
	}
}

// verifyCrashLog opens the log in dir and checks every acknowledged append and the integrity and
// contiguity of every record.
func verifyCrashLog(t *testing.T, dir string, acks []crashAck) {
	t.Helper()
	b, err := Open(dir, Options{SegmentBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	l, err := b.OpenLog("crash", "shardId-000000000000")
	if err != nil {
		t.Fatal(err)
	}
	var all []storage.Record
	for from := uint64(0); ; {
		rs, err := l.Read(from, 1000, 8<<20)
		if err != nil {
			t.Fatalf("Read(%d): %v", from, err)
		}
		if len(rs) == 0 {
			break
		}
		for _, r := range rs {
			if r.Index != from {
				t.Fatalf("index %d follows %d: not contiguous", r.Index, from-1)
			}
			var run, w, s, j int
			if _, err := fmt.Sscanf(r.PartitionKey, "r%d/w%d/s%d/j%d", &run, &w, &s, &j); err != nil {
				t.Fatalf("record %d: partition key %q: %v", r.Index, r.PartitionKey, err)
			}
			if want := crashRecord(run, w, s, j); !bytes.Equal(r.Data, want.Data) {
				t.Fatalf("record %d (%s): data corrupt", r.Index, r.PartitionKey)
			}
			from++
		}
		all = append(all, rs...)
	}
	if l.Next() != uint64(len(all)) || l.First() != 0 {
		t.Fatalf("First %d Next %d, but %d records read", l.First(), l.Next(), len(all))
	}
	for _, a := range acks {
		for j := range a.n {
			i := a.first + j
			want := fmt.Sprintf("r%d/w%d/s%d/j%d", a.run, a.w, a.s, j)
			if i >= len(all) {
				t.Fatalf("acknowledged record %d (%s) lost: log ends at %d", i, want, len(all))
			}
			if all[i].PartitionKey != want {
				t.Fatalf("acknowledged record %d is %s, want %s", i, all[i].PartitionKey, want)
			}
		}
	}
}
