package policy

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/scrapedefense/scrapedefense/internal/crawlers"
	"github.com/scrapedefense/scrapedefense/internal/decision"
)

// matchPolicy wraps one match map (YAML flow syntax) in a policy with the
// lists the cases refer to.
func matchPolicy(t *testing.T, match string) *Policy {
	t.Helper()
	var big strings.Builder
	for i := range 40 {
		fmt.Fprintf(&big, "\"10.%d.0.0/16\", ", i)
	}
	return mustLoad(t, `version: 1
lists:
  nets-and-agents:
    cidrs: ["203.0.113.0/24", "2001:db8:bad::/48"]
    user_agents: ["EvilScraper", "harvest"]
  big:
    cidrs: [`+big.String()+`"192.0.2.1", "2001:db8::/32"]
  from-file:
    files: [bad.txt]
rules:
  - name: under-test
    match: `+match+`
    action: block
`)
}

type modifier func(*Request)

func ua(s string) modifier                 { return func(r *Request) { r.UserAgent = s } }
func path(s string) modifier               { return func(r *Request) { r.Path = s } }
func method(s string) modifier             { return func(r *Request) { r.Method = s } }
func host(s string) modifier               { return func(r *Request) { r.Host = s } }
func addr(s string) modifier               { return func(r *Request) { r.Addr = netip.MustParseAddr(s) } }
func noAddr() modifier                     { return func(r *Request) { r.Addr = netip.Addr{} } }
func robots() modifier                     { return func(r *Request) { r.Robots = pathRobots{} } }
func crawler(c crawlers.Identity) modifier { return func(r *Request) { r.Crawler = c } }
func header(k string, v ...string) modifier {
	return func(r *Request) {
		if len(v) == 0 {
			r.Header.Del(k)
			return
		}
		r.Header[http.CanonicalHeaderKey(k)] = v
	}
}
func noHeaders() modifier { return func(r *Request) { r.Header = nil } }

func TestMatchers(t *testing.T) {
	googlebot := crawlers.Identity{Name: "googlebot", Verified: true}
	impostor := crawlers.Identity{Name: "googlebot"}
	gpt := crawlers.Identity{Name: "gptbot", AIAgent: "GPTBot"}
	huge := strings.Repeat("a", MaxUserAgentLen)
	tests := []struct {
		name  string
		match string
		mods  []modifier
		want  bool
	}{
		// user_agent: case-insensitive substrings.
		{"ua substring", `{user_agent: ["curl/"]}`, []modifier{ua("curl/8.5")}, true},
		{"ua case-insensitive", `{user_agent: ["python-requests"]}`, []modifier{ua("Python-Requests/2.31")}, true},
		{"ua needle upper-case", `{user_agent: ["CHROME/"]}`, nil, true},
		{"ua scalar", `{user_agent: scrapy}`, []modifier{ua("Scrapy/2.11 (+https://scrapy.org)")}, true},
		{"ua second needle", `{user_agent: ["nothing", "gecko)"]}`, nil, true},
		{"ua one-byte needle", `{user_agent: ["("]}`, nil, true},
		{"ua no match", `{user_agent: ["curl/", "wget/"]}`, nil, false},
		{"ua empty", `{user_agent: ["curl/"]}`, []modifier{ua("")}, false},
		{"ua needle at end", `{user_agent: ["537.36"]}`, nil, true},
		{"ua needle longer than ua", `{user_agent: ["curl/8.5.0-and-more"]}`, []modifier{ua("curl/8.5.0")}, false},
		{"ua beyond cap", `{user_agent: ["needle"]}`, []modifier{ua(huge + "needle")}, false},
		{"ua within cap", `{user_agent: ["needle"]}`, []modifier{ua("needle" + huge)}, true},

		// user_agent_regex.
		{"ua regex prefix", `{user_agent_regex: '^Mozilla/5\.0'}`, nil, true},
		{"ua regex prefix no match", `{user_agent_regex: '^Mozilla/4'}`, nil, false},
		{"ua regex case-sensitive", `{user_agent_regex: 'chrome'}`, nil, false},
		{"ua regex fold", `{user_agent_regex: '(?i)CHROME/\d+'}`, nil, true},
		{"ua regex literal fold", `{user_agent_regex: '(?i)bot'}`, []modifier{ua("GoogleBOT")}, true},
		{"ua regex empty", `{user_agent_regex: '^$'}`, []modifier{ua("")}, true},
		{"ua regex empty no match", `{user_agent_regex: '^$'}`, nil, false},
		{"ua regex engine", `{user_agent_regex: 'Chrome/1[0-9]{2}\.'}`, nil, true},

		// path_prefix and path_regex.
		{"path prefix", `{path_prefix: ["/admin", "/articles/"]}`, nil, true},
		{"path prefix scalar", `{path_prefix: /articles}`, nil, true},
		{"path prefix case-sensitive", `{path_prefix: ["/Articles"]}`, nil, false},
		{"path regex exact", `{path_regex: '^/robots\.txt$'}`, []modifier{path("/robots.txt")}, true},
		{"path regex exact longer", `{path_regex: '^/robots\.txt$'}`, []modifier{path("/robots.txt.bak")}, false},
		{"path regex suffix alternation", `{path_regex: '\.(rss|atom)$'}`, []modifier{path("/blog/index.atom")}, true},
		{"path regex optional group", `{path_regex: '/feed(/|\.xml)?$'}`, []modifier{path("/blog/feed.xml")}, true},
		{"path regex optional group bare", `{path_regex: '/feed(/|\.xml)?$'}`, []modifier{path("/blog/feed")}, true},
		{"path regex optional group no match", `{path_regex: '/feed(/|\.xml)?$'}`, []modifier{path("/blog/feedback")}, false},
		{"path regex engine", `{path_regex: '^/\d{4}/'}`, []modifier{path("/2024/hello")}, true},

		// method.
		{"method", `{method: [POST, put]}`, []modifier{method("PUT")}, true},
		{"method case-insensitive", `{method: [post]}`, []modifier{method("POST")}, true},
		{"method no match", `{method: [POST]}`, nil, false},

		// header_present and header_absent (all listed headers).
		{"header present", `{header_present: [Accept, accept-language]}`, nil, true},
		{"header present one missing", `{header_present: [Accept, X-Missing]}`, nil, false},
		{"header present nil header", `{header_present: Accept}`, []modifier{noHeaders()}, false},
		{"header absent", `{header_absent: X-Missing}`, nil, true},
		{"header absent present", `{header_absent: [X-Missing, sec-fetch-mode]}`, nil, false},
		{"header absent nil header", `{header_absent: Accept}`, []modifier{noHeaders()}, true},

		// header_regex: absent never matches; any value may match; all headers must.
		{"header regex", `{header_regex: {accept: 'text/html'}}`, nil, true},
		{"header regex no match", `{header_regex: {Accept: '^application/json'}}`, nil, false},
		{"header regex absent", `{header_regex: {X-Missing: '.*'}}`, nil, false},
		{"header regex second value", `{header_regex: {X-Forwarded-Proto: '^https$'}}`, []modifier{header("X-Forwarded-Proto", "http", "https")}, true},
		{"header regex two headers", `{header_regex: {Accept: html, Accept-Language: '^de'}}`, nil, false},
		{"header regex two headers match", `{header_regex: {Accept: html, Accept-Language: '^en'}}`, nil, true},

		// cidr.
		{"cidr v4", `{cidr: ["198.51.100.0/24"]}`, nil, true},
		{"cidr v4 no match", `{cidr: ["198.51.101.0/24"]}`, nil, false},
		{"cidr single address", `{cidr: 198.51.100.7}`, nil, true},
		{"cidr v6", `{cidr: ["2001:db8::/32"]}`, []modifier{addr("2001:db8::1")}, true},
		{"cidr mapped v4", `{cidr: ["198.51.100.0/24"]}`, []modifier{addr("::ffff:198.51.100.9")}, true},
		{"cidr no address", `{cidr: ["0.0.0.0/0"]}`, []modifier{noAddr()}, false},

		// list: cidrs or user agents, inline or from files; big lists use the map.
		{"list cidr", `{list: nets-and-agents}`, []modifier{addr("203.0.113.9")}, true},
		{"list cidr v6", `{list: nets-and-agents}`, []modifier{addr("2001:db8:bad:1::1")}, true},
		{"list agent", `{list: nets-and-agents}`, []modifier{ua("Mozilla/5.0 evilscraper/1.0")}, true},
		{"list no match", `{list: nets-and-agents}`, nil, false},
		{"list big", `{list: big}`, []modifier{addr("10.39.200.1")}, true},
		{"list big single", `{list: big}`, []modifier{addr("192.0.2.1")}, true},
		{"list big v6", `{list: big}`, []modifier{addr("2001:db8:1::1")}, true},
		{"list big no match", `{list: big}`, []modifier{addr("10.40.0.1")}, false},
		{"list file cidr", `{list: from-file}`, []modifier{addr("192.0.2.55")}, true},
		{"list file agent", `{list: from-file}`, []modifier{ua("EvilScraper/2")}, true},
		{"list file no match", `{list: from-file}`, []modifier{addr("192.0.2.56")}, false},

		// ai_agent.
		{"ai agent any", `{ai_agent: true}`, []modifier{crawler(gpt)}, true},
		{"ai agent any none", `{ai_agent: true}`, nil, false},
		{"ai agent names", `{ai_agent: [ClaudeBot, gptbot]}`, []modifier{crawler(gpt)}, true},
		{"ai agent names scalar", `{ai_agent: GPTBot}`, []modifier{crawler(gpt)}, true},
		{"ai agent names other", `{ai_agent: [ClaudeBot]}`, []modifier{crawler(gpt)}, false},

		// crawler.
		{"crawler verified", `{crawler: verified}`, []modifier{crawler(googlebot)}, true},
		{"crawler verified impostor", `{crawler: verified}`, []modifier{crawler(impostor)}, false},
		{"crawler impostor", `{crawler: impostor}`, []modifier{crawler(impostor)}, true},
		{"crawler impostor verified", `{crawler: impostor}`, []modifier{crawler(googlebot)}, false},
		{"crawler claimed verified", `{crawler: claimed}`, []modifier{crawler(googlebot)}, true},
		{"crawler claimed impostor", `{crawler: claimed}`, []modifier{crawler(impostor)}, true},
		{"crawler claimed none", `{crawler: claimed}`, nil, false},
		{"crawler none", `{crawler: none}`, nil, true},
		{"crawler none claimed", `{crawler: none}`, []modifier{crawler(googlebot)}, false},

		// robots_disallowed.
		{"robots disallowed", `{robots_disallowed: true}`, []modifier{robots(), path("/private/x")}, true},
		{"robots allowed", `{robots_disallowed: true}`, []modifier{robots()}, false},
		{"robots nil checker", `{robots_disallowed: true}`, []modifier{path("/private/x")}, false},

		// host: exact, case-insensitive, port and trailing dot ignored.
		{"host", `{host: [example.com]}`, nil, true},
		{"host case", `{host: [Example.COM]}`, []modifier{host("EXAMPLE.com")}, true},
		{"host port", `{host: [example.com]}`, []modifier{host("example.com:8443")}, true},
		{"host trailing dot", `{host: [example.com.]}`, []modifier{host("example.com.")}, true},
		{"host ipv6", `{host: ["::1"]}`, []modifier{host("[::1]:8080")}, true},
		{"host ipv6 brackets", `{host: ["[::1]"]}`, []modifier{host("[::1]")}, true},
		{"host port in policy", `{host: ["example.com:8080"]}`, []modifier{host("example.com")}, true},
		{"host subdomain", `{host: [example.com]}`, []modifier{host("www.example.com")}, false},

		// Several matchers in one map: AND.
		{"and both", `{path_prefix: /articles, method: GET}`, nil, true},
		{"and one fails", `{path_prefix: /articles, method: POST}`, nil, false},

		// Combinators.
		{"all", `{all: [{method: GET}, {user_agent: chrome}]}`, nil, true},
		{"all one fails", `{all: [{method: GET}, {user_agent: curl}]}`, nil, false},
		{"any", `{any: [{method: POST}, {user_agent: chrome}]}`, nil, true},
		{"any none", `{any: [{method: POST}, {user_agent: curl}]}`, nil, false},
		{"not", `{not: {user_agent: curl}}`, nil, true},
		{"not match", `{not: {user_agent: chrome}}`, nil, false},
		{"nested", `{any: [{all: [{method: GET}, {not: {header_present: Accept}}]}, {path_prefix: /articles/2024}]}`, nil, true},
		{"nested none", `{any: [{all: [{method: GET}, {not: {header_present: Accept}}]}, {path_prefix: /articles/2023}]}`, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := matchPolicy(t, tt.match)
			r := chromeRequest()
			for _, m := range tt.mods {
				m(r)
			}
			res := evaluate(p, r)
			if got := res.Action == decision.ActionBlock; got != tt.want {
				t.Errorf("match %s on %+v = %v, want %v", tt.match, r, got, tt.want)
			}
		})
	}
}

// TestManyAgentSets checks user_agent matchers past the ones answered by the
// single-pass index.
func TestManyAgentSets(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\nrules:\n")
	for i := range maxIndexedSets + 5 {
		fmt.Fprintf(&b, "  - {name: r%d, match: {user_agent: [needle-%d.]}, weight: 1}\n", i, i)
	}
	p := mustLoad(t, b.String())
	for _, i := range []int{0, maxIndexedSets - 1, maxIndexedSets, maxIndexedSets + 4} {
		r := chromeRequest()
		r.UserAgent = fmt.Sprintf("Foo NEEDLE-%d. bar", i)
		res := evaluate(p, r)
		if res.NMatched != 1 || res.Matched[0].Rule != fmt.Sprintf("r%d", i) {
			t.Errorf("needle %d: matched %v", i, res.MatchedRules())
		}
	}
}
