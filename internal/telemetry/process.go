package telemetry

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// minCPUSampleInterval is the shortest window cpu_usage_percent is averaged
// over. Scrapes closer together than this reuse the last value, so a burst
// of scrapes does not report a noisy ratio over a few microseconds.
const minCPUSampleInterval = 2 * time.Second

// processCollector exports cpu_usage_percent and memory_usage_bytes, the
// playbook's names for process CPU and resident memory.
//
// CPU is sampled when scraped rather than by a ticker: the value is the
// average over the time since the previous sample (at least
// minCPUSampleInterval), which is exactly the scrape interval for a regular
// scraper and needs no goroutine to start or stop.
type processCollector struct {
	cpuDesc *prometheus.Desc
	memDesc *prometheus.Desc

	readCPU func() (time.Duration, error) // cumulative user+system time
	readRSS func() (uint64, error)
	now     func() time.Time

	mu          sync.Mutex
	sampled     bool // lastCPU and lastAt hold a sample
	lastCPU     time.Duration
	lastAt      time.Time
	percent     float64
	havePercent bool // percent covers a complete window
}

func newProcessCollector() *processCollector {
	c := &processCollector{
		cpuDesc: prometheus.NewDesc("cpu_usage_percent",
			"CPU used by this process over the last sample window, in percent of one core (200 = two cores busy).", nil, nil),
		memDesc: prometheus.NewDesc("memory_usage_bytes",
			"Resident memory of this process (RSS; Go runtime estimate where /proc is missing).", nil, nil),
		readCPU: processCPUTime,
		readRSS: residentMemory,
		now:     time.Now,
	}
	c.sampleCPU() // baseline, so the first scrape reports a real window
	return c
}

func (c *processCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.cpuDesc
	ch <- c.memDesc
}

func (c *processCollector) Collect(ch chan<- prometheus.Metric) {
	if pct, ok := c.sampleCPU(); ok {
		ch <- prometheus.MustNewConstMetric(c.cpuDesc, prometheus.GaugeValue, pct)
	}
	if rss, err := c.readRSS(); err == nil {
		ch <- prometheus.MustNewConstMetric(c.memDesc, prometheus.GaugeValue, float64(rss))
	}
}

// sampleCPU returns the CPU percentage over the latest complete window; ok
// is false until one window has been measured or when CPU time is
// unavailable on this platform.
func (c *processCollector) sampleCPU() (float64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.sampled && now.Sub(c.lastAt) < minCPUSampleInterval {
		return c.percent, c.havePercent
	}
	cpu, err := c.readCPU()
	if err != nil {
		return 0, false
	}
	if wall := now.Sub(c.lastAt); c.sampled && wall > 0 {
		c.percent = max(0, 100*float64(cpu-c.lastCPU)/float64(wall))
		c.havePercent = true
	}
	c.lastCPU, c.lastAt, c.sampled = cpu, now, true
	return c.percent, c.havePercent
}

// residentMemory returns the resident set size, from /proc/self/statm where
// it exists and from the Go runtime's own accounting elsewhere.
func residentMemory() (uint64, error) {
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		pages, err := parseStatmResident(string(b))
		if err == nil {
			return pages * uint64(os.Getpagesize()), nil
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Sys - ms.HeapReleased, nil
}

var errStatm = errors.New("malformed /proc/self/statm")

// parseStatmResident returns the second field of /proc/<pid>/statm, the
// resident set size in pages ("size resident shared text lib data dt").
func parseStatmResident(s string) (uint64, error) {
	fields := strings.Fields(s)
	if len(fields) < 2 {
		return 0, fmt.Errorf("%w: %d fields, want at least 2", errStatm, len(fields))
	}
	n, err := strconv.ParseUint(fields[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: resident: %w", errStatm, err)
	}
	if n > 1<<52 { // no machine has 2^64 bytes; keeps the multiply exact
		return 0, fmt.Errorf("%w: resident %d pages out of range", errStatm, n)
	}
	return n, nil
}
