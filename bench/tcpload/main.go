// Command tcpload compares TCP traffic sent directly to a backend with traffic through the portal's
// L4 engine (gateway/l4), on loopback, in one run (issue 4, item 8):
//
//	(a) new connections per second, each with one 32-byte echo round trip;
//	(b) bulk download throughput over 1 and over 8 parallel connections;
//	(c) memory per idle proxied connection at 10,000 idle connections.
//
// The backend and the engine run in child processes (this binary with -role backend or -role
// proxy), so each one's memory is measured alone. A process may hold only RLIMIT_NOFILE descriptors
// and the engine needs two per proxied connection; when the limit is too low for -idle in one
// engine process, the idle connections are spread evenly over several engine processes and the
// report says so.
//
// Usage: bench/tcp.sh, or go run ./bench/tcpload -duration 3s -rounds 3 -idle 10000.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"syscall"
	"time"

	"github.com/kinesis-network/portal/bench"
)

func main() {
	role := flag.String("role", "driver", "driver, backend or proxy (children are started by the driver)")
	echoAddr := flag.String("echo", "", "proxy role: the backend's echo address")
	sourceAddr := flag.String("source", "", "proxy role: the backend's source address")
	duration := flag.Duration("duration", 3*time.Second, "length of each rate and throughput measurement")
	rounds := flag.Int("rounds", 3, "measurements per workload and path; the median is reported")
	workers := flag.Int("workers", 8, "concurrent clients of the connection-rate workload")
	idle := flag.Int("idle", 10000, "idle connections for the memory measurement (0 skips it)")
	timeout := flag.Duration("timeout", 5*time.Minute, "abort the whole run after this long")
	flag.Parse()
	raiseNoFile()

	var err error
	switch *role {
	case "backend":
		err = runBackend()
	case "proxy":
		err = runProxy(*echoAddr, *sourceAddr)
	case "driver":
		time.AfterFunc(*timeout, func() {
			fmt.Fprintf(os.Stderr, "tcpload: timed out after %v\n", *timeout)
			os.Exit(2)
		})
		err = drive(*duration, *rounds, *workers, *idle)
	default:
		err = fmt.Errorf("unknown role %q", *role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "tcpload: %v\n", err)
		os.Exit(1)
	}
}

// raiseNoFile raises the soft RLIMIT_NOFILE to the hard limit.
func raiseNoFile() uint64 {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 1024
	}
	if r.Cur < r.Max {
		r.Cur = r.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r)
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r)
	}
	return r.Cur
}

// --- children ---

type addrs struct {
	Echo   string `json:"echo"`
	Source string `json:"source"`
}

// serveCommands answers the driver on stdin/stdout until stdin closes: "mem" prints MemStats as
// JSON; "conns" prints the number of open connections.
func serveCommands(a addrs, conns func() int) error {
	out := json.NewEncoder(os.Stdout)
	if err := out.Encode(a); err != nil {
		return err
	}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		switch sc.Text() {
		case "mem":
			out.Encode(bench.ReadMem())
		case "conns":
			out.Encode(conns())
		default:
			out.Encode("unknown command")
		}
	}
	return nil
}

func runBackend() error {
	b, err := bench.StartBackend()
	if err != nil {
		return err
	}
	defer b.Close()
	return serveCommands(addrs{b.Echo.Addr().String(), b.Source.Addr().String()}, b.Conns)
}

func runProxy(echo, source string) error {
	p, err := bench.StartProxy(echo, source)
	if err != nil {
		return err
	}
	defer p.Close()
	return serveCommands(addrs{p.Echo, p.Source}, func() int { return -1 })
}

// child is a running backend or proxy process.
type child struct {
	name string
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *json.Decoder
	addrs
}

func startChild(name string, args ...string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, in: in, out: json.NewDecoder(out)}
	if err := c.out.Decode(&c.addrs); err != nil {
		c.stop()
		return nil, fmt.Errorf("%s did not report its addresses: %w", name, err)
	}
	return c, nil
}

func (c *child) ask(cmd string, v any) error {
	if _, err := fmt.Fprintln(c.in, cmd); err != nil {
		return err
	}
	return c.out.Decode(v)
}

func (c *child) mem() (bench.MemStats, error) {
	var m bench.MemStats
	err := c.ask("mem", &m)
	return m, err
}

func (c *child) stop() {
	c.in.Close()
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
}

// --- driver ---

func drive(d time.Duration, rounds, workers, idle int) error {
	limit := raiseNoFile()
	be, err := startChild("backend", "-role", "backend")
	if err != nil {
		return err
	}
	defer be.stop()
	px, err := startChild("proxy", "-role", "proxy", "-echo", be.Echo, "-source", be.Source)
	if err != nil {
		return err
	}
	defer px.stop()

	fmt.Printf("tcpload: loopback, %d CPUs, GOMAXPROCS %d, %d rounds of %v per measurement (median), RLIMIT_NOFILE %d\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), rounds, d, limit)
	fmt.Printf("%-34s %14s %14s %8s\n", "workload", "direct", "through l4", "l4/direct")

	// (a) and (b): alternate direct and l4 so drift on a shared machine hits both alike.
	type workload struct {
		name, unit string
		scale      float64
		run        func(addrs) (float64, error)
	}
	for _, w := range []workload{
		{fmt.Sprintf("(a) new conns/s, %d clients", workers), "conn/s", 1,
			func(a addrs) (float64, error) { return bench.ConnectRate(a.Echo, workers, d) }},
		{"(b) bulk, 1 connection", "MB/s", 1e-6, func(a addrs) (float64, error) { return bench.Bulk(a.Source, 1, d) }},
		{"(b) bulk, 8 connections", "MB/s", 1e-6, func(a addrs) (float64, error) { return bench.Bulk(a.Source, 8, d) }},
	} {
		var direct, proxied []float64
		for range rounds {
			v, err := w.run(be.addrs)
			if err != nil {
				return fmt.Errorf("%s direct: %w", w.name, err)
			}
			direct = append(direct, v*w.scale)
			time.Sleep(200 * time.Millisecond) // let TIME_WAIT and goroutines settle
			if v, err = w.run(px.addrs); err != nil {
				return fmt.Errorf("%s through l4: %w", w.name, err)
			}
			proxied = append(proxied, v*w.scale)
			time.Sleep(200 * time.Millisecond)
		}
		dm, pm := median(direct), median(proxied)
		fmt.Printf("%-34s %9.0f %-4s %9.0f %-4s %8.2f\n", w.name, dm, w.unit, pm, w.unit, pm/dm)
	}
	if idle <= 0 {
		return nil
	}
	return idleMemory(be, px, idle, limit)
}

// idleMemory measures (c): what idle connections cost the backend when direct, and the engine when
// proxied.
func idleMemory(be, px *child, n int, limit uint64) error {
	// The driver holds n client sockets; the engine two per connection.
	if uint64(n)+64 > limit {
		return fmt.Errorf("RLIMIT_NOFILE %d is too low for %d idle connections in the driver", limit, n)
	}
	perProxy := int(limit-64) / 2
	nProxies := (n + perProxy - 1) / perProxy
	proxies := []*child{px}
	for len(proxies) < nProxies {
		p, err := startChild("proxy", "-role", "proxy", "-echo", be.Echo, "-source", be.Source)
		if err != nil {
			return err
		}
		defer p.stop()
		proxies = append(proxies, p)
	}

	// Direct: the backend's growth per connection.
	b0, err := be.mem()
	if err != nil {
		return err
	}
	conns, err := bench.OpenIdle(be.Echo, n)
	if err != nil {
		return fmt.Errorf("direct: %w", err)
	}
	time.Sleep(time.Second)
	b1, err := be.mem()
	if err != nil {
		return err
	}
	bench.CloseAll(conns)
	if err := waitDrained(be); err != nil {
		return err
	}

	// Through l4: the engines' growth per connection.
	var before, after []bench.MemStats
	for _, p := range proxies {
		m, err := p.mem()
		if err != nil {
			return err
		}
		before = append(before, m)
	}
	var all []net.Conn
	for i, p := range proxies {
		share := n / len(proxies)
		if i < n%len(proxies) {
			share++
		}
		cs, err := bench.OpenIdle(p.Echo, share)
		if err != nil {
			bench.CloseAll(all)
			return fmt.Errorf("through l4: %w", err)
		}
		all = append(all, cs...)
	}
	time.Sleep(time.Second)
	for _, p := range proxies {
		m, err := p.mem()
		if err != nil {
			return err
		}
		after = append(after, m)
	}
	bench.CloseAll(all)

	var goGrow, rssGrow, gGrow float64
	for i := range proxies {
		goGrow += float64(after[i].Go) - float64(before[i].Go)
		rssGrow += float64(after[i].RSS) - float64(before[i].RSS)
		gGrow += float64(after[i].Goroutines - before[i].Goroutines)
	}
	bGo := (float64(b1.Go) - float64(b0.Go)) / float64(n)
	bRSS := (float64(b1.RSS) - float64(b0.RSS)) / float64(n)
	pGo, pRSS := goGrow/float64(n), rssGrow/float64(n)
	where := "one engine process"
	if len(proxies) > 1 {
		where = fmt.Sprintf("%d engine processes of %d (RLIMIT_NOFILE %d allows %d per process)", len(proxies), n/len(proxies), limit, perProxy)
	}
	fmt.Printf("(c) %d idle connections, %s:\n", n, where)
	fmt.Printf("%-34s %9.1f KiB %9.1f KiB %8.2f\n", "    Go heap+stacks per connection", bGo/1024, pGo/1024, pGo/bGo)
	fmt.Printf("%-34s %9.1f KiB %9.1f KiB %8.2f\n", "    RSS per connection", bRSS/1024, pRSS/1024, pRSS/bRSS)
	fmt.Printf("%-34s %9.1f     %9.1f\n", "    goroutines per connection", float64(b1.Goroutines-b0.Goroutines)/float64(n), gGrow/float64(n))
	fmt.Println("    (direct = what the echo backend pays per idle connection; through l4 = what the engine adds")
	fmt.Println("     per proxied idle connection; kernel socket buffers are not included in either)")
	return nil
}

// waitDrained waits until the backend has closed every connection.
func waitDrained(be *child) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		if err := be.ask("conns", &n); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("backend still holds %d connections", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
