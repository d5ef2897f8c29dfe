package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestOpsProbeAllRoles(t *testing.T) {
	s := startServer(t, t.TempDir(), nil)
	out := s.cli("ops", "probe", "--json", "--timeout", "10s")
	var got struct {
		Targets []probeJSON `json:"targets"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("ops probe --json: %v\n%s", err, out)
	}
	want := map[string]string{
		"edge-public": "http://" + s.public + "/",
		"edge":        "http://" + s.admin + "/health",
		"ai-service":  "http://" + s.ai + "/health",
		"escalation":  "http://" + s.escalation + "/health",
		"tarpit":      "http://" + s.tarpitAdmin + "/health",
	}
	for _, r := range got.Targets {
		if want[r.Target] != r.URL {
			t.Errorf("target %s: URL %s, want %s", r.Target, r.URL, want[r.Target])
		}
		if r.Status != "ok" {
			t.Errorf("target %s: %s (%s)", r.Target, r.Status, r.Reason)
		}
		delete(want, r.Target)
	}
	if len(want) != 0 {
		t.Errorf("targets not probed: %v", want)
	}
	if table := s.cli("ops", "probe"); !strings.Contains(table, "TARGET") || strings.Count(table, " ok ") != 5 {
		t.Errorf("ops probe table:\n%s", table)
	}
}

func TestOpsProbeReportsStoppedRoles(t *testing.T) {
	// Nothing listens on these addresses: every target fails and says so.
	t.Setenv("SCRAPEDEFENSE_CONFIG", "")
	for k, v := range map[string]string{
		"SCRAPEDEFENSE_EDGE_LISTEN":         freePort(t),
		"SCRAPEDEFENSE_EDGE_ADMIN_LISTEN":   freePort(t),
		"SCRAPEDEFENSE_AI_LISTEN":           freePort(t),
		"SCRAPEDEFENSE_ESCALATION_LISTEN":   freePort(t),
		"SCRAPEDEFENSE_TARPIT_LISTEN":       freePort(t),
		"SCRAPEDEFENSE_TARPIT_ADMIN_LISTEN": freePort(t),
		"SCRAPEDEFENSE_DATA_DIR":            t.TempDir(),
	} {
		t.Setenv(k, v)
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"ops", "probe", "--timeout", "2s"}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, stdout.String(), stderr.String())
	}
	if n := strings.Count(stdout.String(), "not running"); n != 5 {
		t.Errorf("%d targets say not running, want 5:\n%s", n, stdout.String())
	}
	if !strings.Contains(stderr.String(), "5 of 5 targets not ok") {
		t.Errorf("stderr: %s", stderr.String())
	}
}

func TestDialAddr(t *testing.T) {
	for in, want := range map[string]string{
		":8080":          "127.0.0.1:8080",
		"0.0.0.0:8080":   "127.0.0.1:8080",
		"[::]:8080":      "[::1]:8080",
		"10.0.0.5:9080":  "10.0.0.5:9080",
		"localhost:8000": "localhost:8000",
		"[::1]:8000":     "[::1]:8000",
		"garbage":        "garbage",
	} {
		if got := dialAddr(in); got != want {
			t.Errorf("dialAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

// opsBudget runs `ops budget` in-process and returns its exit code and
// output.
func opsBudget(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"ops", "budget"}, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestOpsBudgetUnknownIsNeverHealthy(t *testing.T) {
	empty := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[]}}`))
	}))
	t.Cleanup(empty.Close)
	nan := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}}`))
	}))
	t.Cleanup(nan.Close)
	tests := []struct {
		name, url, reason string
	}{
		{"empty vector", empty.URL, "no series"},
		{"NaN", nan.URL, "NaN"},
		{"unreachable", "http://" + freePort(t), "prometheus unreachable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, stderr := opsBudget(t, "--prometheus", tc.url)
			if code != 1 {
				t.Fatalf("exit %d, want 1\n%s%s", code, out, stderr)
			}
			for _, name := range sloNames {
				line := lineWith(out, name+" ")
				if strings.Count(line, "unknown") != 4 || !strings.Contains(line, tc.reason) {
					t.Errorf("%s: %q, want 4 unknowns and %q", name, line, tc.reason)
				}
			}
			code, out, _ = opsBudget(t, "--prometheus", tc.url, "--slo", "edge-latency", "--json")
			var got []budgetJSON
			if err := json.Unmarshal([]byte(out), &got); code != 1 || err != nil {
				t.Fatalf("--json: exit %d, %v\n%s", code, err, out)
			}
			if len(got) != 1 || got[0].SLO != "edge-latency" || got[0].SLI.Status != "unknown" ||
				got[0].SLI.Value != nil || !strings.Contains(got[0].SLI.Reason, tc.reason) {
				t.Errorf("--json: %+v", got)
			}
		})
	}
}

func TestOpsBudgetHealthy(t *testing.T) {
	values := map[string]string{
		"slo:objective:ratio":              "0.995",
		"slo:error_budget_remaining:ratio": "0.82",
		"slo:burn_rate:rate1h":             "0.4",
		"slo:error_ratio:rate30d":          "0.0009",
	}
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.FormValue("query")
		metric, _, _ := strings.Cut(q, "{")
		v, ok := values[metric]
		if !ok || !strings.Contains(q, `slo="ai-webhook-latency"`) {
			http.Error(w, `{"status":"error","errorType":"bad_data","error":"unexpected query"}`, http.StatusBadRequest)
			return
		}
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"` + v + `"]}]}}`))
	}))
	t.Cleanup(prom.Close)
	code, out, stderr := opsBudget(t, "--prometheus", prom.URL, "--slo", "ai-webhook-latency")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
	line := lineWith(out, "ai-webhook-latency")
	for _, want := range []string{"99.50%", "99.91%", "82.00%", "0.40"} {
		if !strings.Contains(line, want) {
			t.Errorf("want %s in %q", want, line)
		}
	}
	if code, _, stderr := opsBudget(t, "--slo", "x"); code != 2 || !strings.Contains(stderr, "--prometheus") {
		t.Errorf("without --prometheus: exit %d, %s", code, stderr)
	}
	if code, _, _ := opsBudget(t, "--prometheus", prom.URL, "--slo", "Bad Name"); code != 2 {
		t.Errorf("bad SLO name: exit %d, want 2", code)
	}
}

// TestOpsSLONamesMatchRules keeps sloNames in step with the SLOs that
// deploy/prometheus/rules/slo.yml records.
func TestOpsSLONamesMatchRules(t *testing.T) {
	b, err := os.ReadFile("../../deploy/prometheus/rules/slo.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Record string            `yaml:"record"`
				Labels map[string]string `yaml:"labels"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Record == "slo:objective:ratio" {
				names = append(names, r.Labels["slo"])
			}
		}
	}
	if !slices.Equal(names, sloNames) {
		t.Errorf("slo.yml objectives %q, sloNames %q", names, sloNames)
	}
}

func lineWith(out, sub string) string {
	for line := range strings.Lines(out) {
		if strings.Contains(line, sub) {
			return line
		}
	}
	return ""
}
