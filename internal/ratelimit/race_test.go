//go:build race

package ratelimit

// raceEnabled shrinks the largest tests: the race detector makes each
// Allow about a hundred times slower.
const raceEnabled = true
