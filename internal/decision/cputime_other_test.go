//go:build !unix

package decision

import "time"

func processCPU() (time.Duration, bool) { return 0, false }
