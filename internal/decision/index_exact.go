package decision

import (
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
)

// Exact addresses are the bulk of the index (the escalation engine blocks
// single addresses, up to thousands per second) and are looked up on every
// request, so they get their own structure: per address family, 64 shards,
// each an open-addressing hash table with linear probing over pointer-free
// slots.
//
// Readers never lock. Each shard has a sequence counter that writers make
// odd while they change slots; a reader reads optimistically and retries if
// the counter moved (a seqlock). Every slot word is read and written
// atomically, so this is race-free under the Go memory model. Writers of one
// shard serialize on its mutex. A table is resized by building a new one
// aside and publishing it with an atomic pointer, so a reader always sees a
// complete table.

const (
	exactShardBits = 6
	exactShards    = 1 << exactShardBits
	minSlots       = 16
	cacheLine      = 64
	// Spin this many times on a shard being written before yielding: a
	// write holds the shard for well under a microsecond.
	readSpins = 8
)

// mix64 is the MurmurHash3 finalizer, a bijection with good avalanche. The
// key is XORed with a per-index random seed first so that collisions cannot
// be planned from outside (IPv6 clients choose their low 64 bits freely).
func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// slotsFor returns the table size for n entries at a load factor of at most 3/4.
func slotsFor(n int) int {
	size := minSlots
	for size*3 < n*4 {
		size *= 2
	}
	return size
}

// isActive reports whether an entry with this expiry applies at now.
func isActive(exp, now int64) bool { return exp == 0 || now < exp }

// ---- IPv4 ----

type slot4 struct {
	kv  atomic.Uint64 // attr id<<32 | address; attr id 0 marks an empty slot
	exp atomic.Int64
}

type slots4 struct {
	s    []slot4
	mask uint64
}

func newSlots4(size int) *slots4 {
	return &slots4{s: make([]slot4, size), mask: uint64(size - 1)}
}

type shard4 struct {
	seq   atomic.Uint64
	slots atomic.Pointer[slots4]
	mu    sync.Mutex // serializes writers; readers never take it
	n     int        // guarded by mu
	_     [cacheLine - 32]byte
}

type exact4 struct {
	seed   uint64
	filter atomic.Pointer[addrFilter]
	shards [exactShards]shard4
}

func newExact4(seed uint64, expected int) *exact4 {
	t := &exact4{seed: seed}
	t.filter.Store(newAddrFilter(expected))
	size := slotsFor(expected/exactShards + expected/exactShards/16 + minSlots)
	for i := range t.shards {
		t.shards[i].slots.Store(newSlots4(size))
	}
	return t
}

func (t *exact4) hash(key uint32) uint64 { return mix64(uint64(key) ^ t.seed) }

func (t *exact4) shard(h uint64) *shard4 { return &t.shards[h>>(64-exactShardBits)] }

// lookup returns the attr and expiry stored for key. It reads the attr inside
// the optimistic section: as long as the slot still holds the id, the id
// holds a reference, so the attr it names cannot have been recycled.
func (t *exact4) lookup(key uint32, attrs *attrTable) (*attr, int64, bool) {
	h := t.hash(key)
	if !t.filter.Load().mayContain(h) {
		return nil, 0, false
	}
	s := t.shard(h)
	for spin := 0; ; spin++ {
		seq := s.seq.Load()
		if seq&1 == 0 {
			id, exp, found := s.slots.Load().find(key, h)
			var a *attr
			if found {
				a = attrs.get(id)
			}
			if s.seq.Load() == seq {
				return a, exp, found && a != nil
			}
		}
		if spin >= readSpins {
			runtime.Gosched()
		}
	}
}

func (sl *slots4) find(key uint32, h uint64) (id uint32, exp int64, ok bool) {
	// Bounded by the table size so that even a torn view cannot loop.
	for i, n := h&sl.mask, 0; n < len(sl.s); i, n = (i+1)&sl.mask, n+1 {
		kv := sl.s[i].kv.Load()
		if kv < 1<<32 {
			return 0, 0, false
		}
		if uint32(kv) == key {
			return uint32(kv >> 32), sl.s[i].exp.Load(), true
		}
	}
	return 0, 0, false
}

// probe returns the slot holding key or else the empty slot where it would
// go. Only writers call it (holding the shard mutex); the table always has
// empty slots.
func (sl *slots4) probe(key uint32, h uint64) (uint64, bool) {
	i := h & sl.mask
	for {
		kv := sl.s[i].kv.Load()
		if kv < 1<<32 {
			return i, false
		}
		if uint32(kv) == key {
			return i, true
		}
		i = (i + 1) & sl.mask
	}
}

// upsert stores key. admit is called only for a key not yet present and
// may refuse it (the index is full). It returns the attr id that was
// replaced, if any.
func (t *exact4) upsert(key, id uint32, exp int64, admit func() bool) (old uint32, ok bool) {
	h := t.hash(key)
	old, ok, full := t.upsertShard(key, h, id, exp, admit)
	if full {
		t.rebuildFilter(false)
	}
	return old, ok
}

// upsertShard does the work of upsert under the shard mutex and reports
// whether the filter needs a rebuild.
func (t *exact4) upsertShard(key uint32, h uint64, id uint32, exp int64, admit func() bool) (old uint32, ok, full bool) {
	s := t.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	sl := s.slots.Load()
	i, found := sl.probe(key, h)
	if found {
		old = uint32(sl.s[i].kv.Load() >> 32)
	} else {
		if !admit() {
			return 0, false, false
		}
		if (s.n+1)*4 > len(sl.s)*3 {
			sl = t.resize(sl, len(sl.s)*2)
			s.slots.Store(sl)
			i, _ = sl.probe(key, h)
		}
		s.n++
		full = t.filter.Load().add(h) // before the key becomes visible
	}
	s.seq.Add(1)
	sl.s[i].kv.Store(uint64(id)<<32 | uint64(key))
	sl.s[i].exp.Store(exp)
	s.seq.Add(1)
	return old, true, full
}

// remove deletes key and returns the attr id it held.
func (t *exact4) remove(key uint32) (uint32, bool) {
	h := t.hash(key)
	s := t.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	return t.removeLocked(s, key, h)
}

func (t *exact4) removeLocked(s *shard4, key uint32, h uint64) (uint32, bool) {
	sl := s.slots.Load()
	i, found := sl.probe(key, h)
	if !found {
		return 0, false
	}
	id := uint32(sl.s[i].kv.Load() >> 32)
	s.seq.Add(1)
	t.shiftOut(sl, i)
	s.seq.Add(1)
	s.n--
	return id, true
}

// shiftOut empties slot i by moving later entries of the same probe run
// back (backward-shift deletion), so no tombstones build up under churn.
func (t *exact4) shiftOut(sl *slots4, i uint64) {
	for j := (i + 1) & sl.mask; ; j = (j + 1) & sl.mask {
		kv := sl.s[j].kv.Load()
		if kv < 1<<32 {
			break
		}
		home := t.hash(uint32(kv)) & sl.mask
		if (j-home)&sl.mask >= (j-i)&sl.mask {
			sl.s[i].kv.Store(kv)
			sl.s[i].exp.Store(sl.s[j].exp.Load())
			i = j
		}
	}
	sl.s[i].kv.Store(0)
	sl.s[i].exp.Store(0)
}

func (t *exact4) resize(old *slots4, size int) *slots4 {
	sl := newSlots4(size)
	for i := range old.s {
		kv := old.s[i].kv.Load()
		if kv < 1<<32 {
			continue
		}
		j, _ := sl.probe(uint32(kv), t.hash(uint32(kv)))
		sl.s[j].kv.Store(kv)
		sl.s[j].exp.Store(old.s[i].exp.Load())
	}
	return sl
}

// sweep removes the entries that expired at now from every shard,
// appending their prefixes to out and their attr ids to ids.
func (t *exact4) sweep(now int64, out []netip.Prefix, ids []uint32) ([]netip.Prefix, []uint32) {
	var keys []uint32
	live := 0
	for si := range t.shards {
		s := &t.shards[si]
		s.mu.Lock()
		sl := s.slots.Load()
		keys = keys[:0]
		for i := range sl.s {
			kv := sl.s[i].kv.Load()
			if kv >= 1<<32 && !isActive(sl.s[i].exp.Load(), now) {
				keys = append(keys, uint32(kv))
			}
		}
		for _, k := range keys {
			if id, ok := t.removeLocked(s, k, t.hash(k)); ok {
				ids = append(ids, id)
				out = append(out, netip.PrefixFrom(addrFrom4(k), 32))
			}
		}
		// Give memory back after a mass expiry, with hysteresis against
		// flapping between sizes.
		if sl := s.slots.Load(); len(sl.s) > minSlots && s.n*8 < len(sl.s) {
			s.slots.Store(t.resize(sl, slotsFor(2*s.n)))
		}
		live += s.n
		s.mu.Unlock()
	}
	if f := t.filter.Load(); f.full() || f.oversized(live) {
		t.rebuildFilter(true)
	}
	return out, ids
}

// ---- IPv6 ----

type slot6 struct {
	hi, lo atomic.Uint64
	id     atomic.Uint64 // attr id; 0 marks an empty slot
	exp    atomic.Int64
}

type slots6 struct {
	s    []slot6
	mask uint64
}

func newSlots6(size int) *slots6 {
	return &slots6{s: make([]slot6, size), mask: uint64(size - 1)}
}

type shard6 struct {
	seq   atomic.Uint64
	slots atomic.Pointer[slots6]
	mu    sync.Mutex
	n     int
	_     [cacheLine - 32]byte
}

type exact6 struct {
	seed0, seed1 uint64
	filter       atomic.Pointer[addrFilter]
	shards       [exactShards]shard6
}

func newExact6(seed0, seed1 uint64, expected int) *exact6 {
	t := &exact6{seed0: seed0, seed1: seed1}
	t.filter.Store(newAddrFilter(expected))
	size := slotsFor(expected/exactShards + expected/exactShards/16 + minSlots)
	for i := range t.shards {
		t.shards[i].slots.Store(newSlots6(size))
	}
	return t
}

// hash chains two bijections, so addresses that differ only in their low
// 64 bits (one client's /64) never collide in the full 64-bit hash.
func (t *exact6) hash(k u128) uint64 { return mix64(k.hi ^ t.seed0 ^ mix64(k.lo^t.seed1)) }

func (t *exact6) shard(h uint64) *shard6 { return &t.shards[h>>(64-exactShardBits)] }

func (t *exact6) lookup(key u128, attrs *attrTable) (*attr, int64, bool) {
	h := t.hash(key)
	if !t.filter.Load().mayContain(h) {
		return nil, 0, false
	}
	s := t.shard(h)
	for spin := 0; ; spin++ {
		seq := s.seq.Load()
		if seq&1 == 0 {
			id, exp, found := s.slots.Load().find(key, h)
			var a *attr
			if found {
				a = attrs.get(id)
			}
			if s.seq.Load() == seq {
				return a, exp, found && a != nil
			}
		}
		if spin >= readSpins {
			runtime.Gosched()
		}
	}
}

func (sl *slots6) find(key u128, h uint64) (id uint32, exp int64, ok bool) {
	for i, n := h&sl.mask, 0; n < len(sl.s); i, n = (i+1)&sl.mask, n+1 {
		s := &sl.s[i]
		id := s.id.Load()
		if id == 0 {
			return 0, 0, false
		}
		if s.lo.Load() == key.lo && s.hi.Load() == key.hi {
			return uint32(id), s.exp.Load(), true
		}
	}
	return 0, 0, false
}

func (sl *slots6) probe(key u128, h uint64) (uint64, bool) {
	i := h & sl.mask
	for {
		s := &sl.s[i]
		if s.id.Load() == 0 {
			return i, false
		}
		if s.lo.Load() == key.lo && s.hi.Load() == key.hi {
			return i, true
		}
		i = (i + 1) & sl.mask
	}
}

func (sl *slots6) key(i uint64) u128 { return u128{sl.s[i].hi.Load(), sl.s[i].lo.Load()} }

func (sl *slots6) store(i uint64, key u128, id uint64, exp int64) {
	sl.s[i].hi.Store(key.hi)
	sl.s[i].lo.Store(key.lo)
	sl.s[i].id.Store(id)
	sl.s[i].exp.Store(exp)
}

func (t *exact6) upsert(key u128, id uint32, exp int64, admit func() bool) (old uint32, ok bool) {
	h := t.hash(key)
	old, ok, full := t.upsertShard(key, h, id, exp, admit)
	if full {
		t.rebuildFilter(false)
	}
	return old, ok
}

func (t *exact6) upsertShard(key u128, h uint64, id uint32, exp int64, admit func() bool) (old uint32, ok, full bool) {
	s := t.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	sl := s.slots.Load()
	i, found := sl.probe(key, h)
	if found {
		old = uint32(sl.s[i].id.Load())
	} else {
		if !admit() {
			return 0, false, false
		}
		if (s.n+1)*4 > len(sl.s)*3 {
			sl = t.resize(sl, len(sl.s)*2)
			s.slots.Store(sl)
			i, _ = sl.probe(key, h)
		}
		s.n++
		full = t.filter.Load().add(h) // before the key becomes visible
	}
	s.seq.Add(1)
	sl.store(i, key, uint64(id), exp)
	s.seq.Add(1)
	return old, true, full
}

func (t *exact6) remove(key u128) (uint32, bool) {
	h := t.hash(key)
	s := t.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	return t.removeLocked(s, key, h)
}

func (t *exact6) removeLocked(s *shard6, key u128, h uint64) (uint32, bool) {
	sl := s.slots.Load()
	i, found := sl.probe(key, h)
	if !found {
		return 0, false
	}
	id := uint32(sl.s[i].id.Load())
	s.seq.Add(1)
	t.shiftOut(sl, i)
	s.seq.Add(1)
	s.n--
	return id, true
}

func (t *exact6) shiftOut(sl *slots6, i uint64) {
	for j := (i + 1) & sl.mask; ; j = (j + 1) & sl.mask {
		id := sl.s[j].id.Load()
		if id == 0 {
			break
		}
		k := sl.key(j)
		home := t.hash(k) & sl.mask
		if (j-home)&sl.mask >= (j-i)&sl.mask {
			sl.store(i, k, id, sl.s[j].exp.Load())
			i = j
		}
	}
	sl.store(i, u128{}, 0, 0)
}

func (t *exact6) resize(old *slots6, size int) *slots6 {
	sl := newSlots6(size)
	for i := range old.s {
		id := old.s[i].id.Load()
		if id == 0 {
			continue
		}
		k := old.key(uint64(i))
		j, _ := sl.probe(k, t.hash(k))
		sl.store(j, k, id, old.s[i].exp.Load())
	}
	return sl
}

func (t *exact6) sweep(now int64, out []netip.Prefix, ids []uint32) ([]netip.Prefix, []uint32) {
	var keys []u128
	live := 0
	for si := range t.shards {
		s := &t.shards[si]
		s.mu.Lock()
		sl := s.slots.Load()
		keys = keys[:0]
		for i := range sl.s {
			if sl.s[i].id.Load() != 0 && !isActive(sl.s[i].exp.Load(), now) {
				keys = append(keys, sl.key(uint64(i)))
			}
		}
		for _, k := range keys {
			if id, ok := t.removeLocked(s, k, t.hash(k)); ok {
				ids = append(ids, id)
				out = append(out, netip.PrefixFrom(k.addr6(), 128))
			}
		}
		if sl := s.slots.Load(); len(sl.s) > minSlots && s.n*8 < len(sl.s) {
			s.slots.Store(t.resize(sl, slotsFor(2*s.n)))
		}
		live += s.n
		s.mu.Unlock()
	}
	if f := t.filter.Load(); f.full() || f.oversized(live) {
		t.rebuildFilter(true)
	}
	return out, ids
}

// rebuildFilter replaces the filter with one built from the live keys,
// holding every shard mutex so that no key is added meanwhile. It does
// nothing if another writer has rebuilt it first.
func (t *exact4) rebuildFilter(shrink bool) {
	n := 0
	for i := range t.shards {
		t.shards[i].mu.Lock()
		n += t.shards[i].n
	}
	defer func() {
		for i := range t.shards {
			t.shards[i].mu.Unlock()
		}
	}()
	if old := t.filter.Load(); !old.full() && !(shrink && old.oversized(n)) {
		return
	}
	f := newAddrFilter(n)
	for i := range t.shards {
		sl := t.shards[i].slots.Load()
		for j := range sl.s {
			if kv := sl.s[j].kv.Load(); kv >= 1<<32 {
				f.add(t.hash(uint32(kv)))
			}
		}
	}
	t.filter.Store(f)
}

func (t *exact6) rebuildFilter(shrink bool) {
	n := 0
	for i := range t.shards {
		t.shards[i].mu.Lock()
		n += t.shards[i].n
	}
	defer func() {
		for i := range t.shards {
			t.shards[i].mu.Unlock()
		}
	}()
	if old := t.filter.Load(); !old.full() && !(shrink && old.oversized(n)) {
		return
	}
	f := newAddrFilter(n)
	for i := range t.shards {
		sl := t.shards[i].slots.Load()
		for j := range sl.s {
			if sl.s[j].id.Load() != 0 {
				f.add(t.hash(sl.key(uint64(j))))
			}
		}
	}
	t.filter.Store(f)
}
