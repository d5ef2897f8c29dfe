package policy

import (
	"regexp"
	"strings"
	"testing"
)

func TestAnalyze(t *testing.T) {
	tests := []struct {
		expr string
		want string // literals as exact|prefix|suffix|contains, "" when not literal
	}{
		{`curl`, "|||curl"},
		{`^Mozilla/5\.0`, "|Mozilla/5.0||"},
		{`^/robots\.txt$`, "/robots.txt|||"},
		{`\.(rss|atom)$`, "||.atom .rss|"},
		{`/feed(/|\.xml)?$`, "||/feed /feed.xml /feed/|"},
		{`application/(rss|atom)\+xml`, "|||application/atom+xml application/rss+xml"},
		{`(?i)bot`, "fold:|||bot"},
		{`^$`, "|||"},
		{`^(GET|HEAD)$`, "GET HEAD|||"},
		{`[Rr]obots`, ""}, // the parser makes [Rr] a case-folded r: mixed folding is left to the engine
		{`a?`, "always"},
		{`^`, "always"},
		{`a.c`, ""},
		{`a+`, ""},
		{`(?m)^a`, ""},
		{`a^b`, ""},
		{`a$b`, ""},
		{`(?i)ſ`, "fold:|||s"}, // decided only on ASCII input
		{`(?i)a[bc]`, ""},
		{`[a-z]x`, ""},
		{`\bword\b`, ""},
	}
	for _, tt := range tests {
		l := analyze(tt.expr)
		got := ""
		switch {
		case l == nil:
		case l.always:
			got = "always"
		default:
			var cs []string
			for _, c := range l.contains {
				cs = append(cs, c.s)
			}
			got = strings.Join(l.exact, " ") + "|" + strings.Join(l.prefix, " ") + "|" + strings.Join(l.suffix, " ") + "|" + strings.Join(cs, " ")
			if l.fold {
				got = "fold:" + got
			}
		}
		if got != tt.want {
			t.Errorf("analyze(%q) = %q, want %q", tt.expr, got, tt.want)
		}
	}
}

var patternInputs = []string{
	"", "a", "curl", "CURL/8", "xcurly", "Mozilla/5.0 (X11)", "mozilla/5.0", "/robots.txt", "/robots.txt.bak",
	"/a/robots.txt", "/blog/index.rss", "/x.atom", "/feed", "/feed/", "/feed.xml", "/feedback", "/FEED",
	"text/html, application/rss+xml;q=0.9", "application/atom+xml", "applicationXrss+xml", "GoogleBot", "BOT",
	"robot", "Kelvin \u212a", "\u212aBOT", "bo\u212at", "GET", "HEAD", "GETS", "Robots", "ROBOTS", "abc", "ac",
	"aſ", "plus+", "++", "a\nb", "\xff\xfe",
}

var patternExprs = []string{
	`curl`, `^Mozilla/5\.0`, `^/robots\.txt$`, `\.(rss|atom)$`, `/feed(/|\.xml)?$`,
	`application/(rss|atom)\+xml`, `(?i)bot`, `(?i)^bot`, `(?i)bot$`, `(?i)^get$`, `^$`, `^(GET|HEAD)$`, `[Rr]obots`,
	`a?`, `^`, `$`, `a.c`, `(?i)k`, `(?i)ſ`, `\+`, `^(?:)$`, `(a|)b`, `^(a|b)?$`, `[+]+`, `x*`, `(?i)(rss|atom)`,
	`(?i)\x{212a}`, `\xff`, `^\.?a`, `(?:^a|b$)`, `a|^b|c$|^d$`,
}

// TestPatternAgreesWithRegexp checks the literal fast path against the
// regex engine it replaces.
func TestPatternAgreesWithRegexp(t *testing.T) {
	for _, expr := range patternExprs {
		p, err := compilePattern(expr)
		if err != nil {
			t.Fatalf("%q: %v", expr, err)
		}
		for _, in := range patternInputs {
			if got, want := p.match(in), p.re.MatchString(in); got != want {
				t.Errorf("pattern %q on %q = %v, regexp says %v", expr, in, got, want)
			}
		}
	}
}

func TestSubstringRareByte(t *testing.T) {
	for _, tt := range []struct {
		needle, hay string
		want        bool
	}{
		{"application/rss+xml", "text/html,application/xhtml+xml,application/rss+xml", true},
		{"application/rss+xml", "text/html,application/xhtml+xml", false},
		{"+x", "+x", true},
		{"+x", "x+", false},
		{"ab+", "ab+", true},
		{"ab+", "b+", false},
		{"zz", "azzb", true},
		{"q", "", false},
	} {
		if got := newSubstring(tt.needle).in(tt.hay); got != tt.want {
			t.Errorf("%q in %q = %v", tt.needle, tt.hay, got)
		}
		if got := strings.Contains(tt.hay, tt.needle); got != tt.want {
			t.Errorf("bad case %q in %q", tt.needle, tt.hay)
		}
	}
}

// FuzzPattern: for any regex, the compiled pattern agrees with the regex
// engine on any input.
func FuzzPattern(f *testing.F) {
	for _, e := range patternExprs {
		f.Add(e, "Mozilla/5.0 curl/8 /feed.xml application/rss+xml")
	}
	for _, in := range patternInputs {
		f.Add(`(?i)(bot|^get$|\.xml$)`, in)
	}
	f.Fuzz(func(t *testing.T, expr, in string) {
		if len(expr) > MaxRegexLen {
			return
		}
		p, err := compilePattern(expr)
		if err != nil {
			return
		}
		if _, err := regexp.Compile(expr); err != nil {
			t.Fatalf("compilePattern accepted %q that regexp rejects", expr)
		}
		if got, want := p.match(in), p.re.MatchString(in); got != want {
			t.Fatalf("pattern %q on %q = %v, regexp says %v", expr, in, got, want)
		}
	})
}
