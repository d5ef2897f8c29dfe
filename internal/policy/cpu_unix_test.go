//go:build unix

package policy

import (
	"syscall"
	"time"
)

// processCPU is the CPU time used by the process so far. Benchmarks report
// it per operation next to ns/op, which on a shared machine measures the
// wait for a core as much as the work.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
