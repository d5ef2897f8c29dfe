// Package escalation scores clients the edge reported: heuristics on the
// request, behaviour over decayed windows per address, subnet and client
// fingerprint, page-to-page navigation against a model learned from human
// visitors, a logistic-regression model over all of those features, and an
// optional, time-budgeted grey-zone classifier. The result is a verdict on
// the ladder allow < challenge < throttle < tarpit < block, with the reasons
// that produced it. docs/escalation.md describes the signals and weights.
package escalation

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/events"
)

// Actions on the ladder, in the order the score climbs them.
const (
	ActionAllow     = "allow"
	ActionChallenge = "challenge"
	ActionThrottle  = "throttle"
	ActionTarpit    = "tarpit"
	ActionBlock     = "block"
)

var ladder = [...]string{ActionAllow, ActionChallenge, ActionThrottle, ActionTarpit, ActionBlock}

// Engine scores events. It is safe for concurrent use.
type Engine struct {
	opts         Options
	tau          float64 // Options.Window in seconds
	historyTau   float64
	model        atomic.Pointer[Model]
	ips          *table
	subnets      *table
	fingerprints *table
	nav          *navigation
	offences     *offenceTable
	greySlots    chan struct{}
	m            *metrics
}

// New builds an engine.
func New(opts Options) (*Engine, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	e := &Engine{
		opts:         opts,
		tau:          math.Max(opts.Window.Seconds(), 1),
		historyTau:   math.Max(opts.HistoryWindow.Seconds(), 1),
		ips:          newTable(opts.MaxIPs, opts.Shards),
		subnets:      newTable(opts.MaxSubnets, opts.Shards),
		fingerprints: newTable(opts.MaxFingerprints, opts.Shards),
		nav:          newNavigation(opts.MaxTransitions),
		offences:     newOffenceTable(opts.MaxOffenders, opts.Shards),
		greySlots:    make(chan struct{}, opts.GreyMaxInFlight),
	}
	if e.m, err = newMetrics(opts.Registerer, e); err != nil {
		return nil, err
	}
	e.SetModel(opts.Model)
	return e, nil
}

// SetModel installs m for the events scored from now on (hot swap). A nil m
// is ignored.
func (e *Engine) SetModel(m *Model) {
	if m == nil {
		return
	}
	e.model.Store(m)
	if e.opts.OnModel != nil {
		e.opts.OnModel(m.version)
	}
}

// Model returns the model in use.
func (e *Engine) Model() *Model { return e.model.Load() }

// minReasonWeight hides contributions too small to explain anything.
const minReasonWeight = 0.05

// Score runs the stages on one event and returns the verdict with its
// reasons. It also updates the behaviour windows: every event, including
// asset requests and allowed ones, is an observation. With
// Options.OnGreyVerdict set, a grey-zone opinion is delivered later
// instead of awaited.
func (e *Engine) Score(ctx context.Context, ev events.Event) events.Verdict {
	return e.score(ctx, ev, e.opts.OnGreyVerdict == nil)
}

// ScoreWait is Score that always waits (within the budget) for the grey
// zone: the synchronous POST /escalate answers with the final verdict.
func (e *Engine) ScoreWait(ctx context.Context, ev events.Event) events.Verdict {
	return e.score(ctx, ev, true)
}

func (e *Engine) score(ctx context.Context, ev events.Event, waitGrey bool) events.Verdict {
	start := time.Now()
	model := e.model.Load()
	o := e.observe(&ev)
	v := events.Verdict{
		Time:         e.opts.Now(),
		ClientIP:     ev.ClientIP,
		ModelVersion: model.version,
		Reasons:      make([]events.Reason, 0, 8),
	}
	for i, x := range o.features {
		if x == 0 {
			continue
		}
		if w := model.weights[i] * x; math.Abs(w) >= minReasonWeight || o.certain && features[i].stage == StageHeuristics {
			v.Reasons = append(v.Reasons, events.Reason{Stage: features[i].stage, Signal: features[i].name, Weight: w, Detail: features[i].detail})
		}
	}
	if o.certain {
		v.Score = 1
		v.Stopped = StageHeuristics
		e.m.stopped.Inc()
	} else {
		v.Score = sigmoid(model.logit(&o.features))
	}

	protected := ""
	if ev.CrawlerVerified {
		protected = "verified crawler"
		if ev.Crawler != "" {
			protected += " " + ev.Crawler
		}
	} else if e.opts.Protected != nil && o.addr.IsValid() {
		protected = e.opts.Protected(o.addr)
	}

	grey := !o.certain && protected == "" && e.opts.GreyZone != nil && v.Score >= e.opts.GreyLow && v.Score <= e.opts.GreyHigh
	if grey && waitGrey {
		e.askGreyZone(ctx, &ev, &v)
	}
	action := e.settle(&v, o.addr, protected)
	if grey && !waitGrey {
		e.askGreyZoneLater(ev, v, o.addr)
	}

	// Teach the navigation model with clients that look human.
	if action == 0 && protected == "" && o.from != 0 && o.loadsAsset && v.Score < e.opts.NavLearnBelow {
		e.nav.learn(o.from, o.to)
	}

	e.m.scored.Inc()
	e.m.verdicts[action].Inc()
	e.m.decision.Observe(time.Since(start).Seconds())
	return v
}

// settle sets the verdict's action from its score, and the decision TTL
// from the client's offences, and returns the ladder index.
func (e *Engine) settle(v *events.Verdict, addr netip.Addr, protected string) int {
	action := e.rung(v.Score)
	if protected != "" {
		v.Protected = protected
		action = 0
	}
	v.Action = ladder[action]
	if action > 0 && addr.IsValid() {
		offences := e.offences.record(addr, v.Time, e.opts.OffenceCooldown, e.opts.OffenceMemory)
		v.Offences = offences
		v.TTL = e.ttl(action, offences)
	}
	return action
}

// rung returns the ladder index the score reaches.
func (e *Engine) rung(score float64) int {
	t := e.opts.Thresholds
	switch {
	case score >= t.Block:
		return 4
	case score >= t.Tarpit:
		return 3
	case score >= t.Throttle:
		return 2
	case score >= t.Challenge:
		return 1
	}
	return 0
}

// ttl is the action's base TTL grown for each earlier offence, capped.
func (e *Engine) ttl(action, offences int) time.Duration {
	var base time.Duration
	switch action {
	case 1:
		base = e.opts.TTL.Challenge
	case 2:
		base = e.opts.TTL.Throttle
	case 3:
		base = e.opts.TTL.Tarpit
	default:
		base = e.opts.TTL.Block
	}
	d := float64(base) * math.Pow(e.opts.TTLGrowth, float64(offences))
	if d > float64(e.opts.MaxTTL) || math.IsInf(d, 0) || math.IsNaN(d) {
		return e.opts.MaxTTL
	}
	return time.Duration(d)
}

// String describes the engine's configuration for logs.
func (e *Engine) String() string {
	t := e.opts.Thresholds
	return fmt.Sprintf("escalation(model=%s challenge=%.2f throttle=%.2f tarpit=%.2f block=%.2f)",
		e.model.Load().version, t.Challenge, t.Throttle, t.Tarpit, t.Block)
}
