package robots

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// check is one expectation of a testdata/match file: "allow|disallow UA
// PATH", where UA may contain spaces and PATH may not.
type check struct {
	allow    bool
	ua, path string
	line     int
}

// readMatchFile splits a testdata/match file into the robots.txt and its
// checks.
func readMatchFile(t *testing.T, name string) ([]byte, []check) {
	t.Helper()
	raw, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	robots, checksText, ok := bytes.Cut(raw, []byte("==== checks\n"))
	if !ok {
		t.Fatalf("%s: no ==== checks section", name)
	}
	var checks []check
	first := bytes.Count(robots, []byte("\n")) + 2
	for i, line := range strings.Split(string(checksText), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 3 || (f[0] != "allow" && f[0] != "disallow") {
			t.Fatalf("%s:%d: bad check %q", name, first+i, line)
		}
		checks = append(checks, check{
			allow: f[0] == "allow",
			ua:    strings.Join(f[1:len(f)-1], " "),
			path:  f[len(f)-1],
			line:  first + i,
		})
	}
	return robots, checks
}

func matchFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("testdata/match/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no match files: %v", err)
	}
	return files
}

func TestMatchFiles(t *testing.T) {
	for _, name := range matchFiles(t) {
		t.Run(filepath.Base(name), func(t *testing.T) {
			data, checks := readMatchFile(t, name)
			r := Parse(data)
			for _, c := range checks {
				if got := r.Allowed(c.ua, c.path); got != c.allow {
					t.Errorf("line %d: Allowed(%q, %q) = %v, want %v", c.line, c.ua, c.path, got, c.allow)
				}
				if r.Disallowed(c.ua, c.path) == c.allow {
					t.Errorf("line %d: Disallowed disagrees with Allowed", c.line)
				}
			}
		})
	}
}

// Line endings and a byte order mark change nothing.
func TestLineEndingsAndBOM(t *testing.T) {
	for _, name := range matchFiles(t) {
		data, checks := readMatchFile(t, name)
		lf := bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
		variants := map[string][]byte{
			"crlf": bytes.ReplaceAll(lf, []byte("\n"), []byte("\r\n")),
			"cr":   bytes.ReplaceAll(lf, []byte("\n"), []byte("\r")),
			"bom":  append([]byte("\xEF\xBB\xBF"), lf...),
		}
		for v, data := range variants {
			r := Parse(data)
			for _, c := range checks {
				if got := r.Allowed(c.ua, c.path); got != c.allow {
					t.Errorf("%s (%s) line %d: Allowed(%q, %q) = %v", filepath.Base(name), v, c.line, c.ua, c.path, got)
				}
			}
		}
	}
}

func TestParseReports(t *testing.T) {
	data, _ := readMatchFile(t, "testdata/match/tolerant.txt")
	r := Parse(data)
	// The rule before any group, crawl-delay, and the garbage line.
	if r.Invalid != 3 {
		t.Errorf("Invalid = %d, want 3", r.Invalid)
	}
	if len(r.Sitemaps) != 1 || r.Sitemaps[0] != "https://example.com/sitemap.xml" {
		t.Errorf("Sitemaps = %q", r.Sitemaps)
	}
	if r.Truncated {
		t.Error("Truncated for a small file")
	}
	if r := Parse([]byte("User-agent: /nope\nUser-agent: *\nDisallow: /x\n")); r.Invalid != 1 || !r.Disallowed("bot", "/x") {
		t.Errorf("user-agent without a token: Invalid = %d", r.Invalid)
	}
}

func TestEmptyAndMissingFiles(t *testing.T) {
	for _, data := range [][]byte{nil, {}, []byte("# only a comment\n"), []byte("Sitemap: /s.xml\n"), []byte("User-agent: other\nDisallow: /\n")} {
		r := Parse(data)
		for _, ua := range []string{"bot", "Mozilla/5.0", ""} {
			for _, p := range []string{"/", "", "/x?y", "*"} {
				if !r.Allowed(ua, p) {
					t.Errorf("Parse(%q).Allowed(%q, %q) = false", data, ua, p)
				}
			}
		}
	}
}

func TestPathForms(t *testing.T) {
	r := Parse([]byte("User-agent: *\nDisallow: /private\nAllow: /$\nDisallow: /\n"))
	for _, tc := range []struct {
		path string
		want bool
	}{
		{"", true}, // the root
		{"/", true},
		{"https://example.com", true},
		{"HTTPS://example.com/", true},
		{"http://example.com?q=1", false},
		{"http://example.com/private/x", false},
		{"private", false}, // relative: taken from the root
		{"/%7Eprivate", false},
		{"/%", false},
		{"/%4", false},
		{"/%zz", false},
	} {
		if got := r.Allowed("bot", tc.path); got != tc.want {
			t.Errorf("Allowed(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
	// A path longer than the stack buffer still works.
	long := "/ok/" + strings.Repeat("%41", 400)
	r = Parse([]byte("User-agent: *\nDisallow: /ok/AAAA\n"))
	if r.Allowed("bot", long) {
		t.Error("long percent-encoded path allowed")
	}
}

func TestSizeLimit(t *testing.T) {
	head := "User-agent: *\nDisallow: /kept\n"
	pad := "# " + strings.Repeat("x", 100) + "\n"
	var b strings.Builder
	b.WriteString(head)
	for b.Len()+len(pad) <= MaxSize {
		b.WriteString(pad)
	}
	// This line straddles the limit: dropped, not cut to "Disallow: /".
	b.WriteString("Disallow: /" + strings.Repeat("y", 200) + "\n")
	b.WriteString("Disallow: /beyond\n")
	r := Parse([]byte(b.String()))
	if !r.Truncated {
		t.Error("Truncated = false")
	}
	if r.Allowed("bot", "/kept") {
		t.Error("rule inside the limit lost")
	}
	if !r.Allowed("bot", "/beyond") || !r.Allowed("bot", "/other") {
		t.Error("content past the limit was used")
	}

	// A limit that falls exactly at a line end keeps that line.
	const group, rule = "User-agent: *\n", "Disallow: /e"
	exact := group + strings.Repeat("#", MaxSize-len(group)-len(rule)-1) + "\n" + rule
	if len(exact) != MaxSize {
		t.Fatalf("built %d bytes", len(exact))
	}
	exact += "\nDisallow: /z\n"
	if r := Parse([]byte(exact)); !r.Truncated || r.Allowed("bot", "/e") || !r.Allowed("bot", "/z") {
		t.Errorf("line ending at the limit: truncated %v, /e allowed %v", r.Truncated, r.Allowed("bot", "/e"))
	}
}

func TestUserAgentSelection(t *testing.T) {
	r := Parse([]byte(`User-agent: *
Disallow: /all

User-agent: GPTBot
Disallow: /gpt

User-agent: Googlebot
Disallow: /google

User-agent: googlebot-image
Disallow: /images
`))
	for _, tc := range []struct {
		ua, path string
		want     bool
	}{
		{"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.1; +https://openai.com/gptbot)", "/gpt", false},
		{"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.1; +https://openai.com/gptbot)", "/all", true},
		{"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "/google", false},
		{"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "/images", true},
		{"Googlebot-Image/1.0", "/images", false},
		{"Googlebot-Image/1.0", "/google", true},
		// Both tokens: their groups combine.
		{"GPTBot Googlebot", "/gpt", false},
		{"GPTBot Googlebot", "/google", false},
		{"GPTBot Googlebot", "/all", true},
		// Browsers fall to "*".
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "/all", false},
		{"", "/all", false},
		{"GPTBotX", "/gpt", true},
		{strings.Repeat("a", 100) + " gptbot", "/gpt", false},
	} {
		if got := r.Allowed(tc.ua, tc.path); got != tc.want {
			t.Errorf("Allowed(%q, %q) = %v, want %v", tc.ua, tc.path, got, tc.want)
		}
	}
}

// twentyRules is a realistic file: a "*" group and a few named ones, 20
// rules in all.
var twentyRules = []byte(`User-agent: *
Disallow: /admin/
Disallow: /cart
Disallow: /checkout/
Disallow: /search
Disallow: /*?sessionid=
Disallow: /*.json$
Allow: /search/about
Disallow: /private/
Disallow: /tmp/
Allow: /public/
Disallow: /user/*/settings
Disallow: /api/

User-agent: GPTBot
User-agent: CCBot
Disallow: /

User-agent: Googlebot
Allow: /
Disallow: /admin/
Disallow: /cart
Disallow: /checkout/
Disallow: /search
Sitemap: https://example.com/sitemap.xml
`)

func TestAllowedDoesNotAllocate(t *testing.T) {
	r := Parse(twentyRules)
	uas := []string{"GPTBot/1.1", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", browserUA}
	paths := []string{"/", "/user/42/settings", "/search/about?q=x", "/a%20b/%E3%83%84", "/data.json"}
	allocs := testing.AllocsPerRun(100, func() {
		for _, ua := range uas {
			for _, p := range paths {
				_ = r.Allowed(ua, p)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("Allowed allocates %.1f times", allocs)
	}
}

const browserUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

func BenchmarkAllowed(b *testing.B) {
	r := Parse(twentyRules)
	for _, bc := range []struct{ name, ua, path string }{
		{"browser-star-group", browserUA, "/products/shoes/red?size=9"},
		{"bot-token", "GPTBot", "/products/shoes/red"},
		{"bot-header", "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.1; +https://openai.com/gptbot)", "/products/shoes/red"},
		{"percent-path", browserUA, "/user/%34%32/settings"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = r.Allowed(bc.ua, bc.path)
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(twentyRules)))
	for b.Loop() {
		_ = Parse(twentyRules)
	}
}

func ExampleRobots_Allowed() {
	r := Parse([]byte("User-agent: *\nDisallow: /private/\nAllow: /private/about\n"))
	fmt.Println(r.Allowed("Mozilla/5.0 (compatible; ExampleBot/1.0)", "/private/data"))
	fmt.Println(r.Allowed("ExampleBot", "/private/about"))
	// Output:
	// false
	// true
}
