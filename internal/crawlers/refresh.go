package crawlers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"time"
)

// Defaults for RefresherOptions.
const (
	DefaultRefreshInterval = 24 * time.Hour
	DefaultFetchTimeout    = 30 * time.Second
	DefaultMaxBodyBytes    = 8 << 20
	DefaultMinRetain       = 0.5
	defaultRefreshAgent    = "scrapedefense-lists (+https://github.com/scrapedefense/scrapedefense)"
)

// errShrunk reports a list that lost too many entries at once, which is
// more likely a broken publication than a real change.
var errShrunk = errors.New("list shrank too much")

// RefresherOptions configures a Refresher. Zero fields take the defaults.
type RefresherOptions struct {
	// Client makes the requests; nil means http.DefaultClient. Its own
	// Timeout, if any, applies on top of FetchTimeout.
	Client *http.Client
	// AIAgentsURL is where ai.robots.txt's robots.json is fetched from;
	// "" means DefaultAIAgentsURL. "-" disables that fetch.
	AIAgentsURL string
	// RangeURLs overrides the source URL of a crawler's ranges, keyed by
	// crawler name; an empty value disables that fetch. Crawlers not in
	// the map use the operator's published list, where there is one.
	RangeURLs map[string]string
	// Interval is the time between refreshes in Run.
	Interval time.Duration
	// FetchTimeout bounds each fetch.
	FetchTimeout time.Duration
	// MaxBodyBytes bounds each response body; a longer one is rejected.
	MaxBodyBytes int64
	// MinRetain is the smallest share of its current entries a list may
	// keep: a new list with fewer entries is rejected (default 0.5).
	MinRetain float64
	// UserAgent is sent with each request.
	UserAgent string
	// Logger receives one line per failed source and per update; nil
	// discards.
	Logger *slog.Logger
}

// Refresher fetches the ai.robots.txt list and the crawlers' address
// ranges from their sources and builds new catalogs from them. A source
// that fails (network, status, size, parse, or a list that is empty or
// shrank too much) keeps its entries from the current catalog, so the
// embedded snapshot stays in force until a source succeeds. It is safe for
// concurrent use; refreshes are serialised.
type Refresher struct {
	opts   RefresherOptions
	client *http.Client
	log    *slog.Logger

	refreshMu sync.Mutex // one refresh at a time

	mu    sync.Mutex // guards stats
	stats RefreshStats
	srcs  map[string]*SourceStats
}

// RefreshStats counts what the refresher did, for metrics.
type RefreshStats struct {
	// Refreshes counts calls of Refresh.
	Refreshes uint64
	// Updates counts refreshes that returned a new catalog.
	Updates uint64
	// Failures counts failed source fetches (each source of each refresh).
	Failures uint64
	// LastRefresh is when the last refresh finished; LastUpdate when a
	// refresh last returned a new catalog.
	LastRefresh, LastUpdate time.Time
	// Sources has one entry per source fetched so far, sorted by name.
	Sources []SourceStats
}

// SourceStats is the state of one source.
type SourceStats struct {
	// Name is "ai-agents" or a crawler name.
	Name string
	URL  string
	// Failures counts failed fetches of this source.
	Failures uint64
	// LastError is the last failure's message, "" after a success.
	LastError   string
	LastSuccess time.Time
	// Entries is the number of agents or prefixes the last success held.
	Entries int
}

// AIAgentsSource is the SourceStats name of the ai.robots.txt list.
const AIAgentsSource = "ai-agents"

// NewRefresher returns a refresher with opts, defaults filled in.
func NewRefresher(opts RefresherOptions) *Refresher {
	if opts.AIAgentsURL == "" {
		opts.AIAgentsURL = DefaultAIAgentsURL
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultRefreshInterval
	}
	if opts.FetchTimeout <= 0 {
		opts.FetchTimeout = DefaultFetchTimeout
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MinRetain <= 0 || opts.MinRetain > 1 {
		opts.MinRetain = DefaultMinRetain
	}
	if opts.UserAgent == "" {
		opts.UserAgent = defaultRefreshAgent
	}
	r := &Refresher{opts: opts, client: opts.Client, log: opts.Logger, srcs: make(map[string]*SourceStats)}
	if r.client == nil {
		r.client = http.DefaultClient
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	return r
}

// source is one list to fetch.
type source struct {
	name string // AIAgentsSource or a crawler name
	url  string
}

func (r *Refresher) sources() []source {
	var out []source
	if r.opts.AIAgentsURL != "-" {
		out = append(out, source{AIAgentsSource, r.opts.AIAgentsURL})
	}
	for _, spec := range verifiedCrawlers {
		u := spec.source
		if o, ok := r.opts.RangeURLs[spec.name]; ok {
			u = o
		}
		if u != "" {
			out = append(out, source{spec.name, u})
		}
	}
	return out
}

// fetched is the outcome of one source.
type fetched struct {
	src      source
	agents   []Agent
	skipped  int
	prefixes []netip.Prefix
	err      error
}

// Refresh fetches every source once and returns the catalog built from
// what succeeded, with the entries of current for what did not (nil
// current means the embedded catalog). It returns current itself when
// nothing changed. The error joins the failures of the sources; the
// returned catalog is usable even then, and may hold the updates of the
// sources that succeeded.
func (r *Refresher) Refresh(ctx context.Context, current *Catalog) (*Catalog, error) {
	r.refreshMu.Lock()
	defer r.refreshMu.Unlock()
	if current == nil {
		emb, err := Embedded()
		if err != nil {
			return nil, err
		}
		current = emb
	}

	srcs := r.sources()
	results := make([]fetched, len(srcs))
	var wg sync.WaitGroup
	for i, s := range srcs {
		wg.Go(func() { results[i] = r.fetchSource(ctx, s, current) })
	}
	wg.Wait()

	agents, skipped := current.agents, current.skipped
	prefixes := make(map[string][]netip.Prefix, len(verifiedCrawlers))
	for _, w := range current.crawlers {
		prefixes[w.spec.name] = w.prefixes
	}
	changed := false
	var errs []error
	for _, res := range results {
		r.record(res)
		if res.err != nil {
			r.log.Warn("crawler list refresh failed; keeping the current list",
				"source", res.src.name, "url", res.src.url, "err", res.err)
			errs = append(errs, fmt.Errorf("%s: %w", res.src.name, res.err))
			continue
		}
		if res.src.name == AIAgentsSource {
			if !slices.Equal(res.agents, agents) {
				agents, skipped, changed = res.agents, res.skipped, true
			}
			continue
		}
		if !slices.Equal(res.prefixes, prefixes[res.src.name]) {
			prefixes[res.src.name] = res.prefixes
			changed = true
		}
	}

	next := current
	if changed {
		cat, err := build(agents, skipped, prefixes)
		if err != nil {
			errs = append(errs, fmt.Errorf("building catalog: %w", err))
		} else {
			next = cat
			st := cat.Stats()
			r.log.Info("crawler lists updated", "ai_agents", st.AIAgents, "crawlers", st.Crawlers, "prefixes", st.Prefixes)
		}
	}

	r.mu.Lock()
	r.stats.Refreshes++
	r.stats.LastRefresh = time.Now()
	if next != current {
		r.stats.Updates++
		r.stats.LastUpdate = r.stats.LastRefresh
	}
	r.mu.Unlock()
	return next, errors.Join(errs...)
}

// fetchSource fetches, parses and validates one source against current.
func (r *Refresher) fetchSource(ctx context.Context, s source, current *Catalog) fetched {
	res := fetched{src: s}
	body, err := r.fetch(ctx, s.url)
	if err != nil {
		res.err = err
		return res
	}
	if s.name == AIAgentsSource {
		res.agents, res.skipped, res.err = parseAgents(body)
		if res.err == nil {
			res.err = r.checkShrink(len(res.agents), len(current.agents))
		}
		return res
	}
	res.prefixes, _, res.err = parseRanges(body)
	if res.err == nil {
		prev := 0
		for _, w := range current.crawlers {
			if w.spec.name == s.name {
				prev = len(w.prefixes)
			}
		}
		res.err = r.checkShrink(len(res.prefixes), prev)
	}
	return res
}

func (r *Refresher) checkShrink(n, prev int) error {
	if n == 0 {
		return errNoPrefixes
	}
	if prev > 0 && float64(n) < r.opts.MinRetain*float64(prev) {
		return fmt.Errorf("%w: %d entries, was %d", errShrunk, n, prev)
	}
	return nil
}

// fetch GETs url with the fetch timeout and the body size limit.
func (r *Refresher) fetch(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.FetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	req.Header.Set("User-Agent", r.opts.UserAgent)
	req.Header.Set("Accept", "application/json, text/plain;q=0.9, */*;q=0.1")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, fmt.Errorf("fetch: status %d", resp.StatusCode)
	}
	limit := r.opts.MaxBodyBytes
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("fetch: body of %d bytes exceeds the %d-byte limit", resp.ContentLength, limit)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("fetch: reading body: %w", err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("fetch: body exceeds the %d-byte limit", limit)
	}
	return body, nil
}

func (r *Refresher) record(res fetched) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.srcs[res.src.name]
	if s == nil {
		s = &SourceStats{Name: res.src.name}
		r.srcs[res.src.name] = s
	}
	s.URL = res.src.url
	if res.err != nil {
		r.stats.Failures++
		s.Failures++
		s.LastError = res.err.Error()
		return
	}
	s.LastError = ""
	s.LastSuccess = time.Now()
	if res.src.name == AIAgentsSource {
		s.Entries = len(res.agents)
	} else {
		s.Entries = len(res.prefixes)
	}
}

// Stats returns a snapshot of the counters.
func (r *Refresher) Stats() RefreshStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.stats
	st.Sources = make([]SourceStats, 0, len(r.srcs))
	for _, s := range r.srcs {
		st.Sources = append(st.Sources, *s)
	}
	sort.Slice(st.Sources, func(i, j int) bool { return st.Sources[i].Name < st.Sources[j].Name })
	return st
}

// Run refreshes now and then every Interval until ctx is done, calling
// publish with each new catalog. current is the catalog in force (nil: the
// embedded one). Failures are logged and counted; the catalog in force
// stays.
func (r *Refresher) Run(ctx context.Context, current *Catalog, publish func(*Catalog)) {
	t := time.NewTicker(r.opts.Interval)
	defer t.Stop()
	for {
		next, _ := r.Refresh(ctx, current) // failures are logged and counted
		if next != nil && next != current {
			current = next
			publish(next)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
