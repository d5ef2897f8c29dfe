package demosite

import (
	"bytes"
	"hash/fnv"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

const (
	// maxQueryBytes bounds the search query: titles are short, and the query
	// is echoed into the page.
	maxQueryBytes = 100
	// maxQueryTerms bounds the work one search does.
	maxQueryTerms = 8
	// maxHostLen is the longest host (with port) accepted into absolute URLs.
	maxHostLen = 260
	// fallbackHost is used when the request names no usable host.
	fallbackHost = "localhost"
)

// site is the demo site's handler. Everything in it is built once by newSite
// and only read afterwards, so one site serves any number of goroutines.
type site struct {
	articles     []*article
	files        map[string]*resource // exact path → pre-rendered response
	docs         map[string]*document // exact path → response with absolute URLs
	notFound     *resource
	searchPage   *template.Template
	searchHeader http.Header
}

func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	// http.ServeContent handles HEAD, ranges and conditional requests
	// (If-None-Match against the ETag set from the header, If-Modified-Since).
	if res, ok := s.files[p]; ok {
		copyHeader(w.Header(), res.header)
		http.ServeContent(w, r, "", res.modTime, bytes.NewReader(res.body))
		return
	}
	if doc, ok := s.docs[p]; ok {
		s.serveDocument(w, r, doc)
		return
	}
	switch p {
	case "/search":
		s.serveSearch(w, r)
	case "/private":
		http.Redirect(w, r, "/private/", http.StatusMovedPermanently)
	default:
		writeBody(w, r, http.StatusNotFound, s.notFound.header, s.notFound.body)
	}
}

func (s *site) serveDocument(w http.ResponseWriter, r *http.Request, doc *document) {
	base := baseURL(r)
	h := w.Header()
	copyHeader(h, doc.header)
	hash := fnv.New32a()
	hash.Write([]byte(base))
	h.Set("ETag", `"`+doc.etag+"-"+strconv.FormatUint(uint64(hash.Sum32()), 16)+`"`)
	http.ServeContent(w, r, "", doc.modTime, bytes.NewReader(doc.render(base)))
}

func (s *site) serveSearch(w http.ResponseWriter, r *http.Request) {
	query := cleanQuery(r.URL.Query().Get("q"))
	p := page{
		Path:        "/search",
		Title:       "Search",
		Description: "Search the titles and tags of the notes.",
		Robots:      "noindex",
		Query:       query,
		Results:     s.search(query),
	}
	var buf bytes.Buffer
	if err := s.searchPage.ExecuteTemplate(&buf, "layout", p); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	writeBody(w, r, http.StatusOK, s.searchHeader, buf.Bytes())
}

// search returns the articles whose title or tags contain every term of
// query, ignoring case. An empty query matches nothing.
func (s *site) search(query string) []*article {
	terms := strings.Fields(strings.ToLower(query))
	if len(terms) == 0 {
		return nil
	}
	if len(terms) > maxQueryTerms {
		terms = terms[:maxQueryTerms]
	}
	var out []*article
next:
	for _, a := range s.articles {
		for _, t := range terms {
			if !strings.Contains(a.searchText, t) {
				continue next
			}
		}
		out = append(out, a)
	}
	return out
}

// cleanQuery makes a raw query safe to search and echo: valid UTF-8, trimmed,
// and at most maxQueryBytes long, cut on a rune boundary.
func cleanQuery(q string) string {
	q = strings.TrimSpace(strings.ToValidUTF8(q, ""))
	if len(q) <= maxQueryBytes {
		return q
	}
	cut := maxQueryBytes
	for cut > 0 && !utf8.RuneStart(q[cut]) {
		cut--
	}
	return strings.TrimSpace(q[:cut])
}

// writeBody answers with status and body, without conditional handling: for
// responses (404, search) that are not worth revalidating.
func writeBody(w http.ResponseWriter, r *http.Request, status int, header http.Header, body []byte) {
	h := w.Header()
	copyHeader(h, header)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body) // the client went away; nothing to do
	}
}

// copyHeader sets every field of src on dst. The value slices are shared, not
// copied: net/http replaces or appends to header values, never writes into them.
func copyHeader(dst, src http.Header) {
	for k, v := range src {
		dst[k] = v
	}
}

// baseURL is the scheme and host that absolute URLs (feeds, sitemap,
// robots.txt) should name. The site is meant to run behind the edge on a
// loopback address, so it trusts X-Forwarded-Host and X-Forwarded-Proto,
// which the edge sets; anything that could break out of a URL's authority
// falls back to a harmless default.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := firstValue(r.Header.Get("X-Forwarded-Proto")); strings.EqualFold(p, "https") {
		scheme = "https"
	} else if strings.EqualFold(p, "http") {
		scheme = "http"
	}
	host := r.Host
	if fh := firstValue(r.Header.Get("X-Forwarded-Host")); fh != "" {
		host = fh
	}
	if !validHost(host) {
		host = fallbackHost
	}
	return scheme + "://" + host
}

// firstValue returns the first element of a comma-separated header value.
func firstValue(v string) string {
	if i := strings.IndexByte(v, ','); i >= 0 {
		v = v[:i]
	}
	return strings.TrimSpace(v)
}

// validHost accepts host names, IPv4 and bracketed IPv6 addresses with an
// optional port: only characters that cannot end a URL's authority or need
// escaping in XML.
func validHost(h string) bool {
	if h == "" || len(h) > maxHostLen {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '-', c == '_', c == ':', c == '[', c == ']':
		default:
			return false
		}
	}
	return true
}
