package challenge

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"net/netip"
	"time"
)

// A pass token is a fixed-size binary payload followed by its Ed25519
// signature, in unpadded URL-safe base64 so that it needs no quoting in a
// cookie:
//
//	[0]      version (tokenVersion)
//	[1]      method that earned the pass (methodNoJS, methodPoW, methodFallback)
//	[2:10]   key id (first 8 bytes of SHA-256 of the public key)
//	[10:18]  issued, Unix seconds, big endian
//	[18:26]  expires, Unix seconds, big endian
//	[26]     address family of the bound prefix (4 or 6)
//	[27:35]  bound prefix: the /24 (3 bytes, zero padded) or the /64
//	[35:51]  first 16 bytes of SHA-256 of the User-Agent
//	[51:115] Ed25519 signature over bytes [0:51]
//
// A fixed layout keeps parsing allocation-free and makes every length other
// than tokenEncodedLen a rejection without decoding anything.
const (
	tokenVersion    = 1
	payloadLen      = 51
	tokenLen        = payloadLen + ed25519.SignatureSize
	tokenEncodedLen = (tokenLen*8 + 5) / 6 // unpadded base64
	keyIDLen        = 8
	uaHashLen       = 16
)

// tokenEncoding is strict so that every token has exactly one encoding.
var tokenEncoding = base64.RawURLEncoding.Strict()

// method identifies how a client earned its pass. The numeric values are
// part of the token format.
type method uint8

const (
	methodNoJS     method = 1
	methodPoW      method = 2
	methodFallback method = 3 // the proof-of-work page's no-JS fallback
)

// String returns the metric label of the method.
func (m method) String() string {
	switch m {
	case methodNoJS:
		return "nojs"
	case methodPoW:
		return "pow"
	case methodFallback:
		return "fallback"
	}
	return "unknown"
}

type keyID [keyIDLen]byte

// netPrefix is the client network a pass is bound to.
type netPrefix struct {
	family uint8 // 4 or 6, 0 if the address was invalid
	bits   [8]byte
}

// prefixOf returns the /24 of an IPv4 (or IPv4-mapped) address or the /64
// of an IPv6 address: the unit that survives the address changes of one
// household or phone while staying narrow enough to make a stolen cookie
// useless elsewhere.
func prefixOf(a netip.Addr) netPrefix {
	a = a.Unmap()
	var p netPrefix
	switch {
	case a.Is4():
		b := a.As4()
		p.family = 4
		copy(p.bits[:3], b[:3])
	case a.Is6():
		b := a.As16()
		p.family = 6
		copy(p.bits[:], b[:8])
	}
	return p
}

func hashUA(ua string) [uaHashLen]byte {
	// Hash from a stack copy: converting a long string to []byte would
	// allocate on every request.
	var buf [512]byte
	var sum [sha256.Size]byte
	if len(ua) <= len(buf) {
		n := copy(buf[:], ua)
		sum = sha256.Sum256(buf[:n])
	} else {
		sum = sha256.Sum256([]byte(ua))
	}
	var h [uaHashLen]byte
	copy(h[:], sum[:uaHashLen])
	return h
}

// passClaims is the content of a pass token.
type passClaims struct {
	method  method
	key     keyID
	issued  time.Time
	expires time.Time
	prefix  netPrefix
	uaHash  [uaHashLen]byte
}

func (c *passClaims) marshal(dst *[payloadLen]byte) {
	dst[0] = tokenVersion
	dst[1] = byte(c.method)
	copy(dst[2:10], c.key[:])
	binary.BigEndian.PutUint64(dst[10:18], uint64(c.issued.Unix()))
	binary.BigEndian.PutUint64(dst[18:26], uint64(c.expires.Unix()))
	dst[26] = c.prefix.family
	copy(dst[27:35], c.prefix.bits[:])
	copy(dst[35:51], c.uaHash[:])
}

// rawToken is a decoded, not yet verified, token.
type rawToken [tokenLen]byte

func (t *rawToken) payload() []byte   { return t[:payloadLen] }
func (t *rawToken) signature() []byte { return t[payloadLen:] }

func (t *rawToken) claims() passClaims {
	var c passClaims
	c.method = method(t[1])
	copy(c.key[:], t[2:10])
	c.issued = time.Unix(int64(binary.BigEndian.Uint64(t[10:18])), 0)
	c.expires = time.Unix(int64(binary.BigEndian.Uint64(t[18:26])), 0)
	c.prefix.family = t[26]
	copy(c.prefix.bits[:], t[27:35])
	copy(c.uaHash[:], t[35:51])
	return c
}

// parseToken decodes a cookie value into t without verifying it. It does
// not allocate. The returned reason is empty on success.
func parseToken(value string, t *rawToken) reason {
	switch {
	case len(value) > tokenEncodedLen:
		return reasonOversized
	case len(value) < tokenEncodedLen:
		return reasonTruncated
	}
	// Copy into an array so that the conversion does not allocate.
	var src [tokenEncodedLen]byte
	copy(src[:], value)
	n, err := tokenEncoding.Decode(t[:], src[:])
	if err != nil || n != tokenLen {
		return reasonBadBase64
	}
	if t[0] != tokenVersion {
		return reasonTampered
	}
	switch method(t[1]) {
	case methodNoJS, methodPoW, methodFallback:
	default:
		return reasonTampered
	}
	if f := t[26]; f != 4 && f != 6 {
		return reasonTampered
	}
	return ""
}

// signPass returns the encoded token for c signed with priv.
func signPass(c *passClaims, priv ed25519.PrivateKey) string {
	var t rawToken
	var p [payloadLen]byte
	c.marshal(&p)
	copy(t[:], p[:])
	copy(t[payloadLen:], ed25519.Sign(priv, p[:]))
	return tokenEncoding.EncodeToString(t[:])
}
