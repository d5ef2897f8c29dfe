package clientip

import (
	"net/netip"
	"strings"
)

// scanner yields the elements of a comma-separated header from the right,
// across all lines of the header (the last line first), without allocating.
// It scans at most budget bytes in total.
type scanner struct {
	lines  []string
	li     int    // index of the line rest belongs to
	rest   string // unscanned left part of lines[li]
	live   bool   // whether rest still holds elements
	budget int
	quoted bool // honour quoted-strings (Forwarded)
}

// prev returns the next element to the left. ok is false when the header is
// exhausted; tooLong is true when the budget ran out first.
func (s *scanner) prev() (elem string, ok, tooLong bool) {
	for !s.live {
		if s.li == 0 {
			return "", false, false
		}
		s.li--
		s.rest = s.lines[s.li]
		s.live = true
	}
	window := s.rest
	truncated := false
	if len(window) > s.budget {
		window = window[len(window)-s.budget:]
		truncated = true
	}
	var i int
	if s.quoted {
		i = lastUnquoted(window, ',')
	} else {
		i = strings.LastIndexByte(window, ',')
	}
	if i < 0 {
		if truncated {
			return "", false, true
		}
		elem = s.rest
		s.rest, s.live = "", false
	} else {
		elem = window[i+1:]
		s.rest = s.rest[:len(s.rest)-len(window)+i]
	}
	s.budget -= len(elem) + 1 // the separator (or line break) counts too
	if s.budget < 0 {
		s.budget = 0
	}
	return elem, true, false
}

// lastUnquoted returns the index of the last sep in s that is not inside a
// quoted-string, or -1.
func lastUnquoted(s string, sep byte) int {
	inQuote := false
	for i := len(s) - 1; i >= 0; i-- {
		c := s[i]
		if inQuote {
			if c == '"' && !escapedAt(s, i) {
				inQuote = false
			}
			continue
		}
		switch c {
		case '"':
			inQuote = true
		case sep:
			return i
		}
	}
	return -1
}

// escapedAt reports whether s[i] is preceded by an odd run of backslashes,
// i.e. is a quoted-pair.
func escapedAt(s string, i int) bool {
	n := 0
	for j := i - 1; j >= 0 && s[j] == '\\'; j-- {
		n++
	}
	return n%2 == 1
}

// firstUnquoted returns the index of the first sep in s that is not inside a
// quoted-string, or -1.
func firstUnquoted(s string, sep byte) int {
	inQuote := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if inQuote {
			switch c {
			case '\\':
				i++ // skip the escaped character
			case '"':
				inQuote = false
			}
			continue
		}
		switch c {
		case '"':
			inQuote = true
		case sep:
			return i
		}
	}
	return -1
}

type nodeStatus uint8

const (
	nodeOK        nodeStatus = iota
	nodeEmpty                // empty list element: ignored (RFC 9110 §5.6.1)
	nodeUnknown              // "unknown" or obfuscated: the walk cannot go on
	nodeMalformed            // not something we understand
)

// parseForwardedElement extracts the for= node of one RFC 7239
// forwarded-element ("for=192.0.2.1;proto=https;by=...").
func parseForwardedElement(elem string) (netip.Addr, nodeStatus, string) {
	var forVal string
	found, empty := false, true
	rest := elem
	for {
		i := firstUnquoted(rest, ';')
		pair := rest
		if i >= 0 {
			pair, rest = rest[:i], rest[i+1:]
		}
		if pair = trimOWS(pair); pair != "" {
			empty = false
			eq := strings.IndexByte(pair, '=')
			if eq <= 0 {
				return netip.Addr{}, nodeMalformed, "parameter without name or value"
			}
			name, val := pair[:eq], pair[eq+1:]
			if !isToken(name) {
				return netip.Addr{}, nodeMalformed, "bad parameter name"
			}
			v, escaped, ok := unquote(val)
			if !ok {
				return netip.Addr{}, nodeMalformed, "bad parameter value"
			}
			if strings.EqualFold(name, "for") {
				if found {
					return netip.Addr{}, nodeMalformed, "duplicate for parameter"
				}
				if escaped {
					return netip.Addr{}, nodeMalformed, "escaped characters in for parameter"
				}
				found, forVal = true, v
			}
		}
		if i < 0 {
			break
		}
	}
	switch {
	case empty:
		return netip.Addr{}, nodeEmpty, ""
	case !found:
		// A hop that does not say whom it received the request from.
		return netip.Addr{}, nodeUnknown, ""
	case forVal == "":
		return netip.Addr{}, nodeMalformed, "empty for parameter"
	}
	return parseNode(forVal)
}

// unquote returns the content of a parameter value, which is a token or a
// quoted-string. Unquoted values are accepted leniently (proxies write
// "for=[2001:db8::1]:80" without the required quotes), but may not contain
// separators, quotes or white space. escaped reports a quoted-pair inside,
// which the returned content still holds verbatim.
func unquote(v string) (content string, escaped, ok bool) {
	if v == "" {
		return "", false, false
	}
	if v[0] != '"' {
		for i := 0; i < len(v); i++ {
			if c := v[i]; c <= ' ' || c == '"' || c == ';' || c == ',' || c == '\\' || c >= 0x7f {
				return "", false, false
			}
		}
		return v, false, true
	}
	for i := 1; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\':
			escaped = true
			i++
		case c == '"':
			if i != len(v)-1 {
				return "", false, false // text after the closing quote
			}
			return v[1:i], escaped, true
		case c < ' ' && c != '\t' || c == 0x7f:
			return "", false, false
		}
	}
	return "", false, false // no closing quote
}

// isToken reports whether s is an RFC 9110 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// parseNode parses one address as found in X-Forwarded-For or a Forwarded
// for= value: IPv4 or IPv6, IPv6 with or without brackets, with an optional
// port ("192.0.2.1:80", "[2001:db8::1]:4711"), or an identifier that hides
// the address ("unknown", "_hidden").
func parseNode(s string) (netip.Addr, nodeStatus, string) {
	if s == "" {
		return netip.Addr{}, nodeEmpty, ""
	}
	if a, ok := parseIPv4(s); ok {
		return a, nodeOK, "" // the common case, first
	}
	if s[0] == '_' || len(s) == len("unknown") && strings.EqualFold(s, "unknown") {
		return netip.Addr{}, nodeUnknown, ""
	}
	host := s
	if s[0] == '[' {
		j := strings.IndexByte(s, ']')
		if j < 0 {
			return netip.Addr{}, nodeMalformed, "unclosed bracket"
		}
		host = s[1:j]
		if after := s[j+1:]; after != "" {
			if after[0] != ':' || !validPort(after[1:]) {
				return netip.Addr{}, nodeMalformed, "bad port"
			}
		}
	} else if i, n := colons(s); n == 1 {
		// One colon: IPv4 with a port. More than one: bare IPv6.
		host = s[:i]
		if !validPort(s[i+1:]) {
			return netip.Addr{}, nodeMalformed, "bad port"
		}
	}
	if a, ok := parseIPv4(host); ok && len(host) < len(s) {
		return a, nodeOK, ""
	}
	if strings.IndexByte(host, '%') >= 0 {
		return netip.Addr{}, nodeMalformed, "zoned address"
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, nodeMalformed, "not an IP address"
	}
	return a.Unmap(), nodeOK, ""
}

// colons returns the index of the first colon in s and how many there are
// (counting stops at two).
func colons(s string) (first, n int) {
	first = -1
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			if n++; n == 1 {
				first = i
			} else {
				return first, n
			}
		}
	}
	return first, n
}

// parseIPv4 is a fast path for dotted-quad IPv4, the common case. It
// accepts exactly what netip.ParseAddr accepts for IPv4 (no leading zeros)
// and reports false for anything else, which then goes to netip.ParseAddr.
func parseIPv4(s string) (netip.Addr, bool) {
	var ip [4]byte
	field, digits, val := 0, 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case '0' <= c && c <= '9':
			if digits == 1 && val == 0 {
				return netip.Addr{}, false // leading zero
			}
			val = val*10 + int(c-'0')
			digits++
			if val > 255 {
				return netip.Addr{}, false
			}
		case c == '.' && digits > 0 && field < 3:
			ip[field] = byte(val)
			field++
			digits, val = 0, 0
		default:
			return netip.Addr{}, false
		}
	}
	if field != 3 || digits == 0 {
		return netip.Addr{}, false
	}
	ip[3] = byte(val)
	return netip.AddrFrom4(ip), true
}

// validPort accepts a decimal port (0-65535) or an RFC 7239 obfuscated
// port ("_abc").
func validPort(p string) bool {
	if p == "" {
		return false
	}
	if p[0] == '_' {
		for i := 1; i < len(p); i++ {
			c := p[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
				return false
			}
		}
		return len(p) > 1
	}
	if len(p) > 5 {
		return false
	}
	n := 0
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= 65535
}

func trimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
