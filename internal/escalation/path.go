package escalation

import (
	"strings"

	"github.com/scrapedefense/scrapedefense/internal/events"
)

type requestClass uint8

const (
	classOther requestClass = iota // a signal event, not a request
	classPage
	classAsset
)

// assetExtensions are lower-case file extensions of page sub-resources.
var assetExtensions = []string{
	".css", ".js", ".mjs", ".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp",
	".avif", ".ico", ".woff", ".woff2", ".ttf", ".otf", ".map", ".mp4",
	".webm", ".mp3", ".json", ".webmanifest",
}

// classify tells pages from assets. Sec-Fetch-Dest is authoritative when
// present (browsers set it on every request); then the extension; then
// Accept.
func classify(ev *events.Event) requestClass {
	if ev.Kind != "" && ev.Kind != events.KindRequest {
		return classOther
	}
	switch ev.Headers["Sec-Fetch-Dest"] {
	case "document", "iframe", "frame":
		return classPage
	case "":
	default: // style, script, image, font, empty (fetch/XHR), …
		return classAsset
	}
	p := stripQuery(ev.Path)
	if dot := strings.LastIndexByte(p, '.'); dot >= 0 && dot > strings.LastIndexByte(p, '/') {
		ext := p[dot:]
		for _, a := range assetExtensions {
			if len(ext) == len(a) && indexFold(ext, a) == 0 {
				return classAsset
			}
		}
	}
	accept := ev.Headers["Accept"]
	if strings.HasPrefix(accept, "text/css") || strings.HasPrefix(accept, "image/") {
		return classAsset
	}
	return classPage
}

func stripQuery(p string) string {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		return p[:i]
	}
	return p
}

// Path templates collapse what varies between pages of one kind, so that
// the navigation model learns "article → article" rather than one
// transition per URL.
const maxTemplateDepth = 4

// templateHash returns a non-zero hash of p's template: at most
// maxTemplateDepth segments; numbers, hex ids, UUIDs and long slugs replaced
// by placeholders; digit runs inside a segment collapsed.
func templateHash(p string) uint32 {
	p = stripQuery(p)
	h := uint32(fnvOffset32)
	depth := 0
	for len(p) > 0 {
		for len(p) > 0 && p[0] == '/' {
			p = p[1:]
		}
		if len(p) == 0 {
			break
		}
		end := strings.IndexByte(p, '/')
		if end < 0 {
			end = len(p)
		}
		seg := p[:end]
		p = p[end:]
		if depth == maxTemplateDepth {
			h = fnvString32(h, "/…")
			break
		}
		depth++
		h = fnvByte32(h, '/')
		switch {
		case isIDSegment(seg):
			h = fnvString32(h, "{id}")
		case len(seg) > 24 || (len(seg) > 12 && strings.ContainsAny(seg, "-_")):
			h = fnvString32(h, "{slug}")
		default:
			digits := false
			for i := 0; i < len(seg); i++ {
				c := lower(seg[i])
				if '0' <= c && c <= '9' {
					if !digits {
						h = fnvByte32(h, '#')
					}
					digits = true
					continue
				}
				digits = false
				h = fnvByte32(h, c)
			}
		}
	}
	if h == 0 {
		h = 1
	}
	return h
}

// isIDSegment reports whether seg is a number, a hex hash (8+ characters) or
// a UUID.
func isIDSegment(seg string) bool {
	if seg == "" {
		return false
	}
	digits, hex := true, len(seg) >= 8
	for i := 0; i < len(seg); i++ {
		c := lower(seg[i])
		isDigit := '0' <= c && c <= '9'
		if !isDigit {
			digits = false
		}
		if !isDigit && !('a' <= c && c <= 'f') && c != '-' {
			hex = false
		}
	}
	return digits || hex
}

const (
	fnvOffset32 = 2166136261
	fnvPrime32  = 16777619
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

func fnvByte32(h uint32, c byte) uint32 { return (h ^ uint32(c)) * fnvPrime32 }

func fnvString32(h uint32, s string) uint32 {
	for i := 0; i < len(s); i++ {
		h = fnvByte32(h, s[i])
	}
	return h
}

func fnvString64(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * fnvPrime64
	}
	return h
}
