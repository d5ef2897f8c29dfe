// Package challenge makes clients in the grey zone between "clearly human"
// and "clearly bot" prove something cheaply before they reach the site:
// a no-JavaScript round trip (meta refresh plus cookie) for low suspicion,
// or a SHA-256 proof of work solved in Web Workers for more. A solved
// challenge earns a pass: an Ed25519-signed cookie bound to the client's
// network prefix and user agent, which every instance sharing the store
// accepts for its lifetime.
//
// The edge calls Exempt and CheckPass on every request, Serve when its
// verdict is "challenge", and routes Prefix to Handler.
package challenge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scrapedefense/scrapedefense/internal/store"
)

// Prefix is the path under which the package serves its own endpoints and
// assets. The edge must route it to Handler and never challenge it.
const Prefix = "/.scrapedefense/challenge/"

// Difficulty bounds: one bit is no work at all, and beyond 32 bits a phone
// would take minutes.
const (
	minAllowedDifficulty = 1
	maxAllowedDifficulty = 32
)

// Config configures a Service. The zero value of each field selects its
// default.
type Config struct {
	// StatusCode of the challenge page. Default 403, so that caches, link
	// checkers and search engines do not take the page for the content.
	StatusCode int
	// PassTTL is how long a pass is valid. Default 24 h.
	PassTTL time.Duration
	// ChallengeTTL is how long an issued challenge may be solved. Default 5 min.
	ChallengeTTL time.Duration
	// MinDifficulty and MaxDifficulty bound the proof of work, in leading
	// zero bits of SHA-256. Defaults 14 and 20.
	MinDifficulty, MaxDifficulty int
	// NoJSWeightBelow: requests with a weight below it get the no-JS check
	// only; at or above it, proof of work. Default 10; negative means
	// always proof of work.
	NoJSWeightBelow int
	// MaxDifficultyWeight is the weight at which the proof of work reaches
	// MaxDifficulty; in between, difficulty grows linearly. Default 40.
	MaxDifficultyWeight int
	// NoJSFallbackWait is how long the proof-of-work page's no-JavaScript
	// fallback makes a person wait; the server refuses it sooner.
	// Default 10 s.
	NoJSFallbackWait time.Duration
	// CookieName is the pass cookie. Default "scrapedefense_pass"; the
	// challenge cookie is CookieName + "_challenge".
	CookieName string
	// KeyFile holds Ed25519 private keys (PEM PKCS#8 blocks, the first
	// signs, the rest only verify; or one raw, hex or base64 seed). Empty:
	// keys are generated, kept in the store and rotated automatically.
	KeyFile string
	// KeyRotation is how often the stored signing key is replaced. Default
	// 7 days; negative means never. Ignored with KeyFile.
	KeyRotation time.Duration
	// ExemptPaths are path prefixes never challenged (APIs, webhooks).
	ExemptPaths []string
	// Secure sets the Secure flag on cookies; set it when clients reach the
	// site over TLS.
	Secure bool
}

// withDefaults fills zero fields and validates the rest.
func (c Config) withDefaults() (Config, error) {
	if c.StatusCode == 0 {
		c.StatusCode = http.StatusForbidden
	}
	if c.PassTTL == 0 {
		c.PassTTL = 24 * time.Hour
	}
	if c.ChallengeTTL == 0 {
		c.ChallengeTTL = 5 * time.Minute
	}
	if c.MinDifficulty == 0 {
		c.MinDifficulty = 14
	}
	if c.MaxDifficulty == 0 {
		c.MaxDifficulty = max(20, c.MinDifficulty)
	}
	if c.NoJSWeightBelow == 0 {
		c.NoJSWeightBelow = 10
	}
	if c.MaxDifficultyWeight == 0 {
		c.MaxDifficultyWeight = 40
	}
	if c.NoJSFallbackWait == 0 {
		c.NoJSFallbackWait = 10 * time.Second
	}
	if c.CookieName == "" {
		c.CookieName = "scrapedefense_pass"
	}
	if c.KeyRotation == 0 {
		c.KeyRotation = 7 * 24 * time.Hour
	}
	var errs []error
	if c.StatusCode < 200 || c.StatusCode > 599 {
		errs = append(errs, fmt.Errorf("status code %d is not an HTTP status", c.StatusCode))
	}
	if c.PassTTL < time.Minute {
		errs = append(errs, fmt.Errorf("pass TTL %v is under a minute", c.PassTTL))
	}
	if c.ChallengeTTL < 10*time.Second {
		errs = append(errs, fmt.Errorf("challenge TTL %v is under 10 s", c.ChallengeTTL))
	}
	if c.MinDifficulty < minAllowedDifficulty || c.MaxDifficulty > maxAllowedDifficulty || c.MinDifficulty > c.MaxDifficulty {
		errs = append(errs, fmt.Errorf("difficulty %d..%d outside %d..%d or reversed",
			c.MinDifficulty, c.MaxDifficulty, minAllowedDifficulty, maxAllowedDifficulty))
	}
	if c.NoJSFallbackWait < 0 || c.NoJSFallbackWait >= c.ChallengeTTL {
		errs = append(errs, fmt.Errorf("no-JS fallback wait %v must be positive and under the challenge TTL %v", c.NoJSFallbackWait, c.ChallengeTTL))
	}
	if !validCookieName(c.CookieName) {
		errs = append(errs, fmt.Errorf("cookie name %q is not a valid cookie token", c.CookieName))
	}
	for _, p := range c.ExemptPaths {
		if len(p) == 0 || p[0] != '/' {
			errs = append(errs, fmt.Errorf("exempt path %q must start with /", p))
		}
	}
	return c, errors.Join(errs...)
}

func validCookieName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// Event is emitted for every challenge issued, passed or failed. Passes
// are human labels for the escalation engine; failures are bot signals.
type Event struct {
	Time      time.Time
	ClientIP  string
	UserAgent string
	Path      string
	Method    string // challenge method: "nojs", "pow", "fallback", or "pass" for a bad cookie
	Kind      string // "issued", "passed", "failed"
	Reason    string // failure reason; empty otherwise
	SolveTime time.Duration
}

// Event kinds.
const (
	EventIssued = "issued"
	EventPassed = "passed"
	EventFailed = "failed"
)

// Service issues challenges and verifies solutions and passes. It is safe
// for concurrent use.
type Service struct {
	cfg     Config
	kv      store.KV
	logger  *slog.Logger
	onEvent func(Event)
	now     func() time.Time

	keys       atomic.Pointer[keyring]
	staticKeys bool          // keys from KeyFile: never reloaded or rotated
	reload     chan struct{} // asks the key maintainer to reload now
	verified   *verifiedCache
	metrics    *metrics
	pages      *pages

	challengeCookie string
}

// keyRefreshInterval is how often the shared keyring is reloaded, so that
// a rotation by another instance is seen within it.
const keyRefreshInterval = 30 * time.Second

// New builds a Service. The keyring is loaded (or created) from kv before
// New returns; ctx bounds that and the background goroutine that reloads
// and rotates keys, which stops when ctx ends. onEvent, if not nil, is
// called synchronously for every event and must not block.
func New(ctx context.Context, cfg Config, kv store.KV, reg prometheus.Registerer, logger *slog.Logger, onEvent func(Event)) (*Service, error) {
	return newService(ctx, cfg, kv, reg, logger, onEvent, time.Now)
}

func newService(ctx context.Context, cfg Config, kv store.KV, reg prometheus.Registerer, logger *slog.Logger, onEvent func(Event), now func() time.Time) (*Service, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("challenge config: %w", err)
	}
	if kv == nil {
		return nil, errors.New("challenge: a store is required")
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	pg, err := newPages(cfg)
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg:             cfg,
		kv:              kv,
		logger:          logger,
		onEvent:         onEvent,
		now:             now,
		reload:          make(chan struct{}, 1),
		verified:        newVerifiedCache(verifiedCacheSize),
		metrics:         m,
		pages:           pg,
		challengeCookie: cfg.CookieName + "_challenge",
	}
	if cfg.KeyFile != "" {
		r, err := loadKeyFile(cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("challenge: %w", err)
		}
		s.keys.Store(r)
		s.staticKeys = true
		return s, nil
	}
	if err := s.maintainKeys(ctx); err != nil {
		return nil, fmt.Errorf("challenge: %w", err)
	}
	go s.keyMaintainer(ctx)
	return s, nil
}

// keyMaintainer reloads and rotates the keyring until ctx ends.
func (s *Service) keyMaintainer(ctx context.Context) {
	tick := time.NewTicker(keyRefreshInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-s.reload:
		}
		if err := s.maintainKeys(ctx); err != nil && ctx.Err() == nil {
			s.logger.Warn("challenge: key maintenance failed", "err", err)
		}
		// A flood of cookies with unknown key ids triggers at most one
		// reload per interval.
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// requestReload asks the maintainer to reload the keyring soon, without
// blocking: a pass signed by a key this instance has not seen yet may come
// from another instance that just rotated.
func (s *Service) requestReload() {
	if s.staticKeys {
		return
	}
	select {
	case s.reload <- struct{}{}:
	default:
	}
}

// emit sends an event to the callback, if any.
func (s *Service) emit(r *http.Request, client netip.Addr, m, kind string, why reason, solve time.Duration) {
	if s.onEvent == nil {
		return
	}
	s.onEvent(Event{
		Time:      s.now(),
		ClientIP:  client.String(),
		UserAgent: r.UserAgent(),
		Path:      r.URL.Path,
		Method:    m,
		Kind:      kind,
		Reason:    string(why),
		SolveTime: solve,
	})
}

// fail counts and reports a rejection.
func (s *Service) fail(r *http.Request, client netip.Addr, m string, why reason) {
	s.metrics.failed.WithLabelValues(m, string(why)).Inc()
	s.emit(r, client, m, EventFailed, why, 0)
}
