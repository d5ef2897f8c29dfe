package tarpit

import (
	"bytes"
	"html"
	"unicode/utf8"
)

// skipContent lists elements whose content is not prose: it is dropped
// whole, not just its tags.
var skipContent = [...]string{"script", "style", "noscript", "svg", "template", "head", "pre", "textarea"}

// blockTags end a run of prose: a space (or newline) keeps words of two
// blocks from being glued together.
var blockTags = [...]string{"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "td", "th", "dt", "dd", "section", "article", "table", "ul", "ol", "blockquote", "hr", "title"}

// StripHTML appends the visible prose of an HTML document to dst: tags and
// comments are removed, the content of script, style and similar elements is
// skipped, entities are decoded and blocks are separated by blank lines. It is
// a tolerant scanner, not a parser: malformed markup never fails, it only
// yields less text.
func StripHTML(dst, src []byte) []byte {
	for i := 0; i < len(src); {
		c := src[i]
		if c != '<' {
			j := bytes.IndexByte(src[i:], '<')
			if j < 0 {
				j = len(src) - i
			}
			dst = appendText(dst, src[i:i+j])
			i += j
			continue
		}
		rest := src[i:]
		if bytes.HasPrefix(rest, []byte("<!--")) {
			end := bytes.Index(rest[4:], []byte("-->"))
			if end < 0 {
				return dst
			}
			i += 4 + end + 3
			continue
		}
		name, closing, n := tagName(rest)
		if n == 0 { // a lone '<' is text
			dst = appendText(dst, rest[:1])
			i++
			continue
		}
		end := tagEnd(rest, n)
		if end < 0 {
			return dst
		}
		i += end
		if !closing && isSkipped(name) && !bytes.HasSuffix(rest[:end], []byte("/>")) {
			i += skipUntilClose(src[i:], name)
			continue
		}
		if isBlock(name) {
			dst = append(dst, '\n', '\n')
		} else if len(dst) > 0 && dst[len(dst)-1] != ' ' && dst[len(dst)-1] != '\n' && isWordBreakTag(name) {
			dst = append(dst, ' ')
		}
	}
	return dst
}

// appendText decodes entities of a text run.
func appendText(dst, text []byte) []byte {
	if bytes.IndexByte(text, '&') < 0 {
		return append(dst, text...)
	}
	return append(dst, html.UnescapeString(string(text))...)
}

// tagName parses "<name" or "</name" and returns the lower-cased name (as
// bytes in a small fixed buffer copy), whether it is a closing tag, and the
// bytes consumed; n == 0 when rest does not start a tag.
func tagName(rest []byte) (name []byte, closing bool, n int) {
	i := 1
	if i < len(rest) && rest[i] == '/' {
		closing = true
		i++
	}
	if i < len(rest) && rest[i] == '!' || i < len(rest) && rest[i] == '?' {
		return nil, false, i + 1 // doctype, CDATA, processing instruction
	}
	start := i
	for i < len(rest) && isTagChar(rest[i]) {
		i++
	}
	if i == start {
		return nil, false, 0
	}
	return rest[start:i], closing, i
}

func isTagChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == ':'
}

// tagEnd returns the index just past the '>' closing the tag that starts at
// rest[0], honouring quoted attribute values, or -1.
func tagEnd(rest []byte, from int) int {
	var quote byte
	for i := from; i < len(rest); i++ {
		c := rest[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '>':
			return i + 1
		}
	}
	return -1
}

// skipUntilClose returns how many bytes of src precede and include
// "</name...>", or len(src) when the element never closes.
func skipUntilClose(src, name []byte) int {
	for i := 0; i < len(src); {
		j := bytes.Index(src[i:], []byte("</"))
		if j < 0 {
			return len(src)
		}
		i += j
		n, closing, k := tagName(src[i:])
		if closing && k > 0 && bytes.EqualFold(n, name) {
			if end := tagEnd(src[i:], k); end > 0 {
				return i + end
			}
			return len(src)
		}
		i += 2
	}
	return len(src)
}

func isSkipped(name []byte) bool {
	for _, s := range skipContent {
		if bytes.EqualFold(name, []byte(s)) {
			return true
		}
	}
	return false
}

func isBlock(name []byte) bool {
	for _, s := range blockTags {
		if bytes.EqualFold(name, []byte(s)) {
			return true
		}
	}
	return false
}

// isWordBreakTag reports tags that separate words even inline (images,
// inputs); inline formatting such as <b> or <a> does not.
func isWordBreakTag(name []byte) bool {
	return bytes.EqualFold(name, []byte("img")) || bytes.EqualFold(name, []byte("input"))
}

// MaxWordLen is the longest token the model keeps: longer runs are URLs,
// identifiers or garbage, not prose.
const MaxWordLen = 40

// tokenize calls fn for every word of text: runs of non-space bytes that are
// valid UTF-8, free of control characters and at most MaxWordLen long.
// A false return from fn stops the scan.
func tokenize(text []byte, fn func(word []byte) bool) {
	for i := 0; i < len(text); {
		for i < len(text) && isSpace(text[i]) {
			i++
		}
		start := i
		for i < len(text) && !isSpace(text[i]) {
			i++
		}
		if w := text[start:i]; len(w) > 0 && keepWord(w) && !fn(w) {
			return
		}
	}
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v'
}

func keepWord(w []byte) bool {
	if len(w) > MaxWordLen || !utf8.Valid(w) {
		return false
	}
	for _, c := range w {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}
