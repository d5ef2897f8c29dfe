package policy

import (
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/scrapedefense/scrapedefense/internal/decision"
)

// matchMap compiles a match map: every matcher in it must hold.
func (l *loader) matchMap(n *yaml.Node, path string, depth int) (node, bool) {
	if depth > maxDepth {
		l.errorf(deref(n), path, "match nested more than %d levels deep", maxDepth)
		return node{}, false
	}
	fields, ok := l.mapping(n, path, "a match map (matcher: value, ...)")
	if !ok {
		return node{}, false
	}
	if len(fields) == 0 {
		l.errorf(deref(n), path, "empty match: give at least one matcher")
		return node{}, false
	}
	children := make([]node, 0, len(fields))
	good := true
	for _, f := range fields {
		c, ok := l.matcher(f, depth)
		if !ok {
			good = false
			continue
		}
		children = append(children, c)
	}
	if !good {
		return node{}, false
	}
	if len(children) == 1 {
		return children[0], true
	}
	slices.SortStableFunc(children, func(a, b node) int { return a.cost() - b.cost() })
	return node{kind: kindAll, children: children, set: -1}, true
}

var matcherNames = []string{
	"user_agent", "user_agent_regex", "path_prefix", "path_regex", "method",
	"header_present", "header_absent", "header_regex", "cidr", "list",
	"ai_agent", "crawler", "robots_disallowed", "host", "all", "any", "not",
}

func (l *loader) matcher(f field, depth int) (node, bool) {
	l.budget--
	if l.budget == 0 {
		l.errorf(f.k, f.path, "policy too complex: more than %d matchers (check YAML aliases)", maxNodes)
	}
	if l.budget <= 0 {
		return node{}, false
	}
	v, path := f.v, f.path
	n := node{set: -1}
	switch f.key {
	case "user_agent":
		ss, ok := l.strList(v, path)
		if !ok {
			return n, false
		}
		n.kind, n.set = kindAgentSet, l.agentSet(ss)
	case "user_agent_regex", "path_regex":
		pat, ok := l.regex(v, path)
		if !ok {
			return n, false
		}
		n.kind, n.pat = kindUserAgentRe, pat
		if f.key == "path_regex" {
			n.kind = kindPathRe
		}
	case "path_prefix":
		ss, ok := l.strList(v, path)
		if !ok {
			return n, false
		}
		n.kind, n.strs = kindPathPrefix, ss
	case "method":
		ss, ok := l.strList(v, path)
		if !ok {
			return n, false
		}
		for i, s := range ss {
			if !isToken(s) {
				l.errorf(deref(v), path, "invalid method %q", clip(s))
				return n, false
			}
			ss[i] = strings.ToUpper(s)
		}
		n.kind, n.strs = kindMethod, ss
	case "host":
		ss, ok := l.strList(v, path)
		if !ok {
			return n, false
		}
		for i, s := range ss {
			ss[i] = hostOnly(strings.ToLower(strings.TrimSpace(s)))
		}
		n.kind, n.strs = kindHost, ss
	case "header_present", "header_absent":
		ss, ok := l.strList(v, path)
		if !ok {
			return n, false
		}
		for i, s := range ss {
			h, ok := l.headerName(s, deref(v), path)
			if !ok {
				return n, false
			}
			ss[i] = h
		}
		n.kind, n.strs = kindHeaderPresent, ss
		if f.key == "header_absent" {
			n.kind = kindHeaderAbsent
		}
	case "header_regex":
		return l.headerRegex(v, path)
	case "cidr":
		ss, ok := l.strList(v, path)
		if !ok {
			return n, false
		}
		nets, ok := l.prefixes(ss, v, path)
		if !ok {
			return n, false
		}
		n.kind, n.nets = kindNets, newPrefixSet(nets)
	case "list":
		name, ok := l.str(v, path)
		if !ok {
			return n, false
		}
		nl := l.lists[name]
		if nl == nil {
			l.errorf(deref(v), path, "unknown list %q", clip(name))
			return n, false
		}
		if nl.broken {
			return n, false
		}
		n.kind, n.nets, n.set = kindList, nl.nets, nl.set
	case "ai_agent":
		if d := deref(v); d != nil && d.Kind == yaml.ScalarNode && d.ShortTag() == "!!bool" {
			b, ok := l.boolean(d, path)
			if !ok {
				return n, false
			}
			if !b {
				l.errorf(d, path, "ai_agent: false is not supported; use not: {ai_agent: true}")
				return n, false
			}
			n.kind = kindAIAgentAny
			return n, true
		}
		ss, ok := l.strList(v, path)
		if !ok {
			return n, false
		}
		n.kind, n.strs = kindAIAgentNames, ss
	case "crawler":
		s, ok := l.str(v, path)
		if !ok {
			return n, false
		}
		st, known := crawlerStates[s]
		if !known {
			l.errorf(deref(v), path, "unknown crawler state %q (want verified, impostor, claimed or none)", clip(s))
			return n, false
		}
		n.kind, n.crawler = kindCrawler, st
	case "robots_disallowed":
		b, ok := l.boolean(v, path)
		if !ok {
			return n, false
		}
		if !b {
			l.errorf(deref(v), path, "robots_disallowed: false is not supported; use not: {robots_disallowed: true}")
			return n, false
		}
		n.kind = kindRobots
	case "all", "any":
		d := deref(v)
		if d == nil || d.Kind != yaml.SequenceNode {
			l.errorf(d, path, "expected a list of match maps, got %s", describe(d))
			return n, false
		}
		if len(d.Content) == 0 {
			l.errorf(d, path, "empty list")
			return n, false
		}
		good := true
		for i, c := range d.Content {
			child, ok := l.matchMap(c, fmt.Sprintf("%s[%d]", path, i), depth+1)
			good = good && ok
			n.children = append(n.children, child)
		}
		if !good {
			return n, false
		}
		n.kind = kindAll
		if f.key == "any" {
			n.kind = kindAny
		}
	case "not":
		child, ok := l.matchMap(v, path, depth+1)
		if !ok {
			return n, false
		}
		n.kind, n.children = kindNot, []node{child}
	default:
		l.errorf(f.k, path, "unknown matcher%s", suggest(f.key, matcherNames...))
		return n, false
	}
	return n, true
}

func (l *loader) regex(v *yaml.Node, path string) (*pattern, bool) {
	s, ok := l.str(v, path)
	if !ok {
		return nil, false
	}
	if len(s) > MaxRegexLen {
		l.errorf(deref(v), path, "regex is %d bytes, more than the limit of %d", len(s), MaxRegexLen)
		return nil, false
	}
	pat, err := compilePattern(s)
	if err != nil {
		l.errorf(deref(v), path, "%v", err)
		return nil, false
	}
	return pat, true
}

func (l *loader) headerRegex(v *yaml.Node, path string) (node, bool) {
	fields, ok := l.mapping(v, path, "a mapping of header name to regex")
	if !ok {
		return node{}, false
	}
	if len(fields) == 0 {
		l.errorf(deref(v), path, "empty mapping")
		return node{}, false
	}
	var children []node
	good := true
	for _, f := range fields {
		h, ok := l.headerName(f.key, f.k, f.path)
		pat, ok2 := l.regex(f.v, f.path)
		if !ok || !ok2 {
			good = false
			continue
		}
		children = append(children, node{kind: kindHeaderRe, header: h, pat: pat, set: -1})
	}
	if !good {
		return node{}, false
	}
	if len(children) == 1 {
		return children[0], true
	}
	return node{kind: kindAll, children: children, set: -1}, true
}

func (l *loader) headerName(s string, n *yaml.Node, path string) (string, bool) {
	if !isToken(s) {
		l.errorf(n, path, "invalid header name %q", clip(s))
		return "", false
	}
	return http.CanonicalHeaderKey(s), true
}

// isToken reports whether s is an HTTP token (method or header name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func (l *loader) prefixes(ss []string, v *yaml.Node, path string) ([]netip.Prefix, bool) {
	out := make([]netip.Prefix, 0, len(ss))
	good := true
	d := deref(v)
	for i, s := range ss {
		p, err := decision.ParsePrefix(clip(s))
		if err != nil {
			ep := path
			if d != nil && d.Kind == yaml.SequenceNode {
				ep = fmt.Sprintf("%s[%d]", path, i)
			}
			l.errorf(d, ep, "%v", err)
			good = false
			continue
		}
		out = append(out, p)
	}
	return out, good
}

// agentSet registers a set of user-agent substrings and returns its id;
// identical sets share one id.
func (l *loader) agentSet(ss []string) int {
	set := make([]string, len(ss))
	for i, s := range ss {
		b := []byte(s)
		for j, c := range b {
			b[j] = lower[c]
		}
		set[i] = string(b)
	}
	slices.Sort(set)
	set = slices.Compact(set)
	key := strings.Join(set, "\x00")
	if id, ok := l.setIDs[key]; ok {
		return id
	}
	id := len(l.sets)
	l.sets = append(l.sets, set)
	l.setIDs[key] = id
	return id
}
