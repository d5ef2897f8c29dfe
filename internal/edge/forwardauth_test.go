package edge

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/config"
	"github.com/scrapedefense/scrapedefense/internal/decision"
	"github.com/scrapedefense/scrapedefense/internal/events"
	"github.com/scrapedefense/scrapedefense/internal/policy"
)

// membersRule is put in front of the default policy's rules.
const membersRule = `rules:
  - name: members-area
    description: Only reachable through the site's own login flow.
    match: {path_prefix: ["/members/"]}
    action: block
`

// startForwardAuthEdge runs an edge whose policy is the default one plus a
// block rule on /members/, with a per-client burst of fauthBurst.
func startForwardAuthEdge(t *testing.T) *testEdge {
	t.Helper()
	src := policy.DefaultYAML()
	if bytes.Count(src, []byte("\nrules:\n")) != 1 {
		t.Fatal("default policy has no single top-level rules: key")
	}
	src = bytes.Replace(src, []byte("\nrules:\n"), []byte("\n"+membersRule), 1)
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	return startEdge(t, "", func(c *config.Config) {
		c.Edge.PolicyFile = path
		c.Edge.RateLimit.PerIP = config.Rate{Requests: fauthBurst, Per: time.Minute, Burst: fauthBurst}
	})
}

const fauthBurst = 5

// fauthRequest is the sub-request a proxy sends for a client request.
func fauthRequest(method, uri, xff string, h http.Header) http.Header {
	out := h.Clone()
	out.Set("X-Forwarded-Method", method)
	out.Set("X-Forwarded-Uri", uri)
	out.Set("X-Forwarded-Host", "shop.example.test")
	out.Set("X-Forwarded-For", xff)
	return out
}

func TestForwardAuth(t *testing.T) {
	t.Parallel()
	te := startForwardAuthEdge(t)
	url := te.admin + "/forward-auth"
	c := client(t, "")

	tests := []struct {
		name    string
		header  http.Header
		query   string
		code    int
		verdict string
	}{
		{
			name:   "browser allowed",
			header: fauthRequest("GET", "/articles/1?page=2", "198.51.100.1", browserHeader()),
			code:   http.StatusOK, verdict: "allow",
		},
		{
			name:   "GPTBot blocked",
			header: fauthRequest("GET", "/articles/1", gptbotAddr.String(), withHeader(browserHeader(), "User-Agent", gptbotUA)),
			code:   http.StatusForbidden, verdict: "block",
		},
		{
			name:   "policy rule on the path from X-Forwarded-Uri",
			header: fauthRequest("GET", "/members/profile?tab=1", "198.51.100.2", browserHeader()),
			code:   http.StatusForbidden, verdict: "block",
		},
		{
			name: "path from X-Original-Uri (nginx style)",
			header: withHeader(browserHeader(), "X-Original-Uri", "/members/profile",
				"X-Forwarded-For", "198.51.100.2"),
			code: http.StatusForbidden, verdict: "block",
		},
		{
			name:   "rule does not match elsewhere",
			header: fauthRequest("GET", "/public/members/x", "198.51.100.2", browserHeader()),
			code:   http.StatusOK, verdict: "allow",
		},
		{
			name:   "malformed X-Forwarded-For",
			header: fauthRequest("GET", "/", "198.51.100.3, bogus", browserHeader()),
			code:   http.StatusBadRequest,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := do(t, c, http.MethodGet, url+tt.query, tt.header, nil)
			if resp.code != tt.code {
				t.Fatalf("status %d, want %d (%s)", resp.code, tt.code, resp.body)
			}
			if got := resp.header.Get("X-Scrapedefense-Verdict"); got != tt.verdict {
				t.Errorf("X-Scrapedefense-Verdict = %q, want %q", got, tt.verdict)
			}
			if cc := resp.header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", cc)
			}
		})
	}

	t.Run("method, host and path reach the event", func(t *testing.T) {
		h := fauthRequest("POST", "/members/login?next=/", "198.51.100.4", browserHeader())
		if resp := do(t, c, http.MethodGet, url, h, nil); resp.code != http.StatusForbidden {
			t.Fatalf("status %d, want 403", resp.code)
		}
		var ev *events.Event
		eventually(t, 5*time.Second, "the forward-auth event", func() bool {
			for _, e := range recentEvents(t, te) {
				if e.ClientIP == "198.51.100.4" {
					ev = &e
					return true
				}
			}
			return false
		})
		if ev.Method != "POST" || ev.Path != "/members/login" || ev.Host != "shop.example.test" ||
			ev.Rule != "members-area" || ev.Source != "forward-auth" {
			t.Errorf("event = %+v", *ev)
		}
	})
}

func TestForwardAuthThrottle(t *testing.T) {
	t.Parallel()
	te := startForwardAuthEdge(t)
	url := te.admin + "/forward-auth"
	c := client(t, "")
	h := fauthRequest("GET", "/articles/1", "198.51.100.50", browserHeader())

	for i := range fauthBurst {
		if resp := do(t, c, http.MethodGet, url, h, nil); resp.code != http.StatusOK {
			t.Fatalf("request %d of the burst: %d", i+1, resp.code)
		}
	}
	checkThrottled := func(t *testing.T, query string, wantCode int) {
		t.Helper()
		resp := do(t, c, http.MethodGet, url+query, h, nil)
		if resp.code != wantCode {
			t.Fatalf("status %d, want %d", resp.code, wantCode)
		}
		if v := resp.header.Get("X-Scrapedefense-Verdict"); v != "throttle" {
			t.Errorf("X-Scrapedefense-Verdict = %q, want throttle", v)
		}
		if ra, err := strconv.Atoi(resp.header.Get("Retry-After")); err != nil || ra < 1 {
			t.Errorf("Retry-After = %q, want an integer >= 1", resp.header.Get("Retry-After"))
		}
	}
	t.Run("429 past the burst", func(t *testing.T) { checkThrottled(t, "", http.StatusTooManyRequests) })
	t.Run("403 with throttle_status=403", func(t *testing.T) { checkThrottled(t, "?throttle_status=403", http.StatusForbidden) })

	// Another client is unaffected.
	other := fauthRequest("GET", "/articles/1", "198.51.100.51", browserHeader())
	if resp := do(t, c, http.MethodGet, url, other, nil); resp.code != http.StatusOK {
		t.Errorf("other client: %d", resp.code)
	}
}

// TestForwardAuthClientAddress checks that the client is the rightmost
// X-Forwarded-For entry: the calling proxy appended it, everything to its
// left was written by the client (nginx's $proxy_add_x_forwarded_for keeps
// what the client sent).
func TestForwardAuthClientAddress(t *testing.T) {
	t.Parallel()
	te := startForwardAuthEdge(t)
	d, err := decision.New("203.0.113.66", decision.ActionBlock, "test", "test", 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := te.role.FastPath().Index().Upsert(d); err != nil {
		t.Fatal(err)
	}
	url := te.admin + "/forward-auth"
	c := client(t, "")
	tests := []struct {
		xff  string
		code int
	}{
		{"203.0.113.66", http.StatusForbidden},
		{"198.51.100.99, 203.0.113.66", http.StatusForbidden},         // a client cannot hide behind a fake entry
		{"203.0.113.66, 198.51.100.99", http.StatusOK},                // nor borrow someone else's identity
		{"203.0.113.66 , 198.51.100.98,198.51.100.99", http.StatusOK}, // only the rightmost counts
		{strings.Repeat("192.0.2.1, ", 3) + "203.0.113.66", http.StatusForbidden},
	}
	for _, tt := range tests {
		h := fauthRequest("GET", "/", tt.xff, browserHeader())
		if resp := do(t, c, http.MethodGet, url, h, nil); resp.code != tt.code {
			t.Errorf("X-Forwarded-For %q: status %d, want %d", tt.xff, resp.code, tt.code)
		}
	}
	// Without forwarding headers the caller itself is the client.
	h := browserHeader()
	h.Set("X-Forwarded-Uri", "/")
	if resp := do(t, c, http.MethodGet, url, h, nil); resp.code != http.StatusOK {
		t.Errorf("no X-Forwarded-For: status %d, want 200", resp.code)
	}
}
