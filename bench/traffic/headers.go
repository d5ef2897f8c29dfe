package main

import "math/rand/v2"

// browser is one browser build: its user agent and the exact header sets,
// in order, that it sends for a navigation and for subresources.
type browser struct {
	Name     string
	UA       string
	Platform string // sec-ch-ua-platform, Chromium only
	Mobile   bool
	Engine   engine
	Language string
}

type engine uint8

const (
	engineChromium engine = iota
	engineFirefox
	engineSafari
)

// browsers is a small, realistic population with rough market weights.
var browsers = []struct {
	weight int
	b      browser
}{
	{30, browser{Name: "chrome-windows", Engine: engineChromium, Platform: `"Windows"`, Language: "en-US,en;q=0.9",
		UA: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"}},
	{12, browser{Name: "chrome-macos", Engine: engineChromium, Platform: `"macOS"`, Language: "en-GB,en-US;q=0.9,en;q=0.8",
		UA: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"}},
	{18, browser{Name: "chrome-android", Engine: engineChromium, Platform: `"Android"`, Mobile: true, Language: "en-US,en;q=0.9",
		UA: "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"}},
	{6, browser{Name: "edge-windows", Engine: engineChromium, Platform: `"Windows"`, Language: "de-DE,de;q=0.9,en;q=0.8",
		UA: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0"}},
	{8, browser{Name: "firefox-windows", Engine: engineFirefox, Language: "en-US,en;q=0.5",
		UA: "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"}},
	{4, browser{Name: "firefox-linux", Engine: engineFirefox, Language: "fr-FR,fr;q=0.8,en-US;q=0.5,en;q=0.3",
		UA: "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0"}},
	{8, browser{Name: "safari-macos", Engine: engineSafari, Language: "en-GB,en;q=0.9",
		UA: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15"}},
	{14, browser{Name: "safari-ios", Engine: engineSafari, Mobile: true, Language: "en-US,en;q=0.9",
		UA: "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"}},
}

func pickBrowser(rng *rand.Rand) browser {
	total := 0
	for _, b := range browsers {
		total += b.weight
	}
	n := rng.IntN(total)
	for _, b := range browsers {
		if n < b.weight {
			return b.b
		}
		n -= b.weight
	}
	return browsers[0].b
}

// navigation describes a top-level page load.
type navigation struct {
	Host, Path string
	Referer    string // empty: typed, bookmark or first visit
	Site       string // Sec-Fetch-Site: none, same-origin, cross-site
	User       bool   // a user activation (click); false for back/forward
	Cookie     string
	ETag       string // revalidation on back navigation
}

const chromeSecCHUA = `"Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24"`

func mobileFlag(m bool) string {
	if m {
		return "?1"
	}
	return "?0"
}

// navigate returns the headers b sends for a document, in b's order.
func (b browser) navigate(n navigation) []header {
	h := make([]header, 0, 20)
	add := func(k, v string) {
		if v != "" {
			h = append(h, header{k, v})
		}
	}
	user := ""
	if n.User {
		user = "?1"
	}
	switch b.Engine {
	case engineChromium:
		add("Host", n.Host)
		add("Connection", "keep-alive")
		add("sec-ch-ua", chromeSecCHUA)
		add("sec-ch-ua-mobile", mobileFlag(b.Mobile))
		add("sec-ch-ua-platform", b.Platform)
		add("Upgrade-Insecure-Requests", "1")
		add("User-Agent", b.UA)
		add("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7")
		add("Sec-Fetch-Site", n.Site)
		add("Sec-Fetch-Mode", "navigate")
		add("Sec-Fetch-User", user)
		add("Sec-Fetch-Dest", "document")
		add("Referer", n.Referer)
		add("Accept-Encoding", "gzip, deflate, br, zstd")
		add("Accept-Language", b.Language)
		add("Cookie", n.Cookie)
		add("If-None-Match", n.ETag)
	case engineFirefox:
		add("Host", n.Host)
		add("User-Agent", b.UA)
		add("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
		add("Accept-Language", b.Language)
		add("Accept-Encoding", "gzip, deflate, br, zstd")
		add("Referer", n.Referer)
		add("Connection", "keep-alive")
		add("Cookie", n.Cookie)
		add("Upgrade-Insecure-Requests", "1")
		add("If-None-Match", n.ETag)
		add("Sec-Fetch-Dest", "document")
		add("Sec-Fetch-Mode", "navigate")
		add("Sec-Fetch-Site", n.Site)
		add("Sec-Fetch-User", user)
		add("Priority", "u=0, i")
	case engineSafari:
		add("Host", n.Host)
		add("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
		add("Sec-Fetch-Site", n.Site)
		add("Cookie", n.Cookie)
		add("If-None-Match", n.ETag)
		add("Sec-Fetch-Dest", "document")
		add("Accept-Language", b.Language)
		add("Sec-Fetch-Mode", "navigate")
		add("User-Agent", b.UA)
		add("Referer", n.Referer)
		add("Accept-Encoding", "gzip, deflate, br")
		add("Connection", "keep-alive")
	}
	return h
}

// subresource returns the headers b sends for a stylesheet, script or image
// of the page at referer.
func (b browser) subresource(host, referer, cookie string, kind assetKind) []header {
	h := make([]header, 0, 16)
	add := func(k, v string) {
		if v != "" {
			h = append(h, header{k, v})
		}
	}
	dest, accept, mode := "image", "", "no-cors"
	switch kind {
	case assetStyle:
		dest, accept = "style", "text/css,*/*;q=0.1"
	case assetScript:
		dest, accept = "script", "*/*"
	}
	switch b.Engine {
	case engineChromium:
		if kind == assetImage {
			accept = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
		}
		add("Host", host)
		add("Connection", "keep-alive")
		add("sec-ch-ua-platform", b.Platform)
		add("User-Agent", b.UA)
		add("sec-ch-ua", chromeSecCHUA)
		add("sec-ch-ua-mobile", mobileFlag(b.Mobile))
		add("Accept", accept)
		add("Sec-Fetch-Site", "same-origin")
		add("Sec-Fetch-Mode", mode)
		add("Sec-Fetch-Dest", dest)
		add("Referer", referer)
		add("Accept-Encoding", "gzip, deflate, br, zstd")
		add("Accept-Language", b.Language)
		add("Cookie", cookie)
	case engineFirefox:
		if kind == assetImage {
			accept = "image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5"
		}
		add("Host", host)
		add("User-Agent", b.UA)
		add("Accept", accept)
		add("Accept-Language", b.Language)
		add("Accept-Encoding", "gzip, deflate, br, zstd")
		add("Referer", referer)
		add("Connection", "keep-alive")
		add("Cookie", cookie)
		add("Sec-Fetch-Dest", dest)
		add("Sec-Fetch-Mode", mode)
		add("Sec-Fetch-Site", "same-origin")
	case engineSafari:
		if kind == assetImage {
			accept = "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5"
		}
		add("Host", host)
		add("Accept", accept)
		add("Sec-Fetch-Site", "same-origin")
		add("Cookie", cookie)
		add("Sec-Fetch-Dest", dest)
		add("Accept-Language", b.Language)
		add("Sec-Fetch-Mode", mode)
		add("User-Agent", b.UA)
		add("Referer", referer)
		add("Accept-Encoding", "gzip, deflate, br")
		add("Connection", "keep-alive")
	}
	return h
}

// library is an HTTP client library's default request, in its order.
type library struct {
	Name    string
	Headers func(host string) []header
}

var libraries = []library{
	{"python-requests", func(host string) []header {
		return []header{{"Host", host}, {"User-Agent", "python-requests/2.32.3"}, {"Accept-Encoding", "gzip, deflate"}, {"Accept", "*/*"}, {"Connection", "keep-alive"}}
	}},
	{"curl", func(host string) []header {
		return []header{{"Host", host}, {"User-Agent", "curl/8.5.0"}, {"Accept", "*/*"}}
	}},
	{"go-http-client", func(host string) []header {
		return []header{{"Host", host}, {"User-Agent", "Go-http-client/1.1"}, {"Accept-Encoding", "gzip"}}
	}},
	{"scrapy", func(host string) []header {
		return []header{{"Host", host}, {"Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}, {"Accept-Language", "en"}, {"User-Agent", "Scrapy/2.11.2 (+https://scrapy.org)"}, {"Accept-Encoding", "gzip, deflate, br"}}
	}},
	{"python-urllib", func(host string) []header {
		return []header{{"Accept-Encoding", "identity"}, {"Host", host}, {"User-Agent", "Python-urllib/3.12"}, {"Connection", "close"}}
	}},
	{"node-fetch", func(host string) []header {
		return []header{{"Host", host}, {"Connection", "keep-alive"}, {"Accept", "*/*"}, {"Accept-Language", "*"}, {"Sec-Fetch-Mode", "cors"}, {"User-Agent", "node"}, {"Accept-Encoding", "gzip, deflate"}}
	}},
}

// botHeaders is the plain header set most crawlers send.
func botHeaders(host, ua, accept string) []header {
	return []header{{"Host", host}, {"Connection", "keep-alive"}, {"User-Agent", ua}, {"Accept", accept}, {"Accept-Encoding", "gzip, deflate, br"}}
}
