package probe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// MaxTargets bounds how many targets one Prober checks; targets come from
// configuration, and each one is a pair of series.
const MaxTargets = 256

// Metrics exports the latest result per target.
type Metrics struct {
	success  *prometheus.GaugeVec
	duration *prometheus.GaugeVec
}

// NewMetrics registers probe_success{target} and
// probe_duration_seconds{target} on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		success: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "probe_success",
			Help: "1 if the last probe of the target succeeded, 0 if it failed.",
		}, []string{"target"}),
		duration: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "probe_duration_seconds",
			Help: "How long the last probe of the target took.",
		}, []string{"target"}),
	}
	for _, c := range []prometheus.Collector{m.success, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register probe metrics: %w", err)
		}
	}
	return m, nil
}

// Record exports results. An unknown result (the probe did not run) leaves
// the previous values in place rather than claiming success or failure.
func (m *Metrics) Record(results []Result) {
	for _, r := range results {
		if r.Status == StatusUnknown {
			continue
		}
		ok := 0.0
		if r.Success {
			ok = 1
		}
		m.success.WithLabelValues(r.Target.Name).Set(ok)
		m.duration.WithLabelValues(r.Target.Name).Set(r.Duration.Seconds())
	}
}

// Prober probes its targets every interval and exports the results.
type Prober struct {
	targets  []Target
	client   Doer
	interval time.Duration
	metrics  *Metrics
	logger   *slog.Logger

	mu   sync.Mutex
	last []Result
}

// NewProber checks the targets and registers the metrics on reg.
func NewProber(targets []Target, client Doer, interval time.Duration, reg prometheus.Registerer, logger *slog.Logger) (*Prober, error) {
	if len(targets) == 0 {
		return nil, errors.New("probe: no targets")
	}
	if len(targets) > MaxTargets {
		return nil, fmt.Errorf("probe: %d targets, at most %d", len(targets), MaxTargets)
	}
	if interval <= 0 {
		return nil, fmt.Errorf("probe: interval %s must be positive", interval)
	}
	seen := make(map[string]bool, len(targets))
	for _, t := range targets {
		if t.Name == "" || t.URL == "" {
			return nil, fmt.Errorf("probe: target %q needs a name and a URL", t.Name)
		}
		if seen[t.Name] {
			return nil, fmt.Errorf("probe: duplicate target name %q", t.Name)
		}
		seen[t.Name] = true
	}
	m, err := NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Prober{targets: append([]Target(nil), targets...), client: client, interval: interval, metrics: m, logger: logger}, nil
}

// Run probes at once and then every interval until ctx ends.
func (p *Prober) Run(ctx context.Context) error {
	tick := time.NewTicker(p.interval)
	defer tick.Stop()
	for {
		p.probe(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func (p *Prober) probe(ctx context.Context) {
	results := Run(ctx, p.targets, p.client)
	p.metrics.Record(results)
	for _, r := range results {
		if r.Status == StatusFail {
			p.logger.Warn("probe failed", "target", r.Target.Name, "url", r.Target.URL, "reason", r.Reason)
		}
	}
	p.mu.Lock()
	p.last = results
	p.mu.Unlock()
}

// Last returns the results of the latest round (nil before the first).
func (p *Prober) Last() []Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Result(nil), p.last...)
}
