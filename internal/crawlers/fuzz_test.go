package crawlers

import (
	"net/netip"
	"strings"
	"testing"
)

func FuzzParseRangesText(f *testing.F) {
	f.Add([]byte("# source: https://example.com/x.json\n192.0.2.0/24\n2001:db8::/32 # c\n"))
	f.Add([]byte("198.51.100.7\r\n\r\n::ffff:192.0.2.0/120"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, _, err := parseRangesText(data)
		if err != nil {
			return
		}
		checkPrefixes(t, p)
	})
}

func FuzzParseRangesJSON(f *testing.F) {
	f.Add([]byte(`{"creationTime":"x","prefixes":[{"ipv4Prefix":"192.0.2.0/24"},{"ipv6Prefix":"2001:db8::/32"}]}`))
	f.Add([]byte(`["192.0.2.0/24"]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parseRangesJSON(data)
		if err != nil {
			return
		}
		checkPrefixes(t, p)
	})
}

// checkPrefixes checks that parsed prefixes are usable and that the set
// built from them contains each of them.
func checkPrefixes(t *testing.T, p []netip.Prefix) {
	t.Helper()
	set := newPrefixSet(p)
	for _, q := range p {
		if !q.IsValid() || q != q.Masked() || q.Addr().Is4In6() {
			t.Fatalf("unusable prefix %v", q)
		}
		if !set.contains(q.Addr()) {
			t.Fatalf("set does not contain %v", q)
		}
	}
}

func FuzzParseAgents(f *testing.F) {
	f.Add([]byte(`{"GPTBot": {"operator": "OpenAI", "respect": "Yes", "function": "x"}, "Brightbot 1.0": {}}`))
	f.Add([]byte(`{"a": {"operator": 1}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		agents, _, err := parseAgents(data)
		if err != nil {
			return
		}
		c, err := build(agents, 0, nil)
		if err != nil {
			// Only the size bounds may refuse a parsed list.
			if !strings.Contains(err.Error(), "more than") {
				t.Fatalf("parsed agents do not build: %v", err)
			}
			return
		}
		for _, a := range agents {
			if id := c.Identify(a.Name, netip.Addr{}); !strings.EqualFold(id.AIAgent, a.Name) {
				t.Fatalf("agent %q not found in its own name, got %q", a.Name, id.AIAgent)
			}
		}
	})
}

// FuzzIdentify checks Identify against a naive reference implementation.
func FuzzIdentify(f *testing.F) {
	c := mustEmbedded(f)
	f.Add("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", []byte{66, 249, 66, 1})
	f.Add("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.1; +https://openai.com/gptbot)", []byte{})
	f.Add("Brightbot 1.0 iaskspider/2.0 MistralAI-User/1.0 claude-code", []byte{0x20, 1, 0x48, 0x60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add(browserUAs[0], []byte{1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, ua string, ip []byte) {
		addr, _ := netip.AddrFromSlice(ip)
		got := c.Identify(ua, addr)
		want := naiveIdentify(c, ua, addr)
		if got != want {
			t.Fatalf("Identify(%q, %v) = %+v, reference says %+v", ua, addr, got, want)
		}
	})
}

// naiveIdentify is Identify done the slow, obvious way.
func naiveIdentify(c *Catalog, ua string, addr netip.Addr) Identity {
	if len(ua) > MaxUserAgentScan {
		ua = ua[:MaxUserAgentScan]
	}
	// Identify folds ASCII case only; strings.ToLower would also fold
	// non-ASCII letters and shift offsets.
	low := asciiLower(ua)
	type hit struct{ start, n int }
	bestAgent, bestAgentHit := -1, hit{}
	bestCrawler, bestCrawlerHit := -1, hit{}
	try := func(name string, agent, crawler int) {
		p := asciiLower(name)
		for off := 0; ; {
			i := strings.Index(low[off:], p)
			if i < 0 {
				return
			}
			start := off + i
			end := start + len(p)
			off = start + 1
			if start > 0 && isWordByte(ua[start-1]) {
				continue
			}
			if isWordByte(p[len(p)-1]) && end < len(ua) && isWordByte(ua[end]) {
				continue
			}
			h := hit{start, len(p)}
			if agent >= 0 && (bestAgent < 0 || h.n > bestAgentHit.n || (h.n == bestAgentHit.n && h.start < bestAgentHit.start)) {
				bestAgent, bestAgentHit = agent, h
			}
			if crawler >= 0 && (bestCrawler < 0 || h.start < bestCrawlerHit.start || (h.start == bestCrawlerHit.start && h.n > bestCrawlerHit.n)) {
				bestCrawler, bestCrawlerHit = crawler, h
			}
		}
	}
	seen := make(map[string]bool)
	for i, a := range c.agents {
		if l := strings.ToLower(a.Name); !seen[l] {
			seen[l] = true
			try(a.Name, i, -1)
		}
	}
	for i, w := range c.crawlers {
		for _, tok := range w.spec.tokens {
			try(tok, -1, i)
		}
	}
	var id Identity
	if ua == "" {
		return id
	}
	if bestAgent >= 0 {
		id.AIAgent = c.agents[bestAgent].Name
	}
	if bestCrawler >= 0 {
		id.Name = c.crawlers[bestCrawler].spec.name
		for _, p := range c.crawlers[bestCrawler].prefixes {
			if addr.IsValid() && p.Contains(addr.Unmap()) {
				id.Verified = true
			}
		}
	}
	return id
}

func asciiLower(s string) string {
	b := []byte(s)
	for i := range b {
		b[i] = lowerASCII(b[i])
	}
	return string(b)
}
