package main

import (
	"bufio"
	"bytes"
	"context"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"
)

// persistence is how a bot reacts to a non-allow answer: people and polite
// bots give up at once; scrapers wait out a throttle a few times and give up
// on anything else (they cannot solve a challenge either).
const maxThrottlesBeforeGivingUp = 3

// keepGoing reports whether a bot goes on after verdict vd, waiting out a
// throttle first.
func (v *visitor) keepGoing(ctx context.Context, resp response, vd verdict, throttles *int) bool {
	switch vd {
	case verdictAllow:
		return true
	case verdictError:
		return v.rec.Errors < 5
	case verdictThrottle:
		*throttles++
		return *throttles <= maxThrottlesBeforeGivingUp && v.s.wait(ctx, retryAfter(resp))
	}
	return false
}

// ---- people ----

// runPerson is one browsing session: pages with their assets, think time,
// referers, the occasional back button and mistyped address. A person
// shown a challenge would solve it, but the simulator runs no JavaScript,
// so the session ends there: the metric is the share ever challenged.
func (s *sim) runPerson(ctx context.Context, v *visitor) {
	b := pickBrowser(v.rng)
	v.rec.Kind = b.Name
	host := s.cfg.HostHeader
	pages := 1
	for pages < 15 && v.rng.Float64() < 0.75 { // geometric, mean 4
		pages++
	}
	nav := navigation{Host: host, Site: "none", User: true}
	switch r := v.rng.Float64(); {
	case r < 0.45:
		nav.Path = "/"
	case r < 0.8:
		nav.Path = pickPrefer(v.rng, s.seeds.Pages, "/notes/")
		nav.Referer, nav.Site = "https://www.google.com/", "cross-site"
	default:
		nav.Path = pickPrefer(v.rng, s.seeds.Pages, "")
		nav.Referer, nav.Site = "https://t.co/", "cross-site"
	}
	cached := map[string]bool{}
	type visited struct{ path, etag string }
	var history []visited
	for i := 0; i < pages; i++ {
		nav.Cookie = v.cookieHeader()
		resp, vd := v.get(ctx, nav.Path, b.navigate(nav))
		if vd != verdictAllow {
			return
		}
		history = append(history, visited{nav.Path, resp.Header.Get("Etag")})
		var page parsedPage
		if resp.Status == http.StatusOK && isHTML(resp) {
			page = parsePage(resp.Body, nav.Path)
			for _, a := range page.Assets {
				if cached[a.Path] {
					continue
				}
				cached[a.Path] = true
				if _, vd := v.get(ctx, a.Path, b.subresource(host, "http://"+host+nav.Path, v.cookieHeader(), a.Kind)); vd != verdictAllow {
					return
				}
			}
		}
		if i == pages-1 || !s.wait(ctx, lognormal(v.rng, 20*time.Second, 0.9, 3*time.Second, 3*time.Minute)) {
			return
		}
		prev := nav.Path
		nav = navigation{Host: host, Site: "same-origin", User: true, Referer: "http://" + host + prev}
		switch r := v.rng.Float64(); {
		case r < 0.1 && len(history) >= 2:
			back := history[len(history)-2]
			nav.Path, nav.ETag, nav.User, nav.Referer = back.path, back.etag, false, ""
		case r < 0.13:
			nav.Path = typo(v.rng, pickPrefer(v.rng, s.seeds.Pages, "/notes/"))
		default:
			nav.Path = pickVisible(v.rng, page.Links, s.seeds.Pages)
		}
	}
}

func isHTML(r response) bool {
	return strings.HasPrefix(r.Header.Get("Content-Type"), "text/html")
}

// pickPrefer picks a path, three times in four among those with prefix.
func pickPrefer(rng *rand.Rand, paths []string, prefix string) string {
	if prefix != "" && rng.Float64() < 0.75 {
		var pref []string
		for _, p := range paths {
			if strings.HasPrefix(p, prefix) {
				pref = append(pref, p)
			}
		}
		if len(pref) > 0 {
			return pref[rng.IntN(len(pref))]
		}
	}
	return paths[rng.IntN(len(paths))]
}

// pickVisible is a person's click: a visible, followable page link.
func pickVisible(rng *rand.Rand, links []pageLink, fallback []string) string {
	var ok []string
	for _, l := range links {
		if !l.Hidden && !l.Nofollow && !strings.HasSuffix(l.Path, ".xml") && !strings.HasSuffix(l.Path, ".txt") && !strings.HasPrefix(l.Path, "/.well-known/") {
			ok = append(ok, l.Path)
		}
	}
	if len(ok) == 0 {
		ok = fallback
	}
	return pickPrefer(rng, ok, "/notes/")
}

// typo drops or doubles one letter, the way addresses get mistyped.
func typo(rng *rand.Rand, path string) string {
	if len(path) < 3 {
		return path + "x"
	}
	i := 1 + rng.IntN(len(path)-1)
	if rng.IntN(2) == 0 {
		return path[:i] + path[i+1:]
	}
	return path[:i] + path[i:i+1] + path[i:]
}

// ---- feed readers and link previews ----

var feedReaderUAs = []string{
	"Feedly/1.0 (+http://www.feedly.com/fetcher.html; 12 subscribers; like FeedFetcher-Google)",
	"NewsBlur Feed Fetcher - 3 subscribers - https://www.newsblur.com/site/1 (Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.0.1 Safari/605.1.15)",
	"Miniflux/2.2.3 (+https://miniflux.app)",
	"FreshRSS/1.24.3 (Linux; https://freshrss.org)",
	"Tiny Tiny RSS/24.09 (https://tt-rss.org/)",
	"NetNewsWire (RSS Reader; https://netnewswire.com/)",
	"Inoreader/1.0 (+http://www.inoreader.com/feed-fetcher; 4 subscribers; )",
}

// runFeedReader polls the feed with conditional requests, a fresh
// connection each time, as a subscription would every half hour or so.
func (s *sim) runFeedReader(ctx context.Context, v *visitor) {
	ua := feedReaderUAs[v.rng.IntN(len(feedReaderUAs))]
	v.rec.Kind = strings.Fields(ua)[0]
	feed := "/feed.xml"
	if len(s.seeds.Feeds) > 0 {
		feed = s.seeds.Feeds[v.rng.IntN(len(s.seeds.Feeds))]
	}
	var etag, modified string
	for poll := 0; poll < 6; poll++ {
		hs := []header{{"Host", s.cfg.HostHeader}, {"User-Agent", ua},
			{"Accept", "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.5"},
			{"Accept-Encoding", "gzip"}}
		if etag != "" {
			hs = append(hs, header{"If-None-Match", etag})
		}
		if modified != "" {
			hs = append(hs, header{"If-Modified-Since", modified})
		}
		hs = append(hs, header{"Connection", "close"})
		resp, vd := v.get(ctx, feed, hs)
		if vd != verdictAllow {
			return
		}
		if e := resp.Header.Get("Etag"); e != "" {
			etag = e
		}
		if m := resp.Header.Get("Last-Modified"); m != "" {
			modified = m
		}
		v.conn.Close()
		if !s.wait(ctx, lognormal(v.rng, 30*time.Minute, 0.3, 10*time.Minute, time.Hour)) {
			return
		}
	}
}

var previewUAs = []struct{ kind, ua string }{
	{"slack", "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"},
	{"facebook", "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"},
	{"twitter", "Twitterbot/1.0"},
	{"discord", "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)"},
	{"linkedin", "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)"},
	{"whatsapp", "WhatsApp/2.23.20.0"},
}

// runPreview fetches one shared article, as a chat or social app does to
// unfurl a link.
func (s *sim) runPreview(ctx context.Context, v *visitor) {
	p := previewUAs[v.rng.IntN(len(previewUAs))]
	v.rec.Kind = p.kind
	hs := []header{{"Host", s.cfg.HostHeader}, {"User-Agent", p.ua}, {"Accept", "*/*"}, {"Accept-Encoding", "gzip,deflate"}}
	if p.kind == "facebook" {
		hs = append(hs, header{"Range", "bytes=0-524287"})
	}
	hs = append(hs, header{"Connection", "close"})
	v.get(ctx, pickPrefer(v.rng, s.seeds.Pages, "/notes/"), hs)
}

// ---- search crawlers ----

// verifiedCrawler is a search crawler whose operator publishes its
// addresses; RangeFile names its file in the crawler data.
type verifiedCrawler struct {
	Name, UA, RangeFile, Token string
}

var verifiedCrawlers = []verifiedCrawler{
	{"googlebot", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "googlebot", "googlebot"},
	{"googlebot-smartphone", "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.69 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "googlebot", "googlebot"},
	{"bingbot", "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36", "bingbot", "bingbot"},
	{"applebot", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)", "applebot", "applebot"},
	{"duckduckbot", "DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)", "duckduckbot", "duckduckbot"},
}

// runCrawler is a search crawler: robots.txt, then pages. A real one obeys
// robots.txt and crawls gently; an impostor borrowing its name does neither.
func (s *sim) runCrawler(ctx context.Context, v *visitor, ua string, genuine bool) {
	token := ""
	for _, c := range verifiedCrawlers {
		if c.UA == ua {
			token = c.Token
		}
	}
	hs := func() []header {
		return botHeaders(s.cfg.HostHeader, ua, "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	}
	resp, vd := v.get(ctx, "/robots.txt", botHeaders(s.cfg.HostHeader, ua, "text/plain,*/*"))
	var disallow []string
	if vd == verdictAllow && resp.Status == http.StatusOK {
		disallow = robotsDisallow(resp.Body, token)
	} else if genuine {
		return
	}
	pages, interval := 30, 3*time.Second
	if !genuine {
		pages, interval = 60, 500*time.Millisecond
		disallow = nil
	}
	f := newFrontier(s.seeds.Pages)
	var throttles int
	for range pages {
		path, ok := f.next()
		if !ok {
			return
		}
		if disallowed(path, disallow) {
			continue
		}
		resp, vd := v.get(ctx, path, hs())
		if !v.keepGoing(ctx, resp, vd, &throttles) {
			return
		}
		f.addPage(resp, path, false)
		if !s.wait(ctx, lognormal(v.rng, interval, 0.5, interval/4, interval*4)) {
			return
		}
	}
}

// robotsDisallow returns the Disallow rules of the group that applies to
// token (case-insensitive substring of a User-agent line), or of "*".
func robotsDisallow(body []byte, token string) []string {
	var mine, star []string
	var inMine, inStar, lastWasAgent bool
	sc := bufio.NewScanner(bytes.NewReader(body))
	for n := 0; sc.Scan() && n < 10000; n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		k, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		k, val = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(val)
		switch k {
		case "user-agent":
			if !lastWasAgent {
				inMine, inStar = false, false
			}
			lastWasAgent = true
			a := strings.ToLower(val)
			inMine = inMine || (token != "" && strings.Contains(a, token))
			inStar = inStar || a == "*"
		case "disallow":
			lastWasAgent = false
			if val == "" {
				continue
			}
			if inMine && len(mine) < 1000 {
				mine = append(mine, val)
			}
			if inStar && len(star) < 1000 {
				star = append(star, val)
			}
		default:
			lastWasAgent = false
		}
	}
	if mine != nil {
		return mine
	}
	return star
}

func disallowed(path string, rules []string) bool {
	for _, r := range rules {
		if strings.HasPrefix(path, r) {
			return true
		}
	}
	return false
}

// ---- AI crawlers and scrapers ----

// runAICrawler is a declared AI crawler: one of the ai.robots.txt tokens in
// its user agent. It reads robots.txt and, like many, crawls anyway.
func (s *sim) runAICrawler(ctx context.Context, v *visitor) {
	agents := declaredAgents(s.cfg.Data.AIAgents)
	if len(agents) == 0 {
		return
	}
	name := agents[v.rng.IntN(len(agents))]
	v.rec.Kind = name
	ua := "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; " + name + "/1.0; +https://bots.example/" + strings.ToLower(strings.ReplaceAll(name, " ", "")) + ")"
	if v.rng.IntN(2) == 0 {
		ua = name + "/1.0 (+https://bots.example/)"
	}
	if _, vd := v.get(ctx, "/robots.txt", botHeaders(s.cfg.HostHeader, ua, "text/plain,*/*")); vd != verdictAllow && vd != verdictError {
		return
	}
	s.crawl(ctx, v, newFrontier(s.seeds.Pages), 40, time.Second, func() []header {
		return botHeaders(s.cfg.HostHeader, ua, "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	})
}

// declaredAgents drops tokens that only ever appear in robots.txt, never
// in a user agent (Google-Extended, Applebot-Extended and the like).
func declaredAgents(all []string) []string {
	out := make([]string, 0, len(all))
	for _, a := range all {
		if !strings.HasSuffix(strings.ToLower(a), "-extended") {
			out = append(out, a)
		}
	}
	return out
}

// runLibrary is a scraper on an HTTP library's defaults, at one of several
// rates.
func (s *sim) runLibrary(ctx context.Context, v *visitor) {
	lib := libraries[v.rng.IntN(len(libraries))]
	v.rec.Kind = lib.Name
	if lib.Name == "scrapy" { // Scrapy reads robots.txt by default
		v.get(ctx, "/robots.txt", lib.Headers(s.cfg.HostHeader))
	}
	rates := []time.Duration{2 * time.Second, 500 * time.Millisecond, 200 * time.Millisecond, 100 * time.Millisecond}
	s.crawl(ctx, v, newFrontier(s.seeds.Pages), 100, rates[v.rng.IntN(len(rates))], func() []header { return lib.Headers(s.cfg.HostHeader) })
}

// runStealth is a scraper behind a real browser's full header set: no
// assets, no robots.txt, a few pages a second.
func (s *sim) runStealth(ctx context.Context, v *visitor) {
	b := pickBrowser(v.rng)
	v.rec.Kind = b.Name
	prev := ""
	interval := time.Duration(200+v.rng.IntN(300)) * time.Millisecond
	s.crawl(ctx, v, newFrontier(s.seeds.Pages), 300, interval, func() []header {
		n := navigation{Host: s.cfg.HostHeader, Site: "none", User: true, Cookie: v.cookieHeader()}
		if prev != "" {
			n.Site, n.Referer = "same-origin", prev
		}
		prev = "http://" + s.cfg.HostHeader + "/"
		return b.navigate(n)
	})
}

// crawl walks a frontier: fetch, parse, wait, until budget, the frontier
// runs dry, or the edge stops the client.
func (s *sim) crawl(ctx context.Context, v *visitor, f *frontier, budget int, interval time.Duration, headers func() []header) {
	var throttles int
	for range budget {
		path, ok := f.next()
		if !ok {
			return
		}
		resp, vd := v.get(ctx, path, headers())
		if !v.keepGoing(ctx, resp, vd, &throttles) {
			return
		}
		f.addPage(resp, path, false)
		if !s.wait(ctx, lognormal(v.rng, interval, 0.3, interval/3, interval*3)) {
			return
		}
	}
}

// launchGroup starts a distributed stealth scraper: n addresses in a few
// /24s sharing one fingerprint and one frontier, each slow, together fast.
func (s *sim) launchGroup(ctx context.Context, wg *sync.WaitGroup, pool *addrPool, n int, next func() uint64) {
	if n == 0 {
		return
	}
	subnets := make([]netip.Prefix, max(1, s.cfg.GroupSubnets))
	for i := range subnets {
		subnets[i] = pool.subnet()
	}
	g := &group{frontier: newFrontier(s.seeds.Pages)}
	rng := rand.New(rand.NewPCG(s.cfg.Seed, 0xd15))
	b := pickBrowser(rng)
	for i := range n {
		addr, ok := pool.inPrefix(subnets[i%len(subnets)])
		if !ok {
			continue
		}
		rec := &clientRec{Family: famDistributed, Kind: b.Name, Addr: addr}
		s.launch(ctx, wg, nil, 0.1, rec, next(), func(ctx context.Context, v *visitor) {
			v.group = g
			var throttles int
			for int(g.seq.Load()) < s.cfg.GroupLimit {
				path, ok := g.frontier.next()
				if !ok {
					return
				}
				n := navigation{Host: s.cfg.HostHeader, Site: "none", User: true, Cookie: v.cookieHeader()}
				resp, vd := v.get(ctx, path, b.navigate(n))
				if !v.keepGoing(ctx, resp, vd, &throttles) {
					return
				}
				g.frontier.addPage(resp, path, false)
				// Not scaled: the group's real pace is the point of it.
				iv := s.cfg.GroupInterval
				if !s.sleep(ctx, lognormal(v.rng, iv, 0.4, iv/4, iv*4)) {
					return
				}
			}
		})
	}
}

// runTrapFollower crawls everything it can find, hidden links and paths
// robots.txt disallows first: the links only a machine would follow.
func (s *sim) runTrapFollower(ctx context.Context, v *visitor) {
	b := pickBrowser(v.rng)
	v.rec.Kind = b.Name
	host := s.cfg.HostHeader
	f := newFrontier(s.seeds.Pages)
	resp, vd := v.get(ctx, "/robots.txt", botHeaders(host, b.UA, "text/plain,*/*"))
	if vd == verdictAllow && resp.Status == http.StatusOK {
		for _, d := range robotsDisallow(resp.Body, "") {
			if d != "/" && !strings.ContainsAny(d, "*$") {
				f.push(d, true)
			}
		}
	}
	var throttles int
	for range 200 {
		path, ok := f.next()
		if !ok {
			return
		}
		resp, vd := v.get(ctx, path, b.navigate(navigation{Host: host, Site: "same-origin", User: true, Cookie: v.cookieHeader()}))
		if !v.keepGoing(ctx, resp, vd, &throttles) {
			return
		}
		v.rec.HiddenLinks += f.addPage(resp, path, true)
		if !s.wait(ctx, lognormal(v.rng, 500*time.Millisecond, 0.3, 100*time.Millisecond, 2*time.Second)) {
			return
		}
	}
}

// ---- frontier ----

// frontier is a crawl queue with a seen set, bounded, safe for a group to
// share. When the links run out it makes search queries from words on the
// pages, as scrapers of sites with search do.
type frontier struct {
	mu       sync.Mutex
	queue    []string
	seen     map[string]bool
	visited  []string // for recrawling once everything is seen
	recrawl  int
	words    []string
	wordSeen map[string]bool
}

const (
	maxFrontier = 20000
	maxWords    = 5000
)

func newFrontier(seeds []string) *frontier {
	f := &frontier{seen: make(map[string]bool), wordSeen: make(map[string]bool)}
	f.push("/", false)
	for _, p := range seeds {
		f.push(p, false)
	}
	return f
}

// push queues path unless seen; first puts it at the front.
func (f *frontier) push(path string, first bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pushLocked(path, first)
}

func (f *frontier) pushLocked(path string, first bool) bool {
	if f.seen[path] || len(f.seen) >= maxFrontier {
		return false
	}
	f.seen[path] = true
	if first {
		f.queue = append([]string{path}, f.queue...)
	} else {
		f.queue = append(f.queue, path)
	}
	return true
}

func (f *frontier) next() (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(f.queue) == 0 {
		if len(f.words) == 0 {
			// Everything seen: start over, as scrapers re-fetch for changes.
			if len(f.visited) == 0 {
				return "", false
			}
			p := f.visited[f.recrawl%len(f.visited)]
			f.recrawl++
			return p, true
		}
		w := f.words[0]
		f.words = f.words[1:]
		f.pushLocked("/search?q="+url.QueryEscape(w), false)
	}
	p := f.queue[0]
	f.queue = f.queue[1:]
	if len(f.visited) < maxFrontier {
		f.visited = append(f.visited, p)
	}
	return p, true
}

// addPage queues the links of an HTML response; hidden links go first when
// hiddenFirst, and are counted.
func (f *frontier) addPage(resp response, path string, hiddenFirst bool) (hidden int) {
	if resp.Status != http.StatusOK || !isHTML(resp) {
		return 0
	}
	p := parsePage(resp.Body, path)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, l := range p.Links {
		if l.Hidden || l.Nofollow {
			hidden++
		}
		if (l.Hidden || l.Nofollow) && !hiddenFirst {
			// Most scrapers take every link in document order.
			f.pushLocked(l.Path, false)
			continue
		}
		f.pushLocked(l.Path, hiddenFirst && (l.Hidden || l.Nofollow))
	}
	for _, w := range p.Words {
		if !f.wordSeen[w] && len(f.wordSeen) < maxWords {
			f.wordSeen[w] = true
			f.words = append(f.words, w)
		}
	}
	return hidden
}
