package decision

import (
	"cmp"
	"encoding/binary"
	"math"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
)

// CIDR decisions change rarely but must be matched by longest prefix on
// every request. They are compiled into an immutable snapshot: the address
// space of each family is cut into sorted, non-overlapping intervals, each
// owned by the longest prefix covering it, with a first-level table on the
// top 16 address bits that narrows the binary search to a handful of
// intervals. A lookup is then a table read plus a short search, with no
// locks and no pointer chasing through a trie.
//
// Expiry is handled without a rebuild: every prefix records its parent (the
// next shorter prefix covering it), and a lookup that lands on an expired
// prefix falls back along that chain.

// u128 is an address in either family as a 128-bit integer; IPv4 addresses
// use the low 32 bits.
type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

func (a u128) addOne() u128 {
	if a.lo == math.MaxUint64 {
		return u128{a.hi + 1, 0}
	}
	return u128{a.hi, a.lo + 1}
}

func u128From(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func (a u128) addr6() netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], a.hi)
	binary.BigEndian.PutUint64(b[8:], a.lo)
	return netip.AddrFrom16(b)
}

func addr4Key(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func addrFrom4(k uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], k)
	return netip.AddrFrom4(b)
}

// prefixRange returns the first and last address a canonical prefix covers.
func prefixRange(p netip.Prefix) (first, last u128) {
	if p.Addr().Is4() {
		start := uint64(addr4Key(p.Addr()))
		return u128{0, start}, u128{0, start | (1<<(32-p.Bits()) - 1)}
	}
	first = u128From(p.Addr())
	host := uint(128 - p.Bits())
	last = first
	if host >= 64 {
		last.lo = math.MaxUint64
		last.hi |= 1<<(host-64) - 1 // host == 128 wraps to all ones
	} else {
		last.lo |= 1<<host - 1
	}
	return first, last
}

type cidrEntry struct {
	prefix  netip.Prefix
	attr    *attr // the snapshot holds the attr itself, so ids can be recycled freely
	expires int64
	parent  int32 // index of the next shorter covering prefix, or -1
}

const (
	topBits = 16
	// Below this many intervals a plain binary search is as fast as the
	// first-level table, which costs 256 KiB to build.
	minTopIntervals = 256
)

// A span is an interval of the address space, from its start to the next
// span's, and the entry that owns it (-1 for none). The owner sits next to
// the start so that the search's last cache line also yields the answer.
type (
	span4 struct {
		start uint32
		owner int32
	}
	span6 struct {
		start u128
		owner int32
	}
)

type intervals4 struct {
	top   []uint32 // top[h]: last span starting at or before h<<16; len 1<<16+1, or nil when small
	spans []span4
}

type intervals6 struct {
	top   []uint32 // as intervals4, on the top 16 bits of the address
	spans []span6
}

type cidrSnap struct {
	entries []cidrEntry
	v4      intervals4
	v6      intervals6
}

func (s *cidrSnap) lookup4(a uint32, now int64) *cidrEntry {
	iv := &s.v4
	if len(iv.spans) == 0 {
		return nil
	}
	lo, hi := 0, len(iv.spans)-1
	if iv.top != nil {
		h := a >> (32 - topBits)
		lo, hi = int(iv.top[h]), int(iv.top[h+1])
	}
	for lo < hi {
		m := int(uint(lo+hi+1) >> 1)
		if iv.spans[m].start <= a {
			lo = m
		} else {
			hi = m - 1
		}
	}
	return s.resolve(iv.spans[lo].owner, now)
}

func (s *cidrSnap) lookup6(a u128, now int64) *cidrEntry {
	iv := &s.v6
	if len(iv.spans) == 0 {
		return nil
	}
	lo, hi := 0, len(iv.spans)-1
	if iv.top != nil {
		h := a.hi >> (64 - topBits)
		lo, hi = int(iv.top[h]), int(iv.top[h+1])
	}
	for lo < hi {
		m := int(uint(lo+hi+1) >> 1)
		if !a.less(iv.spans[m].start) {
			lo = m
		} else {
			hi = m - 1
		}
	}
	return s.resolve(iv.spans[lo].owner, now)
}

// resolve returns the longest active prefix starting from entry i. The
// chain is at most as long as the address has bits.
func (s *cidrSnap) resolve(i int32, now int64) *cidrEntry {
	for i >= 0 {
		e := &s.entries[i]
		if isActive(e.expires, now) {
			return e
		}
		i = e.parent
	}
	return nil
}

// buildSnap compiles entries, in any order, into a snapshot.
func buildSnap(entries []cidrEntry) *cidrSnap { return compile(sortEntries(entries)) }

// maxCIDRs is the most CIDRs sortEntries can number in its packed keys.
const maxCIDRs = 1 << 26

// sortEntries returns entries in snapshot order: IPv4 first, then by first
// address, parents before their children (the order of comparePrefixes).
// It sorts packed integer keys, several times faster than sorting entries
// through a comparison function.
func sortEntries(entries []cidrEntry) []cidrEntry {
	type key6 struct {
		first u128
		tail  uint64 // bits<<32 | index
	}
	var (
		k4 = make([]uint64, 0, len(entries))
		k6 []key6
	)
	for i := range entries {
		p := entries[i].prefix
		if p.Addr().Is4() {
			k4 = append(k4, uint64(addr4Key(p.Addr()))<<32|uint64(p.Bits())<<26|uint64(i))
		} else {
			k6 = append(k6, key6{u128From(p.Addr()), uint64(p.Bits())<<32 | uint64(i)})
		}
	}
	slices.Sort(k4)
	slices.SortFunc(k6, func(a, b key6) int {
		switch {
		case a.first.hi != b.first.hi:
			return cmp.Compare(a.first.hi, b.first.hi)
		case a.first.lo != b.first.lo:
			return cmp.Compare(a.first.lo, b.first.lo)
		}
		return cmp.Compare(a.tail, b.tail)
	})
	sorted := make([]cidrEntry, 0, len(entries))
	for _, k := range k4 {
		sorted = append(sorted, entries[k&(maxCIDRs-1)])
	}
	for _, k := range k6 {
		sorted = append(sorted, entries[uint32(k.tail)])
	}
	return sorted
}

// comparePrefixes orders canonical prefixes as snapshots keep them.
func comparePrefixes(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(a.Bits(), b.Bits())
}

// mergeChanges returns prev (sorted) without the changed prefixes and with
// added (the current version of those still present) merged in. It spares
// a rebuild the sort, which would dominate it.
func mergeChanges(prev []cidrEntry, changed []netip.Prefix, added []cidrEntry) []cidrEntry {
	slices.SortFunc(changed, comparePrefixes)
	slices.SortFunc(added, func(a, b cidrEntry) int { return comparePrefixes(a.prefix, b.prefix) })
	out := make([]cidrEntry, 0, len(prev)+len(added))
	i, j := 0, 0
	for _, e := range prev {
		for i < len(changed) && comparePrefixes(changed[i], e.prefix) < 0 {
			i++
		}
		if i < len(changed) && changed[i] == e.prefix {
			continue
		}
		for j < len(added) && comparePrefixes(added[j].prefix, e.prefix) < 0 {
			out = append(out, added[j])
			j++
		}
		out = append(out, e)
	}
	return append(out, added[j:]...)
}

// compile builds a snapshot from entries in snapshot order, which it keeps
// (and fills in their parents).
func compile(sorted []cidrEntry) *cidrSnap {
	n4, _ := slices.BinarySearchFunc(sorted, true, func(e cidrEntry, _ bool) int {
		if e.prefix.Addr().Is4() {
			return -1
		}
		return 1
	})
	s := &cidrSnap{entries: sorted}
	if n4 > 0 {
		spans := flatten(sorted[:n4], 0, u128{0, math.MaxUint32})
		s.v4.spans = make([]span4, len(spans))
		for i, sp := range spans {
			s.v4.spans[i] = span4{uint32(sp.start.lo), sp.owner}
		}
		if len(spans) >= minTopIntervals {
			s.v4.top = buildTop(len(spans), func(i int, h uint64) bool {
				return uint64(s.v4.spans[i].start) <= h<<(32-topBits)
			})
		}
	}
	if n4 < len(sorted) {
		s.v6.spans = flatten(sorted[n4:], int32(n4), u128{math.MaxUint64, math.MaxUint64})
		if len(s.v6.spans) >= minTopIntervals {
			s.v6.top = buildTop(len(s.v6.spans), func(i int, h uint64) bool {
				st := s.v6.spans[i].start
				return st.hi < h<<(64-topBits) || st.hi == h<<(64-topBits) && st.lo == 0
			})
		}
	}
	return s
}

// flatten turns the sorted prefixes of one family (which nest properly:
// two prefixes are disjoint or one contains the other) into spans, and
// fills in each entry's parent. Entries are numbered from base on.
func flatten(es []cidrEntry, base int32, last u128) []span6 {
	spans := make([]span6, 0, 2*len(es)+1)
	emit := func(at u128, owner int32) {
		n := len(spans)
		if n > 0 && spans[n-1].start == at {
			// A span that starts where the previous one does replaces
			// it (a child starting with its parent).
			spans[n-1].owner = owner
			if n > 1 && spans[n-2].owner == owner {
				spans = spans[:n-1]
			}
			return
		}
		if n > 0 && spans[n-1].owner == owner {
			return
		}
		spans = append(spans, span6{at, owner})
	}
	type open struct {
		idx int32
		end u128
	}
	var stack []open
	top := func() int32 {
		if len(stack) == 0 {
			return -1
		}
		return stack[len(stack)-1].idx
	}
	emit(u128{}, -1)
	for i := range es {
		first, end := prefixRange(es[i].prefix)
		// Close the prefixes that end before this one starts; whatever
		// remains on the stack covers it.
		for len(stack) > 0 && stack[len(stack)-1].end.less(first) {
			closed := stack[len(stack)-1].end
			stack = stack[:len(stack)-1]
			emit(closed.addOne(), top())
		}
		es[i].parent = top()
		idx := base + int32(i)
		stack = append(stack, open{idx, end})
		emit(first, idx)
	}
	for len(stack) > 0 {
		closed := stack[len(stack)-1].end
		stack = stack[:len(stack)-1]
		if closed != last {
			emit(closed.addOne(), top())
		}
	}
	return spans
}

// buildTop builds the first-level table over n sorted interval starts:
// entry h is the last interval starting at or before the first address
// whose top 16 bits are h (the first interval always starts at 0), so the
// interval holding an address in bucket h lies in [top[h], top[h+1]].
func buildTop(n int, startsAtOrBefore func(i int, h uint64) bool) []uint32 {
	top := make([]uint32, 1<<topBits+1)
	j := 0
	for h := range uint64(1 << topBits) {
		for j+1 < n && startsAtOrBefore(j+1, h) {
			j++
		}
		top[h] = uint32(j)
	}
	top[1<<topBits] = uint32(n - 1)
	return top
}

// cidrRec is the writer-side record of one CIDR decision.
type cidrRec struct {
	id  uint32
	exp int64
}

// cidrSet owns the CIDR decisions: a map that writers change under a mutex
// and the compiled snapshot that readers load. Changes are published before
// the writer returns, and concurrent publishes are coalesced: whoever
// rebuilds includes every change made so far, and writers whose change is
// already included return at once (group commit).
type cidrSet struct {
	snap atomic.Pointer[cidrSnap]

	mu    sync.Mutex // guards the fields below
	m     map[netip.Prefix]cidrRec
	gen   uint64                    // bumped on every change
	dirty map[netip.Prefix]struct{} // changed since the snapshot being built

	buildMu sync.Mutex // serializes rebuilds; guards built
	built   uint64     // generation of the published snapshot
}

func newCIDRSet() *cidrSet {
	c := &cidrSet{m: make(map[netip.Prefix]cidrRec), dirty: make(map[netip.Prefix]struct{})}
	c.snap.Store(&cidrSnap{})
	return c
}

// publish makes sure the published snapshot includes generation gen.
func (c *cidrSet) publish(gen uint64, attrs *attrTable) {
	c.buildMu.Lock()
	defer c.buildMu.Unlock()
	if c.built >= gen {
		return
	}
	c.mu.Lock()
	now := c.gen
	var (
		entries []cidrEntry
		changed []netip.Prefix
		added   []cidrEntry
	)
	// The map's references keep the ids read here alive while c.mu is held.
	full := len(c.dirty)*8 > len(c.m)
	if full {
		entries = make([]cidrEntry, 0, len(c.m))
		for p, r := range c.m {
			entries = append(entries, cidrEntry{prefix: p, attr: attrs.get(r.id), expires: r.exp})
		}
	} else {
		changed = make([]netip.Prefix, 0, len(c.dirty))
		for p := range c.dirty {
			changed = append(changed, p)
			if r, ok := c.m[p]; ok {
				added = append(added, cidrEntry{prefix: p, attr: attrs.get(r.id), expires: r.exp})
			}
		}
	}
	if len(c.dirty) > 1024 {
		// clear would keep the capacity of a bulk load around for good.
		c.dirty = make(map[netip.Prefix]struct{})
	} else {
		clear(c.dirty)
	}
	c.mu.Unlock()

	if full {
		entries = sortEntries(entries)
	} else {
		// Only this goroutine (holding buildMu) replaces the snapshot.
		entries = mergeChanges(c.snap.Load().entries, changed, added)
	}
	c.snap.Store(compile(entries))
	c.built = now
}

// publishAll publishes every change made so far.
func (c *cidrSet) publishAll(attrs *attrTable) {
	c.mu.Lock()
	gen := c.gen
	c.mu.Unlock()
	c.publish(gen, attrs)
}

// changed records a change to p; the caller holds c.mu.
func (c *cidrSet) changed(p netip.Prefix) {
	c.dirty[p] = struct{}{}
	c.gen++
}
