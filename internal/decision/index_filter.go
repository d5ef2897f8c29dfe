package decision

import (
	"math/bits"
	"sync/atomic"
)

// Most clients have no decision, and the exact-address tables are far too
// big to stay in cache, so a lookup would pay a memory miss just to learn
// that. A small Bloom filter in front of each table answers most misses
// from cache instead.
//
// The filter is blocked to one 64-bit word per key: the key's hash picks a
// word and 4 bits inside it, so a query is one load and a compare. It
// may report false positives, never false negatives: a writer sets a key's
// bits, under its shard mutex, before it stores the key in the table.
// Bits are never cleared, since other keys may share them; instead the
// filter is rebuilt from the live keys, with every shard mutex held, once
// the keys added since it was built (deleted ones included) exceed its
// capacity, and then swapped in whole.

const (
	// Bits per key the filter is sized for (after headroom), and the
	// fewest per added key it tolerates before a rebuild: at 10 bits per
	// key and k=4 in a 64-bit word, about 1 in 70 misses gets through.
	filterSizeBits  = 12
	filterLimitBits = 10
	minFilterWords  = 64
)

type addrFilter struct {
	words []atomic.Uint64
	shift uint // 64 - log2(len(words)): the top hash bits pick the word
	limit int64
	adds  atomic.Int64 // keys added since the filter was built
}

// newAddrFilter returns an empty filter sized for about n keys, with room
// for a quarter more before it needs a rebuild.
func newAddrFilter(n int) *addrFilter {
	want := (n + n/4) * filterSizeBits / 64
	words := minFilterWords
	for words < want {
		words *= 2
	}
	return &addrFilter{
		words: make([]atomic.Uint64, words),
		shift: uint(64 - bits.TrailingZeros(uint(words))),
		limit: int64(words) * 64 / filterLimitBits,
	}
}

// filterBits returns the word and the bits inside it that stand for h. The
// word comes from the top of h and the bits from the bottom, so they are
// independent of each other.
func (f *addrFilter) filterBits(h uint64) (*atomic.Uint64, uint64) {
	m := uint64(1)<<(h&63) | uint64(1)<<(h>>6&63) | uint64(1)<<(h>>12&63) | uint64(1)<<(h>>18&63)
	return &f.words[h>>f.shift], m
}

func (f *addrFilter) mayContain(h uint64) bool {
	w, m := f.filterBits(h)
	return w.Load()&m == m
}

// add sets the bits for h and reports whether the filter has taken more
// keys than it was sized for.
func (f *addrFilter) add(h uint64) bool {
	w, m := f.filterBits(h)
	w.Or(m)
	return f.adds.Add(1) > f.limit
}

// oversized reports whether the filter is much larger than n live keys
// need, e.g. after a mass expiry.
func (f *addrFilter) oversized(n int) bool {
	return len(f.words) > minFilterWords && int64(len(f.words))*64/filterLimitBits > 8*int64(n)
}

// full reports whether more keys were added than the filter was sized for.
func (f *addrFilter) full() bool { return f.adds.Load() > f.limit }
