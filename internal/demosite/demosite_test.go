package demosite

import (
	"bytes"
	"encoding/binary"
	"encoding/xml"
	"image"
	_ "image/jpeg" // register decoders for TestImages
	_ "image/png"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestNotFound(t *testing.T) {
	h := Handler()
	for _, p := range []string{
		"/nope", "/index.html", "/about/", "/notes", "/notes/", "/notes/unknown",
		"/static/", "/static/missing.css", "/static/img/", "/private/secret",
		"/%2e%2e/etc/passwd", "/.well-known/", "/content/articles/heron-office-hours.html",
		"/templates/layout.html", "/assets/favicon.ico",
	} {
		t.Run(p, func(t *testing.T) {
			resp := get(t, h, p, nil)
			body := readBody(t, resp)
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("status %d, want 404", resp.StatusCode)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if resp.Header.Get("Content-Security-Policy") == "" {
				t.Error("no CSP on the 404 page")
			}
			if !bytes.Contains(body, []byte("<h1>Not found</h1>")) {
				t.Errorf("body is not the 404 page: %.200s", body)
			}
		})
	}

	req := httptest.NewRequest(http.MethodHead, "/nope", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotFound || rec.Body.Len() != 0 || rec.Header().Get("Content-Length") == "" {
		t.Errorf("HEAD /nope: status %d, %d body bytes, Content-Length %q", rec.Code, rec.Body.Len(), rec.Header().Get("Content-Length"))
	}
}

func TestMethods(t *testing.T) {
	h := Handler()
	tests := []struct {
		method string
		want   int
	}{
		{http.MethodGet, http.StatusOK},
		{http.MethodHead, http.StatusOK},
		{http.MethodPost, http.StatusMethodNotAllowed},
		{http.MethodPut, http.StatusMethodNotAllowed},
		{http.MethodDelete, http.StatusMethodNotAllowed},
		{http.MethodOptions, http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, "/about", nil))
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d", rec.Code, tt.want)
			}
			if tt.want == http.StatusMethodNotAllowed && rec.Header().Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow %q", rec.Header().Get("Allow"))
			}
			if tt.method == http.MethodHead && rec.Body.Len() != 0 {
				t.Errorf("HEAD sent %d body bytes", rec.Body.Len())
			}
		})
	}
}

func TestConditionalRequests(t *testing.T) {
	h := Handler()
	for _, p := range []string{"/", "/notes/heron-office-hours", "/static/site.css", "/favicon.ico", "/feed.xml", "/robots.txt"} {
		t.Run(p, func(t *testing.T) {
			first := get(t, h, p, nil)
			etag, lastMod := first.Header.Get("ETag"), first.Header.Get("Last-Modified")
			if etag == "" || lastMod == "" {
				t.Fatalf("no validators: %v", first.Header)
			}
			if resp := get(t, h, p, http.Header{"If-None-Match": {etag}}); resp.StatusCode != http.StatusNotModified {
				t.Errorf("If-None-Match: status %d, want 304", resp.StatusCode)
			}
			if resp := get(t, h, p, http.Header{"If-Modified-Since": {lastMod}}); resp.StatusCode != http.StatusNotModified {
				t.Errorf("If-Modified-Since: status %d, want 304", resp.StatusCode)
			}
			if resp := get(t, h, p, http.Header{"If-None-Match": {`"other"`}}); resp.StatusCode != http.StatusOK {
				t.Errorf("stale If-None-Match: status %d, want 200", resp.StatusCode)
			}
		})
	}
	// The same document named through another host is a different entity.
	a := get(t, h, "/feed.xml", nil).Header.Get("ETag")
	b := get(t, h, "/feed.xml", http.Header{"X-Forwarded-Host": {"other.test"}}).Header.Get("ETag")
	if a == b {
		t.Errorf("feed ETag %s does not depend on the host", a)
	}
}

func TestCachePolicy(t *testing.T) {
	h := Handler()
	tests := []struct{ path, want string }{
		{"/", cachePage},
		{"/notes/moths-at-the-sheet", cachePage},
		{"/private/", cachePrivate},
		{"/static/site.css", cacheAsset},
		{"/static/img/valley.png", cacheAsset},
		{"/feed.xml", cacheDoc},
		{"/robots.txt", cacheDoc},
		{"/search?q=moth", cacheNone},
	}
	for _, tt := range tests {
		if got := get(t, h, tt.path, nil).Header.Get("Cache-Control"); got != tt.want {
			t.Errorf("GET %s: Cache-Control %q, want %q", tt.path, got, tt.want)
		}
	}
}

func TestRobotsAndPrivate(t *testing.T) {
	h := Handler()
	robots := string(readBody(t, get(t, h, "/robots.txt", nil)))
	for _, line := range []string{"User-agent: *", "Allow: /", "Disallow: /private/", "Disallow: /search", "Sitemap: http://demo.test/sitemap.xml"} {
		if !strings.Contains(robots, "\n"+line+"\n") {
			t.Errorf("robots.txt lacks line %q:\n%s", line, robots)
		}
	}

	resp := get(t, h, "/private/", nil)
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Robots-Tag") != "noindex, nofollow" ||
		!bytes.Contains(body, []byte(`<meta name="robots" content="noindex, nofollow">`)) {
		t.Errorf("/private/: status %d, X-Robots-Tag %q", resp.StatusCode, resp.Header.Get("X-Robots-Tag"))
	}
	resp = get(t, h, "/private", nil)
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/private/" {
		t.Errorf("/private: status %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	sitemap := string(readBody(t, get(t, h, "/sitemap.xml", nil)))
	if strings.Contains(sitemap, "/private/") || strings.Contains(sitemap, "/search") {
		t.Error("the sitemap lists a path that robots.txt disallows")
	}
}

func TestSecurityTxt(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s, err := newSite(now)
	if err != nil {
		t.Fatal(err)
	}
	body := string(readBody(t, get(t, s, "/.well-known/security.txt", nil)))
	for _, line := range []string{
		"Contact: mailto:security@lindenbrook.example",
		"Expires: 2026-09-01T00:00:00Z",
		"Canonical: http://demo.test/.well-known/security.txt",
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("security.txt lacks %q:\n%s", line, body)
		}
	}
}

func TestFeeds(t *testing.T) {
	h := Handler()
	header := http.Header{"X-Forwarded-Host": {"notes.example.org"}, "X-Forwarded-Proto": {"https"}}
	const base = "https://notes.example.org"

	var feed struct {
		Version string `xml:"version,attr"`
		Channel struct {
			Links []string `xml:"link"` // <link> and the empty <atom:link>
			Items []struct {
				Title   string `xml:"title"`
				Link    string `xml:"link"`
				GUID    string `xml:"guid"`
				PubDate string `xml:"pubDate"`
			} `xml:"item"`
		} `xml:"channel"`
	}
	if err := xml.Unmarshal(readBody(t, get(t, h, "/feed.xml", header)), &feed); err != nil {
		t.Fatalf("RSS: %v", err)
	}
	if feed.Version != "2.0" || !slices.Contains(feed.Channel.Links, base+"/") || len(feed.Channel.Items) != 6 {
		t.Fatalf("RSS: version %q, links %q, %d items", feed.Version, feed.Channel.Links, len(feed.Channel.Items))
	}
	for _, it := range feed.Channel.Items {
		if _, err := time.Parse(time.RFC1123Z, it.PubDate); err != nil {
			t.Errorf("RSS item %q: pubDate: %v", it.Title, err)
		}
		if !strings.HasPrefix(it.Link, base+"/notes/") || !strings.HasPrefix(it.GUID, "tag:") {
			t.Errorf("RSS item %q: link %q, guid %q", it.Title, it.Link, it.GUID)
		}
	}

	var atom struct {
		XMLName xml.Name `xml:"http://www.w3.org/2005/Atom feed"`
		ID      string   `xml:"id"`
		Updated string   `xml:"updated"`
		Entries []struct {
			ID   string `xml:"id"`
			Link struct {
				Href string `xml:"href,attr"`
			} `xml:"link"`
			Updated string `xml:"updated"`
		} `xml:"entry"`
	}
	if err := xml.Unmarshal(readBody(t, get(t, h, "/atom.xml", header)), &atom); err != nil {
		t.Fatalf("Atom: %v", err)
	}
	if atom.ID == "" || len(atom.Entries) != 6 {
		t.Fatalf("Atom: id %q, %d entries", atom.ID, len(atom.Entries))
	}
	for _, e := range atom.Entries {
		if _, err := time.Parse(time.RFC3339, e.Updated); err != nil {
			t.Errorf("Atom entry %s: updated: %v", e.ID, err)
		}
		if !strings.HasPrefix(e.Link.Href, base+"/notes/") {
			t.Errorf("Atom entry %s: link %q", e.ID, e.Link.Href)
		}
	}

	var sitemap struct {
		URLs []struct {
			Loc string `xml:"loc"`
		} `xml:"url"`
	}
	if err := xml.Unmarshal(readBody(t, get(t, h, "/sitemap.xml", header)), &sitemap); err != nil {
		t.Fatalf("sitemap: %v", err)
	}
	if len(sitemap.URLs) != 9 {
		t.Errorf("sitemap: %d URLs, want 9", len(sitemap.URLs))
	}
	for _, u := range sitemap.URLs {
		if !strings.HasPrefix(u.Loc, base+"/") {
			t.Errorf("sitemap: loc %q", u.Loc)
		}
	}
}

func TestBaseURL(t *testing.T) {
	tests := []struct {
		name     string
		host     string
		tls      bool
		fwdHost  string
		fwdProto string
		wantBase string
	}{
		{"plain", "example.org", false, "", "", "http://example.org"},
		{"port", "127.0.0.1:8080", false, "", "", "http://127.0.0.1:8080"},
		{"ipv6", "[::1]:8080", false, "", "", "http://[::1]:8080"},
		{"tls", "example.org", true, "", "", "https://example.org"},
		{"forwarded", "127.0.0.1:4000", false, "site.example", "https", "https://site.example"},
		{"forwarded list", "127.0.0.1:4000", false, "a.example, b.example", "HTTPS, http", "https://a.example"},
		{"forwarded http over tls", "x.example", true, "", "http", "http://x.example"},
		{"unknown proto", "x.example", false, "", "gopher", "http://x.example"},
		{"empty host", "", false, "", "", "http://localhost"},
		{"userinfo", "evil.example@x", false, "", "", "http://localhost"},
		{"path in host", "x.example/evil", false, "", "", "http://localhost"},
		{"markup in forwarded host", "x.example", false, `"><script>`, "", "http://localhost"},
		{"too long", strings.Repeat("a", maxHostLen+1), false, "", "", "http://localhost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/feed.xml", nil)
			r.Host = tt.host
			if !tt.tls {
				r.TLS = nil
			}
			if tt.tls && r.TLS == nil {
				r = httptest.NewRequest(http.MethodGet, "https://x/feed.xml", nil)
				r.Host = tt.host
			}
			if tt.fwdHost != "" {
				r.Header.Set("X-Forwarded-Host", tt.fwdHost)
			}
			if tt.fwdProto != "" {
				r.Header.Set("X-Forwarded-Proto", tt.fwdProto)
			}
			if got := baseURL(r); got != tt.wantBase {
				t.Errorf("baseURL = %q, want %q", got, tt.wantBase)
			}
		})
	}
}

func TestSearch(t *testing.T) {
	h := Handler()
	tests := []struct {
		name      string
		query     string
		wantSlugs []string
	}{
		{"title word", "heron", []string{"heron-office-hours"}},
		{"case-insensitive", "WINTER", []string{"alder-carr-census"}},
		{"tag", "birds", []string{"alder-carr-census", "heron-office-hours"}},
		{"all terms must match", "birds river", []string{"heron-office-hours"}},
		{"no match", "zebra", nil},
		{"empty", "", nil},
		{"blank", "   ", nil},
		{"markup", "<script>alert(1)</script>", nil},
		{"invalid utf-8", "her\xffon", []string{"heron-office-hours"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := get(t, h, "/search?q="+url.QueryEscape(tt.query), nil)
			body := readBody(t, resp)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Security-Policy") == "" {
				t.Fatalf("status %d, header %v", resp.StatusCode, resp.Header)
			}
			results := bytes.Count(body, []byte(`<li><a href="/notes/`))
			if results != len(tt.wantSlugs) {
				t.Errorf("%d results, want %d", results, len(tt.wantSlugs))
			}
			for _, slug := range tt.wantSlugs {
				if !bytes.Contains(body, []byte(`<li><a href="/notes/`+slug+`"`)) {
					t.Errorf("result %s missing", slug)
				}
			}
			if bytes.Contains(body, []byte("<script>alert")) {
				t.Error("query echoed unescaped")
			}
		})
	}
}

func TestCleanQuery(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"  heron  ", "heron"},
		{"a\xffb", "ab"},
		{strings.Repeat("x", 150), strings.Repeat("x", maxQueryBytes)},
		{strings.Repeat("é", 60), strings.Repeat("é", maxQueryBytes/2)},
		{strings.Repeat("x", 99) + "€", strings.Repeat("x", 99)},
	}
	for _, tt := range tests {
		got := cleanQuery(tt.in)
		if got != tt.want {
			t.Errorf("cleanQuery(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if !utf8.ValidString(got) || len(got) > maxQueryBytes {
			t.Errorf("cleanQuery(%q) = %q: invalid or too long", tt.in, got)
		}
	}
}

func TestParseArticleErrors(t *testing.T) {
	const good = "title: T\ndate: 2025-01-02\ntags: a, b\nimage: /static/img/x.svg\nalt: A\nsummary: S\n---\n<p>x</p>\n"
	if _, err := parseArticle("ok", []byte(good)); err != nil {
		t.Fatalf("good article: %v", err)
	}
	tests := []struct{ name, slug, data, wantErr string }{
		{"no separator", "a", "title: T\n<p>x</p>", `no "---"`},
		{"bad slug", "A b", good, "file name"},
		{"bad line", "a", "title T\n---\n", "key: value"},
		{"bad date", "a", strings.Replace(good, "2025-01-02", "Jan 2", 1), "date"},
		{"bad tag", "a", strings.Replace(good, "a, b", "a, B c", 1), "tag"},
		{"unknown key", "a", "colour: red\n" + good, "unknown header key"},
		{"missing title", "a", strings.Replace(good, "title: T\n", "", 1), `"title" is missing`},
		{"missing tags", "a", strings.Replace(good, "tags: a, b\n", "", 1), "required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseArticle(tt.slug, []byte(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestArticles(t *testing.T) {
	s := Handler().(*site)
	if len(s.articles) != 6 {
		t.Fatalf("%d articles, want 6", len(s.articles))
	}
	for i, a := range s.articles {
		if i > 0 && a.Date.After(s.articles[i-1].Date) {
			t.Errorf("articles not newest first at %s", a.Slug)
		}
		words := len(strings.Fields(string(a.Body)))
		if words < 300 {
			t.Errorf("%s: %d words; a scraper should find something worth taking", a.Slug, words)
		}
	}
}

func TestImages(t *testing.T) {
	s := Handler().(*site)
	for p, res := range s.files {
		switch ct := res.header.Get("Content-Type"); ct {
		case "image/png", "image/jpeg":
			cfg, _, err := image.DecodeConfig(bytes.NewReader(res.body))
			if err != nil || cfg.Width == 0 {
				t.Errorf("%s: %v", p, err)
			}
		case "image/svg+xml":
			var svg struct {
				XMLName xml.Name `xml:"http://www.w3.org/2000/svg svg"`
				ViewBox string   `xml:"viewBox,attr"`
			}
			if err := xml.Unmarshal(res.body, &svg); err != nil || svg.ViewBox == "" {
				t.Errorf("%s: not an SVG with a viewBox: %v", p, err)
			}
			if bytes.Contains(res.body, []byte("<script")) {
				t.Errorf("%s: script in an SVG", p)
			}
		case "image/x-icon":
			checkICO(t, p, res.body)
		}
	}
}

// checkICO verifies the ICONDIR header and that every entry lies in the file.
func checkICO(t *testing.T, name string, b []byte) {
	t.Helper()
	if len(b) < 6 || binary.LittleEndian.Uint16(b[0:]) != 0 || binary.LittleEndian.Uint16(b[2:]) != 1 {
		t.Fatalf("%s: not an ICO file", name)
	}
	n := int(binary.LittleEndian.Uint16(b[4:]))
	if n == 0 || len(b) < 6+16*n {
		t.Fatalf("%s: %d entries in %d bytes", name, n, len(b))
	}
	for i := 0; i < n; i++ {
		e := b[6+16*i:]
		size, off := binary.LittleEndian.Uint32(e[8:]), binary.LittleEndian.Uint32(e[12:])
		if int(off)+int(size) > len(b) || size < 40 {
			t.Errorf("%s: entry %d (%d bytes at %d) outside the file", name, i, size, off)
		}
	}
}

func TestEmbeddedSize(t *testing.T) {
	const limit = 300 << 10
	total := 0
	err := fs.WalkDir(files, ".", func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		total += int(info.Size())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("embedded site: %d bytes", total)
	if total > limit {
		t.Errorf("embedded site is %d bytes, over the %d budget", total, limit)
	}
}
