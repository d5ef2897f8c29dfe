package main

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
)

// storedDecision is the part of the edge's decision record the scorer
// reads from the decisions API.
type storedDecision struct {
	Value  string `json:"value"`
	Action string `json:"action"`
	Source string `json:"source"`
}

// applyDecisions attributes stored decisions to clients. A tarpit looks
// like an ordinary slow page by design, so a client the responses did not
// stop but a tarpit or block decision covers counts as stopped by it, with
// all its requests counted as having got through.
func applyDecisions(clients []*clientRec, ds []storedDecision) {
	type pd struct {
		p      netip.Prefix
		action string
	}
	var parsed []pd
	for _, d := range ds {
		p, err := netip.ParsePrefix(d.Value)
		if err != nil {
			a, err := netip.ParseAddr(d.Value)
			if err != nil {
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		parsed = append(parsed, pd{p, d.Action})
	}
	for _, c := range clients {
		for _, d := range parsed {
			if d.p.Contains(c.Addr) && rank(d.action) > rank(c.Decision) {
				c.Decision = d.action
			}
		}
		if c.Stopped {
			continue
		}
		switch c.Decision {
		case "tarpit":
			c.Stopped, c.Stop, c.StopByDecision = true, verdictTarpit, true
		case "block":
			c.Stopped, c.Stop, c.StopByDecision = true, verdictBlock, true
		}
	}
}

func rank(action string) int {
	return slices.Index([]string{"", "allow", "throttle", "challenge", "tarpit", "block"}, action)
}

// familyScore is one row of the per-family table.
type familyScore struct {
	Family         family
	Clients        int
	Requests       int
	ByStop         [numVerdicts]int // clients by their first non-allow verdict (allow: never stopped)
	EverChallenged int
	EverBlocked    int
	Decisions      int // clients covered by a stored decision
	// Through is the per-client count of content requests allowed before
	// the stop, with never-stopped clients counted as +Inf.
	MedianThrough, P90Through float64
	HiddenLinks               int
	Kinds                     []kindScore
}

// kindScore is how one kind of client within a family fared.
type kindScore struct {
	Kind             string
	Clients, Stopped int
}

func scoreFamilies(clients []*clientRec) map[family]*familyScore {
	out := make(map[family]*familyScore, len(families))
	through := map[family][]float64{}
	kinds := map[family]map[string]*kindScore{}
	for _, f := range families {
		out[f] = &familyScore{Family: f}
		kinds[f] = map[string]*kindScore{}
	}
	for _, c := range clients {
		s := out[c.Family]
		if s == nil {
			continue
		}
		s.Clients++
		s.Requests += c.Requests
		if c.Stopped {
			s.ByStop[c.Stop]++
			through[c.Family] = append(through[c.Family], float64(c.Through))
		} else {
			s.ByStop[verdictAllow]++
			through[c.Family] = append(through[c.Family], math.Inf(1))
		}
		if c.ever(verdictChallenge) {
			s.EverChallenged++
		}
		if c.ever(verdictBlock) || (c.StopByDecision && c.Stop == verdictBlock) {
			s.EverBlocked++
		}
		if c.Decision != "" {
			s.Decisions++
		}
		s.HiddenLinks += c.HiddenLinks
		if c.Kind != "" {
			k := kinds[c.Family][c.Kind]
			if k == nil {
				k = &kindScore{Kind: c.Kind}
				kinds[c.Family][c.Kind] = k
			}
			k.Clients++
			if c.Stopped {
				k.Stopped++
			}
		}
	}
	for f, s := range out {
		s.MedianThrough = quantile(through[f], 0.5)
		s.P90Through = quantile(through[f], 0.9)
		for _, k := range kinds[f] {
			s.Kinds = append(s.Kinds, *k)
		}
		slices.SortFunc(s.Kinds, func(a, b kindScore) int { return strings.Compare(a.Kind, b.Kind) })
	}
	return out
}

// quantile is the nearest-rank quantile; NaN for no values.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(len(s)-1, i))]
}

// target is one of the goals, measured.
type target struct {
	Name     string
	Goal     string
	Measured string
	Pass     bool
	NoData   bool
}

// evaluateTargets checks the detection targets.
func evaluateTargets(clients []*clientRec, groupLimit int) []target {
	by := map[family][]*clientRec{}
	for _, c := range clients {
		by[c.Family] = append(by[c.Family], c)
	}
	share := func(cs []*clientRec, ok func(*clientRec) bool) (int, int) {
		n := 0
		for _, c := range cs {
			if ok(c) {
				n++
			}
		}
		return n, len(cs)
	}
	pct := func(n, d int) float64 {
		if d == 0 {
			return math.NaN()
		}
		return 100 * float64(n) / float64(d)
	}
	var ts []target
	add := func(name, goal string, n, d int, pass func(float64) bool, extra string) {
		t := target{Name: name, Goal: goal, NoData: d == 0}
		p := pct(n, d)
		t.Measured = fmt.Sprintf("%d / %d (%.1f %%)%s", n, d, p, extra)
		t.Pass = d > 0 && pass(p)
		ts = append(ts, t)
	}
	firstStop := func(c *clientRec) bool { return c.Stopped && c.Through == 0 }
	n, d := share(by[famAI], firstStop)
	add("Declared AI crawlers stopped on the first request", "100 %", n, d, func(p float64) bool { return p == 100 }, "")
	n, d = share(by[famLibraries], firstStop)
	add("HTTP-library scrapers stopped on the first request", "100 %", n, d, func(p float64) bool { return p == 100 }, "")
	n, d = share(by[famImpostors], func(c *clientRec) bool { return c.Stopped })
	add("Impostor crawlers not allowed", "100 %", n, d, func(p float64) bool { return p == 100 }, "")
	n, d = share(by[famVerified], func(c *clientRec) bool { return !c.Stopped })
	add("Verified crawlers allowed", "100 %", n, d, func(p float64) bool { return p == 100 }, "")

	stealth := by[famStealth]
	n, d = share(stealth, func(c *clientRec) bool { return c.Stopped })
	var th []float64
	for _, c := range stealth {
		if c.Stopped {
			th = append(th, float64(c.Through))
		} else {
			th = append(th, math.Inf(1))
		}
	}
	med := quantile(th, 0.5)
	add("Stealth scrapers stopped, median requests before the stop ≤ 20", "≥ 99 %, median ≤ 20", n, d,
		func(p float64) bool { return p >= 99 && med <= 20 }, "; median "+fmtCount(med))

	n, d = share(by[famDistributed], func(c *clientRec) bool { return c.Stopped && c.GroupSeq > 0 && c.GroupSeq <= groupLimit })
	add(fmt.Sprintf("Distributed stealth addresses stopped before the group's %d requests", groupLimit), "≥ 95 %", n, d, func(p float64) bool { return p >= 95 }, "")

	n, d = share(by[famPeople], func(c *clientRec) bool { return c.ever(verdictChallenge) })
	add("People ever challenged", "≤ 0.5 % of sessions", n, d, func(p float64) bool { return p <= 0.5 }, "")
	n, d = share(by[famPeople], func(c *clientRec) bool { return c.ever(verdictBlock) || c.Decision == "block" })
	add("People ever blocked", "0", n, d, func(p float64) bool { return p == 0 }, "")
	good := append(slices.Clone(by[famFeeds]), by[famPreviews]...)
	n, d = share(good, func(c *clientRec) bool { return c.ever(verdictChallenge) || c.ever(verdictBlock) })
	add("Feed readers and link previews challenged or blocked", "0", n, d, func(p float64) bool { return p == 0 }, "")
	return ts
}

func fmtCount(x float64) string {
	switch {
	case math.IsNaN(x):
		return "–"
	case math.IsInf(x, 1):
		return "not stopped"
	}
	return strings.TrimSuffix(fmt.Sprintf("%.0f", x), ".0")
}
