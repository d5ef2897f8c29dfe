package main

import (
	"bufio"
	"context"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// rawServer accepts one connection, returns the raw request head it read,
// and answers with resp.
func rawServer(t *testing.T, resp string) (addr string, heads <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan string, 4)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			var head strings.Builder
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				head.WriteString(line)
				if line == "\r\n" {
					break
				}
			}
			ch <- head.String()
			if _, err := c.Write([]byte(resp)); err != nil {
				return
			}
		}
	}()
	return ln.Addr().String(), ch
}

func TestRawConnKeepsHeaderOrder(t *testing.T) {
	addr, heads := rawServer(t, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello")
	c := newRawConn(addr, 5*time.Second)
	defer c.Close()
	b := browser{Engine: engineChromium, UA: "UA", Platform: `"Windows"`, Language: "en"}
	hs := b.navigate(navigation{Host: "site", Path: "/", Site: "none", User: true})
	for range 2 { // the second request reuses the connection
		resp, err := c.Do(context.Background(), request{Path: "/", Headers: hs})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != 200 || string(resp.Body) != "hello" {
			t.Fatalf("response %d %q", resp.Status, resp.Body)
		}
		head := <-heads
		var names []string
		for _, line := range strings.Split(strings.TrimSpace(head), "\r\n")[1:] {
			name, _, _ := strings.Cut(line, ":")
			names = append(names, name)
		}
		want := "Host Connection sec-ch-ua sec-ch-ua-mobile sec-ch-ua-platform Upgrade-Insecure-Requests User-Agent Accept Sec-Fetch-Site Sec-Fetch-Mode Sec-Fetch-User Sec-Fetch-Dest Accept-Encoding Accept-Language"
		if got := strings.Join(names, " "); got != want {
			t.Errorf("header order:\n got %s\nwant %s", got, want)
		}
		if !strings.HasPrefix(head, "GET / HTTP/1.1\r\n") {
			t.Errorf("request line: %q", head)
		}
	}
}

func TestRawConnTimeoutIsTarpit(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		// A slow page: headers, then a trickle that never finishes in time.
		_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n"))
		time.Sleep(2 * time.Second)
	}()
	c := newRawConn(ln.Addr().String(), 300*time.Millisecond)
	defer c.Close()
	resp, err := c.Do(context.Background(), request{Path: "/", Headers: []header{{"Host", "x"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := (classifier{BlockStatus: 403}).classify(resp); got != verdictTarpit {
		t.Errorf("verdict %v, want tarpit", got)
	}
}

func TestClassify(t *testing.T) {
	c := classifier{BlockStatus: 403, ChallengeMarker: []byte(defaultChallengeMarker), BlockMarker: []byte("Access denied")}
	tests := []struct {
		name string
		resp response
		want verdict
	}{
		{"page", response{Status: 200, Body: []byte("<html>")}, verdictAllow},
		{"not found", response{Status: 404}, verdictAllow},
		{"throttle", response{Status: 429}, verdictThrottle},
		{"challenge", response{Status: 403, Body: []byte(`<link rel="stylesheet" href="/.scrapedefense/challenge/c.css">`)}, verdictChallenge},
		{"block", response{Status: 403, Body: []byte("<h1>Access denied</h1>")}, verdictBlock},
		{"upstream 403", response{Status: 403, Body: []byte("forbidden by the site")}, verdictAllow},
		{"slow", response{TimedOut: true}, verdictTarpit},
	}
	for _, tc := range tests {
		if got := c.classify(tc.resp); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestRobotsDisallow(t *testing.T) {
	robots := []byte("User-agent: *\nAllow: /\nDisallow: /private/\nDisallow: /search\n\nUser-agent: GPTBot\nUser-agent: ClaudeBot\nDisallow: /\n")
	tests := []struct {
		token string
		want  string
	}{
		{"googlebot", "/private/ /search"},
		{"gptbot", "/"},
		{"claudebot", "/"},
		{"", "/private/ /search"},
	}
	for _, tc := range tests {
		if got := strings.Join(robotsDisallow(robots, tc.token), " "); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.token, got, tc.want)
		}
	}
}

func FuzzRobotsDisallow(f *testing.F) {
	f.Add([]byte("User-agent: *\nDisallow: /private/\n"), "googlebot")
	f.Add([]byte("User-agent: a\nUser-agent: b\nDisallow: /x # c\nSitemap: http://x/s.xml\n"), "b")
	f.Fuzz(func(t *testing.T, body []byte, token string) {
		for _, r := range robotsDisallow(body, token) {
			if r == "" {
				t.Fatal("empty rule")
			}
		}
	})
}

func TestFrontierBoundedAndSearches(t *testing.T) {
	f := newFrontier([]string{"/a", "/a"})
	html := `<html><body><p>Herons fishing along riverbanks</p><a href="/b">b</a><a href="/a">a</a></body></html>`
	f.addPage(response{Status: 200, Header: http.Header{"Content-Type": {"text/html"}}, Body: []byte(html)}, "/", false)
	var got []string
	for range 9 {
		p, ok := f.next()
		if !ok {
			break
		}
		got = append(got, p)
	}
	want := "/ /a /b /search?q=herons /search?q=fishing /search?q=along /search?q=riverbanks / /a"
	if strings.Join(got, " ") != want {
		t.Errorf("got %v\nwant %s", got, want)
	}
	for i := range maxFrontier + 10 {
		f.push("/p"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+time.Duration(i).String(), false)
	}
	if len(f.seen) > maxFrontier {
		t.Errorf("seen grew to %d", len(f.seen))
	}
}

func TestFrontierEmpty(t *testing.T) {
	f := &frontier{seen: map[string]bool{}, wordSeen: map[string]bool{}}
	if p, ok := f.next(); ok {
		t.Errorf("empty frontier gave %q", p)
	}
}

func TestAddrPool(t *testing.T) {
	google := netip.MustParsePrefix("66.249.64.0/27")
	p := newAddrPool(7, []netip.Prefix{google})
	seen := map[netip.Prefix]bool{}
	for range 2000 {
		a := p.residential()
		if !publicV4(a) || google.Contains(a) {
			t.Fatalf("bad residential address %s", a)
		}
		s := netip.PrefixFrom(a, 24).Masked()
		if seen[s] {
			t.Fatalf("subnet %s handed out twice", s)
		}
		seen[s] = true
	}
	for range 20 {
		a, ok := p.inPrefix(google)
		if !ok || !google.Contains(a) {
			t.Fatalf("inPrefix: %s %v", a, ok)
		}
	}
	v6 := netip.MustParsePrefix("2001:4860:4801:10::/64")
	if a, ok := p.inPrefix(v6); !ok || !v6.Contains(a) {
		t.Fatalf("inPrefix v6: %s %v", a, ok)
	}
}

func client(f family, stopped bool, stop verdict, through int) *clientRec {
	c := &clientRec{Family: f, Stopped: stopped, Stop: stop, Through: through, Requests: through + 1}
	c.Counts[verdictAllow] = through
	if stopped {
		c.Counts[stop]++
	}
	return c
}

func TestScoreAndTargets(t *testing.T) {
	var cs []*clientRec
	for range 3 {
		cs = append(cs, client(famAI, true, verdictBlock, 0))
	}
	cs = append(cs, client(famLibraries, true, verdictBlock, 0), client(famLibraries, true, verdictThrottle, 40))
	cs = append(cs, client(famStealth, true, verdictChallenge, 10), client(famStealth, true, verdictThrottle, 30), client(famStealth, false, 0, 50))
	for range 199 {
		cs = append(cs, client(famPeople, false, 0, 12))
	}
	cs = append(cs, client(famPeople, true, verdictChallenge, 3))
	cs = append(cs, client(famVerified, false, 0, 20), client(famImpostors, true, verdictBlock, 0))

	s := scoreFamilies(cs)
	if got := s[famStealth]; got.Clients != 3 || got.ByStop[verdictChallenge] != 1 || got.ByStop[verdictThrottle] != 1 || got.ByStop[verdictAllow] != 1 {
		t.Errorf("stealth score %+v", got)
	}
	if got := s[famStealth].MedianThrough; got != 30 {
		t.Errorf("stealth median %v, want 30", got)
	}
	if got := s[famStealth].P90Through; !math.IsInf(got, 1) {
		t.Errorf("stealth p90 %v, want +Inf (one never stopped)", got)
	}
	res := map[string]string{}
	for _, tg := range evaluateTargets(cs, 2000) {
		res[tg.Name] = result(tg)
	}
	want := map[string]string{
		"Declared AI crawlers stopped on the first request":                      "PASS",
		"HTTP-library scrapers stopped on the first request":                     "FAIL",
		"Impostor crawlers not allowed":                                          "PASS",
		"Verified crawlers allowed":                                              "PASS",
		"Stealth scrapers stopped, median requests before the stop ≤ 20":         "FAIL",
		"Distributed stealth addresses stopped before the group's 2000 requests": "NO DATA",
		"People ever challenged":                                                 "PASS", // 1 of 200 is 0.5 %
		"People ever blocked":                                                    "PASS",
		"Feed readers and link previews challenged or blocked":                   "NO DATA",
	}
	for k, v := range want {
		if res[k] != v {
			t.Errorf("%s: %s, want %s", k, res[k], v)
		}
	}
}

func TestApplyDecisions(t *testing.T) {
	a := &clientRec{Family: famStealth, Addr: netip.MustParseAddr("198.51.100.7")}
	b := &clientRec{Family: famStealth, Addr: netip.MustParseAddr("203.0.113.9")}
	c := &clientRec{Family: famStealth, Addr: netip.MustParseAddr("192.0.2.1"), Stopped: true, Stop: verdictThrottle}
	applyDecisions([]*clientRec{a, b, c}, []storedDecision{
		{Value: "198.51.100.0/24", Action: "tarpit"},
		{Value: "203.0.113.9", Action: "block"},
		{Value: "192.0.2.0/24", Action: "block"},
		{Value: "garbage", Action: "block"},
	})
	if !a.Stopped || a.Stop != verdictTarpit || !a.StopByDecision {
		t.Errorf("a: %+v", a)
	}
	if !b.Stopped || b.Stop != verdictBlock {
		t.Errorf("b: %+v", b)
	}
	if c.Stop != verdictThrottle || c.Decision != "block" {
		t.Errorf("c: the first answer decides the stop, the decision is noted: %+v", c)
	}
}

func TestReportKeepsHistory(t *testing.T) {
	scores := scoreFamilies([]*clientRec{client(famAI, true, verdictBlock, 0)})
	targets := evaluateTargets(nil, 2000)
	info := runInfo{Date: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC), Command: "run.sh", Label: "abc123", TimeScale: 0.05, Wall: time.Minute}
	var first strings.Builder
	writeReport(&first, "# Detection\n\nhand-written\n", "", info, scores, targets)
	_, hist, _ := strings.Cut(first.String(), "\n"+historyHeading+"\n")
	info.Date = info.Date.Add(time.Hour)
	info.Label = "def456"
	var second strings.Builder
	writeReport(&second, "# Detection\n\nhand-written\n", hist, info, scores, targets)
	out := second.String()
	for _, want := range []string{"hand-written", "| ai-crawlers | 1 |", "2026-01-02 03:04 UTC · abc123", "2026-01-02 04:04 UTC · def456", "NO DATA", "scale 0.05"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Index(out, "abc123 ·") > strings.Index(out, "def456 ·") {
		t.Error("history not oldest first")
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"-target", "127.0.0.1:1", "-quick", "-people", "7"})
	if err != nil {
		t.Fatal(err)
	}
	if o.cfg.Counts[famPeople] != 7 || o.cfg.Counts[famAI] != 6 || o.cfg.Duration != 20*time.Second || o.cfg.TimeScale != 0.01 {
		t.Errorf("quick: %+v", o.cfg)
	}
	for _, args := range [][]string{{}, {"-target", "x", "-time-scale", "0"}, {"-target", "x", "-people", "-1"}} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

func TestParseAgents(t *testing.T) {
	got, err := parseAgents([]byte(`{"GPTBot":{"operator":"OpenAI"},"ClaudeBot":{}, " ":{}}`))
	if err != nil || strings.Join(got, ",") != "ClaudeBot,GPTBot" {
		t.Fatalf("%v %v", got, err)
	}
	if _, err := parseAgents([]byte(`[1]`)); err == nil {
		t.Error("array accepted")
	}
	if got := declaredAgents([]string{"Google-Extended", "GPTBot"}); strings.Join(got, ",") != "GPTBot" {
		t.Errorf("declaredAgents: %v", got)
	}
}

func FuzzParseAgents(f *testing.F) {
	f.Add([]byte(`{"GPTBot":{"operator":"OpenAI"},"ClaudeBot":{}}`))
	f.Add([]byte(`{"":1," x ":null}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		names, err := parseAgents(raw)
		if err != nil {
			return
		}
		for _, n := range names {
			if n == "" || strings.TrimSpace(n) != n {
				t.Fatalf("bad name %q", n)
			}
		}
	})
}
