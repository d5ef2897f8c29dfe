//go:build race

package edge

// raceEnabled reports whether the race detector is on: it adds allocations
// and time, so allocation counts are not checked under it.
const raceEnabled = true
