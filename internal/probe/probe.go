// Package probe checks that scrapedefense's endpoints answer: each role's
// /health report and the public endpoints in front of the site. Results feed
// the admin UI availability SLO (probe_success) and `scrapedefense ops probe`.
//
// A probe never reports success by default: an unreachable target, a
// timeout, a body that is not a health report, or a report that says
// "error" are all failures, each with a reason.
package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/telemetry"
)

// Status is the outcome of one probe.
type Status string

// Outcomes. StatusUnknown means the probe could not run (for example the
// caller's context ended first), which is not evidence either way.
const (
	StatusOK      Status = "ok"
	StatusFail    Status = "fail"
	StatusUnknown Status = "unknown"
)

// DefaultTimeout bounds a probe whose Target sets no Timeout.
const DefaultTimeout = 5 * time.Second

// maxBody caps how much of a response is read; a health report is a few
// hundred bytes.
const maxBody = 1 << 20

// maxParallel bounds concurrent probes in one Run.
const maxParallel = 16

// Target is one endpoint to check.
type Target struct {
	Name string // short, stable name; the `target` label of probe_success
	URL  string
	// Health marks a role's /health endpoint: the body must be a health
	// report whose status is ok or degraded.
	Health bool
	// ExpectStatus is the HTTP status a plain (non-health) target must
	// answer; 0 accepts any status below 500 (a challenge page or a block is
	// the defense working, not failing).
	ExpectStatus int
	Timeout      time.Duration // 0 means DefaultTimeout
}

// Result is the outcome of probing one Target.
type Result struct {
	Target   Target
	Success  bool
	Duration time.Duration
	Status   Status
	Reason   string // why it failed, or a note such as "degraded: store: ..."
	// Health is the reported status of a Health target ("" otherwise or
	// when no report could be read).
	Health telemetry.Status
}

// Doer sends HTTP requests; *http.Client satisfies it.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// Run probes every target concurrently (at most maxParallel at a time) and
// returns the results in the order of targets.
func Run(ctx context.Context, targets []Target, client Doer) []Result {
	results := make([]Result, len(targets))
	sem := make(chan struct{}, maxParallel)
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
				results[i] = Check(ctx, t, client)
			case <-ctx.Done():
				results[i] = Result{Target: t, Status: StatusUnknown, Reason: "not probed: " + ctx.Err().Error()}
			}
		}()
	}
	wg.Wait()
	return results
}

// Check probes one target.
func Check(ctx context.Context, t Target, client Doer) Result {
	res := Result{Target: t, Status: StatusFail}
	if ctx.Err() != nil {
		res.Status, res.Reason = StatusUnknown, "not probed: "+ctx.Err().Error()
		return res
	}
	timeout := t.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	start := time.Now()
	err := probeOnce(pctx, t, client, &res)
	res.Duration = time.Since(start)
	switch {
	case err == nil:
		res.Success, res.Status = true, StatusOK
	case ctx.Err() != nil: // the caller gave up, not the target
		res.Status, res.Reason = StatusUnknown, "probe abandoned: "+ctx.Err().Error()
	case errors.Is(err, context.DeadlineExceeded):
		res.Reason = fmt.Sprintf("timeout after %s", timeout)
	default:
		res.Reason = err.Error()
	}
	return res
}

func probeOnce(ctx context.Context, t Target, client Doer, res *Result) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.URL, nil)
	if err != nil {
		return fmt.Errorf("bad target URL: %w", err)
	}
	if t.Health {
		req.Header.Set("Accept", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("request: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if len(body) > maxBody {
		return fmt.Errorf("body larger than %d bytes", maxBody)
	}
	if !t.Health {
		return checkStatus(t.ExpectStatus, resp.StatusCode)
	}
	status, note, err := ParseHealth(body)
	res.Health = status
	if err != nil {
		return fmt.Errorf("HTTP %d: %w", resp.StatusCode, err)
	}
	res.Reason = note
	switch {
	case status == telemetry.StatusError:
		return fmt.Errorf("health status error: %s", note)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("HTTP %d with health status %s", resp.StatusCode, status)
	}
	return nil
}

func checkStatus(want, got int) error {
	if want != 0 {
		if got != want {
			return fmt.Errorf("HTTP %d, want %d", got, want)
		}
		return nil
	}
	if got >= 500 {
		return fmt.Errorf("HTTP %d", got)
	}
	return nil
}
