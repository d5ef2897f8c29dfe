// Package clientip finds the address of the client behind zero or more
// trusted reverse proxies.
//
// Forwarding headers are believed only when the TCP peer is a trusted proxy,
// and then only as far as the chain of trusted proxies reaches: the address
// list is walked from the right (the entries appended by our own proxies)
// and the first untrusted address is the client. Everything to the left of
// it was written by the client, or by proxies we do not know, and is
// ignored. This is why a client that prepends fake addresses, or sends
// garbage, cannot choose its identity and cannot make the walk fail.
package clientip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/scrapedefense/scrapedefense/internal/decision"
)

// Bounds on the work done for one request. The walk stops as soon as it
// meets an untrusted address, so honest requests touch only a few bytes;
// the bounds matter for long chains of trusted proxies and hostile input.
const (
	// MaxHops is the most addresses examined in one header.
	MaxHops = 32
	// MaxHeaderBytes is the most header bytes scanned in one header
	// (all lines of it together).
	MaxHeaderBytes = 4096
)

var (
	// ErrMalformed reports a forwarding header entry that is not an address
	// list element we understand. ClientAddr falls back to the peer.
	ErrMalformed = errors.New("malformed forwarding header")
	// ErrTooLong reports a forwarding header whose walk went past MaxHops
	// or MaxHeaderBytes. ClientAddr falls back to the peer.
	ErrTooLong = errors.New("forwarding header too long")
)

// ParseError describes why a forwarding header was rejected. It wraps
// ErrMalformed or ErrTooLong, so callers test it with errors.Is.
type ParseError struct {
	Header string // canonical header name, e.g. "X-Forwarded-For"
	Entry  string // the offending list element, cut to 64 bytes; may be empty
	Reason string // what is wrong with it
	Err    error  // ErrMalformed or ErrTooLong
}

func (e *ParseError) Error() string {
	if e.Entry == "" {
		return fmt.Sprintf("clientip: %s: %v: %s", e.Header, e.Err, e.Reason)
	}
	return fmt.Sprintf("clientip: %s: %v: %s in %q", e.Header, e.Err, e.Reason, e.Entry)
}

func (e *ParseError) Unwrap() error { return e.Err }

// headerKind says how a header's value is laid out.
type headerKind uint8

const (
	kindList      headerKind = iota // comma-separated addresses: X-Forwarded-For and friends
	kindForwarded                   // RFC 7239 forwarded-elements
)

// headerKindOf maps canonical header names to their syntax. Single-address
// headers (X-Real-IP, True-Client-IP, CF-Connecting-IP) are parsed as lists
// too: a second value there can only come from a client, and walking from
// the right handles it safely.
func headerKindOf(canonical string) (headerKind, bool) {
	switch canonical {
	case "Forwarded":
		return kindForwarded, true
	case "X-Forwarded-For", "X-Real-Ip", "True-Client-Ip", "Cf-Connecting-Ip":
		return kindList, true
	}
	return 0, false
}

// DefaultHeaders returns the headers consulted, in priority order, when
// NewResolver is given none.
func DefaultHeaders() []string {
	return []string{"Forwarded", "X-Forwarded-For", "X-Real-IP"}
}

type header struct {
	name string // canonical, so http.Header can be indexed without allocating
	kind headerKind
}

// Resolver resolves client addresses. It is immutable and safe for
// concurrent use.
type Resolver struct {
	trusted4 []net4
	trusted6 []net6
	headers  []header
}

// net4 and net6 are prefixes as integers and masks: testing membership this
// way costs a fraction of netip.Prefix.Contains, and every hop is tested.
type net4 struct{ addr, mask uint32 }

type net6 struct{ hi, lo, mhi, mlo uint64 }

func newNet4(p netip.Prefix) net4 {
	a := p.Addr().As4()
	return net4{addr: binary.BigEndian.Uint32(a[:]), mask: ^uint32(0) << (32 - p.Bits())}
}

func newNet6(p netip.Prefix) net6 {
	a := p.Addr().As16()
	n := net6{hi: binary.BigEndian.Uint64(a[:8]), lo: binary.BigEndian.Uint64(a[8:])}
	if b := p.Bits(); b <= 64 {
		n.mhi = ^uint64(0) << (64 - b)
	} else {
		n.mhi, n.mlo = ^uint64(0), ^uint64(0)<<(128-b)
	}
	return n
}

// NewResolver returns a Resolver that believes the given headers, in
// priority order, from peers inside trusted. With no headers it uses
// DefaultHeaders. Header names are case-insensitive; names other than
// Forwarded, X-Forwarded-For, X-Real-IP, True-Client-IP and CF-Connecting-IP
// are an error.
func NewResolver(trusted []netip.Prefix, headers []string) (*Resolver, error) {
	if len(headers) == 0 {
		headers = DefaultHeaders()
	}
	r := &Resolver{}
	var errs []error
	for i, p := range trusted {
		if !p.IsValid() {
			errs = append(errs, fmt.Errorf("trusted proxy %d: invalid prefix", i))
			continue
		}
		p = normalizePrefix(p)
		if p.Addr().Is4() {
			r.trusted4 = append(r.trusted4, newNet4(p))
		} else {
			r.trusted6 = append(r.trusted6, newNet6(p))
		}
	}
	seen := make(map[string]bool, len(headers))
	for _, h := range headers {
		name := http.CanonicalHeaderKey(strings.TrimSpace(h))
		kind, ok := headerKindOf(name)
		if !ok {
			errs = append(errs, fmt.Errorf("unsupported forwarding header %q", h))
			continue
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		r.headers = append(r.headers, header{name: name, kind: kind})
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("clientip: %w", errors.Join(errs...))
	}
	return r, nil
}

// Trusted reports whether addr belongs to a trusted proxy.
func (r *Resolver) Trusted(addr netip.Addr) bool {
	addr = addr.Unmap()
	switch {
	case addr.Is4():
		a4 := addr.As4()
		x := binary.BigEndian.Uint32(a4[:])
		for _, n := range r.trusted4 {
			if x&n.mask == n.addr {
				return true
			}
		}
	case addr.Is6() && addr.Zone() == "":
		a16 := addr.As16()
		hi, lo := binary.BigEndian.Uint64(a16[:8]), binary.BigEndian.Uint64(a16[8:])
		for _, n := range r.trusted6 {
			if hi&n.mhi == n.hi && lo&n.mlo == n.lo {
				return true
			}
		}
	}
	return false
}

// ClientAddr returns the client's address for a request that arrived from
// peer with headers h.
//
// If peer is not trusted, it is the client. Otherwise the first configured
// header that is present (has a non-blank line) is walked from the right,
// skipping trusted addresses; the first untrusted one is the client, and if
// all are trusted the leftmost is. An "unknown" or obfuscated ("_hidden")
// identifier stops the walk: the last trusted address passed, or the peer,
// is returned.
//
// On a malformed or over-long header ClientAddr returns the peer together
// with a *ParseError; callers count it and may reject the request.
// IPv4-mapped IPv6 addresses are returned as IPv4.
func (r *Resolver) ClientAddr(peer netip.Addr, h http.Header) (netip.Addr, error) {
	peer = peer.Unmap()
	if !r.Trusted(peer) {
		return peer, nil
	}
	for _, hd := range r.headers {
		lines := h[hd.name]
		if !hasContent(lines) {
			continue
		}
		addr, err := r.walk(hd, lines)
		if err != nil {
			return peer, err
		}
		if !addr.IsValid() {
			return peer, nil
		}
		return addr, nil
	}
	return peer, nil
}

// walk returns the client address from one header, or the zero Addr when
// the header names no usable address.
func (r *Resolver) walk(hd header, lines []string) (netip.Addr, error) {
	sc := scanner{lines: lines, li: len(lines), budget: MaxHeaderBytes, quoted: hd.kind == kindForwarded}
	var last netip.Addr // the nearest trusted address passed so far
	hops := 0
	for {
		elem, ok, tooLong := sc.prev()
		if tooLong {
			return netip.Addr{}, &ParseError{Header: hd.name, Reason: fmt.Sprintf("more than %d bytes", MaxHeaderBytes), Err: ErrTooLong}
		}
		if !ok {
			return last, nil
		}
		var (
			addr   netip.Addr
			st     nodeStatus
			reason string
		)
		if hd.kind == kindForwarded {
			addr, st, reason = parseForwardedElement(elem)
		} else {
			addr, st, reason = parseNode(trimOWS(elem))
		}
		switch st {
		case nodeEmpty:
			continue
		case nodeUnknown:
			return last, nil
		case nodeMalformed:
			return netip.Addr{}, &ParseError{Header: hd.name, Entry: clip(elem), Reason: reason, Err: ErrMalformed}
		}
		hops++
		if hops > MaxHops {
			return netip.Addr{}, &ParseError{Header: hd.name, Reason: fmt.Sprintf("more than %d hops", MaxHops), Err: ErrTooLong}
		}
		if !r.Trusted(addr) {
			return addr, nil
		}
		last = addr
	}
}

func hasContent(lines []string) bool {
	for _, l := range lines {
		if trimOWS(l) != "" {
			return true
		}
	}
	return false
}

func clip(s string) string {
	const n = 64
	if len(s) > n {
		return s[:n]
	}
	return s
}

// normalizePrefix masks p and rewrites IPv4-mapped prefixes as IPv4, because
// addresses are unmapped before they are compared.
func normalizePrefix(p netip.Prefix) netip.Prefix {
	a := p.Addr().WithZone("")
	if a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked()
	}
	return netip.PrefixFrom(a, p.Bits()).Masked()
}

// ParsePrefixes parses a list of CIDR prefixes or bare addresses (taken as
// /32 or /128), as found in configuration. Host bits are masked off and
// IPv4-mapped prefixes become IPv4. Every bad entry is reported, with its
// index, in one joined error.
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	var errs []error
	for i, s := range list {
		p, err := parsePrefix(strings.TrimSpace(s))
		if err != nil {
			errs = append(errs, fmt.Errorf("entry %d %q: %w", i, s, err))
			continue
		}
		out = append(out, p)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "%") {
		return netip.Prefix{}, errors.New("zones are not allowed")
	}
	return decision.ParsePrefix(s)
}
