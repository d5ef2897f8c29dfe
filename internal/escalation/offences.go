package escalation

import (
	"hash/maphash"
	"math/bits"
	"net/netip"
	"sync"
	"time"
)

// offenceTable counts non-allow verdicts per address so that ban TTLs grow
// for repeat offenders. It is bounded: a full shard forgets an arbitrary
// entry (Go's map iteration order), which at worst shortens one ban.
type offenceTable struct {
	seed   maphash.Seed
	shards []offenceShard
	mask   uint64
	maxPer int
}

type offenceShard struct {
	mu sync.Mutex
	m  map[windowKey]offence
}

type offence struct {
	count int32
	last  int64 // unix nanoseconds of the last counted offence
}

func newOffenceTable(maxEntries, shards int) *offenceTable {
	shards = 1 << bits.Len(uint(shards-1))
	t := &offenceTable{
		seed: maphash.MakeSeed(), shards: make([]offenceShard, shards),
		mask: uint64(shards - 1), maxPer: max((maxEntries+shards-1)/shards, 1),
	}
	for i := range t.shards {
		t.shards[i].m = make(map[windowKey]offence)
	}
	return t
}

// record notes an offence at now and returns how many earlier offences the
// address has. Offences within cooldown of the last counted one are the
// same offence; offences older than memory are forgotten.
func (t *offenceTable) record(addr netip.Addr, now time.Time, cooldown, memory time.Duration) int {
	k := windowKey(addr.As16())
	sh := &t.shards[maphash.Bytes(t.seed, k[:])&t.mask]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	n := now.UnixNano()
	o, ok := sh.m[k]
	if ok && n-o.last > int64(memory) {
		o, ok = offence{}, false
	}
	if ok && n-o.last < int64(cooldown) {
		// Same burst: the earlier offences are those before this one.
		return int(o.count) - 1
	}
	if !ok && len(sh.m) >= t.maxPer {
		for victim := range sh.m {
			delete(sh.m, victim)
			break
		}
	}
	o.count++
	o.last = n
	sh.m[k] = o
	return int(o.count) - 1
}
