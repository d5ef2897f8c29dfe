package challenge

import (
	"context"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxFormBytes bounds the verify request body: a sealed record (at most
// maxSealedEncodedLen) and two short fields.
const maxFormBytes = 4 << 10

// waitTolerance absorbs clock differences between instances sharing a
// store when checking the no-JS wait.
const waitTolerance = 250 * time.Millisecond

type clientKey struct{}

// ContextWithClient returns a context carrying the client address the edge
// resolved (trusted proxies, X-Forwarded-For, PROXY protocol). Handler uses
// it; without it, Handler falls back to the connection's peer address.
func ContextWithClient(ctx context.Context, client netip.Addr) context.Context {
	return context.WithValue(ctx, clientKey{}, client)
}

func clientFrom(r *http.Request) netip.Addr {
	if a, ok := r.Context().Value(clientKey{}).(netip.Addr); ok && a.IsValid() {
		return a
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// Handler serves the endpoints under Prefix: static assets, the proof of
// work verification (POST verify) and the no-JS return (GET nojs). The
// client address comes from ContextWithClient, else from the peer.
func (s *Service) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.ServeEndpoint(w, r, clientFrom(r))
	})
}

// ServeEndpoint is Handler with the client address given explicitly.
func (s *Service) ServeEndpoint(w http.ResponseWriter, r *http.Request, client netip.Addr) {
	name, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	switch {
	case name == "verify":
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		s.serveVerify(w, r, client)
	case name == "nojs":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		s.serveNoJS(w, r, client)
	case strings.HasPrefix(name, "assets/"):
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		s.pages.serveAsset(w, r, strings.TrimPrefix(name, "assets/"))
	default:
		http.NotFound(w, r)
	}
}

// verifyForm is a parsed proof-of-work submission.
type verifyForm struct {
	challenge  string // sealed record, not yet opened
	nonce      string
	difficulty int
}

// parseVerifyForm parses a urlencoded verify body. Each field must appear
// exactly once: challenge as URL-safe base64 of a sealed record's length,
// nonce as 1-20 decimal digits that fit in a uint64, difficulty as a number
// in the allowed range.
func parseVerifyForm(body []byte) (verifyForm, reason) {
	if len(body) > maxFormBytes {
		return verifyForm{}, reasonBadForm
	}
	q, err := url.ParseQuery(string(body))
	if err != nil {
		return verifyForm{}, reasonBadForm
	}
	one := func(k string) (string, bool) {
		v := q[k]
		if len(v) != 1 {
			return "", false
		}
		return v[0], true
	}
	var f verifyForm
	var ok bool
	if f.challenge, ok = one("challenge"); !ok || !isRecordText(f.challenge) {
		return verifyForm{}, reasonBadForm
	}
	diff, ok := one("difficulty")
	if !ok || len(diff) == 0 || len(diff) > 2 || !isDigits(diff) {
		return verifyForm{}, reasonBadForm
	}
	f.difficulty, _ = strconv.Atoi(diff)
	if f.difficulty < minAllowedDifficulty || f.difficulty > maxAllowedDifficulty {
		return verifyForm{}, reasonWrongDifficulty
	}
	if f.nonce, ok = one("nonce"); !ok {
		return verifyForm{}, reasonBadForm
	}
	if len(f.nonce) == 0 || len(f.nonce) > 20 || !isDigits(f.nonce) {
		return verifyForm{}, reasonBadNonce
	}
	if _, err := strconv.ParseUint(f.nonce, 10, 64); err != nil {
		return verifyForm{}, reasonBadNonce
	}
	return f, ""
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// serveVerify checks a proof-of-work solution and, if it holds, issues a
// pass and sends the browser back to where it was going.
func (s *Service) serveVerify(w http.ResponseWriter, r *http.Request, client netip.Addr) {
	m := methodPoW
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/x-www-form-urlencoded" {
			s.reject(w, r, client, m, reasonBadForm, nil)
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFormBytes))
	if err != nil {
		s.reject(w, r, client, m, reasonBadForm, nil)
		return
	}
	f, why := parseVerifyForm(body)
	if why != "" {
		s.reject(w, r, client, m, why, nil)
		return
	}
	now := s.now()
	rec, why := s.checkRecord(r, f.challenge, client, now)
	if why != "" {
		s.reject(w, r, client, m, why, rec)
		return
	}
	switch {
	case rec.method != methodPoW:
		why = reasonWrongMethod
	case f.difficulty != rec.difficulty:
		why = reasonWrongDifficulty
	case !enoughWork(&rec.seed, f.nonce, rec.difficulty):
		why = reasonInsufficientWork
	}
	if why != "" {
		s.reject(w, r, client, m, why, rec)
		return
	}
	s.complete(w, r, client, m, rec, now)
}

// serveNoJS is where the meta refresh of a no-JS page (and the <noscript>
// fallback of a proof-of-work page) leads. It passes a browser that kept
// the challenge cookie and waited as long as the page said.
func (s *Service) serveNoJS(w http.ResponseWriter, r *http.Request, client netip.Addr) {
	m := methodNoJS
	q, err := url.ParseQuery(r.URL.RawQuery)
	sealed := q["challenge"]
	if err != nil || len(sealed) != 1 || !isRecordText(sealed[0]) {
		s.reject(w, r, client, m, reasonBadForm, nil)
		return
	}
	now := s.now()
	rec, why := s.checkRecord(r, sealed[0], client, now)
	if rec != nil && rec.method == methodPoW {
		m = methodFallback
	}
	if why != "" {
		s.reject(w, r, client, m, why, rec)
		return
	}
	browser := ""
	for _, line := range r.Header["Cookie"] {
		if v, _, ok := nextCookie(line, s.challengeCookie); ok {
			browser = v
			break
		}
	}
	if browser == "" || browser != hex.EncodeToString(rec.browser[:]) {
		s.reject(w, r, client, m, reasonNoCookie, rec)
		return
	}
	if remaining := rec.wait - now.Sub(rec.issued) - waitTolerance; remaining > 0 {
		s.fail(r, client, m.String(), reasonTooFast)
		d := pageData{
			NoJSURL: r.URL.RequestURI(),
			Refresh: strconv.Itoa(refreshSeconds(remaining+waitTolerance)) + ";url=" + Prefix + "nojs?challenge=" + sealed[0],
		}
		if err := s.pages.render(w, r, http.StatusForbidden, pageWait, &d); err != nil {
			s.logger.Error("challenge: render page", "err", err)
		}
		return
	}
	s.complete(w, r, client, m, rec, now)
}

// checkRecord opens a sealed record and checks that it is live and was
// issued to this client. The order makes each reason mean what it says:
// only a record with our seal can be "expired", "foreign_prefix" or
// "wrong_ua". Nothing here touches the store.
func (s *Service) checkRecord(r *http.Request, sealed string, client netip.Addr, now time.Time) (*record, reason) {
	rec, why := s.openRecord(sealed)
	if why != "" {
		return nil, why
	}
	switch {
	case !now.Before(rec.expires):
		return rec, reasonExpired
	case rec.prefix != prefixOf(client):
		return rec, reasonForeignPrefix
	case rec.uaHash != hashUA(r.UserAgent()):
		return rec, reasonWrongUA
	}
	return rec, ""
}

// complete marks the challenge spent, issues the pass and redirects. This
// is the only store write of a challenge. The spent marker is set with
// SetNX and lives as long as the record could still be accepted, so across
// every instance sharing the store exactly one submission wins.
func (s *Service) complete(w http.ResponseWriter, r *http.Request, client netip.Addr, m method, rec *record, now time.Time) {
	var id [2 * len(rec.id)]byte
	hex.Encode(id[:], rec.id[:])
	ttl := rec.expires.Sub(now) + spentSlack
	won, err := s.kv.SetNX(r.Context(), spentPrefix+string(id[:]), []byte{byte(m)}, ttl)
	if err != nil {
		s.logger.Error("challenge: mark challenge spent", "err", err)
		s.reject(w, r, client, m, reasonStoreError, rec)
		return
	}
	if !won {
		s.reject(w, r, client, m, reasonReplayed, rec)
		return
	}
	solve := max(now.Sub(rec.issued), 0)
	s.issuePass(w, m, client, r.UserAgent())
	s.metrics.passed.WithLabelValues(m.String()).Inc()
	s.metrics.solve.WithLabelValues(m.String()).Observe(solve.Seconds())
	s.emit(r, client, m.String(), EventPassed, "", solve)

	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Location", safeReturnPath(rec.returnTo))
	w.WriteHeader(http.StatusSeeOther)
}

// reject counts a refused solution and shows a page that explains it and
// offers a fresh try at the original URL.
func (s *Service) reject(w http.ResponseWriter, r *http.Request, client netip.Addr, m method, why reason, rec *record) {
	s.fail(r, client, m.String(), why)
	if why == reasonStoreError {
		s.serveUnavailable(w, r)
		return
	}
	d := pageData{RetryURL: "/"}
	if rec != nil {
		d.RetryURL = safeReturnPath(rec.returnTo)
	}
	if err := s.pages.render(w, r, http.StatusForbidden, pageFailed, &d); err != nil && !errors.Is(err, context.Canceled) {
		s.logger.Error("challenge: render page", "err", err)
	}
}
