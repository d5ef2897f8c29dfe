// Package policy is the rule engine of the edge's fast path: an ordered list
// of rules whose matchers look at one request (user agent, path, headers,
// address, crawler identity, robots.txt) and either decide (action) or add
// to a score (weight) that thresholds turn into an action.
//
// A policy is compiled once by Load and is then read-only, so one *Policy
// may be evaluated by any number of goroutines. Evaluate does not allocate.
package policy

import (
	"net/http"
	"net/netip"

	"github.com/scrapedefense/scrapedefense/internal/crawlers"
	"github.com/scrapedefense/scrapedefense/internal/decision"
)

// MaxMatched is how many matched rules a Result records.
const MaxMatched = 8

// MaxUserAgentLen is how much of the user agent the matchers look at. A
// longer user agent (only an attacker sends one) is cut to its first
// MaxUserAgentLen bytes before any matcher sees it, so that the cost of a
// request is bounded whatever it carries.
const MaxUserAgentLen = 1024

// Request is what the policy sees of one HTTP request. The edge fills it
// once per request; Evaluate only reads it.
type Request struct {
	Addr      netip.Addr
	Method    string
	Host      string // may carry a port, which matchers ignore
	Path      string // without query
	UserAgent string
	// Header must have canonical keys, as net/http provides them.
	Header  http.Header
	Crawler crawlers.Identity
	Robots  RobotsChecker // may be nil: robots_disallowed then never matches
}

// RobotsChecker answers from the site's robots.txt.
type RobotsChecker interface {
	// Disallowed reports whether robots.txt forbids path to userAgent.
	Disallowed(userAgent, path string) bool
}

// Matched is one rule that matched a request.
type Matched struct {
	Rule   string
	Weight int
	Action decision.Action
}

// Result is the outcome of evaluating one request. It is a plain value so
// that the caller can keep it on the stack.
type Result struct {
	Action         decision.Action // ActionNone if no terminal rule and no threshold reached
	Rule           string          // rule (or "threshold:<weight>") that set Action
	Weight         int             // sum of the matched rules' weights (up to a terminal rule)
	SkipThresholds bool
	Matched        [MaxMatched]Matched // the rules that matched, in order (first MaxMatched)
	NMatched       int                 // entries used in Matched
	Dropped        int                 // rules that matched but did not fit in Matched
}

// MatchedRules returns the recorded matched rules.
func (r *Result) MatchedRules() []Matched { return r.Matched[:r.NMatched] }

func (r *Result) record(m Matched) {
	if r.NMatched == MaxMatched {
		r.Dropped++
		return
	}
	r.Matched[r.NMatched] = m
	r.NMatched++
}

// Policy is a compiled policy. It is immutable and safe for concurrent use.
type Policy struct {
	rules      []rule
	thresholds []threshold // by weight, highest first
	agents     *agentIndex
}

type rule struct {
	name, description string
	line              int
	match             node
	action            decision.Action // terminal when not ActionNone
	weight            int
	skipThresholds    bool
}

type threshold struct {
	weight int
	action decision.Action
	label  string // "threshold:<weight>", built once so that Evaluate does not allocate
}

// RuleInfo describes a rule for the admin UI and documentation.
type RuleInfo struct {
	Name           string
	Description    string
	Line           int             // line in the policy file
	Action         decision.Action // ActionNone for a weight rule
	Weight         int
	SkipThresholds bool
}

// Threshold turns a total weight into an action.
type Threshold struct {
	Weight int
	Action decision.Action
}

// Rules lists the rules in evaluation order.
func (p *Policy) Rules() []RuleInfo {
	out := make([]RuleInfo, len(p.rules))
	for i, r := range p.rules {
		out[i] = RuleInfo{
			Name:           r.name,
			Description:    r.description,
			Line:           r.line,
			Action:         r.action,
			Weight:         r.weight,
			SkipThresholds: r.skipThresholds,
		}
	}
	return out
}

// Thresholds lists the thresholds, highest weight first.
func (p *Policy) Thresholds() []Threshold {
	out := make([]Threshold, len(p.thresholds))
	for i, t := range p.thresholds {
		out[i] = Threshold{Weight: t.weight, Action: t.action}
	}
	return out
}

// Evaluate runs the rules in order against r and writes the outcome to res.
// The first matching rule with an action decides; otherwise the matching
// rules' weights are summed and the highest threshold reached decides,
// unless a matching rule set skip_thresholds. It does not allocate.
func (p *Policy) Evaluate(r *Request, res *Result) {
	*res = Result{}
	ev := evaluation{req: r, agents: p.agents}
	ev.ua = r.UserAgent
	if len(ev.ua) > MaxUserAgentLen {
		ev.ua = ev.ua[:MaxUserAgentLen]
	}
	ev.addr = r.Addr.Unmap()
	for i := range p.rules {
		ru := &p.rules[i]
		if !ev.match(&ru.match) {
			continue
		}
		res.record(Matched{Rule: ru.name, Weight: ru.weight, Action: ru.action})
		if ru.skipThresholds {
			res.SkipThresholds = true
		}
		if ru.action != decision.ActionNone {
			res.Action, res.Rule = ru.action, ru.name
			return
		}
		res.Weight += ru.weight
	}
	if res.SkipThresholds {
		return
	}
	for i := range p.thresholds {
		if t := &p.thresholds[i]; res.Weight >= t.weight {
			res.Action, res.Rule = t.action, t.label
			return
		}
	}
}
