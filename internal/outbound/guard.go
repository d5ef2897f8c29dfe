// Package outbound builds HTTP clients for calls to operator-configured URLs
// (alert webhooks, Slack, PagerDuty, LLM endpoints). Those URLs come from
// configuration that may be edited through the admin UI, so they are
// treated as untrusted: the client refuses to connect to loopback, private,
// link-local (cloud metadata), CGNAT and other non-public addresses unless
// the operator allows them. The check runs on the address actually dialled,
// after DNS resolution, so a name that resolves (or re-resolves) to an
// internal address is caught too.
package outbound

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// ErrForbiddenAddress is wrapped by every error caused by the SSRF guard.
var ErrForbiddenAddress = errors.New("outbound: forbidden address")

// ErrBadURL is wrapped by CheckURL errors about the URL's form.
var ErrBadURL = errors.New("outbound: bad URL")

// Policy decides which destination addresses are allowed.
type Policy struct {
	// AllowPrivate turns the guard off: every address is allowed. For
	// tests and for deployments whose receivers live on a private network.
	AllowPrivate bool
	// Allow lists prefixes that are allowed although they are non-public,
	// e.g. 10.0.5.0/24 for an internal Alertmanager or a local LLM.
	Allow []netip.Prefix
}

// forbidden lists non-public ranges (IANA special-purpose registries) that
// are refused by default. IPv4-mapped IPv6 addresses are unmapped before the
// check.
var forbidden = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network", unspecified
	netip.MustParsePrefix("10.0.0.0/8"),      // RFC 1918
	netip.MustParsePrefix("100.64.0.0/10"),   // CGNAT, RFC 6598
	netip.MustParsePrefix("127.0.0.0/8"),     // loopback
	netip.MustParsePrefix("169.254.0.0/16"),  // link-local, cloud metadata
	netip.MustParsePrefix("172.16.0.0/12"),   // RFC 1918
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // TEST-NET-1
	netip.MustParsePrefix("192.168.0.0/16"),  // RFC 1918
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // TEST-NET-2
	netip.MustParsePrefix("203.0.113.0/24"),  // TEST-NET-3
	netip.MustParsePrefix("224.0.0.0/4"),     // multicast
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
	netip.MustParsePrefix("::/128"),          // unspecified
	netip.MustParsePrefix("::1/128"),         // loopback
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64: may embed an internal IPv4
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("fc00::/7"),        // unique local (ULA)
	netip.MustParsePrefix("fe80::/10"),       // link-local
	netip.MustParsePrefix("fec0::/10"),       // deprecated site-local
	netip.MustParsePrefix("ff00::/8"),        // multicast
}

// CheckAddr reports whether the policy allows connecting to addr.
func (p Policy) CheckAddr(addr netip.Addr) error {
	if !addr.IsValid() {
		return fmt.Errorf("%w: invalid address", ErrForbiddenAddress)
	}
	addr = addr.Unmap().WithZone("")
	if p.AllowPrivate {
		return nil
	}
	for _, a := range p.Allow {
		if a.Contains(addr) {
			return nil
		}
	}
	for _, f := range forbidden {
		if f.Contains(addr) {
			return fmt.Errorf("%w: %s is in non-public range %s", ErrForbiddenAddress, addr, f)
		}
	}
	return nil
}

// control is a net.Dialer Control hook: it runs after name resolution with
// the literal address about to be connected, so it sees the IP that the
// connection really goes to.
func (p Policy) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot parse dial address %q", ErrForbiddenAddress, address)
	}
	return p.CheckAddr(ap.Addr())
}

// Dialer returns a dialer whose connections are checked against the policy.
func (p Policy) Dialer(base net.Dialer) *net.Dialer {
	d := base
	d.Control = p.control
	d.ControlContext = nil
	return &d
}

// CheckURL validates a configured URL: http or https, a host, no user
// credentials embedded in it, and, when the host is an IP literal or a
// well-known local name, an address the policy allows. Names are checked
// again when they are dialled.
func (p Policy) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse echoes the URL, which may hold a secret (a Slack
		// webhook path, a key in the query): do not repeat it.
		return fmt.Errorf("%w: cannot parse", ErrBadURL)
	}
	switch u.Scheme {
	case "http", "https":
	default:
		return fmt.Errorf("%w: scheme must be http or https", ErrBadURL)
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("%w: no host", ErrBadURL)
	}
	if u.User != nil {
		return fmt.Errorf("%w: credentials in the URL are not supported", ErrBadURL)
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		return p.CheckAddr(addr)
	}
	if p.AllowPrivate {
		return nil
	}
	lower := strings.ToLower(strings.TrimSuffix(host, "."))
	if lower == "localhost" || strings.HasSuffix(lower, ".localhost") {
		return fmt.Errorf("%w: %s is a loopback name", ErrForbiddenAddress, host)
	}
	return nil
}

// CheckURL validates raw with the default policy (no private addresses).
func CheckURL(raw string) error { return Policy{}.CheckURL(raw) }

// RedactURL returns raw reduced to scheme and host, for logs and errors:
// webhook URLs carry their secret in the path or the query.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "[redacted]"
	}
	return u.Scheme + "://" + u.Host + "/…"
}
