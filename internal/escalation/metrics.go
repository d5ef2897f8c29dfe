package escalation

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scrapedefense/scrapedefense/internal/telemetry"
)

type metrics struct {
	scored   prometheus.Counter
	verdicts [len(ladder)]prometheus.Counter
	decision prometheus.Observer
	stopped  prometheus.Counter // stage="heuristics", the one stage that stops early
	grey     map[string]prometheus.Counter
}

// newMetrics registers the engine's metrics on reg (a private registry when
// nil). Label values come from fixed sets, resolved once here.
func newMetrics(reg prometheus.Registerer, e *Engine) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	scored := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "escalation_events_scored_total",
		Help: "Events scored by the escalation engine.",
	})
	verdicts := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "escalation_verdicts_total",
		Help: "Verdicts by action.",
	}, []string{"action"})
	decision := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "escalation_decision_seconds",
		Help:    "Time to score one event, grey zone included.",
		Buckets: telemetry.DurationBuckets,
	})
	stopped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "escalation_stage_stopped_total",
		Help: "Verdicts decided early, by the stage after which scoring stopped.",
	}, []string{"stage"})
	grey := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "escalation_greyzone_total",
		Help: "Grey-zone consultations by result (ok, timeout, error, busy, invalid).",
	}, []string{"result"})
	collectors := []prometheus.Collector{scored, verdicts, decision, stopped, grey}
	for _, w := range []struct {
		name string
		t    *table
	}{{"ip", e.ips}, {"subnet", e.subnets}, {"fingerprint", e.fingerprints}} {
		t := w.t
		collectors = append(collectors,
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name:        "escalation_window_evictions_total",
				Help:        "Behaviour window entries evicted to stay within the memory bound, by window.",
				ConstLabels: prometheus.Labels{"window": w.name},
			}, func() float64 { return float64(t.evictions.Load()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name:        "escalation_window_entries",
				Help:        "Behaviour window entries held, by window.",
				ConstLabels: prometheus.Labels{"window": w.name},
			}, func() float64 { return float64(t.entries.Load()) }),
		)
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register escalation metrics: %w", err)
		}
	}
	m := &metrics{
		scored:   scored,
		decision: decision,
		stopped:  stopped.WithLabelValues(StageHeuristics),
		grey:     make(map[string]prometheus.Counter),
	}
	for i, a := range ladder {
		m.verdicts[i] = verdicts.WithLabelValues(a)
	}
	for _, r := range []string{greyOK, greyTimeout, greyError, greyBusy, greyInvalid} {
		m.grey[r] = grey.WithLabelValues(r)
	}
	return m, nil
}
