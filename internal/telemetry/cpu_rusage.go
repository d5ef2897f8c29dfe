//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package telemetry

import (
	"fmt"
	"syscall"
	"time"
)

// processCPUTime returns the user+system CPU time consumed by the process.
// getrusage is one cheap syscall with no text to parse.
func processCPUTime() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
