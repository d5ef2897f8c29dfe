package challenge

import (
	"crypto/sha256"
	"encoding/hex"
	"math/bits"
)

// leadingZeroBits counts the zero bits at the start of sum.
func leadingZeroBits(sum *[sha256.Size]byte) int {
	for i, b := range sum {
		if b != 0 {
			return i*8 + bits.LeadingZeros8(b)
		}
	}
	return sha256.Size * 8
}

// workBits returns the leading zero bits of SHA-256(prefix + nonce), the
// hash the page's worker searches. prefix and nonce are already validated
// (hex and decimal, together well under 64 bytes).
func workBits(prefix, nonce string) int {
	var buf [64]byte
	n := copy(buf[:], prefix)
	n += copy(buf[n:], nonce)
	sum := sha256.Sum256(buf[:n])
	return leadingZeroBits(&sum)
}

// enoughWork reports whether nonce solves the proof of work for seed: the
// worker hashes the seed's hex form followed by the nonce.
func enoughWork(seed *[16]byte, nonce string, difficulty int) bool {
	var prefix [2 * len(seed)]byte
	hex.Encode(prefix[:], seed[:])
	return workBits(string(prefix[:]), nonce) >= difficulty
}

// difficultyFor chooses the method and difficulty for a request's weight:
// the no-JS check below NoJSWeightBelow, then proof of work growing
// linearly from MinDifficulty to MaxDifficulty at MaxDifficultyWeight.
func (s *Service) difficultyFor(weight int) (method, int) {
	c := &s.cfg
	if weight < c.NoJSWeightBelow {
		return methodNoJS, 0
	}
	from := max(c.NoJSWeightBelow, 0)
	span := c.MaxDifficultyWeight - from
	if span <= 0 || weight >= c.MaxDifficultyWeight {
		return methodPoW, c.MaxDifficulty
	}
	if weight < from {
		return methodPoW, c.MinDifficulty
	}
	return methodPoW, c.MinDifficulty + (weight-from)*(c.MaxDifficulty-c.MinDifficulty)/span
}
