package challenge

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/netip"
	"time"
)

// Serve answers r with a challenge chosen by weight: the no-JS check below
// NoJSWeightBelow, proof of work above. The challenge record (random id,
// client binding, expiry after ChallengeTTL) travels in the page, sealed
// with the keyring's record key: issuing touches no store, so unsolved
// challenges cost nothing to keep. A subresource request (image, script,
// fetch) gets a short refusal and no challenge: it could not show a page,
// and it must not disturb the cookies of the page that loaded it.
func (s *Service) Serve(w http.ResponseWriter, r *http.Request, client netip.Addr, weight int) {
	if isSubresource(r) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(s.cfg.StatusCode)
		if r.Method != http.MethodHead {
			_, _ = w.Write([]byte("A browser check is required: open the page itself in a browser.\n"))
		}
		return
	}

	m, difficulty := s.difficultyFor(weight)
	now := s.now()
	signer := s.keys.Load().signer()
	rec := record{
		method:     m,
		difficulty: difficulty,
		key:        signer.id,
		issued:     now,
		expires:    now.Add(s.cfg.ChallengeTTL),
		wait:       s.cfg.NoJSFallbackWait,
		prefix:     prefixOf(client),
		uaHash:     hashUA(r.UserAgent()),
		returnTo:   safeReturnPath(r.URL.RequestURI()),
	}
	if m == methodNoJS {
		rec.wait = noJSWait
	}
	var random [48]byte
	_, _ = rand.Read(random[:]) // never fails (crypto/rand panics instead)
	copy(rec.id[:], random[:16])
	copy(rec.seed[:], random[16:32])
	fresh := s.browserID(r, &rec.browser, random[32:])
	if fresh {
		s.setBrowserCookie(w, rec.browser)
	}

	var sealed [maxSealedEncodedLen]byte
	var seed [2 * len(rec.seed)]byte
	hex.Encode(seed[:], rec.seed[:])
	kind := pageNoJS
	if m == methodPoW {
		kind = pagePoW
	}
	s.pages.serveChallenge(w, r, s.cfg.StatusCode, kind, rec.seal(sealed[:0], signer.mac), seed[:], difficulty)
	s.metrics.issued.WithLabelValues(m.String()).Inc()
	s.emit(r, client, m.String(), EventIssued, "", 0)
}

// noJSWait is how long the plain no-JS check waits before its meta
// refresh; the server refuses a return before it. A client that only
// fetches the page never comes back at all.
const noJSWait = time.Second

// browserID fills id from the challenge cookie, or with random (16 bytes)
// if the cookie is missing or malformed, and reports whether it is new.
// One id per browser, not per challenge, so that several tabs challenged at
// once all pass.
func (s *Service) browserID(r *http.Request, id *[16]byte, random []byte) (fresh bool) {
	for _, line := range r.Header["Cookie"] {
		if v, _, ok := nextCookie(line, s.challengeCookie); ok && isHexID(v) {
			var src [idLen]byte
			if _, err := hex.Decode(id[:], src[:copy(src[:], v)]); err == nil {
				return false
			}
		}
	}
	copy(id[:], random)
	return true
}

func (s *Service) setBrowserCookie(w http.ResponseWriter, id [16]byte) {
	http.SetCookie(w, &http.Cookie{
		Name:     s.challengeCookie,
		Value:    hex.EncodeToString(id[:]),
		Path:     Prefix,
		MaxAge:   int(s.cfg.ChallengeTTL / time.Second),
		HttpOnly: true,
		Secure:   s.cfg.Secure,
		SameSite: http.SameSiteLaxMode,
	})
}

func (s *Service) serveUnavailable(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	setPageHeaders(h)
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Retry-After", "5")
	w.WriteHeader(http.StatusServiceUnavailable)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte("The browser check is unavailable for a moment; please try again.\n"))
	}
}

// isHexID reports whether s is a browser id: idLen lower-case hex digits.
func isHexID(s string) bool {
	if len(s) != idLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
