package demosite

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// files holds everything the site serves. assets/ is served as is (assets/X
// at /X); content/ and templates/ are rendered once, when the handler is built.
//
//go:embed assets content templates
var files embed.FS

const (
	siteTitle       = "Lindenbrook Field Notes"
	siteDescription = "A naturalist's notebook from a small, imaginary river valley."

	// baseMarker stands in for the scheme and host in documents that need
	// absolute URLs; it is replaced per request (see baseURL). Braces survive
	// both XML escaping and plain text unchanged.
	baseMarker = "{base}"

	// contentSecurityPolicy allows nothing inline: every script and style is
	// a same-origin file, which is also what makes a browser fetch them.
	contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
		"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

	cachePage    = "public, no-cache" // revalidate with the ETag every time
	cacheAsset   = "public, max-age=86400"
	cacheDoc     = "public, max-age=3600"
	cacheNone    = "no-store"
	cachePrivate = "private, no-cache"
)

// assetTypes is the Content-Type of each asset extension. It is fixed here
// rather than taken from the system MIME tables, which differ between hosts.
var assetTypes = map[string]string{
	".css": "text/css; charset=utf-8",
	".js":  "text/javascript; charset=utf-8",
	".svg": "image/svg+xml",
	".png": "image/png",
	".jpg": "image/jpeg",
	".ico": "image/x-icon",
	".txt": "text/plain; charset=utf-8",
}

// resource is a fully rendered response body with its headers.
type resource struct {
	body    []byte
	header  http.Header // shared by every response: read, never modified
	modTime time.Time
}

// document is a resource with absolute URLs in it, split at each baseMarker
// so that a request can join it with its own base URL in one allocation.
type document struct {
	parts   [][]byte
	size    int // length of the parts together
	header  http.Header
	modTime time.Time
	etag    string // hash of the unjoined body; the base URL's hash is appended
}

func newDocument(body []byte, header http.Header, modTime time.Time) *document {
	d := &document{header: header, modTime: modTime, etag: contentHash(body)}
	d.parts = bytes.Split(body, []byte(baseMarker))
	for _, p := range d.parts {
		d.size += len(p)
	}
	return d
}

// render joins the document with base, which must already be validated.
func (d *document) render(base string) []byte {
	out := make([]byte, 0, d.size+len(base)*(len(d.parts)-1))
	for i, p := range d.parts {
		if i > 0 {
			out = append(out, base...)
		}
		out = append(out, p...)
	}
	return out
}

// page is what every HTML template receives.
type page struct {
	Path        string
	Title       string
	Description string
	Robots      string
	Query       string
	Articles    []*article
	Article     *article
	Newer       *article
	Older       *article
	Tags        []tagGroup
	Results     []*article
}

// pageSpec says how to pre-render one HTML page.
type pageSpec struct {
	path, tmpl   string
	cacheControl string
	modTime      time.Time
	data         page
}

// newSite parses and renders the whole site. now dates security.txt's expiry.
func newSite(now time.Time) (*site, error) {
	articles, err := loadArticles(files, "content/articles")
	if err != nil {
		return nil, err
	}
	tmpl, err := parseTemplates(files)
	if err != nil {
		return nil, err
	}
	updated := articles[0].Date
	s := &site{
		articles:     articles,
		files:        make(map[string]*resource),
		docs:         make(map[string]*document),
		searchPage:   tmpl["search"],
		searchHeader: htmlHeader(cacheNone),
	}

	pages := []pageSpec{
		{"/", "home", cachePage, updated, page{Description: siteDescription, Articles: articles}},
		{"/archive", "archive", cachePage, updated, page{Title: "Archive", Description: "Every note by date and by tag.", Articles: articles, Tags: groupByTag(articles)}},
		{"/about", "about", cachePage, updated, page{Title: "About", Description: "What these notes are and how they are made."}},
		{"/private/", "private", cachePrivate, updated, page{Title: "Drafts", Description: "Unpublished drafts.", Robots: "noindex, nofollow"}},
	}
	for i, a := range articles {
		p := page{Title: a.Title, Description: a.Summary, Article: a}
		if i > 0 {
			p.Newer = articles[i-1]
		}
		if i+1 < len(articles) {
			p.Older = articles[i+1]
		}
		pages = append(pages, pageSpec{"/notes/" + a.Slug, "article", cachePage, a.Date, p})
	}
	for _, p := range pages {
		p.data.Path = p.path
		body, err := renderPage(tmpl[p.tmpl], p.data)
		if err != nil {
			return nil, err
		}
		header := htmlHeader(p.cacheControl)
		if p.path == "/private/" {
			header.Set("X-Robots-Tag", "noindex, nofollow")
		}
		s.files[p.path] = newResource(body, header, p.modTime)
	}

	body, err := renderPage(tmpl["notfound"], page{Title: "Not found", Description: "There is no page at this address."})
	if err != nil {
		return nil, err
	}
	s.notFound = newResource(body, htmlHeader(cachePage), updated)

	if err := s.addAssets(files, "assets", updated); err != nil {
		return nil, err
	}
	if err := s.addDocuments(now, updated); err != nil {
		return nil, err
	}
	return s, nil
}

func parseTemplates(fsys fs.FS) (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"isodate":  func(t time.Time) string { return t.Format(time.DateOnly) },
		"longdate": func(t time.Time) string { return t.Format("2 January 2006") },
	}
	layout, err := template.New("layout").Funcs(funcs).ParseFS(fsys, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("parse layout: %w", err)
	}
	out := make(map[string]*template.Template)
	for _, name := range []string{"home", "article", "archive", "about", "private", "search", "notfound"} {
		t, err := layout.Clone()
		if err != nil {
			return nil, fmt.Errorf("clone layout: %w", err)
		}
		if _, err := t.ParseFS(fsys, "templates/"+name+".html"); err != nil {
			return nil, fmt.Errorf("parse template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

func renderPage(t *template.Template, p page) ([]byte, error) {
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		return nil, fmt.Errorf("render %s: %w", p.Path, err)
	}
	return buf.Bytes(), nil
}

func (s *site) addAssets(fsys fs.FS, root string, modTime time.Time) error {
	return fs.WalkDir(fsys, root, func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ctype, ok := assetTypes[path.Ext(name)]
		if !ok {
			return fmt.Errorf("asset %s: no content type for its extension", name)
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return fmt.Errorf("read asset: %w", err)
		}
		header := http.Header{}
		header.Set("Content-Type", ctype)
		header.Set("Cache-Control", cacheAsset)
		header.Set("X-Content-Type-Options", "nosniff")
		if ctype == "image/svg+xml" {
			// An SVG opened on its own is a document that could run script.
			header.Set("Content-Security-Policy", "default-src 'none'")
		}
		s.files[strings.TrimPrefix(name, root)] = newResource(body, header, modTime)
		return nil
	})
}

func newResource(body []byte, header http.Header, modTime time.Time) *resource {
	header.Set("ETag", `"`+contentHash(body)+`"`)
	return &resource{body: body, header: header, modTime: modTime}
}

func htmlHeader(cacheControl string) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", cacheControl)
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "strict-origin-when-cross-origin")
	return h
}

func docHeader(ctype string) http.Header {
	h := http.Header{}
	h.Set("Content-Type", ctype)
	h.Set("Cache-Control", cacheDoc)
	h.Set("X-Content-Type-Options", "nosniff")
	// The body names the host it was asked for (see baseURL).
	h.Set("Vary", "X-Forwarded-Host, X-Forwarded-Proto")
	return h
}

func contentHash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// addDocuments builds robots.txt, the sitemap, both feeds and security.txt.
func (s *site) addDocuments(now, updated time.Time) error {
	robots := "# " + siteTitle + ": the demo site that ships with scrapedefense.\n" +
		"User-agent: *\n" +
		"Allow: /\n" +
		"Disallow: /private/\n" +
		"Disallow: /search\n" +
		"\n" +
		"Sitemap: " + baseMarker + "/sitemap.xml\n"
	s.docs["/robots.txt"] = newDocument([]byte(robots), docHeader("text/plain; charset=utf-8"), updated)

	// RFC 9116 wants an expiry less than a year ahead; six months from start-up.
	expires := now.UTC().AddDate(0, 6, 0).Truncate(24 * time.Hour)
	security := "Contact: mailto:security@lindenbrook.example\n" +
		"Expires: " + expires.Format(time.RFC3339) + "\n" +
		"Preferred-Languages: en\n" +
		"Canonical: " + baseMarker + "/.well-known/security.txt\n" +
		"Policy: " + baseMarker + "/about#security\n"
	s.docs["/.well-known/security.txt"] = newDocument([]byte(security), docHeader("text/plain; charset=utf-8"), updated)

	for _, d := range []struct {
		path, ctype string
		build       func([]*article, time.Time) any
	}{
		{"/sitemap.xml", "application/xml; charset=utf-8", buildSitemap},
		{"/feed.xml", "application/rss+xml; charset=utf-8", buildRSS},
		{"/atom.xml", "application/atom+xml; charset=utf-8", buildAtom},
	} {
		body, err := xml.MarshalIndent(d.build(s.articles, updated), "", "  ")
		if err != nil {
			return fmt.Errorf("build %s: %w", d.path, err)
		}
		body = append([]byte(xml.Header), append(body, '\n')...)
		s.docs[d.path] = newDocument(body, docHeader(d.ctype), updated)
	}
	return nil
}

type sitemap struct {
	XMLName xml.Name     `xml:"http://www.sitemaps.org/schemas/sitemap/0.9 urlset"`
	URLs    []sitemapURL `xml:"url"`
}

type sitemapURL struct {
	Loc     string `xml:"loc"`
	LastMod string `xml:"lastmod"`
}

// buildSitemap lists the pages robots.txt allows.
func buildSitemap(articles []*article, updated time.Time) any {
	m := sitemap{}
	for _, p := range []string{"/", "/archive", "/about"} {
		m.URLs = append(m.URLs, sitemapURL{baseMarker + p, updated.Format(time.DateOnly)})
	}
	for _, a := range articles {
		m.URLs = append(m.URLs, sitemapURL{baseMarker + "/notes/" + a.Slug, a.Date.Format(time.DateOnly)})
	}
	return m
}

type rss struct {
	XMLName xml.Name   `xml:"rss"`
	Version string     `xml:"version,attr"`
	AtomNS  string     `xml:"xmlns:atom,attr"`
	Channel rssChannel `xml:"channel"`
}

type rssChannel struct {
	Title         string    `xml:"title"`
	Link          string    `xml:"link"`
	Description   string    `xml:"description"`
	Language      string    `xml:"language"`
	LastBuildDate string    `xml:"lastBuildDate"`
	Self          rssSelf   `xml:"atom:link"`
	Items         []rssItem `xml:"item"`
}

type rssSelf struct {
	Href string `xml:"href,attr"`
	Rel  string `xml:"rel,attr"`
	Type string `xml:"type,attr"`
}

type rssItem struct {
	Title       string   `xml:"title"`
	Link        string   `xml:"link"`
	GUID        rssGUID  `xml:"guid"`
	PubDate     string   `xml:"pubDate"`
	Description string   `xml:"description"`
	Categories  []string `xml:"category"`
}

type rssGUID struct {
	IsPermaLink string `xml:"isPermaLink,attr"`
	Value       string `xml:",chardata"`
}

func buildRSS(articles []*article, updated time.Time) any {
	ch := rssChannel{
		Title:         siteTitle,
		Link:          baseMarker + "/",
		Description:   siteDescription,
		Language:      "en",
		LastBuildDate: updated.Format(time.RFC1123Z),
		Self:          rssSelf{Href: baseMarker + "/feed.xml", Rel: "self", Type: "application/rss+xml"},
	}
	for _, a := range articles {
		ch.Items = append(ch.Items, rssItem{
			Title:       a.Title,
			Link:        baseMarker + "/notes/" + a.Slug,
			GUID:        rssGUID{IsPermaLink: "false", Value: entryID(a)},
			PubDate:     a.Date.Format(time.RFC1123Z),
			Description: a.Summary,
			Categories:  a.Tags,
		})
	}
	return rss{Version: "2.0", AtomNS: "http://www.w3.org/2005/Atom", Channel: ch}
}

type atomFeed struct {
	XMLName  xml.Name    `xml:"http://www.w3.org/2005/Atom feed"`
	Title    string      `xml:"title"`
	Subtitle string      `xml:"subtitle"`
	ID       string      `xml:"id"`
	Updated  string      `xml:"updated"`
	Links    []atomLink  `xml:"link"`
	Author   atomAuthor  `xml:"author"`
	Entries  []atomEntry `xml:"entry"`
}

type atomLink struct {
	Href string `xml:"href,attr"`
	Rel  string `xml:"rel,attr"`
	Type string `xml:"type,attr,omitempty"`
}

type atomAuthor struct {
	Name string `xml:"name"`
}

type atomEntry struct {
	Title      string         `xml:"title"`
	ID         string         `xml:"id"`
	Published  string         `xml:"published"`
	Updated    string         `xml:"updated"`
	Link       atomLink       `xml:"link"`
	Summary    string         `xml:"summary"`
	Categories []atomCategory `xml:"category"`
}

type atomCategory struct {
	Term string `xml:"term,attr"`
}

func buildAtom(articles []*article, updated time.Time) any {
	f := atomFeed{
		Title:    siteTitle,
		Subtitle: siteDescription,
		ID:       "tag:lindenbrook.example,2025:notes",
		Updated:  updated.Format(time.RFC3339),
		Links: []atomLink{
			{Href: baseMarker + "/atom.xml", Rel: "self", Type: "application/atom+xml"},
			{Href: baseMarker + "/", Rel: "alternate", Type: "text/html"},
		},
		Author: atomAuthor{Name: "The Lindenbrook naturalist"},
	}
	for _, a := range articles {
		e := atomEntry{
			Title:     a.Title,
			ID:        entryID(a),
			Published: a.Date.Format(time.RFC3339),
			Updated:   a.Date.Format(time.RFC3339),
			Link:      atomLink{Href: baseMarker + "/notes/" + a.Slug, Rel: "alternate", Type: "text/html"},
			Summary:   a.Summary,
		}
		for _, t := range a.Tags {
			e.Categories = append(e.Categories, atomCategory{Term: t})
		}
		f.Entries = append(f.Entries, e)
	}
	return f
}

// entryID is a feed entry's permanent id. It names no host, so it stays the
// same whichever address the site is reached through.
func entryID(a *article) string {
	return "tag:lindenbrook.example," + a.Date.Format(time.DateOnly) + ":notes/" + a.Slug
}
