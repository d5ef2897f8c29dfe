//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package telemetry

import (
	"errors"
	"time"
)

// processCPUTime is not implemented here; cpu_usage_percent is then absent.
func processCPUTime() (time.Duration, error) {
	return 0, errors.New("process CPU time not supported on this platform")
}
