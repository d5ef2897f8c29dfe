package policy

import "math/bits"

// maxIndexedSets is how many user-agent substring sets one pass over the
// user agent answers at once; the result is a bitset on the stack. Sets
// beyond it (only a policy with more than this many distinct user_agent
// matchers has them) are searched one by one.
const maxIndexedSets = 4096

// lower maps a byte to its ASCII lower case. User-agent matching ignores
// ASCII case only: a user agent is ASCII, and lower-casing bytes needs no
// buffer and cannot change lengths.
var lower = func() (t [256]byte) {
	for i := range t {
		t[i] = byte(i)
		if 'A' <= i && i <= 'Z' {
			t[i] += 'a' - 'A'
		}
	}
	return t
}()

// agentIndex answers every user_agent matcher of a policy with one pass over
// the user agent instead of one substring search per needle: a policy easily
// has a few dozen needles, and a browser user agent is ~130 bytes.
//
// At each position the lower-cased first two bytes are looked up in a
// 64 Kibit bitmap (8 KiB, stays in L1); only on a hit are the needles that
// start with that pair compared. The bucket of a pair is found by the rank
// of its bit (set bits before it), which needs no hashing.
type agentIndex struct {
	sets       [][]string // lower-cased needles by set id
	pairs      [1 << 16 / 64]uint64
	rank       [1 << 16 / 64]uint32 // set bits in pairs before each word
	buckets    [][]agentNeedle      // by rank of the pair
	singles    [256 / 64]uint64     // one-byte needles
	byByte     [256][]int32         // sets holding each one-byte needle
	hasSingles bool
}

type agentNeedle struct {
	s    string
	sets []int32 // indexed set ids that contain the needle
}

func newAgentIndex(sets [][]string) *agentIndex {
	x := &agentIndex{sets: sets}
	type entry struct {
		pair uint16
		sets []int32
	}
	needles := map[string]*entry{}
	var order []string
	for id, set := range sets {
		if id >= maxIndexedSets {
			break
		}
		for _, s := range set {
			if len(s) == 1 {
				c := s[0]
				x.singles[c/64] |= 1 << (c % 64)
				x.hasSingles = true
				x.byByte[c] = appendSet(x.byByte[c], id)
				continue
			}
			e := needles[s]
			if e == nil {
				e = &entry{pair: uint16(s[0])<<8 | uint16(s[1])}
				needles[s] = e
				order = append(order, s)
				x.pairs[e.pair/64] |= 1 << (e.pair % 64)
			}
			e.sets = appendSet(e.sets, id)
		}
	}
	var n uint32
	for i, w := range x.pairs {
		x.rank[i] = n
		n += uint32(bits.OnesCount64(w))
	}
	x.buckets = make([][]agentNeedle, n)
	for _, s := range order {
		e := needles[s]
		r := x.rankOf(e.pair)
		x.buckets[r] = append(x.buckets[r], agentNeedle{s: s, sets: e.sets})
	}
	return x
}

func appendSet(ids []int32, id int) []int32 {
	if n := len(ids); n > 0 && ids[n-1] == int32(id) {
		return ids
	}
	return append(ids, int32(id))
}

func (x *agentIndex) rankOf(k uint16) uint32 {
	w := x.pairs[k/64] & (1<<(k%64) - 1)
	return x.rank[k/64] + uint32(bits.OnesCount64(w))
}

// scan marks in bits every indexed set with a needle in ua.
func (x *agentIndex) scan(ua string, bits *[maxIndexedSets / 64]uint64) {
	if x == nil || len(ua) == 0 {
		return
	}
	if x.hasSingles {
		for i := 0; i < len(ua); i++ {
			if c := lower[ua[i]]; x.singles[c/64]&(1<<(c%64)) != 0 {
				mark(bits, x.byByte[c])
			}
		}
	}
	k := uint16(lower[ua[0]])
	for i := 1; i < len(ua); i++ {
		k = k<<8 | uint16(lower[ua[i]])
		if x.pairs[k/64]&(1<<(k%64)) == 0 {
			continue
		}
		for _, nd := range x.buckets[x.rankOf(k)] {
			if hasPrefixLower(ua[i-1:], nd.s, 2) {
				mark(bits, nd.sets)
			}
		}
	}
}

func mark(bits *[maxIndexedSets / 64]uint64, sets []int32) {
	for _, id := range sets {
		bits[id/64] |= 1 << (id % 64)
	}
}

// hasPrefixLower reports whether s starts with the lower-case prefix,
// ignoring ASCII case; the first from bytes are known to match.
func hasPrefixLower(s, prefix string, from int) bool {
	if len(s) < len(prefix) {
		return false
	}
	for j := from; j < len(prefix); j++ {
		if lower[s[j]] != prefix[j] {
			return false
		}
	}
	return true
}

// containsAny searches ua for the needles of a set that is not indexed.
func (x *agentIndex) containsAny(ua string, id int) bool {
	for _, s := range x.sets[id] {
		for i := 0; i+len(s) <= len(ua); i++ {
			if hasPrefixLower(ua[i:], s, 0) {
				return true
			}
		}
	}
	return false
}
