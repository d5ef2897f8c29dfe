package robots

import (
	"bytes"
	"strings"
)

// MaxSize is how much of a robots.txt is read: RFC 9309 §2.5 asks crawlers
// to parse at least 500 KiB. Content past it is ignored, and so is the
// line the limit cuts through.
const MaxSize = 500 << 10

// maxTokenLen bounds the product tokens that can match; longer ones in a
// file are kept as groups that no user agent selects. (Below 64, so that a
// length fits the uint64 length filter.)
const maxTokenLen = 63

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// limit strips a byte order mark and cuts data to MaxSize, dropping the
// line the limit falls in unless the limit is exactly at its end.
func limit(data []byte) (out []byte, truncated bool) {
	data = bytes.TrimPrefix(data, utf8BOM)
	if len(data) <= MaxSize {
		return data, false
	}
	if c := data[MaxSize]; c == '\n' || c == '\r' {
		return data[:MaxSize], true
	}
	cut := data[:MaxSize]
	i := bytes.LastIndexAny(cut, "\r\n")
	return cut[:i+1], true // i == -1 leaves nothing
}

// eachLine calls fn with every line of data, without its terminator. CR,
// LF and CRLF all end a line.
func eachLine(data []byte, fn func(line []byte)) {
	for len(data) > 0 {
		i := bytes.IndexAny(data, "\r\n")
		if i < 0 {
			fn(data)
			return
		}
		fn(data[:i])
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
}

// lineKind is what a robots.txt line is.
type lineKind uint8

const (
	lineEmpty     lineKind = iota // blank or only a comment
	lineUserAgent                 // user-agent
	lineAllow                     // allow
	lineDisallow                  // disallow
	lineSitemap                   // sitemap
	lineOther                     // a directive this parser does not use, or garbage
)

// directives maps the lower-cased keys this parser understands, including
// the misspellings that are common in the wild and that Google's parser
// also accepts, to their kinds.
var directives = map[string]lineKind{
	"user-agent": lineUserAgent,
	"useragent":  lineUserAgent,
	"user agent": lineUserAgent,
	"allow":      lineAllow,
	"disallow":   lineDisallow,
	"dissallow":  lineDisallow,
	"dissalow":   lineDisallow,
	"disalow":    lineDisallow,
	"diasllow":   lineDisallow,
	"disallaw":   lineDisallow,
	"sitemap":    lineSitemap,
	"site-map":   lineSitemap,
}

// classify reads one line: a comment runs from '#' to the end of the line,
// key and value are separated by ':' (or, leniently, by white space when
// the key is one we know), and both are trimmed.
func classify(line []byte) (lineKind, string) {
	if i := bytes.IndexByte(line, '#'); i >= 0 {
		line = line[:i]
	}
	s := strings.TrimSpace(string(line))
	if s == "" {
		return lineEmpty, ""
	}
	key, value, ok := strings.Cut(s, ":")
	if !ok {
		// "Disallow /private": tolerated like Google does.
		i := strings.IndexAny(s, " \t")
		if i < 0 {
			return lineOther, ""
		}
		key, value = s[:i], s[i+1:]
	}
	kind, known := directives[strings.ToLower(strings.TrimSpace(key))]
	if !known {
		return lineOther, ""
	}
	return kind, strings.TrimSpace(value)
}

// tokenByte reports whether b may appear in a product token. RFC 9309
// allows letters, '-' and '_'; digits and '.' are accepted too, because
// real tokens use them (AI2Bot, img2dataset, bigsur.ai).
func tokenByte(b byte) bool { return tokenBytes[b] }

var tokenBytes = func() (t [256]bool) {
	for b := 'a'; b <= 'z'; b++ {
		t[b], t[b-'a'+'A'] = true, true
	}
	for b := '0'; b <= '9'; b++ {
		t[b] = true
	}
	t['-'], t['_'], t['.'] = true, true, true
	return t
}()

// agentToken extracts the product token of a user-agent line's value,
// lower-cased: "Googlebot/2.1" gives "googlebot", "ChatGPT Agent" gives
// "chatgpt". star reports the catch-all "*".
func agentToken(value string) (token string, star bool) {
	if value == "*" || (len(value) > 1 && value[0] == '*' && (value[1] == ' ' || value[1] == '\t')) {
		return "", true
	}
	n := 0
	for n < len(value) && tokenByte(value[n]) {
		n++
	}
	return strings.ToLower(value[:n]), false
}
