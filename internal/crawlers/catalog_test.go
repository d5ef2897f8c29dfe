package crawlers

import (
	"encoding/json"
	"io/fs"
	"net/netip"
	"os"
	"path"
	"strings"
	"testing"
)

func mustEmbedded(tb testing.TB) *Catalog {
	tb.Helper()
	c, err := Embedded()
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func TestEmbeddedCatalog(t *testing.T) {
	c := mustEmbedded(t)
	st := c.Stats()
	if st.AIAgents != 166 || st.SkippedAgents != 0 {
		t.Errorf("agents = %d (skipped %d), want 166 (0)", st.AIAgents, st.SkippedAgents)
	}
	if st.Crawlers != len(verifiedCrawlers) {
		t.Errorf("crawlers = %d, want %d", st.Crawlers, len(verifiedCrawlers))
	}
	for _, ci := range c.Crawlers() {
		if ci.Ranges == 0 {
			t.Errorf("%s: no ranges", ci.Name)
		}
		if len(ci.Tokens) == 0 || ci.Operator == "" {
			t.Errorf("%s: incomplete entry %+v", ci.Name, ci)
		}
	}
}

// The table's source URLs and the "# source:" lines of the shipped files
// must agree, and every shipped file must be in the table.
func TestTableMatchesDataFiles(t *testing.T) {
	files, err := fs.Glob(embeddedData, "data/ip-ranges/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	inTable := make(map[string]bool)
	for _, spec := range verifiedCrawlers {
		inTable[spec.file] = true
		data, err := embeddedData.ReadFile(path.Join("data/ip-ranges", spec.file))
		if err != nil {
			t.Fatalf("%s: %v", spec.name, err)
		}
		_, src, err := parseRanges(data)
		if err != nil {
			t.Fatalf("%s: %v", spec.name, err)
		}
		if src != spec.source {
			t.Errorf("%s: table source %q, file says %q", spec.name, spec.source, src)
		}
	}
	for _, f := range files {
		if !inTable[path.Base(f)] {
			t.Errorf("%s is not in verifiedCrawlers", f)
		}
	}
}

// Every ai.robots.txt name must be reported when a user agent carries it,
// including the names with spaces, dots, slashes and underscores.
func TestEveryAIAgentMatches(t *testing.T) {
	c := mustEmbedded(t)
	raw, err := os.ReadFile("data/ai-robots-txt/robots.json")
	if err != nil {
		t.Fatal(err)
	}
	var list map[string]json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 166 {
		t.Fatalf("list has %d names", len(list))
	}
	for name := range list {
		for _, ua := range []string{
			"Mozilla/5.0 (compatible; " + name + "/1.0; +https://example.com)",
			name,
			strings.ToUpper(name) + "/2",
		} {
			// The most specific name wins: "MistralAI-User/1.0" is itself
			// a name, and the more specific one for that user agent.
			id := c.Identify(ua, netip.Addr{})
			if !strings.EqualFold(id.AIAgent, name) && !hasPrefixFold(id.AIAgent, name+"/") {
				t.Errorf("Identify(%q).AIAgent = %q, want %q", ua, id.AIAgent, name)
			}
		}
	}
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// Real desktop and mobile browser user agents name no agent and claim no
// crawler.
var browserUAs = []string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0",
	"Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
	"Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/133.0 Mobile/15E148 Safari/605.1.15",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
	"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 EdgA/131.0.0.0",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 EdgiOS/131.2903.68 Mobile/15E148 Safari/605.1.15",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 OPR/115.0.0.0",
	"Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
	"Mozilla/5.0 (Linux; Android 13; Pixel 7 Pro) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36",
}

func TestBrowsersAreNotBots(t *testing.T) {
	c := mustEmbedded(t)
	addr := netip.MustParseAddr("203.0.113.7")
	for _, ua := range browserUAs {
		if id := c.Identify(ua, addr); id != (Identity{}) {
			t.Errorf("Identify(%q) = %+v, want zero", ua, id)
		}
	}
}

// firstAddr returns an address inside the first prefix shipped for crawler.
func firstAddr(tb testing.TB, c *Catalog, crawler string) netip.Addr {
	tb.Helper()
	p := c.Prefixes(crawler)
	if len(p) == 0 {
		tb.Fatalf("no prefixes for %s", crawler)
	}
	return p[0].Addr()
}

func TestIdentify(t *testing.T) {
	c := mustEmbedded(t)
	outside := netip.MustParseAddr("203.0.113.7")
	cases := []struct {
		ua       string
		crawler  string // crawler whose first prefix gives the address; "" → outside
		name     string
		verified bool
		agent    string
	}{
		{"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "googlebot", "googlebot", true, ""},
		{"Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.69 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "googlebot", "googlebot", true, ""},
		{"Googlebot-Image/1.0", "googlebot", "googlebot", true, ""},
		{"Mozilla/5.0 (compatible; GoogleOther)", "googlebot", "googlebot", true, "GoogleOther"},
		{"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "", "googlebot", false, ""},
		{"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "bingbot", "bingbot", true, ""},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)", "applebot", "applebot", true, "Applebot"},
		{"DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)", "duckduckbot", "duckduckbot", true, ""},
		{"DuckAssistBot/1.2; (+http://duckduckgo.com/duckassistbot.html)", "duckduckbot", "duckduckbot", true, "DuckAssistBot"},
		{"CCBot/2.0 (https://commoncrawl.org/faq/)", "commoncrawl", "commoncrawl", true, "CCBot"},
		{"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.1; +https://openai.com/gptbot)", "gptbot", "gptbot", true, "GPTBot"},
		{"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.1; +https://openai.com/gptbot)", "", "gptbot", false, "GPTBot"},
		{"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; OAI-SearchBot/1.0; +https://openai.com/searchbot", "oai-searchbot", "oai-searchbot", true, "OAI-SearchBot"},
		{"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; PerplexityBot/1.0; +https://perplexity.ai/perplexitybot)", "perplexitybot", "perplexitybot", true, "PerplexityBot"},
		{"Mozilla/5.0 (compatible; archive.org_bot +http://archive.org/details/archive.org_bot)", "internet-archive", "internet-archive", true, ""},
		{"ia_archiver (+http://www.alexa.com/site/help/webmasters; crawler@alexa.com)", "internet-archive", "internet-archive", true, ""},
		{"Mozilla/5.0 (compatible; Kagibot/1.0; +https://kagi.com/bot)", "kagibot", "kagibot", true, ""},
		{"search.marginalia.nu", "marginalia", "marginalia", true, ""},
		{"Mozilla/5.0 (compatible; MojeekBot/0.11; +https://www.mojeek.com/bot.html)", "mojeekbot", "mojeekbot", true, ""},
		{"Mozilla/5.0 (compatible; Qwantbot/1.0_12345; +https://help.qwant.com/bot/)", "qwantbot", "qwantbot", true, ""},
		{"Mozilla/5.0 (compatible; Qwantify/2.4w; +https://www.qwant.com/)", "qwantbot", "qwantbot", true, ""},
		{"Citoid (Wikimedia tool; learn more at https://www.mediawiki.org/wiki/Citoid)", "wikimedia-citoid", "wikimedia-citoid", true, ""},
		{"Mozilla/5.0 (compatible; xAI-Bot/1.0; +https://x.ai/grok)", "xai", "xai", true, ""},
		{"Arquivo-web-crawler (compatible; heritrix/3.4.0-20200304 +https://arquivo.pt/faq-crawling)", "arquivo-pt", "arquivo-pt", true, ""},
		// Agents that are not verifiable crawlers.
		{"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)", "", "", false, "ClaudeBot"},
		{"Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 (compatible; Bytespider; spider-feedback@bytedance.com)", "", "", false, "Bytespider"},
		{"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; ChatGPT-User/1.0; +https://openai.com/bot", "", "", false, "ChatGPT-User"},
		{"claude-code/1.0.3", "", "", false, "Claude-Code"},
		{"Scrapy/2.11.2 (+https://scrapy.org)", "", "", false, "Scrapy"},
		{"gptbot", "", "gptbot", false, "GPTBot"},
		// Word boundaries.
		{"Xcode/15.0 (Unicode)", "", "", false, ""},
		{"Mediapartners-Google/2.1 (+http://www.googlebot.com/bot.html)", "", "", false, ""},
		{"SuperGPTBot/1.0", "", "", false, ""},
		{"GPTBot2/1.0", "", "", false, ""},
		{"", "", "", false, ""},
	}
	for _, tc := range cases {
		addr := outside
		if tc.crawler != "" {
			addr = firstAddr(t, c, tc.crawler)
		}
		got := c.Identify(tc.ua, addr)
		want := Identity{Name: tc.name, Verified: tc.verified, AIAgent: tc.agent}
		if got != want {
			t.Errorf("Identify(%q, %s) = %+v, want %+v", tc.ua, addr, got, want)
		}
		if got.Impostor() != (tc.name != "" && !tc.verified) {
			t.Errorf("Identify(%q).Impostor() = %v", tc.ua, got.Impostor())
		}
	}
}

func TestIdentifyAddressForms(t *testing.T) {
	c := mustEmbedded(t)
	ua := "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"66.249.66.1", true},
		{"::ffff:66.249.66.1", true},
		{"2001:4860:4801:10::1", true},
		{"2001:4860:4801:10:ffff:ffff:ffff:ffff", true},
		{"2001:4860:4801:11::1", true},
		{"2001:4860:4801:ffff::1", false},
		{"66.249.0.1", false},
		{"0.0.0.0", false},
		{"::", false},
	} {
		addr := netip.MustParseAddr(tc.addr)
		if got := c.Identify(ua, addr).Verified; got != tc.want {
			t.Errorf("Verified at %s = %v, want %v", tc.addr, got, tc.want)
		}
	}
	if c.Identify(ua, netip.Addr{}).Verified {
		t.Error("invalid address verified")
	}
	var nilCat *Catalog
	if id := nilCat.Identify(ua, netip.Addr{}); id != (Identity{}) {
		t.Errorf("nil catalog: %+v", id)
	}
}

func TestIdentifyScansOnlyTheHead(t *testing.T) {
	c := mustEmbedded(t)
	ua := strings.Repeat("a ", MaxUserAgentScan) + "GPTBot/1.1"
	if id := c.Identify(ua, netip.Addr{}); id != (Identity{}) {
		t.Errorf("token past MaxUserAgentScan found: %+v", id)
	}
}

func TestParse(t *testing.T) {
	agents := []byte(`{"FooBot": {"operator": "Foo", "function": "training", "respect": "Yes"},
		"bad\u0001name": {}, "Bar Crawler": {"operator": 3}}`)
	c, err := Parse(agents, map[string][]byte{
		"googlebot": []byte(`{"creationTime":"x","prefixes":[{"ipv4Prefix":"192.0.2.0/24"},{"ipv6Prefix":"2001:db8::/32"}]}`),
		"bingbot":   []byte("# source: https://example.com/b.json\n198.51.100.0/24\n"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Stats(); got.AIAgents != 2 || got.SkippedAgents != 1 || got.Crawlers != 2 || got.Prefixes != 3 {
		t.Errorf("stats = %+v", got)
	}
	wantAgents := []Agent{{Name: "FooBot", Operator: "Foo", Function: "training", Respect: "Yes"}, {Name: "Bar Crawler"}}
	if got := c.AIAgents(); len(got) != 2 || got[0] != wantAgents[0] || got[1] != wantAgents[1] {
		t.Errorf("agents = %+v", got)
	}
	if id := c.Identify("Googlebot/2.1", netip.MustParseAddr("2001:db8::1")); !id.Verified {
		t.Errorf("googlebot from listed v6: %+v", id)
	}
	// A crawler without ranges claims nothing.
	if id := c.Identify("Applebot/0.1", netip.MustParseAddr("17.241.208.161")); id.Claimed() {
		t.Errorf("applebot without ranges claimed: %+v", id)
	}
	if !c.Verify("bingbot", netip.MustParseAddr("198.51.100.1")) || c.Verify("applebot", netip.MustParseAddr("198.51.100.1")) {
		t.Error("Verify disagrees with the lists")
	}

	for name, tc := range map[string]struct {
		agents string
		ranges map[string][]byte
	}{
		"bad agents JSON":  {`{"a":`, nil},
		"agents not obj":   {`["a"]`, nil},
		"no agents":        {`{}`, nil},
		"trailing data":    {`{"a":{}} x`, nil},
		"unknown crawler":  {`{"a":{}}`, map[string][]byte{"nosuchbot": []byte("192.0.2.0/24")}},
		"bad ranges":       {`{"a":{}}`, map[string][]byte{"googlebot": []byte("not an address")}},
		"empty ranges":     {`{"a":{}}`, map[string][]byte{"googlebot": []byte("# nothing\n")}},
		"too broad prefix": {`{"a":{}}`, map[string][]byte{"googlebot": []byte("0.0.0.0/0")}},
	} {
		if _, err := Parse([]byte(tc.agents), tc.ranges); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestAccessorsReturnCopies(t *testing.T) {
	c := mustEmbedded(t)
	c.AIAgents()[0].Name = "changed"
	c.Crawlers()[0].Tokens[0] = "changed"
	c.Prefixes("googlebot")[0] = netip.Prefix{}
	if c.AIAgents()[0].Name == "changed" || c.Crawlers()[0].Tokens[0] == "changed" || !c.Prefixes("googlebot")[0].IsValid() {
		t.Error("an accessor exposed the catalog's own slice")
	}
}

func TestIdentifyDoesNotAllocate(t *testing.T) {
	c := mustEmbedded(t)
	addr := netip.MustParseAddr("66.249.66.1")
	uas := append([]string{"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}, browserUAs...)
	allocs := testing.AllocsPerRun(100, func() {
		for _, ua := range uas {
			_ = c.Identify(ua, addr)
		}
	})
	if allocs != 0 {
		t.Errorf("Identify allocates %.1f times", allocs)
	}
}

func BenchmarkIdentify(b *testing.B) {
	c := mustEmbedded(b)
	for _, bc := range []struct {
		name, ua, addr string
	}{
		{"chrome", browserUAs[0], "203.0.113.7"},
		{"chrome-mobile", browserUAs[3], "2001:db8::1"},
		{"googlebot-verified", "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.69 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "66.249.66.1"},
		{"gptbot-impostor", "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.1; +https://openai.com/gptbot)", "203.0.113.7"},
	} {
		addr := netip.MustParseAddr(bc.addr)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = c.Identify(bc.ua, addr)
			}
		})
	}
}
