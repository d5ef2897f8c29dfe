package tarpit

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the tarpit's own series; HTTP and error series come from
// telemetry. No label carries a path: the maze has infinitely many.
type metrics struct {
	entries    prometheus.Counter
	hops       prometheus.Counter
	bytesSent  prometheus.Counter
	timeWasted prometheus.Counter
	decisions  prometheus.Counter
	degraded   *prometheus.CounterVec
	ended      *prometheus.CounterVec
	bombs      prometheus.Counter
	degradedBy map[string]prometheus.Counter
	endedBy    map[string]prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, r *Role) *metrics {
	m := &metrics{
		entries: prometheus.NewCounter(prometheus.CounterOpts{Name: "tarpit_entries_total",
			Help: "Requests that entered the maze from outside it (trap links, tarpit verdicts)."}),
		hops: prometheus.NewCounter(prometheus.CounterOpts{Name: "tarpit_hops_total",
			Help: "Maze requests (pages and decoy assets)."}),
		bytesSent: prometheus.NewCounter(prometheus.CounterOpts{Name: "tarpit_bytes_sent_total",
			Help: "Bytes dripped to clients."}),
		timeWasted: prometheus.NewCounter(prometheus.CounterOpts{Name: "tarpit_time_wasted_seconds_total",
			Help: "Seconds clients spent held in drip sessions."}),
		decisions: prometheus.NewCounter(prometheus.CounterOpts{Name: "tarpit_block_decisions_total",
			Help: "Block decisions written after the hop limit."}),
		degraded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tarpit_degraded_total",
			Help: "Requests given a cheap answer instead of a drip, by the budget that was exhausted."}, []string{"reason"}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tarpit_sessions_ended_total",
			Help: "Drip sessions ended, by reason (write_timeout counts clients that stopped reading)."}, []string{"reason"}),
		bombs: prometheus.NewCounter(prometheus.CounterOpts{Name: "tarpit_gzip_traps_total",
			Help: "Compressed-response traps served."}),
	}
	m.degradedBy = map[string]prometheus.Counter{}
	for _, k := range []string{reasonConns, reasonSubnet, reasonBandwidth, reasonCPU, reasonBadPath} {
		m.degradedBy[k] = m.degraded.WithLabelValues(k)
	}
	m.endedBy = map[string]prometheus.Counter{}
	for _, k := range []string{endComplete, endMaxSession, endWriteTimeout, endClientGone, endShutdown} {
		m.endedBy[k] = m.ended.WithLabelValues(k)
	}
	budget := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	reg.MustRegister(m.entries, m.hops, m.bytesSent, m.timeWasted, m.decisions, m.degraded, m.ended, m.bombs,
		budget("tarpit_active_connections", "Drip connections held now.",
			func() float64 { return float64(r.conns.active.Load()) }),
		budget("tarpit_budget_connections_limit", "Cap on concurrent drip connections.",
			func() float64 { return float64(r.cfg.MaxConns) }),
		budget("tarpit_budget_subnets_active", "Subnets (/24, /64) with at least one drip connection.",
			func() float64 { return float64(r.conns.subnetCount()) }),
		budget("tarpit_budget_bandwidth_available_bytes", "Bytes left in the global send bucket.",
			func() float64 { return r.bucket.available() }),
		budget("tarpit_budget_bandwidth_limit_bytes_per_second", "Cap on bytes/s across all drip connections.",
			func() float64 { return float64(r.cfg.MaxBytesPerSecond) }),
		budget("tarpit_budget_generations_active", "Page generations running now.",
			func() float64 { return float64(len(r.gens)) }),
		budget("tarpit_budget_generations_limit", "Cap on concurrent page generations.",
			func() float64 { return float64(cap(r.gens)) }),
	)
	return m
}
