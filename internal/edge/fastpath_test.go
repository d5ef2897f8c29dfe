package edge

import (
	"bytes"
	"flag"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/crawlers"
	"github.com/scrapedefense/scrapedefense/internal/decision"
	"github.com/scrapedefense/scrapedefense/internal/policy"
	"github.com/scrapedefense/scrapedefense/internal/ratelimit"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// fixedNow is the clock of the fast-path tests, so that expiries and
// retry-after values in the golden files do not move.
var fixedNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// testCatalog is the embedded crawler catalog; it fails the test if the
// addresses the tests rely on left the published ranges.
func testCatalog(tb testing.TB) *crawlers.Catalog {
	tb.Helper()
	cat, err := crawlers.Embedded()
	if err != nil {
		tb.Fatalf("crawlers.Embedded: %v", err)
	}
	if !cat.Verify("googlebot", googlebotAddr) || !cat.Verify("gptbot", gptbotAddr) {
		tb.Fatalf("%v / %v are no longer in the embedded googlebot / gptbot ranges: update the test addresses", googlebotAddr, gptbotAddr)
	}
	return cat
}

func defaultPolicy(tb testing.TB) *policy.Policy {
	tb.Helper()
	p, _, err := LoadPolicy("")
	if err != nil {
		tb.Fatalf("default policy: %v", err)
	}
	return p
}

// fastPathOptions describe a fast path under test.
type fastPathOptions struct {
	noAllowVerified bool
	perIP           ratelimit.Rate // zero: the default 60 burst
	decisions       []decision.Decision
}

func newTestFastPath(tb testing.TB, o fastPathOptions) *FastPath {
	tb.Helper()
	rate := o.perIP
	if rate.Requests == 0 {
		rate = ratelimit.Rate{Requests: 600, Per: time.Minute, Burst: 60}
	}
	lim, err := ratelimit.New(ratelimit.Config{PerIP: rate, Slots: 1024})
	if err != nil {
		tb.Fatalf("ratelimit.New: %v", err)
	}
	ix := decision.NewIndex()
	if err := ix.ReplaceAll(o.decisions); err != nil {
		tb.Fatalf("decisions: %v", err)
	}
	return NewFastPath(testCatalog(tb), defaultPolicy(tb), ix, lim, !o.noAllowVerified)
}

// dec builds a decision created at fixedNow; a negative ttl makes one that
// has already expired.
func dec(tb testing.TB, value string, a decision.Action, ttl time.Duration) decision.Decision {
	tb.Helper()
	created := fixedNow
	if ttl < 0 {
		created, ttl = fixedNow.Add(2*ttl), -ttl
	}
	d, err := decision.New(value, a, "test "+a.String(), "test", ttl, created)
	if err != nil {
		tb.Fatalf("decision %s: %v", value, err)
	}
	return d
}

// testRequest describes a request by address, user agent and headers.
type testRequest struct {
	addr   string
	ua     string
	header http.Header // nil: browserHeader() with ua
	path   string
}

func (tr testRequest) policyRequest() *policy.Request {
	h := tr.header
	if h == nil {
		h = browserHeader()
	}
	h = h.Clone()
	if tr.ua != "" {
		h.Set("User-Agent", tr.ua)
	}
	path := tr.path
	if path == "" {
		path = "/articles/1"
	}
	return &policy.Request{
		Addr:      netip.MustParseAddr(tr.addr),
		Method:    http.MethodGet,
		Host:      "www.example.test",
		Path:      path,
		UserAgent: h.Get("User-Agent"),
		Header:    h,
	}
}

// headerWithout is browserHeader without the named headers and with ua.
func headerWithout(ua string, names ...string) http.Header {
	h := browserHeader()
	h.Set("User-Agent", ua)
	for _, n := range names {
		h.Del(n)
	}
	return h
}

func TestFastPathDecide(t *testing.T) {
	const client = "198.51.100.10"
	tests := []struct {
		name string
		fp   fastPathOptions
		req  testRequest
		// want
		action  decision.Action
		stage   Stage
		rule    string
		trivial bool
		check   func(t *testing.T, v *Verdict)
	}{
		{
			name:   "browser allowed, nothing matched",
			req:    testRequest{addr: client, ua: browserUA},
			action: decision.ActionAllow, stage: StageNone, rule: "none", trivial: true,
		},
		{
			name:   "verified googlebot allowed by stage 1",
			req:    testRequest{addr: googlebotAddr.String(), ua: googlebotUA},
			action: decision.ActionAllow, stage: StageCrawler, rule: "verified-crawler",
			check: func(t *testing.T, v *Verdict) {
				if v.Crawler != (crawlers.Identity{Name: "googlebot", Verified: true}) {
					t.Errorf("crawler = %+v", v.Crawler)
				}
			},
		},
		{
			name:   "verified crawler comes before a block decision",
			fp:     fastPathOptions{decisions: []decision.Decision{dec(t, googlebotAddr.String(), decision.ActionBlock, 0)}},
			req:    testRequest{addr: googlebotAddr.String(), ua: googlebotUA},
			action: decision.ActionAllow, stage: StageCrawler, rule: "verified-crawler",
		},
		{
			name:   "verified googlebot without stage 1 is allowed by the policy",
			fp:     fastPathOptions{noAllowVerified: true},
			req:    testRequest{addr: googlebotAddr.String(), ua: googlebotUA},
			action: decision.ActionAllow, stage: StagePolicy, rule: "verified-search-crawlers",
		},
		{
			name:   "verified gptbot is left to the policy, which blocks it",
			req:    testRequest{addr: gptbotAddr.String(), ua: gptbotUA},
			action: decision.ActionBlock, stage: StagePolicy, rule: "ai-crawlers",
			check: func(t *testing.T, v *Verdict) {
				if v.Crawler != (crawlers.Identity{Name: "gptbot", Verified: true, AIAgent: "GPTBot"}) {
					t.Errorf("crawler = %+v", v.Crawler)
				}
				if v.Limit != (ratelimit.Result{}) {
					t.Errorf("a blocked request consulted the limiter: %+v", v.Limit)
				}
			},
		},
		{
			name:   "googlebot impostor blocked",
			req:    testRequest{addr: client, ua: googlebotUA},
			action: decision.ActionBlock, stage: StagePolicy, rule: "impostors",
			check: func(t *testing.T, v *Verdict) {
				if !v.Crawler.Impostor() {
					t.Errorf("crawler = %+v, want an impostor", v.Crawler)
				}
			},
		},
		{
			name:   "block decision",
			fp:     fastPathOptions{decisions: []decision.Decision{dec(t, client, decision.ActionBlock, time.Hour)}},
			req:    testRequest{addr: client, ua: browserUA},
			action: decision.ActionBlock, stage: StageDecision, rule: "decision",
			check: func(t *testing.T, v *Verdict) {
				if v.Decision.Prefix != netip.MustParsePrefix(client+"/32") || v.Decision.Reason != "test block" {
					t.Errorf("decision = %+v", v.Decision)
				}
			},
		},
		{
			name:   "allow decision comes before the policy",
			fp:     fastPathOptions{decisions: []decision.Decision{dec(t, "203.0.113.0/24", decision.ActionAllow, 0)}},
			req:    testRequest{addr: "203.0.113.9", ua: claudebotUA},
			action: decision.ActionAllow, stage: StageDecision, rule: "decision",
		},
		{
			name:   "throttle decision",
			fp:     fastPathOptions{decisions: []decision.Decision{dec(t, client, decision.ActionThrottle, time.Hour)}},
			req:    testRequest{addr: client, ua: browserUA},
			action: decision.ActionThrottle, stage: StageDecision, rule: "decision",
		},
		{
			name:   "expired decision ignored",
			fp:     fastPathOptions{decisions: []decision.Decision{dec(t, client, decision.ActionBlock, -time.Minute)}},
			req:    testRequest{addr: client, ua: browserUA},
			action: decision.ActionAllow, stage: StageNone, rule: "none", trivial: true,
		},
		{
			name: "longest prefix: /24 allow inside /16 block",
			fp: fastPathOptions{decisions: []decision.Decision{
				dec(t, "198.18.0.0/16", decision.ActionBlock, 0),
				dec(t, "198.18.7.0/24", decision.ActionAllow, 0),
				dec(t, "198.18.7.7", decision.ActionThrottle, 0),
			}},
			req:    testRequest{addr: "198.18.7.8", ua: browserUA},
			action: decision.ActionAllow, stage: StageDecision, rule: "decision",
			check: func(t *testing.T, v *Verdict) {
				if v.Decision.Prefix != netip.MustParsePrefix("198.18.7.0/24") {
					t.Errorf("matched %v, want 198.18.7.0/24", v.Decision.Prefix)
				}
			},
		},
		{
			name: "longest prefix: /32 throttle inside /24 allow",
			fp: fastPathOptions{decisions: []decision.Decision{
				dec(t, "198.18.0.0/16", decision.ActionBlock, 0),
				dec(t, "198.18.7.0/24", decision.ActionAllow, 0),
				dec(t, "198.18.7.7", decision.ActionThrottle, 0),
			}},
			req:    testRequest{addr: "198.18.7.7", ua: browserUA},
			action: decision.ActionThrottle, stage: StageDecision, rule: "decision",
		},
		{
			name: "longest prefix: /16 block outside the /24",
			fp: fastPathOptions{decisions: []decision.Decision{
				dec(t, "198.18.0.0/16", decision.ActionBlock, 0),
				dec(t, "198.18.7.0/24", decision.ActionAllow, 0),
			}},
			req:    testRequest{addr: "198.18.8.1", ua: browserUA},
			action: decision.ActionBlock, stage: StageDecision, rule: "decision",
		},
		{
			name: "expired /24 falls back to the covering /16",
			fp: fastPathOptions{decisions: []decision.Decision{
				dec(t, "198.18.0.0/16", decision.ActionBlock, 0),
				dec(t, "198.18.7.0/24", decision.ActionAllow, -time.Minute),
			}},
			req:    testRequest{addr: "198.18.7.8", ua: browserUA},
			action: decision.ActionBlock, stage: StageDecision, rule: "decision",
		},
		{
			name:   "policy terminal rule: declared AI crawler",
			req:    testRequest{addr: client, ua: claudebotUA},
			action: decision.ActionBlock, stage: StagePolicy, rule: "ai-crawlers",
		},
		{
			name:   "AI crawler may read robots.txt",
			req:    testRequest{addr: client, ua: claudebotUA, path: "/robots.txt"},
			action: decision.ActionAllow, stage: StageNone, rule: "none",
		},
		{
			name:   "HTTP library reaches the block threshold",
			req:    testRequest{addr: client, ua: "python-requests/2.32.3", header: http.Header{"Accept": {"*/*"}}},
			action: decision.ActionBlock, stage: StagePolicy, rule: "threshold:30",
			check: func(t *testing.T, v *Verdict) {
				if v.Policy.Weight != 30 {
					t.Errorf("weight = %d, want 30", v.Policy.Weight)
				}
			},
		},
		{
			name:   "fake browser reaches the challenge threshold",
			req:    testRequest{addr: client, header: headerWithout(browserUA, "Accept-Language", "Sec-Fetch-Mode", "Sec-Ch-Ua")},
			action: decision.ActionChallenge, stage: StagePolicy, rule: "threshold:20",
		},
		{
			name:   "weight under the thresholds is allowed but not trivial",
			req:    testRequest{addr: client, header: headerWithout(browserUA, "Sec-Fetch-Mode", "Sec-Ch-Ua")},
			action: decision.ActionAllow, stage: StageNone, rule: "none",
			check: func(t *testing.T, v *Verdict) {
				if v.Policy.Weight != 10 || v.Policy.NMatched != 2 {
					t.Errorf("policy = weight %d, %d matched; want 10, 2", v.Policy.Weight, v.Policy.NMatched)
				}
			},
		},
		{
			name:   "skip_thresholds on a well-known path",
			req:    testRequest{addr: client, ua: "curl/8.5.0", header: http.Header{}, path: "/.well-known/security.txt"},
			action: decision.ActionAllow, stage: StageNone, rule: "none",
			check: func(t *testing.T, v *Verdict) {
				if !v.Policy.SkipThresholds || v.Policy.Weight != 30 {
					t.Errorf("policy = %+v, want weight 30 with thresholds skipped", v.Policy)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fp := newTestFastPath(t, tt.fp)
			var v Verdict
			fp.Decide(tt.req.policyRequest(), fixedNow, true, &v)
			if v.Action != tt.action || v.Stage != tt.stage || v.Rule != tt.rule {
				t.Errorf("verdict = %s by %s (%q), want %s by %s (%q)", v.Action, v.Stage, v.Rule, tt.action, tt.stage, tt.rule)
			}
			if got := v.Trivial(); got != tt.trivial {
				t.Errorf("Trivial() = %v, want %v", got, tt.trivial)
			}
			if tt.check != nil {
				tt.check(t, &v)
			}
		})
	}
}

func TestFastPathRateLimit(t *testing.T) {
	perIP := ratelimit.Rate{Requests: 2, Per: time.Minute, Burst: 2}
	browser := testRequest{addr: "198.51.100.20", ua: browserUA}

	t.Run("throttles past the burst", func(t *testing.T) {
		fp := newTestFastPath(t, fastPathOptions{perIP: perIP})
		var v Verdict
		for i := 1; i <= 2; i++ {
			fp.Decide(browser.policyRequest(), fixedNow, true, &v)
			if v.Action != decision.ActionAllow || v.Limit.Count != i {
				t.Fatalf("request %d: %s, count %d; want allow, count %d", i, v.Action, v.Limit.Count, i)
			}
		}
		fp.Decide(browser.policyRequest(), fixedNow, true, &v)
		if v.Action != decision.ActionThrottle || v.Stage != StageRateLimit || v.Rule != "rate-limit" {
			t.Fatalf("request 3: %s by %s (%q), want throttle by rate-limit", v.Action, v.Stage, v.Rule)
		}
		if v.Limit.Scope != ratelimit.ScopeIP || v.Limit.RetryAfter <= 0 {
			t.Errorf("limit = %+v, want scope ip and a retry-after", v.Limit)
		}
		if v.Trivial() {
			t.Error("a throttled verdict is trivial")
		}
		// Another client is not affected.
		other := testRequest{addr: "198.51.100.21", ua: browserUA}
		fp.Decide(other.policyRequest(), fixedNow, true, &v)
		if v.Action != decision.ActionAllow {
			t.Errorf("other client: %s", v.Action)
		}
	})

	t.Run("count=false does not charge the limiter", func(t *testing.T) {
		fp := newTestFastPath(t, fastPathOptions{perIP: perIP})
		var v Verdict
		for range 10 {
			fp.Decide(browser.policyRequest(), fixedNow, false, &v)
			if v.Action != decision.ActionAllow || v.Limit.Count != 0 {
				t.Fatalf("peek: %s, count %d; want allow, count 0", v.Action, v.Limit.Count)
			}
		}
		for i := 1; i <= 2; i++ {
			fp.Decide(browser.policyRequest(), fixedNow, true, &v)
			if v.Action != decision.ActionAllow {
				t.Fatalf("counted request %d after peeks: %s", i, v.Action)
			}
		}
		// Peeking now reports what the next counted request would get.
		fp.Decide(browser.policyRequest(), fixedNow, false, &v)
		if v.Action != decision.ActionThrottle || v.Stage != StageRateLimit {
			t.Errorf("peek after the burst: %s by %s, want throttle by rate-limit", v.Action, v.Stage)
		}
	})

	t.Run("explicit allow skips the limiter", func(t *testing.T) {
		fp := newTestFastPath(t, fastPathOptions{
			perIP:           perIP,
			noAllowVerified: true, // the policy's allow rule decides for Googlebot
			decisions:       []decision.Decision{dec(t, "203.0.113.50", decision.ActionAllow, 0)},
		})
		for _, req := range []testRequest{
			{addr: googlebotAddr.String(), ua: googlebotUA},      // policy allow
			{addr: "203.0.113.50", ua: "python-requests/2.32.3"}, // decision allow
		} {
			var v Verdict
			for i := range 5 {
				fp.Decide(req.policyRequest(), fixedNow, true, &v)
				if v.Action != decision.ActionAllow || v.Limit != (ratelimit.Result{}) {
					t.Fatalf("%s request %d: %s by %s, limit %+v; want allow without the limiter", req.addr, i, v.Action, v.Stage, v.Limit)
				}
			}
			if got := fp.limiter.Peek(netip.MustParseAddr(req.addr), fixedNow.UnixNano()); got.Count != 0 {
				t.Errorf("%s: limiter charged %d requests", req.addr, got.Count)
			}
		}
	})

	t.Run("verified crawler skips the limiter", func(t *testing.T) {
		fp := newTestFastPath(t, fastPathOptions{perIP: perIP})
		req := testRequest{addr: googlebotAddr.String(), ua: googlebotUA}
		var v Verdict
		for range 5 {
			fp.Decide(req.policyRequest(), fixedNow, true, &v)
			if v.Action != decision.ActionAllow || v.Stage != StageCrawler {
				t.Fatalf("%s by %s", v.Action, v.Stage)
			}
		}
	})
}

func TestVerdictTrivial(t *testing.T) {
	tests := []struct {
		name string
		v    Verdict
		want bool
	}{
		{"plain allow", Verdict{Action: decision.ActionAllow}, true},
		{"allow with limiter count", Verdict{Action: decision.ActionAllow, Limit: ratelimit.Result{Allowed: true, Count: 3}}, true},
		{"verified crawler", Verdict{Action: decision.ActionAllow, Stage: StageCrawler}, false},
		{"allow decision", Verdict{Action: decision.ActionAllow, Stage: StageDecision}, false},
		{"weight only", Verdict{Action: decision.ActionAllow, Policy: policy.Result{Weight: 5, NMatched: 1}}, false},
		{"negative weight", Verdict{Action: decision.ActionAllow, Policy: policy.Result{Weight: -5}}, false},
		{"matched rule without weight", Verdict{Action: decision.ActionAllow, Policy: policy.Result{NMatched: 1}}, false},
		{"block", Verdict{Action: decision.ActionBlock, Stage: StagePolicy}, false},
		{"throttle", Verdict{Action: decision.ActionThrottle, Stage: StageRateLimit}, false},
	}
	for _, tt := range tests {
		if got := tt.v.Trivial(); got != tt.want {
			t.Errorf("%s: Trivial() = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestVerdictExplain(t *testing.T) {
	perIP := ratelimit.Rate{Requests: 1, Per: time.Minute, Burst: 1}
	tests := []struct {
		name   string
		fp     fastPathOptions
		req    testRequest
		repeat int      // requests decided before the explained one
		want   []string // lines the explanation must contain
	}{
		{
			name: "browser",
			req:  testRequest{addr: "198.51.100.10", ua: browserUA},
			want: []string{"verdict: allow\n", "decided by: none\n", "rate limit: 1 recent requests, within limits\n"},
		},
		{
			name: "verified-googlebot",
			req:  testRequest{addr: googlebotAddr.String(), ua: googlebotUA},
			want: []string{"verdict: allow\n", "decided by: verified-crawler\n", "crawler: googlebot, verified by its published address ranges\n"},
		},
		{
			name: "verified-gptbot",
			req:  testRequest{addr: gptbotAddr.String(), ua: gptbotUA},
			want: []string{"verdict: block\n", "decided by: policy (ai-crawlers)\n", "crawler: gptbot, verified", "ai.robots.txt agent: GPTBot\n", "rule ai-crawlers matched: block\n"},
		},
		{
			name: "impostor",
			req:  testRequest{addr: "198.51.100.10", ua: googlebotUA},
			want: []string{"verdict: block\n", "claims to be googlebot", "(impostor)\n", "rule impostors matched: block\n"},
		},
		{
			name: "decision",
			fp:   fastPathOptions{decisions: []decision.Decision{dec(t, "198.51.100.0/24", decision.ActionBlock, time.Hour)}},
			req:  testRequest{addr: "198.51.100.10", ua: browserUA},
			want: []string{"verdict: block\n", "decided by: decision\n", `decision: 198.51.100.0/24 block (reason "test block", source test, expires 2026-03-01T13:00:00Z)` + "\n"},
		},
		{
			name: "threshold",
			req:  testRequest{addr: "198.51.100.10", header: headerWithout(browserUA, "Accept-Language", "Sec-Fetch-Mode", "Sec-Ch-Ua")},
			want: []string{"verdict: challenge\n", "decided by: policy (threshold:20)\n", "rule browser-without-accept-language matched: weight +10 (total 10)\n", "verdict: challenge (weight 20 reached threshold 20)\n"},
		},
		{
			name:   "rate-limit",
			fp:     fastPathOptions{perIP: perIP},
			req:    testRequest{addr: "198.51.100.10", ua: browserUA},
			repeat: 1,
			want:   []string{"verdict: throttle\n", "decided by: rate-limit\n", "rate limit: 1 recent requests, over the ip limit, retry after 1m0s\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fp := newTestFastPath(t, tt.fp)
			var v Verdict
			for range tt.repeat {
				fp.Decide(tt.req.policyRequest(), fixedNow, true, &v)
			}
			fp.Decide(tt.req.policyRequest(), fixedNow, true, &v)
			var buf bytes.Buffer
			v.Explain(&buf)
			got := buf.String()
			for _, line := range tt.want {
				if !strings.Contains(got, line) {
					t.Errorf("explanation lacks %q:\n%s", line, got)
				}
			}
			golden(t, filepath.Join("testdata", "explain", tt.name+".golden"), got)
		})
	}
}

// golden compares got with the file, or rewrites the file under -update.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update if the change is intended)\n--- got\n%s--- want\n%s", path, got, want)
	}
}
