package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// edgeBinary builds scrapedefense from this tree, or takes a prebuilt one
// from $SCRAPEDEFENSE_BIN.
func edgeBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	if bin := os.Getenv("SCRAPEDEFENSE_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(t.TempDir(), "scrapedefense")
	out, err := exec.Command("go", "build", "-o", bin, "../../cmd/scrapedefense").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestQuickRunAgainstBinary runs the simulator in quick mode against the
// real binary and checks the bookkeeping, not the detection targets: those
// are measurements and may fail.
func TestQuickRunAgainstBinary(t *testing.T) {
	bin := edgeBinary(t)
	dir := t.TempDir()
	report := filepath.Join(dir, "detection.md")
	o, err := parseFlags([]string{"-bin", bin, "-quick", "-crawler-data", "../../internal/crawlers/data",
		"-report", report, "-report-header", "header.md", "-json", filepath.Join(dir, "clients.json")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.DecErr != nil {
		t.Errorf("decisions API: %v", res.DecErr)
	}
	for _, f := range families {
		s := res.Scores[f]
		if s.Clients == 0 || s.Requests == 0 {
			t.Errorf("%s: %d clients, %d requests", f, s.Clients, s.Requests)
		}
		sum := 0
		for _, n := range s.ByStop {
			sum += n
		}
		if sum != s.Clients {
			t.Errorf("%s: clients by stop add up to %d, want %d", f, sum, s.Clients)
		}
	}
	for _, c := range res.Clients {
		total := 0
		for _, n := range c.Counts {
			total += n
		}
		if total != c.Requests {
			t.Errorf("%s %s: verdicts add up to %d, want %d requests", c.Family, c.Addr, total, c.Requests)
		}
		if c.Through > c.Requests {
			t.Errorf("%s %s: %d through of %d requests", c.Family, c.Addr, c.Through, c.Requests)
		}
		if c.Stopped && !c.StopByDecision && c.Counts[c.Stop] == 0 {
			t.Errorf("%s %s: stopped by %v it never got", c.Family, c.Addr, c.Stop)
		}
		if c.Counts[verdictError] > 0 {
			t.Errorf("%s %s: %d requests got no answer", c.Family, c.Addr, c.Counts[verdictError])
		}
	}
	// Verdicts other than allow were read from the answers: the default
	// policy blocks declared AI crawlers by user agent.
	if res.Scores[famAI].EverBlocked == 0 {
		t.Error("no block page recognised for any declared AI crawler")
	}
	if len(res.Targets) != 9 {
		t.Errorf("%d targets", len(res.Targets))
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# Detection quality", "### Targets", "### Per family", historyHeading, "| people |"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if !strings.Contains(string(b), "PASS") && !strings.Contains(string(b), "FAIL") {
		t.Error("report has no PASS/FAIL")
	}
}
