package classifier

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scrapedefense/scrapedefense/internal/telemetry"
)

// Errors returned by a guarded classifier without calling it.
var (
	// ErrBusy means MaxConcurrent calls are already in flight.
	ErrBusy = errors.New("classifier: too many calls in flight")
	// ErrOpen means the circuit breaker is open after repeated failures.
	ErrOpen = errors.New("classifier: circuit breaker open")
	// ErrTimeout means the call did not finish within the budget.
	ErrTimeout = errors.New("classifier: time budget exceeded")
)

// Defaults for GuardOptions.
const (
	DefaultBudget          = 800 * time.Millisecond
	DefaultMaxConcurrent   = 4
	DefaultBreakerFailures = 5
	DefaultBreakerCooldown = 30 * time.Second
)

// GuardOptions configure Guard. Zero values take the defaults.
type GuardOptions struct {
	// Budget bounds one call (default 800ms), whatever the caller's
	// context allows.
	Budget time.Duration
	// MaxConcurrent bounds calls in flight (default 4); more are refused
	// at once with ErrBusy rather than queued.
	MaxConcurrent int
	// BreakerFailures consecutive failures or timeouts open the breaker
	// (default 5); BreakerCooldown later (default 30s) one probe call is
	// let through, and its success closes the breaker.
	BreakerFailures int
	BreakerCooldown time.Duration
	// Registerer receives the metrics; nil keeps them unregistered.
	Registerer prometheus.Registerer
	// Now is the clock for the breaker (default time.Now).
	Now func() time.Time
}

func (o GuardOptions) withDefaults() GuardOptions {
	if o.Budget <= 0 {
		o.Budget = DefaultBudget
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = DefaultMaxConcurrent
	}
	if o.BreakerFailures <= 0 {
		o.BreakerFailures = DefaultBreakerFailures
	}
	if o.BreakerCooldown <= 0 {
		o.BreakerCooldown = DefaultBreakerCooldown
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Results counted in classifier_requests_total.
const (
	resultOK      = "ok"
	resultError   = "error"
	resultTimeout = "timeout"
	resultBusy    = "busy"
	resultOpen    = "open"
)

// Guarded is a Classifier wrapped by Guard.
type Guarded struct {
	next  Classifier
	o     GuardOptions
	slots chan struct{}

	mu       sync.Mutex
	failures int       // consecutive
	openedAt time.Time // zero while closed
	probing  bool      // a half-open probe is in flight

	requests *prometheus.CounterVec
	cost     prometheus.Counter
	duration prometheus.Histogram
	open     prometheus.Gauge
}

// Guard wraps c with a time budget, a concurrency cap and a circuit
// breaker, and exports its metrics.
func Guard(c Classifier, opts GuardOptions) *Guarded {
	o := opts.withDefaults()
	g := &Guarded{
		next:  c,
		o:     o,
		slots: make(chan struct{}, o.MaxConcurrent),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "classifier_requests_total",
			Help: "Calls to the external classifier by result (ok, error, timeout, busy, open).",
		}, []string{"result"}),
		cost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "classifier_cost_total",
			Help: "Accumulated cost reported for classifier calls, in the configured currency.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "classifier_duration_seconds",
			Help:    "Time spent in classifier calls that were attempted.",
			Buckets: telemetry.DurationBuckets,
		}),
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "classifier_breaker_open",
			Help: "1 while the classifier's circuit breaker is open, else 0.",
		}),
	}
	for _, r := range []string{resultOK, resultError, resultTimeout, resultBusy, resultOpen} {
		g.requests.WithLabelValues(r)
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(g.requests, g.cost, g.duration, g.open)
	}
	return g
}

type answer struct {
	op  Opinion
	err error
}

// Classify implements Classifier. It returns within the budget even if the
// wrapped classifier ignores its context; such a call keeps its
// concurrency slot until it really returns, so a hanging backend cannot
// pile up goroutines beyond MaxConcurrent.
func (g *Guarded) Classify(ctx context.Context, q Query) (Opinion, error) {
	probe, err := g.admit()
	if err != nil {
		g.requests.WithLabelValues(resultOpen).Inc()
		return Opinion{}, err
	}
	select {
	case g.slots <- struct{}{}:
	default:
		if probe {
			g.endProbe()
		}
		g.requests.WithLabelValues(resultBusy).Inc()
		return Opinion{}, ErrBusy
	}

	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, g.o.Budget)
	defer cancel() // only after the result is classified, see below
	start := time.Now()
	done := make(chan answer, 1)
	go func() {
		defer func() { <-g.slots }()
		op, err := g.next.Classify(ctx, q)
		done <- answer{op, err}
	}()
	var a answer
	select {
	case a = <-done:
	case <-ctx.Done():
		a.err = ctx.Err()
	}
	g.duration.Observe(time.Since(start).Seconds())

	switch {
	case a.err == nil:
		g.succeeded()
		if a.op.Cost > 0 && !math.IsInf(a.op.Cost, 0) {
			g.cost.Add(a.op.Cost)
		}
		g.requests.WithLabelValues(resultOK).Inc()
		return a.op, nil
	case ctx.Err() != nil:
		g.requests.WithLabelValues(resultTimeout).Inc()
		if parent.Err() != nil {
			// The caller gave up first: not the classifier's fault.
			g.release(probe)
		} else {
			g.failed()
		}
		return Opinion{}, errors.Join(ErrTimeout, ctx.Err())
	default:
		g.failed()
		g.requests.WithLabelValues(resultError).Inc()
		return Opinion{}, a.err
	}
}

// admit decides whether a call may go ahead; probe is true for the single
// half-open probe.
func (g *Guarded) admit() (probe bool, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.openedAt.IsZero() {
		return false, nil
	}
	if g.probing || g.o.Now().Sub(g.openedAt) < g.o.BreakerCooldown {
		return false, ErrOpen
	}
	g.probing = true
	return true, nil
}

func (g *Guarded) endProbe() {
	g.mu.Lock()
	g.probing = false
	g.mu.Unlock()
}

func (g *Guarded) release(probe bool) {
	if probe {
		g.endProbe()
	}
}

func (g *Guarded) succeeded() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.failures = 0
	g.probing = false
	if !g.openedAt.IsZero() {
		g.openedAt = time.Time{}
		g.open.Set(0)
	}
}

func (g *Guarded) failed() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.failures++
	if g.probing || g.failures >= g.o.BreakerFailures {
		// A failed probe re-opens for a full cooldown.
		g.probing = false
		g.openedAt = g.o.Now()
		g.open.Set(1)
	}
}
