package robots

import (
	"testing"
)

var fuzzAgents = []string{"GPTBot", "ChatGPT Agent"}

// agentFile selects the user agents that name one of fuzzAgents.
var agentFile = Parse([]byte("User-agent: GPTBot\nUser-agent: ChatGPT Agent\nDisallow: /\n"))

func FuzzParse(f *testing.F) {
	f.Add([]byte("User-agent: *\nDisallow: /private\nAllow: /private/ok$\n"), "GPTBot/1.1", "/private/x")
	f.Add([]byte("\xEF\xBB\xBFuser-agent: a\r\nuser-agent: b\rdisallow: /*.php$\n\nsitemap: /s.xml"), "Mozilla/5.0 (compatible; b/1.0)", "/x.php")
	f.Add([]byte("User-agent: GPTBot\nAllow: /\nUser-agent: foo\n"), "foo", "/%E3%83%84?q=%zz")
	f.Add([]byte("Disallow: /\nuser agent: x y z\ndisallow **a*$\n"), "x", "http://host")
	f.Fuzz(func(t *testing.T, data []byte, ua, path string) {
		r := Parse(data)
		allowed := r.Allowed(ua, path)
		if r.Disallowed(ua, path) == allowed {
			t.Fatal("Disallowed is not the inverse of Allowed")
		}

		// Rendered with the agents only: read back, the agents may fetch
		// nothing but /robots.txt, and any other user agent gets what the
		// upstream gave it.
		out := Render(data, fuzzAgents)
		if len(out) > MaxSize {
			t.Fatalf("rendered %d bytes", len(out))
		}
		back := Parse(out)
		for _, a := range fuzzAgents {
			if back.Allowed(a, path) && !isRobotsTxt(canonicalPath(nil, path)) {
				t.Fatalf("agent %q allowed %q by\n%s", a, path, out)
			}
		}
		if len(data) < MaxSize/2 && agentFile.Allowed(ua, "/x") && back.Allowed(ua, path) != allowed {
			t.Fatalf("Allowed(%q, %q) = %v upstream, %v rendered:\n--- upstream\n%s\n--- rendered\n%s", ua, path, allowed, !allowed, data, out)
		}

		// With trap prefixes too: still well formed and bounded.
		out = Render(data, fuzzAgents, "/maze/", path)
		if len(out) > MaxSize {
			t.Fatalf("rendered %d bytes", len(out))
		}
		back = Parse(out)
		if back.Allowed("GPTBot", "/maze/x") {
			t.Fatalf("agent allowed into the trap:\n%s", out)
		}
	})
}
