// Package slo reads service level indicators and error budgets from
// Prometheus, for `scrapedefense ops budget`. It reads the series recorded
// by deploy/prometheus/rules/slo.yml.
//
// Anything short of a clean number is "unknown" with a reason: Prometheus
// unreachable, an error answer, no series, or NaN (no traffic in the
// window). A missing measurement is never reported as a healthy one.
package slo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Status says whether a Value holds a measurement.
type Status string

// Statuses of a Value.
const (
	StatusOK      Status = "ok"
	StatusUnknown Status = "unknown"
)

// Value is one number read from Prometheus.
type Value struct {
	Value  float64
	Status Status
	Reason string // why the value is unknown
}

func unknown(format string, args ...any) Value {
	return Value{Value: math.NaN(), Status: StatusUnknown, Reason: fmt.Sprintf(format, args...)}
}

// maxResponse caps how much of an answer is read; instant queries for one
// SLO return a few hundred bytes.
const maxResponse = 4 << 20

// Doer sends HTTP requests; *http.Client satisfies it.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// Client queries the Prometheus HTTP API.
type Client struct {
	query string // absolute URL of /api/v1/query
	http  Doer
}

// NewClient returns a client for the Prometheus server at baseURL (for
// example http://127.0.0.1:9090).
func NewClient(baseURL string, doer Doer) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("prometheus URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("prometheus URL %q: want http(s)://host[:port]", baseURL)
	}
	u = u.JoinPath("api", "v1", "query")
	return &Client{query: u.String(), http: doer}, nil
}

// Query runs an instant query that should return exactly one number (a
// scalar, or a vector with one sample).
func (c *Client) Query(ctx context.Context, expr string) Value {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.query,
		strings.NewReader(url.Values{"query": {expr}}.Encode()))
	if err != nil {
		return unknown("build request: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.http.Do(req)
	if err != nil {
		return unknown("prometheus unreachable: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return unknown("read prometheus answer: %v", err)
	}
	if len(body) > maxResponse {
		return unknown("prometheus answer larger than %d bytes", maxResponse)
	}
	v, err := ParseQueryResponse(body)
	if err != nil {
		return unknown("HTTP %d: %v", resp.StatusCode, err)
	}
	if math.IsNaN(v) {
		return unknown("no data: %s is NaN (no events in the window?)", expr)
	}
	if math.IsInf(v, 0) {
		return unknown("%s is %v", expr, v)
	}
	return Value{Value: v, Status: StatusOK}
}

// ErrEmpty means the query matched no series.
var ErrEmpty = errors.New("no series (rule not loaded, or no data yet)")

type apiResponse struct {
	Status    string          `json:"status"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Data      json.RawMessage `json:"data"`
}

type queryData struct {
	ResultType string          `json:"resultType"`
	Result     json.RawMessage `json:"result"`
}

type vectorSample struct {
	Value []json.RawMessage `json:"value"`
}

// ParseQueryResponse reads one number from a /api/v1/query answer: a scalar,
// or a vector holding exactly one sample. NaN comes back as NaN; the
// caller decides what it means.
func ParseQueryResponse(body []byte) (float64, error) {
	var r apiResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return 0, fmt.Errorf("not a prometheus answer: %w", err)
	}
	if r.Status != "success" {
		if r.Status == "error" {
			return 0, fmt.Errorf("prometheus error (%s): %s", clip(r.ErrorType), clip(r.Error))
		}
		return 0, fmt.Errorf("prometheus answer with status %q", clip(r.Status))
	}
	var d queryData
	if err := json.Unmarshal(r.Data, &d); err != nil {
		return 0, fmt.Errorf("prometheus answer data: %w", err)
	}
	switch d.ResultType {
	case "scalar":
		var pair []json.RawMessage
		if err := json.Unmarshal(d.Result, &pair); err != nil {
			return 0, fmt.Errorf("scalar result: %w", err)
		}
		return parsePair(pair)
	case "vector":
		var samples []vectorSample
		if err := json.Unmarshal(d.Result, &samples); err != nil {
			return 0, fmt.Errorf("vector result: %w", err)
		}
		switch len(samples) {
		case 0:
			return 0, ErrEmpty
		case 1:
			return parsePair(samples[0].Value)
		default:
			return 0, fmt.Errorf("%d series, want one (query must select a single SLO)", len(samples))
		}
	default:
		return 0, fmt.Errorf("result type %q, want scalar or vector", clip(d.ResultType))
	}
}

// parsePair reads [timestamp, "value"]; Prometheus sends values as strings
// so that NaN and ±Inf survive JSON.
func parsePair(pair []json.RawMessage) (float64, error) {
	if len(pair) != 2 {
		return 0, fmt.Errorf("sample has %d elements, want [time, value]", len(pair))
	}
	var s string
	if err := json.Unmarshal(pair[1], &s); err != nil {
		return 0, fmt.Errorf("sample value: %w", err)
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("sample value %q: %w", clip(s), err)
	}
	return v, nil
}

func clip(s string) string {
	const n = 200
	if len(s) > n {
		return strings.ToValidUTF8(s[:n], "") + "…"
	}
	return s
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)

// Budget is the state of one SLO.
type Budget struct {
	SLO       string
	Objective Value // e.g. 0.995
	SLI       Value // good events / all events over 30 days
	Remaining Value // share of the 30-day error budget left (negative: overspent)
	BurnRate  Value // over the last hour; 1 = exactly on budget
}

// Budget reads the objective, 30-day SLI, remaining budget and 1-hour burn
// rate of the named SLO (the `slo` label, such as "ai-webhook-latency").
func (c *Client) Budget(ctx context.Context, name string) (Budget, error) {
	if !nameRE.MatchString(name) {
		return Budget{}, fmt.Errorf("SLO name %q: want lower-case letters, digits and dashes", clip(name))
	}
	sel := `{slo="` + name + `"}`
	b := Budget{
		SLO:       name,
		Objective: c.Query(ctx, "slo:objective:ratio"+sel),
		Remaining: c.Query(ctx, "slo:error_budget_remaining:ratio"+sel),
		BurnRate:  c.Query(ctx, "slo:burn_rate:rate1h"+sel),
	}
	errRatio := c.Query(ctx, "slo:error_ratio:rate30d"+sel)
	b.SLI = errRatio
	if errRatio.Status == StatusOK {
		b.SLI.Value = 1 - errRatio.Value
	}
	return b, nil
}
