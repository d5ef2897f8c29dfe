package app

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/scrapedefense/scrapedefense/internal/aiservice"
	"github.com/scrapedefense/scrapedefense/internal/clientip"
	"github.com/scrapedefense/scrapedefense/internal/config"
	"github.com/scrapedefense/scrapedefense/internal/edge"
	"github.com/scrapedefense/scrapedefense/internal/escalation"
	"github.com/scrapedefense/scrapedefense/internal/events"
	"github.com/scrapedefense/scrapedefense/internal/pipeline"
	"github.com/scrapedefense/scrapedefense/internal/role"
	"github.com/scrapedefense/scrapedefense/internal/tarpit"
	"github.com/scrapedefense/scrapedefense/internal/telemetry"
)

// Role names besides the edge's.
const (
	RoleAI         = "ai-service"
	RoleEscalation = "escalation"
)

// wiring builds the parts roles share in one process, each once, on first
// use: the edge's events go straight to the escalation workers, the tarpit
// serves the edge's maze requests, and one escalation engine serves both
// the workers and POST /escalate.
type wiring struct {
	ctx      context.Context
	d        Deps
	selected map[string]bool

	aiOnce sync.Once
	ai     *aiservice.Service
	aiTel  *telemetry.Telemetry
	aiErr  error

	engOnce sync.Once
	engine  *escalation.Engine
	// enforcer carries out grey-zone refinements that arrive after the
	// worker has moved on; set when the escalation role is built.
	enforcer atomic.Pointer[pipeline.Enforcer]
	escTel   *telemetry.Telemetry
	engErr   error

	localOnce sync.Once
	local     *events.Queue

	tarpitOnce sync.Once
	tarpit     *tarpit.Role
	tarpitErr  error
}

// escalationTelemetry is shared by the engine and the escalation role.
func (w *wiring) escalationTelemetry() *telemetry.Telemetry {
	w.engOnce.Do(w.buildEngine)
	return w.escTel
}

func (w *wiring) buildEngine() {
	cfg := w.d.Config.Escalation
	w.escTel = telemetry.New(RoleEscalation, w.d.Build)
	model := escalation.DefaultModel()
	if cfg.ModelFile != "" {
		f, err := os.Open(cfg.ModelFile)
		if err != nil {
			w.engErr = fmt.Errorf("escalation.model_file: %w", err)
			return
		}
		defer f.Close()
		if model, err = escalation.LoadModel(f); err != nil {
			w.engErr = fmt.Errorf("escalation.model_file %s: %w", cfg.ModelFile, err)
			return
		}
	}
	trusted, err := clientip.ParsePrefixes(w.d.Config.Edge.TrustedProxies)
	if err != nil {
		w.engErr = fmt.Errorf("edge.trusted_proxies: %w", err)
		return
	}
	grey, err := newGreyZone(cfg.Classifier, w.escTel.Registerer())
	if err != nil {
		w.engErr = err
		return
	}
	th := cfg.Thresholds
	w.engine, w.engErr = escalation.New(escalation.Options{
		GreyZone:   grey,
		Thresholds: escalation.Thresholds{Challenge: th.Challenge, Throttle: th.Throttle, Tarpit: th.Tarpit, Block: th.Block},
		TTL:        escalation.TTLs{Challenge: cfg.TTL.Challenge, Throttle: cfg.TTL.Throttle, Tarpit: cfg.TTL.Tarpit, Block: cfg.TTL.Block},
		MaxTTL:     cfg.MaxTTL,
		MaxIPs:     cfg.MaxClients,
		GreyLow:    cfg.Classifier.GreyLow,
		GreyHigh:   cfg.Classifier.GreyHigh,
		GreyBudget: cfg.Classifier.Budget,
		Model:      model,
		// A trusted proxy speaks for many clients: never act on its address.
		// Operator allow decisions are honoured when enforcing.
		Protected: func(ip netip.Addr) string {
			for _, p := range trusted {
				if p.Contains(ip) {
					return "trusted proxy"
				}
			}
			return ""
		},
		Registerer: w.escTel.Registerer(),
		OnModel:    func(v string) { w.escTel.SetModelVersion("escalation", v) },
		// Workers never wait for the grey zone: its opinion, when it comes
		// within the budget and changes the action, is enforced then.
		OnGreyVerdict: func(ev events.Event, v events.Verdict) {
			if enf := w.enforcer.Load(); enf != nil {
				if err := enf.Apply(w.ctx, ev, v); err != nil {
					w.d.Logger.Warn("enforcing a grey-zone verdict failed", "client_ip", v.ClientIP, "err", err)
				}
			}
		},
		Logger: w.d.Logger.With("role", RoleEscalation),
	})
}

func (w *wiring) engineOrErr() (*escalation.Engine, error) {
	w.engOnce.Do(w.buildEngine)
	return w.engine, w.engErr
}

func (w *wiring) aiService() (*aiservice.Service, error) {
	w.aiOnce.Do(func() {
		cfg := w.d.Config.AI
		w.aiTel = telemetry.New("ai_service", w.d.Build) // the label of the architecture's SLO table
		senders, err := loadSenders(cfg.Senders)
		if err != nil {
			w.aiErr = err
			return
		}
		var scorer aiservice.Scorer
		if w.selected[RoleEscalation] || w.selected[RoleAI] {
			eng, err := w.engineOrErr()
			if err != nil {
				w.aiErr = err
				return
			}
			scorer = waitingScorer{eng}
		}
		rate := 0.0
		if cfg.RateLimit.Requests > 0 {
			rate = float64(cfg.RateLimit.Requests) / cfg.RateLimit.Per.Seconds()
		}
		w.ai, w.aiErr = aiservice.New(aiservice.Options{
			Senders:       senders,
			Store:         w.d.Store,
			Enqueuer:      pipeline.Intake{Queue: w.d.Store},
			Scorer:        scorer,
			Telemetry:     w.aiTel,
			Logger:        w.d.Logger.With("role", RoleAI),
			ReplayWindow:  cfg.ReplayWindow,
			MaxBodyBytes:  int64(cfg.MaxBodyBytes),
			MaxEvents:     cfg.MaxEvents,
			RatePerSecond: rate,
			RateBurst:     cfg.RateLimit.Burst,
		})
	})
	return w.ai, w.aiErr
}

// loadSenders reads each sender's secret from its file.
func loadSenders(specs []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(specs))
	for _, s := range specs {
		name, file, _ := strings.Cut(s, ":")
		secret, err := config.ReadSecret(file)
		if err != nil {
			return nil, fmt.Errorf("ai.senders %s: %w", name, err)
		}
		out[name] = []byte(secret)
	}
	return out, nil
}

// localEvents carries the edge's events straight to the escalation workers
// in this process. The edge's events are best effort by design (it drops
// rather than waits), so they skip the durable queue and its disk writes;
// events accepted over the webhook are durable. The edge's own queue
// (edge.events.queue_size) absorbs bursts already; this one only decouples
// the edge's consumer from the workers, so it is small.
const localEventsSize = 8192

// edgeSink is where the edge's events go: the escalation workers when they
// run in this process, else the AI service's durable intake.
func (w *wiring) edgeSink() (func(context.Context, []events.Event) error, error) {
	switch {
	case w.selected[RoleEscalation]:
		local := w.localQueue()
		return func(_ context.Context, evs []events.Event) error {
			for i := range evs {
				local.TryPush(evs[i]) // a drop is counted by the queue
			}
			return nil
		}, nil
	case w.selected[RoleAI]:
		ai, err := w.aiService()
		if err != nil {
			return nil, err
		}
		return ai.Ingest, nil
	}
	return nil, nil
}

func (w *wiring) localQueue() *events.Queue {
	w.localOnce.Do(func() { w.local = events.NewQueue(localEventsSize) })
	return w.local
}

// opsMux serves a role's /health and /metrics beside its own handler.
func opsMux(tel *telemetry.Telemetry, health *telemetry.Health, h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /health", health.Handler())
	mux.Handle("GET /metrics", tel.MetricsHandler())
	if h != nil {
		mux.Handle("/", h)
	}
	return mux
}

func (w *wiring) aiRole() (role.Role, error) {
	ai, err := w.aiService()
	if err != nil {
		return nil, err
	}
	health := telemetry.NewHealth("ai_service", w.d.Build)
	health.Register("store", edge.StoreHealth(w.d.Store))
	return &role.Service{
		RoleName: RoleAI,
		Addr:     w.d.Config.AI.Listen,
		Handler:  opsMux(w.aiTel, health, ai.Handler()),
		Drain:    w.d.Config.Edge.Timeouts.Shutdown,
		Logger:   w.d.Logger.With("role", RoleAI),
	}, nil
}

func (w *wiring) escalationRole() (role.Role, error) {
	eng, err := w.engineOrErr()
	if err != nil {
		return nil, err
	}
	cfg := w.d.Config.Escalation
	tel := w.escalationTelemetry()
	logger := w.d.Logger.With("role", RoleEscalation)
	dispatcher, err := newDispatcher(w.d.Config.Alerts, tel, logger)
	if err != nil {
		return nil, err
	}
	var alert func(events.Verdict)
	loops := []func(context.Context){}
	if dispatcher != nil {
		alert = func(v events.Verdict) { dispatcher.Notify(verdictAlert(v)) }
		loops = append(loops, func(ctx context.Context) { _ = dispatcher.Run(ctx) })
	}
	enforcer := pipeline.NewEnforcer(w.d.Store, alert, logger, tel.Registerer())
	enforcer.MazeOwnsBlocks = w.selected[tarpit.Name]
	w.enforcer.Store(enforcer)
	workers := pipeline.NewWorkers(pipeline.WorkerOptions{
		Store: w.d.Store, Scorer: eng, Enforcer: enforcer, Local: w.localQueue(),
		Workers: cfg.Workers, Batch: cfg.Batch,
		Telemetry: tel, Logger: logger,
	})
	health := telemetry.NewHealth(RoleEscalation, w.d.Build)
	health.Register("store", edge.StoreHealth(w.d.Store))
	health.Register("queue", func(ctx context.Context) telemetry.Component {
		n, err := w.d.Store.QueueLen(ctx, pipeline.Queue)
		if err != nil {
			return telemetry.Component{Status: telemetry.StatusError, Detail: err.Error()}
		}
		st := telemetry.StatusOK
		if n > int64(w.d.Config.AI.QueueCapacity)*9/10 {
			st = telemetry.StatusDegraded
		}
		return telemetry.Component{Status: st, Data: map[string]any{"length": n, "capacity": w.d.Config.AI.QueueCapacity}}
	})
	// POST /escalate, the synchronous scoring API, is served here too: it is
	// the escalation engine's own API, and its latency is the escalation
	// SLO's (http_request_duration_seconds{service="escalation"}).
	ai, err := w.aiService()
	if err != nil {
		return nil, err
	}
	api := http.NewServeMux()
	api.Handle("/escalate", tel.Instrument(aiservice.RouteEscalate, ai.Handler()))
	return &role.Service{
		RoleName: RoleEscalation,
		Addr:     cfg.Listen,
		Handler:  opsMux(tel, health, api),
		Loops:    append(loops, workers.Run),
		Drain:    w.d.Config.Edge.Timeouts.Shutdown,
		Logger:   logger,
	}, nil
}

// tarpitRole builds the tarpit once: the edge hands it requests in-process
// and the tarpit role serves it on its own listeners.
func (w *wiring) tarpitRole() (*tarpit.Role, error) {
	w.tarpitOnce.Do(func() {
		cfg := w.d.Config.Tarpit
		tc := tarpit.DefaultConfig()
		tc.Listen, tc.AdminListen, tc.Prefix = cfg.Listen, cfg.AdminListen, cfg.Prefix
		tc.LinksPerPage, tc.DripBytesPerSecond, tc.MaxSession = cfg.LinksPerPage, cfg.DripBytesPerSecond, cfg.MaxSession
		tc.MaxConns, tc.MaxConnsPerSubnet, tc.MaxBytesPerSecond = cfg.MaxConns, cfg.MaxConnsPerSubnet, cfg.MaxBytesPerSecond
		tc.HopLimit, tc.HopWindow, tc.BlockTTL = cfg.HopLimit, cfg.HopWindow, cfg.BlockTTL
		tc.GzipBomb, tc.ModelFile, tc.TemplateFile = cfg.GzipBomb, cfg.ModelFile, cfg.TemplateFile
		tc.ShutdownTimeout = w.d.Config.Edge.Timeouts.Shutdown
		if cfg.SeedFile != "" {
			seed, err := config.ReadSecret(cfg.SeedFile)
			if err != nil {
				w.tarpitErr = fmt.Errorf("tarpit.seed_file: %w", err)
				return
			}
			tc.Seed = []byte(seed)
		}
		// With the edge in this process, the edge reports every maze request
		// already; the tarpit reports hits itself only when it runs apart.
		var emit func(events.Event)
		if !w.selected[edge.Name] && (w.selected[RoleAI] || w.selected[RoleEscalation]) {
			ai, err := w.aiService()
			if err != nil {
				w.tarpitErr = err
				return
			}
			emit = func(ev events.Event) {
				// Never block the maze on the queue: a hit that cannot be
				// queued is counted by the intake and dropped.
				_ = ai.Ingest(w.ctx, []events.Event{ev})
			}
		}
		w.tarpit, w.tarpitErr = tarpit.New(w.ctx, tarpit.Options{Config: tc, Store: w.d.Store,
			Logger: w.d.Logger, Build: w.d.Build, Emit: emit})
	})
	return w.tarpit, w.tarpitErr
}

// edgeTarpit hands tarpit verdicts and trap requests to the in-process
// tarpit, with the client address the edge resolved.
func (w *wiring) edgeTarpit() (func(http.ResponseWriter, *http.Request, netip.Addr), string, error) {
	if !w.selected[tarpit.Name] {
		return nil, "", nil
	}
	tp, err := w.tarpitRole()
	if err != nil {
		return nil, "", err
	}
	h := tp.Handler()
	return func(rw http.ResponseWriter, r *http.Request, client netip.Addr) {
		h.ServeHTTP(rw, r.WithContext(tarpit.WithClient(r.Context(), client)))
	}, tp.Prefix(), nil
}

// waitingScorer gives POST /escalate the final verdict, grey zone included.
type waitingScorer struct{ e *escalation.Engine }

func (s waitingScorer) Score(ctx context.Context, ev events.Event) events.Verdict {
	return s.e.ScoreWait(ctx, ev)
}
