package tarpit

import "math/bits"

// rng is wyrand: a tiny, fast generator with a 64-bit state. It is not
// cryptographic; the seed is (a keyed hash of the URL), which is all that
// determinism needs.
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s += 0xa0761d6478bd642f
	hi, lo := bits.Mul64(r.s, r.s^0xe7037ed1a0b428db)
	return hi ^ lo
}

// intn returns a value in [0, n) for n > 0 (Lemire's multiply-shift; the
// tiny bias does not matter here).
func (r *rng) intn(n int) int {
	return int((r.next() & 0xffffffff) * uint64(n) >> 32)
}

// between returns a value in [lo, hi].
func (r *rng) between(lo, hi int) int {
	if hi <= lo {
		return lo
	}
	return lo + r.intn(hi-lo+1)
}
