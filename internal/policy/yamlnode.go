package policy

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Helpers that read yaml.Node trees and report problems with their key
// path and line.

// clip shortens s for an error message: the input may be megabytes.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// field is one key of a YAML mapping.
type field struct {
	key  string
	k, v *yaml.Node
	path string
}

// deref follows aliases (*name) to the anchored node.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 16; i++ {
		n = n.Alias
	}
	return n
}

// mapping returns the keys of a mapping in order, reporting duplicate and
// non-scalar keys. ok is false if n is not a mapping.
func (l *loader) mapping(n *yaml.Node, path, what string) ([]field, bool) {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		l.errorf(n, path, "expected %s, got %s", what, describe(n))
		return nil, false
	}
	fields := make([]field, 0, len(n.Content)/2)
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k == nil || k.Kind != yaml.ScalarNode {
			l.errorf(k, path, "keys must be plain strings")
			continue
		}
		p := join(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			l.errorf(k, p, "duplicate key (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		fields = append(fields, field{key: k.Value, k: k, v: v, path: p})
	}
	return fields, true
}

func join(path, key string) string {
	if path == "" {
		return clip(key)
	}
	return path + "." + clip(key)
}

func describe(n *yaml.Node) string {
	switch {
	case n == nil:
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null":
		return "null"
	case n.Kind == yaml.ScalarNode:
		return fmt.Sprintf("%q", clip(n.Value))
	}
	return "an unsupported node"
}

func (l *loader) str(n *yaml.Node, path string) (string, bool) {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		l.errorf(n, path, "expected a string, got %s", describe(n))
		return "", false
	}
	return n.Value, true
}

// strList accepts a string or a list of strings; entries must not be empty.
func (l *loader) strList(n *yaml.Node, path string) ([]string, bool) {
	n = deref(n)
	if n != nil && n.Kind == yaml.ScalarNode && n.ShortTag() != "!!null" {
		if strings.TrimSpace(n.Value) == "" {
			l.errorf(n, path, "empty string")
			return nil, false
		}
		return []string{n.Value}, true
	}
	if n == nil || n.Kind != yaml.SequenceNode {
		l.errorf(n, path, "expected a string or a list of strings, got %s", describe(n))
		return nil, false
	}
	if len(n.Content) == 0 {
		l.errorf(n, path, "empty list")
		return nil, false
	}
	out := make([]string, 0, len(n.Content))
	ok := true
	for i, c := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		s, good := l.str(c, p)
		if good && strings.TrimSpace(s) == "" {
			l.errorf(deref(c), p, "empty string")
			good = false
		}
		ok = ok && good
		out = append(out, s)
	}
	return out, ok
}

func (l *loader) integer(n *yaml.Node, path string) (int, bool) {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		l.errorf(n, path, "expected an integer, got %s", describe(n))
		return 0, false
	}
	var v int
	if err := n.Decode(&v); err != nil {
		l.errorf(n, path, "invalid integer %q", n.Value)
		return 0, false
	}
	return v, true
}

func (l *loader) boolean(n *yaml.Node, path string) (v, ok bool) {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		l.errorf(n, path, "expected true or false, got %s", describe(n))
		return false, false
	}
	if err := n.Decode(&v); err != nil {
		l.errorf(n, path, "invalid boolean %q", n.Value)
		return false, false
	}
	return v, true
}

func hasKey(fields []field, key string) bool {
	for _, f := range fields {
		if f.key == key {
			return true
		}
	}
	return false
}

// suggest returns " (did you mean x?)" when key is a likely typo of one of
// the known keys.
func suggest(key string, known ...string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
