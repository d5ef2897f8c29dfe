package telemetry

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
)

// RequestIDHeader carries the request id between hops and back to the
// client.
const RequestIDHeader = "X-Request-Id"

// MaxRequestIDLength bounds an incoming request id that is reused.
const MaxRequestIDLength = 64

// requestIDChars are the bytes allowed in an incoming request id: enough for
// UUIDs, hex, base64/base64url and the ids common proxies generate, and
// nothing that needs escaping in logs or headers.
var requestIDChars = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "-_.:+/=@" {
		t[c] = true
	}
	return t
}()

// RequestID returns the request's id: the incoming X-Request-Id when it is
// sane (1–64 bytes of [A-Za-z0-9-_.:+/=@]), otherwise a new random one.
// Callers facing untrusted clients may prefer NewRequestID, since a client
// can choose its own id.
func RequestID(r *http.Request) string {
	if id := r.Header.Get(RequestIDHeader); ValidRequestID(id) {
		return id
	}
	return NewRequestID()
}

// ValidRequestID reports whether id is acceptable as an incoming request id.
func ValidRequestID(id string) bool {
	if len(id) == 0 || len(id) > MaxRequestIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !requestIDChars[id[i]] {
			return false
		}
	}
	return true
}

// NewRequestID returns a random 128-bit id as 32 hex characters. It uses the
// runtime's per-thread ChaCha8 generator: ids need to be unique, not secret,
// and this costs one small allocation and no lock.
func NewRequestID() string {
	var raw [16]byte
	binary.LittleEndian.PutUint64(raw[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(raw[8:], rand.Uint64())
	var out [32]byte
	hex.Encode(out[:], raw[:])
	return string(out[:])
}

type requestIDKey struct{}

// WithRequestID returns a context carrying id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestIDFrom returns the id stored by WithRequestID, or "".
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}
