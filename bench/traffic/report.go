package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"
)

// runInfo describes a run for the report.
type runInfo struct {
	Date          time.Time
	Command       string
	Label         string // e.g. the commit of the edge measured
	TimeScale     float64
	Wall          time.Duration
	Seed          uint64
	GroupInterval time.Duration
	Decisions     int
	DecErr        string
}

const historyHeading = "## History"

// writeReport renders the report: the hand-written header, this run's
// tables, and the history, with the previous history kept and this run
// appended.
func writeReport(w io.Writer, header, previous string, info runInfo, scores map[family]*familyScore, targets []target) {
	fmt.Fprint(w, strings.TrimRight(header, "\n")+"\n\n")
	fmt.Fprintf(w, "## Latest run\n\n")
	fmt.Fprintf(w, "- Date: %s\n", info.Date.UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(w, "- Command: `%s`\n", info.Command)
	if info.Label != "" {
		fmt.Fprintf(w, "- Edge measured: %s\n", info.Label)
	}
	fmt.Fprintf(w, "- Time scale: %g: real-world waits longer than %s (think time, feed polling) are multiplied by this, but not below %s; shorter ones (scrapers' pacing) and the distributed group's pace (%s per address) are real, so rate limits see real request rates\n", info.TimeScale, scaleFloor, scaleFloor, info.GroupInterval)
	fmt.Fprintf(w, "- Wall-clock time: %s, seed %d\n", info.Wall.Round(time.Second), info.Seed)
	if info.DecErr != "" {
		fmt.Fprintf(w, "- Stored decisions: could not be read (%s); tarpits are then undercounted\n", info.DecErr)
	} else {
		fmt.Fprintf(w, "- Stored decisions read at the end: %d\n", info.Decisions)
	}

	pass := 0
	for _, t := range targets {
		if t.Pass {
			pass++
		}
	}
	fmt.Fprintf(w, "\n### Targets (%d of %d pass)\n\n", pass, len(targets))
	fmt.Fprintln(w, "| Target | Goal | Measured | Result |")
	fmt.Fprintln(w, "| --- | --- | --- | --- |")
	for _, t := range targets {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", t.Name, t.Goal, t.Measured, result(t))
	}

	fmt.Fprint(w, "\n### Per family\n\n")
	fmt.Fprintln(w, "Clients by the first non-allow answer they got (Allowed: never stopped). \"Through\" is the number of content requests (robots.txt not counted) the edge answered normally before the stop, per client; a client never stopped counts as ∞.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| Family | Clients | Requests | Allowed | Throttled | Challenged | Tarpitted | Blocked | Ever challenged | Ever blocked | Under a decision | Through: median | Through: p90 |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, f := range families {
		s := scores[f]
		fmt.Fprintf(w, "| %s | %d | %d | %d | %d | %d | %d | %d | %s | %s | %d | %s | %s |\n",
			f, s.Clients, s.Requests, s.ByStop[verdictAllow], s.ByStop[verdictThrottle], s.ByStop[verdictChallenge],
			s.ByStop[verdictTarpit], s.ByStop[verdictBlock], pctOf(s.EverChallenged, s.Clients), pctOf(s.EverBlocked, s.Clients),
			s.Decisions, fmtCount(s.MedianThrough), fmtCount(s.P90Through))
	}
	fmt.Fprint(w, "\nClient kinds simulated, with how many of each were stopped (stopped/clients):\n\n")
	for _, f := range families {
		s := scores[f]
		kinds := s.Kinds
		more := ""
		if len(kinds) > 16 {
			more = fmt.Sprintf(" and %d more", len(kinds)-16)
			kinds = kinds[:16]
		}
		parts := make([]string, len(kinds))
		for i, k := range kinds {
			parts[i] = fmt.Sprintf("%s %d/%d", k.Kind, k.Stopped, k.Clients)
		}
		fmt.Fprintf(w, "- %s: %s%s\n", f, strings.Join(parts, ", "), more)
	}
	fmt.Fprintf(w, "\nHidden or nofollow links the trap followers found in the pages: %d.\n", scores[famTrap].HiddenLinks)

	fmt.Fprintf(w, "\n%s\n\n", historyHeading)
	fmt.Fprintln(w, "One line per run of `bench/traffic/run.sh`, oldest first; the script appends, and keeps what is here.")
	fmt.Fprintln(w)
	for _, line := range strings.Split(previous, "\n") {
		if strings.HasPrefix(line, "- ") {
			fmt.Fprintln(w, line)
		}
	}
	var fails []string
	for _, t := range targets {
		if !t.Pass {
			fails = append(fails, t.Name)
		}
	}
	entry := fmt.Sprintf("- %s · %s · scale %g · %d/%d targets pass", info.Date.UTC().Format("2006-01-02 15:04 UTC"), orDash(info.Label), info.TimeScale, pass, len(targets))
	if len(fails) > 0 {
		entry += " · fail: " + strings.Join(fails, "; ")
	}
	fmt.Fprintln(w, entry)
}

func result(t target) string {
	switch {
	case t.NoData:
		return "NO DATA"
	case t.Pass:
		return "PASS"
	}
	return "FAIL"
}

func pctOf(n, d int) string {
	if d == 0 {
		return "–"
	}
	p := 100 * float64(n) / float64(d)
	if p == math.Trunc(p) {
		return fmt.Sprintf("%d (%.0f %%)", n, p)
	}
	return fmt.Sprintf("%d (%.1f %%)", n, p)
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// previousHistory returns the History section of an existing report.
func previousHistory(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	_, after, ok := strings.Cut(string(b), "\n"+historyHeading+"\n")
	if !ok {
		return ""
	}
	return after
}
