package policy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/scrapedefense/scrapedefense/internal/decision"
)

func TestEvaluate(t *testing.T) {
	const thresholds = `version: 1
thresholds:
  - {weight: 15, action: throttle}
  - {weight: 30, action: block}
rules:
`
	tests := []struct {
		name       string
		rules      string
		wantAction decision.Action
		wantRule   string
		wantWeight int
		wantSkip   bool
		wantRules  []string
	}{
		{
			name:       "no rule matches",
			rules:      `[{name: a, match: {method: POST}, weight: 50}]`,
			wantAction: decision.ActionNone,
		},
		{
			name:       "weights add up to the block threshold",
			rules:      `[{name: a, match: {method: GET}, weight: 20}, {name: b, match: {host: example.com}, weight: 10}]`,
			wantAction: decision.ActionBlock, wantRule: "threshold:30", wantWeight: 30,
			wantRules: []string{"a", "b"},
		},
		{
			name:       "highest threshold reached wins",
			rules:      `[{name: a, match: {method: GET}, weight: 29}]`,
			wantAction: decision.ActionThrottle, wantRule: "threshold:15", wantWeight: 29,
			wantRules: []string{"a"},
		},
		{
			name:       "below every threshold",
			rules:      `[{name: a, match: {method: GET}, weight: 14}]`,
			wantAction: decision.ActionNone, wantWeight: 14, wantRules: []string{"a"},
		},
		{
			name:       "negative weight",
			rules:      `[{name: a, match: {method: GET}, weight: 30}, {name: trusted, match: {host: example.com}, weight: -20}]`,
			wantAction: decision.ActionNone, wantWeight: 10, wantRules: []string{"a", "trusted"},
		},
		{
			name:       "skip_thresholds alone",
			rules:      `[{name: well-known, match: {method: GET}, skip_thresholds: true}, {name: a, match: {host: example.com}, weight: 100}]`,
			wantAction: decision.ActionNone, wantWeight: 100, wantSkip: true, wantRules: []string{"well-known", "a"},
		},
		{
			name:       "skip_thresholds does not stop a terminal rule",
			rules:      `[{name: well-known, match: {method: GET}, skip_thresholds: true}, {name: blocked, match: {host: example.com}, action: block}]`,
			wantAction: decision.ActionBlock, wantRule: "blocked", wantSkip: true, wantRules: []string{"well-known", "blocked"},
		},
		{
			name:       "skip_thresholds on a weight rule",
			rules:      `[{name: a, match: {method: GET}, weight: 40, skip_thresholds: true}]`,
			wantAction: decision.ActionNone, wantWeight: 40, wantSkip: true, wantRules: []string{"a"},
		},
		{
			name:       "first terminal rule wins",
			rules:      `[{name: w, match: {method: GET}, weight: 5}, {name: allow, match: {host: example.com}, action: allow}, {name: block, match: {method: GET}, action: block}]`,
			wantAction: decision.ActionAllow, wantRule: "allow", wantWeight: 5, wantRules: []string{"w", "allow"},
		},
		{
			name:       "terminal rule beats thresholds",
			rules:      `[{name: w, match: {method: GET}, weight: 100}, {name: allow, match: {host: example.com}, action: allow}]`,
			wantAction: decision.ActionAllow, wantRule: "allow", wantWeight: 100, wantRules: []string{"w", "allow"},
		},
		{
			name:       "weight rules after a terminal rule are not counted",
			rules:      `[{name: t, match: {method: GET}, action: throttle}, {name: w, match: {method: GET}, weight: 100}]`,
			wantAction: decision.ActionThrottle, wantRule: "t", wantRules: []string{"t"},
		},
		{
			name:       "weight zero records the match",
			rules:      `[{name: seen, match: {method: GET}, weight: 0}]`,
			wantAction: decision.ActionNone, wantRules: []string{"seen"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustLoad(t, thresholds+"  "+strings.Join(strings.Split(yamlList(tt.rules), "\n"), "\n  "))
			res := evaluate(p, chromeRequest())
			if res.Action != tt.wantAction || res.Rule != tt.wantRule || res.Weight != tt.wantWeight || res.SkipThresholds != tt.wantSkip {
				t.Errorf("got action %v rule %q weight %d skip %v, want %v %q %d %v",
					res.Action, res.Rule, res.Weight, res.SkipThresholds, tt.wantAction, tt.wantRule, tt.wantWeight, tt.wantSkip)
			}
			var got []string
			for _, m := range res.MatchedRules() {
				got = append(got, m.Rule)
			}
			if strings.Join(got, ",") != strings.Join(tt.wantRules, ",") {
				t.Errorf("matched %v, want %v", got, tt.wantRules)
			}
		})
	}
}

// yamlList turns a flow list of rules into a block list, one rule a line.
func yamlList(flow string) string {
	flow = strings.TrimSuffix(strings.TrimPrefix(flow, "["), "]")
	var out []string
	depth, start := 0, 0
	for i, c := range flow {
		switch c {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, "- "+strings.TrimSpace(flow[start:i]))
				start = i + 1
			}
		}
	}
	out = append(out, "- "+strings.TrimSpace(flow[start:]))
	return strings.Join(out, "\n")
}

func TestMaxMatchedOverflow(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\nthresholds: [{weight: 100, action: block}]\nrules:\n")
	for i := range MaxMatched + 3 {
		fmt.Fprintf(&b, "  - {name: r%d, match: {method: GET}, weight: 10}\n", i)
	}
	res := evaluate(mustLoad(t, b.String()), chromeRequest())
	if res.NMatched != MaxMatched || res.Dropped != 3 {
		t.Fatalf("NMatched %d Dropped %d, want %d and 3", res.NMatched, res.Dropped, MaxMatched)
	}
	if res.Weight != 10*(MaxMatched+3) || res.Action != decision.ActionBlock || res.Rule != "threshold:100" {
		t.Errorf("weight %d action %v rule %q", res.Weight, res.Action, res.Rule)
	}
	for i, m := range res.MatchedRules() {
		if want := fmt.Sprintf("r%d", i); m.Rule != want || m.Weight != 10 {
			t.Errorf("Matched[%d] = %+v, want %s", i, m, want)
		}
	}
}

func TestEvaluateResetsResult(t *testing.T) {
	p := mustLoad(t, "version: 1\nrules: [{name: a, match: {user_agent: curl}, action: block}]\n")
	var res Result
	p.Evaluate(curlRequest("/"), &res)
	p.Evaluate(chromeRequest(), &res)
	if res.Action != decision.ActionNone || res.NMatched != 0 || res.Rule != "" {
		t.Errorf("stale result: %+v", res)
	}
}

func TestExplain(t *testing.T) {
	p := mustLoad(t, `version: 1
thresholds: [{weight: 30, action: block}]
rules:
  - {name: well-known, match: {path_prefix: /robots.txt}, skip_thresholds: true}
  - {name: libs, match: {user_agent: curl/}, weight: 30}
  - {name: trusted, match: {cidr: 198.51.100.0/24}, weight: -5}
  - {name: ai, match: {ai_agent: true}, action: block}
`)
	tests := []struct {
		name string
		req  *Request
		want string
	}{
		{"threshold", curlRequest("/"), "rule libs matched: weight +30 (total 30)\nrule trusted matched: weight -5 (total 25)\nverdict: no action from the policy (weight 25)\n"},
		{"skip", curlRequest("/robots.txt"), "rule well-known matched\nrule libs matched: weight +30 (total 30)\nrule trusted matched: weight -5 (total 25)\nthresholds skipped: a matched rule has skip_thresholds\nverdict: no action from the policy (weight 25)\n"},
		{"terminal", gptbotRequest(), "rule ai matched: block\nverdict: block (rule ai)\n"},
		{"nothing", chromeRequest(), "rule trusted matched: weight -5 (total -5)\nverdict: no action from the policy (weight -5)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := evaluate(p, tt.req)
			var b strings.Builder
			res.Explain(&b)
			if b.String() != tt.want {
				t.Errorf("Explain:\n%s\nwant:\n%s", b.String(), tt.want)
			}
		})
	}
	res := Result{Action: decision.ActionBlock, Rule: "threshold:30", Weight: 35}
	var b strings.Builder
	res.Explain(&b)
	if want := "no rule matched\nverdict: block (weight 35 reached threshold 30)\n"; b.String() != want {
		t.Errorf("Explain:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestRulesAndThresholds(t *testing.T) {
	p := mustLoad(t, `version: 1
thresholds: [{weight: 10, action: throttle}, {weight: 30, action: block}]
rules:
  - name: a
    description: first
    match: {method: GET}
    action: allow
  - {name: b, match: {method: GET}, weight: -3, skip_thresholds: true}
`)
	rules := p.Rules()
	want := []RuleInfo{
		{Name: "a", Description: "first", Line: 4, Action: decision.ActionAllow},
		{Name: "b", Line: 8, Weight: -3, SkipThresholds: true},
	}
	if fmt.Sprint(rules) != fmt.Sprint(want) {
		t.Errorf("Rules() = %+v, want %+v", rules, want)
	}
	if got := fmt.Sprint(p.Thresholds()); got != "[{30 block} {10 throttle}]" {
		t.Errorf("Thresholds() = %s", got)
	}
}

// TestEvaluateConcurrent: one policy, many goroutines (run with -race).
func TestEvaluateConcurrent(t *testing.T) {
	p := loadDefault(t)
	reqs := []*Request{chromeRequest(), curlRequest("/"), gptbotRequest(), curlRequest("/robots.txt")}
	want := make([]Result, len(reqs))
	for i, r := range reqs {
		p.Evaluate(r, &want[i])
	}
	done := make(chan error)
	for g := range 8 {
		go func() {
			var res Result
			for i := range 200 {
				k := (g + i) % len(reqs)
				p.Evaluate(reqs[k], &res)
				if res != want[k] {
					done <- fmt.Errorf("goroutine %d: %+v, want %+v", g, res, want[k])
					return
				}
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
