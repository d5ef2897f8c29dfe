package edge

import (
	"net/http"
	"net/netip"
	"net/url"
	"slices"

	"github.com/scrapedefense/scrapedefense/internal/clientip"
	"github.com/scrapedefense/scrapedefense/internal/decision"
	"github.com/scrapedefense/scrapedefense/internal/policy"
)

// ForwardAuth answers nginx auth_request, Caddy forward_auth and Traefik
// ForwardAuth sub-requests: 2xx allows, 403 blocks, 429 throttles. The
// original request is described by the X-Forwarded-* / X-Original-* headers
// the calling proxy sets; the caller itself is always treated as a trusted
// proxy, since that is what it is.
type ForwardAuth struct {
	h        *Handler
	resolver interface {
		ClientAddr(peer netip.Addr, h http.Header) (netip.Addr, error)
	}
}

func (f *ForwardAuth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := f.h
	start := h.now()
	peerAP, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		h.tel.Error(errBadPeer)
		h.finish(w, r, start, "forward_auth", http.StatusBadRequest, "bad peer address")
		return
	}
	client, err := f.resolver.ClientAddr(peerAP.Addr().Unmap(), r.Header)
	if err != nil {
		h.tel.Error(errBadForwarded)
		h.finish(w, r, start, "forward_auth", http.StatusBadRequest, "malformed forwarding header")
		return
	}
	method := firstHeader(r.Header, "X-Forwarded-Method", "X-Original-Method")
	if method == "" {
		method = http.MethodGet
	}
	uri := firstHeader(r.Header, "X-Forwarded-Uri", "X-Original-Uri", "X-Original-Url")
	path := "/"
	if uri != "" {
		if u, err := url.ParseRequestURI(uri); err == nil {
			path = u.Path
		} else if u, err := url.Parse(uri); err == nil && u.Path != "" {
			path = u.Path
		}
	}
	host := firstHeader(r.Header, "X-Forwarded-Host")
	if host == "" {
		host = r.Host
	}
	req := policy.Request{
		Addr:      client,
		Method:    method,
		Host:      host,
		Path:      path,
		UserAgent: r.Header.Get("User-Agent"),
		Header:    r.Header,
	}
	var v Verdict
	h.fp.Decide(&req, start, true, &v)
	h.settleChallenge(r, client, &v)
	h.verdicts.inc(v.Action, v.Rule)
	if !v.Trivial() {
		h.queue.TryPush(newEvent(r.Header, &req, &v, start, "forward-auth"))
	}
	w.Header().Set("X-Scrapedefense-Verdict", v.Action.String())
	w.Header().Set("Cache-Control", "no-store")
	code := http.StatusOK
	switch v.Action {
	case decision.ActionAllow:
		w.WriteHeader(code)
	case decision.ActionThrottle:
		// nginx auth_request treats anything but 2xx, 401 and 403 as an
		// internal error, so nginx setups ask for 403 and turn it back into
		// a 429 from the verdict header (see docs/edge.md).
		code = http.StatusTooManyRequests
		if r.URL.Query().Get("throttle_status") == "403" {
			code = http.StatusForbidden
		}
		w.Header().Set("Retry-After", retryAfter(&v))
		http.Error(w, "Too many requests. Please slow down.", code)
	default:
		// A challenge cannot be served through an auth sub-request: the
		// verdict header says "challenge" so the proxy can route the client
		// to the edge (see docs/edge.md); a pass cookie is honoured.
		code = http.StatusForbidden
		http.Error(w, "Forbidden", code)
	}
	h.tel.ObserveHTTP("forward_auth", r.Method, code, h.now().Sub(start))
}

// callerResolver finds the client behind a forward-auth caller. The caller
// is a proxy by definition, so its forwarding headers are read whatever its
// address; the entries in them are trusted only as edge.trusted_proxies
// says. Trusting every entry instead would make the leftmost one the
// client, and that one is whatever the client sent (nginx's
// $proxy_add_x_forwarded_for keeps it): a blocked client could pick any
// identity.
type callerResolver struct{ r *clientip.Resolver }

// callerStandIn takes the caller's place as the peer of the walk: an address
// from the discard-only prefix 100::/64 (RFC 6666), which no real peer has.
var callerStandIn = netip.MustParseAddr("100::1")

func newCallerResolver(trusted []netip.Prefix) (*callerResolver, error) {
	r, err := clientip.NewResolver(
		slices.Concat(trusted, []netip.Prefix{netip.PrefixFrom(callerStandIn, 128)}),
		[]string{"X-Forwarded-For", "X-Real-IP", "Forwarded"})
	if err != nil {
		return nil, err
	}
	return &callerResolver{r: r}, nil
}

// ClientAddr returns the client's address for a sub-request from peer.
func (c *callerResolver) ClientAddr(peer netip.Addr, h http.Header) (netip.Addr, error) {
	addr, err := c.r.ClientAddr(callerStandIn, h)
	if addr == callerStandIn {
		addr = peer // no usable header: the caller is the client
	}
	return addr, err
}

func firstHeader(h http.Header, names ...string) string {
	for _, n := range names {
		if v := h.Get(n); v != "" {
			return v
		}
	}
	return ""
}
