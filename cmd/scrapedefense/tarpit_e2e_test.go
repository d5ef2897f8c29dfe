package main

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/scrapedefense/scrapedefense/internal/browsertest"
)

const mazePrefix = "/.well-known/sd-archive/"

var mazeLink = regexp.MustCompile(`href="(` + regexp.QuoteMeta(mazePrefix) + `[^"]*)"`)

// TestTrapFollowerIsBlockedAfterHops: a scraper that follows the hidden
// link and walks the maze is blocked at the edge once it passes the hop
// limit.
func TestTrapFollowerIsBlockedAfterHops(t *testing.T) {
	t.Parallel()
	const hops = 5
	s := startPipeline(t, "SCRAPEDEFENSE_TARPIT_HOP_LIMIT="+strconv.Itoa(hops))
	v := visitor{t: t, base: "http://" + s.public, ip: "203.0.113.150"}
	code, body := v.fetch("/", "document")
	if code != http.StatusOK {
		t.Fatalf("home page: %d", code)
	}
	m := mazeLink.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no hidden maze link in the home page:\n%.500s", body)
	}
	next := m[1]
	for n := 1; n <= hops+5; n++ {
		code, body := v.fetch(next, "document")
		if isBlockPage(code, body) {
			if n <= hops {
				t.Errorf("blocked after %d hops, before the hop limit %d", n-1, hops)
			}
			t.Logf("blocked at request %d into the maze", n)
			// The site itself is closed to it now.
			if code, body := v.fetch("/", "document"); !isBlockPage(code, body) {
				t.Errorf("home page after the block: %d", code)
			}
			return
		}
		links := mazeLink.FindAllStringSubmatch(body, -1)
		if code != http.StatusOK || len(links) == 0 {
			t.Fatalf("maze page %d (%s): status %d, %d links\n%.300s", n, next, code, len(links), body)
		}
		next = links[n%len(links)][1]
	}
	t.Fatalf("not blocked after %d maze pages; decisions:\n%s", hops+5, s.cli("decisions", "list"))
}

// TestPeopleNeverSeeTheTrapLink: in a real Chromium the injected link is
// off-screen, hidden from the accessibility tree, never reached with the
// keyboard, and the browser never requests the maze.
func TestPeopleNeverSeeTheTrapLink(t *testing.T) {
	t.Parallel()
	s := startPipeline(t)
	base := "http://" + s.public
	tab := browsertest.Start(t, 60*time.Second)
	// Headless Chromium says so in its user agent, which the default policy
	// blocks; a person's Chrome does not.
	if _, err := chromedp.Call(tab, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: browserUA, AcceptLanguage: "en-GB,en"}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(tab, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	if _, err := browsertest.WaitForText(tab, "Lindenbrook"); err != nil {
		t.Fatal(err)
	}
	type trapInfo struct {
		Found, Hidden, Focusable bool
		Width, Height, Right     float64
	}
	info, err := chromedp.Run(tab, chromedp.Evaluate[trapInfo](`(() => {
		const a = document.querySelector('a[href^="`+mazePrefix+`"]');
		if (!a) return {Found: false};
		const r = a.getBoundingClientRect();
		return {Found: true, Hidden: a.closest('[aria-hidden="true"]') !== null,
			Focusable: a.tabIndex >= 0, Width: r.width, Height: r.height, Right: r.right};
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case !info.Found:
		t.Fatal("the trap link was not injected, so this test proves nothing")
	case !info.Hidden || info.Focusable:
		t.Errorf("trap link: aria-hidden %v, focusable %v", info.Hidden, info.Focusable)
	case info.Right > 0 && (info.Width > 1 || info.Height > 1):
		t.Errorf("trap link is on screen: right edge %.0f, %.0fx%.0f", info.Right, info.Width, info.Height)
	}

	// Screen readers: no node of the accessibility tree links into the maze.
	tree, err := chromedp.Call(tab, accessibility.GetFullAXTree, accessibility.GetFullAXTreeParams{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range tree.Nodes {
		if n.Ignored {
			continue
		}
		for _, p := range n.Properties {
			if p.Value != nil && strings.Contains(string(p.Value.Value), mazePrefix) {
				t.Errorf("accessibility node %s exposes the maze: %s", n.NodeID, p.Value.Value)
			}
		}
	}

	// Keyboard users: tabbing through the page never lands on it.
	for range 40 {
		if err := chromedp.Do(tab, chromedp.KeyEvent("\t")); err != nil {
			t.Fatal(err)
		}
		href, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.activeElement && document.activeElement.getAttribute('href') || ''`))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(href, mazePrefix) {
			t.Fatal("the trap link took keyboard focus")
		}
	}

	// The browser fetched the page and its assets, never the maze.
	_, metrics, _ := get(t, "http://"+s.tarpitAdmin+"/metrics")
	if m := regexp.MustCompile(`(?m)^tarpit_entries_total\{[^}]*\} (\d+)`).FindStringSubmatch(metrics); m == nil || m[1] != "0" {
		t.Errorf("tarpit entries after a person's visit: %v", m)
	}
}
