package telemetry

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

var testBuild = BuildInfo{Version: "1.2.3", Commit: "abc123", GoVersion: "go1.26.8"}

func newTestTelemetry(t testing.TB) *Telemetry {
	t.Helper()
	return New("edge", testBuild, WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
}

// scrape serves /metrics through the role's own handler.
func scrape(t *testing.T, tel *Telemetry) string {
	t.Helper()
	rec := httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: status %d, body %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

func TestDurationBucketsContainSLOThresholds(t *testing.T) {
	for _, threshold := range []float64{0.005, 0.5, 1, 1.5, 2} {
		if !slices.Contains(DurationBuckets, threshold) {
			t.Errorf("DurationBuckets lacks SLO threshold %v: %v", threshold, DurationBuckets)
		}
	}
	if !slices.IsSorted(DurationBuckets) {
		t.Errorf("DurationBuckets not sorted: %v", DurationBuckets)
	}
}

func TestStandardMetricsExposed(t *testing.T) {
	tel := newTestTelemetry(t)
	tel.ObserveHTTP("/", http.MethodGet, 200, time.Millisecond)
	tel.Error("store_write")
	tel.QueueLength("events").Set(3)
	tel.SetModelVersion("scorer", "v7")

	body := scrape(t, tel)
	want := []string{
		`http_request_duration_seconds_bucket{code="200",method="GET",route="/",service="edge",le="0.005"} 1`,
		`http_requests_total{code="200",method="GET",route="/",service="edge"} 1`,
		`request_latency_seconds_bucket{endpoint="/",service="edge",le="1.5"} 1`,
		`errors_total{kind="store_write",service="edge"} 1`,
		`queue_length{queue="events",service="edge"} 3`,
		`model_version_info{model="scorer",service="edge",version="v7"} 1`,
		`build_info{commit="abc123",goversion="go1.26.8",service="edge",version="1.2.3"} 1`,
		`memory_usage_bytes{service="edge"} `,
		`go_goroutines{service="edge"} `,
		`process_resident_memory_bytes{service="edge"} `,
		`promhttp_metric_handler_requests_total{code="200",service="edge"} `,
	}
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("scrape lacks %q", w)
		}
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", body)
	}
}

// TestObserveHTTPGolden pins the full exposition of the HTTP metrics, buckets
// included, so a change of name, label or bucket shows up in review.
func TestObserveHTTPGolden(t *testing.T) {
	tel := newTestTelemetry(t)
	tel.ObserveHTTP("/webhook", http.MethodPost, 200, 5*time.Millisecond) // exactly on the 0.005 edge
	tel.ObserveHTTP("/webhook", http.MethodPost, 200, 600*time.Millisecond)
	tel.ObserveHTTP("/webhook", "BREW", 418, 2*time.Second)
	tel.ObserveHTTP("/health", http.MethodGet, 0, time.Microsecond)

	got := filterExposition(scrape(t, tel),
		"http_request_duration_seconds", "http_requests_total", "request_latency_seconds")
	golden := filepath.Join("testdata", "observe_http.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("exposition differs from %s (go test -update to accept):\n%s", golden, got)
	}
}

// filterExposition keeps the text-format lines of the named metric families.
func filterExposition(body string, names ...string) []byte {
	var out bytes.Buffer
	for line := range strings.Lines(body) {
		name := line
		if rest, ok := strings.CutPrefix(line, "# HELP "); ok {
			name = rest
		} else if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name = rest
		}
		name, _, _ = strings.Cut(name, " ")
		name, _, _ = strings.Cut(name, "{")
		for _, n := range names {
			if name == n || name == n+"_bucket" || name == n+"_sum" || name == n+"_count" {
				out.WriteString(line)
				break
			}
		}
	}
	return out.Bytes()
}

func TestMetricsLint(t *testing.T) {
	tel := newTestTelemetry(t)
	tel.ObserveHTTP("/", http.MethodGet, 200, time.Millisecond)
	tel.Error("x")
	tel.QueueLength("q").Set(1)
	tel.SetModelVersion("m", "1")

	problems, err := testutil.GatherAndLint(tel.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		// The playbook fixes these names; promlint prefers other ones.
		if p.Metric == "cpu_usage_percent" || p.Metric == "build_info" || p.Metric == "model_version_info" {
			continue
		}
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// TestPromtoolCheckMetrics feeds a scrape to the real promtool when it is
// installed (apt-get install prometheus).
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed")
	}
	tel := newTestTelemetry(t)
	tel.ObserveHTTP("/", http.MethodGet, 200, time.Millisecond)
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(scrape(t, tel))
	out, err := cmd.CombinedOutput()
	// promtool exits non-zero for lint warnings too; only accept the ones
	// about names the playbook fixes.
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" || strings.HasPrefix(line, "cpu_usage_percent ") ||
			strings.HasPrefix(line, "build_info ") || strings.HasPrefix(line, "model_version_info ") {
			continue
		}
		t.Errorf("promtool: %s (exit: %v)", line, err)
	}
}

func TestErrorOverflow(t *testing.T) {
	tel := newTestTelemetry(t)
	for i := range maxErrorKinds + 10 {
		tel.Error("kind" + string(rune('A'+i%26)) + strings.Repeat("x", i/26))
	}
	if n := testutil.CollectAndCount(tel.errors); n != maxErrorKinds+2 { // + other + overflow kind
		t.Errorf("errors_total series = %d, want %d", n, maxErrorKinds+2)
	}
	if got := testutil.ToFloat64(tel.errors.WithLabelValues(OtherLabel)); got != 10 {
		t.Errorf("errors_total{kind=other} = %v, want 10", got)
	}
	if got := testutil.ToFloat64(tel.overflow); got != 10 {
		t.Errorf("overflow counter = %v, want 10", got)
	}
}

func TestHTTPSeriesOverflow(t *testing.T) {
	tel := newTestTelemetry(t)
	for i := range maxHTTPSeries + 5 {
		tel.ObserveHTTP("/raw/"+strings.Repeat("a", i%64)+string(rune('0'+i/64)), http.MethodGet, 200, time.Millisecond)
	}
	if got := testutil.ToFloat64(tel.httpRequests.WithLabelValues(OverflowRoute, "GET", "200")); got != 5 {
		t.Errorf("overflow route count = %v, want 5", got)
	}
	if n := testutil.CollectAndCount(tel.httpRequests); n != maxHTTPSeries+1 {
		t.Errorf("http_requests_total series = %d, want %d", n, maxHTTPSeries+1)
	}
}

func TestQueueLength(t *testing.T) {
	tel := newTestTelemetry(t)
	g := tel.QueueLength("events")
	g.Set(5)
	if tel.QueueLength("events") != g {
		t.Error("QueueLength returned a different gauge for the same queue")
	}
	for i := range maxQueues + 3 {
		tel.QueueLength(strings.Repeat("q", i+1))
	}
	if n := testutil.CollectAndCount(tel.queues); n != maxQueues+1 {
		t.Errorf("queue_length series = %d, want %d", n, maxQueues+1)
	}
}

func TestSetModelVersionReplaces(t *testing.T) {
	tel := newTestTelemetry(t)
	tel.SetModelVersion("scorer", "v1")
	tel.SetModelVersion("scorer", "v2")
	tel.SetModelVersion("scorer", "v2")
	tel.SetModelVersion("ua", "2024-01")
	want := `
# HELP model_version_info Version of each loaded model; the value is always 1.
# TYPE model_version_info gauge
model_version_info{model="scorer",service="edge",version="v2"} 1
model_version_info{model="ua",service="edge",version="2024-01"} 1
`
	if err := testutil.GatherAndCompare(tel.Registry(), strings.NewReader(want), "model_version_info"); err != nil {
		t.Error(err)
	}
}

func TestLabelValue(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "unknown"},
		{"edge", "edge"},
		{"bad\xffutf8", "bad\uFFFDutf8"},
		{strings.Repeat("a", 200), strings.Repeat("a", maxLabelLength)},
		{strings.Repeat("a", maxLabelLength-1) + "é", strings.Repeat("a", maxLabelLength-1) + "\uFFFD"}, // cut mid-rune
	}
	for _, tt := range tests {
		if got := labelValue(tt.in); got != tt.want {
			t.Errorf("labelValue(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	// Sanitised values must be accepted by the vecs (they panic otherwise).
	tel := newTestTelemetry(t)
	tel.ObserveHTTP("/\xff", "GET", 200, 0)
	tel.Error("\xfe")
	tel.SetModelVersion("\xff", "\xff")
}

func TestRegistriesAreIndependent(t *testing.T) {
	a := New("edge", testBuild)
	b := New("tarpit", testBuild)
	a.Error("x")
	if n := testutil.CollectAndCount(b.errors); n != 1 { // only tarpit's overflow series
		t.Errorf("tarpit sees %d errors_total series, want 1", n)
	}
	if a.Service() != "edge" || b.Service() != "tarpit" {
		t.Errorf("Service() = %q, %q", a.Service(), b.Service())
	}
}

func TestReadBuildInfo(t *testing.T) {
	b := ReadBuildInfo("9.9.9")
	if b.Version != "9.9.9" || b.GoVersion == "" || b.Commit == "" {
		t.Errorf("ReadBuildInfo = %+v", b)
	}
	if b := ReadBuildInfo(""); b.Version == "" {
		t.Errorf("ReadBuildInfo(\"\") has no version: %+v", b)
	}
}

// failingCollector always fails to collect.
type failingCollector struct{ desc *prometheus.Desc }

func (c failingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c failingCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.NewInvalidMetric(c.desc, errors.New("backend down"))
}

func TestMetricsHandlerLogsAndCountsErrors(t *testing.T) {
	var logs bytes.Buffer
	tel := New("dashboard", testBuild, WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	tel.Registerer().MustRegister(failingCollector{prometheus.NewDesc("fanout_state", "x", nil, nil)})

	body := scrape(t, tel) // ContinueOnError: still 200 with what could be collected
	if !strings.Contains(body, `build_info{`) {
		t.Error("scrape lost the healthy metrics")
	}
	if !strings.Contains(logs.String(), "backend down") || !strings.Contains(logs.String(), `"service":"dashboard"`) {
		t.Errorf("error not logged: %s", logs.String())
	}
	body = scrape(t, tel)
	if !strings.Contains(body, `promhttp_metric_handler_errors_total{cause="gathering",service="dashboard"} 1`) {
		t.Errorf("gathering error not counted:\n%s", filterExposition(body, "promhttp_metric_handler_errors_total"))
	}
}
