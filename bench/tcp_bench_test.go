package bench

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

// tcpTargets starts a backend and the l4 engine in front of it, in this process, and returns the
// echo and source addresses for "direct" and "l4".
func tcpTargets(b *testing.B) map[string][2]string {
	b.Helper()
	be, err := StartBackend()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(be.Close)
	p, err := StartProxy(be.Echo.Addr().String(), be.Source.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Close)
	return map[string][2]string{
		"direct": {be.Echo.Addr().String(), be.Source.Addr().String()},
		"l4":     {p.Echo, p.Source},
	}
}

var tcpPaths = []string{"direct", "l4"}

// BenchmarkTCPConnect measures new connections with one small echo round trip each (issue 4 item
// 8a). Compare direct and l4 with benchstat or the conns/s metric.
func BenchmarkTCPConnect(b *testing.B) {
	targets := tcpTargets(b)
	for _, path := range tcpPaths {
		b.Run(path, func(b *testing.B) {
			addr := targets[path][0]
			ctx := context.Background()
			start := time.Now()
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := EchoOnce(ctx, addr); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "conns/s")
		})
	}
}

// BenchmarkTCPBulk measures download throughput over 1 and 8 parallel connections (item 8b); one
// op is 1 MiB delivered to the client.
func BenchmarkTCPBulk(b *testing.B) {
	targets := tcpTargets(b)
	const chunk = 1 << 20
	for _, path := range tcpPaths {
		for _, par := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/conns=%d", path, par), func(b *testing.B) {
				conns := make([]net.Conn, par)
				for i := range conns {
					c, err := net.Dial("tcp", targets[path][1])
					if err != nil {
						b.Fatal(err)
					}
					defer c.Close()
					conns[i] = c
				}
				b.SetBytes(chunk)
				b.ResetTimer()
				var wg sync.WaitGroup
				for i, c := range conns {
					share := b.N / par
					if i < b.N%par {
						share++
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						buf := make([]byte, 256<<10)
						for left := int64(share) * chunk; left > 0; {
							n, err := c.Read(buf[:min(left, int64(len(buf)))])
							left -= int64(n)
							if err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
			})
		}
	}
}

// BenchmarkTCPIdleMemory reports the memory (Go heap in use plus stacks) of 2,000 idle connections
// in this process, per connection: "direct" counts client and backend, "l4" adds the engine, so the
// difference is the engine's cost. tcpload measures the engine alone, in its own process, at 10,000.
func BenchmarkTCPIdleMemory(b *testing.B) {
	targets := tcpTargets(b)
	const n = 2000
	for _, path := range tcpPaths {
		b.Run(path, func(b *testing.B) {
			var per float64
			for range b.N {
				before := ReadMem()
				conns, err := OpenIdle(targets[path][0], n)
				if err != nil {
					b.Fatal(err)
				}
				time.Sleep(100 * time.Millisecond)
				after := ReadMem()
				per = float64(after.Go-before.Go) / n
				CloseAll(conns)
				time.Sleep(100 * time.Millisecond)
			}
			b.ReportMetric(per, "B/conn")
		})
	}
}
