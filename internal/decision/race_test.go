//go:build race

package decision

// raceEnabled lets tests skip fixtures too large for the race detector.
const raceEnabled = true
