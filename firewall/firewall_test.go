package firewall

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
)

// naive is the reference matcher: the rules as parsed prefixes, checked one by one with
// netip.Prefix.Contains. It states the documented semantics as plainly as possible.
type naive struct {
	allow, deny, dallow, ddeny []netip.Prefix
}

func newNaive(t testing.TB, r Rules) naive {
	t.Helper()
	parse := func(ss []string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			p, err := ParsePrefix(s)
			if err != nil {
				t.Fatalf("naive: %v", err)
			}
			out = append(out, p)
		}
		return out
	}
	return naive{parse(r.Allow), parse(r.Deny), parse(r.DestAllow), parse(r.DestDeny)}
}

func naivePass(allow, deny []netip.Prefix, a netip.Addr) bool {
	if len(allow) == 0 && len(deny) == 0 {
		return true
	}
	if !a.IsValid() {
		return false
	}
	a = a.Unmap().WithZone("")
	for _, p := range deny {
		if p.Contains(a) {
			return false
		}
	}
	if len(allow) == 0 {
		return true
	}
	for _, p := range allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (n naive) allowSource(src netip.Addr) bool { return naivePass(n.allow, n.deny, src) }

func (n naive) allow2(src, dst netip.Addr) bool {
	if !naivePass(n.allow, n.deny, src) {
		return false
	}
	return !dst.IsValid() || naivePass(n.dallow, n.ddeny, dst)
}

func mustAddr(s string) netip.Addr {
	if s == "" {
		return netip.Addr{}
	}
	return netip.MustParseAddr(s)
}

func TestParsePrefix(t *testing.T) {
	valid := []struct{ in, want string }{
		{"10.0.0.0/8", "10.0.0.0/8"},
		{"10.1.2.3/8", "10.0.0.0/8"}, // host bits cleared
		{" 10.0.0.1\t", "10.0.0.1/32"},
		{"10.0.0.1", "10.0.0.1/32"},
		{"0.0.0.0/0", "0.0.0.0/0"},
		{"255.255.255.255/32", "255.255.255.255/32"},
		{"2001:DB8::/32", "2001:db8::/32"},
		{"2001:db8::1", "2001:db8::1/128"},
		{"2001:db8::1/64", "2001:db8::/64"},
		{"::/0", "::/0"},
		{"::/128", "::/128"},
		{"::ffff:1.2.3.4", "1.2.3.4/32"},
		{"::ffff:1.2.3.4/128", "1.2.3.4/32"},
		{"::ffff:10.1.2.3/104", "10.0.0.0/8"},
		{"::ffff:0:0/96", "0.0.0.0/0"},
		{"::ffff:0:0/95", "::fffe:0:0/95"}, // shorter than /96: an IPv6 rule
		{"::/80", "::/80"},
	}
	for _, c := range valid {
		p, err := ParsePrefix(c.in)
		if err != nil {
			t.Errorf("ParsePrefix(%q): %v", c.in, err)
			continue
		}
		if p.String() != c.want {
			t.Errorf("ParsePrefix(%q) = %v, want %s", c.in, p, c.want)
		}
	}

	invalid := []struct {
		in   string
		want string // exact text, or a prefix when it ends in "..."
	}{
		{"", "firewall: empty entry"},
		{"  ", "firewall: empty entry"},
		{"300.1.2.3/8", `firewall: invalid CIDR "300.1.2.3/8": ...`},
		{"10.0.0.0/33", `firewall: invalid CIDR "10.0.0.0/33": ...`},
		{"::/129", `firewall: invalid CIDR "::/129": ...`},
		{"10.0.0.0/-1", `firewall: invalid CIDR "10.0.0.0/-1": ...`},
		{"10.0.0.0/08", `firewall: invalid CIDR "10.0.0.0/08": ...`},
		{"10.0.0.0/", `firewall: invalid CIDR "10.0.0.0/": ...`},
		{"/8", `firewall: invalid CIDR "/8": ...`},
		{"10.0.0.0/8/8", `firewall: invalid CIDR "10.0.0.0/8/8": ...`},
		{"fe80::1%eth0/64", `firewall: invalid CIDR "fe80::1%eth0/64": ...`},
		{"fe80::1%eth0", `firewall: invalid address or CIDR "fe80::1%eth0": IPv6 zone not allowed in a rule`},
		{"garbage", `firewall: invalid address or CIDR "garbage": ...`},
		{"010.0.0.1", `firewall: invalid address or CIDR "010.0.0.1": ...`},
		{"1.2.3", `firewall: invalid address or CIDR "1.2.3": ...`},
		{"10.0.0.0 8", `firewall: invalid address or CIDR "10.0.0.0 8": ...`},
	}
	for _, c := range invalid {
		_, err := ParsePrefix(c.in)
		if err == nil {
			t.Errorf("ParsePrefix(%q): no error", c.in)
			continue
		}
		checkErrText(t, err, c.want)
		var re *RuleError
		if !errors.As(err, &re) || re.Entry != c.in || re.List != "" {
			t.Errorf("ParsePrefix(%q): error %#v is not a *RuleError for the entry", c.in, err)
		}
		if !errors.Is(err, ErrInvalidRule) {
			t.Errorf("ParsePrefix(%q): error does not match ErrInvalidRule", c.in)
		}
	}
}

func checkErrText(t *testing.T, err error, want string) {
	t.Helper()
	got := err.Error()
	if p, ok := strings.CutSuffix(want, "..."); ok {
		if !strings.HasPrefix(got, p) || len(got) == len(p) {
			t.Errorf("error %q, want %q followed by a cause", got, p)
		}
		return
	}
	if got != want {
		t.Errorf("error %q, want %q", got, want)
	}
}

func TestValidateErrors(t *testing.T) {
	cases := []struct {
		name  string
		rules Rules
		want  string
		list  string
		index int
	}{
		{"deny bad octet", Rules{Allow: []string{"10.0.0.0/8"}, Deny: []string{"192.0.2.0/24", "300.1.2.3/8"}},
			`firewall: deny: invalid CIDR "300.1.2.3/8": ...`, "deny", 1},
		{"allow garbage", Rules{Allow: []string{"nope"}},
			`firewall: allow: invalid address or CIDR "nope": ...`, "allow", 0},
		{"dest_allow empty", Rules{DestAllow: []string{"10.0.0.0/8", "::1", " "}},
			"firewall: dest_allow: empty entry at index 2", "dest_allow", 2},
		{"dest_deny zone", Rules{DestDeny: []string{"fe80::1%eth0"}},
			`firewall: dest_deny: invalid address or CIDR "fe80::1%eth0": IPv6 zone not allowed in a rule`, "dest_deny", 0},
		{"length out of range", Rules{Deny: []string{"2001:db8::/129"}},
			`firewall: deny: invalid CIDR "2001:db8::/129": ...`, "deny", 0},
		{"first list wins", Rules{Allow: []string{"bad-allow"}, Deny: []string{"bad-deny"}},
			`firewall: allow: invalid address or CIDR "bad-allow": ...`, "allow", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			verr := c.rules.Validate()
			p, cerr := Compile(c.rules)
			if verr == nil || cerr == nil || p != nil {
				t.Fatalf("Validate = %v, Compile = %v, %v; want errors", verr, p, cerr)
			}
			if verr.Error() != cerr.Error() {
				t.Errorf("Validate says %q, Compile says %q", verr, cerr)
			}
			checkErrText(t, cerr, c.want)
			var re *RuleError
			if !errors.As(cerr, &re) || re.List != c.list || re.Index != c.index {
				t.Errorf("error %#v: want list %q index %d", cerr, c.list, c.index)
			}
			if !errors.Is(cerr, ErrInvalidRule) {
				t.Error("error does not match ErrInvalidRule")
			}
		})
	}
	if err := (Rules{Allow: []string{"10.0.0.0/8", " 2001:db8::1 "}, DestDeny: []string{"::ffff:0:0/96"}}).Validate(); err != nil {
		t.Errorf("Validate of good rules: %v", err)
	}
}

func TestRuleErrorUnwrapsCause(t *testing.T) {
	_, err := ParsePrefix("300.0.0.0/8")
	var re *RuleError
	if !errors.As(err, &re) || re.Err == nil || !errors.Is(err, re.Err) {
		t.Fatalf("error %v does not unwrap to its cause", err)
	}
}

func TestEmptyRules(t *testing.T) {
	for _, r := range []Rules{{}, {Allow: []string{}, Deny: []string{}, DestAllow: nil}} {
		p, err := Compile(r)
		if p != nil || err != nil {
			t.Errorf("Compile(%+v) = %v, %v; want nil, nil", r, p, err)
		}
	}
	var p *Policy
	for _, a := range []string{"", "1.2.3.4", "2001:db8::1", "::ffff:1.2.3.4"} {
		if !p.Allow(mustAddr(a), mustAddr(a)) || !p.AllowSource(mustAddr(a)) {
			t.Errorf("nil policy denies %q", a)
		}
	}
}

func TestAllow(t *testing.T) {
	type probe struct {
		src, dst string // "" is the zero netip.Addr
		want     bool
	}
	cases := []struct {
		name   string
		rules  Rules
		probes []probe
	}{
		{"v4 allow", Rules{Allow: []string{"10.0.0.0/8"}}, []probe{
			{"10.1.2.3", "", true}, {"10.0.0.0", "", true}, {"10.255.255.255", "", true},
			{"9.255.255.255", "", false}, {"11.0.0.0", "", false}, {"2001:db8::1", "", false},
		}},
		{"v4 deny only", Rules{Deny: []string{"10.0.0.0/8"}}, []probe{
			{"10.1.1.1", "", false}, {"8.8.8.8", "", true}, {"2001:db8::1", "", true}, {"::ffff:10.1.1.1", "", false},
		}},
		{"deny wins over wider allow", Rules{Allow: []string{"10.0.0.0/8"}, Deny: []string{"10.1.0.0/16"}}, []probe{
			{"10.1.2.3", "", false}, {"10.0.255.255", "", true}, {"10.2.0.0", "", true}, {"10.1.255.255", "", false},
		}},
		{"deny wins over narrower allow", Rules{Allow: []string{"10.1.2.3"}, Deny: []string{"10.0.0.0/8"}}, []probe{
			{"10.1.2.3", "", false}, {"11.0.0.1", "", false},
		}},
		{"same entry in both", Rules{Allow: []string{"192.0.2.0/24"}, Deny: []string{"192.0.2.0/24"}}, []probe{
			{"192.0.2.1", "", false}, {"192.0.3.1", "", false},
		}},
		{"nested and overlapping allows", Rules{Allow: []string{"10.0.0.0/16", "10.0.128.0/17", "10.0.0.0/8", "10.1.0.0/16", "12.0.0.0/8", "11.0.0.0/8"}}, []probe{
			{"10.200.0.1", "", true}, {"11.3.4.5", "", true}, {"12.255.255.255", "", true}, {"13.0.0.0", "", false}, {"9.9.9.9", "", false},
		}},
		{"holes punched by deny", Rules{Allow: []string{"10.0.0.0/8"}, Deny: []string{"10.0.0.0/32", "10.0.0.2/31", "10.255.255.255", "10.128.0.0/9"}}, []probe{
			{"10.0.0.0", "", false}, {"10.0.0.1", "", true}, {"10.0.0.2", "", false}, {"10.0.0.3", "", false},
			{"10.0.0.4", "", true}, {"10.127.255.255", "", true}, {"10.128.0.0", "", false}, {"10.255.255.255", "", false},
		}},
		{"v4 /0 allow", Rules{Allow: []string{"0.0.0.0/0"}}, []probe{
			{"0.0.0.0", "", true}, {"255.255.255.255", "", true}, {"::ffff:1.2.3.4", "", true}, {"::1", "", false},
		}},
		{"v4 /0 deny", Rules{Deny: []string{"0.0.0.0/0"}}, []probe{
			{"1.2.3.4", "", false}, {"::ffff:1.2.3.4", "", false}, {"2001:db8::1", "", true}, {"::", "", true},
		}},
		{"v4 /32 and bare", Rules{Allow: []string{"192.0.2.1/32", "198.51.100.7"}}, []probe{
			{"192.0.2.1", "", true}, {"192.0.2.0", "", false}, {"192.0.2.2", "", false},
			{"198.51.100.7", "", true}, {"198.51.100.6", "", false}, {"198.51.100.8", "", false},
		}},
		{"v4 edges of the space", Rules{Allow: []string{"0.0.0.0", "255.255.255.255/32"}}, []probe{
			{"0.0.0.0", "", true}, {"0.0.0.1", "", false}, {"255.255.255.255", "", true}, {"255.255.255.254", "", false},
		}},
		{"deny the last v4 address", Rules{Deny: []string{"255.255.255.255"}}, []probe{
			{"255.255.255.255", "", false}, {"255.255.255.254", "", true}, {"0.0.0.0", "", true},
		}},
		{"v6 allow", Rules{Allow: []string{"2001:db8::/32"}}, []probe{
			{"2001:db8::", "", true}, {"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "", true},
			{"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", "", false}, {"2001:db9::", "", false}, {"10.0.0.1", "", false},
		}},
		{"v6 /128", Rules{Allow: []string{"2001:db8::1/128", "2001:db8::ff"}}, []probe{
			{"2001:db8::1", "", true}, {"2001:db8::", "", false}, {"2001:db8::2", "", false}, {"2001:db8::ff", "", true}, {"2001:db8::100", "", false},
		}},
		{"v6 around bit 64", Rules{Allow: []string{"2001:db8:0:1::/64", "2001:db8:0:4::/63", "2001:db8:0:8:8000::/65"}}, []probe{
			{"2001:db8:0:1:ffff:ffff:ffff:ffff", "", true}, {"2001:db8:0:1::", "", true},
			{"2001:db8:0:0:ffff:ffff:ffff:ffff", "", false}, {"2001:db8:0:2::", "", false},
			{"2001:db8:0:5:ffff:ffff:ffff:ffff", "", true}, {"2001:db8:0:6::", "", false},
			{"2001:db8:0:8:7fff:ffff:ffff:ffff", "", false}, {"2001:db8:0:8:8000::", "", true}, {"2001:db8:0:9::", "", false},
		}},
		{"v6 edges of the space", Rules{Allow: []string{"::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"}}, []probe{
			{"::", "", true}, {"::1", "", false}, {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "", true},
			{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", "", false}, {"0.0.0.0", "", false},
		}},
		{"v6 /0 allow is IPv6 only", Rules{Allow: []string{"::/0"}}, []probe{
			{"2001:db8::1", "", true}, {"::", "", true}, {"1.2.3.4", "", false}, {"::ffff:1.2.3.4", "", false},
		}},
		{"v6 /0 deny is IPv6 only", Rules{Deny: []string{"::/0"}}, []probe{
			{"2001:db8::1", "", false}, {"1.2.3.4", "", true}, {"::ffff:1.2.3.4", "", true},
		}},
		{"v6 prefix covering the mapped range", Rules{Allow: []string{"::/80"}}, []probe{
			{"::1", "", true}, {"::ffff:1.2.3.4", "", false}, {"1.2.3.4", "", false},
		}},
		{"mapped prefix is IPv4", Rules{Allow: []string{"::ffff:10.0.0.0/104"}}, []probe{
			{"10.1.2.3", "", true}, {"::ffff:10.1.2.3", "", true}, {"11.0.0.1", "", false}, {"::ffff:11.0.0.1", "", false},
		}},
		{"mapped address matches v4 rule", Rules{Allow: []string{"10.0.0.0/8"}, Deny: []string{"::ffff:10.9.9.9"}}, []probe{
			{"::ffff:10.1.2.3", "", true}, {"10.9.9.9", "", false}, {"::ffff:10.9.9.9", "", false},
		}},
		{"all of v4 via mapped /96", Rules{Allow: []string{"::ffff:0:0/96"}}, []probe{
			{"0.0.0.0", "", true}, {"255.255.255.255", "", true}, {"::1", "", false},
		}},
		{"v4 rule never matches v6 with the same bits", Rules{Allow: []string{"10.0.0.0/8"}}, []probe{
			{"a00::1", "", false}, {"::a00:1", "", false}, {"::10.0.0.1", "", false},
		}},
		{"allow of one family only", Rules{Allow: []string{"2001:db8::/32"}, Deny: []string{"10.0.0.0/8"}}, []probe{
			{"2001:db8::5", "", true}, {"8.8.8.8", "", false}, {"10.0.0.1", "", false},
		}},
		{"zero source with source rules", Rules{Deny: []string{"10.0.0.0/8"}}, []probe{
			{"", "", false}, {"", "1.2.3.4", false},
		}},
		{"zero source with allow rules", Rules{Allow: []string{"0.0.0.0/0", "::/0"}}, []probe{
			{"", "", false}, {"1.2.3.4", "", true},
		}},
		{"zero source without source rules", Rules{DestAllow: []string{"192.0.2.0/24"}}, []probe{
			{"", "", true}, {"", "192.0.2.1", true}, {"", "192.0.3.1", false},
		}},
		{"zoned source", Rules{Deny: []string{"fe80::/10"}}, []probe{
			{"fe80::1%eth0", "", false}, {"fe80::1", "", false}, {"2001:db8::1%eth0", "", true},
		}},
		{"zoned source allowed", Rules{Allow: []string{"fe80::/10"}}, []probe{
			{"fe80::1%eth0", "", true}, {"fe80::1%eth0", "fe80::2%eth1", true},
		}},
		{"dest allow", Rules{DestAllow: []string{"192.0.2.0/24", "2001:db8::/48"}}, []probe{
			{"1.2.3.4", "192.0.2.10", true}, {"1.2.3.4", "198.51.100.1", false}, {"1.2.3.4", "", true},
			{"1.2.3.4", "::ffff:192.0.2.10", true}, {"::1", "2001:db8:0:ffff::1", true}, {"::1", "2001:db8:1::1", false},
		}},
		{"dest deny", Rules{DestDeny: []string{"192.0.2.53"}}, []probe{
			{"1.2.3.4", "192.0.2.53", false}, {"1.2.3.4", "192.0.2.54", true}, {"1.2.3.4", "2001:db8::1", true},
		}},
		{"source and dest both must pass", Rules{Allow: []string{"10.0.0.0/8"}, Deny: []string{"10.6.6.6"}, DestAllow: []string{"192.0.2.0/24"}, DestDeny: []string{"192.0.2.1"}}, []probe{
			{"10.1.1.1", "192.0.2.2", true},
			{"10.1.1.1", "192.0.2.1", false}, // dest denied
			{"10.1.1.1", "192.0.3.1", false}, // dest not allowed
			{"10.6.6.6", "192.0.2.2", false}, // source denied
			{"11.1.1.1", "192.0.2.2", false}, // source not allowed
			{"10.1.1.1", "", true},           // dest unknown: source only
		}},
		{"source lists do not apply to dest", Rules{Deny: []string{"192.0.2.0/24"}}, []probe{
			{"1.2.3.4", "192.0.2.1", true}, {"192.0.2.1", "1.2.3.4", false},
		}},
		{"dest lists do not apply to source", Rules{DestDeny: []string{"192.0.2.0/24"}}, []probe{
			{"192.0.2.1", "1.2.3.4", true}, {"1.2.3.4", "192.0.2.1", false},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Compile(c.rules)
			if err != nil {
				t.Fatal(err)
			}
			n := newNaive(t, c.rules)
			for _, pr := range c.probes {
				src, dst := mustAddr(pr.src), mustAddr(pr.dst)
				if got := p.Allow(src, dst); got != pr.want {
					t.Errorf("Allow(%q, %q) = %v, want %v", pr.src, pr.dst, got, pr.want)
				}
				if got := n.allow2(src, dst); got != pr.want {
					t.Errorf("naive Allow(%q, %q) = %v, want %v (test reference is wrong)", pr.src, pr.dst, got, pr.want)
				}
				if pr.dst == "" {
					if got := p.AllowSource(src); got != pr.want {
						t.Errorf("AllowSource(%q) = %v, want %v", pr.src, got, pr.want)
					}
				}
			}
		})
	}
}

func TestAllowDoesNotAllocate(t *testing.T) {
	p, err := Compile(Rules{Allow: []string{"10.0.0.0/8", "2001:db8::/32"}, Deny: []string{"10.1.0.0/16"}, DestAllow: []string{"192.0.2.0/24"}})
	if err != nil {
		t.Fatal(err)
	}
	src, src6, dst := mustAddr("10.2.3.4"), mustAddr("fe80::1%eth0"), mustAddr("::ffff:192.0.2.1")
	if n := testing.AllocsPerRun(100, func() {
		p.Allow(src, dst)
		p.Allow(src6, dst)
		p.AllowSource(src)
	}); n != 0 {
		t.Errorf("Allow allocates %v times", n)
	}
}

// gen makes random rules and addresses drawn from small pools, so that prefixes nest, overlap and
// touch, and probes land on their edges.
type gen struct{ r *rand.Rand }

func (g gen) v4() netip.Addr {
	var b [4]byte
	top := []byte{0, 10, 10, 10, 192, 255}
	b[0] = top[g.r.IntN(len(top))]
	b[1] = byte(g.r.IntN(4))
	b[2] = byte(g.r.IntN(256))
	b[3] = byte(g.r.IntN(256))
	if g.r.IntN(8) == 0 {
		b = [4]byte{byte(g.r.Uint32()), byte(g.r.Uint32()), byte(g.r.Uint32()), byte(g.r.Uint32())}
	}
	return netip.AddrFrom4(b)
}

func (g gen) v6() netip.Addr {
	var b [16]byte
	switch g.r.IntN(6) {
	case 0: // around the IPv4-mapped range and ::
		b[10], b[11] = byte(g.r.IntN(2)*0xff), byte(g.r.IntN(2)*0xff)
	case 1:
		b[0], b[1] = 0xfe, 0x80
	case 2:
		for i := range b {
			b[i] = 0xff
		}
	default:
		b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, 0xb8
		b[4] = byte(g.r.IntN(3))
	}
	// random low bits, at a random depth, to hit both halves of the 128-bit key
	from := 4 + g.r.IntN(12)
	for i := from; i < 16; i++ {
		if g.r.IntN(3) > 0 {
			b[i] = byte(g.r.Uint32())
		}
	}
	return netip.AddrFrom16(b)
}

func (g gen) bits(max, min int) int {
	if g.r.IntN(20) == 0 {
		return g.r.IntN(max + 1)
	}
	return min + g.r.IntN(max-min+1)
}

func (g gen) rule() string {
	if g.r.IntN(5) < 3 {
		a, bits := g.v4(), g.bits(32, 8)
		switch g.r.IntN(6) {
		case 0:
			return a.String()
		case 1:
			return fmt.Sprintf("::ffff:%s/%d", a, 96+bits)
		case 2:
			return fmt.Sprintf("::ffff:%s", a)
		}
		return fmt.Sprintf("%s/%d", a, bits)
	}
	a, bits := g.v6(), g.bits(128, 16)
	if g.r.IntN(6) == 0 {
		return a.String()
	}
	return fmt.Sprintf("%s/%d", a, bits)
}

func (g gen) list(max int) []string {
	if g.r.IntN(4) == 0 {
		return nil
	}
	out := make([]string, g.r.IntN(max+1))
	for i := range out {
		out[i] = g.rule()
	}
	return out
}

// lastAddr returns the highest address of p, bit by bit, independently of the code under test.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr()
	if a.Is4() {
		b := a.As4()
		for i := p.Bits(); i < 32; i++ {
			b[i/8] |= 0x80 >> (i % 8)
		}
		return netip.AddrFrom4(b)
	}
	b := a.As16()
	for i := p.Bits(); i < 128; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom16(b)
}

// edges returns addresses on and around the edges of every rule in ps.
func edges(ps ...[]netip.Prefix) []netip.Addr {
	var out []netip.Addr
	for _, l := range ps {
		for _, p := range l {
			first, last := p.Masked().Addr(), lastAddr(p)
			out = append(out, first, last, first.Prev(), last.Next())
		}
	}
	return out
}

// probes returns a mix of random, edge, mapped, zoned and zero addresses.
func (g gen) probes(n naive, count int) []netip.Addr {
	out := edges(n.allow, n.deny, n.dallow, n.ddeny)
	for range count {
		if g.r.IntN(2) == 0 {
			out = append(out, g.v4())
		} else {
			out = append(out, g.v6())
		}
	}
	for i, l := 0, len(out); i < l; i++ {
		a := out[i]
		switch {
		case a.Is4() && g.r.IntN(3) == 0:
			out = append(out, netip.AddrFrom16(a.As16())) // mapped
		case a.Is6() && g.r.IntN(5) == 0:
			out = append(out, a.WithZone("eth0"))
		}
	}
	return append(out, netip.Addr{})
}

func checkAgainstNaive(t *testing.T, r Rules, probes []netip.Addr, rnd *rand.Rand) {
	t.Helper()
	p, err := Compile(r)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	if p != nil {
		checkInvariants(t, &p.src)
		checkInvariants(t, &p.dst)
	}
	n := newNaive(t, r)
	fails := 0
	for i, src := range probes {
		if got, want := p.AllowSource(src), n.allowSource(src); got != want {
			t.Errorf("AllowSource(%v) = %v, naive %v", src, got, want)
			fails++
		}
		dst := probes[rnd.IntN(len(probes))]
		if i%2 == 0 {
			dst, src = src, probes[rnd.IntN(len(probes))]
		}
		if got, want := p.Allow(src, dst), n.allow2(src, dst); got != want {
			t.Errorf("Allow(%v, %v) = %v, naive %v", src, dst, got, want)
			fails++
		}
		if fails > 5 {
			t.Fatalf("rules %+v: too many mismatches", r)
		}
	}
}

// checkInvariants checks that a table's ranges are sorted, disjoint, non-adjacent and well formed.
func checkInvariants(t *testing.T, tb *table) {
	t.Helper()
	if len(tb.start4) != len(tb.end4) || len(tb.start6) != len(tb.end6) {
		t.Fatal("start and end arrays differ in length")
	}
	for i := range tb.start4 {
		if tb.start4[i] > tb.end4[i] || (i > 0 && uint64(tb.end4[i-1])+1 >= uint64(tb.start4[i])) {
			t.Fatalf("IPv4 range %d malformed or touching its predecessor", i)
		}
	}
	for i := range tb.start6 {
		if tb.end6[i].less(tb.start6[i]) || (i > 0 && (tb.end6[i-1] == max6 || !tb.end6[i-1].inc().less(tb.start6[i]))) {
			t.Fatalf("IPv6 range %d malformed or touching its predecessor", i)
		}
	}
}

func TestDifferential(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	g := gen{rnd}
	rounds := 400
	if testing.Short() {
		rounds = 50
	}
	for range rounds {
		r := Rules{Allow: g.list(40), Deny: g.list(40), DestAllow: g.list(10), DestDeny: g.list(10)}
		n := newNaive(t, r)
		checkAgainstNaive(t, r, g.probes(n, 200), rnd)
	}
}

func TestDifferentialLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("large rule sets in -short mode")
	}
	rnd := rand.New(rand.NewPCG(3, 4))
	g := gen{rnd}
	for _, size := range []int{2000, 20000} {
		r := Rules{}
		for range size {
			r.Allow = append(r.Allow, g.rule())
		}
		for range size / 4 {
			r.Deny = append(r.Deny, g.rule())
		}
		n := newNaive(t, r)
		probes := edges(n.allow[:200], n.deny[:50])
		for range 500 {
			probes = append(probes, g.v4(), g.v6())
		}
		checkAgainstNaive(t, r, probes, rnd)
	}
}

// addrFrom makes an address from fuzz bytes: 16 or more bytes an IPv6 address (maybe mapped), 4 to
// 15 an IPv4 address, fewer the zero Addr.
func addrFrom(b []byte) netip.Addr {
	switch {
	case len(b) >= 16:
		return netip.AddrFrom16([16]byte(b[:16]))
	case len(b) >= 4:
		return netip.AddrFrom4([4]byte(b[:4]))
	}
	return netip.Addr{}
}

func FuzzParsePrefix(f *testing.F) {
	for _, s := range []string{
		"10.0.0.0/8", "10.1.2.3/8", "192.0.2.1", "0.0.0.0/0", "255.255.255.255/32", " 10.0.0.1 ",
		"2001:db8::/32", "2001:db8::1", "::/0", "::/128", "::ffff:1.2.3.4", "::ffff:10.0.0.0/104",
		"::ffff:0:0/96", "::ffff:0:0/95", "fe80::1%eth0", "fe80::1%eth0/64", "", "300.1.2.3/8",
		"10.0.0.0/33", "::/129", "10.0.0.0/08", "1.2.3.4/", "/8", "garbage", "010.0.0.1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePrefix(s)
		// Agreement with net/netip on what is well formed.
		trimmed := strings.TrimSpace(s)
		var netipOK bool
		if strings.Contains(trimmed, "/") {
			_, e := netip.ParsePrefix(trimmed)
			netipOK = e == nil
		} else {
			a, e := netip.ParseAddr(trimmed)
			netipOK = e == nil && a.Zone() == ""
		}
		if (err == nil) != netipOK {
			t.Fatalf("ParsePrefix(%q) error %v, but net/netip accepts it: %v", s, err, netipOK)
		}
		if err != nil {
			var re *RuleError
			if !errors.As(err, &re) || !errors.Is(err, ErrInvalidRule) || !strings.HasPrefix(err.Error(), "firewall: ") {
				t.Fatalf("ParsePrefix(%q): bad error %#v", s, err)
			}
			return
		}
		if !p.IsValid() || p != p.Masked() || p.Addr().Zone() != "" || (p.Addr().Is4In6() && p.Bits() >= 96) {
			t.Fatalf("ParsePrefix(%q) = %v: not valid, masked, unzoned and unmapped", s, p)
		}
		if q, err := ParsePrefix(p.String()); err != nil || q != p {
			t.Fatalf("ParsePrefix(%q) = %v, round trip gives %v, %v", s, p, q, err)
		}
		// Agreement with the naive matcher, as an allow and as a deny rule.
		rnd := rand.New(rand.NewPCG(uint64(len(s)), 1))
		probes := edges([]netip.Prefix{p})
		for _, a := range probes[:len(probes):len(probes)] {
			if a.Is4() {
				probes = append(probes, netip.AddrFrom16(a.As16()))
			}
		}
		probes = append(probes, netip.MustParseAddr("1.2.3.4"), netip.MustParseAddr("2001:db8::1"))
		checkAgainstNaive(t, Rules{Allow: []string{s}}, probes, rnd)
		checkAgainstNaive(t, Rules{Deny: []string{s}}, probes, rnd)
	})
}

func FuzzCompile(f *testing.F) {
	f.Add("10.0.0.0/8,192.0.2.1", "10.1.0.0/16", "", "", []byte{10, 1, 2, 3}, []byte{})
	f.Add("", "0.0.0.0/0", "192.0.2.0/24", "192.0.2.1", []byte{1, 2, 3, 4}, []byte{192, 0, 2, 1})
	f.Add("::ffff:10.0.0.0/104", "", "", "", []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 9, 9, 9}, []byte{})
	f.Add("::/0", "2001:db8::/32", "", "::1", []byte{0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add("2001:db8:0:1::/64,2001:db8:0:1:8000::/65", "2001:db8:0:1::1", "", "", []byte{}, []byte{})
	f.Add("10.0.0.0/8,garbage", "", "", "", []byte{10, 0, 0, 1}, []byte{})
	f.Add("", "", "", "fe80::1%eth0", []byte{}, []byte{1, 2, 3, 4})
	f.Add("255.255.255.255,0.0.0.0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::", "", []byte{255, 255, 255, 255}, []byte{})
	split := func(s string) []string {
		if s == "" {
			return nil
		}
		return strings.Split(s, ",")
	}
	f.Fuzz(func(t *testing.T, allow, deny, dallow, ddeny string, src, dst []byte) {
		r := Rules{Allow: split(allow), Deny: split(deny), DestAllow: split(dallow), DestDeny: split(ddeny)}
		p, err := Compile(r)
		if verr := r.Validate(); (err == nil) != (verr == nil) {
			t.Fatalf("Compile error %v, Validate error %v", err, verr)
		}
		if err != nil {
			var re *RuleError
			if !errors.As(err, &re) || !strings.HasPrefix(err.Error(), "firewall: "+re.List+": ") {
				t.Fatalf("bad error %#v", err)
			}
			if _, perr := ParsePrefix(re.Entry); perr == nil {
				t.Fatalf("Compile rejects %q, ParsePrefix accepts it", re.Entry)
			}
			return
		}
		if (p == nil) != r.IsZero() {
			t.Fatalf("Compile(%+v) = %v", r, p)
		}
		n := newNaive(t, r)
		probes := append(edges(n.allow, n.deny, n.dallow, n.ddeny), addrFrom(src), addrFrom(dst), netip.Addr{})
		checkAgainstNaive(t, r, probes, rand.New(rand.NewPCG(uint64(len(src)), uint64(len(dst)))))
		s, d := addrFrom(src), addrFrom(dst)
		if got, want := p.Allow(s, d), n.allow2(s, d); got != want {
			t.Fatalf("Allow(%v, %v) = %v, naive %v", s, d, got, want)
		}
	})
}

// rangesOf renders a table's ranges as "first-last" strings, IPv4 first.
func rangesOf(tb *table) []string {
	var out []string
	for i := range tb.start4 {
		s, e := tb.start4[i], tb.end4[i]
		out = append(out, fmt.Sprintf("%v-%v",
			netip.AddrFrom4([4]byte{byte(s >> 24), byte(s >> 16), byte(s >> 8), byte(s)}),
			netip.AddrFrom4([4]byte{byte(e >> 24), byte(e >> 16), byte(e >> 8), byte(e)})))
	}
	from := func(k u128) netip.Addr {
		var b [16]byte
		for i := range 8 {
			b[i] = byte(k.hi >> (56 - 8*i))
			b[8+i] = byte(k.lo >> (56 - 8*i))
		}
		return netip.AddrFrom16(b)
	}
	for i := range tb.start6 {
		out = append(out, fmt.Sprintf("%v-%v", from(tb.start6[i]), from(tb.end6[i])))
	}
	return out
}

func TestCompiledRanges(t *testing.T) {
	cases := []struct {
		allow, deny []string
		want        string
	}{
		{[]string{"10.0.0.0/9", "10.128.0.0/9", "11.0.0.0/8"}, nil, "10.0.0.0-11.255.255.255"},
		{[]string{"10.0.0.0/24", "10.0.0.0/8", "10.0.0.5"}, nil, "10.0.0.0-10.255.255.255"},
		{[]string{"10.0.0.0/24", "10.0.2.0/24"}, nil, "10.0.0.0-10.0.0.255 10.0.2.0-10.0.2.255"},
		{nil, []string{"0.0.0.0/1"}, "128.0.0.0-255.255.255.255 ::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
		{nil, []string{"::/1", "8000::/1"}, "0.0.0.0-255.255.255.255"},
		{[]string{"0.0.0.0/0"}, []string{"255.255.255.255", "0.0.0.0"}, "0.0.0.1-255.255.255.254"},
		{[]string{"0.0.0.0/0"}, []string{"0.0.0.0/0"}, ""},
		{[]string{"::/64", "0:0:0:1::/64"}, nil, "::-::1:ffff:ffff:ffff:ffff"},
		{[]string{"::/63"}, []string{"0:0:0:1::/64"}, "::-::ffff:ffff:ffff:ffff"},
		{[]string{"::/63"}, []string{"::/64"}, "0:0:0:1::-::1:ffff:ffff:ffff:ffff"},
		{[]string{"2001:db8::/32"}, []string{"2001:db8::1", "2001:db8::3"}, "2001:db8::-2001:db8:: 2001:db8::2-2001:db8::2 2001:db8::4-2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"},
		{[]string{"::/0"}, []string{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}, "::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"},
	}
	for _, c := range cases {
		p, err := Compile(Rules{Allow: c.allow, Deny: c.deny})
		if err != nil {
			t.Fatal(err)
		}
		checkInvariants(t, &p.src)
		if got := strings.Join(rangesOf(&p.src), " "); got != c.want {
			t.Errorf("allow %q deny %q:\n got  %s\n want %s", c.allow, c.deny, got, c.want)
		}
	}
}
