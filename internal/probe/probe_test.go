package probe_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scrapedefense/scrapedefense/internal/probe"
	"github.com/scrapedefense/scrapedefense/internal/telemetry"
)

// healthServer serves a real telemetry health handler whose single
// component reports status.
func healthServer(t *testing.T, status telemetry.Status, detail string) string {
	t.Helper()
	h := telemetry.NewHealth("admin_ui", telemetry.BuildInfo{Version: "test"})
	h.Register("store", func(context.Context) telemetry.Component {
		return telemetry.Component{Status: status, Detail: detail}
	})
	srv := httptest.NewServer(h.Handler())
	t.Cleanup(srv.Close)
	return srv.URL + "/health"
}

func handlerServer(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/health"
}

func TestCheck(t *testing.T) {
	slow := handlerServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	status := func(code int) string {
		return handlerServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) })
	}
	body := func(code int, s string) string {
		return handlerServer(t, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(code)
			_, _ = w.Write([]byte(s))
		})
	}
	tests := []struct {
		name       string
		target     probe.Target
		wantStatus probe.Status
		wantHealth telemetry.Status
		reason     string // substring of Reason
	}{
		{"health ok", probe.Target{URL: healthServer(t, telemetry.StatusOK, ""), Health: true}, probe.StatusOK, telemetry.StatusOK, ""},
		{"health degraded still serves", probe.Target{URL: healthServer(t, telemetry.StatusDegraded, "memory 85%"), Health: true}, probe.StatusOK, telemetry.StatusDegraded, "store: degraded (memory 85%)"},
		{"health error", probe.Target{URL: healthServer(t, telemetry.StatusError, "connection refused"), Health: true}, probe.StatusFail, telemetry.StatusError, "store: error (connection refused)"},
		{"not JSON", probe.Target{URL: body(200, "<html>ok</html>"), Health: true}, probe.StatusFail, "", "not a health report"},
		{"unknown health status", probe.Target{URL: body(200, `{"status":"healthy"}`), Health: true}, probe.StatusFail, "", "unknown status"},
		{"empty JSON object", probe.Target{URL: body(200, `{}`), Health: true}, probe.StatusFail, "", "not a health report"},
		{"ok report with 500", probe.Target{URL: body(500, `{"status":"ok"}`), Health: true}, probe.StatusFail, telemetry.StatusOK, "HTTP 500"},
		{"unreachable", probe.Target{URL: closedURL(t), Health: true}, probe.StatusFail, "", "connection refused"},
		{"timeout", probe.Target{URL: slow, Health: true, Timeout: 50 * time.Millisecond}, probe.StatusFail, "", "timeout after 50ms"},
		{"bad URL", probe.Target{URL: "http://[::1", Health: true}, probe.StatusFail, "", "bad target URL"},
		{"public challenge page", probe.Target{URL: status(403)}, probe.StatusOK, "", ""},
		{"public bad gateway", probe.Target{URL: status(502)}, probe.StatusFail, "", "HTTP 502"},
		{"public expected status", probe.Target{URL: status(200), ExpectStatus: 200}, probe.StatusOK, "", ""},
		{"public wrong status", probe.Target{URL: status(404), ExpectStatus: 200}, probe.StatusFail, "", "HTTP 404, want 200"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := probe.Check(context.Background(), tc.target, http.DefaultClient)
			if r.Status != tc.wantStatus || r.Success != (tc.wantStatus == probe.StatusOK) {
				t.Fatalf("Status = %q, Success = %v, want %q (reason %q)", r.Status, r.Success, tc.wantStatus, r.Reason)
			}
			if r.Health != tc.wantHealth {
				t.Errorf("Health = %q, want %q", r.Health, tc.wantHealth)
			}
			if !strings.Contains(r.Reason, tc.reason) {
				t.Errorf("Reason = %q, want it to contain %q", r.Reason, tc.reason)
			}
			if r.Status == probe.StatusFail && r.Reason == "" {
				t.Error("a failure must say why")
			}
		})
	}
}

func TestRunCanceledIsUnknown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := probe.Run(ctx, []probe.Target{{Name: "a", URL: healthServer(t, telemetry.StatusOK, "")}}, http.DefaultClient)
	if len(res) != 1 || res[0].Status != probe.StatusUnknown || res[0].Success {
		t.Fatalf("got %+v, want one unknown result", res)
	}
}

func TestRunKeepsOrder(t *testing.T) {
	ok := healthServer(t, telemetry.StatusOK, "")
	targets := make([]probe.Target, 40)
	for i := range targets {
		targets[i] = probe.Target{Name: string(rune('a' + i%26)), URL: ok, Health: true}
		if i%3 == 0 {
			targets[i].URL = closedURL(t)
		}
	}
	res := probe.Run(context.Background(), targets, http.DefaultClient)
	for i, r := range res {
		if r.Target != targets[i] {
			t.Fatalf("result %d is for %+v, want %+v", i, r.Target, targets[i])
		}
		if want := i%3 != 0; r.Success != want {
			t.Errorf("result %d: Success = %v, want %v (%s)", i, r.Success, want, r.Reason)
		}
	}
}

func TestProber(t *testing.T) {
	reg := prometheus.NewRegistry()
	p, err := probe.NewProber([]probe.Target{
		{Name: "admin-ui", URL: healthServer(t, telemetry.StatusOK, ""), Health: true},
		{Name: "edge", URL: closedURL(t), Health: true},
	}, http.DefaultClient, 20*time.Millisecond, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for len(p.Last()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	last := p.Last()
	if len(last) != 2 || !last[0].Success || last[1].Success {
		t.Fatalf("Last = %+v", last)
	}
	if got := gauge(t, reg, "probe_success", "admin-ui"); got != 1 {
		t.Errorf("probe_success{target=admin-ui} = %v, want 1", got)
	}
	if got := gauge(t, reg, "probe_success", "edge"); got != 0 {
		t.Errorf("probe_success{target=edge} = %v, want 0", got)
	}
}

// gauge returns the value of one gauge series, by name and target, in reg.
func gauge(t *testing.T, reg *prometheus.Registry, name, target string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "target" && l.GetValue() == target {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{target=%q}", name, target)
	return 0
}

func TestNewProberRejects(t *testing.T) {
	reg := prometheus.NewRegistry()
	ok := probe.Target{Name: "a", URL: "http://127.0.0.1:1/health"}
	tests := map[string]struct {
		targets  []probe.Target
		interval time.Duration
	}{
		"no targets":  {nil, time.Second},
		"no interval": {[]probe.Target{ok}, 0},
		"no name":     {[]probe.Target{{URL: "http://x"}}, time.Second},
		"duplicate":   {[]probe.Target{ok, ok}, time.Second},
		"too many":    {make([]probe.Target, probe.MaxTargets+1), time.Second},
	}
	for name, tc := range tests {
		if _, err := probe.NewProber(tc.targets, http.DefaultClient, tc.interval, reg, nil); err == nil {
			t.Errorf("%s: NewProber succeeded", name)
		}
	}
}

func TestParseHealth(t *testing.T) {
	tests := []struct {
		body    string
		status  telemetry.Status
		note    string
		wantErr bool
	}{
		{`{"status":"ok","components":{}}`, telemetry.StatusOK, "", false},
		{`{"status":"degraded","components":{"b":{"status":"ok"},"a":{"status":"degraded","detail":"slow"}}}`, telemetry.StatusDegraded, "degraded; a: degraded (slow)", false},
		{`{"status":"error"}`, telemetry.StatusError, "error", false},
		{`{"status":""}`, "", "", true},
		{`[]`, "", "", true},
		{``, "", "", true},
		{`{"status":"ok","uptime_seconds":-1}`, "", "", true},
	}
	for _, tc := range tests {
		status, note, err := probe.ParseHealth([]byte(tc.body))
		if (err != nil) != tc.wantErr || status != tc.status || note != tc.note {
			t.Errorf("ParseHealth(%s) = %q, %q, %v; want %q, %q, err %v", tc.body, status, note, err, tc.status, tc.note, tc.wantErr)
		}
	}
}

func FuzzParseHealth(f *testing.F) {
	f.Add([]byte(`{"status":"degraded","components":{"store":{"status":"degraded","detail":"x"}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		status, note, err := probe.ParseHealth(body)
		if err != nil {
			if status != "" || note != "" {
				t.Fatalf("error %v with status %q note %q", err, status, note)
			}
			return
		}
		switch status {
		case telemetry.StatusOK, telemetry.StatusDegraded, telemetry.StatusError:
		default:
			t.Fatalf("status %q accepted", status)
		}
		if len(note) > 4096 {
			t.Fatalf("note of %d bytes", len(note))
		}
	})
}

func BenchmarkParseHealth(b *testing.B) {
	body := []byte(`{"service":"edge","status":"degraded","version":"1","uptime_seconds":12.5,"time":"2025-01-02T03:04:05Z","components":{"store":{"status":"degraded","detail":"memory 85%","data":{"used_ratio":0.85}},"upstream":{"status":"ok"}}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := probe.ParseHealth(body); err != nil {
			b.Fatal(err)
		}
	}
}
