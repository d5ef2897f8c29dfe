package policy

import (
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scrapedefense/scrapedefense/internal/crawlers"
	"github.com/scrapedefense/scrapedefense/internal/decision"
)

// testOptions makes every action available except tarpit, like the edge
// before the tarpit role exists, and reads list files from testdata/lists.
func testOptions() LoadOptions {
	return LoadOptions{
		Available: func(a decision.Action) bool {
			return a != decision.ActionTarpit
		},
		ReadFile: func(name string) ([]byte, error) {
			return os.ReadFile(filepath.Join("testdata", "lists", name))
		},
	}
}

func mustLoad(t testing.TB, src string) *Policy {
	t.Helper()
	p, err := Load([]byte(src), testOptions())
	if err != nil {
		t.Fatalf("Load: %v\npolicy:\n%s", err, src)
	}
	return p
}

func evaluate(p *Policy, r *Request) Result {
	var res Result
	p.Evaluate(r, &res)
	return res
}

const (
	chromeUA  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	firefoxUA = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
	safariUA  = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15"
	curlUA    = "curl/8.5.0"
	gptbotUA  = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)"
	googleUA  = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
)

// chromeHeaders are the headers Chrome 131 sends on a top-level navigation
// over HTTPS.
func chromeHeaders() http.Header {
	return http.Header{
		"Accept":                    {"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"},
		"Accept-Encoding":           {"gzip, deflate, br, zstd"},
		"Accept-Language":           {"en-US,en;q=0.9"},
		"Cache-Control":             {"max-age=0"},
		"Priority":                  {"u=0, i"},
		"Sec-Ch-Ua":                 {`"Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24"`},
		"Sec-Ch-Ua-Mobile":          {"?0"},
		"Sec-Ch-Ua-Platform":        {`"Windows"`},
		"Sec-Fetch-Dest":            {"document"},
		"Sec-Fetch-Mode":            {"navigate"},
		"Sec-Fetch-Site":            {"none"},
		"Sec-Fetch-User":            {"?1"},
		"Upgrade-Insecure-Requests": {"1"},
		"User-Agent":                {chromeUA},
	}
}

func firefoxHeaders() http.Header {
	return http.Header{
		"Accept":                    {"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
		"Accept-Encoding":           {"gzip, deflate, br, zstd"},
		"Accept-Language":           {"en-US,en;q=0.5"},
		"Sec-Fetch-Dest":            {"document"},
		"Sec-Fetch-Mode":            {"navigate"},
		"Sec-Fetch-Site":            {"none"},
		"Sec-Fetch-User":            {"?1"},
		"Upgrade-Insecure-Requests": {"1"},
		"User-Agent":                {firefoxUA},
	}
}

func safariHeaders() http.Header {
	return http.Header{
		"Accept":          {"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
		"Accept-Encoding": {"gzip, deflate, br"},
		"Accept-Language": {"en-GB,en;q=0.9"},
		"Priority":        {"u=0, i"},
		"Sec-Fetch-Dest":  {"document"},
		"Sec-Fetch-Mode":  {"navigate"},
		"Sec-Fetch-Site":  {"none"},
		"User-Agent":      {safariUA},
	}
}

func chromeRequest() *Request {
	return &Request{
		Addr:      netip.MustParseAddr("198.51.100.7"),
		Method:    "GET",
		Host:      "example.com",
		Path:      "/articles/2024/hello",
		UserAgent: chromeUA,
		Header:    chromeHeaders(),
	}
}

func curlRequest(path string) *Request {
	return &Request{
		Addr:      netip.MustParseAddr("198.51.100.8"),
		Method:    "GET",
		Host:      "example.com",
		Path:      path,
		UserAgent: curlUA,
		Header:    http.Header{"Accept": {"*/*"}, "User-Agent": {curlUA}},
	}
}

func gptbotRequest() *Request {
	return &Request{
		Addr:      netip.MustParseAddr("20.171.206.1"),
		Method:    "GET",
		Host:      "example.com",
		Path:      "/articles/2024/hello",
		UserAgent: gptbotUA,
		Header:    http.Header{"Accept": {"*/*"}, "Accept-Encoding": {"gzip, br"}, "User-Agent": {gptbotUA}},
		Crawler:   crawlers.Identity{Name: "gptbot", Verified: true, AIAgent: "GPTBot"},
	}
}

// pathRobots disallows the paths under /private/ to everyone.
type pathRobots struct{}

func (pathRobots) Disallowed(_, path string) bool { return strings.HasPrefix(path, "/private/") }

func mustAddr(t testing.TB, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
