package aiservice

import (
	"iter"
	"strings"
)

func cutByte(s string, sep byte) (before, after string, found bool) {
	if i := strings.IndexByte(s, sep); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}

func splitByte(s string, sep byte) iter.Seq[string] {
	return func(yield func(string) bool) {
		for s != "" {
			var part string
			part, s, _ = cutByte(s, sep)
			if !yield(part) {
				return
			}
		}
	}
}

func equalFoldTrim(s, want string) bool {
	return strings.EqualFold(strings.TrimSpace(s), want)
}

func trimQuotes(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}
