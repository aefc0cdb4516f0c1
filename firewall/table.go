package firewall

// The compiled form of one direction's rules (source or destination).
//
// Written by hand rather than taken from an IP-set library (go4.org/netipx, a routing trie): we need
// the allow list minus the deny list folded into one set, our own rule for IPv4-mapped prefixes, and a
// lookup that does not allocate; that is about 150 lines, and it keeps a package that the node agent
// also links free of dependencies.

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"slices"
)

// table holds the addresses of one direction that pass, as sorted, disjoint, non-adjacent inclusive
// ranges per address family.
type table struct {
	// active is false when the direction has no rules at all: everything passes.
	active bool
	// start4[i]..end4[i] are the i-th allowed IPv4 range. Starts and ends sit in separate arrays so
	// that the binary search touches only starts.
	start4, end4 []uint32
	// start6[i]..end6[i] are the i-th allowed IPv6 range.
	start6, end6 []u128
}

// allows reports whether a passes the table. See Policy.AllowSource for invalid and zoned addresses.
func (t *table) allows(a netip.Addr) bool {
	if !t.active {
		return true
	}
	if !a.IsValid() {
		return false
	}
	a = a.Unmap()
	if a.Is4() {
		return contains4(t.start4, t.end4, v4key(a))
	}
	return contains6(t.start6, t.end6, v6key(a))
}

// contains4 reports whether k falls in one of the ranges start[i]..end[i].
func contains4(start, end []uint32, k uint32) bool {
	// n ends as the number of starts <= k.
	lo, hi := 0, len(start)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if start[m] <= k {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo > 0 && k <= end[lo-1]
}

// contains6 reports whether k falls in one of the ranges start[i]..end[i].
func contains6(start, end []u128, k u128) bool {
	lo, hi := 0, len(start)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if !k.less(start[m]) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo > 0 && !end[lo-1].less(k)
}

// u128 is an IPv6 address as a 128-bit unsigned integer.
type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo) }

func (a u128) cmp(b u128) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	return cmp.Compare(a.lo, b.lo)
}

// inc returns a+1; the caller makes sure a is not the maximum.
func (a u128) inc() u128 {
	lo := a.lo + 1
	hi := a.hi
	if lo == 0 {
		hi++
	}
	return u128{hi, lo}
}

// dec returns a-1; the caller makes sure a is not zero.
func (a u128) dec() u128 {
	lo := a.lo - 1
	hi := a.hi
	if a.lo == 0 {
		hi--
	}
	return u128{hi, lo}
}

func v4key(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func v6key(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// rng is an inclusive range of one family while building. IPv4 ranges use only the low 32 bits, so
// one implementation of merge and subtract serves both families.
type rng struct{ start, end u128 }

var (
	max4 = u128{0, 1<<32 - 1}
	max6 = u128{^uint64(0), ^uint64(0)}
)

// prefixRange returns the inclusive range that the masked prefix p covers.
func prefixRange(p netip.Prefix) rng {
	bits := p.Bits()
	if p.Addr().Is4() {
		s := uint64(v4key(p.Addr()))
		host := uint64(^uint32(0) >> bits) // a shift by 32 yields 0 (a /32)
		return rng{u128{0, s &^ host}, u128{0, s | host}}
	}
	s := v6key(p.Addr())
	var host u128
	if bits >= 64 {
		host = u128{0, ^uint64(0) >> (bits - 64)}
	} else {
		host = u128{^uint64(0) >> bits, ^uint64(0)}
	}
	return rng{u128{s.hi &^ host.hi, s.lo &^ host.lo}, u128{s.hi | host.hi, s.lo | host.lo}}
}

// buildTable compiles one direction's parsed allow and deny lists.
func buildTable(allow, deny []netip.Prefix) table {
	t := table{active: len(allow) > 0 || len(deny) > 0}
	if !t.active {
		return t
	}
	var a4, a6, d4, d6 []rng
	split := func(ps []netip.Prefix, v4, v6 *[]rng) {
		for _, p := range ps {
			if p.Addr().Is4() {
				*v4 = append(*v4, prefixRange(p))
			} else {
				*v6 = append(*v6, prefixRange(p))
			}
		}
	}
	split(allow, &a4, &a6)
	split(deny, &d4, &d6)
	if len(allow) == 0 {
		// An empty allow list allows everything, in both families; a non-empty one that only holds
		// prefixes of one family allows nothing of the other.
		a4 = []rng{{u128{}, max4}}
		a6 = []rng{{u128{}, max6}}
	}
	r4 := subtract(merge(a4, max4), merge(d4, max4))
	t.start4, t.end4 = make([]uint32, len(r4)), make([]uint32, len(r4))
	for i, r := range r4 {
		t.start4[i], t.end4[i] = uint32(r.start.lo), uint32(r.end.lo)
	}
	r6 := subtract(merge(a6, max6), merge(d6, max6))
	t.start6, t.end6 = make([]u128, len(r6)), make([]u128, len(r6))
	for i, r := range r6 {
		t.start6[i], t.end6[i] = r.start, r.end
	}
	return t
}

// merge sorts rs in place and returns the union as sorted, disjoint, non-adjacent ranges. max is the
// family's highest address.
func merge(rs []rng, max u128) []rng {
	if len(rs) == 0 {
		return nil
	}
	slices.SortFunc(rs, func(a, b rng) int { return a.start.cmp(b.start) })
	out := rs[:1]
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if last.end == max || !last.end.inc().less(r.start) {
			// Overlapping or adjacent (r.start <= last.end+1): extend.
			if last.end.less(r.end) {
				last.end = r.end
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// subtract returns the ranges of a minus the ranges of d; both are sorted, disjoint and non-adjacent,
// and so is the result.
func subtract(a, d []rng) []rng {
	out := make([]rng, 0, len(a)+len(d))
	j := 0
	for _, r := range a {
		for j < len(d) && d[j].end.less(r.start) {
			j++
		}
		s, open := r.start, true
		for k := j; k < len(d) && !r.end.less(d[k].start); k++ {
			if s.less(d[k].start) {
				out = append(out, rng{s, d[k].start.dec()})
			}
			if !d[k].end.less(r.end) {
				open = false
				break
			}
			s = d[k].end.inc() // d[k].end < r.end, so no overflow
		}
		if open {
			out = append(out, rng{s, r.end})
		}
	}
	return out
}
