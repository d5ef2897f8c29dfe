package deploy_test

import (
	"slices"
	"testing"
)

func TestMetricNames(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`up`, []string{"up"}},
		{`sum by (service, route) (rate(http_requests_total{service="edge",code=~"5.."}[5m]))`, []string{"http_requests_total"}},
		{`1 - (sum(rate(x_bucket{le="0.5"}[5m])) / sum(rate(x_count[5m])))`, []string{"x_bucket", "x_count"}},
		{`slo:burn_rate:rate1h > 14.4 and slo:burn_rate:rate5m > 14.4`, []string{"slo:burn_rate:rate1h", "slo:burn_rate:rate5m"}},
		{`max by (instance) (cpu_usage_percent) / scalar(capacity:cpu_allocated:percent)`, []string{"capacity:cpu_allocated:percent", "cpu_usage_percent"}},
		{`a / on(slo, service) group_left() (1 - b)`, []string{"a", "b"}},
		{`vector(0.99)`, nil},
		{`predict_linear(m[7d], 30 * 86400) offset 1h`, []string{"m"}},
		{`rate(x{a="}{"}[$__rate_interval]) * $scale`, []string{"x"}},
		{`topk(10, sum by (rule) (increase(edge_verdicts_total[1h])))`, []string{"edge_verdicts_total"}},
		{`{__name__="y"}`, nil},
		{`1e3 * z + NaN - Inf`, []string{"z"}},
		{`count(q) without (le)`, []string{"q"}},
	}
	for _, tc := range tests {
		if got := MetricNames(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("MetricNames(%q) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}

func FuzzMetricNames(f *testing.F) {
	f.Add(`sum by (a) (rate(b{c="d"}[5m])) / on(e) group_left f`)
	f.Fuzz(func(t *testing.T, expr string) {
		for _, n := range MetricNames(expr) {
			if n == "" {
				t.Fatal("empty name")
			}
		}
	})
}

func BenchmarkMetricNames(b *testing.B) {
	expr := `1 - (sum(rate(http_request_duration_seconds_bucket{service="ai_service",route="/webhook",le="0.5"}[30d])) / sum(rate(http_request_duration_seconds_count{service="ai_service",route="/webhook"}[30d])))`
	b.ReportAllocs()
	for b.Loop() {
		MetricNames(expr)
	}
}
