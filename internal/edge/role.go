package edge

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/scrapedefense/scrapedefense/internal/challenge"
	"github.com/scrapedefense/scrapedefense/internal/clientip"
	"github.com/scrapedefense/scrapedefense/internal/config"
	"github.com/scrapedefense/scrapedefense/internal/crawlers"
	"github.com/scrapedefense/scrapedefense/internal/decision"
	"github.com/scrapedefense/scrapedefense/internal/demosite"
	"github.com/scrapedefense/scrapedefense/internal/events"
	"github.com/scrapedefense/scrapedefense/internal/policy"
	"github.com/scrapedefense/scrapedefense/internal/proxyproto"
	"github.com/scrapedefense/scrapedefense/internal/ratelimit"
	"github.com/scrapedefense/scrapedefense/internal/role"
	"github.com/scrapedefense/scrapedefense/internal/store"
	"github.com/scrapedefense/scrapedefense/internal/telemetry"
	"github.com/scrapedefense/scrapedefense/internal/upstream"
)

// Name is the role name.
const Name = "edge"

// Options are what the edge role needs from the process.
type Options struct {
	Config   config.Config
	Store    store.Store
	Logger   *slog.Logger
	Build    telemetry.BuildInfo
	APIToken string
	// Sink takes the edge's events when the AI service runs in this
	// process (nil: they are only kept in the recent ring).
	Sink func(ctx context.Context, evs []events.Event) error
	// Tarpit serves the maze for tarpit verdicts and trap requests when
	// the tarpit runs in this process (nil: tarpit verdicts are blocks).
	Tarpit func(w http.ResponseWriter, r *http.Request, client netip.Addr)
	// TrapPrefix is the maze entrance; TrapLinks injects a hidden link to
	// it into proxied HTML pages.
	TrapPrefix string
	TrapLinks  func(w io.Writer, href string) io.WriteCloser
}

// Role is the edge service.
type Role struct {
	cfg       config.Edge
	lists     config.Lists
	store     store.Store
	logger    *slog.Logger
	tel       *telemetry.Telemetry
	health    *telemetry.Health
	fp        *FastPath
	handler   *Handler
	queue     *events.Queue
	recent    *events.Recent
	api       *API
	fwdAuth   *ForwardAuth
	upstream  *url.URL
	demo      bool
	robots    *robotsCache
	transport *upstream.Transport
	sink      func(ctx context.Context, evs []events.Event) error

	reloadFailures prometheus.Counter
	reloads        prometheus.Counter
	policyFiles    atomic.Pointer[[]string]
	reloadMu       sync.Mutex
}

// Available is the set of actions a policy may use: all of them. Tarpit
// sends the request into the maze when the tarpit runs in this process and
// is enforced as a block otherwise, so that nothing marked as a bot reaches
// the site.
func Available(a decision.Action) bool {
	return a >= decision.ActionAllow && a <= decision.ActionBlock
}

// LoadPolicy loads the policy file, or the built-in default when path is
// empty, and returns the files it read (to watch them for changes).
func LoadPolicy(path string) (*policy.Policy, []string, error) {
	var files []string
	opts := policy.LoadOptions{
		Available: Available,
		ReadFile: func(name string) ([]byte, error) {
			files = append(files, name)
			return os.ReadFile(name)
		},
	}
	if path == "" {
		p, err := policy.Default(opts)
		return p, files, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	p, err := policy.Load(data, opts)
	return p, append(files, path), err
}

// NewFastPathFromConfig builds the fast path exactly as the edge does; the
// explain command uses it so that it gives the edge's answer.
func NewFastPathFromConfig(cfg config.Edge) (*FastPath, []string, error) {
	cat, err := crawlers.Embedded()
	if err != nil {
		return nil, nil, fmt.Errorf("crawler lists: %w", err)
	}
	pol, files, err := LoadPolicy(cfg.PolicyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("edge.policy_file: %w", err)
	}
	rl := cfg.RateLimit
	limiter, err := ratelimit.New(ratelimit.Config{
		PerIP:          ratelimit.Rate{Requests: rl.PerIP.Requests, Per: rl.PerIP.Per, Burst: rl.PerIP.Burst},
		PerSubnet:      ratelimit.Rate{Requests: rl.PerSubnet.Requests, Per: rl.PerSubnet.Per, Burst: rl.PerSubnet.Burst},
		IPv4SubnetBits: rl.IPv4SubnetBits,
		IPv6SubnetBits: rl.IPv6SubnetBits,
		Slots:          rl.Slots,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("edge.rate_limit: %w", err)
	}
	return NewFastPath(cat, pol, decision.NewIndex(), limiter, cfg.AllowVerifiedBots), files, nil
}

// New builds the edge role; listeners are bound in Run.
func New(ctx context.Context, o Options) (*Role, error) {
	cfg := o.Config.Edge
	r := &Role{cfg: cfg, lists: o.Config.Lists, store: o.Store, logger: o.Logger.With("role", Name)}
	r.tel = telemetry.New(Name, o.Build)
	r.health = telemetry.NewHealth(Name, o.Build)
	reg := r.tel.Registerer()

	fp, files, err := NewFastPathFromConfig(cfg)
	if err != nil {
		return nil, err
	}
	r.fp = fp
	r.policyFiles.Store(&files)

	trusted, err := clientip.ParsePrefixes(cfg.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("edge.trusted_proxies: %w", err)
	}
	resolver, err := clientip.NewResolver(trusted, cfg.ClientIPHeaders)
	if err != nil {
		return nil, fmt.Errorf("edge.client_ip_headers: %w", err)
	}
	fwdResolver, err := newCallerResolver(trusted)
	if err != nil {
		return nil, err
	}

	if cfg.Upstream == "" {
		r.demo = true
		r.upstream = &url.URL{Scheme: "http", Host: "127.0.0.1:0"} // set when the demo site listens
	} else if r.upstream, err = url.Parse(cfg.Upstream); err != nil {
		return nil, fmt.Errorf("edge.upstream: %w", err)
	}

	blockBody := []byte(defaultBlockPage)
	if cfg.Block.BodyFile != "" {
		if blockBody, err = os.ReadFile(cfg.Block.BodyFile); err != nil {
			return nil, fmt.Errorf("edge.block.body_file: %w", err)
		}
	}

	r.queue = events.NewQueue(cfg.Events.QueueSize)
	r.recent = events.NewRecent(1000)
	// Plain GET/HEAD requests (nearly all page views) go through the
	// low-latency transport; bodies, upgrades and TLS through the stdlib one.
	transport := upstream.NewTransport(upstream.Options{
		MaxIdleConns:          cfg.Upstreams.MaxIdleConnsPerHost,
		MaxConns:              cfg.Upstreams.MaxConnsPerHost,
		DialTimeout:           cfg.Upstreams.DialTimeout,
		ResponseHeaderTimeout: cfg.Upstreams.ResponseTimeout,
	}, newTransport(TransportOptions{
		MaxIdleConnsPerHost: cfg.Upstreams.MaxIdleConnsPerHost,
		MaxConnsPerHost:     cfg.Upstreams.MaxConnsPerHost,
		DialTimeout:         cfg.Upstreams.DialTimeout,
		ResponseTimeout:     cfg.Upstreams.ResponseTimeout,
	}))
	r.transport = transport
	r.robots = newRobotsCache(transport, cfg.Robots, fp)
	r.handler = &Handler{
		fp:          fp,
		resolver:    resolver,
		proxy:       newReverseProxy(r.upstream, transport, r.logger, r.tel.Error),
		queue:       r.queue,
		tel:         r.tel,
		verdicts:    newVerdictCounter(reg),
		blockStatus: cfg.Block.Status,
		blockBody:   blockBody,
		logger:      r.logger,
		now:         time.Now,
	}
	if cfg.Robots.Serve {
		r.handler.robotsTxt = r.robots.Body
	}
	r.sink = o.Sink
	r.handler.emitAll = cfg.Events.AllRequests && o.Sink != nil
	if o.Tarpit != nil {
		r.handler.tarpit = o.Tarpit
		r.handler.trapPrefix = o.TrapPrefix
		if o.TrapPrefix != "" {
			r.robots.traps = []string{o.TrapPrefix}
		}
		if o.TrapLinks != nil && o.TrapPrefix != "" && cfg.TrapLinks {
			r.handler.trapLinks = o.TrapLinks
			r.handler.trapHref = trapHref(o.TrapPrefix)
		}
	}
	ch := cfg.Challenge
	r.handler.decisionChallengeWeight = max(ch.NoJSWeightBelow, 0)
	r.handler.chal, err = challenge.New(ctx, challenge.Config{
		StatusCode:          ch.Status,
		PassTTL:             ch.PassTTL,
		ChallengeTTL:        ch.ChallengeTTL,
		MinDifficulty:       ch.MinDifficulty,
		MaxDifficulty:       ch.MaxDifficulty,
		NoJSWeightBelow:     ch.NoJSWeightBelow,
		MaxDifficultyWeight: ch.MaxDifficultyWeight,
		NoJSFallbackWait:    ch.NoJSFallbackWait,
		CookieName:          ch.CookieName,
		KeyFile:             ch.KeyFile,
		KeyRotation:         ch.KeyRotation,
		ExemptPaths:         ch.ExemptPaths,
		Secure:              ch.SecureCookie,
	}, o.Store, reg, r.logger, r.handler.challengeEvent)
	if err != nil {
		return nil, fmt.Errorf("edge.challenge: %w", err)
	}
	r.fwdAuth = &ForwardAuth{h: r.handler, resolver: fwdResolver}
	r.api = &API{token: o.APIToken, store: o.Store, fp: fp, recent: r.recent, now: time.Now}
	r.registerMetrics(reg)
	r.registerHealth()
	return r, nil
}

// trapHref is the hidden link's target: an ordinary-looking page inside
// the maze.
func trapHref(prefix string) string {
	return strings.TrimSuffix(prefix, "/") + "/index.html"
}

func (r *Role) registerMetrics(reg prometheus.Registerer) {
	r.reloadFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "config_reload_failures_total", Help: "Policy or list reloads that failed; the previous version stays in force.",
	})
	r.reloads = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "config_reloads_total", Help: "Successful policy reloads.",
	})
	reg.MustRegister(r.reloadFailures, r.reloads,
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "events_dropped_total", Help: "Events dropped because the analysis queue was full.",
		}, func() float64 { return float64(r.queue.Dropped()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "events_queued_total", Help: "Events accepted into the analysis queue.",
		}, func() float64 { return float64(r.queue.Pushed()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "edge_decisions_active", Help: "Decisions held in the edge's in-memory index (IPs and CIDRs).",
		}, func() float64 { ips, cidrs := r.fp.Index().Len(); return float64(ips + cidrs) }),
		&limiterCollector{l: r.fp.limiter},
		&upstreamCollector{t: r.transport},
	)
	r.tel.QueueLength("events") // created now so that it is exported at 0
}

func (r *Role) registerHealth() {
	r.health.Register("store", StoreHealth(r.store))
	r.health.Register("events_queue", func(context.Context) telemetry.Component {
		n, c := r.queue.Len(), r.queue.Cap()
		st := telemetry.StatusOK
		if n > c*9/10 {
			st = telemetry.StatusDegraded
		}
		return telemetry.Component{Status: st, Data: map[string]any{"length": n, "capacity": c, "dropped": r.queue.Dropped()}}
	})
	r.health.Register("policy", func(context.Context) telemetry.Component {
		return telemetry.Component{Status: telemetry.StatusOK, Data: map[string]any{"rules": len(r.fp.Policy().Rules())}}
	})
	r.health.Register("upstream", func(ctx context.Context) telemetry.Component {
		return r.robots.upstreamHealth()
	})
}

// StoreHealth is the /health component that reports the store's status
// and utilisation; every role that uses the store registers it.
func StoreHealth(st store.Store) func(context.Context) telemetry.Component {
	return func(ctx context.Context) telemetry.Component {
		h := st.Health(ctx)
		c := telemetry.Component{Status: telemetry.StatusOK, Detail: h.Detail,
			Data: map[string]any{"backend": h.Backend, "keys": h.Keys, "size_bytes": h.SizeBytes}}
		if !h.OK {
			c.Status = telemetry.StatusError
		}
		return c
	}
}

// Name implements role.Role.
func (r *Role) Name() string { return Name }

// FastPath exposes the fast path (tests, explain).
func (r *Role) FastPath() *FastPath { return r.fp }

// Run binds the listeners, serves until ctx ends and drains.
func (r *Role) Run(ctx context.Context, ready func(...role.Endpoint)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	changes, err := r.loadDecisions(ctx)
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	pub, err := lc.Listen(ctx, "tcp", r.cfg.Listen)
	if err != nil {
		return fmt.Errorf("edge.listen: %w", err)
	}
	if r.cfg.ProxyProtocol.Enabled {
		trusted, _ := clientip.ParsePrefixes(r.cfg.ProxyProtocol.Trusted)
		pub = proxyproto.NewListener(pub, proxyproto.Options{
			Trusted:  trusted,
			Required: r.cfg.ProxyProtocol.Required,
			OnError:  func(error) { r.tel.Error("proxy_protocol") },
		})
	}
	admin, err := lc.Listen(ctx, "tcp", r.cfg.AdminListen)
	if err != nil {
		pub.Close()
		return fmt.Errorf("edge.admin_listen: %w", err)
	}
	public := r.server(pub, r.handler)
	if r.handler.emitAll {
		// Record each request's header order for the escalation engine.
		public.Listener = headerOrderListener{pub}
		public.Server.ConnContext = withHeaderOrder
	}
	servers := []*role.Server{
		public,
		r.server(admin, r.adminHandler()),
	}
	endpoints := []role.Endpoint{
		{Role: Name, Name: "public", Addr: pub.Addr().String()},
		{Role: Name, Name: "admin", Addr: admin.Addr().String()},
	}
	if r.demo {
		demo, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
		if err != nil {
			pub.Close()
			admin.Close()
			return fmt.Errorf("demo site: %w", err)
		}
		*r.upstream = url.URL{Scheme: "http", Host: demo.Addr().String()}
		servers = append(servers, r.server(demo, demosite.Handler()))
		endpoints = append(endpoints, role.Endpoint{Role: Name, Name: "demo-upstream", Addr: demo.Addr().String()})
	}

	var wg sync.WaitGroup
	for _, loop := range []func(context.Context){r.sweep, r.consumeEvents, r.watchPolicy, r.refreshLists} {
		wg.Add(1)
		go func() { defer wg.Done(); loop(ctx) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); r.followDecisions(ctx, changes) }()
	wg.Add(1)
	go func() { defer wg.Done(); r.robots.Run(ctx, r.upstream, r.fp.Catalog) }()

	ready(endpoints...)
	r.logger.Info("edge serving", "public", pub.Addr().String(), "admin", admin.Addr().String(), "upstream", r.upstream.String())
	err = role.ServeAll(ctx, servers...)
	cancel()
	wg.Wait()
	return err
}

func (r *Role) server(ln net.Listener, h http.Handler) *role.Server {
	return &role.Server{
		Listener: ln,
		Drain:    r.cfg.Timeouts.Shutdown,
		Logger:   r.logger,
		Server: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: r.cfg.Timeouts.ReadHeader,
			IdleTimeout:       r.cfg.Timeouts.Idle,
			MaxHeaderBytes:    r.cfg.MaxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(r.logger.Handler(), slog.LevelDebug),
		},
	}
}

func (r *Role) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /health", r.health.Handler())
	mux.Handle("GET /metrics", r.tel.MetricsHandler())
	mux.Handle(r.cfg.ForwardAuthPath, r.fwdAuth)
	mux.Handle("/api/", r.tel.Instrument("/api/v1", r.api.Handler()))
	if r.cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// Reload re-reads the policy and its list files; a bad policy keeps the old
// one in force.
func (r *Role) Reload() error {
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	pol, files, err := LoadPolicy(r.cfg.PolicyFile)
	if err != nil {
		r.reloadFailures.Inc()
		r.logger.Error("policy reload failed; keeping the previous policy", "file", r.cfg.PolicyFile, "err", err)
		return err
	}
	r.fp.SetPolicy(pol)
	r.handler.verdicts.reset()
	r.policyFiles.Store(&files)
	r.reloads.Inc()
	r.logger.Info("policy reloaded", "file", r.cfg.PolicyFile, "rules", len(pol.Rules()))
	return nil
}

// loadDecisions subscribes to decision changes, then loads every stored
// decision into the index: in that order, so that no change made in
// between is missed. The edge serves only after this.
func (r *Role) loadDecisions(ctx context.Context) (<-chan store.Change, error) {
	ch, err := r.store.WatchDecisions(ctx)
	if err != nil {
		return nil, fmt.Errorf("watch decisions: %w", err)
	}
	r.resync(ctx)
	return ch, nil
}

// followDecisions keeps the in-memory index in step with the store,
// subscribing again if the watch ends before ctx does.
func (r *Role) followDecisions(ctx context.Context, ch <-chan store.Change) {
	for {
		r.applyChanges(ctx, ch)
		for ctx.Err() == nil {
			var err error
			if ch, err = r.loadDecisions(ctx); err == nil {
				break
			}
			r.tel.Error("store")
			r.logger.Error("watching decisions failed; retrying", "err", err)
			sleep(ctx, time.Second)
		}
		if ctx.Err() != nil {
			return
		}
	}
}

func (r *Role) applyChanges(ctx context.Context, ch <-chan store.Change) {
	for c := range ch {
		switch c.Op {
		case store.OpPut:
			if err := r.fp.Index().Upsert(c.Decision); err != nil {
				r.tel.Error("bad_decision")
			}
		case store.OpDelete:
			if p, err := c.Decision.Prefix(); err == nil {
				r.fp.Index().Delete(p)
			}
		case store.OpResync:
			r.resync(ctx)
		}
	}
}

func (r *Role) resync(ctx context.Context) {
	ds, err := r.store.ListDecisions(ctx)
	if err != nil {
		r.tel.Error("store")
		r.logger.Error("reloading decisions failed", "err", err)
		return
	}
	if err := r.fp.Index().ReplaceAll(ds); err != nil {
		r.tel.Error("bad_decision")
	}
}

// sweep removes expired decisions from memory every second and from the
// store every minute; lookups ignore expired entries in between.
func (r *Role) sweep(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var n int
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			r.fp.Index().Sweep(now.UnixNano())
			if n++; n%60 == 0 {
				if _, err := r.store.PurgeExpiredDecisions(ctx, now); err != nil && ctx.Err() == nil {
					r.tel.Error("store")
				}
			}
		}
	}
}

// consumeEvents drains the event queue into the recent ring and, when the
// AI service runs in this process, into its intake in batches.
func (r *Role) consumeEvents(ctx context.Context) {
	gauge := r.tel.QueueLength("events")
	buf := make([]events.Event, 256)
	for {
		n, err := r.queue.PopBatch(ctx, buf)
		if err != nil {
			return
		}
		gauge.Set(float64(r.queue.Len()))
		for i := range buf[:n] {
			if buf[i].Notable() {
				r.recent.Add(buf[i])
			}
		}
		if r.sink != nil {
			if err := r.sink(ctx, buf[:n]); err != nil && ctx.Err() == nil {
				r.tel.Error("event_sink")
				r.logger.Warn("events not accepted by the AI service intake", "events", n, "err", err)
			}
		}
		clear(buf[:n])
	}
}

// watchPolicy reloads when the policy file or one of its list files changes.
// Directories are watched, not files, so that editors that replace the file
// (write to a temporary file and rename) are noticed too.
func (r *Role) watchPolicy(ctx context.Context) {
	if r.cfg.PolicyFile == "" {
		return
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		r.logger.Warn("cannot watch the policy file; reload with SIGHUP", "err", err)
		return
	}
	defer w.Close()
	watched := map[string]bool{}
	rewatch := func() {
		for _, f := range *r.policyFiles.Load() {
			dir := filepath.Dir(f)
			if !watched[dir] {
				if err := w.Add(dir); err == nil {
					watched[dir] = true
				}
			}
		}
	}
	rewatch()
	var debounce <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			for _, f := range *r.policyFiles.Load() {
				if filepath.Clean(ev.Name) == filepath.Clean(f) {
					debounce = time.After(200 * time.Millisecond)
				}
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			r.logger.Warn("policy file watcher", "err", err)
		case <-debounce:
			debounce = nil
			_ = r.Reload()
			rewatch()
		}
	}
}

// refreshLists fetches the crawler lists from their sources on a schedule;
// the embedded snapshot stays in force when a fetch fails.
func (r *Role) refreshLists(ctx context.Context) {
	if r.lists.RefreshInterval <= 0 {
		return
	}
	ref := crawlers.NewRefresher(crawlers.RefresherOptions{
		Client:      &http.Client{Timeout: 30 * time.Second},
		AIAgentsURL: r.lists.AIAgentsURL,
		Logger:      r.logger,
	})
	failures := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "lists_refresh_failures_total", Help: "Crawler list refreshes that failed; the previous lists stay in force.",
	})
	r.tel.Registerer().MustRegister(failures)
	t := time.NewTicker(r.lists.RefreshInterval)
	defer t.Stop()
	for {
		// A partial failure still returns the sources that did refresh;
		// the failed ones keep their previous entries.
		cat, err := ref.Refresh(ctx, r.fp.Catalog())
		if err != nil {
			failures.Inc()
			r.logger.Warn("crawler list refresh failed for some sources; they keep their previous lists", "err", err)
		}
		if cat != nil && cat != r.fp.Catalog() {
			r.fp.SetCatalog(cat)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

const defaultBlockPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Access denied</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}h1{font-size:1.4rem}</style>
</head><body><h1>Access denied</h1>
<p>This site does not serve automated scrapers. If you are a person and think this is a mistake,
please contact the site's operator and mention the time of your visit.</p>
</body></html>
`
