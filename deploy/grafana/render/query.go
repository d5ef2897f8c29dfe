package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Point is one sample of a series.
type Point struct {
	T time.Time
	V float64
}

// Series is one labelled result of a range query.
type Series struct {
	Labels map[string]string
	Points []Point
}

// QueryRange runs a PromQL range query. The renderer takes it as a value so
// tests can render without a server.
type QueryRange func(ctx context.Context, expr string, start, end time.Time, step time.Duration) ([]Series, error)

// Limits on a Prometheus answer: a panel cannot show more than this anyway.
const (
	maxResponseBytes = 32 << 20
	maxSeries        = 200
)

// PrometheusQuerier returns a QueryRange that asks the Prometheus server at
// baseURL (e.g. http://127.0.0.1:9090) through its HTTP API.
func PrometheusQuerier(client *http.Client, baseURL string) QueryRange {
	endpoint := strings.TrimRight(baseURL, "/") + "/api/v1/query_range"
	return func(ctx context.Context, expr string, start, end time.Time, step time.Duration) ([]Series, error) {
		form := url.Values{
			"query": {expr},
			"start": {strconv.FormatInt(start.Unix(), 10)},
			"end":   {strconv.FormatInt(end.Unix(), 10)},
			"step":  {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)},
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
		if err != nil {
			return nil, fmt.Errorf("query_range: %w", err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("query_range: %w", err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
		if err != nil {
			return nil, fmt.Errorf("query_range: read: %w", err)
		}
		if len(body) > maxResponseBytes {
			return nil, fmt.Errorf("query_range: answer over %d bytes", maxResponseBytes)
		}
		return DecodeQueryRange(body)
	}
}

// DecodeQueryRange parses a /api/v1/query_range answer (a matrix). NaN and
// infinite samples are dropped so that a chart shows a gap there.
func DecodeQueryRange(body []byte) ([]Series, error) {
	var r struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("decode query_range answer: %w", err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("prometheus: %s: %s", r.ErrorType, r.Error)
	}
	if r.Data.ResultType != "matrix" {
		return nil, fmt.Errorf("prometheus: result type %q, want matrix", r.Data.ResultType)
	}
	if len(r.Data.Result) > maxSeries {
		r.Data.Result = r.Data.Result[:maxSeries]
	}
	out := make([]Series, 0, len(r.Data.Result))
	for _, res := range r.Data.Result {
		s := Series{Labels: res.Metric, Points: make([]Point, 0, len(res.Values))}
		for _, v := range res.Values {
			ts, ok := v[0].(float64)
			if !ok {
				return nil, fmt.Errorf("prometheus: timestamp %v is not a number", v[0])
			}
			str, ok := v[1].(string)
			if !ok {
				return nil, fmt.Errorf("prometheus: value %v is not a string", v[1])
			}
			f, err := strconv.ParseFloat(str, 64)
			if err != nil {
				return nil, fmt.Errorf("prometheus: value: %w", err)
			}
			if math.IsNaN(f) || math.IsInf(f, 0) || math.IsNaN(ts) || math.IsInf(ts, 0) {
				continue
			}
			sec, frac := math.Modf(ts)
			s.Points = append(s.Points, Point{T: time.Unix(int64(sec), int64(frac*1e9)), V: f})
		}
		out = append(out, s)
	}
	return out, nil
}

var legendRef = regexp.MustCompile(`\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`)

// Legend names a series as Grafana would: legendFormat with {{label}}
// replaced, else the label set, else the expression.
func Legend(format string, labels map[string]string, expr string) string {
	if format != "" && format != "__auto" {
		return strings.TrimSpace(legendRef.ReplaceAllStringFunc(format, func(m string) string {
			return labels[legendRef.FindStringSubmatch(m)[1]]
		}))
	}
	if len(labels) == 0 {
		return expr
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(labels["__name__"])
	b.WriteByte('{')
	first := true
	for _, k := range keys {
		if k == "__name__" {
			continue
		}
		if !first {
			b.WriteString(", ")
		}
		first = false
		fmt.Fprintf(&b, "%s=%q", k, labels[k])
	}
	b.WriteByte('}')
	return b.String()
}
