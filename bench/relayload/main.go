// Command relayload compares HTTP requests sent directly to a backend with the same requests through
// the portal's HTTPS relay, on loopback, in one run (issue 3, item 7):
//
//	(a) the backend called directly over plain HTTP/1.1 with keep-alive;
//	(b) the same backend through the relay over HTTPS with keep-alive, HTTP/1.1;
//	(c) optionally (-h2) through the relay over HTTPS with HTTP/2.
//
// Each phase runs -c closed-loop clients (send, read the whole answer, repeat) for -duration after a
// warm-up, and reports requests per second and p50/p99 latency; the relay phases are then given as
// ratios to the direct one. The backend, the relay (in-memory registry, route cache, local CA, the
// httprelay handler with metrics and a JSON access log) and the clients share this process and its
// CPUs, so the ratios include the relay's whole cost: TLS on both ends, proxying, logging.
//
// Usage: bench/relay.sh, or go run ./bench/relayload -duration 10s -c 32.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"text/tabwriter"
	"time"

	"github.com/kinesis-network/portal/bench"
)

func main() {
	duration := flag.Duration("duration", 10*time.Second, "length of each measured phase")
	warmup := flag.Duration("warmup", time.Second, "unmeasured warm-up before each phase")
	conns := flag.Int("c", 32, "concurrent keep-alive clients")
	size := flag.Int("size", 256, "response body size in bytes")
	h2 := flag.Bool("h2", true, "also measure the relay over HTTP/2")
	timeout := flag.Duration("timeout", 5*time.Minute, "abort the whole run after this long")
	flag.Parse()
	time.AfterFunc(*timeout, func() {
		fmt.Fprintf(os.Stderr, "relayload: timed out after %v\n", *timeout)
		os.Exit(2)
	})
	if err := run(*duration, *warmup, *conns, *size, *h2); err != nil {
		fmt.Fprintf(os.Stderr, "relayload: %v\n", err)
		os.Exit(1)
	}
}

type phase struct {
	name, proto string
	res         bench.LoadResult
}

func run(d, warmup time.Duration, conns, size int, h2 bool) error {
	be, err := bench.StartHTTPBackend(size)
	if err != nil {
		return err
	}
	defer be.Close()
	relay, err := bench.StartRelay(bench.RelayOptions{Instances: []string{be.Addr}})
	if err != nil {
		return err
	}
	defer relay.Close()

	fmt.Printf("relayload: %s/%s, GOMAXPROCS=%d, %d clients, %d-byte answers, %v per phase (+%v warm-up)\n",
		runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), conns, size, d, warmup)
	phases := []phase{
		{name: "direct", proto: "http"},
		{name: "relay", proto: "h1"},
	}
	if h2 {
		phases = append(phases, phase{name: "relay", proto: "h2"})
	}
	ctx := context.Background()
	for i := range phases {
		p := &phases[i]
		url := "http://" + be.Addr + "/bench/page?q=1"
		if p.proto != "http" {
			url = relay.URL("/bench/page?q=1")
		}
		c := bench.Client(p.proto, conns, relay.Addr, relay.CA)
		fmt.Fprintf(os.Stderr, "relayload: measuring %s %s...\n", p.name, label(p.proto))
		p.res = bench.Load(ctx, c, url, conns, warmup, d)
		if p.res.Requests == 0 {
			return fmt.Errorf("%s %s: no request completed (%d errors)", p.name, label(p.proto), p.res.Errors)
		}
	}

	tw := tabwriter.NewWriter(os.Stdout, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "path\tprotocol\trequests\terrors\treq/s\tp50\tp99\tmax\t")
	for _, p := range phases {
		r := p.res
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.0f\t%s\t%s\t%s\t\n", p.name, label(p.proto), r.Requests, r.Errors, r.RPS(),
			ms(r.P50), ms(r.P99), ms(r.Max))
	}
	tw.Flush()
	base := phases[0].res
	fmt.Println()
	for _, p := range phases[1:] {
		r := p.res
		fmt.Printf("relay %s vs direct: req/s ratio %.2f (relay/direct), p50 ratio %.2fx, p99 ratio %.2fx (relay/direct)\n",
			label(p.proto), r.RPS()/base.RPS(), r.P50.Seconds()/base.P50.Seconds(), r.P99.Seconds()/base.P99.Seconds())
	}
	for _, p := range phases {
		if p.res.Errors > 0 {
			return fmt.Errorf("%s %s: %d requests failed", p.name, label(p.proto), p.res.Errors)
		}
	}
	return nil
}

func label(proto string) string {
	return map[string]string{"http": "http/1.1", "h1": "https/1.1", "h2": "https/2"}[proto]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3fms", d.Seconds()*1000) }
