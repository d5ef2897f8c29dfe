// Package edge is the proxy in front of the site: client identity, the
// in-memory fast path that decides allow / throttle / block, the reverse
// proxy, the forward-auth endpoint, and the events it emits for analysis.
package edge

import (
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/crawlers"
	"github.com/scrapedefense/scrapedefense/internal/decision"
	"github.com/scrapedefense/scrapedefense/internal/policy"
	"github.com/scrapedefense/scrapedefense/internal/ratelimit"
	"github.com/scrapedefense/scrapedefense/internal/robots"
)

// Stage names the step of the fast path that produced a verdict.
type Stage uint8

// Stages in evaluation order.
const (
	StageNone Stage = iota
	StageCrawler
	StageDecision
	StagePolicy
	StageRateLimit
	// StageChallengePass and StageChallengeExempt turn a challenge verdict
	// into an allow: the client holds a valid pass, or the request is one
	// that is never challenged (robots.txt, feeds, ...).
	StageChallengePass
	StageChallengeExempt
	// StageTrap sends a request for the hidden maze entrance to the tarpit.
	StageTrap
)

var stageNames = [...]string{"none", "verified-crawler", "decision", "policy", "rate-limit", "challenge-pass", "challenge-exempt", "trap"}

func (s Stage) String() string { return stageNames[s] }

// Verdict is the outcome of the fast path with everything that explains it.
// It is a plain value filled in place so that deciding allocates nothing.
type Verdict struct {
	Action   decision.Action
	Stage    Stage
	Rule     string // metric label: a policy rule name, or the stage name
	Crawler  crawlers.Identity
	Decision decision.Match
	Policy   policy.Result
	Limit    ratelimit.Result
}

// Trivial reports whether the verdict is a plain allow that matched nothing:
// such requests are not worth an event.
func (v *Verdict) Trivial() bool {
	return v.Action == decision.ActionAllow && v.Stage == StageNone && v.Policy.NMatched == 0 && v.Policy.Weight == 0
}

// FastPath holds the in-memory state the edge consults per request. Its
// parts are swapped atomically on reload, so a request always sees one
// consistent policy and catalog.
type FastPath struct {
	catalog       atomic.Pointer[crawlers.Catalog]
	policy        atomic.Pointer[policy.Policy]
	robots        atomic.Pointer[robots.Robots]
	index         *decision.Index
	limiter       *ratelimit.Limiter
	allowVerified bool
}

// NewFastPath assembles a fast path. limiter may be nil (no rate limits).
func NewFastPath(cat *crawlers.Catalog, pol *policy.Policy, index *decision.Index, limiter *ratelimit.Limiter, allowVerified bool) *FastPath {
	f := &FastPath{index: index, limiter: limiter, allowVerified: allowVerified}
	f.catalog.Store(cat)
	f.policy.Store(pol)
	return f
}

// SetPolicy swaps the policy in use.
func (f *FastPath) SetPolicy(p *policy.Policy) { f.policy.Store(p) }

// Policy returns the policy in use.
func (f *FastPath) Policy() *policy.Policy { return f.policy.Load() }

// SetCatalog swaps the crawler catalog in use.
func (f *FastPath) SetCatalog(c *crawlers.Catalog) { f.catalog.Store(c) }

// Catalog returns the crawler catalog in use.
func (f *FastPath) Catalog() *crawlers.Catalog { return f.catalog.Load() }

// Index is the decision index the fast path consults.
func (f *FastPath) Index() *decision.Index { return f.index }

// Decide runs the fast path for req at now and fills v. With count false the
// rate limiter is only consulted, not charged (used by explain).
func (f *FastPath) Decide(req *policy.Request, now time.Time, count bool, v *Verdict) {
	*v = Verdict{}
	nowNano := now.UnixNano()
	req.Crawler = f.catalog.Load().Identify(req.UserAgent, req.Addr)
	v.Crawler = req.Crawler
	if req.Robots == nil {
		if r := f.robots.Load(); r != nil {
			req.Robots = r
		}
	}

	// 1. Search crawlers that prove who they are by their address. A
	// declared AI crawler is not let through here even when verified: the
	// policy decides about it.
	if f.allowVerified && req.Crawler.Verified && req.Crawler.AIAgent == "" {
		v.Action, v.Stage, v.Rule = decision.ActionAllow, StageCrawler, StageCrawler.String()
		return
	}
	// 2. Decisions: blocklist and allowlist entries with expiry.
	if m, ok := f.index.Lookup(req.Addr, nowNano); ok {
		v.Decision = m
		v.Action, v.Stage, v.Rule = m.Action, StageDecision, StageDecision.String()
		return
	}
	// 3. Policy rules and weight thresholds.
	f.policy.Load().Evaluate(req, &v.Policy)
	if v.Policy.Action != decision.ActionNone {
		v.Action, v.Stage, v.Rule = v.Policy.Action, StagePolicy, v.Policy.Rule
		if v.Action == decision.ActionAllow {
			return // an explicit allow is not rate limited
		}
	}
	// 4. Rate limits per address and per subnet.
	if f.limiter != nil && (v.Action == decision.ActionNone || v.Action == decision.ActionThrottle) {
		if count {
			v.Limit = f.limiter.Allow(req.Addr, nowNano)
		} else {
			v.Limit = f.limiter.Peek(req.Addr, nowNano)
		}
		if !v.Limit.Allowed && v.Action == decision.ActionNone {
			v.Action, v.Stage, v.Rule = decision.ActionThrottle, StageRateLimit, StageRateLimit.String()
			return
		}
	}
	if v.Action == decision.ActionNone {
		v.Action = decision.ActionAllow
	}
	if v.Rule == "" {
		v.Rule = StageNone.String() // the metric label of a plain allow
	}
}

// Explain writes a human-readable account of the verdict.
func (v *Verdict) Explain(w io.Writer) {
	fmt.Fprintf(w, "verdict: %s\n", v.Action)
	fmt.Fprintf(w, "decided by: %s", v.Stage)
	if v.Rule != "" && v.Rule != v.Stage.String() {
		fmt.Fprintf(w, " (%s)", v.Rule)
	}
	fmt.Fprintln(w)
	switch {
	case v.Crawler.Verified:
		fmt.Fprintf(w, "crawler: %s, verified by its published address ranges\n", v.Crawler.Name)
	case v.Crawler.Impostor():
		fmt.Fprintf(w, "crawler: claims to be %s but the address is outside its published ranges (impostor)\n", v.Crawler.Name)
	}
	if v.Crawler.AIAgent != "" {
		fmt.Fprintf(w, "ai.robots.txt agent: %s\n", v.Crawler.AIAgent)
	}
	if v.Stage == StageDecision {
		d := v.Decision
		exp := "never"
		if d.Expires != 0 {
			exp = time.Unix(0, d.Expires).UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(w, "decision: %s %s (reason %q, source %s, expires %s)\n", d.Prefix, d.Action, d.Reason, d.Source, exp)
	}
	if v.Stage == StagePolicy || v.Policy.NMatched > 0 || v.Policy.Weight != 0 {
		v.Policy.Explain(w)
	}
	if v.Limit.Count > 0 || !v.Limit.Allowed && v.Stage == StageRateLimit {
		state := "within limits"
		if !v.Limit.Allowed {
			state = fmt.Sprintf("over the %s limit, retry after %s", v.Limit.Scope, v.Limit.RetryAfter.Round(time.Second))
		}
		fmt.Fprintf(w, "rate limit: %d recent requests, %s\n", v.Limit.Count, state)
	}
}

// SetRobots installs the site's parsed robots.txt for the robots_disallowed
// matcher; nil clears it.
func (f *FastPath) SetRobots(r *robots.Robots) { f.robots.Store(r) }
