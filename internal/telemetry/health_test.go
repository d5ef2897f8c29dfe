package telemetry

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

const testCheckTimeout = 100 * time.Millisecond

func constCheck(c Component) CheckFunc {
	return func(context.Context) Component { return c }
}

// hangingCheck ignores its context until the test ends.
func hangingCheck(t *testing.T) CheckFunc {
	t.Helper()
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	return func(context.Context) Component {
		<-stop
		return Component{Status: StatusOK}
	}
}

func TestHealthAggregation(t *testing.T) {
	ok := constCheck(Component{Status: StatusOK})
	degraded := constCheck(Component{Status: StatusDegraded, Detail: "redis at 85% memory"})
	failed := constCheck(Component{Status: StatusError, Detail: "store unreachable"})

	tests := []struct {
		name       string
		checks     map[string]CheckFunc
		wantStatus Status
		wantCode   int
		wantDetail map[string]string // component -> substring of its detail
	}{
		{"no checks", nil, StatusOK, 200, nil},
		{"all ok", map[string]CheckFunc{"store": ok, "queue": ok}, StatusOK, 200, nil},
		{"one degraded", map[string]CheckFunc{"store": degraded, "queue": ok}, StatusDegraded, 200,
			map[string]string{"store": "85%"}},
		{"error beats degraded", map[string]CheckFunc{"store": degraded, "queue": failed}, StatusError, 503,
			map[string]string{"queue": "unreachable"}},
		{"panicking check", map[string]CheckFunc{
			"store": ok,
			"model": func(context.Context) Component { panic("nil model") },
		}, StatusError, 503, map[string]string{"model": "panicked: nil model"}},
		{"hanging check", map[string]CheckFunc{"store": ok, "llm": hangingCheck(t)}, StatusError, 503,
			map[string]string{"llm": "timed out"}},
		{"context-respecting slow check", map[string]CheckFunc{
			"slow": func(ctx context.Context) Component {
				<-ctx.Done()
				return Component{Status: StatusOK}
			},
		}, StatusError, 503, map[string]string{"slow": "timed out"}},
		{"empty status", map[string]CheckFunc{"store": constCheck(Component{})}, StatusError, 503,
			map[string]string{"store": "unknown status"}},
		{"made-up status", map[string]CheckFunc{"store": constCheck(Component{Status: "fine"})}, StatusError, 503,
			map[string]string{"store": `"fine"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHealth("escalation", testBuild, WithCheckTimeout(testCheckTimeout))
			for name, fn := range tt.checks {
				h.Register(name, fn)
			}
			start := time.Now()
			rec := httptest.NewRecorder()
			h.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/health", nil))
			if elapsed := time.Since(start); elapsed > 10*testCheckTimeout {
				t.Errorf("health took %v with a %v timeout", elapsed, testCheckTimeout)
			}
			if rec.Code != tt.wantCode {
				t.Errorf("status code %d, want %d", rec.Code, tt.wantCode)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			var rep Report
			if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
				t.Fatalf("decoding %s: %v", rec.Body, err)
			}
			if rep.Status != tt.wantStatus {
				t.Errorf("status %q, want %q (%s)", rep.Status, tt.wantStatus, rec.Body)
			}
			if rep.Service != "escalation" || rep.Version != "1.2.3" || rep.Commit != "abc123" {
				t.Errorf("identity = %q %q %q", rep.Service, rep.Version, rep.Commit)
			}
			if len(rep.Components) != len(tt.checks) {
				t.Errorf("%d components, want %d", len(rep.Components), len(tt.checks))
			}
			for name, want := range tt.wantDetail {
				if got := rep.Components[name].Detail; !strings.Contains(got, want) {
					t.Errorf("component %s detail %q, want it to contain %q", name, got, want)
				}
			}
		})
	}
}

// TestHealthHangingCheckIsShared probes a hanging check many times: every
// probe reports an error in bounded time and the check runs only once, so
// probes do not pile up goroutines.
func TestHealthHangingCheckIsShared(t *testing.T) {
	var mu sync.Mutex
	runs := 0
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	h := NewHealth("tarpit", testBuild, WithCheckTimeout(20*time.Millisecond))
	h.Register("stuck", func(context.Context) Component {
		mu.Lock()
		runs++
		mu.Unlock()
		<-stop
		return Component{Status: StatusOK}
	})

	before := runtime.NumGoroutine()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if rep := h.Check(context.Background()); rep.Status != StatusError {
				t.Errorf("status %q, want error", rep.Status)
			}
		})
	}
	wg.Wait()
	for range 5 {
		h.Check(context.Background())
	}
	mu.Lock()
	defer mu.Unlock()
	if runs != 1 {
		t.Errorf("check ran %d times, want 1", runs)
	}
	if after := runtime.NumGoroutine(); after > before+3 {
		t.Errorf("goroutines grew from %d to %d", before, after)
	}
}

func TestHealthCheckRunsAgainAfterCompletion(t *testing.T) {
	h := NewHealth("edge", testBuild)
	calls := 0
	h.Register("store", func(context.Context) Component {
		calls++
		return Component{Status: StatusOK, Data: map[string]any{"used_bytes": 10}}
	})
	for range 3 {
		rep := h.Check(context.Background())
		if rep.Components["store"].Data["used_bytes"] != 10 {
			t.Errorf("data lost: %+v", rep.Components["store"])
		}
	}
	if calls != 3 {
		t.Errorf("check ran %d times, want 3", calls)
	}
}

func TestHealthCallerCancelled(t *testing.T) {
	h := NewHealth("edge", testBuild)
	h.Register("llm", hangingCheck(t))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if c := h.Check(ctx).Components["llm"]; c.Status != StatusError || !strings.Contains(c.Detail, "canceled") {
		t.Errorf("cancelled probe: %+v", c)
	}
}

func TestHealthRegisterReplaces(t *testing.T) {
	h := NewHealth("edge", testBuild)
	h.Register("store", constCheck(Component{Status: StatusError}))
	h.Register("store", constCheck(Component{Status: StatusOK}))
	if rep := h.Check(context.Background()); rep.Status != StatusOK || len(rep.Components) != 1 {
		t.Errorf("report %+v", rep)
	}
}

func TestHealthHandlerMethods(t *testing.T) {
	h := NewHealth("edge", testBuild).Handler()
	for method, want := range map[string]int{"GET": 200, "HEAD": 200, "POST": 405, "DELETE": 405} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, "/health", nil))
		if rec.Code != want {
			t.Errorf("%s: %d, want %d", method, rec.Code, want)
		}
	}
}

func TestHealthUnencodableData(t *testing.T) {
	h := NewHealth("edge", testBuild)
	h.Register("bad", constCheck(Component{Status: StatusOK, Data: map[string]any{"f": func() {}}}))
	rec := httptest.NewRecorder()
	h.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/health", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("status %d, want 500", rec.Code)
	}
}

func TestReportJSONRoundTrip(t *testing.T) {
	in := Report{
		Service: "ai_service", Status: StatusDegraded, Version: "1.0.0", Commit: "c0ffee",
		Uptime: 90 * time.Second, Time: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Components: map[string]Component{"store": {Status: StatusDegraded, Detail: "slow", Data: map[string]any{"used_ratio": 0.9}}},
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"service":"ai_service","status":"degraded","version":"1.0.0","commit":"c0ffee","uptime_seconds":90,` +
		`"time":"2025-01-02T03:04:05Z","components":{"store":{"status":"degraded","detail":"slow","data":{"used_ratio":0.9}}}}`
	if string(b) != want {
		t.Errorf("JSON\n got %s\nwant %s", b, want)
	}
	var out Report
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.Uptime != in.Uptime || out.Status != in.Status || out.Components["store"].Detail != "slow" || !out.Time.Equal(in.Time) {
		t.Errorf("round trip: %+v", out)
	}
}

func TestReportUnmarshalRejects(t *testing.T) {
	for _, in := range []string{
		`{"status":"great"}`,
		`{"status":"ok","uptime_seconds":-1}`,
		`{"status":"ok","uptime_seconds":1e300}`,
		`[]`,
	} {
		var r Report
		if err := json.Unmarshal([]byte(in), &r); err == nil {
			t.Errorf("Unmarshal(%s) = nil error", in)
		}
	}
}

func FuzzReportUnmarshal(f *testing.F) {
	f.Add([]byte(`{"service":"edge","status":"ok","version":"1","uptime_seconds":1.5,"time":"2025-01-02T03:04:05Z","components":{"a":{"status":"error"}}}`))
	f.Add([]byte(`{"status":"degraded","uptime_seconds":9.2e9}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Report
		if err := json.Unmarshal(b, &r); err != nil {
			return
		}
		if !r.Status.valid() || r.Uptime < 0 {
			t.Fatalf("accepted invalid report %+v", r)
		}
		if _, err := json.Marshal(r); err != nil {
			t.Fatalf("re-encoding accepted report: %v", err)
		}
	})
}
