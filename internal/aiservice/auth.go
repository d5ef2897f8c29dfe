package aiservice

import (
	"crypto/sha256"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/hmacsig"
)

// Request headers of the signing scheme (docs/webhook.md).
const (
	HeaderSender      = "X-Scrapedefense-Sender"
	HeaderSignature   = hmacsig.Header
	HeaderIdempotency = "Idempotency-Key"
)

const sigHexLen = 2 * sha256.Size

// verifier checks signatures for configured senders. Unknown senders are
// checked against a throwaway key so that the two failures cost the same
// time.
type verifier struct {
	secrets map[string][]byte
	dummy   []byte
}

func newVerifier(secrets map[string][]byte, dummyKey []byte) *verifier {
	v := &verifier{secrets: make(map[string][]byte, len(secrets)), dummy: dummyKey}
	for name, key := range secrets {
		v.secrets[name] = append([]byte(nil), key...)
	}
	return v
}

// verify reports whether sig authenticates body from sender. It does not
// check the timestamp window; the caller does, after authentication, so that
// only genuine senders learn that their clock is off.
func (v *verifier) verify(sender string, sig *hmacsig.Signature, body []byte) (sum [sha256.Size]byte, ok bool) {
	secret, known := v.secrets[sender]
	if !known {
		secret = v.dummy
	}
	sum, ok = sig.Check(secret, body)
	return sum, ok && known
}

// Sign returns the X-Scrapedefense-Signature value for body at t. It is
// exported for senders written in Go and for tests.
func Sign(secret []byte, t time.Time, body []byte) string { return hmacsig.Sign(secret, t, body) }
