package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scrapedefense/scrapedefense/internal/store"
	"github.com/scrapedefense/scrapedefense/internal/telemetry"
)

// WorkerOptions configure the queue consumers.
type WorkerOptions struct {
	Store     store.Store
	Scorer    Scorer
	Enforcer  *Enforcer
	Workers   int
	Batch     int
	Lease     time.Duration // how long a batch may take before it is redelivered
	Telemetry *telemetry.Telemetry
	Logger    *slog.Logger
}

// Workers consume the escalation queue: decode, score, enforce, ack.
// Delivery is at least once: a batch that is not acked (crash, SIGKILL)
// is scored again, which is harmless because enforcing a verdict twice
// leaves the same decision.
type Workers struct {
	o        WorkerOptions
	length   prometheus.Gauge
	dequeued prometheus.Counter
	bad      prometheus.Counter
	latency  prometheus.Histogram
}

// NewWorkers registers the workers' metrics.
func NewWorkers(o WorkerOptions) *Workers {
	if o.Workers < 1 {
		o.Workers = 1
	}
	if o.Lease <= 0 {
		o.Lease = time.Minute
	}
	reg := o.Telemetry.Registerer()
	w := &Workers{
		o:      o,
		length: o.Telemetry.QueueLength(Queue),
		dequeued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "queue_dequeued_total", Help: "Events taken from the durable escalation queue and scored.",
			ConstLabels: prometheus.Labels{"queue": Queue},
		}),
		bad: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "queue_bad_messages_total", Help: "Queued messages that could not be decoded; they are dropped.",
			ConstLabels: prometheus.Labels{"queue": Queue},
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "escalation_queue_to_verdict_seconds",
			Help:    "Time from an event's arrival at the intake to its enforced verdict.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 1.5, 2, 5, 10, 30},
		}),
	}
	reg.MustRegister(w.dequeued, w.bad, w.latency)
	return w
}

// Run runs the workers until ctx ends, and samples the queue length.
func (w *Workers) Run(ctx context.Context) {
	done := make(chan struct{})
	for range w.o.Workers {
		go func() { defer func() { done <- struct{}{} }(); w.work(ctx) }()
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for running := w.o.Workers; running > 0; {
		select {
		case <-done:
			running--
		case <-t.C:
			if n, err := w.o.Store.QueueLen(ctx, Queue); err == nil {
				w.length.Set(float64(n))
			}
		}
	}
}

func (w *Workers) work(ctx context.Context) {
	for ctx.Err() == nil {
		msgs, err := w.o.Store.Dequeue(ctx, Queue, w.o.Batch, w.o.Lease)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, store.ErrClosed) {
				return
			}
			w.o.Telemetry.Error("queue")
			w.o.Logger.Error("dequeue failed", "err", err)
			sleep(ctx, time.Second)
			continue
		}
		ids := make([]string, 0, len(msgs))
		for _, m := range msgs {
			if w.handle(ctx, m) {
				ids = append(ids, m.ID)
			}
		}
		// Ack even when ctx ended mid-batch for the messages handled; the
		// rest are redelivered after the lease or a restart.
		if err := w.o.Store.Ack(context.WithoutCancel(ctx), Queue, ids...); err != nil {
			w.o.Telemetry.Error("queue")
			w.o.Logger.Error("ack failed; events will be scored again", "err", err)
		}
	}
}

// handle scores and enforces one message and reports whether it is done
// with (a message that cannot be decoded is done: retrying cannot help).
func (w *Workers) handle(ctx context.Context, m store.Message) bool {
	var env envelope
	if err := json.Unmarshal(m.Payload, &env); err != nil {
		w.bad.Inc()
		w.o.Logger.Warn("dropping undecodable queued event", "id", m.ID, "err", err)
		return true
	}
	if ctx.Err() != nil {
		return false
	}
	w.dequeued.Inc()
	ev := env.Event
	v := w.o.Scorer.Score(ctx, ev)
	if err := w.o.Enforcer.Apply(ctx, ev, v); err != nil {
		w.o.Telemetry.Error("enforce")
		w.o.Logger.Error("enforcing a verdict failed", "client_ip", v.ClientIP, "action", v.Action, "err", err)
		return ctx.Err() == nil
	}
	if !env.Received.IsZero() {
		w.latency.Observe(time.Since(env.Received).Seconds())
	}
	return true
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
