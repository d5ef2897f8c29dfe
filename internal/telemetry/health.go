package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"sync"
	"time"
)

// Status is the state of a component or of a whole role.
type Status string

// Statuses, from best to worst. A role is as healthy as its worst component.
const (
	StatusOK       Status = "ok"
	StatusDegraded Status = "degraded" // works, with reduced capacity or a fallback; still serves traffic
	StatusError    Status = "error"    // does not work; /health answers 503
)

func (s Status) rank() int {
	switch s {
	case StatusOK:
		return 0
	case StatusDegraded:
		return 1
	default:
		return 2
	}
}

func (s Status) valid() bool {
	return s == StatusOK || s == StatusDegraded || s == StatusError
}

// Component is the result of one health check.
type Component struct {
	Status Status         `json:"status"`
	Detail string         `json:"detail,omitempty"`
	Data   map[string]any `json:"data,omitempty"` // e.g. store utilisation, queue depth
}

// CheckFunc reports the health of one component. It must honour ctx: the
// check is abandoned, and reported as an error, when ctx ends.
type CheckFunc func(ctx context.Context) Component

// DefaultCheckTimeout bounds each health check.
const DefaultCheckTimeout = 2 * time.Second

// HealthOption configures NewHealth.
type HealthOption func(*Health)

// WithCheckTimeout sets how long each check may run before it is reported as
// an error. Non-positive values keep the default.
func WithCheckTimeout(d time.Duration) HealthOption {
	return func(h *Health) {
		if d > 0 {
			h.timeout = d
		}
	}
}

// Health aggregates the component checks of one role for /health. It is safe
// for concurrent use.
type Health struct {
	service string
	build   BuildInfo
	started time.Time
	timeout time.Duration

	mu     sync.Mutex
	checks map[string]*check
}

// NewHealth returns a Health with no checks; with none registered the role
// reports ok.
func NewHealth(service string, build BuildInfo, opts ...HealthOption) *Health {
	h := &Health{
		service: service,
		build:   build.withDefaults(),
		started: time.Now(),
		timeout: DefaultCheckTimeout,
		checks:  make(map[string]*check),
	}
	for _, opt := range opts {
		opt(h)
	}
	return h
}

// Register adds the check reported under name, replacing any check of that
// name.
func (h *Health) Register(name string, fn func(ctx context.Context) Component) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.checks[name] = &check{fn: fn}
}

// Report is the /health document.
type Report struct {
	Service    string
	Status     Status
	Version    string
	Commit     string
	Uptime     time.Duration
	Time       time.Time
	Components map[string]Component
}

// reportJSON is Report on the wire: uptime in seconds, which every consumer
// (probes, dashboards, jq) reads without parsing Go durations.
type reportJSON struct {
	Service       string               `json:"service"`
	Status        Status               `json:"status"`
	Version       string               `json:"version"`
	Commit        string               `json:"commit,omitempty"`
	UptimeSeconds float64              `json:"uptime_seconds"`
	Time          time.Time            `json:"time"`
	Components    map[string]Component `json:"components"`
}

// MarshalJSON implements json.Marshaler.
func (r Report) MarshalJSON() ([]byte, error) {
	comps := r.Components
	if comps == nil {
		comps = map[string]Component{}
	}
	return json.Marshal(reportJSON{
		Service:       r.Service,
		Status:        r.Status,
		Version:       r.Version,
		Commit:        r.Commit,
		UptimeSeconds: r.Uptime.Seconds(),
		Time:          r.Time,
		Components:    comps,
	})
}

// UnmarshalJSON implements json.Unmarshaler, for roles and tools that read
// another role's /health.
func (r *Report) UnmarshalJSON(b []byte) error {
	var w reportJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("health report: %w", err)
	}
	if !w.Status.valid() {
		return fmt.Errorf("health report: unknown status %q", w.Status)
	}
	const maxUptime = float64(1<<63-1) / float64(time.Second)
	if w.UptimeSeconds < 0 || w.UptimeSeconds > maxUptime {
		return fmt.Errorf("health report: uptime_seconds %v out of range", w.UptimeSeconds)
	}
	*r = Report{
		Service:    w.Service,
		Status:     w.Status,
		Version:    w.Version,
		Commit:     w.Commit,
		Uptime:     time.Duration(w.UptimeSeconds * float64(time.Second)),
		Time:       w.Time,
		Components: w.Components,
	}
	return nil
}

// Check runs every registered check concurrently, each bounded by the check
// timeout, and aggregates them. A check that panics, times out or returns an
// unknown status is reported as an error; Check itself never blocks longer
// than the timeout.
func (h *Health) Check(ctx context.Context) Report {
	h.mu.Lock()
	checks := maps.Clone(h.checks)
	h.mu.Unlock()

	type result struct {
		name string
		comp Component
	}
	results := make(chan result, len(checks))
	for name, c := range checks {
		go func() { results <- result{name, c.run(ctx, h.timeout)} }()
	}

	now := time.Now()
	rep := Report{
		Service:    h.service,
		Status:     StatusOK,
		Version:    h.build.Version,
		Commit:     h.build.Commit,
		Uptime:     now.Sub(h.started),
		Components: make(map[string]Component, len(checks)),
	}
	for range checks {
		res := <-results
		rep.Components[res.name] = res.comp
		if res.comp.Status.rank() > rep.Status.rank() {
			rep.Status = res.comp.Status
		}
	}
	rep.Time = time.Now().UTC()
	return rep
}

// Handler serves the report as JSON: 200 when ok or degraded (the role still
// serves traffic), 503 when any component is in error.
func (h *Health) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		rep := h.Check(r.Context())
		var buf bytes.Buffer
		if err := json.NewEncoder(&buf).Encode(rep); err != nil {
			// Only a check's Data can fail to encode; say so rather than
			// serve half a document.
			http.Error(w, fmt.Sprintf("encoding health report: %v", err), http.StatusInternalServerError)
			return
		}
		code := http.StatusOK
		if rep.Status == StatusError {
			code = http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(code)
		_, _ = w.Write(buf.Bytes())
	})
}

// check runs one registered check at most once at a time: callers that
// arrive while a run is in flight wait for that run instead of starting
// another, so a check that hangs costs one goroutine, not one per probe.
type check struct {
	fn CheckFunc

	mu       sync.Mutex
	inflight *checkRun
}

type checkRun struct {
	done chan struct{}
	comp Component // set before done is closed
}

func (c *check) run(ctx context.Context, timeout time.Duration) Component {
	c.mu.Lock()
	run := c.inflight
	if run == nil {
		run = &checkRun{done: make(chan struct{})}
		c.inflight = run
		// The run outlives the probe that started it (others may join), so
		// it gets its own deadline rather than the caller's cancellation.
		runCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		go c.execute(runCtx, cancel, run)
	}
	c.mu.Unlock()

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-run.done:
		return run.comp
	case <-timer.C:
		return Component{Status: StatusError, Detail: fmt.Sprintf("check timed out after %s", timeout)}
	case <-ctx.Done():
		return Component{Status: StatusError, Detail: fmt.Sprintf("check abandoned: %v", ctx.Err())}
	}
}

func (c *check) execute(ctx context.Context, cancel context.CancelFunc, run *checkRun) {
	defer func() {
		if p := recover(); p != nil {
			run.comp = Component{Status: StatusError, Detail: fmt.Sprintf("check panicked: %v", p)}
		}
		cancel()
		c.mu.Lock()
		c.inflight = nil
		c.mu.Unlock()
		close(run.done)
	}()
	comp := c.fn(ctx)
	if !comp.Status.valid() {
		comp = Component{Status: StatusError, Detail: fmt.Sprintf("check returned unknown status %q", comp.Status)}
	} else if comp.Status != StatusError && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		// Finished, but too late for the callers that started it.
		comp = Component{Status: StatusError, Detail: "check finished after its deadline"}
	}
	run.comp = comp
}
