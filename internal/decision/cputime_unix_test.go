//go:build unix

package decision

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time this process has used. On shared
// machines it is steadier than wall time for benchmarks.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
