package edge

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/scrapedefense/scrapedefense/internal/ratelimit"
)

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
