package telemetry

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeProcess drives a processCollector with a fake clock and CPU counter.
type fakeProcess struct {
	now    time.Time
	cpu    time.Duration
	cpuErr error
}

func (f *fakeProcess) collector() *processCollector {
	c := newProcessCollector()
	c.now = func() time.Time { return f.now }
	c.readCPU = func() (time.Duration, error) { return f.cpu, f.cpuErr }
	c.readRSS = func() (uint64, error) { return 4096, nil }
	c.sampled, c.havePercent = false, false
	return c
}

func TestProcessCPUPercent(t *testing.T) {
	f := &fakeProcess{now: time.Unix(1000, 0)}
	c := f.collector()

	if _, ok := c.sampleCPU(); ok {
		t.Fatal("first sample reported a percentage without a window")
	}
	f.now = f.now.Add(10 * time.Second)
	f.cpu += 5 * time.Second // half a core
	if pct, ok := c.sampleCPU(); !ok || pct != 50 {
		t.Errorf("after 5s CPU in 10s: %v, %v; want 50", pct, ok)
	}
	f.now = f.now.Add(time.Second) // inside the minimum window: reuse
	f.cpu += time.Second
	if pct, _ := c.sampleCPU(); pct != 50 {
		t.Errorf("scrape inside the minimum window: %v, want the previous 50", pct)
	}
	f.now = f.now.Add(3 * time.Second)
	f.cpu += 7 * time.Second // 8 s CPU over 4 s: two cores
	if pct, _ := c.sampleCPU(); pct != 200 {
		t.Errorf("two busy cores: %v, want 200", pct)
	}
}

func TestProcessCollectorMetrics(t *testing.T) {
	f := &fakeProcess{now: time.Unix(1000, 0)}
	c := f.collector()
	if n := testutil.CollectAndCount(c); n != 1 { // memory only: no CPU window yet
		t.Errorf("first collect: %d metrics, want 1", n)
	}
	f.now = f.now.Add(5 * time.Second)
	f.cpu = time.Second
	want := `
# HELP cpu_usage_percent CPU used by this process over the last sample window, in percent of one core (200 = two cores busy).
# TYPE cpu_usage_percent gauge
cpu_usage_percent 20
# HELP memory_usage_bytes Resident memory of this process (RSS; Go runtime estimate where /proc is missing).
# TYPE memory_usage_bytes gauge
memory_usage_bytes 4096
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	f.cpuErr = errors.New("no getrusage")
	f.now = f.now.Add(5 * time.Second)
	if n := testutil.CollectAndCount(c, "cpu_usage_percent"); n != 0 {
		t.Errorf("CPU unavailable: %d cpu metrics, want 0", n)
	}
}

func TestRealProcessReaders(t *testing.T) {
	if _, err := processCPUTime(); err != nil {
		t.Logf("processCPUTime: %v", err)
	}
	rss, err := residentMemory()
	if err != nil || rss < 1<<20 {
		t.Errorf("residentMemory = %d, %v; want at least 1 MiB", rss, err)
	}
}

func TestParseStatmResident(t *testing.T) {
	tests := []struct {
		in      string
		want    uint64
		wantErr bool
	}{
		{"1234 567 89 10 0 400 0\n", 567, false},
		{"1 2", 2, false},
		{"", 0, true},
		{"1234", 0, true},
		{"1234 -5 1", 0, true},
		{"1234 x 1", 0, true},
		{"1 99999999999999999999 1", 0, true},
		{"1 9007199254740993 1", 0, true}, // beyond 2^52 pages
	}
	for _, tt := range tests {
		got, err := parseStatmResident(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseStatmResident(%q) = %d, %v; want %d, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !errors.Is(err, errStatm) {
			t.Errorf("parseStatmResident(%q): error %v does not wrap errStatm", tt.in, err)
		}
	}
}

func FuzzParseStatmResident(f *testing.F) {
	f.Add("1234 567 89 10 0 400 0\n")
	f.Add("")
	f.Add("1 18446744073709551615")
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseStatmResident(s)
		if err == nil && n > 1<<52 {
			t.Fatalf("accepted %d pages", n)
		}
	})
}
