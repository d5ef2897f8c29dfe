package crawlers

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Bounds on one crawler's published list.
const (
	// maxPrefixes is far above the largest real list (Googlebot: ~300).
	maxPrefixes = 100_000
	// Prefixes broader than these would verify a large share of the
	// Internet; a list that contains one is rejected as corrupt.
	minBitsV4 = 8
	minBitsV6 = 16
)

// errNoPrefixes reports a list without a single prefix.
var errNoPrefixes = errors.New("no prefixes")

// parseRanges reads a crawler's address list: the operators' JSON
// ({"prefixes":[{"ipv4Prefix":...},{"ipv6Prefix":...}]}, or a JSON array of
// strings) or plain text, one prefix or address a line with '#' comments.
// It returns the prefixes and, for text, the URL of a "# source:" line.
func parseRanges(data []byte) (prefixes []netip.Prefix, source string, err error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
		prefixes, err = parseRangesJSON(trimmed)
	} else {
		prefixes, source, err = parseRangesText(data)
	}
	if err == nil && len(prefixes) == 0 {
		err = errNoPrefixes
	}
	return prefixes, source, err
}

// parseRangesText reads one prefix or bare address a line. Blank lines and
// '#' comments are skipped; a comment "# source: URL" names the list's
// upstream.
func parseRangesText(data []byte) ([]netip.Prefix, string, error) {
	var (
		prefixes []netip.Prefix
		source   string
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		if c, ok := strings.CutPrefix(line, "#"); ok {
			if v, ok := strings.CutPrefix(strings.TrimSpace(c), "source:"); ok && source == "" {
				source = strings.TrimSpace(v)
			}
			continue
		}
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" {
			continue
		}
		p, err := parsePrefix(line)
		if err != nil {
			return nil, "", fmt.Errorf("line %d: %w", n, err)
		}
		if len(prefixes) == maxPrefixes {
			return nil, "", fmt.Errorf("more than %d prefixes", maxPrefixes)
		}
		prefixes = append(prefixes, p)
	}
	if err := sc.Err(); err != nil {
		return nil, "", fmt.Errorf("reading ranges: %w", err)
	}
	return prefixes, source, nil
}

// prefixEntry is one element of the operators' "prefixes" array. Google,
// Bing, Apple, OpenAI, Perplexity, Common Crawl and others share this shape.
type prefixEntry struct {
	IPv4Prefix string `json:"ipv4Prefix"`
	IPv6Prefix string `json:"ipv6Prefix"`
}

// parseRangesJSON reads {"prefixes":[{"ipv4Prefix":"..."},{"ipv6Prefix":"..."}]}
// or ["192.0.2.0/24", ...].
func parseRangesJSON(data []byte) ([]netip.Prefix, error) {
	var raw []string
	if trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff"); len(trimmed) > 0 && trimmed[0] == '[' {
		if err := json.Unmarshal(trimmed, &raw); err != nil {
			return nil, fmt.Errorf("ranges JSON: %w", err)
		}
	} else {
		var doc struct {
			Prefixes []prefixEntry `json:"prefixes"`
		}
		if err := json.Unmarshal(trimmed, &doc); err != nil {
			return nil, fmt.Errorf("ranges JSON: %w", err)
		}
		raw = make([]string, 0, len(doc.Prefixes))
		for i, e := range doc.Prefixes {
			switch {
			case e.IPv4Prefix != "" && e.IPv6Prefix != "":
				return nil, fmt.Errorf("prefixes[%d]: both ipv4Prefix and ipv6Prefix", i)
			case e.IPv4Prefix != "":
				raw = append(raw, e.IPv4Prefix)
			case e.IPv6Prefix != "":
				raw = append(raw, e.IPv6Prefix)
			default:
				return nil, fmt.Errorf("prefixes[%d]: no ipv4Prefix or ipv6Prefix", i)
			}
		}
	}
	if len(raw) > maxPrefixes {
		return nil, fmt.Errorf("more than %d prefixes", maxPrefixes)
	}
	prefixes := make([]netip.Prefix, 0, len(raw))
	for i, s := range raw {
		p, err := parsePrefix(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("prefixes[%d]: %w", i, err)
		}
		prefixes = append(prefixes, p)
	}
	return prefixes, nil
}

// parsePrefix accepts a CIDR prefix or a bare address (a /32 or /128).
// IPv4-mapped IPv6 prefixes become IPv4 prefixes; overly broad prefixes are
// refused.
func parsePrefix(s string) (netip.Prefix, error) {
	var p netip.Prefix
	if strings.IndexByte(s, '/') >= 0 {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, err
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q: zoned address", s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	p = p.Masked()
	if (p.Addr().Is4() && p.Bits() < minBitsV4) || (p.Addr().Is6() && p.Bits() < minBitsV6) {
		return netip.Prefix{}, fmt.Errorf("%q: prefix broader than /%d (IPv4) or /%d (IPv6)", s, minBitsV4, minBitsV6)
	}
	return p, nil
}

// prefixSet answers "is this address in one of these prefixes" by binary
// search over sorted, merged intervals, without allocating.
type prefixSet struct {
	v4 []span4
	v6 []span6
}

type span4 struct{ lo, hi uint32 }

type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo) }

type span6 struct{ lo, hi u128 }

func newPrefixSet(prefixes []netip.Prefix) prefixSet {
	var s prefixSet
	for _, p := range prefixes {
		p = p.Masked()
		if p.Addr().Is4() {
			a := p.Addr().As4()
			lo := binary.BigEndian.Uint32(a[:])
			hi := lo | uint32(uint64(1)<<(32-p.Bits())-1)
			s.v4 = append(s.v4, span4{lo, hi})
			continue
		}
		lo := addr128(p.Addr())
		hi := lo
		if host := 128 - p.Bits(); host >= 64 {
			hi.lo = ^uint64(0)
			hi.hi |= uint64(1)<<(host-64) - 1
			if host == 128 {
				hi.hi = ^uint64(0)
			}
		} else {
			hi.lo |= uint64(1)<<host - 1
		}
		s.v6 = append(s.v6, span6{lo, hi})
	}
	slices.SortFunc(s.v4, func(a, b span4) int {
		switch {
		case a.lo < b.lo:
			return -1
		case a.lo > b.lo:
			return 1
		}
		return 0
	})
	s.v4 = mergeSpans(s.v4, func(prev *span4, next span4) bool {
		// Merge overlapping or adjacent intervals.
		if prev.hi == ^uint32(0) || next.lo <= prev.hi+1 {
			prev.hi = max(prev.hi, next.hi)
			return true
		}
		return false
	})
	slices.SortFunc(s.v6, func(a, b span6) int {
		switch {
		case a.lo.less(b.lo):
			return -1
		case b.lo.less(a.lo):
			return 1
		}
		return 0
	})
	s.v6 = mergeSpans(s.v6, func(prev *span6, next span6) bool {
		if !prev.hi.less(next.lo) {
			if prev.hi.less(next.hi) {
				prev.hi = next.hi
			}
			return true
		}
		return false
	})
	return s
}

func mergeSpans[S any](spans []S, merge func(prev *S, next S) bool) []S {
	out := spans[:0]
	for _, sp := range spans {
		if len(out) > 0 && merge(&out[len(out)-1], sp) {
			continue
		}
		out = append(out, sp)
	}
	return slices.Clip(out)
}

func addr128(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// contains reports whether addr lies in the set. IPv4-mapped IPv6
// addresses are looked up as IPv4.
func (s *prefixSet) contains(addr netip.Addr) bool {
	if !addr.IsValid() {
		return false
	}
	addr = addr.Unmap()
	if addr.Is4() {
		b := addr.As4()
		a := binary.BigEndian.Uint32(b[:])
		// Find the last span with lo <= a.
		lo, hi := 0, len(s.v4)
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if s.v4[m].lo <= a {
				lo = m + 1
			} else {
				hi = m
			}
		}
		return lo > 0 && a <= s.v4[lo-1].hi
	}
	a := addr128(addr)
	lo, hi := 0, len(s.v6)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if !a.less(s.v6[m].lo) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo > 0 && !s.v6[lo-1].hi.less(a)
}
