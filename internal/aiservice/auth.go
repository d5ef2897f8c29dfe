package aiservice

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Request headers of the signing scheme (docs/webhook.md).
const (
	HeaderSender      = "X-Scrapedefense-Sender"
	HeaderSignature   = "X-Scrapedefense-Signature"
	HeaderIdempotency = "Idempotency-Key"
)

const (
	maxSignatureHeaderLen = 512
	// maxSignatures bounds the v1= entries one header may carry (a sender
	// rotating its secret signs with both).
	maxSignatures = 4
	sigHexLen     = 2 * sha256.Size
)

// signature is a parsed X-Scrapedefense-Signature header.
type signature struct {
	ts   int64
	v1   [maxSignatures][sha256.Size]byte
	nSig int
}

// parseSignature parses "t=<unix>,v1=<hex>[,v1=<hex>...]". Unknown keys are
// ignored so that a future scheme can be added beside v1.
func parseSignature(h string) (signature, bool) {
	var s signature
	if h == "" || len(h) > maxSignatureHeaderLen {
		return s, false
	}
	haveT := false
	for part := range strings.SplitSeq(h, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return s, false
		}
		switch k {
		case "t":
			ts, err := strconv.ParseInt(v, 10, 64)
			if err != nil || haveT || ts <= 0 {
				return s, false
			}
			s.ts, haveT = ts, true
		case "v1":
			if len(v) != sigHexLen || s.nSig == maxSignatures {
				return s, false
			}
			if _, err := hex.Decode(s.v1[s.nSig][:], []byte(v)); err != nil {
				return s, false
			}
			s.nSig++
		}
	}
	return s, haveT && s.nSig > 0
}

// verifier checks HMAC-SHA256(secret, t + "." + body) for configured
// senders. Unknown senders are checked against a throwaway key so that the
// two failures cost the same time.
type verifier struct {
	macs  map[string]*sync.Pool // sender -> pool of keyed hash.Hash
	dummy *sync.Pool
}

func newVerifier(secrets map[string][]byte, dummyKey []byte) *verifier {
	v := &verifier{macs: make(map[string]*sync.Pool, len(secrets))}
	pool := func(key []byte) *sync.Pool {
		key = append([]byte(nil), key...)
		return &sync.Pool{New: func() any { return hmac.New(sha256.New, key) }}
	}
	for name, key := range secrets {
		v.macs[name] = pool(key)
	}
	v.dummy = pool(dummyKey)
	return v
}

// verify reports whether sig authenticates body from sender. It does not
// check the timestamp window; the caller does, after authentication, so that
// only genuine senders learn that their clock is off.
func (v *verifier) verify(sender string, sig *signature, body []byte) (sum [sha256.Size]byte, ok bool) {
	pool, known := v.macs[sender]
	if !known {
		pool = v.dummy
	}
	mac := pool.Get().(hash.Hash)
	defer pool.Put(mac)
	mac.Reset()
	var tsBuf [20]byte
	mac.Write(strconv.AppendInt(tsBuf[:0], sig.ts, 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	mac.Sum(sum[:0])
	for i := 0; i < sig.nSig; i++ {
		if hmac.Equal(sum[:], sig.v1[i][:]) {
			ok = true
		}
	}
	return sum, ok && known
}

// Sign returns the X-Scrapedefense-Signature value for body at t. It is
// exported for senders written in Go and for tests.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}
