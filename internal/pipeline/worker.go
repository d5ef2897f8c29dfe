package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scrapedefense/scrapedefense/internal/events"
	"github.com/scrapedefense/scrapedefense/internal/store"
	"github.com/scrapedefense/scrapedefense/internal/telemetry"
)

// WorkerOptions configure the consumers.
type WorkerOptions struct {
	Store    store.Store
	Scorer   Scorer
	Enforcer *Enforcer
	// Local, when set, carries events from senders in this process (the
	// edge): they are best effort by design (the edge drops rather than
	// waits), so they skip the durable queue and its disk writes.
	Local     *events.Queue
	Workers   int
	Batch     int
	Lease     time.Duration // how long a batch may take before it is redelivered
	Telemetry *telemetry.Telemetry
	Logger    *slog.Logger
}

// maxParallelEnforce bounds the verdicts of one batch carried out at once:
// their store writes then share disk syncs (the store's group commit).
const maxParallelEnforce = 16

// Workers consume the durable escalation queue (events accepted by the
// webhook) and the local queue (the edge's events): decode, score, enforce,
// ack. Durable delivery is at least once: a batch that is not acked (crash,
// SIGKILL) is scored again, which is harmless because enforcing a verdict
// twice leaves the same decision.
type Workers struct {
	o           WorkerOptions
	length      prometheus.Gauge
	localLength prometheus.Gauge // nil without a local queue
	dequeued    prometheus.Counter
	local       prometheus.Counter
	bad         prometheus.Counter
	latency     prometheus.Histogram
}

// NewWorkers registers the workers' metrics.
func NewWorkers(o WorkerOptions) *Workers {
	if o.Workers < 1 {
		o.Workers = 1
	}
	if o.Batch < 1 {
		o.Batch = 64
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
		local: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "escalation_local_events_total", Help: "Events from senders in this process (the edge) scored without the durable queue.",
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
	reg.MustRegister(w.dequeued, w.local, w.bad, w.latency)
	if o.Local != nil {
		w.localLength = o.Telemetry.QueueLength("local")
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "escalation_local_events_dropped_total",
			Help: "Events from senders in this process dropped because the workers were behind (the local queue was full).",
		}, func() float64 { return float64(o.Local.Dropped()) }))
	}
	return w
}

// Run runs the workers until ctx ends, and samples the queue length.
func (w *Workers) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for range w.o.Workers {
		wg.Go(func() { w.work(ctx) })
		if w.o.Local != nil {
			wg.Go(func() { w.workLocal(ctx) })
		}
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-t.C:
			if n, err := w.o.Store.QueueLen(ctx, Queue); err == nil {
				w.length.Set(float64(n))
			}
			if w.localLength != nil {
				w.localLength.Set(float64(w.o.Local.Len()))
			}
		}
	}
	wg.Wait()
}

func (w *Workers) work(ctx context.Context) {
	evs := make([]events.Event, 0, w.o.Batch)
	arrived := make([]time.Time, 0, w.o.Batch)
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
		evs, arrived = evs[:0], arrived[:0]
		ids := make([]string, 0, len(msgs))
		for _, m := range msgs {
			var env envelope
			if err := json.Unmarshal(m.Payload, &env); err != nil {
				w.bad.Inc()
				w.o.Logger.Warn("dropping undecodable queued event", "id", m.ID, "err", err)
			} else {
				evs = append(evs, env.Event)
				arrived = append(arrived, env.Received)
			}
			ids = append(ids, m.ID)
		}
		w.dequeued.Add(float64(len(evs)))
		if !w.handle(ctx, evs, arrived) {
			return // not acked: redelivered after the lease or a restart
		}
		if err := w.o.Store.Ack(context.WithoutCancel(ctx), Queue, ids...); err != nil {
			w.o.Telemetry.Error("queue")
			w.o.Logger.Error("ack failed; events will be scored again", "err", err)
		}
	}
}

func (w *Workers) workLocal(ctx context.Context) {
	buf := make([]events.Event, w.o.Batch)
	arrived := make([]time.Time, w.o.Batch)
	for {
		n, err := w.o.Local.PopBatch(ctx, buf)
		if err != nil {
			return
		}
		now := time.Now()
		for i := range n {
			arrived[i] = now
		}
		w.local.Add(float64(n))
		w.handle(ctx, buf[:n], arrived[:n])
		clear(buf[:n])
	}
}

// handle scores a batch in order (behaviour windows depend on it) and
// carries out the verdicts concurrently, so that their store writes share
// disk syncs. It reports false when ctx ended before the batch was done.
func (w *Workers) handle(ctx context.Context, evs []events.Event, arrived []time.Time) bool {
	verdicts := make([]events.Verdict, len(evs))
	for i := range evs {
		if ctx.Err() != nil {
			return false
		}
		verdicts[i] = w.o.Scorer.Score(ctx, evs[i])
	}
	sem := make(chan struct{}, maxParallelEnforce)
	var wg sync.WaitGroup
	for i := range evs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := w.o.Enforcer.Apply(ctx, evs[i], verdicts[i]); err != nil && ctx.Err() == nil {
				w.o.Telemetry.Error("enforce")
				w.o.Logger.Error("enforcing a verdict failed", "client_ip", verdicts[i].ClientIP, "action", verdicts[i].Action, "err", err)
			}
			if !arrived[i].IsZero() {
				w.latency.Observe(time.Since(arrived[i]).Seconds())
			}
		})
	}
	wg.Wait()
	return ctx.Err() == nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
