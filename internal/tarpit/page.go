package tarpit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"html"
	"html/template"
	"strconv"
	"strings"
	"sync"
)

// GeneratorOptions configure a Generator.
type GeneratorOptions struct {
	// Prefix is the maze's URL prefix, with leading and trailing slashes.
	Prefix string
	// Seed keys the per-URL hash: instances with the same seed serve the
	// same page for the same URL.
	Seed []byte
	// Links is the number of links deeper into the maze per page.
	Links int
	// Paragraphs is the number of paragraphs per page.
	Paragraphs int
	// Layout, if set, wraps the generated content (see ParseLayout).
	Layout *Layout
}

// Generator writes deterministic maze pages and decoy assets. It is safe
// for concurrent use.
type Generator struct {
	m          *Model
	esc        []byte   // HTML-escaped words, one arena
	escOff     []uint32 // len words+1
	slug       []byte   // lower-case ASCII words fit for URLs and data files
	slugOff    []uint32
	prefix     string
	links      int
	paragraphs int
	layout     *Layout
	macs       sync.Pool // *keyedHash
}

type keyedHash struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

// maxLinkDepth bounds how deep generated links go below the prefix; past it
// links start again near the top, so URLs stay short while the maze stays
// endless.
const maxLinkDepth = 6

// NewGenerator prepares a generator for model m.
func NewGenerator(m *Model, o GeneratorOptions) (*Generator, error) {
	if m == nil {
		return nil, errors.New("tarpit: nil model")
	}
	if !strings.HasPrefix(o.Prefix, "/") || !strings.HasSuffix(o.Prefix, "/") {
		return nil, fmt.Errorf("tarpit: prefix %q must start and end with /", o.Prefix)
	}
	if len(o.Seed) == 0 {
		return nil, errors.New("tarpit: empty seed")
	}
	g := &Generator{m: m, prefix: o.Prefix, links: max(o.Links, 0), paragraphs: max(o.Paragraphs, 1), layout: o.Layout}
	key := bytes.Clone(o.Seed)
	g.macs.New = func() any { return &keyedHash{h: hmac.New(sha256.New, key)} }
	g.escOff = make([]uint32, 1, m.Words()+1)
	g.slugOff = []uint32{0}
	for id := range uint32(m.Words()) {
		w := m.word(id)
		g.esc = append(g.esc, html.EscapeString(string(w))...)
		g.escOff = append(g.escOff, uint32(len(g.esc)))
		if s, ok := slugWord(w); ok {
			g.slug = append(g.slug, s...)
			g.slugOff = append(g.slugOff, uint32(len(g.slug)))
		}
	}
	if len(g.slugOff) < 2 {
		g.slug = append(g.slug, "page"...)
		g.slugOff = append(g.slugOff, uint32(len(g.slug)))
	}
	return g, nil
}

// slugWord returns w lower-cased if it is 3 to 12 ASCII letters, with one
// trailing punctuation mark allowed and dropped.
func slugWord(w []byte) ([]byte, bool) {
	if n := len(w); n > 0 && (w[n-1] == '.' || w[n-1] == ',' || w[n-1] == ';' || w[n-1] == ':') {
		w = w[:n-1]
	}
	if len(w) < 3 || len(w) > 12 {
		return nil, false
	}
	out := make([]byte, len(w))
	for i, c := range w {
		switch {
		case 'a' <= c && c <= 'z':
			out[i] = c
		case 'A' <= c && c <= 'Z':
			out[i] = c + 'a' - 'A'
		default:
			return nil, false
		}
	}
	return out, true
}

// Seed returns the page seed for a URL: a keyed hash of host and path.
func (g *Generator) Seed(host, path string) uint64 {
	k := g.macs.Get().(*keyedHash)
	k.h.Reset()
	for i := 0; i < len(host); i++ { // lower-case without allocating
		c := host[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		k.sum[0] = c
		k.h.Write(k.sum[:1])
	}
	k.sum[0] = 0
	k.h.Write(k.sum[:1])
	k.h.Write(unsafeBytes(path))
	s := binary.LittleEndian.Uint64(k.h.Sum(k.sum[:0]))
	g.macs.Put(k)
	return s
}

func (g *Generator) escWord(id uint32) []byte { return g.esc[g.escOff[id]:g.escOff[id+1]] }

func (g *Generator) slugAt(i int) []byte { return g.slug[g.slugOff[i]:g.slugOff[i+1]] }

func (g *Generator) randSlug(r *rng) []byte { return g.slugAt(r.intn(len(g.slugOff) - 1)) }

// appendSentence writes one sentence of 4 to 40 words.
func (g *Generator) appendSentence(dst []byte, r *rng) []byte {
	st := g.m.starts[r.intn(len(g.m.starts))]
	w := g.m.stateW2[st]
	dst = append(dst, g.escWord(w)...)
	for n := 1; ; n++ {
		if n >= 4 && endsSentence(g.m.word(w)) {
			return dst
		}
		if n >= 40 {
			return append(dst, '.')
		}
		w, st = g.m.next(st, r.next())
		dst = append(dst, ' ')
		dst = append(dst, g.escWord(w)...)
	}
}

// appendPhrase writes lo..hi words without sentence punctuation at the
// end (titles, headings, link text).
func (g *Generator) appendPhrase(dst []byte, r *rng, lo, hi int) []byte {
	st := g.m.starts[r.intn(len(g.m.starts))]
	w := g.m.stateW2[st]
	n := r.between(lo, hi)
	for i := 0; ; i++ {
		word := g.escWord(w)
		if i == n-1 {
			for len(word) > 1 && strings.IndexByte(".,;:!?", word[len(word)-1]) >= 0 {
				word = word[:len(word)-1]
			}
		}
		dst = append(dst, word...)
		if i == n-1 {
			return dst
		}
		dst = append(dst, ' ')
		w, st = g.m.next(st, r.next())
	}
}

// appendLink writes the URL of a page deeper into the maze below dir.
func (g *Generator) appendLink(dst []byte, r *rng, dir string, ext string) []byte {
	dst = append(dst, dir...)
	dst = append(dst, g.randSlug(r)...)
	if r.intn(2) == 0 {
		dst = append(dst, '-')
		dst = append(dst, g.randSlug(r)...)
	}
	dst = append(dst, '/')
	n := r.between(2, 4)
	for i := range n {
		if i > 0 {
			dst = append(dst, '-')
		}
		dst = append(dst, g.randSlug(r)...)
	}
	return append(dst, ext...)
}

// linkDir is the directory new links hang below: the page's own directory
// inside the maze, or the prefix when the page is outside it or too deep.
func (g *Generator) linkDir(path string) string {
	if !strings.HasPrefix(path, g.prefix) {
		return g.prefix
	}
	dir := path[:strings.LastIndexByte(path, '/')+1]
	if strings.Count(dir[len(g.prefix):], "/") >= maxLinkDepth {
		return g.prefix
	}
	return dir
}

// AppendPage appends the maze page for host and path to dst. The same
// arguments give the same bytes for generators built from the same model,
// options and seed.
func (g *Generator) AppendPage(dst []byte, host, path string) []byte {
	r := rng{s: g.Seed(host, path)}
	dir := g.linkDir(path)
	titleStart := len(dst)
	dst = g.appendPhrase(dst, &r, 3, 7)
	if len(dst) > titleStart && 'a' <= dst[titleStart] && dst[titleStart] <= 'z' {
		dst[titleStart] -= 'a' - 'A'
	}
	// The title is generated first and copied: remember it by position.
	title := len(dst) - titleStart
	if g.layout == nil {
		dst = append(dst, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>"...)
		dst = append(dst, dst[titleStart:titleStart+title]...)
		dst = append(dst, "</title>\n<link rel=\"alternate\" type=\"application/json\" href=\""...)
		dst = g.appendLink(dst, &r, dir, ".json")
		dst = append(dst, "\">\n</head>\n<body>\n"...)
		dst = g.appendContent(dst, &r, dir, titleStart, title)
		dst = append(dst, "</body>\n</html>\n"...)
		// Drop the title scratch copy at the front.
		n := copy(dst[titleStart:], dst[titleStart+title:])
		return dst[:titleStart+n]
	}
	for _, seg := range g.layout.segs {
		switch seg.slot {
		case slotTitle:
			dst = append(dst, dst[titleStart:titleStart+title]...)
		case slotContent:
			dst = g.appendContent(dst, &r, dir, titleStart, title)
		default:
			dst = append(dst, seg.text...)
		}
	}
	n := copy(dst[titleStart:], dst[titleStart+title:])
	return dst[:titleStart+n]
}

// appendContent writes the body: navigation first (so that a crawler
// reading a slow, partial page finds links early), then the article.
func (g *Generator) appendContent(dst []byte, r *rng, dir string, titleStart, title int) []byte {
	navLinks := min(g.links, 5)
	dst = append(dst, "<header>\n<nav>\n"...)
	for range navLinks {
		dst = append(dst, "<a href=\""...)
		dst = g.appendLink(dst, r, g.prefix, ".html")
		dst = append(dst, "\">"...)
		dst = g.appendPhrase(dst, r, 2, 4)
		dst = append(dst, "</a>\n"...)
	}
	dst = append(dst, "</nav>\n</header>\n<main>\n<article>\n<h1>"...)
	dst = append(dst, dst[titleStart:titleStart+title]...)
	dst = append(dst, "</h1>\n"...)
	listed := (g.links - navLinks) / 3 // in a list at the end
	inline := g.links - navLinks - listed
	for p := range g.paragraphs {
		if p > 0 && p%3 == 0 {
			dst = append(dst, "<h2>"...)
			dst = g.appendPhrase(dst, r, 2, 6)
			dst = append(dst, "</h2>\n"...)
		}
		dst = append(dst, "<p>"...)
		sentences := r.between(3, 6)
		for s := range sentences {
			if s > 0 {
				dst = append(dst, ' ')
			}
			if inline > 0 && r.intn(g.paragraphs) < g.links {
				inline--
				dst = append(dst, "<a href=\""...)
				dst = g.appendLink(dst, r, dir, ".html")
				dst = append(dst, "\">"...)
				dst = g.appendPhrase(dst, r, 2, 4)
				dst = append(dst, "</a>. "...)
			}
			dst = g.appendSentence(dst, r)
		}
		dst = append(dst, "</p>\n"...)
	}
	if rest := listed + inline; rest > 0 { // inline links not placed go to the list too
		dst = append(dst, "<h2>Related</h2>\n<ul>\n"...)
		for range rest {
			dst = append(dst, "<li><a href=\""...)
			dst = g.appendLink(dst, r, dir, ".html")
			dst = append(dst, "\">"...)
			dst = g.appendPhrase(dst, r, 2, 5)
			dst = append(dst, "</a></li>\n"...)
		}
		dst = append(dst, "</ul>\n"...)
	}
	dst = append(dst, "</article>\n</main>\n<footer>\n<p>"...)
	dst = g.appendSentence(dst, r)
	dst = append(dst, " <a href=\""...)
	dst = g.appendLink(dst, r, dir, ".csv")
	dst = append(dst, "\">Data (CSV)</a></p>\n</footer>\n<script src=\""...)
	dst = g.appendLink(dst, r, g.prefix, ".js")
	return append(dst, "\" defer></script>\n"...)
}

// AssetKind is the type of a decoy asset.
type AssetKind uint8

// Asset kinds; AssetNone is a page.
const (
	AssetNone AssetKind = iota
	AssetJS
	AssetJSON
	AssetCSV
)

// ContentType returns the Content-Type header of the asset kind.
func (k AssetKind) ContentType() string {
	switch k {
	case AssetJS:
		return "text/javascript; charset=utf-8"
	case AssetJSON:
		return "application/json"
	case AssetCSV:
		return "text/csv; charset=utf-8"
	}
	return "text/html; charset=utf-8"
}

// AppendAsset appends the deterministic decoy asset for host and path.
func (g *Generator) AppendAsset(dst []byte, kind AssetKind, host, path string) []byte {
	r := rng{s: g.Seed(host, path)}
	rows := r.between(40, 120)
	switch kind {
	case AssetJS:
		dst = append(dst, "/*! "...)
		dst = g.appendSlugs(dst, &r, 2, ' ')
		dst = append(dst, " v"...)
		dst = strconv.AppendInt(dst, int64(r.between(1, 9)), 10)
		dst = append(dst, '.')
		dst = strconv.AppendInt(dst, int64(r.between(0, 40)), 10)
		dst = append(dst, " */\n(function () {\n  \"use strict\";\n  var table = ["...)
		for i := range rows {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			dst = strconv.AppendInt(dst, int64(r.intn(1<<16)), 10)
		}
		dst = append(dst, "];\n  var endpoint = \""...)
		dst = g.appendLink(dst, &r, g.prefix, ".json")
		dst = append(dst, "\";\n  function "...)
		dst = g.appendSlugs(dst, &r, 2, '_')
		dst = append(dst, "(x) {\n    return table[x % table.length] ^ "...)
		dst = strconv.AppendInt(dst, int64(r.intn(1<<16)), 10)
		dst = append(dst, ";\n  }\n  window.addEventListener(\"load\", function () {\n    fetch(endpoint).then(function (r) { return r.json(); });\n  });\n})();\n"...)
	case AssetJSON:
		dst = append(dst, "{\"name\":\""...)
		dst = g.appendSlugs(dst, &r, 3, '-')
		dst = append(dst, "\",\"version\":"...)
		dst = strconv.AppendInt(dst, int64(r.between(1, 30)), 10)
		dst = append(dst, ",\"items\":["...)
		for i := range rows {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, "{\"id\":"...)
			dst = strconv.AppendInt(dst, int64(1000+i*r.between(1, 9)), 10)
			dst = append(dst, ",\"title\":\""...)
			dst = g.appendSlugs(dst, &r, 3, ' ')
			dst = append(dst, "\",\"score\":"...)
			dst = strconv.AppendInt(dst, int64(r.intn(100)), 10)
			dst = append(dst, '.')
			dst = strconv.AppendInt(dst, int64(r.between(10, 99)), 10)
			dst = append(dst, ",\"url\":\""...)
			dst = g.appendLink(dst, &r, g.prefix, ".html")
			dst = append(dst, "\"}"...)
		}
		dst = append(dst, "]}\n"...)
	case AssetCSV:
		dst = append(dst, "id,name,category,value,year\n"...)
		for i := range rows {
			dst = strconv.AppendInt(dst, int64(i+1), 10)
			dst = append(dst, ',')
			dst = g.appendSlugs(dst, &r, 2, ' ')
			dst = append(dst, ',')
			dst = append(dst, g.randSlug(&r)...)
			dst = append(dst, ',')
			dst = strconv.AppendInt(dst, int64(r.intn(100000)), 10)
			dst = append(dst, ',')
			dst = strconv.AppendInt(dst, int64(r.between(1990, 2025)), 10)
			dst = append(dst, '\n')
		}
	}
	return dst
}

func (g *Generator) appendSlugs(dst []byte, r *rng, n int, sep byte) []byte {
	for i := range n {
		if i > 0 {
			dst = append(dst, sep)
		}
		dst = append(dst, g.randSlug(r)...)
	}
	return dst
}

// Layout is an operator's page template with the generated title and
// content slotted in. It is executed once at load with markers, so that
// serving a page is a few appends, not a template execution.
type Layout struct{ segs []segment }

type slot uint8

const (
	slotNone slot = iota
	slotTitle
	slotContent
)

type segment struct {
	text []byte
	slot slot
}

// Markers stand in for the slots when the template is executed once; they
// are plain letters so that html/template leaves them untouched in any
// text or attribute context.
const (
	titleMarker   = "SDTARPITxTITLEx7f3e9a"
	contentMarker = "SDTARPITxCONTENTx7f3e9a"
)

// ParseLayout parses an html/template with the fields {{.Title}} and
// {{.Content}}; Content must appear exactly once.
func ParseLayout(text string) (*Layout, error) {
	t, err := template.New("layout").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("tarpit: layout: %w", err)
	}
	var buf bytes.Buffer
	err = t.Execute(&buf, struct {
		Title   string
		Content template.HTML
	}{titleMarker, template.HTML(contentMarker)})
	if err != nil {
		return nil, fmt.Errorf("tarpit: layout: %w", err)
	}
	out := buf.String()
	if strings.Count(out, contentMarker) != 1 {
		return nil, errors.New("tarpit: layout must use {{.Content}} exactly once, in HTML text")
	}
	l := &Layout{}
	for len(out) > 0 {
		ti, ci := strings.Index(out, titleMarker), strings.Index(out, contentMarker)
		switch {
		case ti < 0 && ci < 0:
			l.segs = append(l.segs, segment{text: []byte(out)})
			out = ""
		case ci < 0 || ti >= 0 && ti < ci:
			l.segs = append(l.segs, segment{text: []byte(out[:ti])}, segment{slot: slotTitle})
			out = out[ti+len(titleMarker):]
		default:
			l.segs = append(l.segs, segment{text: []byte(out[:ci])}, segment{slot: slotContent})
			out = out[ci+len(contentMarker):]
		}
	}
	return l, nil
}
