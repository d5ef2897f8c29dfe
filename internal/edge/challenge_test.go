package edge

import (
	"context"
	"crypto/sha256"
	"html"
	"io"
	"math/bits"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/scrapedefense/scrapedefense/internal/browsertest"
	"github.com/scrapedefense/scrapedefense/internal/config"
	"github.com/scrapedefense/scrapedefense/internal/decision"
)

// twoChallengingEdges starts two edges over one store, with a decision
// that challenges 127.0.0.1 at the given proof-of-work difficulty, and
// waits until both enforce it.
func twoChallengingEdges(t *testing.T, upstream string, difficulty int) (a, b *testEdge) {
	t.Helper()
	st := newStore(t)
	withDifficulty := func(c *config.Config) {
		c.Edge.Challenge.MinDifficulty, c.Edge.Challenge.MaxDifficulty = difficulty, difficulty
	}
	a = startEdgeOn(t, st, upstream, withDifficulty)
	b = startEdgeOn(t, st, upstream, withDifficulty)
	d, err := decision.New("127.0.0.1", decision.ActionChallenge, "test", "test", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutDecision(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	for _, e := range []*testEdge{a, b} {
		ix := e.role.FastPath().Index()
		eventually(t, 5*time.Second, "the challenge decision to reach both edges", func() bool {
			_, ok := ix.Lookup(netip.MustParseAddr("127.0.0.1"), time.Now().UnixNano())
			return ok
		})
	}
	return a, b
}

// TestChallengePassSharedBetweenEdges: two edges over one store. Chromium
// solves the challenge served by the first; the pass it earned is honoured
// by the second, for the same browser (address and user agent) only.
func TestChallengePassSharedBetweenEdges(t *testing.T) {
	var lastUA atomic.Value
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lastUA.Store(r.UserAgent())
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, "<!doctype html><html><head><title>origin</title></head><body>origin page "+r.URL.Path+"</body></html>")
	}))
	t.Cleanup(origin.Close)

	a, b := twoChallengingEdges(t, origin.URL, 10)

	tab := browsertest.Start(t, 60*time.Second)
	if err := chromedp.Do(tab, chromedp.Navigate(a.public+"/first")); err != nil {
		t.Fatal(err)
	}
	if _, err := browsertest.WaitForText(tab, "origin page /first"); err != nil {
		t.Fatalf("Chromium did not get through edge A's challenge: %v", err)
	}
	cookies, err := chromedp.Call(tab, network.GetCookies, network.GetCookiesParams{URLs: []string{a.public + "/"}})
	if err != nil {
		t.Fatal(err)
	}
	var pass *http.Cookie
	for _, c := range cookies.Cookies {
		if c.Name == config.Default().Edge.Challenge.CookieName {
			pass = &http.Cookie{Name: c.Name, Value: c.Value}
		}
	}
	if pass == nil {
		t.Fatal("no pass cookie after solving")
	}
	ua, _ := lastUA.Load().(string)

	get := func(cookie *http.Cookie, userAgent string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, b.public+"/second", nil)
		req.Header = browserHeader()
		req.Header.Set("User-Agent", userAgent)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := client(t, "").Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get(pass, ua); code != http.StatusOK || !strings.Contains(body, "origin page /second") {
		t.Fatalf("edge B refused edge A's pass: %d %.200q", code, body)
	}
	if code, _ := get(nil, ua); code != http.StatusForbidden {
		t.Fatalf("edge B without a pass: %d, want the challenge (403)", code)
	}
	if code, _ := get(pass, ua+" other"); code != http.StatusForbidden {
		t.Fatalf("edge B honoured the pass for another user agent: %d", code)
	}
}

// TestChallengeSolutionReplayRejectedByOtherEdge: a proof of work solved
// for edge B's page is accepted once by edge A; the same solution sent to
// edge B afterwards is rejected as replayed, because the spent set lives
// in the shared store.
func TestChallengeSolutionReplayRejectedByOtherEdge(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "origin page "+r.URL.Path)
	}))
	t.Cleanup(origin.Close)
	a, b := twoChallengingEdges(t, origin.URL, 8)

	// Fetch B's challenge page like a browser would.
	page := do(t, client(t, ""), http.MethodGet, b.public+"/article", browserHeader(), nil)
	if page.code != http.StatusForbidden {
		t.Fatalf("challenge page: %d", page.code)
	}
	field := func(re string) string {
		t.Helper()
		m := regexp.MustCompile(re).FindStringSubmatch(page.body)
		if m == nil {
			t.Fatalf("challenge page lacks %s:\n%.500s", re, page.body)
		}
		return html.UnescapeString(m[1])
	}
	action := field(`<form id="sd-form" method="post" action="([^"]+)"`)
	seed := field(`data-seed="([0-9a-f]+)"`)
	sealed := field(`name="challenge" value="([^"]+)"`)
	difficulty, _ := strconv.Atoi(field(`name="difficulty" value="([0-9]+)"`))

	// Solve it: SHA-256(seed hex + nonce) with enough leading zero bits.
	var nonce string
	for n := 0; ; n++ {
		nonce = strconv.Itoa(n)
		sum := sha256.Sum256([]byte(seed + nonce))
		if leadingZeros(sum[:]) >= difficulty {
			break
		}
	}
	form := url.Values{"challenge": {sealed}, "difficulty": {strconv.Itoa(difficulty)}, "nonce": {nonce}}
	submit := func(e *testEdge) response {
		h := browserHeader()
		h.Set("Content-Type", "application/x-www-form-urlencoded")
		for _, c := range page.header.Values("Set-Cookie") {
			h.Add("Cookie", strings.SplitN(c, ";", 2)[0])
		}
		return do(t, client(t, ""), http.MethodPost, e.public+action, h, strings.NewReader(form.Encode()))
	}
	first := submit(a)
	if first.code >= 400 || !strings.Contains(strings.Join(first.header.Values("Set-Cookie"), ";"), config.Default().Edge.Challenge.CookieName+"=") {
		t.Fatalf("edge A refused a valid solution to edge B's challenge: %d %.300s", first.code, first.body)
	}
	if again := submit(b); again.code < 400 {
		t.Fatalf("edge B accepted a replayed solution: %d", again.code)
	}
	if got := b.metric(t, "challenges_failed_total", "method", "pow", "reason", "replayed"); got != 1 {
		t.Fatalf("edge B challenges_failed_total{reason=replayed} = %v, want 1", got)
	}
}

func leadingZeros(b []byte) int {
	n := 0
	for _, x := range b {
		if x == 0 {
			n += 8
			continue
		}
		return n + bits.LeadingZeros8(x)
	}
	return n
}
