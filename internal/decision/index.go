package decision

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Match is the result of a lookup. Producing it does not allocate.
type Match struct {
	Prefix  netip.Prefix
	Action  Action
	Reason  string
	Source  string
	Expires int64 // unix nanos, 0 = never
}

// Limits bound the index: decisions on single addresses follow attacker
// traffic, and an IPv6 attacker has addresses to spare.
type Limits struct {
	MaxIPs   int // exact addresses, both families; <= 0 means DefaultMaxIPs
	MaxCIDRs int // <= 0 means DefaultMaxCIDRs; at most 1<<26
}

// Default limits. A full table of IPv4 addresses takes about 140 MB (of
// IPv6 addresses, about 270 MB), plus each distinct action, reason and
// source once.
const (
	DefaultMaxIPs   = 5_000_000
	DefaultMaxCIDRs = 1_000_000
)

// ErrIndexFull is returned (wrapped) when a new prefix would exceed Limits.
// Replacing the decision of a prefix already present always succeeds.
var ErrIndexFull = errors.New("decision index is full")

// Index is the in-memory view of the decisions that the edge consults on
// every request: Lookup finds the longest prefix with an active decision
// covering a client address.
//
// Lookups never take a lock and never allocate. Exact addresses live in
// sharded hash tables read under per-shard sequence counters; CIDRs live in
// an immutable compiled snapshot that is rebuilt on change (see cidrSet).
// Action, reason and source are interned, so a million decisions with the
// same reason store it once. A change is visible to every Lookup that starts
// after the writing call returns.
//
// An IPv6 prefix never matches an IPv4 client: IPv4-mapped addresses and
// prefixes inside ::ffff:0:0/96 are converted to IPv4 on the way in.
//
// Create an Index with NewIndex; the zero value is not usable.
type Index struct {
	limits Limits

	// wmu is shared by all writers and taken exclusively by ReplaceAll,
	// which swaps in a whole new state. Readers never touch it.
	wmu sync.RWMutex
	st  atomic.Pointer[indexState]
}

type indexState struct {
	attrs *attrTable
	v4    *exact4
	v6    *exact6
	cidrs *cidrSet
	ips   atomic.Int64 // exact entries in v4 and v6
}

// NewIndex returns an empty index with the default limits.
func NewIndex() *Index { return NewIndexWithLimits(Limits{}) }

// NewIndexWithLimits returns an empty index with the given limits.
func NewIndexWithLimits(l Limits) *Index {
	if l.MaxIPs <= 0 {
		l.MaxIPs = DefaultMaxIPs
	}
	if l.MaxCIDRs <= 0 {
		l.MaxCIDRs = DefaultMaxCIDRs
	}
	l.MaxCIDRs = min(l.MaxCIDRs, maxCIDRs)
	ix := &Index{limits: l}
	ix.st.Store(newIndexState(0, 0))
	return ix
}

// newIndexState returns an empty state sized for about n4 and n6 exact
// addresses. Hash seeds are random per state.
func newIndexState(n4, n6 int) *indexState {
	return &indexState{
		attrs: newAttrTable(),
		v4:    newExact4(rand.Uint64(), n4),
		v6:    newExact6(rand.Uint64(), rand.Uint64(), n6),
		cidrs: newCIDRSet(),
	}
}

// Upsert adds d, replacing any decision for the same prefix. An invalid
// decision is rejected with an error.
func (ix *Index) Upsert(d Decision) error {
	p, err := validPrefix(d)
	if err != nil {
		return err
	}
	ix.wmu.RLock()
	defer ix.wmu.RUnlock()
	return ix.st.Load().put(p, d, ix.limits, true)
}

// Delete removes the decision for exactly p and reports whether there was one.
func (ix *Index) Delete(p netip.Prefix) bool {
	p, ok := canonicalPrefix(p)
	if !ok {
		return false
	}
	ix.wmu.RLock()
	defer ix.wmu.RUnlock()
	st := ix.st.Load()
	if p.IsSingleIP() {
		var id uint32
		if p.Addr().Is4() {
			id, ok = st.v4.remove(addr4Key(p.Addr()))
		} else {
			id, ok = st.v6.remove(u128From(p.Addr()))
		}
		if ok {
			st.ips.Add(-1)
			st.attrs.release(id)
		}
		return ok
	}
	c := st.cidrs
	c.mu.Lock()
	r, ok := c.m[p]
	if ok {
		delete(c.m, p)
		c.changed(p)
	}
	gen := c.gen
	c.mu.Unlock()
	if ok {
		st.attrs.release(r.id)
		c.publish(gen, st.attrs)
	}
	return ok
}

// Lookup returns the longest prefix covering addr whose decision is active
// at nowUnixNano. An IPv4-mapped IPv6 address is looked up as IPv4.
func (ix *Index) Lookup(addr netip.Addr, nowUnixNano int64) (Match, bool) {
	st := ix.st.Load()
	addr = addr.Unmap()
	switch {
	case addr.Is4():
		k := addr4Key(addr)
		if a, exp, ok := st.v4.lookup(k, st.attrs); ok && isActive(exp, nowUnixNano) {
			return Match{Prefix: netip.PrefixFrom(addr, 32), Action: a.action, Reason: a.reason, Source: a.source, Expires: exp}, true
		}
		return st.cidrs.snap.Load().lookup4(k, nowUnixNano).match()
	case addr.Is6():
		k := u128From(addr)
		if a, exp, ok := st.v6.lookup(k, st.attrs); ok && isActive(exp, nowUnixNano) {
			return Match{Prefix: netip.PrefixFrom(addr.WithZone(""), 128), Action: a.action, Reason: a.reason, Source: a.source, Expires: exp}, true
		}
		return st.cidrs.snap.Load().lookup6(k, nowUnixNano).match()
	}
	return Match{}, false
}

func (e *cidrEntry) match() (Match, bool) {
	if e == nil {
		return Match{}, false
	}
	return Match{Prefix: e.prefix, Action: e.attr.action, Reason: e.attr.reason, Source: e.attr.source, Expires: e.expires}, true
}

// Get returns the decision stored for exactly p, whether or not it has
// expired (expired decisions stay until Sweep removes them).
func (ix *Index) Get(p netip.Prefix) (Match, bool) {
	p, ok := canonicalPrefix(p)
	if !ok {
		return Match{}, false
	}
	st := ix.st.Load()
	var (
		a   *attr
		exp int64
	)
	switch {
	case p.IsSingleIP() && p.Addr().Is4():
		a, exp, ok = st.v4.lookup(addr4Key(p.Addr()), st.attrs)
	case p.IsSingleIP():
		a, exp, ok = st.v6.lookup(u128From(p.Addr()), st.attrs)
	default:
		c := st.cidrs
		c.mu.Lock()
		var r cidrRec
		if r, ok = c.m[p]; ok {
			a, exp = st.attrs.get(r.id), r.exp
		}
		c.mu.Unlock()
	}
	if !ok || a == nil {
		return Match{}, false
	}
	return Match{Prefix: p, Action: a.action, Reason: a.reason, Source: a.source, Expires: exp}, true
}

// maxReportedErrors caps how many invalid decisions ReplaceAll describes.
const maxReportedErrors = 10

// ReplaceAll replaces the whole content of the index with ds, for start-up
// and resync. Readers switch from the old content to the new one at once;
// other writers wait until it is done.
// Invalid decisions, and those beyond the limits, are skipped and reported
// in the error; the others are installed regardless. When ds holds several
// decisions for one prefix, the last one wins.
func (ix *Index) ReplaceAll(ds []Decision) error {
	// Size the tables up front from a cheap guess at the families.
	var n4, n6 int
	for i := range ds {
		if ds[i].Scope == ScopeIP {
			if strings.Contains(ds[i].Value, ":") {
				n6++
			} else {
				n4++
			}
		}
	}
	ix.wmu.Lock()
	defer ix.wmu.Unlock()
	st := newIndexState(n4, n6)
	var (
		errs    []error
		skipped int
	)
	for i := range ds {
		p, err := validPrefix(ds[i])
		if err == nil {
			err = st.put(p, ds[i], ix.limits, false)
		}
		if err != nil {
			skipped++
			if len(errs) < maxReportedErrors {
				errs = append(errs, err)
			}
		}
	}
	st.cidrs.publishAll(st.attrs)
	ix.st.Store(st)
	if skipped > 0 {
		return fmt.Errorf("%d of %d decisions skipped: %w", skipped, len(ds), errors.Join(errs...))
	}
	return nil
}

// Sweep removes every decision expired at nowUnixNano and returns their
// prefixes, so the caller can delete them from the store too.
func (ix *Index) Sweep(nowUnixNano int64) []netip.Prefix {
	ix.wmu.RLock()
	defer ix.wmu.RUnlock()
	st := ix.st.Load()
	var (
		out []netip.Prefix
		ids []uint32
	)
	out, ids = st.v4.sweep(nowUnixNano, out, ids)
	out, ids = st.v6.sweep(nowUnixNano, out, ids)
	st.ips.Add(-int64(len(ids)))

	c := st.cidrs
	c.mu.Lock()
	removed := false
	for p, r := range c.m {
		if !isActive(r.exp, nowUnixNano) {
			delete(c.m, p)
			c.changed(p)
			out = append(out, p)
			ids = append(ids, r.id)
			removed = true
		}
	}
	gen := c.gen
	c.mu.Unlock()

	st.attrs.release(ids...)
	if removed {
		c.publish(gen, st.attrs)
	}
	return out
}

// Len reports how many exact addresses and CIDRs the index holds, counting
// expired ones not yet swept.
func (ix *Index) Len() (ips, cidrs int) {
	st := ix.st.Load()
	st.cidrs.mu.Lock()
	cidrs = len(st.cidrs.m)
	st.cidrs.mu.Unlock()
	return int(st.ips.Load()), cidrs
}

// put stores d under its canonical prefix p. CIDR changes are published
// before put returns unless publish is false (ReplaceAll publishes once).
func (st *indexState) put(p netip.Prefix, d Decision, lim Limits, publish bool) error {
	exp := unixNanos(d.Expires)
	id := st.attrs.acquire(d.Action, d.Reason, d.Source)
	if !p.IsSingleIP() {
		return st.putCIDR(p, id, exp, lim.MaxCIDRs, publish)
	}
	admit := func() bool {
		if st.ips.Add(1) > int64(lim.MaxIPs) {
			st.ips.Add(-1)
			return false
		}
		return true
	}
	var (
		old uint32
		ok  bool
	)
	if p.Addr().Is4() {
		old, ok = st.v4.upsert(addr4Key(p.Addr()), id, exp, admit)
	} else {
		old, ok = st.v6.upsert(u128From(p.Addr()), id, exp, admit)
	}
	if !ok {
		st.attrs.release(id)
		return fmt.Errorf("decision for %s: %w (%d addresses)", p.Addr(), ErrIndexFull, lim.MaxIPs)
	}
	if old != 0 {
		st.attrs.release(old)
	}
	return nil
}

func (st *indexState) putCIDR(p netip.Prefix, id uint32, exp int64, limit int, publish bool) error {
	c := st.cidrs
	c.mu.Lock()
	old, exists := c.m[p]
	if !exists && len(c.m) >= limit {
		c.mu.Unlock()
		st.attrs.release(id)
		return fmt.Errorf("decision for %s: %w (%d CIDRs)", p, ErrIndexFull, limit)
	}
	c.m[p] = cidrRec{id: id, exp: exp}
	c.changed(p)
	gen := c.gen
	c.mu.Unlock()
	if exists {
		st.attrs.release(old.id)
	}
	if publish {
		c.publish(gen, st.attrs)
	}
	return nil
}

// validPrefix validates d and returns its canonical prefix.
func validPrefix(d Decision) (netip.Prefix, error) {
	if err := d.Validate(); err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid decision %q: %w", d.Value, err)
	}
	return d.Prefix()
}

// canonicalPrefix brings p into the form ParsePrefix produces.
func canonicalPrefix(p netip.Prefix) (netip.Prefix, bool) {
	if !p.IsValid() {
		return netip.Prefix{}, false
	}
	a, bits := p.Addr(), p.Bits()
	if a.Is4In6() && bits >= 96 {
		a, bits = a.Unmap(), bits-96
	}
	return netip.PrefixFrom(a.WithZone(""), bits).Masked(), true
}

// unixNanos converts an expiry to unix nanoseconds, keeping 0 for "never":
// a time before 1970 becomes 1 (long expired), one past 2262 the maximum.
func unixNanos(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.Before(time.Unix(0, 1)):
		return 1
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}
