package main

import (
	"bytes"
	"net/url"
	"strings"
)

// assetKind is what a browser fetches a subresource as; it decides the
// Sec-Fetch-Dest and Accept headers.
type assetKind uint8

const (
	assetStyle assetKind = iota
	assetScript
	assetImage
)

// pageLink is an <a href> found in a page.
type pageLink struct {
	Path     string
	Hidden   bool // a person cannot see or reach it: a trap
	Nofollow bool
}

// pageAsset is a subresource a browser loads with the page.
type pageAsset struct {
	Path string
	Kind assetKind
}

// parsedPage is what the simulator learns from one HTML document.
type parsedPage struct {
	Links  []pageLink
	Assets []pageAsset
	Feeds  []string // <link rel=alternate> RSS/Atom feeds
	Words  []string // words of the visible text, for search queries
}

// Bounds on what one page may contribute, since pages come from outside.
const (
	maxLinksPerPage  = 500
	maxAssetsPerPage = 100
	maxWordsPerPage  = 200
	maxTagLen        = 8 << 10
)

// parsePage extracts same-site links, assets and feeds from an HTML body.
// base is the page's own path. It is a small tag scanner rather than a full
// HTML parser: it needs only start tags, their attributes, and enough
// nesting to know when a link sits inside a hidden container.
func parsePage(body []byte, base string) parsedPage {
	var p parsedPage
	baseURL, err := url.Parse(base)
	if err != nil {
		baseURL = &url.URL{Path: "/"}
	}
	var hiddenStack []string // names of open hidden containers
	seenWords := make(map[string]bool)
	i := 0
	for i < len(body) {
		lt := bytes.IndexByte(body[i:], '<')
		if lt < 0 {
			p.addWords(body[i:], seenWords)
			break
		}
		p.addWords(body[i:i+lt], seenWords)
		i += lt
		if bytes.HasPrefix(body[i:], []byte("<!--")) {
			end := bytes.Index(body[i+4:], []byte("-->"))
			if end < 0 {
				break
			}
			i += 4 + end + 3
			continue
		}
		name, attrs, next := scanTag(body, i)
		if next <= i {
			i++
			continue
		}
		i = next
		closing := strings.HasPrefix(name, "/")
		name = strings.TrimPrefix(name, "/")
		if name == "script" || name == "style" {
			if !closing {
				// Skip raw text so that "<" inside scripts is not a tag.
				end := indexFold(body[i:], "</"+name)
				if name == "script" {
					p.addAsset(attrs["src"], assetScript, baseURL)
				}
				if end < 0 {
					break
				}
				i += end
			}
			continue
		}
		if closing {
			if n := len(hiddenStack); n > 0 && hiddenStack[n-1] == name {
				hiddenStack = hiddenStack[:n-1]
			}
			continue
		}
		hidden := isHidden(attrs)
		switch name {
		case "a":
			if href, ok := attrs["href"]; ok {
				if path, ok := resolve(baseURL, href); ok && len(p.Links) < maxLinksPerPage {
					p.Links = append(p.Links, pageLink{
						Path:     path,
						Hidden:   hidden || len(hiddenStack) > 0,
						Nofollow: hasToken(attrs["rel"], "nofollow"),
					})
				}
			}
		case "link":
			rel := attrs["rel"]
			switch {
			case hasToken(rel, "stylesheet"):
				p.addAsset(attrs["href"], assetStyle, baseURL)
			case hasToken(rel, "icon"):
				p.addAsset(attrs["href"], assetImage, baseURL)
			case hasToken(rel, "alternate"):
				t := attrs["type"]
				if strings.Contains(t, "rss") || strings.Contains(t, "atom") {
					if path, ok := resolve(baseURL, attrs["href"]); ok && len(p.Feeds) < maxAssetsPerPage {
						p.Feeds = append(p.Feeds, path)
					}
				}
			}
		case "img":
			p.addAsset(attrs["src"], assetImage, baseURL)
		}
		if hidden && !voidElement(name) && !strings.HasSuffix(strings.TrimSpace(attrs["/"]), "/") {
			hiddenStack = append(hiddenStack, name)
			if len(hiddenStack) > 64 {
				hiddenStack = hiddenStack[1:]
			}
		}
	}
	return p
}

func (p *parsedPage) addAsset(ref string, kind assetKind, base *url.URL) {
	if ref == "" || len(p.Assets) >= maxAssetsPerPage {
		return
	}
	if path, ok := resolve(base, ref); ok {
		for _, a := range p.Assets {
			if a.Path == path {
				return
			}
		}
		p.Assets = append(p.Assets, pageAsset{Path: path, Kind: kind})
	}
}

func (p *parsedPage) addWords(text []byte, seen map[string]bool) {
	for _, w := range bytes.FieldsFunc(text, func(r rune) bool { return r < 'A' || (r > 'Z' && r < 'a') || r > 'z' }) {
		if len(p.Words) >= maxWordsPerPage {
			return
		}
		if len(w) < 4 || len(w) > 20 {
			continue
		}
		s := strings.ToLower(string(w))
		if !seen[s] {
			seen[s] = true
			p.Words = append(p.Words, s)
		}
	}
}

// scanTag reads the tag starting at body[start] == '<'. It returns the
// lower-cased name (with a leading "/" for end tags), the attributes, and
// the index after '>'; next <= start when there is no tag there.
func scanTag(body []byte, start int) (name string, attrs map[string]string, next int) {
	i := start + 1
	limit := min(len(body), start+maxTagLen)
	n := i
	if n < limit && body[n] == '/' {
		n++
	}
	for n < limit && isNameByte(body[n]) {
		n++
	}
	if n == i || (n == i+1 && body[i] == '/') {
		return "", nil, start
	}
	name = strings.ToLower(string(body[i:n]))
	attrs = make(map[string]string)
	i = n
	for i < limit {
		for i < limit && isSpace(body[i]) {
			i++
		}
		if i >= limit {
			break
		}
		if body[i] == '>' {
			return name, attrs, i + 1
		}
		if body[i] == '/' {
			attrs["/"] = "/"
			i++
			continue
		}
		k := i
		for i < limit && !isSpace(body[i]) && body[i] != '=' && body[i] != '>' && body[i] != '/' {
			i++
		}
		key := strings.ToLower(string(body[k:i]))
		if i == k { // a stray byte such as a lone quote
			i++
			continue
		}
		for i < limit && isSpace(body[i]) {
			i++
		}
		val := ""
		if i < limit && body[i] == '=' {
			i++
			for i < limit && isSpace(body[i]) {
				i++
			}
			if i < limit && (body[i] == '"' || body[i] == '\'') {
				q := body[i]
				end := bytes.IndexByte(body[i+1:limit], q)
				if end < 0 {
					return "", nil, start
				}
				val = string(body[i+1 : i+1+end])
				i += end + 2
			} else {
				v := i
				for i < limit && !isSpace(body[i]) && body[i] != '>' {
					i++
				}
				val = string(body[v:i])
			}
		}
		if _, dup := attrs[key]; !dup && len(attrs) < 64 {
			attrs[key] = unescapeAttr(val)
		}
	}
	return "", nil, start
}

func unescapeAttr(s string) string {
	if !strings.Contains(s, "&") {
		return s
	}
	return strings.NewReplacer("&amp;", "&", "&quot;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">").Replace(s)
}

// isHidden reports whether an element is invisible to a person: the HTML
// hidden attribute, aria-hidden, or inline styles that hide it or move it
// off screen.
func isHidden(attrs map[string]string) bool {
	if _, ok := attrs["hidden"]; ok {
		return true
	}
	if strings.EqualFold(attrs["aria-hidden"], "true") {
		return true
	}
	style := strings.ToLower(strings.ReplaceAll(attrs["style"], " ", ""))
	for _, s := range []string{"display:none", "visibility:hidden", "left:-", "top:-", "opacity:0;", "height:0", "width:0"} {
		if strings.Contains(style+";", s) {
			return true
		}
	}
	return false
}

// resolve turns href into a same-site path with query, or false for other
// sites, other schemes, and fragments of the same page.
func resolve(base *url.URL, href string) (string, bool) {
	href = strings.TrimSpace(href)
	if href == "" || strings.HasPrefix(href, "#") {
		return "", false
	}
	u, err := url.Parse(href)
	if err != nil {
		return "", false
	}
	if u.Scheme != "" && u.Scheme != "http" && u.Scheme != "https" {
		return "", false
	}
	if u.Host != "" && base.Host != "" && !strings.EqualFold(u.Host, base.Host) {
		return "", false
	}
	if u.Host != "" && base.Host == "" {
		return "", false
	}
	r := base.ResolveReference(u)
	r.Fragment = ""
	path := r.EscapedPath()
	if path == "" {
		path = "/"
	}
	if r.RawQuery != "" {
		path += "?" + r.RawQuery
	}
	return path, true
}

func hasToken(list, tok string) bool {
	for _, f := range strings.Fields(list) {
		if strings.EqualFold(f, tok) {
			return true
		}
	}
	return false
}

func voidElement(name string) bool {
	switch name {
	case "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr":
		return true
	}
	return false
}

func isNameByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-'
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '\f' }

// indexFold is a case-insensitive bytes.Index for an ASCII needle.
func indexFold(s []byte, needle string) int {
	n, nb := len(needle), []byte(needle)
	for i := 0; i+n <= len(s); i++ {
		if bytes.EqualFold(s[i:i+n], nb) {
			return i
		}
	}
	return -1
}
