package slo_test

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/slo"
)

// fakePrometheus answers every query with body and code.
func fakePrometheus(t *testing.T, code int, body string) *slo.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" || r.FormValue("query") == "" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	c, err := slo.NewClient(srv.URL, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestQuery(t *testing.T) {
	vec := func(vals ...string) string {
		var parts []string
		for _, v := range vals {
			parts = append(parts, `{"metric":{"slo":"x"},"value":[1700000000.123,"`+v+`"]}`)
		}
		return `{"status":"success","data":{"resultType":"vector","result":[` + strings.Join(parts, ",") + `]}}`
	}
	tests := []struct {
		name   string
		code   int
		body   string
		want   float64
		reason string // substring; empty means status ok
	}{
		{"vector", 200, vec("0.9975"), 0.9975, ""},
		{"scalar", 200, `{"status":"success","data":{"resultType":"scalar","result":[1700000000,"-3"]}}`, -3, ""},
		{"NaN", 200, vec("NaN"), 0, "NaN"},
		{"Inf", 200, vec("+Inf"), 0, "+Inf"},
		{"empty vector", 200, vec(), 0, "no series"},
		{"two series", 200, vec("1", "2"), 0, "2 series"},
		{"error status", 400, `{"status":"error","errorType":"bad_data","error":"parse error at char 3"}`, 0, "prometheus error (bad_data): parse error"},
		{"not JSON", 502, `<html>Bad Gateway</html>`, 0, "HTTP 502: not a prometheus answer"},
		{"matrix", 200, `{"status":"success","data":{"resultType":"matrix","result":[]}}`, 0, `result type "matrix"`},
		{"value not a string", 200, `{"status":"success","data":{"resultType":"vector","result":[{"value":[1,0.5]}]}}`, 0, "sample value"},
		{"short pair", 200, `{"status":"success","data":{"resultType":"vector","result":[{"value":["1"]}]}}`, 0, "1 elements"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := fakePrometheus(t, tc.code, tc.body).Query(context.Background(), "slo:error_ratio:rate5m")
			if tc.reason == "" {
				if v.Status != slo.StatusOK || v.Value != tc.want {
					t.Fatalf("got %+v, want ok %v", v, tc.want)
				}
				return
			}
			if v.Status != slo.StatusUnknown || !math.IsNaN(v.Value) || !strings.Contains(v.Reason, tc.reason) {
				t.Fatalf("got %+v, want unknown with reason containing %q", v, tc.reason)
			}
		})
	}
}

func TestQueryUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err := slo.NewClient("http://"+addr, http.DefaultClient)
	if err != nil {
		t.Fatal(err)
	}
	v := c.Query(context.Background(), "up")
	if v.Status != slo.StatusUnknown || !strings.Contains(v.Reason, "prometheus unreachable") {
		t.Fatalf("got %+v", v)
	}
}

func TestNewClientRejects(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:9090", "ftp://x", "http://", "http://[::1"} {
		if _, err := slo.NewClient(u, http.DefaultClient); err == nil {
			t.Errorf("NewClient(%q) succeeded", u)
		}
	}
}

func TestBudgetRejectsBadName(t *testing.T) {
	c := fakePrometheus(t, 200, `{}`)
	for _, name := range []string{"", `x"} or vector(1) or {a="`, "UPPER", strings.Repeat("a", 65)} {
		if _, err := c.Budget(context.Background(), name); err == nil {
			t.Errorf("Budget(%q) succeeded", name)
		}
	}
}

// TestBudgetRealPrometheus runs the real prometheus binary with a rule file
// recording the SLO series and reads them back.
func TestBudgetRealPrometheus(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("prometheus not installed (apt-get install prometheus)")
		}
		t.Skip("prometheus not installed; apt-get install prometheus")
	}
	if testing.Short() {
		t.Skip("starts prometheus")
	}
	dir := t.TempDir()
	rules := `groups:
  - name: t
    rules:
      - {record: "slo:objective:ratio", expr: "vector(0.995)", labels: {slo: demo, service: ai}}
      - {record: "slo:error_ratio:rate30d", expr: "vector(0.001)", labels: {slo: demo, service: ai}}
      - {record: "slo:error_budget_remaining:ratio", expr: "vector(0.8)", labels: {slo: demo, service: ai}}
      - {record: "slo:burn_rate:rate1h", expr: "vector(0) / vector(0)", labels: {slo: demo, service: ai}}
`
	cfg := "global: {evaluation_interval: 1s}\nrule_files: [rules.yml]\n"
	for name, s := range map[string]string{"rules.yml": rules, "prometheus.yml": cfg} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	c, err := slo.NewClient("http://"+addr, &http.Client{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var b slo.Budget
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if b, err = c.Budget(ctx, "demo"); err != nil {
			t.Fatal(err)
		}
		if b.Remaining.Status == slo.StatusOK && b.SLI.Status == slo.StatusOK {
			break
		}
	}
	if b.Objective.Value != 0.995 || b.Remaining.Value != 0.8 || math.Abs(b.SLI.Value-0.999) > 1e-12 {
		t.Fatalf("budget = %+v\n%s", b, logs.String())
	}
	if b.BurnRate.Status != slo.StatusUnknown || !strings.Contains(b.BurnRate.Reason, "NaN") {
		t.Errorf("burn rate of 0/0 = %+v, want unknown (NaN)", b.BurnRate)
	}
	if v := c.Query(ctx, `slo:objective:ratio{slo="missing"}`); v.Status != slo.StatusUnknown || !strings.Contains(v.Reason, "no series") {
		t.Errorf("missing SLO = %+v, want unknown (no series)", v)
	}
	if v := c.Query(ctx, `sum(`); v.Status != slo.StatusUnknown || !strings.Contains(v.Reason, "bad_data") {
		t.Errorf("bad query = %+v, want unknown (bad_data)", v)
	}
}

func FuzzParseQueryResponse(f *testing.F) {
	f.Add([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"0.5"]}]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		v, err := slo.ParseQueryResponse(body)
		if err != nil && v != 0 {
			t.Fatalf("error %v with value %v", err, v)
		}
	})
}

func BenchmarkParseQueryResponse(b *testing.B) {
	body := []byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"slo":"ai-webhook-latency","service":"ai"},"value":[1700000000.123,"0.9975"]}]}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := slo.ParseQueryResponse(body); err != nil {
			b.Fatal(err)
		}
	}
}
