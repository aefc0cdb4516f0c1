// Package firewall holds the allow/deny CIDR rule model shared by the HTTPS relay, the TCP listeners and
// the node agent, and compiles it into a policy whose lookup cost does not grow with the number of rules.
//
// Precedence: a deny match always wins; an empty allow list allows every address not denied. Source and
// destination lists are evaluated independently and both must pass. IPv4-mapped IPv6 addresses
// (::ffff:a.b.c.d) are matched as the IPv4 address they carry.
//
// Address families are kept apart: an IPv4 rule never matches an IPv6 address and an IPv6 rule never
// matches an IPv4 address. A rule written as an IPv4-mapped prefix of length 96 or more
// ("::ffff:10.0.0.0/104") is the IPv4 rule it denotes ("10.0.0.0/8"); a shorter IPv6 prefix that happens
// to cover ::ffff:0:0/96 (for example "::/0") is an IPv6 rule and matches IPv6 addresses only.
//
// Compile turns the four lists into, per direction and address family, one sorted array of disjoint
// address ranges that are allowed (the allow list, or everything when it is empty, minus the deny list).
// A lookup is one binary search: O(log n) in the number of rules, with no allocation.
package firewall

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Rules is the user-facing rule model, as stored in the registry and sent by the control API.
// Every entry is a CIDR ("10.0.0.0/8", "2001:db8::/32") or a bare address (a /32 or /128). Host bits
// after the prefix length are accepted and cleared ("10.1.2.3/8" is "10.0.0.0/8"). Leading and trailing
// white space is ignored. Empty entries, IPv6 zones ("fe80::1%eth0") and prefix lengths out of range are
// errors.
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

// ErrInvalidRule is matched (errors.Is) by every error that ParsePrefix, Validate and Compile return
// for a malformed entry.
var ErrInvalidRule = errors.New("firewall: invalid rule")

// errEmpty is the cause of a RuleError for an entry that is empty or white space only.
var errEmpty = errors.New("empty entry")

// errZone is the cause of a RuleError for an address that carries an IPv6 zone.
var errZone = errors.New("IPv6 zone not allowed in a rule")

// RuleError describes one malformed rule entry. It matches ErrInvalidRule with errors.Is and unwraps to
// the underlying parse error.
type RuleError struct {
	// List names the list that holds the entry: "allow", "deny", "dest_allow" or "dest_deny" (the JSON
	// field names). Empty when the error comes from ParsePrefix.
	List string
	// Index is the entry's zero-based position in List. Zero when the error comes from ParsePrefix.
	Index int
	// Entry is the entry as written, before white space is trimmed.
	Entry string
	// Err is the cause, usually an error from net/netip.
	Err error
}

// Error returns, for example, `firewall: deny: invalid CIDR "300.1.2.3/8": ...`.
func (e *RuleError) Error() string {
	var b strings.Builder
	b.WriteString("firewall: ")
	if e.List != "" {
		b.WriteString(e.List)
		b.WriteString(": ")
	}
	switch {
	case errors.Is(e.Err, errEmpty):
		if e.List != "" {
			fmt.Fprintf(&b, "empty entry at index %d", e.Index)
		} else {
			b.WriteString("empty entry")
		}
		return b.String()
	case strings.Contains(e.Entry, "/"):
		b.WriteString("invalid CIDR ")
	default:
		b.WriteString("invalid address or CIDR ")
	}
	fmt.Fprintf(&b, "%q: %v", e.Entry, e.Err)
	return b.String()
}

// Unwrap returns ErrInvalidRule and the cause.
func (e *RuleError) Unwrap() []error { return []error{ErrInvalidRule, e.Err} }

// ParsePrefix parses one rule entry: a CIDR or a bare IP address. The result is masked (host bits
// cleared), has no zone, and is an IPv4 prefix when the entry is IPv4 or an IPv4-mapped IPv6 prefix of
// length 96 or more. The error is a *RuleError that names the entry.
func ParsePrefix(s string) (netip.Prefix, error) {
	p, err := parsePrefix(s)
	if err != nil {
		return netip.Prefix{}, &RuleError{Entry: s, Err: err}
	}
	return p, nil
}

// parsePrefix is ParsePrefix with a bare cause for the error, so that callers can wrap it.
func parsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Prefix{}, errEmpty
	}
	if strings.Contains(s, "/") {
		// netip.ParsePrefix rejects zones, lengths out of range and malformed lengths ("/08", "/+8").
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return unmapPrefix(p).Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a.Zone() != "" {
		return netip.Prefix{}, errZone
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// unmapPrefix turns an IPv4-mapped IPv6 prefix of length 96 or more into the IPv4 prefix it denotes.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	a := p.Addr()
	if a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

// list is one named rule list of a Rules value.
type list struct {
	name    string
	entries []string
}

// lists returns r's lists in a fixed order: allow, deny, dest_allow, dest_deny.
func (r Rules) lists() [4]list {
	return [4]list{{"allow", r.Allow}, {"deny", r.Deny}, {"dest_allow", r.DestAllow}, {"dest_deny", r.DestDeny}}
}

// parseList parses every entry of l, appending to out. The error is a *RuleError.
func parseList(l list, out []netip.Prefix) ([]netip.Prefix, error) {
	for i, s := range l.entries {
		p, err := parsePrefix(s)
		if err != nil {
			return nil, &RuleError{List: l.name, Index: i, Entry: s, Err: err}
		}
		out = append(out, p)
	}
	return out, nil
}

// Validate checks every entry of r and returns the first error, a *RuleError naming the list and the
// entry, for example `firewall: deny: invalid CIDR "300.1.2.3/8": ...`. It does not build a Policy.
func (r Rules) Validate() error {
	for _, l := range r.lists() {
		for i, s := range l.entries {
			if _, err := parsePrefix(s); err != nil {
				return &RuleError{List: l.name, Index: i, Entry: s, Err: err}
			}
		}
	}
	return nil
}

// Compile validates r and builds its Policy. It returns (nil, nil) for empty rules, and on a malformed
// entry the same error as Validate. Compile runs in O(n log n) for n entries and keeps O(n) memory.
func Compile(r Rules) (*Policy, error) {
	if r.IsZero() {
		return nil, nil
	}
	var parsed [4][]netip.Prefix
	for i, l := range r.lists() {
		ps, err := parseList(l, make([]netip.Prefix, 0, len(l.entries)))
		if err != nil {
			return nil, err
		}
		parsed[i] = ps
	}
	return &Policy{
		src: buildTable(parsed[0], parsed[1]),
		dst: buildTable(parsed[2], parsed[3]),
	}, nil
}

// Policy is a compiled, immutable Rules value, safe for concurrent use. A nil *Policy allows everything.
type Policy struct {
	src, dst table
}

// AllowSource reports whether a connection from src may pass (destination rules ignored).
//
// An IPv4-mapped src is matched as IPv4 and an IPv6 zone is ignored (fe80::1%eth0 is matched as
// fe80::1). When p has no source rules every src passes, the zero netip.Addr included; when it has any
// source rule (allow or deny) an invalid src, such as the zero netip.Addr, is denied. AllowSource does
// not allocate.
func (p *Policy) AllowSource(src netip.Addr) bool {
	if p == nil {
		return true
	}
	return p.src.allows(src)
}

// Allow reports whether a connection from src to dst may pass: src must pass the source rules (see
// AllowSource) and dst the destination rules, under the same rules for mapped and zoned addresses.
// An invalid dst, such as the zero netip.Addr, skips destination rules: callers that do not know the
// local address get source filtering only. Allow does not allocate.
func (p *Policy) Allow(src, dst netip.Addr) bool {
	if p == nil {
		return true
	}
	if !p.src.allows(src) {
		return false
	}
	if !dst.IsValid() {
		return true
	}
	return p.dst.allows(dst)
}
