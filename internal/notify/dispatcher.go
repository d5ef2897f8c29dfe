package notify

import (
	"container/list"
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scrapedefense/scrapedefense/internal/outbound"
)

// Defaults for DispatcherOptions.
const (
	DefaultWindow       = 5 * time.Minute
	DefaultQueueSize    = 1024
	DefaultMaxKeys      = 10000
	DefaultRetries      = 3
	DefaultRetryBase    = time.Second
	DefaultSendTimeout  = 15 * time.Second
	DefaultSampleSize   = 5
	DefaultChannelQueue = 64
)

// DispatcherOptions configure a Dispatcher. Zero values take the defaults.
type DispatcherOptions struct {
	// MinSeverity drops alerts below it (default Info: everything).
	MinSeverity Severity
	// Window is the aggregation window per key (default 5m).
	Window time.Duration
	// QueueSize bounds alerts waiting for the worker (default 1024).
	QueueSize int
	// MaxKeys bounds the keys with an open window (default 10000); past
	// it the oldest window is closed early.
	MaxKeys int
	// SampleSize bounds the alerts carried in a summary (default 5).
	SampleSize int
	// Retries is the number of delivery attempts per batch and channel
	// (default 3); RetryBase the first backoff (default 1s).
	Retries   int
	RetryBase time.Duration
	// SendTimeout bounds one delivery attempt (default 15s).
	SendTimeout time.Duration
	// ChannelQueue bounds batches waiting per channel (default 64): a
	// slow channel drops its own batches without delaying the others.
	ChannelQueue int
	Logger       *slog.Logger
	// Registerer receives the metrics; nil keeps them unregistered.
	Registerer prometheus.Registerer
	// QueueLength, if set, tracks the alert queue (pass
	// telemetry.QueueLength("alerts")).
	QueueLength prometheus.Gauge
	// Now is the clock (default time.Now); tests inject one.
	Now func() time.Time
}

func (o DispatcherOptions) withDefaults() DispatcherOptions {
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	if o.SampleSize <= 0 {
		o.SampleSize = DefaultSampleSize
	}
	if o.Retries <= 0 {
		o.Retries = DefaultRetries
	}
	if o.RetryBase <= 0 {
		o.RetryBase = DefaultRetryBase
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = DefaultSendTimeout
	}
	if o.ChannelQueue <= 0 {
		o.ChannelQueue = DefaultChannelQueue
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Dispatcher fans alerts out to notifiers with per-key aggregation. Notify
// may be called from any goroutine; Run must be running for delivery.
type Dispatcher struct {
	o        DispatcherOptions
	queue    chan Alert
	channels []*channel
	sent     *prometheus.CounterVec
	dropped  prometheus.Counter // alerts refused by a full queue
	suppress prometheus.Counter
	evicted  prometheus.Counter
	queueLen prometheus.Gauge
	windows  map[string]*list.Element // of *window, oldest first
	order    *list.List
	running  atomic.Bool
}

type channel struct {
	n     Notifier
	queue chan Batch
}

// window is the aggregation state of one key.
type window struct {
	key    string
	opened time.Time
	batch  Batch // the alerts after the first
}

// NewDispatcher builds a dispatcher for the notifiers.
func NewDispatcher(opts DispatcherOptions, notifiers ...Notifier) *Dispatcher {
	o := opts.withDefaults()
	d := &Dispatcher{
		o:       o,
		queue:   make(chan Alert, o.QueueSize),
		windows: make(map[string]*list.Element),
		order:   list.New(),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "alerts_sent_total",
			Help: "Alert batches per channel and result (ok, error, dropped).",
		}, []string{"channel", "result"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "alerts_dropped_total",
			Help: "Alerts refused because the alert queue was full.",
		}),
		suppress: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "alerts_suppressed_total",
			Help: "Alerts folded into an end-of-window summary instead of being sent on their own.",
		}),
		evicted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "alerts_windows_evicted_total",
			Help: "Aggregation windows closed early because too many keys were open.",
		}),
		queueLen: o.QueueLength,
	}
	for _, n := range notifiers {
		d.channels = append(d.channels, &channel{n: n, queue: make(chan Batch, o.ChannelQueue)})
		for _, r := range []string{"ok", "error", "dropped"} {
			d.sent.WithLabelValues(n.Name(), r) // export zeros so rate() works from the start
		}
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(d.sent, d.dropped, d.suppress, d.evicted)
	}
	return d
}

// Notify queues a for delivery without blocking. It reports false when the
// alert is below MinSeverity or the queue is full (counted).
func (d *Dispatcher) Notify(a Alert) bool {
	if a.Severity < d.o.MinSeverity {
		return false
	}
	if a.Time.IsZero() {
		a.Time = d.o.Now()
	}
	select {
	case d.queue <- a:
		d.setQueueLen()
		return true
	default:
		d.dropped.Inc()
		return false
	}
}

func (d *Dispatcher) setQueueLen() {
	if d.queueLen != nil {
		d.queueLen.Set(float64(len(d.queue)))
	}
}

// Run aggregates and delivers until ctx ends, then flushes open summaries
// and waits (at most SendTimeout) for the channels to finish. A
// dispatcher runs once: a second Run returns an error.
func (d *Dispatcher) Run(ctx context.Context) error {
	if !d.running.CompareAndSwap(false, true) {
		return errors.New("notify: dispatcher already ran")
	}
	var wg sync.WaitGroup
	sendCtx, cancelSends := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSends()
	for _, c := range d.channels {
		wg.Go(func() { d.deliverLoop(sendCtx, c) })
	}
	tick := time.NewTicker(d.tickInterval())
	defer tick.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case a := <-d.queue:
			d.setQueueLen()
			d.add(a)
		case <-tick.C:
			d.expire(d.o.Now())
		}
	}
	// Shutdown: take what is queued, close every window, let the channels
	// drain for a bounded time.
	for drained := false; !drained; {
		select {
		case a := <-d.queue:
			d.add(a)
		default:
			drained = true
		}
	}
	d.setQueueLen()
	for el := d.order.Front(); el != nil; el = d.order.Front() {
		d.close(el)
	}
	for _, c := range d.channels {
		close(c.queue)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d.o.SendTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		cancelSends()
		<-done
	}
	return nil
}

// tickInterval checks for closed windows often enough that a summary is
// at most a tenth of a window late, and no more than once a second.
func (d *Dispatcher) tickInterval() time.Duration {
	return min(max(d.o.Window/10, 10*time.Millisecond), time.Second)
}

// add opens a window for a new key (sending the alert at once) or folds the
// alert into the key's open window.
func (d *Dispatcher) add(a Alert) {
	now := d.o.Now()
	d.expire(now)
	if el, ok := d.windows[a.Key]; ok {
		w := el.Value.(*window)
		d.suppress.Inc()
		b := &w.batch
		if b.Count == 0 {
			b.First = a.Time
		}
		b.Count++
		b.Last = a.Time
		b.Severity = max(b.Severity, a.Severity)
		if len(b.Alerts) >= d.o.SampleSize {
			// Keep the first and the newest ones: drop the second oldest.
			copy(b.Alerts[1:], b.Alerts[2:])
			b.Alerts = b.Alerts[:len(b.Alerts)-1]
		}
		b.Alerts = append(b.Alerts, a)
		return
	}
	for len(d.windows) >= d.o.MaxKeys {
		d.evicted.Inc()
		d.close(d.order.Front())
	}
	w := &window{key: a.Key, opened: now, batch: Batch{Key: a.Key, Summary: true}}
	d.windows[a.Key] = d.order.PushBack(w)
	d.dispatch(Batch{Key: a.Key, Severity: a.Severity, First: a.Time, Last: a.Time, Count: 1, Alerts: []Alert{a}})
}

// expire closes every window opened at least Window before now. Windows
// are in opening order, so it stops at the first one still open.
func (d *Dispatcher) expire(now time.Time) {
	for el := d.order.Front(); el != nil; el = d.order.Front() {
		if now.Sub(el.Value.(*window).opened) < d.o.Window {
			return
		}
		d.close(el)
	}
}

func (d *Dispatcher) close(el *list.Element) {
	w := d.order.Remove(el).(*window)
	delete(d.windows, w.key)
	if w.batch.Count > 0 {
		d.dispatch(w.batch)
	}
}

// dispatch hands b to every channel without blocking.
func (d *Dispatcher) dispatch(b Batch) {
	for _, c := range d.channels {
		select {
		case c.queue <- b:
		default:
			d.sent.WithLabelValues(c.n.Name(), "dropped").Inc()
			d.o.Logger.Warn("alert channel queue full, batch dropped", "channel", c.n.Name(), "key", b.Key)
		}
	}
}

func (d *Dispatcher) deliverLoop(ctx context.Context, c *channel) {
	name := c.n.Name()
	for b := range c.queue {
		if ctx.Err() != nil {
			d.sent.WithLabelValues(name, "dropped").Inc()
			continue
		}
		err := outbound.Retry(ctx, d.o.Retries, d.o.RetryBase, func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, d.o.SendTimeout)
			defer cancel()
			return c.n.Send(ctx, b)
		})
		if err != nil {
			d.sent.WithLabelValues(name, "error").Inc()
			// Notifier errors are written to carry no secrets.
			d.o.Logger.Error("alert delivery failed", "channel", name, "key", b.Key, "count", b.Count, "err", err)
			continue
		}
		d.sent.WithLabelValues(name, "ok").Inc()
	}
}
