// Package hmacsig signs and verifies HTTP bodies with HMAC-SHA256 over
// "<unix timestamp>.<body>", carried in one header:
//
//	X-Scrapedefense-Signature: t=1700000000,v1=<hex sha256 hmac>
//
// The timestamp is covered by the MAC so that a captured request cannot be
// replayed outside the verifier's window. Both sides of every signed hop
// (alert webhooks, the AI-service webhook, the HTTP classifier) use it.
package hmacsig

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header is the HTTP header that carries the signature.
const Header = "X-Scrapedefense-Signature"

// DefaultWindow is the replay window a verifier should use unless it has a
// reason to differ: clocks of the two sides may disagree by this much.
const DefaultWindow = 5 * time.Minute

// maxHeaderLen bounds the header that Verify parses; a valid one is ~80
// bytes, a few v1 entries (during secret rotation) stay far below this.
const maxHeaderLen = 1024

// Errors returned by Verify; all of them mean "reject the request".
var (
	ErrMissing   = errors.New("hmacsig: signature header missing")
	ErrMalformed = errors.New("hmacsig: malformed signature header")
	ErrExpired   = errors.New("hmacsig: signature timestamp outside the allowed window")
	ErrMismatch  = errors.New("hmacsig: signature mismatch")
	ErrNoSecret  = errors.New("hmacsig: empty secret")
)

// Sign returns the header value for body signed with secret at time t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := compute(secret, ts, body)
	buf := make([]byte, 0, len("t=,v1=")+len(ts)+hex.EncodedLen(len(mac)))
	buf = append(buf, "t="...)
	buf = append(buf, ts...)
	buf = append(buf, ",v1="...)
	buf = hex.AppendEncode(buf, mac)
	return string(buf)
}

func compute(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks header (the value of [Header]) against body. The timestamp
// must lie within window of now in either direction (window <= 0 means
// [DefaultWindow]). Several v1 entries are accepted, any of which may match,
// so a sender can sign with an old and a new secret while rotating.
func Verify(secret []byte, header string, body []byte, now time.Time, window time.Duration) error {
	if len(secret) == 0 {
		return ErrNoSecret
	}
	if header == "" {
		return ErrMissing
	}
	ts, sigs, err := parse(header)
	if err != nil {
		return err
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: bad timestamp", ErrMalformed)
	}
	if window <= 0 {
		window = DefaultWindow
	}
	// Compare in seconds so that huge timestamps cannot overflow a Duration.
	if d := now.Unix() - unix; d > int64(window/time.Second) || -d > int64(window/time.Second) {
		return ErrExpired
	}
	want := compute(secret, ts, body)
	for _, s := range sigs {
		got := make([]byte, hex.DecodedLen(len(s)))
		if _, err := hex.Decode(got, []byte(s)); err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrMismatch
}

// parse splits "t=<ts>,v1=<hex>[,v1=<hex>...]". Unknown keys are ignored so
// that a later scheme version can be added alongside v1.
func parse(header string) (ts string, sigs []string, err error) {
	if len(header) > maxHeaderLen {
		return "", nil, fmt.Errorf("%w: too long", ErrMalformed)
	}
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return "", nil, fmt.Errorf("%w: %q is not key=value", ErrMalformed, truncate(part))
		}
		switch k {
		case "t":
			if ts != "" {
				return "", nil, fmt.Errorf("%w: duplicate t", ErrMalformed)
			}
			if v == "" || len(v) > 19 {
				return "", nil, fmt.Errorf("%w: bad timestamp", ErrMalformed)
			}
			ts = v
		case "v1":
			if len(v) != hex.EncodedLen(sha256.Size) {
				return "", nil, fmt.Errorf("%w: v1 must be %d hex digits", ErrMalformed, hex.EncodedLen(sha256.Size))
			}
			sigs = append(sigs, v)
		}
	}
	if ts == "" {
		return "", nil, fmt.Errorf("%w: no timestamp", ErrMalformed)
	}
	if len(sigs) == 0 {
		return "", nil, fmt.Errorf("%w: no v1 signature", ErrMalformed)
	}
	return ts, sigs, nil
}

func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}
