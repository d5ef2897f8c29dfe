// Package telemetry gives every role of the binary (edge, ai-service,
// escalation, tarpit, admin-ui, cloud-dashboard) the same observability
// surface: a per-role Prometheus registry with the standard metrics, a
// /health handler that aggregates component checks, JSON logging and request
// ids.
//
// Nothing here is global: each role builds its own Telemetry and Health, so
// several roles can run in one process and still expose separate /metrics and
// /health endpoints.
package telemetry

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DurationBuckets are the histogram buckets (seconds) for every latency
// histogram. They contain each SLO threshold exactly (5 ms edge overhead,
// 500 ms webhook, 1.5 s escalation, 2 s dashboard fanout, plus 1 s) so that
// the SLO ratios are computed from bucket counters without interpolation.
// Roles use it for their own latency histograms too. Do not modify it.
var DurationBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 5, 10}

// Label values that stand in for anything outside a bounded set.
const (
	// OverflowRoute replaces the route label once a role has more distinct
	// (route, method, code) series than maxHTTPSeries. Seeing it means a
	// caller passes raw paths instead of route templates.
	OverflowRoute = "other"
	// OtherLabel replaces error kinds, queue and model names past their
	// limits, unknown HTTP methods and status codes outside 100–999.
	OtherLabel = "other"
)

// ErrKindLabelOverflow is the errors_total kind counted when a label set hits
// its cardinality limit.
const ErrKindLabelOverflow = "metric_label_overflow"

// Cardinality limits. Label values are meant to come from small fixed sets
// (route templates, error-kind constants); the limits make a programming
// mistake cost a counter, not the memory of the process and of Prometheus.
const (
	maxHTTPSeries  = 2048
	maxErrorKinds  = 256
	maxQueues      = 64
	maxModels      = 64
	maxLabelLength = 128
)

// BuildInfo identifies the running binary; it is exported as build_info and
// reported by /health.
type BuildInfo struct {
	Version, Commit, GoVersion string
}

// ReadBuildInfo returns the build information embedded by the Go toolchain.
// A non-empty version (typically set with -ldflags -X) overrides the module
// version, which is "(devel)" for local builds.
func ReadBuildInfo(version string) BuildInfo {
	b := BuildInfo{Version: version, GoVersion: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b.withDefaults()
	}
	if b.Version == "" {
		b.Version = info.Main.Version
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" {
			b.Commit = s.Value
		}
	}
	return b.withDefaults()
}

func (b BuildInfo) withDefaults() BuildInfo {
	if b.Version == "" {
		b.Version = "dev"
	}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	if b.GoVersion == "" {
		b.GoVersion = runtime.Version()
	}
	return b
}

// Option configures New.
type Option func(*options)

type options struct {
	logger *slog.Logger
}

// WithLogger sets the logger for errors met while serving /metrics. The
// default is slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// Telemetry is one role's metrics registry and standard metrics. It is safe
// for concurrent use.
type Telemetry struct {
	service    string
	registry   *prometheus.Registry
	registerer prometheus.Registerer // adds service=<role> to everything
	handler    http.Handler

	httpDuration *prometheus.HistogramVec
	httpRequests *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	errors       *prometheus.CounterVec
	queues       *prometheus.GaugeVec
	models       *prometheus.GaugeVec

	httpSeries cowMap[httpKey, *httpSeries]
	errorKinds cowMap[string, prometheus.Counter]
	overflow   prometheus.Counter // errors_total{kind="metric_label_overflow"}

	mu         sync.Mutex
	queueNames map[string]prometheus.Gauge
	modelVers  map[string]string // model -> version currently exported

	writers sync.Pool // *statusWriter, reused by Instrument
}

// New builds the registry for one role. service is the role name as it
// should appear in the service label (for example "edge" or "ai_service").
func New(service string, build BuildInfo, opts ...Option) *Telemetry {
	o := options{logger: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	build = build.withDefaults()
	service = labelValue(service)

	t := &Telemetry{
		service:    service,
		registry:   prometheus.NewRegistry(),
		queueNames: make(map[string]prometheus.Gauge),
		modelVers:  make(map[string]string),
	}
	t.registerer = prometheus.WrapRegistererWith(prometheus.Labels{"service": service}, t.registry)
	t.writers.New = func() any { return new(statusWriter) }

	t.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "http_request_duration_seconds",
		Help:    "Time to serve an HTTP request, by route template, method and status code.",
		Buckets: DurationBuckets,
	}, []string{"route", "method", "code"})
	t.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "http_requests_total",
		Help: "HTTP requests served, by route template, method and status code.",
	}, []string{"route", "method", "code"})
	t.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "request_latency_seconds",
		Help:    "Request latency by endpoint (route template); the operations playbook's name for http_request_duration_seconds.",
		Buckets: DurationBuckets,
	}, []string{"endpoint"})
	t.errors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "errors_total",
		Help: "Errors by kind; kinds are constants defined by the code that counts them.",
	}, []string{"kind"})
	t.queues = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "queue_length",
		Help: "Items waiting in an internal queue.",
	}, []string{"queue"})
	t.models = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "model_version_info",
		Help: "Version of each loaded model; the value is always 1.",
	}, []string{"model", "version"})
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "build_info",
		Help: "Build of the running binary; the value is always 1.",
		ConstLabels: prometheus.Labels{
			"version":   labelValue(build.Version),
			"commit":    labelValue(build.Commit),
			"goversion": labelValue(build.GoVersion),
		},
	})
	buildInfo.Set(1)

	t.registerer.MustRegister(
		t.httpDuration, t.httpRequests, t.latency, t.errors, t.queues, t.models, buildInfo,
		newProcessCollector(),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	t.overflow = t.errors.WithLabelValues(ErrKindLabelOverflow)

	// Built once: the promhttp helpers register their own metrics, which may
	// happen only once per registry.
	h := promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{
		ErrorLog:            promLogger{o.logger.With("service", service)},
		ErrorHandling:       promhttp.ContinueOnError,
		Registry:            t.registerer, // promhttp_metric_handler_errors_total
		MaxRequestsInFlight: 8,
	})
	t.handler = promhttp.InstrumentMetricHandler(t.registerer, h)
	return t
}

// Service returns the value of the service label.
func (t *Telemetry) Service() string { return t.service }

// Registry returns the role's registry, for gathering. To add role-specific
// metrics use Registerer, which adds the service label.
func (t *Telemetry) Registry() *prometheus.Registry { return t.registry }

// Registerer returns a registerer that adds service=<role> to every metric
// registered through it, like the standard metrics.
func (t *Telemetry) Registerer() prometheus.Registerer { return t.registerer }

// MetricsHandler serves the registry in the Prometheus exposition format.
// Collection errors are logged and counted in
// promhttp_metric_handler_errors_total; what could be collected is still
// served.
func (t *Telemetry) MetricsHandler() http.Handler { return t.handler }

// Error counts one error of the given kind in errors_total. Callers must pass
// constants from a small fixed set (for example "store_write" or
// "webhook_decode"), never text derived from input: past maxErrorKinds
// distinct kinds, new kinds are counted as "other".
func (t *Telemetry) Error(kind string) {
	if c, ok := t.errorKinds.load(kind); ok {
		c.Inc()
		return
	}
	t.errorSlow(kind).Inc()
}

func (t *Telemetry) errorSlow(kind string) prometheus.Counter {
	c, ok := t.errorKinds.loadOrCreate(kind, maxErrorKinds, func() prometheus.Counter {
		return t.errors.WithLabelValues(labelValue(kind))
	})
	if ok {
		return c
	}
	t.overflow.Inc()
	c, _ = t.errorKinds.loadOrCreate(OtherLabel, -1, func() prometheus.Counter {
		return t.errors.WithLabelValues(OtherLabel)
	})
	return c
}

// QueueLength returns the queue_length gauge for a queue. Resolve it once and
// keep it; queue names must come from a fixed set. Past maxQueues distinct
// names the shared "other" gauge is returned.
func (t *Telemetry) QueueLength(queue string) prometheus.Gauge {
	t.mu.Lock()
	defer t.mu.Unlock()
	if g, ok := t.queueNames[queue]; ok {
		return g
	}
	if len(t.queueNames) >= maxQueues {
		t.overflow.Inc()
		return t.queues.WithLabelValues(OtherLabel)
	}
	g := t.queues.WithLabelValues(labelValue(queue))
	t.queueNames[queue] = g
	return g
}

// SetModelVersion exports model_version_info{model,version} = 1 and removes
// the series of the version it replaces, so each model has one series.
func (t *Telemetry) SetModelVersion(model, version string) {
	model, version = labelValue(model), labelValue(version)
	t.mu.Lock()
	defer t.mu.Unlock()
	old, known := t.modelVers[model]
	if known && old == version {
		return
	}
	if !known && len(t.modelVers) >= maxModels {
		t.overflow.Inc()
		return
	}
	if known {
		t.models.DeleteLabelValues(model, old)
	}
	t.modelVers[model] = version
	t.models.WithLabelValues(model, version).Set(1)
}

// labelValue makes s a safe label value: valid UTF-8, bounded length and not
// empty (an empty value is indistinguishable from a missing label).
func labelValue(s string) string {
	if s == "" {
		return "unknown"
	}
	if len(s) > maxLabelLength {
		s = s[:maxLabelLength]
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return s
}

// promLogger adapts slog to promhttp.Logger.
type promLogger struct{ l *slog.Logger }

func (p promLogger) Println(v ...any) {
	p.l.Error("serving metrics", "error", strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}
