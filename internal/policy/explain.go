package policy

import (
	"fmt"
	"io"
	"strings"

	"github.com/scrapedefense/scrapedefense/internal/decision"
)

// Explain writes a human-readable account of the result, one line per
// matched rule and a final verdict line, as printed by
// `scrapedefense explain`. Write errors are ignored: w is a terminal or a
// buffer.
func (r *Result) Explain(w io.Writer) {
	if r.NMatched == 0 && r.Dropped == 0 {
		fmt.Fprintln(w, "no rule matched")
	}
	total := 0
	for _, m := range r.MatchedRules() {
		switch {
		case m.Action != decision.ActionNone:
			fmt.Fprintf(w, "rule %s matched: %s\n", m.Rule, m.Action)
		case m.Weight != 0:
			total += m.Weight
			fmt.Fprintf(w, "rule %s matched: weight %+d (total %d)\n", m.Rule, m.Weight, total)
		default:
			fmt.Fprintf(w, "rule %s matched\n", m.Rule)
		}
	}
	if r.Dropped > 0 {
		fmt.Fprintf(w, "... and %d more matched rules (total weight %d)\n", r.Dropped, r.Weight)
	}
	if r.SkipThresholds {
		fmt.Fprintf(w, "thresholds skipped: a matched rule has skip_thresholds\n")
	}
	switch {
	case r.Action == decision.ActionNone:
		fmt.Fprintf(w, "verdict: no action from the policy (weight %d)\n", r.Weight)
	case strings.HasPrefix(r.Rule, "threshold:"):
		fmt.Fprintf(w, "verdict: %s (weight %d reached threshold %s)\n", r.Action, r.Weight, strings.TrimPrefix(r.Rule, "threshold:"))
	default:
		fmt.Fprintf(w, "verdict: %s (rule %s)\n", r.Action, r.Rule)
	}
}
