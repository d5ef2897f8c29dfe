package crawlers

import "fmt"

// tokenMatcher finds the patterns that occur in a user agent as whole
// words, case-insensitively, without allocating.
//
// A match counts only at word boundaries: the bytes just before and just
// after it must not be word bytes (see wordBytes). This keeps "Spider" out
// of "Bytespider", "Code" out of "Xcode" and "Googlebot" out of
// "googlebot.com", while "Googlebot" still matches in "Googlebot-Image/1.0".
//
// Because a match can only start where a word starts, the matcher walks a
// trie from each word start instead of running a full multi-pattern
// automaton over every byte; for a browser user agent that is a couple of
// dozen short walks that mostly end on the first or second byte. The trie is
// a dense table over byte classes: upper- and lower-case letters share a
// class, so nothing is lower-cased per request, and bytes that occur in no
// pattern share class 0. States are numbered breadth-first so that the
// shallow states, which every walk touches, sit together in memory.
type tokenMatcher struct {
	class [256]uint8
	ncls  int
	// next[s*ncls+c] is the state after state s on class c; 0 means no
	// edge (the root is never a target).
	next []uint16
	// out[s] is the pattern ending in state s, or -1.
	out  []int32
	pats []matchPattern
}

// matchPattern is what a pattern reports: its length, to prefer the most
// specific agent name, and the agent and crawler it stands for (-1: none).
type matchPattern struct {
	n              int
	agent, crawler int32
	checkRight     bool
}

// Bounds on the trie, so that a refreshed list cannot make it huge: at most
// maxPatternBytes+1 states (state ids must fit in uint16) times ~70 classes.
const (
	maxPatternBytes = 32 << 10
	maxPatternLen   = 128
)

// wordBytes are the bytes that make up a word for the boundary checks.
// '.' and '_' count as word bytes so that host names in the comment of a
// user agent ("+http://www.googlebot.com/") do not claim a crawler; '-'
// does not, so "Googlebot-Image" still says Googlebot.
var wordBytes = func() (t [256]bool) {
	for b := 'a'; b <= 'z'; b++ {
		t[b] = true
		t[b-'a'+'A'] = true
	}
	for b := '0'; b <= '9'; b++ {
		t[b] = true
	}
	t['.'], t['_'] = true, true
	return t
}()

func isWordByte(b byte) bool { return wordBytes[b] }

func lowerASCII(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

// validPattern reports whether p can be matched: 1..maxPatternLen bytes,
// starting with a word byte (a match starts at a word start).
func validPattern(p string) bool {
	return p != "" && len(p) <= maxPatternLen && isWordByte(p[0])
}

// newTokenMatcher compiles patterns; meta[i] says what patterns[i] stands
// for (its n and checkRight are filled in here). Patterns are compared
// case-insensitively and must be distinct once lower-cased.
func newTokenMatcher(patterns []string, meta []matchPattern) (*tokenMatcher, error) {
	m := &tokenMatcher{pats: make([]matchPattern, len(patterns))}
	total := 0
	for i, p := range patterns {
		if !validPattern(p) {
			return nil, fmt.Errorf("pattern %q: want 1..%d bytes starting with a letter, digit, '.' or '_'", p, maxPatternLen)
		}
		total += len(p)
		mp := meta[i]
		mp.n = len(p)
		mp.checkRight = isWordByte(p[len(p)-1])
		m.pats[i] = mp
	}
	if total > maxPatternBytes {
		return nil, fmt.Errorf("patterns total %d bytes, more than %d", total, maxPatternBytes)
	}

	// Byte classes: one per distinct (lower-cased) byte used by a pattern.
	var seen [256]uint8
	ncls := 1
	for _, p := range patterns {
		for i := 0; i < len(p); i++ {
			b := lowerASCII(p[i])
			if seen[b] == 0 {
				seen[b] = uint8(ncls)
				ncls++
			}
		}
	}
	for b := 0; b < 256; b++ {
		m.class[b] = seen[lowerASCII(byte(b))]
	}
	m.ncls = ncls

	// Build the trie with ids in insertion order...
	edges := make([]int32, ncls)
	out := []int32{-1}
	for pi, p := range patterns {
		s := int32(0)
		for i := 0; i < len(p); i++ {
			e := int(s)*ncls + int(m.class[p[i]])
			if edges[e] == 0 {
				edges[e] = int32(len(out))
				out = append(out, -1)
				edges = append(edges, make([]int32, ncls)...)
			}
			s = edges[e]
		}
		if out[s] >= 0 {
			return nil, fmt.Errorf("duplicate pattern %q", p)
		}
		out[s] = int32(pi)
	}

	// ...then renumber breadth-first.
	order := make([]int32, 0, len(out)) // new id -> old id
	renum := make([]uint16, len(out))   // old id -> new id
	order = append(order, 0)
	for i := 0; i < len(order); i++ {
		old := int(order[i])
		for c := 0; c < ncls; c++ {
			if t := edges[old*ncls+c]; t != 0 {
				renum[t] = uint16(len(order))
				order = append(order, t)
			}
		}
	}
	m.next = make([]uint16, len(out)*ncls)
	m.out = make([]int32, len(out))
	for id, old := range order {
		m.out[id] = out[old]
		for c := 0; c < ncls; c++ {
			if t := edges[int(old)*ncls+c]; t != 0 {
				m.next[id*ncls+c] = renum[t]
			}
		}
	}
	return m, nil
}

// states is the number of trie states (for Stats).
func (m *tokenMatcher) states() int { return len(m.out) }

// scan returns the agent of the longest agent pattern (the leftmost among
// equally long ones) and the crawler of the leftmost crawler pattern (the
// longest at that position) found in ua as whole words, each -1 when none.
// Only the first limit bytes are looked at.
func (m *tokenMatcher) scan(ua string, limit int) (agent, crawler int32) {
	agent, crawler = -1, -1
	agentLen := 0
	if len(ua) > limit {
		ua = ua[:limit]
	}
	next, out, class, ncls := m.next, m.out, &m.class, m.ncls
	prevWord := false
	for start := 0; start < len(ua); start++ {
		b := ua[start]
		word := wordBytes[b]
		if prevWord || !word {
			prevWord = word
			continue
		}
		prevWord = true
		// A word starts here: walk the trie as far as it goes.
		s := 0
		found := int32(-1)
		for i := start; i < len(ua); i++ {
			s = int(next[s*ncls+int(class[ua[i]])])
			if s == 0 {
				break
			}
			pi := out[s]
			if pi < 0 {
				continue
			}
			p := &m.pats[pi]
			if p.checkRight && i+1 < len(ua) && wordBytes[ua[i+1]] {
				continue
			}
			if p.agent >= 0 && p.n > agentLen {
				agent, agentLen = p.agent, p.n
			}
			if p.crawler >= 0 {
				found = p.crawler
			}
		}
		if crawler < 0 {
			crawler = found
		}
	}
	return agent, crawler
}
