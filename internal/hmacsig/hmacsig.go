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

// Signature is a parsed signature header.
type Signature struct {
	// Time is the signing time the sender claims (Unix seconds).
	Time int64
	ts   string
	sigs [][sha256.Size]byte
}

// maxSignatures bounds the v1= entries one header may carry (a sender
// rotating its secret signs with both).
const maxSignatures = 4

// Parse parses "t=<unix>,v1=<hex>[,v1=<hex>...]". Unknown keys are ignored
// so that a future scheme can be added beside v1.
func Parse(header string) (Signature, error) {
	var s Signature
	if header == "" {
		return s, ErrMissing
	}
	if len(header) > maxHeaderLen {
		return s, fmt.Errorf("%w: too long", ErrMalformed)
	}
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return s, fmt.Errorf("%w: %q is not key=value", ErrMalformed, truncate(part))
		}
		switch k {
		case "t":
			if s.ts != "" {
				return s, fmt.Errorf("%w: duplicate t", ErrMalformed)
			}
			unix, err := strconv.ParseInt(v, 10, 64)
			if err != nil || unix <= 0 || len(v) > 19 {
				return s, fmt.Errorf("%w: bad timestamp", ErrMalformed)
			}
			s.ts, s.Time = v, unix
		case "v1":
			var sum [sha256.Size]byte
			if len(v) != hex.EncodedLen(sha256.Size) || len(s.sigs) == maxSignatures {
				return s, fmt.Errorf("%w: v1 must be %d hex digits, at most %d of them", ErrMalformed, hex.EncodedLen(sha256.Size), maxSignatures)
			}
			if _, err := hex.Decode(sum[:], []byte(v)); err != nil {
				return s, fmt.Errorf("%w: v1 is not hex", ErrMalformed)
			}
			s.sigs = append(s.sigs, sum)
		}
	}
	if s.ts == "" {
		return s, fmt.Errorf("%w: no timestamp", ErrMalformed)
	}
	if len(s.sigs) == 0 {
		return s, fmt.Errorf("%w: no v1 signature", ErrMalformed)
	}
	return s, nil
}

// Check computes the MAC of body with secret and reports whether one of the
// signatures matches, in constant time. It returns the MAC too, which
// identifies the signed request (replay protection keys on it). It does not
// look at the timestamp.
func (s *Signature) Check(secret, body []byte) (sum [sha256.Size]byte, ok bool) {
	copy(sum[:], compute(secret, s.ts, body))
	for i := range s.sigs {
		if hmac.Equal(sum[:], s.sigs[i][:]) {
			ok = true
		}
	}
	return sum, ok
}

// Fresh reports whether the signing time is within window of now.
func (s *Signature) Fresh(now time.Time, window time.Duration) bool {
	if window <= 0 {
		window = DefaultWindow
	}
	d := now.Unix() - s.Time
	return d <= int64(window/time.Second) && -d <= int64(window/time.Second)
}

// Verify checks header against body: well formed, fresh within window of
// now (window <= 0 means DefaultWindow) and signed with secret.
func Verify(secret []byte, header string, body []byte, now time.Time, window time.Duration) error {
	if len(secret) == 0 {
		return ErrNoSecret
	}
	s, err := Parse(header)
	if err != nil {
		return err
	}
	if !s.Fresh(now, window) {
		return ErrExpired
	}
	if _, ok := s.Check(secret, body); !ok {
		return ErrMismatch
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}
