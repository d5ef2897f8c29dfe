package escalation

import (
	"hash/maphash"
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
)

// windowKey identifies a window: an IPv6 (or IPv4-mapped) address, a subnet
// prefix, or a fingerprint hash.
type windowKey [16]byte

// windowState is one key's behaviour, fixed size (120 bytes) whatever the
// traffic: counters decay exponentially with the time since the last
// observation, so a few numbers stand in for a sliding window.
type windowState struct {
	key      windowKey
	last     int64 // unix nanoseconds of the last observation
	lastPage int64 // unix nanoseconds of the last page

	// Decayed with the short time constant (Options.Window).
	pages, assets, distinct, notFound, robots float32
	// Decayed with the long time constant (Options.HistoryWindow).
	traps, fails, passes, newAddrs float32

	// Inter-page time in seconds: exponentially weighted mean and variance.
	gapMean, gapVar float32
	// Navigation: weighted mean surprise (-ln p) of recent transitions.
	navNLL float32

	lastTemplate uint32 // template hash of the last page, 0 if none
	navN         uint16 // transitions scored, saturating
	gapN         uint8  // gaps measured, saturating
	ref          uint8  // CLOCK reference bit

	// seen is a 256-bit Bloom filter of recent paths (per IP) or addresses
	// (per fingerprint), for "new path" and "new address" counts.
	seen [4]uint64
}

// decay ages the counters to now.
func (s *windowState) decay(now int64, tau, historyTau float64) {
	if s.last == 0 || now <= s.last {
		if s.last == 0 {
			s.last = now
		}
		return
	}
	dt := float64(now-s.last) / 1e9
	s.last = now
	f := float32(math.Exp(-dt / tau))
	s.pages *= f
	s.assets *= f
	s.distinct *= f
	s.notFound *= f
	s.robots *= f
	g := float32(math.Exp(-dt / historyTau))
	s.traps *= g
	s.fails *= g
	s.passes *= g
	s.newAddrs *= g
	if dt > 3*tau { // the filter's contents are stale
		s.seen = [4]uint64{}
	}
}

// remember adds h to the Bloom filter and reports whether it was new. The
// filter is cleared when half full, so a long session sees revisits as new
// now and then; the decayed counters absorb that.
func (s *windowState) remember(h uint64) bool {
	b1, b2 := h&255, (h>>8)&255
	in := s.seen[b1>>6]&(1<<(b1&63)) != 0 && s.seen[b2>>6]&(1<<(b2&63)) != 0
	if in {
		return false
	}
	n := 0
	for _, w := range s.seen {
		n += bits.OnesCount64(w)
	}
	if n > 128 {
		s.seen = [4]uint64{}
	}
	s.seen[b1>>6] |= 1 << (b1 & 63)
	s.seen[b2>>6] |= 1 << (b2 & 63)
	return true
}

// observeGap folds the time since the last page into the gap statistics.
// Gaps longer than maxGap are a new visit, not a pace.
func (s *windowState) observeGap(now int64) {
	const maxGap, alpha = 120.0, 0.25
	if s.lastPage != 0 && now >= s.lastPage {
		gap := float32(float64(now-s.lastPage) / 1e9)
		if gap <= maxGap {
			if s.gapN == 0 {
				s.gapMean, s.gapVar = gap, 0
			} else {
				d := gap - s.gapMean
				s.gapMean += alpha * d
				s.gapVar = (1 - alpha) * (s.gapVar + alpha*d*d)
			}
			if s.gapN < math.MaxUint8 {
				s.gapN++
			}
		}
	}
	s.lastPage = now
}

// pageRate is pages per second from the gap mean (0 until measured).
func (s *windowState) pageRate() float64 {
	if s.gapN == 0 {
		return 0
	}
	return 1 / math.Max(float64(s.gapMean), 0.01)
}

// noAssets is 1 for pages fetched without sub-resources, 0 for at least
// half an asset per page, scaled by how many pages back it up.
func (s *windowState) noAssets(minPages float64) float64 {
	if s.pages <= 0 {
		return 0
	}
	p, a := float64(s.pages), float64(s.assets)
	return clamp01(1-2*a/p) * clamp01(p/minPages)
}

// table is a bounded, sharded map from key to window state. When a shard
// is full the CLOCK algorithm evicts an entry that was not used since the
// hand last passed it.
type table struct {
	seed      maphash.Seed
	shards    []shard
	mask      uint64
	entries   atomic.Int64
	evictions atomic.Uint64
}

type shard struct {
	mu    sync.Mutex
	index map[windowKey]uint32
	slots []windowState
	hand  int
	max   int
	_     [40]byte // keep shards on separate cache lines
}

func newTable(maxEntries, shards int) *table {
	shards = 1 << bits.Len(uint(shards-1)) // round up to a power of two
	per := max((maxEntries+shards-1)/shards, 1)
	t := &table{seed: maphash.MakeSeed(), shards: make([]shard, shards), mask: uint64(shards - 1)}
	for i := range t.shards {
		t.shards[i].index = make(map[windowKey]uint32)
		t.shards[i].max = per
	}
	return t
}

// acquire returns the state for k, locked, creating it (zeroed) when
// absent. The caller must call release with the returned shard.
func (t *table) acquire(k *windowKey) (*shard, *windowState) {
	sh := &t.shards[maphash.Bytes(t.seed, k[:])&t.mask]
	sh.mu.Lock()
	if i, ok := sh.index[*k]; ok {
		s := &sh.slots[i]
		s.ref = 1
		return sh, s
	}
	var i int
	if len(sh.slots) < sh.max {
		if len(sh.slots) == cap(sh.slots) {
			// Grow by doubling but never past max, so a full table holds no
			// slack.
			grown := make([]windowState, len(sh.slots), min(max(2*cap(sh.slots), 16), sh.max))
			copy(grown, sh.slots)
			sh.slots = grown
		}
		sh.slots = sh.slots[:len(sh.slots)+1]
		i = len(sh.slots) - 1
		t.entries.Add(1)
	} else {
		i = sh.evict()
		t.evictions.Add(1)
	}
	sh.slots[i] = windowState{key: *k, ref: 1}
	sh.index[*k] = uint32(i)
	return sh, &sh.slots[i]
}

func (sh *shard) release() { sh.mu.Unlock() }

// evict frees a slot with the CLOCK algorithm and returns its index.
func (sh *shard) evict() int {
	for {
		s := &sh.slots[sh.hand]
		i := sh.hand
		sh.hand++
		if sh.hand == len(sh.slots) {
			sh.hand = 0
		}
		if s.ref != 0 {
			s.ref = 0
			continue
		}
		delete(sh.index, s.key)
		return i
	}
}
