package challenge

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/netip"
	"time"
)

// Serve answers r with a challenge chosen by weight: the no-JS check below
// NoJSWeightBelow, proof of work above. It records the challenge in the
// store with a random id and ChallengeTTL. A subresource request (image,
// script, fetch) gets a short refusal and no record: it could not show a
// page, and it must not disturb the cookies of the page that loaded it.
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
	var random [32]byte
	_, _ = rand.Read(random[:]) // never fails (crypto/rand panics instead)
	var idBuf [idLen]byte
	hex.Encode(idBuf[:], random[:16])
	id := string(idBuf[:])

	browser, fresh := s.browserID(r, random[16:])
	rec := record{
		method:     m,
		difficulty: difficulty,
		issued:     s.now(),
		prefix:     prefixOf(client),
		uaHash:     hashUA(r.UserAgent()),
		browser:    browser,
		returnTo:   safeReturnPath(r.URL.RequestURI()),
	}
	if m == methodNoJS {
		rec.wait = noJSWait
	} else {
		rec.wait = s.cfg.NoJSFallbackWait
	}
	if err := s.kv.Set(r.Context(), recordPrefix+id, rec.marshal(), s.cfg.ChallengeTTL); err != nil {
		s.logger.Error("challenge: store challenge", "err", err)
		s.metrics.failed.WithLabelValues(m.String(), string(reasonStoreError)).Inc()
		s.serveUnavailable(w, r)
		return
	}
	if fresh {
		s.setBrowserCookie(w, browser)
	}

	kind := pageNoJS
	if m == methodPoW {
		kind = pagePoW
	}
	s.pages.serveChallenge(w, r, s.cfg.StatusCode, kind, id, difficulty)
	s.metrics.issued.WithLabelValues(m.String()).Inc()
	s.emit(r, client, m.String(), EventIssued, "", 0)
}

// noJSWait is how long the plain no-JS check waits before its meta
// refresh; the server refuses a return before it. A client that only
// fetches the page never comes back at all.
const noJSWait = time.Second

// browserID returns the id in the challenge cookie, or a new one made from
// random (16 bytes) if the cookie is missing or malformed. One id per
// browser, not per challenge, so that several tabs challenged at once all
// pass.
func (s *Service) browserID(r *http.Request, random []byte) (id string, fresh bool) {
	for _, line := range r.Header["Cookie"] {
		if v, _, ok := nextCookie(line, s.challengeCookie); ok && isHexID(v) {
			return v, false
		}
	}
	return hex.EncodeToString(random[:16]), true
}

func (s *Service) setBrowserCookie(w http.ResponseWriter, id string) {
	http.SetCookie(w, &http.Cookie{
		Name:     s.challengeCookie,
		Value:    id,
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

// isHexID reports whether s is a challenge or browser id: idLen lower-case
// hex digits.
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
