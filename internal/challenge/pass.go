package challenge

import (
	"crypto/ed25519"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// verifiedCacheSize bounds each of the two generations of verified tokens.
// Ed25519 verification costs tens of microseconds; a browser presents the
// same token on every request, so remembering that a token's signature was
// good keeps CheckPass within a few microseconds.
const verifiedCacheSize = 1 << 14

// maxCookieTries bounds how many same-named cookies one request may make
// CheckPass verify.
const maxCookieTries = 4

// CheckPass reports whether r carries a valid pass for client: signed by a
// key of the keyring, not expired, issued to the same network prefix and
// user agent. A request without a pass cookie is not a failure; a present
// but bad cookie is counted and reported with its reason. CheckPass never
// touches the store.
func (s *Service) CheckPass(r *http.Request, client netip.Addr) bool {
	now := s.now()
	ua := r.Header.Get("User-Agent")
	var first reason
	tries := 0
	for _, line := range r.Header["Cookie"] {
		for line != "" && tries < maxCookieTries {
			var value string
			var ok bool
			value, line, ok = nextCookie(line, s.cfg.CookieName)
			if !ok {
				continue
			}
			tries++
			if _, why := s.verifyPass(value, client, ua, now); why == "" {
				return true
			} else if first == "" {
				first = why
			}
		}
	}
	if first != "" {
		s.fail(r, client, passMethod, first)
	}
	return false
}

// nextCookie scans a Cookie header line for the next cookie called name. It
// returns that cookie's value (without quotes), the rest of the line, and
// whether one was found. It does not allocate.
func nextCookie(line, name string) (value, rest string, ok bool) {
	for line != "" {
		var part string
		part, line, _ = strings.Cut(line, ";")
		part = strings.TrimLeft(part, " \t")
		k, v, found := strings.Cut(part, "=")
		if !found || k != name {
			continue
		}
		v = strings.TrimRight(v, " \t")
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		return v, line, true
	}
	return "", "", false
}

// verifyPass checks one token. The order makes each reason mean what it
// says: only a token with our signature can be "expired", "foreign_prefix"
// or "wrong_ua".
func (s *Service) verifyPass(value string, client netip.Addr, ua string, now time.Time) (passClaims, reason) {
	var t rawToken
	if why := parseToken(value, &t); why != "" {
		return passClaims{}, why
	}
	c := t.claims()
	pub, ok := s.keys.Load().lookup(c.key)
	if !ok {
		s.requestReload()
		return c, reasonUnknownKey
	}
	if !s.verified.contains(&t) {
		if !ed25519.Verify(pub, t.payload(), t.signature()) {
			return c, reasonTampered
		}
		s.verified.add(&t)
	}
	if !now.Before(c.expires) {
		return c, reasonExpired
	}
	if c.prefix != prefixOf(client) {
		return c, reasonForeignPrefix
	}
	if c.uaHash != hashUA(ua) {
		return c, reasonWrongUA
	}
	return c, ""
}

// issuePass signs a pass for client and sets it as the pass cookie.
func (s *Service) issuePass(w http.ResponseWriter, m method, client netip.Addr, ua string) {
	now := s.now()
	signer := s.keys.Load().signer()
	c := passClaims{
		method:  m,
		key:     signer.id,
		issued:  now,
		expires: now.Add(s.cfg.PassTTL),
		prefix:  prefixOf(client),
		uaHash:  hashUA(ua),
	}
	http.SetCookie(w, &http.Cookie{
		Name:     s.cfg.CookieName,
		Value:    signPass(&c, signer.priv),
		Path:     "/",
		Expires:  c.expires,
		MaxAge:   int(s.cfg.PassTTL / time.Second),
		HttpOnly: true,
		Secure:   s.cfg.Secure,
		SameSite: http.SameSiteLaxMode,
	})
}

// verifiedCache remembers tokens whose signature was checked. It holds two
// generations: when the current one is full it becomes the old one and the
// previous old one is dropped, so memory stays bounded while tokens in use
// stay cached. Only the signature result is cached; expiry, prefix and user
// agent are checked on every request.
type verifiedCache struct {
	mu    sync.RWMutex
	cur   map[rawToken]struct{}
	old   map[rawToken]struct{}
	limit int
}

func newVerifiedCache(limit int) *verifiedCache {
	return &verifiedCache{cur: make(map[rawToken]struct{}), limit: limit}
}

func (c *verifiedCache) contains(t *rawToken) bool {
	c.mu.RLock()
	_, ok := c.cur[*t]
	if !ok {
		_, ok = c.old[*t]
	}
	c.mu.RUnlock()
	return ok
}

func (c *verifiedCache) add(t *rawToken) {
	c.mu.Lock()
	if len(c.cur) >= c.limit {
		c.old, c.cur = c.cur, make(map[rawToken]struct{}, c.limit/4)
	}
	c.cur[*t] = struct{}{}
	c.mu.Unlock()
}
