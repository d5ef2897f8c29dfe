// Package robots parses robots.txt files as RFC 9309 describes, answers
// whether a user agent may fetch a path, and renders the robots.txt the
// edge serves.
//
// Parsing never fails: like Google's parser it takes what it can use and
// counts the rest. Rules are compiled at parse time so that a check does
// not allocate for ordinary paths.
package robots

import (
	"bytes"
	"cmp"
	"slices"
	"strings"
)

// Robots is a parsed robots.txt. It is immutable and safe for concurrent
// use.
type Robots struct {
	// Sitemaps are the values of the Sitemap lines, in file order.
	Sitemaps []string
	// Invalid counts the lines that were neither blank, comments nor
	// directives this parser uses: garbage, unsupported directives
	// (Crawl-delay, Host, ...), rules outside any group, and user-agent
	// lines without a usable product token.
	Invalid int
	// Truncated reports that the input was longer than MaxSize.
	Truncated bool

	// byToken holds, for each lower-cased product token, the rules of all
	// groups naming it, merged (RFC 9309 §2.2.1). star holds those of the
	// "*" groups; nil when there are none.
	byToken map[string]*ruleSet
	star    *ruleSet
	// tokenLens has bit n set when some token is n bytes long, and
	// tokenEnds marks the first (bit 0) and last (bit 1) bytes of tokens:
	// cheap filters that let most words of a user agent skip the map
	// lookup.
	tokenLens uint64
	tokenEnds [256]uint8
}

// ruleSet is the merged rules of the groups for one product token, sorted
// so that the first match is the one that decides: longest first, and
// Allow before Disallow at equal length.
type ruleSet struct {
	rules []rule
}

// rule is one compiled Allow or Disallow pattern. The pattern is split at
// its '*' wildcards; prefix is the literal part before the first one, segs
// the literal parts after it (the last one possibly empty), all
// percent-decoded.
type rule struct {
	allow    bool
	prio     int // the pattern's length in octets: longest match wins
	prefix   []byte
	segs     [][]byte
	wild     bool // the pattern has a '*'
	anchored bool // the pattern ends with '$'
}

// maxSitemaps bounds the Sitemap lines kept.
const maxSitemaps = 1000

// Parse reads a robots.txt. It never fails; see the Robots fields for what
// it reports about the input.
func Parse(data []byte) *Robots {
	r := &Robots{byToken: make(map[string]*ruleSet)}
	data, r.Truncated = limit(data)

	type group struct {
		tokens []string
		star   bool
		rules  []rule
	}
	var (
		groups  []*group
		cur     *group
		inRules bool
	)
	eachLine(data, func(line []byte) {
		kind, value := classify(line)
		switch kind {
		case lineEmpty:
		case lineUserAgent:
			if cur == nil || inRules {
				cur = &group{}
				groups = append(groups, cur)
				inRules = false
			}
			tok, star := agentToken(value)
			switch {
			case star:
				cur.star = true
			case tok == "":
				r.Invalid++
			default:
				cur.tokens = append(cur.tokens, tok)
			}
		case lineAllow, lineDisallow:
			if cur == nil {
				r.Invalid++ // a rule before any user-agent line
				return
			}
			inRules = true
			if value != "" { // an empty rule matches nothing
				cur.rules = append(cur.rules, compileRule(value, kind == lineAllow))
			}
		case lineSitemap:
			if value != "" && len(r.Sitemaps) < maxSitemaps {
				r.Sitemaps = append(r.Sitemaps, value)
			}
		default:
			r.Invalid++
		}
	})

	for _, g := range groups {
		if g.star {
			if r.star == nil {
				r.star = &ruleSet{}
			}
			r.star.rules = append(r.star.rules, g.rules...)
		}
		for _, tok := range g.tokens {
			set := r.byToken[tok]
			if set == nil {
				set = &ruleSet{}
				r.byToken[tok] = set
			}
			set.rules = append(set.rules, g.rules...)
		}
	}
	for tok, set := range r.byToken {
		set.sort()
		if len(tok) <= maxTokenLen {
			r.tokenLens |= 1 << len(tok)
			r.tokenEnds[tok[0]] |= 1
			r.tokenEnds[tok[len(tok)-1]] |= 2
		}
	}
	if r.star != nil {
		r.star.sort()
	}
	return r
}

func (s *ruleSet) sort() {
	slices.SortStableFunc(s.rules, func(a, b rule) int {
		if c := cmp.Compare(b.prio, a.prio); c != 0 {
			return c
		}
		switch {
		case a.allow && !b.allow:
			return -1
		case !a.allow && b.allow:
			return 1
		}
		return 0
	})
	s.rules = slices.CompactFunc(s.rules, func(a, b rule) bool {
		return a.allow == b.allow && a.prio == b.prio && a.wild == b.wild && a.anchored == b.anchored &&
			bytes.Equal(a.prefix, b.prefix) && slices.EqualFunc(a.segs, b.segs, bytes.Equal)
	})
}

// compileRule compiles an Allow or Disallow value. A value that starts
// with neither '/' nor '*' is taken as relative to the root.
func compileRule(value string, allow bool) rule {
	if value[0] != '/' && value[0] != '*' {
		value = "/" + value
	}
	r := rule{allow: allow}
	if strings.HasSuffix(value, "$") {
		r.anchored = true
		value = value[:len(value)-1]
	}
	parts := strings.Split(value, "*")
	r.prefix = decodePercent(nil, parts[0])
	r.prio = len(r.prefix) + len(parts) - 1
	if r.anchored {
		r.prio++
	}
	if len(parts) > 1 {
		r.wild = true
		for i, p := range parts[1:] {
			// Runs of '*' are one wildcard: drop the empty parts between
			// them, but keep the last part even when empty ("/a*").
			if p == "" && i < len(parts)-2 {
				continue
			}
			seg := decodePercent(nil, p)
			r.prio += len(seg)
			r.segs = append(r.segs, seg)
		}
	}
	return r
}

// match reports whether the rule matches the canonical path.
func (r *rule) match(path []byte) bool {
	if !bytes.HasPrefix(path, r.prefix) {
		return false
	}
	if !r.wild {
		return !r.anchored || len(path) == len(r.prefix)
	}
	pos := len(r.prefix)
	last := len(r.segs) - 1
	for _, seg := range r.segs[:last] {
		i := bytes.Index(path[pos:], seg)
		if i < 0 {
			return false
		}
		pos += i + len(seg)
	}
	// Leftmost matches of the middle segments leave the most room for the
	// last one, so this greedy walk finds a match when there is one.
	seg := r.segs[last]
	if r.anchored {
		return len(path)-len(seg) >= pos && bytes.HasSuffix(path, seg)
	}
	return bytes.Contains(path[pos:], seg)
}

// decision returns the length and verdict of the first (most specific)
// matching rule, with ok false when none matches.
func (s *ruleSet) decision(path []byte) (prio int, allow, ok bool) {
	for i := range s.rules {
		if r := &s.rules[i]; r.match(path) {
			return r.prio, r.allow, true
		}
	}
	return 0, false, false
}

// maxMatchedTokens bounds the distinct groups one user agent can select.
const maxMatchedTokens = 8

// Allowed reports whether userAgent may fetch path.
//
// userAgent may be a bare product token ("GPTBot") or a whole User-Agent
// header: every word of it made of product-token characters
// ([A-Za-z0-9_.-]) is looked up, case-insensitively, and the groups of all
// tokens found apply together, as RFC 9309 §2.2.1 combines groups that
// name the same agent. When no group names the user agent, the "*" groups
// apply; when there are none, everything is allowed.
//
// path is the request's path and query, as sent (percent-encoded or not);
// an absolute URL is reduced to its path. Percent-encoding is normalised on
// both sides (RFC 9309 §2.2.2), the longest matching rule decides, Allow
// wins a tie, and /robots.txt is always allowed.
func (r *Robots) Allowed(userAgent, path string) bool {
	if r == nil {
		return true // no robots.txt: no rules
	}
	var sets [maxMatchedTokens]*ruleSet
	n := 0
	if len(r.byToken) > 0 {
		n = r.selectGroups(userAgent, &sets)
	}
	if n == 0 {
		if r.star == nil {
			return true
		}
		sets[0], n = r.star, 1
	}

	var buf [512]byte
	p := canonicalPath(buf[:0], path)
	if isRobotsTxt(p) {
		return true
	}
	bestPrio, allowed, matched := 0, true, false
	for _, s := range sets[:n] {
		prio, allow, ok := s.decision(p)
		if !ok {
			continue
		}
		if !matched || prio > bestPrio || (prio == bestPrio && allow) {
			bestPrio, allowed, matched = prio, allow, true
		}
	}
	return allowed
}

// Disallowed is the inverse of Allowed.
func (r *Robots) Disallowed(userAgent, path string) bool { return !r.Allowed(userAgent, path) }

// selectGroups finds the rule sets of the product tokens in userAgent.
func (r *Robots) selectGroups(userAgent string, sets *[maxMatchedTokens]*ruleSet) int {
	n := 0
	var low [maxTokenLen]byte
	for i := 0; i < len(userAgent) && n < maxMatchedTokens; {
		if !tokenByte(userAgent[i]) {
			i++
			continue
		}
		j := i
		for j < len(userAgent) && tokenByte(userAgent[j]) {
			j++
		}
		word := userAgent[i:j]
		i = j
		if len(word) > maxTokenLen || r.tokenLens&(1<<len(word)) == 0 ||
			r.tokenEnds[lowerASCII(word[0])]&1 == 0 || r.tokenEnds[lowerASCII(word[len(word)-1])]&2 == 0 {
			continue
		}
		for k := 0; k < len(word); k++ {
			low[k] = lowerASCII(word[k])
		}
		set := r.byToken[string(low[:len(word)])]
		if set == nil || slices.Contains(sets[:n], set) {
			continue
		}
		sets[n] = set
		n++
	}
	return n
}

func lowerASCII(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

// canonicalPath appends the form of path that rules are compared with:
// an absolute URL loses its scheme and authority, an empty path becomes
// "/", and every %XX escape is decoded, so that "/%62az", "/baz" and
// "/b%61z" compare equal, as do a raw UTF-8 path and its percent-encoded
// form (RFC 9309 §2.2.2). Rule patterns go through the same decoding.
func canonicalPath(dst []byte, path string) []byte {
	if rest, ok := cutScheme(path); ok {
		if i := strings.IndexAny(rest, "/?"); i >= 0 {
			path = rest[i:]
		} else {
			path = ""
		}
	}
	if path == "" || path[0] != '/' {
		dst = append(dst, '/')
	}
	return decodePercent(dst, path)
}

func cutScheme(s string) (string, bool) {
	for _, scheme := range [...]string{"http://", "https://"} {
		if len(s) >= len(scheme) && strings.EqualFold(s[:len(scheme)], scheme) {
			return s[len(scheme):], true
		}
	}
	return s, false
}

// decodePercent appends s with each valid %XX escape decoded.
func decodePercent(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' && i+2 < len(s) {
			if hi, lo := unhex(s[i+1]), unhex(s[i+2]); hi >= 0 && lo >= 0 {
				dst = append(dst, byte(hi<<4|lo))
				i += 2
				continue
			}
		}
		dst = append(dst, c)
	}
	return dst
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

// isRobotsTxt reports whether the canonical path is /robots.txt, with or
// without a query.
func isRobotsTxt(p []byte) bool {
	const name = "/robots.txt"
	return bytes.HasPrefix(p, []byte(name)) && (len(p) == len(name) || p[len(name)] == '?')
}
