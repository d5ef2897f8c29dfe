package policy

import (
	"fmt"
	"net/netip"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/scrapedefense/scrapedefense/internal/decision"
)

// namedLists compiles the top-level lists: name → {cidrs, user_agents, files}.
func (l *loader) namedLists(n *yaml.Node, path string) {
	fields, ok := l.mapping(n, path, "a mapping of list name to list")
	if !ok {
		return
	}
	for _, f := range fields {
		if !validName(f.key) {
			l.errorf(f.k, f.path, "invalid list name %q: want 1 to %d characters of a-z, 0-9, '.', '_' and '-'", clip(f.key), MaxNameLen)
			continue
		}
		l.list(f)
	}
}

func (l *loader) list(f field) {
	nl := &namedList{set: -1}
	// Registered even when broken, so that rules referring to it do not
	// add a misleading "unknown list" error.
	l.lists[f.key] = nl
	fields, ok := l.mapping(f.v, f.path, "a mapping with cidrs, user_agents and/or files")
	if !ok {
		nl.broken = true
		return
	}
	var nets []netip.Prefix
	var agents []string
	good, content := true, false
	for _, g := range fields {
		switch g.key {
		case "description":
			_, ok := l.str(g.v, g.path)
			good = good && ok
		case "cidrs":
			content = true
			ss, ok := l.strList(g.v, g.path)
			if ok && l.count(len(ss), g.v, g.path) {
				ps, ok := l.prefixes(ss, g.v, g.path)
				good = good && ok
				nets = append(nets, ps...)
			} else {
				good = false
			}
		case "user_agents":
			content = true
			ss, ok := l.strList(g.v, g.path)
			if ok && l.count(len(ss), g.v, g.path) {
				agents = append(agents, ss...)
			} else {
				good = false
			}
		case "files":
			content = true
			files, ok := l.strList(g.v, g.path)
			if !ok {
				good = false
				break
			}
			d := deref(g.v)
			for i, name := range files {
				p := g.path
				if d.Kind == yaml.SequenceNode {
					p = fmt.Sprintf("%s[%d]", g.path, i)
				}
				ns, as, ok := l.listFile(name, d, p)
				good = good && ok
				nets = append(nets, ns...)
				agents = append(agents, as...)
			}
		default:
			l.errorf(g.k, g.path, "unknown key%s", suggest(g.key, "description", "cidrs", "user_agents", "files"))
			good = false
		}
	}
	if !content && ok {
		l.errorf(deref(f.v), f.path, "a list needs cidrs, user_agents or files")
		good = false
	}
	if !good {
		nl.broken = true
		return
	}
	if len(nets) > 0 {
		nl.nets = newPrefixSet(nets)
	}
	if len(agents) > 0 {
		nl.set = l.agentSet(agents)
	}
}

// count adds n entries to the total of all lists and reports whether the
// total is still within MaxListEntries.
func (l *loader) count(n int, at *yaml.Node, path string) bool {
	if l.items > l.maxItems {
		return false // already reported
	}
	l.items += n
	if l.items > l.maxItems {
		l.errorf(deref(at), path, "lists hold more than %d entries in all", l.maxItems)
		return false
	}
	return true
}

// listFile reads one list file: one entry a line, '#' starts a comment. A
// line that looks like an address (only hex digits, '.', ':' and '/', with
// a '.' or ':') must be an IP address or CIDR; any other line is a
// user-agent substring.
func (l *loader) listFile(name string, at *yaml.Node, path string) ([]netip.Prefix, []string, bool) {
	data, err := l.opts.ReadFile(name)
	if err != nil {
		l.errorf(at, path, "reading list file: %v", err)
		return nil, nil, false
	}
	var nets []netip.Prefix
	var agents []string
	bad := 0
	rest := string(data)
	for lineNo := 1; rest != ""; lineNo++ {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if !l.count(1, at, path) {
			return nil, nil, false
		}
		if !looksLikeAddress(line) {
			agents = append(agents, line)
			continue
		}
		p, err := decision.ParsePrefix(clip(line))
		if err != nil {
			if bad < maxFileErrors {
				l.errorf(at, path, "%s line %d: %v", name, lineNo, err)
			}
			bad++
			continue
		}
		nets = append(nets, p)
	}
	if bad > maxFileErrors {
		l.errorf(at, path, "%s: %d more invalid lines", name, bad-maxFileErrors)
	}
	return nets, agents, bad == 0
}

func looksLikeAddress(s string) bool {
	sep := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.' || c == ':':
			sep = true
		case c == '/' || '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F':
		default:
			return false
		}
	}
	return sep
}
