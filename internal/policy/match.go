package policy

import (
	"net/netip"
	"slices"
	"strings"
)

// kind says what a compiled matcher tests. Matchers are a tagged struct and
// not an interface so that the evaluation state stays on the stack: a
// pointer passed through an interface call escapes to the heap.
type kind uint8

const (
	kindAll kind = iota
	kindAny
	kindNot
	kindAgentSet      // user_agent: case-insensitive substrings (set)
	kindUserAgentRe   // user_agent_regex
	kindPathPrefix    // path_prefix (strs)
	kindPathRe        // path_regex
	kindMethod        // method (strs, case-insensitive)
	kindHost          // host (strs, case-insensitive, port ignored)
	kindHeaderPresent // header_present (strs: canonical names)
	kindHeaderAbsent  // header_absent (strs: canonical names)
	kindHeaderRe      // header_regex, one header (header, pat)
	kindNets          // cidr (nets)
	kindList          // list: nets or agent set
	kindAIAgentAny    // ai_agent: true
	kindAIAgentNames  // ai_agent: [names] (strs)
	kindCrawler       // crawler (crawler)
	kindRobots        // robots_disallowed: true
)

// cost orders the matchers of one match map so that cheap tests run first;
// AND is commutative and matchers have no side effects.
func (n *node) cost() int {
	switch n.kind {
	case kindAIAgentAny, kindAIAgentNames, kindCrawler, kindMethod, kindHost, kindPathPrefix:
		return 0
	case kindAgentSet, kindList, kindNets: // a bitset test once the user agent is scanned
		return 1
	case kindHeaderPresent, kindHeaderAbsent: // a map lookup per header
		return 2
	case kindUserAgentRe, kindPathRe, kindHeaderRe:
		switch l := n.pat.lits; {
		case l == nil:
			return 4 // the regex engine
		case len(l.contains) == 0 && n.kind != kindHeaderRe:
			return 0 // equality, prefix or suffix tests
		}
		return 2
	case kindAll, kindAny, kindNot:
		return 3
	}
	return 5 // kindRobots calls out to another component
}

type crawlerState uint8

const (
	crawlerVerified crawlerState = iota + 1
	crawlerImpostor
	crawlerClaimed
	crawlerNone
)

var crawlerStates = map[string]crawlerState{
	"verified": crawlerVerified,
	"impostor": crawlerImpostor,
	"claimed":  crawlerClaimed,
	"none":     crawlerNone,
}

type node struct {
	kind     kind
	children []node
	strs     []string
	header   string
	pat      *pattern
	set      int // agent set id for kindAgentSet and kindList; -1 when none
	nets     *prefixSet
	crawler  crawlerState
}

// evaluation is the per-request state of Evaluate. It lives on the stack.
type evaluation struct {
	req    *Request
	agents *agentIndex
	ua     string // user agent cut to MaxUserAgentLen
	addr   netip.Addr

	scanned bool                        // sets is filled
	sets    [maxIndexedSets / 64]uint64 // agent sets found in ua
}

func (ev *evaluation) match(n *node) bool {
	r := ev.req
	switch n.kind {
	case kindAll:
		for i := range n.children {
			if !ev.match(&n.children[i]) {
				return false
			}
		}
		return true
	case kindAny:
		for i := range n.children {
			if ev.match(&n.children[i]) {
				return true
			}
		}
		return false
	case kindNot:
		return !ev.match(&n.children[0])
	case kindAgentSet:
		return ev.agentSet(n.set)
	case kindUserAgentRe:
		return n.pat.match(ev.ua)
	case kindPathPrefix:
		for _, p := range n.strs {
			if strings.HasPrefix(r.Path, p) {
				return true
			}
		}
		return false
	case kindPathRe:
		return n.pat.match(r.Path)
	case kindMethod:
		for _, m := range n.strs {
			if strings.EqualFold(r.Method, m) {
				return true
			}
		}
		return false
	case kindHost:
		h := hostOnly(r.Host)
		for _, s := range n.strs {
			if strings.EqualFold(h, s) {
				return true
			}
		}
		return false
	case kindHeaderPresent:
		for _, h := range n.strs {
			if len(r.Header[h]) == 0 {
				return false
			}
		}
		return true
	case kindHeaderAbsent:
		for _, h := range n.strs {
			if len(r.Header[h]) != 0 {
				return false
			}
		}
		return true
	case kindHeaderRe:
		for _, v := range r.Header[n.header] {
			if n.pat.match(v) {
				return true
			}
		}
		return false
	case kindNets:
		return n.nets.contains(ev.addr)
	case kindList:
		return (n.nets != nil && n.nets.contains(ev.addr)) || (n.set >= 0 && ev.agentSet(n.set))
	case kindAIAgentAny:
		return r.Crawler.AIAgent != ""
	case kindAIAgentNames:
		a := r.Crawler.AIAgent
		if a == "" {
			return false
		}
		for _, s := range n.strs {
			if strings.EqualFold(a, s) {
				return true
			}
		}
		return false
	case kindCrawler:
		id := r.Crawler
		switch n.crawler {
		case crawlerVerified:
			return id.Claimed() && id.Verified
		case crawlerImpostor:
			return id.Impostor()
		case crawlerClaimed:
			return id.Claimed()
		case crawlerNone:
			return !id.Claimed()
		}
		return false
	case kindRobots:
		return r.Robots != nil && r.Robots.Disallowed(ev.ua, r.Path)
	}
	return false
}

// agentSet reports whether the user agent contains one of the substrings
// of set id, ignoring ASCII case. The first call answers all indexed sets.
func (ev *evaluation) agentSet(id int) bool {
	if !ev.scanned {
		ev.scanned = true
		ev.agents.scan(ev.ua, &ev.sets)
	}
	if id < maxIndexedSets {
		return ev.sets[id/64]&(1<<(id%64)) != 0
	}
	return ev.agents.containsAny(ev.ua, id)
}

// hostOnly strips a port and a trailing dot from a Host header value.
func hostOnly(h string) string {
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i > 0 {
			return h[1:i]
		}
		return h
	}
	if i := strings.IndexByte(h, ':'); i >= 0 && strings.IndexByte(h[i+1:], ':') < 0 {
		h = h[:i]
	}
	return strings.TrimSuffix(h, ".")
}

// prefixSet holds the networks of a cidr matcher or a named list. Small sets
// are scanned; large ones (lists loaded from files) are looked up by prefix
// length, one map probe per distinct length.
type prefixSet struct {
	small []netip.Prefix
	bits4 []int // distinct IPv4 prefix lengths, longest first
	bits6 []int
	m     map[netip.Prefix]struct{}
}

const smallPrefixSet = 16

func newPrefixSet(ps []netip.Prefix) *prefixSet {
	s := &prefixSet{}
	if len(ps) <= smallPrefixSet {
		s.small = slices.Clone(ps)
		return s
	}
	s.m = make(map[netip.Prefix]struct{}, len(ps))
	for _, p := range ps {
		s.m[p] = struct{}{}
		if p.Addr().Is4() {
			s.bits4 = append(s.bits4, p.Bits())
		} else {
			s.bits6 = append(s.bits6, p.Bits())
		}
	}
	for _, b := range []*[]int{&s.bits4, &s.bits6} {
		slices.Sort(*b)
		*b = slices.Compact(*b)
		slices.Reverse(*b)
	}
	return s
}

// contains reports whether a (unmapped, without zone) lies in the set.
func (s *prefixSet) contains(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.WithZone("")
	if s.m == nil {
		for _, p := range s.small {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	bits := s.bits6
	if a.Is4() {
		bits = s.bits4
	}
	for _, b := range bits {
		p, err := a.Prefix(b)
		if err != nil {
			continue
		}
		if _, ok := s.m[p]; ok {
			return true
		}
	}
	return false
}
