package policy

import (
	"bytes"
	"net/http"
	"net/netip"
	"testing"

	"github.com/scrapedefense/scrapedefense/internal/crawlers"
	"github.com/scrapedefense/scrapedefense/internal/decision"
)

func loadDefault(t testing.TB) *Policy {
	t.Helper()
	p, err := Default(testOptions())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultPolicy(t *testing.T) {
	p := loadDefault(t)
	browser := func(uaStr string, h http.Header, mods ...modifier) *Request {
		r := chromeRequest()
		r.UserAgent, r.Header = uaStr, h
		for _, m := range mods {
			m(r)
		}
		return r
	}
	googlebot := func(verified bool) *Request {
		return &Request{
			Addr: netip.MustParseAddr("66.249.66.1"), Method: "GET", Host: "example.com", Path: "/articles/2024/hello",
			UserAgent: googleUA, Header: http.Header{"Accept": {"*/*"}, "Accept-Encoding": {"gzip"}, "From": {"googlebot(at)googlebot.com"}},
			Crawler: crawlers.Identity{Name: "googlebot", Verified: verified},
		}
	}
	withRobots := func(r *Request) *Request { r.Robots = pathRobots{}; return r }
	noLang := chromeHeaders()
	noLang.Del("Accept-Language")
	plainHTTP := chromeHeaders() // Chrome over plain HTTP: no Sec-Fetch-*, no client hints
	for _, h := range []string{"Sec-Fetch-Dest", "Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-User", "Sec-Ch-Ua", "Sec-Ch-Ua-Mobile", "Sec-Ch-Ua-Platform"} {
		plainHTTP.Del(h)
	}
	requestsWithChromeUA := http.Header{"Accept": {"*/*"}, "Accept-Encoding": {"gzip, deflate"}, "Connection": {"keep-alive"}}
	gptRobots := gptbotRequest()
	gptRobots.Path = "/robots.txt"
	unverifiedGPT := gptbotRequest()
	unverifiedGPT.Crawler.Verified = false
	feedReader := &Request{Addr: netip.MustParseAddr("198.51.100.20"), Method: "GET", Path: "/feed.xml",
		UserAgent: "python-requests/2.31.0", Header: http.Header{"Accept": {"*/*"}}}
	feedly := &Request{Addr: netip.MustParseAddr("198.51.100.21"), Method: "GET", Path: "/blog/index.xml",
		UserAgent: "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 5 subscribers)", Header: http.Header{"Accept": {"application/atom+xml, application/rss+xml"}}}
	acceptFeed := curlRequest("/blog")
	acceptFeed.Header.Set("Accept", "application/rss+xml")
	emptyUA := curlRequest("/")
	emptyUA.UserAgent = ""

	tests := []struct {
		name       string
		req        *Request
		wantAction decision.Action
		wantRule   string
		wantWeight int
	}{
		{"chrome", chromeRequest(), decision.ActionNone, "", 0},
		{"firefox", browser(firefoxUA, firefoxHeaders()), decision.ActionNone, "", 0},
		{"safari", browser(safariUA, safariHeaders()), decision.ActionNone, "", 0},
		{"chrome over plain http", browser(chromeUA, plainHTTP), decision.ActionNone, "", 10},
		{"chrome on robots-disallowed path", withRobots(browser(chromeUA, chromeHeaders(), path("/private/x"))), decision.ActionNone, "", 10},
		{"chrome without accept-language", browser(chromeUA, noLang), decision.ActionNone, "", 10},
		{"python with chrome ua", browser(chromeUA, requestsWithChromeUA), decision.ActionChallenge, "threshold:20", 20},
		{"curl with chrome ua", browser(chromeUA, http.Header{"Accept": {"*/*"}}), decision.ActionBlock, "threshold:30", 30},
		{"curl", curlRequest("/articles/2024/hello"), decision.ActionBlock, "threshold:30", 30},
		{"node fetch", browser("node", http.Header{"Accept": {"*/*"}, "Accept-Language": {"*"}, "Sec-Fetch-Mode": {"cors"}}), decision.ActionBlock, "threshold:30", 30},
		{"facebook link preview", browser("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", http.Header{"Accept": {"*/*"}}), decision.ActionAllow, "link-previews", 0},
		{"linkedin link preview", browser("LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)", http.Header{}), decision.ActionAllow, "link-previews", 0},
		{"curl on robots.txt", curlRequest("/robots.txt"), decision.ActionNone, "", 30},
		{"curl on well-known", curlRequest("/.well-known/security.txt"), decision.ActionNone, "", 30},
		{"python-requests", browser("python-requests/2.31.0", requestsWithChromeUA), decision.ActionBlock, "threshold:30", 30},
		{"go http client", browser("Go-http-client/1.1", http.Header{"Accept-Encoding": {"gzip"}}), decision.ActionBlock, "threshold:30", 30},
		{"scrapy", browser("Scrapy/2.11.2 (+https://scrapy.org)", requestsWithChromeUA), decision.ActionBlock, "threshold:30", 30},
		{"wget", browser("Wget/1.21.4", http.Header{"Accept": {"*/*"}}), decision.ActionBlock, "threshold:30", 30},
		{"headless chrome", browser("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36", chromeHeaders()), decision.ActionBlock, "threshold:30", 30},
		{"empty user agent", emptyUA, decision.ActionChallenge, "threshold:20", 20},
		{"gptbot verified", gptbotRequest(), decision.ActionBlock, "ai-crawlers", 0},
		{"gptbot unverified", unverifiedGPT, decision.ActionBlock, "ai-crawlers", 0},
		{"gptbot reads robots.txt", gptRobots, decision.ActionNone, "", 0},
		{"googlebot verified", googlebot(true), decision.ActionAllow, "verified-search-crawlers", 0},
		{"googlebot verified on disallowed path", withRobots(googlebot(true)), decision.ActionAllow, "verified-search-crawlers", 0},
		{"googlebot impostor", googlebot(false), decision.ActionBlock, "impostors", 0},
		{"feed reader library on /feed.xml", feedReader, decision.ActionNone, "", 30},
		{"feedly", feedly, decision.ActionNone, "", 0},
		{"curl asking for a feed", acceptFeed, decision.ActionNone, "", 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := evaluate(p, tt.req)
			if res.Action != tt.wantAction || res.Rule != tt.wantRule || res.Weight != tt.wantWeight {
				var b bytes.Buffer
				res.Explain(&b)
				t.Errorf("got %v %q weight %d, want %v %q weight %d\n%s", res.Action, res.Rule, res.Weight, tt.wantAction, tt.wantRule, tt.wantWeight, b.String())
			}
		})
	}
}

func TestDefaultYAMLIsACopy(t *testing.T) {
	b := DefaultYAML()
	b[0] = 'X'
	if _, err := Default(LoadOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestDefaultRespectsAvailability: the default policy uses no action that
// is not delivered yet.
func TestDefaultRespectsAvailability(t *testing.T) {
	_, err := Default(LoadOptions{Available: func(a decision.Action) bool {
		return a != decision.ActionTarpit
	}})
	if err != nil {
		t.Fatal(err)
	}
}

var benchResult Result

func BenchmarkEvaluateDefault(b *testing.B) {
	p := loadDefault(b)
	for _, bc := range []struct {
		name string
		req  *Request
	}{
		{"chrome", chromeRequest()},
		{"curl", curlRequest("/articles/2024/hello")},
		{"gptbot", gptbotRequest()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			start := processCPU()
			for b.Loop() {
				p.Evaluate(bc.req, &benchResult)
			}
			if cpu := processCPU() - start; cpu > 0 {
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
			}
		})
	}
}

func BenchmarkLoadDefault(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Default(LoadOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestEvaluateDoesNotAllocate(t *testing.T) {
	p := loadDefault(t)
	for _, r := range []*Request{chromeRequest(), curlRequest("/x"), gptbotRequest(), curlRequest("/feed.xml")} {
		var res Result
		if n := testing.AllocsPerRun(100, func() { p.Evaluate(r, &res) }); n != 0 {
			t.Errorf("%s: %v allocs per Evaluate", r.UserAgent, n)
		}
	}
}
