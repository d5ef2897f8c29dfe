package escalation

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scrapedefense/scrapedefense/internal/events"
)

// Thresholds are the scores (probability that the client is a bot) at which
// each rung of the ladder starts: allow < challenge < throttle < tarpit <
// block.
type Thresholds struct {
	Challenge, Throttle, Tarpit, Block float64
}

// DefaultThresholds is the ladder used when Options.Thresholds is zero.
var DefaultThresholds = Thresholds{Challenge: 0.5, Throttle: 0.7, Tarpit: 0.8, Block: 0.9}

// TTLs are the base decision lifetimes per action, for a first offence.
type TTLs struct {
	Challenge, Throttle, Tarpit, Block time.Duration
}

// DefaultTTLs is used for TTLs left zero.
var DefaultTTLs = TTLs{Challenge: 30 * time.Minute, Throttle: 15 * time.Minute, Tarpit: time.Hour, Block: 4 * time.Hour}

// Options configure an Engine. Zero values take the documented defaults.
type Options struct {
	Thresholds Thresholds
	TTL        TTLs
	// TTLGrowth multiplies the TTL for each earlier offence (default 2), up
	// to MaxTTL (default 7 days).
	TTLGrowth float64
	MaxTTL    time.Duration
	// OffenceCooldown: non-allow verdicts closer together than this count as
	// one offence (default 10 minutes), so that one burst is one offence.
	OffenceCooldown time.Duration
	// OffenceMemory: offences older than this are forgotten (default 7 days).
	OffenceMemory time.Duration
	// MaxOffenders bounds the offence table (default 100,000).
	MaxOffenders int

	// GreyZone is asked about scores in [GreyLow, GreyHigh] (default 0.4 and
	// 0.8) within GreyBudget (default 800 ms). Its opinion is blended in with
	// GreyWeight (default 0.5). At most GreyMaxInFlight (default 64) calls
	// run at once; past that the grey zone is skipped ("busy").
	GreyZone        GreyZone
	GreyLow         float64
	GreyHigh        float64
	GreyBudget      time.Duration
	GreyWeight      float64
	GreyMaxInFlight int

	// Window is the decay time constant of the behaviour counters (default
	// 3 minutes); HistoryWindow that of trap, challenge and address history
	// (default 1 hour).
	Window        time.Duration
	HistoryWindow time.Duration
	// Memory bounds: window entries per IP (default 1,000,000), per subnet
	// (default 262,144) and per fingerprint (default 262,144), navigation
	// transitions (default 65,536), and the number of shards (default 64).
	MaxIPs          int
	MaxSubnets      int
	MaxFingerprints int
	MaxTransitions  int
	Shards          int
	// NavMinObservations is how many human transitions the navigation model
	// needs before it scores (default 500). NavLearnBelow is the score under
	// which an allowed client that loads assets teaches the model (default
	// 0.2).
	NavMinObservations int
	NavLearnBelow      float64

	// Model to start with (default DefaultModel()).
	Model *Model
	// Protected returns a non-empty reason for clients that must never get
	// more than allow (trusted proxies, operator allow decisions). Verified
	// crawlers are protected through Event.CrawlerVerified.
	Protected func(ip netip.Addr) string
	// Registerer receives the metrics (default: a private registry).
	Registerer prometheus.Registerer
	// OnGreyVerdict, when set, makes Score asynchronous about the grey
	// zone: Score returns at once with the other stages' verdict and, when
	// the opinion arrives within the budget and changes the action, calls
	// OnGreyVerdict with the refined verdict (from another goroutine). The
	// queue workers use it so that a slow classifier never holds them;
	// ScoreWait still waits.
	OnGreyVerdict func(ev events.Event, v events.Verdict)
	// OnModel is called with the version whenever a model is installed (at
	// New and on SetModel); the role wires it to telemetry's
	// model_version_info.
	OnModel func(version string)
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// withDefaults fills zero values and validates the rest, reporting every
// problem at once.
func (o Options) withDefaults() (Options, error) {
	if o.Thresholds == (Thresholds{}) {
		o.Thresholds = DefaultThresholds
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.TTL.Challenge, DefaultTTLs.Challenge)
	def(&o.TTL.Throttle, DefaultTTLs.Throttle)
	def(&o.TTL.Tarpit, DefaultTTLs.Tarpit)
	def(&o.TTL.Block, DefaultTTLs.Block)
	def(&o.MaxTTL, 7*24*time.Hour)
	def(&o.OffenceCooldown, 10*time.Minute)
	def(&o.OffenceMemory, 7*24*time.Hour)
	def(&o.GreyBudget, 800*time.Millisecond)
	def(&o.Window, 3*time.Minute)
	def(&o.HistoryWindow, time.Hour)
	deff := func(f *float64, v float64) {
		if *f == 0 {
			*f = v
		}
	}
	deff(&o.TTLGrowth, 2)
	deff(&o.GreyLow, 0.4)
	deff(&o.GreyHigh, 0.8)
	deff(&o.GreyWeight, 0.5)
	deff(&o.NavLearnBelow, 0.2)
	defi := func(i *int, v int) {
		if *i == 0 {
			*i = v
		}
	}
	defi(&o.MaxOffenders, 100_000)
	defi(&o.GreyMaxInFlight, 64)
	defi(&o.MaxIPs, 1_000_000)
	defi(&o.MaxSubnets, 262_144)
	defi(&o.MaxFingerprints, 262_144)
	defi(&o.MaxTransitions, 65_536)
	defi(&o.Shards, 64)
	defi(&o.NavMinObservations, 500)
	if o.Model == nil {
		o.Model = DefaultModel()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}

	var errs []error
	t := o.Thresholds
	if !(0 < t.Challenge && t.Challenge < t.Throttle && t.Throttle < t.Tarpit && t.Tarpit < t.Block && t.Block <= 1) {
		errs = append(errs, fmt.Errorf("thresholds must satisfy 0 < challenge < throttle < tarpit < block <= 1, got %+v", t))
	}
	for name, d := range map[string]time.Duration{
		"ttl.challenge": o.TTL.Challenge, "ttl.throttle": o.TTL.Throttle, "ttl.tarpit": o.TTL.Tarpit,
		"ttl.block": o.TTL.Block, "max_ttl": o.MaxTTL, "offence_cooldown": o.OffenceCooldown,
		"offence_memory": o.OffenceMemory, "grey_budget": o.GreyBudget, "window": o.Window,
		"history_window": o.HistoryWindow,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative, got %s", name, d))
		}
	}
	if !(o.TTLGrowth >= 1) || !finite(o.TTLGrowth) {
		errs = append(errs, fmt.Errorf("ttl growth must be a finite number >= 1, got %v", o.TTLGrowth))
	}
	if !(0 <= o.GreyLow && o.GreyLow < o.GreyHigh && o.GreyHigh <= 1) {
		errs = append(errs, fmt.Errorf("grey zone band must satisfy 0 <= low < high <= 1, got %v-%v", o.GreyLow, o.GreyHigh))
	}
	if !(0 < o.GreyWeight && o.GreyWeight <= 1) {
		errs = append(errs, fmt.Errorf("grey zone weight must be in (0, 1], got %v", o.GreyWeight))
	}
	if !(0 <= o.NavLearnBelow && o.NavLearnBelow <= 1) {
		errs = append(errs, fmt.Errorf("navigation learn threshold must be in [0, 1], got %v", o.NavLearnBelow))
	}
	for name, n := range map[string]int{
		"max_offenders": o.MaxOffenders, "grey_max_in_flight": o.GreyMaxInFlight, "max_ips": o.MaxIPs,
		"max_subnets": o.MaxSubnets, "max_fingerprints": o.MaxFingerprints, "max_transitions": o.MaxTransitions,
		"shards": o.Shards, "nav_min_observations": o.NavMinObservations,
	} {
		if n < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative, got %d", name, n))
		}
	}
	if o.Shards > 4096 {
		errs = append(errs, fmt.Errorf("shards must be at most 4096, got %d", o.Shards))
	}
	if len(errs) > 0 {
		return o, fmt.Errorf("escalation options: %w", errors.Join(errs...))
	}
	return o, nil
}
