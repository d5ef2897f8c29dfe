package robots

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/render")

// renderAgents mixes real agent names with ones Render must skip.
var renderAgents = []string{"GPTBot", "ClaudeBot", "CCBot", "ChatGPT Agent", "*", "bad\nname", "bad#name", "gptbot", " ", "/path"}

// validRenderAgents are the names of renderAgents that Render keeps.
var validRenderAgents = []string{"GPTBot", "ClaudeBot", "CCBot", "ChatGPT Agent"}

var renderTraps = []string{"/.well-known/trap/", "/maze/", "relative", "/with space", "/maze/"}

func renderInputs(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("testdata/render/*.input.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no render inputs: %v", err)
	}
	return files
}

func TestRenderGolden(t *testing.T) {
	for _, in := range renderInputs(t) {
		t.Run(filepath.Base(in), func(t *testing.T) {
			upstream, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			got := Render(upstream, renderAgents, renderTraps...)
			golden := strings.TrimSuffix(in, ".input.txt") + ".golden.txt"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Render differs from %s:\n--- got\n%s\n--- want\n%s", golden, got, want)
			}
		})
	}
}

// Parse reads the rendered file back with the expected meaning: the
// declared agents may fetch nothing, the trap prefixes are closed to
// everyone, and everything else means what the upstream said.
func TestRenderRoundTrip(t *testing.T) {
	uas := []string{"Googlebot", "Mozilla/5.0 (compatible; bingbot/2.0)", "OtherBot", browserUA}
	paths := []string{"/", "/admin/x", "/admin/help", "/blog/x", "/search", "/nogoogle", "/nobing", "/x", "/maze", "/well-known/trap/"}
	traps := []string{"/maze/1", "/.well-known/trap/x", "/maze/"}
	for _, in := range renderInputs(t) {
		upstream, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		for _, withTraps := range []bool{false, true} {
			var tp []string
			if withTraps {
				tp = renderTraps
			}
			orig, got := Parse(upstream), Parse(Render(upstream, renderAgents, tp...))
			for _, a := range validRenderAgents {
				for _, p := range append(paths, traps...) {
					if got.Allowed(a, p) {
						t.Errorf("%s: agent %q allowed %q", in, a, p)
					}
				}
				if !got.Allowed(a, "/robots.txt") {
					t.Errorf("%s: agent %q may not read /robots.txt", in, a)
				}
			}
			for _, ua := range uas {
				for _, p := range paths {
					if g, w := got.Allowed(ua, p), orig.Allowed(ua, p); g != w {
						t.Errorf("%s: Allowed(%q, %q) = %v, upstream says %v", in, ua, p, g, w)
					}
				}
				for _, p := range traps {
					if g, w := got.Allowed(ua, p), !withTraps && orig.Allowed(ua, p); g != w {
						t.Errorf("%s (traps %v): Allowed(%q, %q) = %v, want %v", in, withTraps, ua, p, g, w)
					}
				}
			}
			if got.Invalid != orig.Invalid || len(got.Sitemaps) != len(orig.Sitemaps) {
				t.Errorf("%s: Invalid %d→%d, sitemaps %d→%d", in, orig.Invalid, got.Invalid, len(orig.Sitemaps), len(got.Sitemaps))
			}
		}
	}
}

func TestRenderNothingToAdd(t *testing.T) {
	if got := Render(nil, nil); len(got) != 0 {
		t.Errorf("Render(nil, nil) = %q", got)
	}
	up := []byte("User-agent: *\r\nDisallow: /x\r\n")
	if got, want := string(Render(up, nil)), "User-agent: *\nDisallow: /x\n"; got != want {
		t.Errorf("Render without additions = %q, want %q", got, want)
	}
}

// A huge upstream is cut so that the appended group stays within MaxSize,
// at a line boundary, and never between a group's user agents and its trap
// lines.
func TestRenderStaysWithinMaxSize(t *testing.T) {
	var b strings.Builder
	for i := 0; b.Len() < MaxSize+10000; i++ {
		b.WriteString("User-agent: bot")
		b.WriteString(strings.Repeat("x", i%50))
		b.WriteString("\nDisallow: /private/\n\n")
	}
	agents := []string{"GPTBot", "ClaudeBot"}
	out := Render([]byte(b.String()), agents, "/maze/")
	if len(out) > MaxSize {
		t.Fatalf("rendered %d bytes, more than MaxSize", len(out))
	}
	r := Parse(out)
	if r.Truncated {
		t.Error("rendered file is truncated when parsed")
	}
	for _, a := range agents {
		if r.Allowed(a, "/") {
			t.Errorf("%s allowed after the cut", a)
		}
	}
	// Every group that survived still holds its trap line.
	for _, ua := range []string{"bot", "botxxxxx", "other"} {
		if r.Allowed(ua, "/maze/x") {
			t.Errorf("%s may enter the trap", ua)
		}
	}
	if !bytes.HasSuffix(out, []byte("Disallow: /\n")) {
		t.Error("the AI group is not at the end")
	}
}

func TestRenderDropsOnlyDeclaredAgents(t *testing.T) {
	up := []byte(`User-agent: GPTBot
User-agent: Googlebot
Allow: /gpt-and-google
Disallow: /

User-agent: ClaudeBot
# Anthropic's crawler
Allow: /claude
Sitemap: https://example.com/in-a-group.xml
`)
	out := Render(up, []string{"GPTBot", "ClaudeBot"})
	r := Parse(out)
	if !r.Allowed("Googlebot", "/gpt-and-google") || r.Allowed("Googlebot", "/other") {
		t.Errorf("Googlebot lost its rules:\n%s", out)
	}
	if r.Allowed("GPTBot", "/gpt-and-google") || r.Allowed("ClaudeBot", "/claude") {
		t.Errorf("an upstream Allow reopened a path for a declared agent:\n%s", out)
	}
	if len(r.Sitemaps) != 1 || bytes.Contains(out, []byte("Anthropic")) {
		t.Errorf("sitemap lost or dropped group's comment kept:\n%s", out)
	}
}

// An upstream group without rules at the end of the file must not absorb
// the appended user-agent lines: blank lines do not end a group.
func TestRenderClosesAnOpenLastGroup(t *testing.T) {
	for _, up := range []string{"User-agent: foo\n", "User-agent: *\nDisallow: /x\n\nUser-agent: foo\n# no rules\n\n"} {
		for _, traps := range [][]string{nil, {"/maze/"}} {
			out := Render([]byte(up), []string{"GPTBot"}, traps...)
			r := Parse(out)
			if !r.Allowed("foo", "/") || r.Allowed("GPTBot", "/") {
				t.Errorf("Render(%q, traps %v):\n%s\nfoo allowed %v, GPTBot allowed %v", up, traps, out, r.Allowed("foo", "/"), r.Allowed("GPTBot", "/"))
			}
		}
	}
}
