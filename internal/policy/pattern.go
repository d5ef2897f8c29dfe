package policy

import (
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"unicode/utf8"
)

// pattern is a compiled regex matcher. Most regexes written in policies
// describe a small finite set of strings, possibly anchored
// ('^/robots\.txt$', '\.(rss|atom)$', 'application/(rss|atom)\+xml');
// those are answered with plain string comparisons, which are an order of
// magnitude cheaper than running the regex engine.
type pattern struct {
	re   *regexp.Regexp // the source of truth, used when lits cannot decide
	lits *literals
}

func compilePattern(expr string) (*pattern, error) {
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, err
	}
	return &pattern{re: re, lits: analyze(expr)}, nil
}

func (p *pattern) match(s string) bool {
	if p.lits != nil {
		if ok, decided := p.lits.match(s); decided {
			return ok
		}
	}
	return p.re.MatchString(s)
}

// literals is the language of a regex that matches one of a few literal
// strings, each anchored at the start, the end, both or neither.
type literals struct {
	always bool // some alternative matches every input
	// fold: the literals are lower-case and compared ignoring ASCII case.
	// Only inputs that are pure ASCII can be decided that way: Unicode
	// case folding (K and the Kelvin sign) is left to the regex engine.
	fold                  bool
	exact, prefix, suffix []string
	contains              []substring
}

// substring is a needle for an unanchored literal. The search skips to its
// rarest byte with IndexByte (vectorised) instead of its first: in
// "application/rss+xml" that is '+', which an Accept header has once where
// it has a dozen 'a's.
type substring struct {
	s    string
	rare int // index in s of the byte to skip to
}

func newSubstring(s string) substring {
	best, rare := -1, 0
	for i := 0; i < len(s); i++ {
		if r := rarity(s[i]); r > best {
			best, rare = r, i
		}
	}
	return substring{s: s, rare: rare}
}

// commonBytes lists bytes in decreasing frequency in header values, user
// agents and paths: a rough guess that only has to beat "the first byte".
const commonBytes = " etaoinsrlcmhdpu/.;=,0123456789-_xgwbfyvkq(),:*zjETAOINSRLCMHDPUXGWBFYVKQZJ"

func rarity(c byte) int {
	if i := strings.IndexByte(commonBytes, c); i >= 0 {
		return i
	}
	return len(commonBytes)
}

// in reports whether sub occurs in h.
func (sub substring) in(h string) bool {
	c, n := sub.s[sub.rare], len(sub.s)
	for off := sub.rare; off+n-sub.rare <= len(h); {
		i := strings.IndexByte(h[off:len(h)-(n-sub.rare)+1], c)
		if i < 0 {
			return false
		}
		start := off + i - sub.rare
		if h[start:start+n] == sub.s {
			return true
		}
		off += i + 1
	}
	return false
}

func (l *literals) match(s string) (matched, decided bool) {
	if l.always {
		return true, true
	}
	if l.fold {
		if !isASCII(s) {
			return false, false
		}
		for _, x := range l.exact {
			if len(s) == len(x) && strings.EqualFold(s, x) {
				return true, true
			}
		}
		for _, x := range l.prefix {
			if len(s) >= len(x) && strings.EqualFold(s[:len(x)], x) {
				return true, true
			}
		}
		for _, x := range l.suffix {
			if len(s) >= len(x) && strings.EqualFold(s[len(s)-len(x):], x) {
				return true, true
			}
		}
		for _, x := range l.contains {
			if indexFoldASCII(s, x.s) >= 0 {
				return true, true
			}
		}
		return false, true
	}
	for _, x := range l.exact {
		if s == x {
			return true, true
		}
	}
	for _, x := range l.prefix {
		if strings.HasPrefix(s, x) {
			return true, true
		}
	}
	for _, x := range l.suffix {
		if strings.HasSuffix(s, x) {
			return true, true
		}
	}
	for _, x := range l.contains {
		if x.in(s) {
			return true, true
		}
	}
	return false, true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// indexFoldASCII finds sub (lower-case) in s (ASCII), ignoring case.
func indexFoldASCII(s, sub string) int {
	n := len(sub)
	if n == 0 {
		return 0
	}
	first := sub[0]
	for i := 0; i+n <= len(s); i++ {
		if lower[s[i]] == first && strings.EqualFold(s[i:i+n], sub) {
			return i
		}
	}
	return -1
}

// Bounds on the expansion of a regex into literals; past them the regex
// engine is the better tool anyway.
const (
	maxAlternatives = 32
	maxClassRunes   = 4
)

// alternative is one string of a regex's language with its anchors.
type alternative struct {
	s          string
	begin, end bool
}

type expander struct {
	fold   bool // saw a case-insensitive literal with letters
	noFold bool // saw a case-sensitive literal with letters
}

// analyze returns the literals equivalent to expr, or nil when expr is not
// a small finite set of literals.
func analyze(expr string) *literals {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil
	}
	var e expander
	alts, ok := e.expand(re.Simplify())
	if !ok || (e.fold && e.noFold) {
		return nil
	}
	l := &literals{fold: e.fold}
	var contains []string
	for _, a := range alts {
		switch {
		case a.begin && a.end:
			l.exact = append(l.exact, a.s)
		case a.begin:
			l.prefix = append(l.prefix, a.s)
		case a.end:
			l.suffix = append(l.suffix, a.s)
		default:
			contains = append(contains, a.s)
		}
		if a.s == "" && !(a.begin && a.end) {
			l.always = true
		}
	}
	for _, xs := range []*[]string{&l.exact, &l.prefix, &l.suffix, &contains} {
		slices.Sort(*xs)
		*xs = slices.Compact(*xs)
	}
	for _, c := range contains {
		if c != "" {
			l.contains = append(l.contains, newSubstring(c))
		}
	}
	return l
}

func (e *expander) expand(re *syntax.Regexp) ([]alternative, bool) {
	switch re.Op {
	case syntax.OpEmptyMatch:
		return []alternative{{}}, true
	case syntax.OpBeginText:
		return []alternative{{begin: true}}, true
	case syntax.OpEndText:
		return []alternative{{end: true}}, true
	case syntax.OpLiteral:
		s := string(re.Rune)
		if hasLetter(s) {
			if re.Flags&syntax.FoldCase != 0 {
				if !isASCII(s) {
					return nil, false
				}
				e.fold = true
				s = strings.ToLower(s)
			} else {
				e.noFold = true
			}
		}
		return []alternative{{s: s}}, true
	case syntax.OpCharClass:
		var runes []rune
		for i := 0; i+1 < len(re.Rune); i += 2 {
			for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
				if r >= utf8.RuneSelf || len(runes) == maxClassRunes {
					return nil, false
				}
				runes = append(runes, r)
			}
		}
		alts := make([]alternative, len(runes))
		for i, r := range runes {
			alts[i].s = string(r)
			if hasLetter(alts[i].s) {
				e.noFold = true
			}
		}
		return alts, true
	case syntax.OpCapture:
		return e.expand(re.Sub[0])
	case syntax.OpQuest:
		alts, ok := e.expand(re.Sub[0])
		if !ok || len(alts) >= maxAlternatives {
			return nil, false
		}
		return append(alts, alternative{}), true
	case syntax.OpAlternate:
		var alts []alternative
		for _, sub := range re.Sub {
			more, ok := e.expand(sub)
			if !ok || len(alts)+len(more) > maxAlternatives {
				return nil, false
			}
			alts = append(alts, more...)
		}
		return alts, true
	case syntax.OpConcat:
		alts := []alternative{{}}
		for _, sub := range re.Sub {
			more, ok := e.expand(sub)
			if !ok || len(alts)*len(more) > maxAlternatives {
				return nil, false
			}
			next := make([]alternative, 0, len(alts)*len(more))
			for _, a := range alts {
				for _, b := range more {
					c, ok := concat(a, b)
					if !ok {
						return nil, false
					}
					next = append(next, c)
				}
			}
			alts = next
		}
		return alts, true
	}
	return nil, false
}

// concat joins two alternatives; an anchor in the middle of a string (a^b,
// a$b) is left to the regex engine.
func concat(a, b alternative) (alternative, bool) {
	if (b.begin && (a.s != "" || a.end)) || (a.end && b.s != "") {
		return alternative{}, false
	}
	return alternative{s: a.s + b.s, begin: a.begin || b.begin, end: a.end || b.end}, true
}

func hasLetter(s string) bool {
	for _, r := range s {
		if strings.ToLower(string(r)) != strings.ToUpper(string(r)) {
			return true
		}
	}
	return false
}
