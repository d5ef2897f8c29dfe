package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/scrapedefense/scrapedefense/internal/browsertest"
)

// TestChromiumSolvesChallengeThroughTheEdge: a challenge decision for the
// browser's address; real headless Chromium solves the proof of work served
// by the real binary, reaches the demo site, and is not challenged again on
// the next page. A plain HTTP client keeps getting the challenge.
func TestChromiumSolvesChallengeThroughTheEdge(t *testing.T) {
	dataDir := t.TempDir()
	env := []string{
		"SCRAPEDEFENSE_EDGE_CHALLENGE_MIN_DIFFICULTY=10",
		"SCRAPEDEFENSE_EDGE_CHALLENGE_MAX_DIFFICULTY=12",
	}
	s := startServer(t, dataDir, env)
	s.cli("decisions", "add", "127.0.0.1", "--action", "challenge", "--ttl", "1h", "--reason", "e2e")
	base := "http://" + s.public

	code, body, _ := get(t, base+"/", browser())
	if code != http.StatusForbidden || !strings.Contains(body, "/.scrapedefense/challenge/") {
		t.Fatalf("a client without a pass: %d %.300q", code, body)
	}

	tab := browsertest.Start(t, 60*time.Second)
	if err := chromedp.Do(tab, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	if _, err := browsertest.WaitForText(tab, "Lindenbrook"); err != nil {
		t.Fatalf("the browser never reached the site: %v\n%s", err, s.stderr)
	}
	start := time.Now()
	if err := chromedp.Do(tab, chromedp.Navigate(base+"/about")); err != nil {
		t.Fatal(err)
	}
	html, err := browsertest.WaitForText(tab, "Lindenbrook")
	if err != nil || strings.Contains(html, "/.scrapedefense/challenge/") {
		t.Fatalf("second page challenged again: %v", err)
	}
	t.Logf("second page in %s", time.Since(start))

	// The pass belongs to the browser: a plain client is still challenged.
	if code, _, _ := get(t, base+"/about", browser()); code != http.StatusForbidden {
		t.Fatalf("plain client after the browser passed: %d", code)
	}
	_, metrics, _ := get(t, "http://"+s.admin+"/metrics")
	for _, want := range []string{"challenges_issued_total", "challenges_passed_total", `edge_verdicts_total{action="allow",rule="challenge-pass",service="edge"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestChromiumWithoutJavaScriptGetsThrough: the proof-of-work page's
// no-JavaScript fallback lets a person without scripts through, after the
// configured wait.
func TestChromiumWithoutJavaScriptGetsThrough(t *testing.T) {
	s := startServer(t, t.TempDir(), []string{"SCRAPEDEFENSE_EDGE_CHALLENGE_NOJS_FALLBACK_WAIT=1s"})
	s.cli("decisions", "add", "127.0.0.1", "--action", "challenge", "--ttl", "1h")
	base := "http://" + s.public

	tab := browsertest.Start(t, 60*time.Second)
	if _, err := chromedp.Call(tab, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(tab, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	if _, err := browsertest.WaitForText(tab, "Lindenbrook"); err != nil {
		t.Fatalf("a browser without JavaScript never reached the site: %v", err)
	}
}
