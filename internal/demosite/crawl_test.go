package demosite

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const testHost = "demo.test"

var (
	// The site's HTML is ours and regular, so attribute-level regexps are
	// enough to find every reference a browser would follow or fetch.
	linkAttr = regexp.MustCompile(`\s(?:href|src|action)="([^"]*)"`)
	idAttr   = regexp.MustCompile(`\sid="([^"]*)"`)
	tagOpen  = regexp.MustCompile(`<(script|style)\b[^>]*>`)
	inlineJS = regexp.MustCompile(`\son[a-z]+\s*=`)
)

// wantType is the Content-Type every crawled URL must have, by extension.
func wantType(p string) string {
	switch path.Ext(p) {
	case ".css":
		return "text/css; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	case ".jpg":
		return "image/jpeg"
	case ".ico":
		return "image/x-icon"
	case ".txt":
		return "text/plain; charset=utf-8"
	}
	switch p {
	case "/feed.xml":
		return "application/rss+xml; charset=utf-8"
	case "/atom.xml":
		return "application/atom+xml; charset=utf-8"
	case "/sitemap.xml":
		return "application/xml; charset=utf-8"
	}
	return "text/html; charset=utf-8"
}

func get(t testing.TB, h http.Handler, target string, header http.Header) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "http://"+testHost+target, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func readBody(t testing.TB, resp *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return b
}

// TestCrawl walks every URL reachable from the home page and the well-known
// entry points, following links in HTML, feeds, the sitemap and robots.txt,
// and checks each response: no broken link or asset, the right content type,
// caching headers, and HTML that a strict CSP lets render.
func TestCrawl(t *testing.T) {
	h := Handler()
	queue := []string{"/", "/robots.txt", "/sitemap.xml", "/feed.xml", "/atom.xml", "/.well-known/security.txt", "/favicon.ico"}
	seen := map[string]string{} // path → page that first linked it
	for _, p := range queue {
		seen[p] = "(seed)"
	}
	ids := map[string][]string{}       // page → element ids
	fragments := map[string][]string{} // page → fragments linked to it
	enqueue := func(from, ref string) {
		t.Helper()
		u, err := url.Parse(ref)
		if err != nil {
			t.Errorf("%s: bad link %q: %v", from, ref, err)
			return
		}
		if u.Scheme == "mailto" || u.Scheme == "tag" {
			return
		}
		abs := (&url.URL{Scheme: "http", Host: testHost, Path: from}).ResolveReference(u)
		if abs.Host != testHost {
			t.Errorf("%s: link %q leaves the site", from, ref)
			return
		}
		target := abs.Path
		if abs.RawQuery != "" {
			target += "?" + abs.RawQuery
		}
		if abs.Fragment != "" {
			fragments[abs.Path] = append(fragments[abs.Path], abs.Fragment)
		}
		if _, ok := seen[target]; !ok {
			seen[target] = from
			queue = append(queue, target)
		}
	}

	for len(queue) > 0 {
		target := queue[0]
		queue = queue[1:]
		resp := get(t, h, target, nil)
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s (linked from %s): status %d, want 200", target, seen[target], resp.StatusCode)
			continue
		}
		p, _, _ := strings.Cut(target, "?")
		if got, want := resp.Header.Get("Content-Type"), wantType(p); got != want {
			t.Errorf("GET %s: Content-Type %q, want %q", target, got, want)
		}
		if resp.Header.Get("Cache-Control") == "" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: missing Cache-Control or nosniff: %v", target, resp.Header)
		}
		if p != "/search" && (resp.Header.Get("ETag") == "" || resp.Header.Get("Last-Modified") == "") {
			t.Errorf("GET %s: want ETag and Last-Modified, got %v", target, resp.Header)
		}
		if len(body) == 0 {
			t.Errorf("GET %s: empty body", target)
		}

		switch ctype := wantType(p); {
		case strings.HasPrefix(ctype, "text/html"):
			checkHTML(t, target, resp.Header, body)
			for _, m := range idAttr.FindAllSubmatch(body, -1) {
				ids[p] = append(ids[p], string(m[1]))
			}
			for _, m := range linkAttr.FindAllSubmatch(body, -1) {
				enqueue(p, string(m[1]))
			}
		case strings.HasPrefix(ctype, "application/"): // sitemap and feeds
			for _, ref := range xmlLinks(t, target, body) {
				enqueue(p, ref)
			}
		case p == "/robots.txt":
			sc := bufio.NewScanner(bytes.NewReader(body))
			for sc.Scan() {
				if v, ok := strings.CutPrefix(sc.Text(), "Sitemap: "); ok {
					enqueue(p, v)
				}
			}
		}
	}

	for page, frags := range fragments {
		for _, f := range frags {
			if !slices.Contains(ids[page], f) {
				t.Errorf("link to %s#%s: no element with that id", page, f)
			}
		}
	}

	// Every page and asset the site has should be reachable by following links.
	s := h.(*site)
	for p := range s.files {
		if _, ok := seen[p]; !ok {
			t.Errorf("%s is served but nothing links to it", p)
		}
	}
	for p := range s.docs {
		if _, ok := seen[p]; !ok {
			t.Errorf("%s is served but nothing links to it", p)
		}
	}
	if _, ok := seen["/search"]; !ok {
		t.Error("no page links to /search")
	}
}

// checkHTML asserts that a page works under its CSP: no inline script, style
// or event handler, and that it pulls in the shared assets.
func checkHTML(t *testing.T, target string, header http.Header, body []byte) {
	t.Helper()
	if header.Get("Content-Security-Policy") != contentSecurityPolicy {
		t.Errorf("GET %s: CSP %q", target, header.Get("Content-Security-Policy"))
	}
	for _, m := range tagOpen.FindAllSubmatch(body, -1) {
		if string(m[1]) == "style" || !bytes.Contains(m[0], []byte(" src=")) {
			t.Errorf("GET %s: inline %s element %s", target, m[1], m[0])
		}
	}
	if bytes.Contains(body, []byte(` style="`)) || inlineJS.Match(body) {
		t.Errorf("GET %s: inline style attribute or event handler", target)
	}
	for _, asset := range []string{`href="/static/site.css"`, `src="/static/site.js"`, `href="/favicon.ico"`, `<img src="/static/img/`} {
		if !bytes.Contains(body, []byte(asset)) {
			t.Errorf("GET %s: page does not reference %s", target, asset)
		}
	}
	if !bytes.HasPrefix(body, []byte("<!doctype html>")) || !bytes.HasSuffix(bytes.TrimSpace(body), []byte("</html>")) {
		t.Errorf("GET %s: not a complete HTML document", target)
	}
}

// xmlLinks checks that body is well-formed XML and returns every URL in it:
// <loc> and <link> text, href attributes.
func xmlLinks(t *testing.T, target string, body []byte) []string {
	t.Helper()
	var links []string
	dec := xml.NewDecoder(bytes.NewReader(body))
	var inLink bool
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Errorf("GET %s: not well-formed XML: %v", target, err)
			return nil
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			inLink = tok.Name.Local == "loc" || tok.Name.Local == "link"
			for _, a := range tok.Attr {
				if a.Name.Local == "href" {
					links = append(links, a.Value)
				}
			}
		case xml.CharData:
			if inLink && len(bytes.TrimSpace(tok)) > 0 {
				links = append(links, string(bytes.TrimSpace(tok)))
			}
		case xml.EndElement:
			inLink = false
		}
	}
	if len(links) == 0 {
		t.Errorf("GET %s: no links in document", target)
	}
	return links
}
