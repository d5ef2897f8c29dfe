package edge

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/scrapedefense/scrapedefense/internal/ratelimit"
	"github.com/scrapedefense/scrapedefense/internal/upstream"
)

// upstreamCollector exports the upstream connection pool.
type upstreamCollector struct{ t *upstream.Transport }

var (
	upstreamConnsDesc = prometheus.NewDesc("upstream_connections",
		"Connections to the upstream by state.", []string{"state"}, nil)
	upstreamEventsDesc = prometheus.NewDesc("upstream_connection_events_total",
		"Upstream connection pool events: dial (new connection), reuse (from the pool), stale_retry (pooled connection closed by the upstream, retried), fallback (request sent through the standard transport).", []string{"event"}, nil)
)

func (c *upstreamCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- upstreamConnsDesc
	ch <- upstreamEventsDesc
}

func (c *upstreamCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.t.Stats()
	ch <- prometheus.MustNewConstMetric(upstreamConnsDesc, prometheus.GaugeValue, float64(st.Idle), "idle")
	ch <- prometheus.MustNewConstMetric(upstreamConnsDesc, prometheus.GaugeValue, float64(st.Open-st.Idle), "busy")
	for ev, n := range map[string]uint64{"dial": st.Dials, "reuse": st.Reuses, "stale_retry": st.StaleRetries, "fallback": st.Fallbacks} {
		ch <- prometheus.MustNewConstMetric(upstreamEventsDesc, prometheus.CounterValue, float64(n), ev)
	}
}

// limiterCollector exports the rate limiter's fixed tables: how full they
// are and how often new clients pushed others out.
type limiterCollector struct{ l *ratelimit.Limiter }

var (
	limiterSlotsDesc = prometheus.NewDesc("ratelimit_table_slots",
		"Entries per rate-limit table (fixed at start).", nil, nil)
	limiterUsedDesc = prometheus.NewDesc("ratelimit_table_used",
		"Rate-limit table entries in use.", []string{"table"}, nil)
	limiterEvictionsDesc = prometheus.NewDesc("ratelimit_evictions_total",
		"Rate-limit entries that were still limiting a client when a new client took their place.", []string{"table"}, nil)
	limiterCollisionsDesc = prometheus.NewDesc("ratelimit_collisions_total",
		"New clients that found their rate-limit bucket full.", []string{"table"}, nil)
)

func (c *limiterCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- limiterSlotsDesc
	ch <- limiterUsedDesc
	ch <- limiterEvictionsDesc
	ch <- limiterCollisionsDesc
}

func (c *limiterCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.l.Stats()
	ch <- prometheus.MustNewConstMetric(limiterSlotsDesc, prometheus.GaugeValue, float64(st.Slots))
	for name, t := range map[string]ratelimit.TableStats{"ip": st.IP, "subnet": st.Subnet} {
		ch <- prometheus.MustNewConstMetric(limiterUsedDesc, prometheus.GaugeValue, float64(t.Used), name)
		ch <- prometheus.MustNewConstMetric(limiterEvictionsDesc, prometheus.CounterValue, float64(t.Evictions), name)
		ch <- prometheus.MustNewConstMetric(limiterCollisionsDesc, prometheus.CounterValue, float64(t.Collisions), name)
	}
}
