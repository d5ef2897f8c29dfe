package tarpit

import (
	"html"
	"io"
)

// InjectScanLimit is how far into a document the injector looks for the
// <body> tag; past it the rest passes through untouched.
const InjectScanLimit = 64 << 10

// TrapAnchor returns the hidden trap link: out of the layout (not
// display:none, which some scrapers skip), hidden from screen readers
// (aria-hidden) and out of the tab order (tabindex=-1), so that only
// software that follows every href finds it.
//
// The hidden attribute does the hiding: it works under a Content-Security-
// Policy that forbids inline styles (where the style attribute is ignored)
// and keeps the link out of the accessibility tree and the tab order.
// Scrapers that read the HTML without rendering it still see the href.
func TrapAnchor(href string) string {
	return `<a href="` + html.EscapeString(href) + `" hidden rel="nofollow" aria-hidden="true" tabindex="-1" ` +
		`style="position:absolute;left:-9999px;top:auto;width:1px;height:1px;overflow:hidden">Archive</a>`
}

// Injector streams HTML through, inserting the trap anchor right after the
// opening <body ...> tag. It holds back at most a few bytes (a possible
// "<body" split across writes), never the document.
type Injector struct {
	w       io.Writer
	anchor  []byte
	pending []byte // a partial "<body" candidate from the previous write
	state   injState
	quote   byte
	scanned int
	err     error
}

type injState uint8

const (
	injSearch injState = iota // looking for "<body"
	injInTag                  // inside <body ...>, looking for its '>'
	injDone                   // injected or gave up: pass through
)

// NewInjector returns a writer that copies to w with the trap link for href
// inserted after <body>. Close flushes any held-back bytes; it does not
// close w.
func NewInjector(w io.Writer, href string) *Injector {
	return &Injector{w: w, anchor: []byte(TrapAnchor(href))}
}

var bodyTag = []byte("<body")

// Write implements io.Writer.
func (in *Injector) Write(p []byte) (int, error) {
	if in.err != nil {
		return 0, in.err
	}
	n := len(p)
	if in.state == injDone {
		return in.write(p, n)
	}
	if len(in.pending) > 0 {
		// Rare path: join the held-back bytes with the new ones.
		buf := append(in.pending, p...)
		in.pending = nil
		if _, err := in.process(buf); err != nil {
			return 0, err
		}
		return n, nil
	}
	if _, err := in.process(p); err != nil {
		return 0, err
	}
	return n, nil
}

func (in *Injector) write(p []byte, n int) (int, error) {
	if _, err := in.w.Write(p); err != nil {
		in.err = err
		return 0, err
	}
	return n, nil
}

// process scans p, writing everything except a trailing partial "<body".
func (in *Injector) process(p []byte) (int, error) {
	start := 0
	for i := 0; i < len(p); i++ {
		switch in.state {
		case injSearch:
			if in.scanned++; in.scanned > InjectScanLimit {
				in.state = injDone
				_, err := in.write(p[start:], 0)
				return 0, err
			}
			if p[i] != '<' {
				continue
			}
			m := matchFold(p[i:], bodyTag)
			if m < len(bodyTag) && i+m == len(p) { // cut short by the end of p
				if _, err := in.write(p[start:i], 0); err != nil {
					return 0, err
				}
				in.pending = append([]byte(nil), p[i:]...)
				return 0, nil
			}
			if m == len(bodyTag) {
				if i+m == len(p) { // need the next byte to tell <body from <bodyx
					if _, err := in.write(p[start:i], 0); err != nil {
						return 0, err
					}
					in.pending = append([]byte(nil), p[i:]...)
					return 0, nil
				}
				if c := p[i+m]; c == '>' || c == '/' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' {
					in.state = injInTag
					i += m - 1
				}
			}
		case injInTag:
			c := p[i]
			switch {
			case in.quote != 0:
				if c == in.quote {
					in.quote = 0
				}
			case c == '"' || c == '\'':
				in.quote = c
			case c == '>':
				if _, err := in.write(p[start:i+1], 0); err != nil {
					return 0, err
				}
				if _, err := in.write(in.anchor, 0); err != nil {
					return 0, err
				}
				in.state = injDone
				_, err := in.write(p[i+1:], 0)
				return 0, err
			}
		default:
			_, err := in.write(p[start:], 0)
			return 0, err
		}
	}
	_, err := in.write(p[start:], 0)
	return 0, err
}

// matchFold returns how many leading bytes of p match pat, ASCII
// case-insensitively.
func matchFold(p, pat []byte) int {
	n := 0
	for n < len(p) && n < len(pat) {
		c := p[n]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != pat[n] {
			break
		}
		n++
	}
	return n
}

// Close writes any held-back bytes.
func (in *Injector) Close() error {
	if in.err != nil {
		return in.err
	}
	if len(in.pending) > 0 {
		p := in.pending
		in.pending = nil
		in.state = injDone
		_, err := in.write(p, 0)
		return err
	}
	return nil
}

// InjectTrapLink copies src to dst with the trap link inserted.
func InjectTrapLink(dst io.Writer, src io.Reader, href string) error {
	in := NewInjector(dst, href)
	if _, err := io.Copy(in, src); err != nil {
		return err
	}
	return in.Close()
}
