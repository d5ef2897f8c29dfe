package challenge

import (
	"net/http"
	"strings"
)

// Paths every client may fetch without a challenge: crawlers must read the
// rules, browsers fetch icons without cookies, and /.well-known/ serves ACME,
// security.txt and friends. They match the policy's well-known-paths rule.
var exemptPrefixes = []string{
	"/robots.txt",
	"/favicon.",
	"/apple-touch-icon",
	"/.well-known/",
	"/sitemap.xml",
	"/ads.txt",
	"/humans.txt",
	Prefix,
}

// feedNames are last path segments that name a feed.
var feedNames = []string{"feed", "feed.xml", "rss", "rss.xml", "atom", "atom.xml", "index.xml", "feed.json"}

// feedTypes are media types of feeds in an Accept header.
var feedTypes = []string{"application/rss+xml", "application/atom+xml", "application/feed+json"}

// Exempt reports whether r must never be challenged: the well-known files,
// feeds (by path or by an Accept header asking for a feed type), the
// configured ExemptPaths, and the package's own endpoints. It does not
// allocate.
func (s *Service) Exempt(r *http.Request) bool {
	p := r.URL.Path
	for _, prefix := range exemptPrefixes {
		if hasPrefixFold(p, prefix) {
			return true
		}
	}
	for _, prefix := range s.cfg.ExemptPaths {
		if strings.HasPrefix(p, prefix) {
			return true
		}
	}
	return isFeedPath(p) || acceptsFeed(r.Header.Get("Accept"))
}

func isFeedPath(p string) bool {
	p = strings.TrimSuffix(p, "/")
	last := p[strings.LastIndexByte(p, '/')+1:]
	if hasSuffixFold(last, ".rss") || hasSuffixFold(last, ".atom") {
		return true
	}
	for _, name := range feedNames {
		if strings.EqualFold(last, name) {
			return true
		}
	}
	return false
}

// acceptsFeed reports whether an Accept header asks for a feed type. Feed
// readers ask for these; browsers navigating to a page never do.
func acceptsFeed(accept string) bool {
	// Every feed type has a '+': look only there, so that the long Accept
	// header of an ordinary browser request costs one byte scan.
	for {
		i := strings.IndexByte(accept, '+')
		if i < 0 {
			return false
		}
		for _, t := range feedTypes {
			plus := strings.IndexByte(t, '+')
			if i >= plus && len(accept)-i >= len(t)-plus && strings.EqualFold(accept[i-plus:i-plus+len(t)], t) {
				return true
			}
		}
		accept = accept[i+1:]
	}
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// isSubresource reports whether r is not a top-level navigation: an image,
// script, fetch or the like. Such requests get a short refusal instead of a
// challenge page (they could not show it), and never touch cookies.
// Sec-Fetch-Dest is authoritative when present; otherwise an Accept header
// that names neither HTML nor everything marks a subresource. A client
// without Accept (an HTTP library) is treated as navigating, so it sees the
// challenge page.
func isSubresource(r *http.Request) bool {
	if dest := r.Header.Get("Sec-Fetch-Dest"); dest != "" {
		switch dest {
		case "document", "iframe", "frame":
			return false
		}
		return true
	}
	accept := r.Header.Get("Accept")
	if accept == "" {
		return false
	}
	return !containsFold(accept, "text/html") && !strings.Contains(accept, "*/*")
}
