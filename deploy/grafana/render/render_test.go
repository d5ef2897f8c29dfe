package main

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const tinyDashboard = `{
  "title": "tiny",
  "templating": {"list": [{"name": "service", "current": {"value": "edge"}}]},
  "panels": [
    {"type": "stat", "title": "Big number", "gridPos": {"h": 4, "w": 8, "x": 0, "y": 0},
     "fieldConfig": {"defaults": {"unit": "percentunit"}},
     "targets": [{"expr": "up{service=\"$service\"}", "legendFormat": "{{service}}"}]},
    {"type": "row", "title": "a row", "gridPos": {"h": 1, "w": 24, "x": 0, "y": 4}, "panels": [
      {"type": "timeseries", "title": "Lines", "gridPos": {"h": 8, "w": 16, "x": 8, "y": 0},
       "targets": [{"expr": "rate(x[$__rate_interval])", "legendFormat": "{{service}} → {{code}}"}]}
    ]},
    {"type": "bargauge", "title": "Bars", "gridPos": {"h": 6, "w": 12, "x": 0, "y": 8},
     "targets": [{"expr": "topk(3, y)"}]},
    {"type": "table", "title": "Table", "gridPos": {"h": 6, "w": 6, "x": 12, "y": 8},
     "targets": [{"expr": "info"}]},
    {"type": "timeseries", "title": "Nothing here", "gridPos": {"h": 6, "w": 6, "x": 18, "y": 8},
     "targets": [{"expr": "absent_metric"}]},
    {"type": "timeseries", "title": "Broken", "gridPos": {"h": 6, "w": 6, "x": 18, "y": 14},
     "targets": [{"expr": "broken("}]}
  ]
}`

// fakeQuery answers with synthetic series, records what it was asked, and
// fails on "broken(" the way Prometheus would reject a bad query.
func fakeQuery(asked *[]string) QueryRange {
	return func(_ context.Context, expr string, start, end time.Time, step time.Duration) ([]Series, error) {
		*asked = append(*asked, expr)
		switch {
		case strings.HasPrefix(expr, "broken"):
			return nil, errors.New("bad_data: parse error")
		case expr == "absent_metric":
			return nil, nil
		}
		var out []Series
		for i := range 3 {
			s := Series{Labels: map[string]string{"service": "edge", "code": string(rune('2' + i))}}
			for t := start; !t.After(end); t = t.Add(step) {
				x := t.Sub(start).Seconds()
				s.Points = append(s.Points, Point{T: t, V: 0.5 + 0.4*math.Sin(x/30+float64(i))})
			}
			out = append(out, s)
		}
		return out, nil
	}
}

func TestRenderTinyDashboard(t *testing.T) {
	d, err := ParseDashboard([]byte(tinyDashboard))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Panels) != 6 {
		t.Fatalf("got %d panels after flattening the row, want 6", len(d.Panels))
	}
	end := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	window, step := 5*time.Minute, 5*time.Second
	var asked []string
	o := Options{
		Query: fakeQuery(&asked), Start: end.Add(-window), End: end, Step: step,
		Vars: d.Variables(window, step), Width: 800, RowHeight: 20,
	}
	img, err := Render(context.Background(), d, o)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	decoded, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	// 20 grid rows (the lowest panel ends at y=14+6) of 20 px, plus the header and margin.
	want := 800*1000 + headerHeight + 20*20 + margin
	if got := decoded.Bounds().Dx()*1000 + decoded.Bounds().Dy(); got != want {
		t.Errorf("size %v, want 800x%d", decoded.Bounds().Size(), want-800*1000)
	}
	for _, want := range []string{`up{service="edge"}`, "rate(x[20s])"} {
		found := false
		for _, a := range asked {
			found = found || a == want
		}
		if !found {
			t.Errorf("query %q not asked; asked %q", want, asked)
		}
	}
}

func TestRenderCancelled(t *testing.T) {
	d, err := ParseDashboard([]byte(tinyDashboard))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	end := time.Now()
	var asked []string
	_, err = Render(ctx, d, Options{Query: fakeQuery(&asked), Start: end.Add(-time.Minute), End: end, Step: time.Second, Width: 400, RowHeight: 10})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestShippedDashboardsExpand checks that every expression of the shipped
// dashboards has all its variables substituted, so no query reaches
// Prometheus with a stray $.
func TestShippedDashboardsExpand(t *testing.T) {
	files, err := filepath.Glob("../dashboards/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards found: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			d, err := ParseDashboard(b)
			if err != nil {
				t.Fatal(err)
			}
			vars := d.Variables(time.Hour, 15*time.Second)
			n := 0
			for _, p := range d.Panels {
				for _, tg := range p.Targets {
					got, err := ExpandVariables(tg.Expr, vars)
					if err != nil {
						t.Errorf("panel %q: %v", p.Title, err)
						continue
					}
					if strings.Contains(got, "$") {
						t.Errorf("panel %q: unsubstituted $ in %q", p.Title, got)
					}
					n++
				}
			}
			if n == 0 {
				t.Error("no expressions")
			}
		})
	}
}

func TestExpandVariables(t *testing.T) {
	vars := map[string]string{"service": "edge", "__rate_interval": "1m"}
	tests := []struct {
		expr, want string
		wantErr    bool
	}{
		{expr: `rate(x{service="$service"}[$__rate_interval])`, want: `rate(x{service="edge"}[1m])`},
		{expr: `x{service="${service}"}`, want: `x{service="edge"}`},
		{expr: `x{service="${service:regex}"}`, want: `x{service="edge"}`},
		{expr: `x{service="[[service]]"}`, want: `x{service="edge"}`},
		{expr: `x{job="$job"}`, wantErr: true},
		{expr: `x{a="$"}`, wantErr: true},
		{expr: `up`, want: `up`},
	}
	for _, tt := range tests {
		got, err := ExpandVariables(tt.expr, vars)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ExpandVariables(%q) = %q, %v; want %q, error %v", tt.expr, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestLegend(t *testing.T) {
	labels := map[string]string{"__name__": "up", "service": "edge", "instance": "a:1"}
	tests := []struct{ format, want string }{
		{"{{service}} {{ instance }}", "edge a:1"},
		{"{{missing}} x", "x"},
		{"", `up{instance="a:1", service="edge"}`},
		{"__auto", `up{instance="a:1", service="edge"}`},
	}
	for _, tt := range tests {
		if got := Legend(tt.format, labels, "expr"); got != tt.want {
			t.Errorf("Legend(%q) = %q, want %q", tt.format, got, tt.want)
		}
	}
	if got := Legend("", nil, "vector(1)"); got != "vector(1)" {
		t.Errorf("empty labels: %q", got)
	}
}

func TestFormatValue(t *testing.T) {
	tests := []struct {
		v    float64
		unit string
		want string
	}{
		{0.9987, "percentunit", "99.87%"},
		{1, "percentunit", "100%"},
		{42.5, "percent", "42.5%"},
		{3 << 20, "bytes", "3 MiB"},
		{0.0123, "s", "12.3 ms"},
		{2.5e-5, "s", "25 us"},
		{12345, "", "12.35k"},
		{0, "", "0"},
		{1.5, "reqps", "1.5 req/s"},
	}
	for _, tt := range tests {
		if got := formatValue(tt.v, tt.unit); got != tt.want {
			t.Errorf("formatValue(%v, %q) = %q, want %q", tt.v, tt.unit, got, tt.want)
		}
	}
}

func TestDecodeQueryRange(t *testing.T) {
	body := `{"status":"success","data":{"resultType":"matrix","result":[
	  {"metric":{"slo":"edge"},"values":[[1700000000,"0.5"],[1700000001.5,"NaN"],[1700000002,"+Inf"],[1700000003,"1"]]}]}}`
	ss, err := DecodeQueryRange([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 1 || len(ss[0].Points) != 2 || ss[0].Points[1].V != 1 || ss[0].Labels["slo"] != "edge" {
		t.Fatalf("got %+v", ss)
	}
	for _, bad := range []string{
		`{"status":"error","errorType":"bad_data","error":"parse error"}`,
		`{"status":"success","data":{"resultType":"vector","result":[]}}`,
		`{"status":"success","data":{"resultType":"matrix","result":[{"values":[["x","1"]]}]}}`,
		`{"status":"success","data":{"resultType":"matrix","result":[{"values":[[1,"one"]]}]}}`,
		`not json`,
	} {
		if _, err := DecodeQueryRange([]byte(bad)); err == nil {
			t.Errorf("DecodeQueryRange(%s): no error", bad)
		}
	}
}

func TestRewriteRanges(t *testing.T) {
	m, err := parseRanges("5m=20s,1h=60s")
	if err != nil {
		t.Fatal(err)
	}
	var got string
	q := rewriteRanges(func(_ context.Context, expr string, _, _ time.Time, _ time.Duration) ([]Series, error) {
		got = expr
		return nil, nil
	}, m)
	_, _ = q(context.Background(), `rate(a[5m]) / increase(b[1h]) + max_over_time(c[30m:1m]) + d[5m:1m]`, time.Time{}, time.Time{}, time.Second)
	if want := `rate(a[20s]) / increase(b[60s]) + max_over_time(c[30m:1m]) + d[20s:1m]`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if _, err := parseRanges("5m"); err == nil {
		t.Error("parseRanges(5m): no error")
	}
}

func BenchmarkRender(b *testing.B) {
	d, err := ParseDashboard([]byte(tinyDashboard))
	if err != nil {
		b.Fatal(err)
	}
	end := time.Now()
	var asked []string
	o := Options{Query: fakeQuery(&asked), Start: end.Add(-time.Hour), End: end, Step: 15 * time.Second,
		Vars: d.Variables(time.Hour, 15*time.Second), Width: 1600, RowHeight: 30}
	b.ReportAllocs()
	for b.Loop() {
		asked = asked[:0]
		if _, err := Render(context.Background(), d, o); err != nil {
			b.Fatal(err)
		}
	}
}
