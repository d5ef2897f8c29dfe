package ratelimit

import (
	"math/bits"
	"math/rand/v2"
	"sync"
)

// ways is the bucket associativity: 4 entries of 16 bytes fill one cache
// line, so a lookup touches one line per table.
const ways = 4

// maxStripes bounds the lock array; beyond it more stripes do not reduce
// contention on two cores, only memory.
const maxStripes = 1024

// entry is one client's limiter state. key 0 marks an empty slot.
type entry struct {
	key uint64 // hash of the address or subnet; never 0
	tat int64  // GCRA theoretical arrival time, Unix nanoseconds
}

type bucket [ways]entry

// stripe guards the buckets whose index is congruent to it, and keeps that
// share of the counters, so that counting needs no shared cache line.
type stripe struct {
	mu         sync.Mutex
	used       int
	collisions uint64
	evictions  uint64
	_          [32]byte // pad to a cache line against false sharing
}

type table struct {
	secret     [4]uint64
	rate       gcra
	buckets    []bucket
	stripes    []stripe
	shift      uint   // top bits of the hash select the bucket
	stripeMask uint64 // low bits of the bucket index select the stripe
}

func newTable(slots int, rate gcra) *table {
	n := slots / ways
	s := min(n, maxStripes)
	return &table{
		secret:     [4]uint64{rand.Uint64(), rand.Uint64(), rand.Uint64(), rand.Uint64()},
		rate:       rate,
		buckets:    make([]bucket, n),
		stripes:    make([]stripe, s),
		shift:      uint(64 - bits.TrailingZeros(uint(n))),
		stripeMask: uint64(s - 1),
	}
}

// hash mixes a 128-bit key with the table's secret: two rounds of a
// 64x64->128 multiply folded back to 64 bits (as in wyhash). Without the
// secret an attacker cannot tell which addresses share a bucket.
func (t *table) hash(hi, lo uint64) uint64 {
	h, l := bits.Mul64(hi^t.secret[0], lo^t.secret[1])
	h, l = bits.Mul64(h^l^t.secret[2], hi^lo^t.secret[3])
	if h ^= l; h != 0 {
		return h
	}
	return 1 // 0 marks an empty slot
}

// probe is the state of one key, found with its stripe locked.
type probe struct {
	enabled bool
	stripe  *stripe
	bucket  *bucket
	slot    int // index in bucket, or -1 if the key has no entry
	key     uint64
	now     int64
	tat     int64 // effective arrival time: never before now
	rate    gcra
}

// lookup finds key and locks its stripe; the caller unlocks
// p.stripe.mu.
func (t *table) lookup(key uint64, now int64) probe {
	var bi uint64
	if t.shift < 64 {
		bi = key >> t.shift
	}
	p := probe{
		enabled: true,
		stripe:  &t.stripes[bi&t.stripeMask],
		bucket:  &t.buckets[bi],
		slot:    -1,
		key:     key,
		now:     now,
		tat:     now,
		rate:    t.rate,
	}
	p.stripe.mu.Lock()
	for i := range p.bucket {
		if e := &p.bucket[i]; e.key == key {
			p.slot = i
			// Clamping keeps a clock that stepped back from denying a
			// client for longer than its burst allows.
			p.tat = min(max(e.tat, now), now+t.rate.limit)
			break
		}
	}
	return p
}

// store records one more request for p, claiming a slot if needed. The
// stripe must still be locked.
func (t *table) store(p *probe) {
	tat := p.tat + t.rate.interval
	if p.slot >= 0 {
		p.bucket[p.slot].tat = tat
		return
	}
	victim, empty := 0, false
	for i := range p.bucket {
		e := &p.bucket[i]
		if e.key == 0 {
			victim, empty = i, true
			break
		}
		if e.tat < p.bucket[victim].tat {
			victim = i
		}
	}
	switch {
	case empty:
		p.stripe.used++
	case p.bucket[victim].tat > p.now:
		p.stripe.collisions++
		p.stripe.evictions++
	default:
		p.stripe.collisions++
	}
	p.bucket[victim] = entry{key: p.key, tat: tat}
	p.slot = victim
}

func (p *probe) allowed() bool {
	return !p.enabled || p.tat+p.rate.interval-p.now <= p.rate.limit
}

// retryAfter is the nanoseconds until the next request would be allowed.
func (p *probe) retryAfter() int64 {
	if p.allowed() {
		return 0
	}
	return p.tat + p.rate.interval - p.rate.limit - p.now
}

// count is the number of requests the current debt stands for, with this
// request if it was stored.
func (p *probe) count(stored bool) int {
	debt := p.tat - p.now
	if stored {
		debt += p.rate.interval
	}
	return int((debt + p.rate.interval - 1) / p.rate.interval)
}

func (t *table) stats() TableStats {
	var s TableStats
	for i := range t.stripes {
		st := &t.stripes[i]
		st.mu.Lock()
		s.Used += st.used
		s.Collisions += st.collisions
		s.Evictions += st.evictions
		st.mu.Unlock()
	}
	return s
}
