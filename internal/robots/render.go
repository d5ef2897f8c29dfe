package robots

import (
	"bytes"
	"strings"
)

// Render returns the robots.txt the edge serves: the upstream's file with
//
//   - a group "User-agent: <agent>… / Disallow: /" appended for
//     disallowAgents (the declared AI crawlers), after removing those
//     agents from the upstream's own groups, so that an upstream Allow for
//     one of them cannot combine with the appended group and reopen a path;
//   - a "Disallow: <prefix>" line for each of trapPrefixes added to every
//     upstream group, and a "User-agent: *" group holding them when the
//     upstream has none. A crawler obeys only the most specific group that
//     names it, so the trap lines must be in all of them.
//
// Line endings become LF; everything else in the upstream is kept as is.
// The output stays within MaxSize, so crawlers read the appended group:
// when it would not, the upstream is cut at a line between its groups'
// rules. Agent names that would not make a well-formed user-agent line
// (empty, "*", control characters, '#') and trap prefixes that do not start
// with '/' are skipped.
func Render(upstream []byte, disallowAgents []string, trapPrefixes ...string) []byte {
	agents, remove := cleanAgents(disallowAgents)
	traps := cleanTraps(trapPrefixes)

	var trapLines []byte
	for _, t := range traps {
		trapLines = append(trapLines, "Disallow: "+t+"\n"...)
	}
	var tail []byte
	if len(agents) > 0 {
		tail = append(tail, "\n# AI crawlers: the site asks them not to crawl.\n"...)
		for _, a := range agents {
			tail = append(tail, "User-agent: "+a+"\n"...)
		}
		tail = append(tail, "Disallow: /\n"...)
	}
	starGroup := []byte(nil)
	if len(traps) > 0 {
		starGroup = append([]byte("\nUser-agent: *\n"), trapLines...)
	}

	w := &renderer{
		budget:    MaxSize - len(tail) - len(starGroup) - len(closeGroup),
		remove:    remove,
		trapLines: trapLines,
	}
	if w.budget > 0 {
		data, _ := limit(upstream)
		eachLine(data, w.line)
		w.endHeader()
		w.flushPending()
	}
	out := w.out
	if w.open && (len(tail) > 0 || len(starGroup) > 0) {
		// The upstream's last group has user agents but no rule yet, so
		// the user-agent lines appended next would join it (blank lines
		// do not end a group): close it with a rule that matches nothing.
		out = append(out, closeGroup...)
	}
	if !w.hasStar && len(starGroup) > 0 {
		out = append(out, starGroup...)
	}
	out = append(out, tail...)
	if len(w.out) == 0 {
		out = bytes.TrimPrefix(out, []byte("\n"))
	}
	return out
}

// closeGroup ends a group's user-agent lines without changing what the
// group allows: an empty Disallow matches nothing.
const closeGroup = "Disallow:\n"

// renderer rewrites the upstream line by line, tracking groups exactly as
// Parse does.
type renderer struct {
	out       []byte
	budget    int  // the most bytes of upstream output
	full      bool // the budget is spent: the rest is dropped
	remove    map[string]bool
	trapLines []byte
	hasStar   bool
	// open reports that the last group written has user-agent lines but
	// no rule after them.
	open bool

	// The user-agent lines of the group being read, and the lines among
	// and just before them, held until the group's first rule shows
	// whether any agent stays and where the trap lines go.
	inHeader bool
	header   []heldLine
	// Blank and comment lines after a group's rules, held because they
	// may introduce the next group and should share its fate.
	pending  []heldLine
	dropping bool // the current group lost all its agents
}

type heldLine struct {
	text  []byte
	kind  lineKind
	token string
	star  bool
}

func (w *renderer) line(line []byte) {
	if w.full {
		return
	}
	kind, value := classify(line)
	switch {
	case kind == lineUserAgent:
		if !w.inHeader {
			w.inHeader, w.dropping = true, false
			w.header = append(w.header[:0], w.pending...)
			w.pending = w.pending[:0]
		}
		tok, star := agentToken(value)
		w.header = append(w.header, heldLine{text: line, kind: kind, token: tok, star: star})
		return
	case w.inHeader && kind != lineAllow && kind != lineDisallow:
		w.header = append(w.header, heldLine{text: line, kind: kind})
		return
	case w.inHeader:
		w.endHeader()
	case kind == lineEmpty:
		w.pending = append(w.pending, heldLine{text: line, kind: kind})
		return
	}
	w.flushPending()
	if w.dropping && kind != lineSitemap {
		return
	}
	if w.emit(line, nil) && (kind == lineAllow || kind == lineDisallow) {
		w.open = false
	}
}

// flushPending writes the held blank and comment lines; for a dropped
// group only the blank ones, which keep groups apart.
func (w *renderer) flushPending() {
	for _, h := range w.pending {
		if !w.dropping || isBlank(h.text) {
			w.emit(h.text, nil)
		}
	}
	w.pending = w.pending[:0]
}

// endHeader writes the held header: the user-agent lines that stay, the
// lines among them, and the trap lines; or, when no agent stays, only the
// Sitemap lines (which belong to no group) and blank lines, dropping the
// group.
func (w *renderer) endHeader() {
	if !w.inHeader {
		return
	}
	w.inHeader = false
	kept, star := 0, false
	for _, h := range w.header {
		if h.kind == lineUserAgent && (h.star || !w.remove[h.token]) {
			kept++
			star = star || h.star
		}
	}
	if kept == 0 {
		w.dropping = true
		for _, h := range w.header {
			if h.kind == lineSitemap || isBlank(h.text) {
				w.emit(h.text, nil)
			}
		}
		return
	}
	var block []byte
	for _, h := range w.header {
		if h.kind == lineUserAgent && !h.star && w.remove[h.token] {
			continue
		}
		if isBlank(h.text) && w.blankIsRedundant(block) {
			continue
		}
		block = append(append(block, h.text...), '\n')
	}
	block = append(block, w.trapLines...)
	if w.emit(nil, block) {
		w.hasStar = w.hasStar || star
		w.open = len(w.trapLines) == 0
	}
}

// emit appends a line (or a ready block) if the budget allows; once it
// does not, everything after is dropped, so the cut falls between lines
// and never between a group's user-agent lines and its trap lines. Runs of
// blank lines are written as one.
func (w *renderer) emit(line, block []byte) bool {
	if block == nil && isBlank(line) && w.blankIsRedundant(nil) {
		return true
	}
	n := len(block)
	if block == nil {
		n = len(line) + 1
	}
	if w.full || len(w.out)+n > w.budget {
		w.full = true
		return false
	}
	if block != nil {
		w.out = append(w.out, block...)
	} else {
		w.out = append(append(w.out, line...), '\n')
	}
	return true
}

// blankIsRedundant reports whether a blank line written after w.out and
// then pending would start the output or follow another blank line.
func (w *renderer) blankIsRedundant(pending []byte) bool {
	if len(pending) > 0 {
		return endsBlank(pending)
	}
	return len(w.out) == 0 || endsBlank(w.out)
}

// endsBlank reports whether the last line of b (which ends with '\n') is
// blank.
func endsBlank(b []byte) bool {
	i := bytes.LastIndexByte(b[:len(b)-1], '\n')
	return isBlank(b[i+1:])
}

func isBlank(line []byte) bool { return len(bytes.TrimSpace(line)) == 0 }

// cleanAgents keeps the agent names that make a well-formed user-agent
// line, once each, and returns the set of their product tokens.
func cleanAgents(names []string) ([]string, map[string]bool) {
	var out []string
	remove := make(map[string]bool)
	seen := make(map[string]bool)
	for _, name := range names {
		name = strings.TrimSpace(name)
		if !printableLine(name) || seen[strings.ToLower(name)] {
			continue
		}
		tok, star := agentToken(name)
		if star || tok == "" {
			continue
		}
		seen[strings.ToLower(name)] = true
		remove[tok] = true
		out = append(out, name)
	}
	return out, remove
}

func cleanTraps(prefixes []string) []string {
	var out []string
	seen := make(map[string]bool)
	for _, p := range prefixes {
		p = strings.TrimSpace(p)
		if p == "" || p[0] != '/' || !printableLine(p) || strings.ContainsAny(p, " \t") || seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, p)
	}
	return out
}

// printableLine reports whether s can be the value of a robots.txt line:
// non-empty, no control characters (which could end the line) and no '#'
// (which would start a comment).
func printableLine(s string) bool {
	if s == "" || strings.IndexByte(s, '#') >= 0 {
		return false
	}
	return !bytes.ContainsFunc([]byte(s), func(r rune) bool { return r < 0x20 || r == 0x7f })
}
