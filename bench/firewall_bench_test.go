package bench

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/kinesis-network/portal/firewall"
)

// fwRules returns n random rules of one family, nine in ten allows and one in ten denies, with prefix
// lengths spread so that they nest and overlap, as a large customer allow list would.
func fwRules(rnd *rand.Rand, n int, v6 bool) firewall.Rules {
	var r firewall.Rules
	for i := range n {
		var s string
		if v6 {
			var b [16]byte
			b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, 0xb8
			for j := 4; j < 16; j++ {
				b[j] = byte(rnd.Uint32())
			}
			s = fmt.Sprintf("%s/%d", netip.AddrFrom16(b), 40+rnd.IntN(89))
		} else {
			u := rnd.Uint32()
			s = fmt.Sprintf("%s/%d", netip.AddrFrom4([4]byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)}), 12+rnd.IntN(21))
		}
		if i%10 == 9 {
			r.Deny = append(r.Deny, s)
		} else {
			r.Allow = append(r.Allow, s)
		}
	}
	return r
}

// fwProbes returns 4096 addresses of one family: half taken from inside the rules, half random.
func fwProbes(rnd *rand.Rand, r firewall.Rules, v6 bool) []netip.Addr {
	out := make([]netip.Addr, 4096)
	for i := range out {
		if i%2 == 0 {
			p, err := firewall.ParsePrefix(r.Allow[rnd.IntN(len(r.Allow))])
			if err != nil {
				panic(err)
			}
			out[i] = p.Addr()
			continue
		}
		if v6 {
			var b [16]byte
			b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, 0xb8
			for j := 4; j < 16; j++ {
				b[j] = byte(rnd.Uint32())
			}
			out[i] = netip.AddrFrom16(b)
		} else {
			u := rnd.Uint32()
			out[i] = netip.AddrFrom4([4]byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)})
		}
	}
	return out
}

// BenchmarkFirewallAllow measures one Allow lookup (source rules only, destination unknown) against
// 10, 1,000 and 100,000 rules of each family.
func BenchmarkFirewallAllow(b *testing.B) {
	for _, fam := range []struct {
		name string
		v6   bool
	}{{"v4", false}, {"v6", true}} {
		for _, n := range []int{10, 1_000, 100_000} {
			b.Run(fmt.Sprintf("%s/rules=%d", fam.name, n), func(b *testing.B) {
				rnd := rand.New(rand.NewPCG(uint64(n), 7))
				r := fwRules(rnd, n, fam.v6)
				p, err := firewall.Compile(r)
				if err != nil {
					b.Fatal(err)
				}
				probes := fwProbes(rnd, r, fam.v6)
				allowed := 0
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					if p.Allow(probes[i&(len(probes)-1)], netip.Addr{}) {
						allowed++
					}
				}
				if allowed == 0 {
					b.Fatal("no probe allowed: the benchmark measures nothing useful")
				}
			})
		}
	}
}

// BenchmarkFirewallCompile measures Compile of 100,000 rules, half IPv4 and half IPv6, parsing
// included.
func BenchmarkFirewallCompile(b *testing.B) {
	rnd := rand.New(rand.NewPCG(1, 2))
	r4, r6 := fwRules(rnd, 50_000, false), fwRules(rnd, 50_000, true)
	r := firewall.Rules{Allow: append(r4.Allow, r6.Allow...), Deny: append(r4.Deny, r6.Deny...)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := firewall.Compile(r); err != nil {
			b.Fatal(err)
		}
	}
}
