package crawlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// upstream is a fake set of list publishers: each path serves what the
// test put there.
type upstream struct {
	srv *httptest.Server

	mu      sync.Mutex
	handler map[string]http.HandlerFunc
	hits    map[string]int
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{handler: make(map[string]http.HandlerFunc), hits: make(map[string]int)}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		h := u.handler[r.URL.Path]
		u.hits[r.URL.Path]++
		u.mu.Unlock()
		if h == nil {
			http.NotFound(w, r)
			return
		}
		h(w, r)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) set(path string, h http.HandlerFunc) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.handler[path] = h
}

func (u *upstream) serve(path, body string) {
	u.set(path, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(body)) })
}

func (u *upstream) url(path string) string { return u.srv.URL + path }

// googleJSON renders prefixes in the operators' JSON shape.
func googleJSON(t *testing.T, ps []netip.Prefix) string {
	t.Helper()
	type entry struct {
		V4 string `json:"ipv4Prefix,omitempty"`
		V6 string `json:"ipv6Prefix,omitempty"`
	}
	doc := struct {
		CreationTime string  `json:"creationTime"`
		Prefixes     []entry `json:"prefixes"`
	}{CreationTime: "2026-08-01T00:00:00"}
	for _, p := range ps {
		if p.Addr().Is4() {
			doc.Prefixes = append(doc.Prefixes, entry{V4: p.String()})
		} else {
			doc.Prefixes = append(doc.Prefixes, entry{V6: p.String()})
		}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// agentsJSON renders agents as robots.json.
func agentsJSON(t *testing.T, agents []Agent) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("{")
	for i, a := range agents {
		if i > 0 {
			b.WriteString(",")
		}
		k, _ := json.Marshal(a.Name)
		v, _ := json.Marshal(map[string]string{"operator": a.Operator, "function": a.Function, "respect": a.Respect})
		fmt.Fprintf(&b, "%s:%s", k, v)
	}
	b.WriteString("}")
	return b.String()
}

// newTestRefresher points the ai-agents source and the googlebot and
// bingbot sources at u, and disables the other sources.
func newTestRefresher(t *testing.T, u *upstream, tweak func(*RefresherOptions)) *Refresher {
	t.Helper()
	opts := RefresherOptions{
		Client:       u.srv.Client(),
		AIAgentsURL:  u.url("/robots.json"),
		RangeURLs:    map[string]string{},
		FetchTimeout: 2 * time.Second,
	}
	for _, spec := range verifiedCrawlers {
		opts.RangeURLs[spec.name] = ""
	}
	opts.RangeURLs["googlebot"] = u.url("/googlebot.json")
	opts.RangeURLs["bingbot"] = u.url("/bingbot.txt")
	if tweak != nil {
		tweak(&opts)
	}
	return NewRefresher(opts)
}

func TestRefreshUpdates(t *testing.T) {
	cur := mustEmbedded(t)
	u := newUpstream(t)
	newAgent := Agent{Name: "NewBot", Operator: "New Co", Function: "training", Respect: "No"}
	u.serve("/robots.json", agentsJSON(t, append(cur.AIAgents(), newAgent)))
	extra := netip.MustParsePrefix("192.0.2.0/24")
	u.serve("/googlebot.json", googleJSON(t, append(cur.Prefixes("googlebot"), extra)))
	u.serve("/bingbot.txt", "# bing\n198.51.100.0/24\n"+prefixLines(cur.Prefixes("bingbot")))

	r := newTestRefresher(t, u, nil)
	next, err := r.Refresh(t.Context(), cur)
	if err != nil {
		t.Fatal(err)
	}
	if next == cur {
		t.Fatal("no new catalog")
	}
	if id := next.Identify("Mozilla/5.0 (compatible; NewBot/1.0)", netip.Addr{}); id.AIAgent != "NewBot" {
		t.Errorf("new agent not found: %+v", id)
	}
	if id := next.Identify("Googlebot/2.1", netip.MustParseAddr("192.0.2.1")); !id.Verified {
		t.Errorf("new googlebot prefix not verified: %+v", id)
	}
	if id := next.Identify("bingbot/2.0", netip.MustParseAddr("198.51.100.1")); !id.Verified {
		t.Errorf("new bingbot prefix not verified: %+v", id)
	}
	// Crawlers whose sources are disabled keep the embedded ranges.
	if id := next.Identify("Applebot/0.1", firstAddr(t, cur, "applebot")); !id.Verified {
		t.Errorf("applebot lost its ranges: %+v", id)
	}
	if got, want := next.Stats().AIAgents, cur.Stats().AIAgents+1; got != want {
		t.Errorf("agents = %d, want %d", got, want)
	}

	// Nothing changed upstream: the same catalog comes back.
	again, err := r.Refresh(t.Context(), next)
	if err != nil || again != next {
		t.Errorf("unchanged refresh: %v, same catalog %v", err, again == next)
	}

	st := r.Stats()
	if st.Refreshes != 2 || st.Updates != 1 || st.Failures != 0 || len(st.Sources) != 3 {
		t.Errorf("stats = %+v", st)
	}
	for _, s := range st.Sources {
		if s.LastError != "" || s.LastSuccess.IsZero() || s.Entries == 0 || s.URL == "" {
			t.Errorf("source stats = %+v", s)
		}
	}
}

func prefixLines(ps []netip.Prefix) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(p.String())
		b.WriteByte('\n')
	}
	return b.String()
}

func TestRefreshFailuresKeepTheCurrentLists(t *testing.T) {
	cur := mustEmbedded(t)
	good := googleJSON(t, append(cur.Prefixes("googlebot"), netip.MustParsePrefix("192.0.2.0/24")))
	cases := []struct {
		name    string
		tweak   func(*RefresherOptions)
		agents  http.HandlerFunc
		wantErr string
	}{
		{
			name:    "bad json",
			agents:  body(`{"GPTBot": {"operator": `),
			wantErr: "ai agents JSON",
		},
		{
			name:    "not an object",
			agents:  body(`["GPTBot"]`),
			wantErr: "ai agents JSON",
		},
		{
			name:    "server error",
			agents:  func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) },
			wantErr: "status 500",
		},
		{
			name:    "not found",
			agents:  nil,
			wantErr: "status 404",
		},
		{
			name:  "huge body with length",
			tweak: func(o *RefresherOptions) { o.MaxBodyBytes = 64 << 10 },
			agents: func(w http.ResponseWriter, _ *http.Request) {
				_, _ = w.Write([]byte(strings.Repeat(" ", 128<<10)))
			},
			wantErr: "limit",
		},
		{
			name:  "huge streamed body",
			tweak: func(o *RefresherOptions) { o.MaxBodyBytes = 64 << 10 },
			agents: func(w http.ResponseWriter, _ *http.Request) {
				for range 256 {
					_, _ = w.Write([]byte(strings.Repeat(" ", 512)))
					w.(http.Flusher).Flush()
				}
			},
			wantErr: "limit",
		},
		{
			name:  "timeout",
			tweak: func(o *RefresherOptions) { o.FetchTimeout = 100 * time.Millisecond },
			agents: func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-time.After(5 * time.Second):
				}
			},
			wantErr: "deadline exceeded",
		},
		{
			name:    "shrunk",
			agents:  body(`{"OnlyBot": {}}`),
			wantErr: "shrank",
		},
		{
			name:    "no usable agents",
			agents:  body(`{"\u0001": {}}`),
			wantErr: "no usable agents",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := newUpstream(t)
			if tc.agents != nil {
				u.set("/robots.json", tc.agents)
			}
			u.serve("/googlebot.json", good)
			u.serve("/bingbot.txt", prefixLines(cur.Prefixes("bingbot")))
			r := newTestRefresher(t, u, tc.tweak)
			next, err := r.Refresh(t.Context(), cur)
			if err == nil || !strings.Contains(err.Error(), AIAgentsSource) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one about %s mentioning %q", err, AIAgentsSource, tc.wantErr)
			}
			// The agents are the current ones, the good source still applied.
			if next == nil || next == cur {
				t.Fatal("the successful googlebot update was dropped")
			}
			if got, want := next.Stats().AIAgents, cur.Stats().AIAgents; got != want {
				t.Errorf("agents = %d, want %d", got, want)
			}
			if id := next.Identify("Googlebot/2.1", netip.MustParseAddr("192.0.2.1")); !id.Verified {
				t.Errorf("googlebot update lost: %+v", id)
			}
			st := r.Stats()
			if st.Failures != 1 {
				t.Errorf("failures = %d, want 1", st.Failures)
			}
			for _, s := range st.Sources {
				if (s.Name == AIAgentsSource) != (s.LastError != "") {
					t.Errorf("source %+v", s)
				}
			}
		})
	}
}

func body(s string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(s)) }
}

func TestRefreshRangeValidation(t *testing.T) {
	cur := mustEmbedded(t)
	for name, tc := range map[string]struct{ googlebot, wantErr string }{
		"shrunk":          {googleJSON(t, cur.Prefixes("googlebot")[:10]), "shrank"},
		"empty":           {`{"prefixes": []}`, "no prefixes"},
		"garbage":         {`{"prefixes": [{"ipv4Prefix": "nope"}]}`, "prefixes[0]"},
		"too broad":       {`{"prefixes": [{"ipv4Prefix": "0.0.0.0/0"}]}`, "broader"},
		"html error page": {"<html>rate limited</html>", "line 1"},
	} {
		t.Run(name, func(t *testing.T) {
			u := newUpstream(t)
			u.serve("/googlebot.json", tc.googlebot)
			r := newTestRefresher(t, u, func(o *RefresherOptions) {
				o.AIAgentsURL = "-"
				o.RangeURLs["bingbot"] = ""
			})
			next, err := r.Refresh(t.Context(), cur)
			if err == nil || !strings.Contains(err.Error(), "googlebot") || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if next != cur {
				t.Error("a rejected list replaced the catalog")
			}
		})
	}
}

func TestRefreshFromEmbeddedWhenNoCurrent(t *testing.T) {
	u := newUpstream(t) // every source 404s
	r := newTestRefresher(t, u, nil)
	next, err := r.Refresh(t.Context(), nil)
	if err == nil {
		t.Fatal("no error although every source failed")
	}
	if next == nil || next.Stats().AIAgents != 166 {
		t.Fatalf("fallback catalog = %v", next)
	}
	if got := r.Stats().Failures; got != 3 {
		t.Errorf("failures = %d, want 3", got)
	}
}

func TestRefreshCancelled(t *testing.T) {
	u := newUpstream(t)
	r := newTestRefresher(t, u, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	cur := mustEmbedded(t)
	next, err := r.Refresh(ctx, cur)
	if !errors.Is(err, context.Canceled) || next != cur {
		t.Errorf("Refresh on a cancelled context = %v, %v", next == cur, err)
	}
}

func TestRun(t *testing.T) {
	cur := mustEmbedded(t)
	u := newUpstream(t)
	u.serve("/robots.json", agentsJSON(t, append(cur.AIAgents(), Agent{Name: "RunBot"})))
	r := newTestRefresher(t, u, func(o *RefresherOptions) { o.Interval = 20 * time.Millisecond })

	ctx, cancel := context.WithCancel(t.Context())
	published := make(chan *Catalog, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx, cur, func(c *Catalog) { published <- c })
	}()
	select {
	case c := <-published:
		if c.Identify("RunBot/1", netip.Addr{}).AIAgent != "RunBot" {
			t.Error("published catalog lacks the update")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing published")
	}
	// Let a few more rounds run: nothing new upstream, nothing published.
	deadline := time.Now().Add(5 * time.Second)
	for r.Stats().Refreshes < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if n := len(published); n != 0 {
		t.Errorf("%d more catalogs published without upstream changes", n)
	}
	if r.Stats().Refreshes < 3 {
		t.Error("Run did not refresh on its interval")
	}
}
