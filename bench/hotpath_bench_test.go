package bench

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/kinesis-network/portal/firewall"
	"github.com/kinesis-network/portal/gateway/httprelay"
	"github.com/kinesis-network/portal/gateway/routes"
	"github.com/kinesis-network/portal/gateway/sticky"
	"github.com/kinesis-network/portal/registry"
)

// The HTTPS relay's per-request hot path, step by step: parse the path, hash the key and look the route
// up, check the source against the endpoint's firewall, verify the sticky cookie. BenchmarkRelayRequest
// measures whole requests through the relay for comparison.

// routeTable fills a route cache with n HTTPS endpoints (two instances, one key each) and returns its
// table and the keys.
func routeTable(b *testing.B, n int) (*routes.Table, []string) {
	b.Helper()
	store := registry.NewMemory(registry.Options{})
	b.Cleanup(func() { store.Close() })
	keys := make([]string, n)
	for i := range keys {
		keys[i] = registry.NewSecret()
		e := &registry.Endpoint{TenantID: fmt.Sprint("tn_", i%100), Name: fmt.Sprint("ep", i), Type: registry.HTTPS,
			Zone: "z1", Region: "r1", Keys: []registry.AccessKey{{Hash: registry.HashSecret(keys[i])}},
			Instances: []registry.Instance{{ID: "in_a", Addr: "10.0.0.1:80"}, {ID: "in_b", Addr: "10.0.0.2:80"}}}
		if _, err := store.CreateEndpoint(context.Background(), e); err != nil {
			b.Fatal(err)
		}
	}
	c := routes.New(store, routes.Options{Sticky: sticky.NewCodec([]byte("bench-secret-bench-secret-012345"))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	<-c.Ready()
	t := c.Table()
	if len(t.Routes()) != n {
		b.Fatalf("table has %d routes, want %d", len(t.Routes()), n)
	}
	return t, keys
}

// BenchmarkRouteLookup looks keys up in a table of 10,000 endpoints: known keys with the hash given,
// known keys hashed per lookup (what the relay does per request), and unknown keys.
func BenchmarkRouteLookup(b *testing.B) {
	t, keys := routeTable(b, 10_000)
	now := time.Now()
	hashes := make([]routes.KeyHash, len(keys))
	for i, k := range keys {
		hashes[i] = sha256.Sum256([]byte(k))
	}
	unknown := make([]routes.KeyHash, 1024)
	for i := range unknown {
		unknown[i] = sha256.Sum256([]byte(registry.NewSecret()))
	}
	b.Run("hashed", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if t.Lookup(hashes[i%len(hashes)], now) == nil {
				b.Fatal("known key not found")
			}
		}
	})
	b.Run("hash+lookup", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if t.Lookup(sha256.Sum256([]byte(keys[i%len(keys)])), now) == nil {
				b.Fatal("known key not found")
			}
		}
	})
	b.Run("unknown", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if t.Lookup(unknown[i%len(unknown)], now) != nil {
				b.Fatal("unknown key found")
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := rand.IntN(len(hashes))
			for pb.Next() {
				if t.Lookup(hashes[i%len(hashes)], now) == nil {
					b.Fatal("known key not found")
				}
				i++
			}
		})
	})
}

// sourceRules returns n allow CIDRs of a customer allow list, IPv4 and IPv6 mixed, one in ten a deny.
func sourceRules(rnd *rand.Rand, n int) (firewall.Rules, []netip.Addr) {
	var r firewall.Rules
	var inside []netip.Addr
	for i := range n {
		var p netip.Prefix
		if i%4 == 3 {
			var a [16]byte
			a[0], a[1], a[2], a[3] = 0x20, 0x01, 0x0d, 0xb8
			for j := 4; j < 16; j++ {
				a[j] = byte(rnd.Uint32())
			}
			p = netip.PrefixFrom(netip.AddrFrom16(a), 48+rnd.IntN(81)).Masked()
		} else {
			u := rnd.Uint32()
			p = netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)}), 16+rnd.IntN(17)).Masked()
		}
		if i%10 == 9 {
			r.Deny = append(r.Deny, p.String())
		} else {
			r.Allow = append(r.Allow, p.String())
			inside = append(inside, p.Addr())
		}
	}
	return r, inside
}

// BenchmarkFirewallAllowSource checks client addresses (half inside the allow list, half random,
// IPv4 and IPv6) against an endpoint's source policy, as the relay does per request: no rules (most
// endpoints), 10 rules and 1,000 rules.
func BenchmarkFirewallAllowSource(b *testing.B) {
	for _, n := range []int{0, 10, 1000} {
		b.Run(fmt.Sprint("rules=", n), func(b *testing.B) {
			rnd := rand.New(rand.NewPCG(uint64(n), 3))
			r, inside := sourceRules(rnd, n)
			p, err := firewall.Compile(r)
			if err != nil {
				b.Fatal(err)
			}
			probes := make([]netip.Addr, 4096)
			for i := range probes {
				switch {
				case i%2 == 0 && len(inside) > 0:
					probes[i] = inside[rnd.IntN(len(inside))]
				case i%4 == 1:
					var a [16]byte
					a[0], a[1] = 0x20, 0x01
					for j := 2; j < 16; j++ {
						a[j] = byte(rnd.Uint32())
					}
					probes[i] = netip.AddrFrom16(a)
				default:
					u := rnd.Uint32()
					probes[i] = netip.AddrFrom4([4]byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)})
				}
			}
			allowed := 0
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if p.AllowSource(probes[i&(len(probes)-1)]) {
					allowed++
				}
			}
			if allowed == 0 {
				b.Fatal("no probe allowed: the benchmark measures nothing useful")
			}
		})
	}
}

// BenchmarkStickyDecode verifies sticky cookies: valid ones, ones with a bad MAC (forged or another
// endpoint's) and malformed ones.
func BenchmarkStickyDecode(b *testing.B) {
	c := sticky.NewCodec([]byte("bench-secret-bench-secret-012345"))
	now := time.Now()
	const ep = "ep_0123456789abcdef"
	valid := make([]string, 64)
	for i := range valid {
		valid[i] = c.Encode(ep, c.TagFor(ep, fmt.Sprint("in_", i)), now.Add(time.Hour))
	}
	forged := c.Encode("ep_other", c.TagFor("ep_other", "in_0"), now.Add(time.Hour))
	for _, tc := range []struct {
		name   string
		values []string
		ok     bool
	}{
		{"valid", valid, true},
		{"bad-mac", []string{forged}, false},
		{"malformed", []string{"not-a-cookie"}, false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := c.Decode(ep, tc.values[i%len(tc.values)], now); (err == nil) != tc.ok {
					b.Fatalf("decode: %v", err)
				}
			}
		})
	}
}

// BenchmarkParsePath splits relay paths into key and rest.
func BenchmarkParsePath(b *testing.B) {
	key := registry.NewSecret()
	for _, tc := range []struct{ name, path string }{
		{"short", httprelay.Prefix + key + "/"},
		{"long", httprelay.Prefix + key + "/api/v1/users/12345/orders/67890/items?page=2"},
		{"not-relay", "/favicon.ico"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				httprelay.ParsePath(tc.path)
			}
		})
	}
}

// BenchmarkRelayRequest measures whole GET requests (256-byte answers) with 8 keep-alive clients per
// CPU: to the backend directly, and through an in-process relay over HTTPS/1.1 and HTTP/2. See
// bench/relay.sh for the load tool that reports req/s and latency percentiles.
func BenchmarkRelayRequest(b *testing.B) {
	be, err := StartHTTPBackend(256)
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	r, err := StartRelay(RelayOptions{Instances: []string{be.Addr}})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	for _, proto := range []string{"http", "h1", "h2"} {
		b.Run(proto, func(b *testing.B) {
			url := r.URL("/bench")
			if proto == "http" {
				url = "http://" + be.Addr + "/bench"
			}
			c := Client(proto, 64, r.Addr, r.CA)
			defer c.CloseIdleConnections()
			b.ReportAllocs()
			b.SetParallelism(8) // 8 clients per CPU, like relayload's default on a small machine
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if !get(context.Background(), c, url) {
						b.Error("request failed")
						return
					}
				}
			})
		})
	}
}
