package challenge

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"hash"
	"sync"
	"time"
)

// spentPrefix is the KV prefix of spent markers: the only challenge state
// in the store besides the keyring, written once per accepted solution.
const spentPrefix = "challenge/spent/"

// spentSlack keeps a spent marker a little past its record's expiry, so
// that an instance whose clock runs behind still sees it.
const spentSlack = time.Minute

// idLen is the length of a browser id in its cookie: 16 random bytes in
// lower-case hex.
const idLen = 32

// maxReturnLen bounds the original URL kept in a record.
const maxReturnLen = 2048

// record is an issued challenge. It travels in the page, sealed with an
// HMAC under a key derived from the keyring (see recordMAC), so issuing one
// writes nothing anywhere: the store only learns of a challenge when it is
// solved (its spent marker). Binding it to the client's prefix and user
// agent makes a solution useless to anyone else; the browser id ties the
// no-JS path to the cookie set with the page.
type record struct {
	method     method
	difficulty int
	key        keyID
	id         [16]byte // random; names the spent marker
	seed       [16]byte // random; the proof of work hashes its hex form
	browser    [16]byte // browser id from the challenge cookie
	issued     time.Time
	expires    time.Time
	wait       time.Duration // earliest return of the no-JS path
	prefix     netPrefix
	uaHash     [uaHashLen]byte
	returnTo   string // validated same-site path to return to
}

// Sealed record layout, then unpadded URL-safe base64 (it goes into a form
// field and a URL query unescaped):
//
//	[0]        version (recordVersion)
//	[1]        method (methodNoJS or methodPoW)
//	[2]        difficulty in bits (0 for no-JS)
//	[3:11]     key id of the sealing key
//	[11:27]    challenge id
//	[27:43]    proof-of-work seed
//	[43:59]    browser id
//	[59:67]    issued, Unix ms, big endian
//	[67:75]    expires, Unix ms, big endian
//	[75:79]    wait, ms, big endian
//	[79]       address family of the bound prefix (4 or 6)
//	[80:88]    bound prefix
//	[88:104]   first 16 bytes of SHA-256 of the User-Agent
//	[104:n-32] return path
//	[n-32:n]   HMAC-SHA256 over bytes [0:n-32]
const (
	recordVersion       = 2
	recordHeaderLen     = 104
	recordTagLen        = sha256.Size
	minSealedLen        = recordHeaderLen + 1 + recordTagLen // a return path is at least "/"
	maxSealedLen        = recordHeaderLen + maxReturnLen + recordTagLen
	minSealedEncodedLen = (minSealedLen*8 + 5) / 6
	maxSealedEncodedLen = (maxSealedLen*8 + 5) / 6
)

// recordEncoding is strict so that every sealed record has one encoding.
var recordEncoding = base64.RawURLEncoding.Strict()

// recordMACLabel separates the record key from every other use of a
// keyring seed.
const recordMACLabel = "challenge-record"

// recordMAC seals records with HMAC-SHA256 under a key derived from one
// keyring seed: every instance sharing the keyring derives the same key, so
// any of them can check a record another issued. HMAC rather than Ed25519:
// nobody but the edge needs to verify, and it is a hundred times cheaper.
type recordMAC struct {
	key  [sha256.Size]byte
	pool sync.Pool // *macScratch
}

// macScratch is a keyed HMAC (Reset keeps the key) with a buffer for the
// message: bytes handed to a hash.Hash escape, so a stack buffer would be
// a heap allocation per page.
type macScratch struct {
	h   hash.Hash
	buf [maxSealedLen]byte
}

func newRecordMAC(seed []byte) *recordMAC {
	h := sha256.New()
	h.Write([]byte(recordMACLabel))
	h.Write(seed)
	m := &recordMAC{}
	h.Sum(m.key[:0])
	m.pool.New = func() any { return &macScratch{h: hmac.New(sha256.New, m.key[:])} }
	return m
}

// verify reports in constant time whether tag is the MAC of msg.
func (m *recordMAC) verify(msg, tag []byte) bool {
	st := m.pool.Get().(*macScratch)
	defer m.pool.Put(st)
	n := copy(st.buf[:], msg)
	st.h.Reset()
	st.h.Write(st.buf[:n])
	return hmac.Equal(st.h.Sum(st.buf[n:n]), tag)
}

// seal appends the encoded, sealed record to dst. r.returnTo must already
// be a safe return path (at most maxReturnLen bytes).
func (r *record) seal(dst []byte, mac *recordMAC) []byte {
	st := mac.pool.Get().(*macScratch)
	defer mac.pool.Put(st)
	b := st.buf[:recordHeaderLen]
	b[0] = recordVersion
	b[1] = byte(r.method)
	b[2] = byte(r.difficulty)
	copy(b[3:11], r.key[:])
	copy(b[11:27], r.id[:])
	copy(b[27:43], r.seed[:])
	copy(b[43:59], r.browser[:])
	binary.BigEndian.PutUint64(b[59:67], uint64(r.issued.UnixMilli()))
	binary.BigEndian.PutUint64(b[67:75], uint64(r.expires.UnixMilli()))
	binary.BigEndian.PutUint32(b[75:79], uint32(r.wait.Milliseconds()))
	b[79] = r.prefix.family
	copy(b[80:88], r.prefix.bits[:])
	copy(b[88:104], r.uaHash[:])
	b = append(b, r.returnTo...)
	st.h.Reset()
	st.h.Write(b)
	b = st.h.Sum(b)
	return recordEncoding.AppendEncode(dst, b)
}

// openRecord decodes a sealed record and checks its seal. It does not
// check expiry or the client binding; the caller does, so that each
// rejection has its own reason. A record is only returned authenticated.
func (s *Service) openRecord(sealed string) (*record, reason) {
	if len(sealed) < minSealedEncodedLen || len(sealed) > maxSealedEncodedLen {
		return nil, reasonBadForm
	}
	var src [maxSealedEncodedLen]byte
	var buf [maxSealedLen]byte
	n, err := recordEncoding.Decode(buf[:], src[:copy(src[:], sealed)])
	if err != nil || n < minSealedLen {
		return nil, reasonBadForm
	}
	b := buf[:n]
	if b[0] != recordVersion {
		return nil, reasonTampered
	}
	var kid keyID
	copy(kid[:], b[3:11])
	k, ok := s.keys.Load().lookupKey(kid)
	if !ok {
		// Perhaps sealed by an instance that has just rotated.
		s.requestReload()
		return nil, reasonUnknownKey
	}
	body, tag := b[:n-recordTagLen], b[n-recordTagLen:]
	if !k.mac.verify(body, tag) {
		return nil, reasonTampered
	}
	r := &record{
		method:     method(b[1]),
		difficulty: int(b[2]),
		key:        kid,
		issued:     time.UnixMilli(int64(binary.BigEndian.Uint64(b[59:67]))),
		expires:    time.UnixMilli(int64(binary.BigEndian.Uint64(b[67:75]))),
		wait:       time.Duration(binary.BigEndian.Uint32(b[75:79])) * time.Millisecond,
		returnTo:   string(body[recordHeaderLen:]),
	}
	copy(r.id[:], b[11:27])
	copy(r.seed[:], b[27:43])
	copy(r.browser[:], b[43:59])
	r.prefix.family = b[79]
	copy(r.prefix.bits[:], b[80:88])
	copy(r.uaHash[:], b[88:104])
	// A genuine seal over bad fields would be our own bug; refuse it all
	// the same.
	switch {
	case r.method == methodNoJS && r.difficulty == 0:
	case r.method == methodPoW && r.difficulty >= minAllowedDifficulty && r.difficulty <= maxAllowedDifficulty:
	default:
		return nil, reasonTampered
	}
	return r, ""
}

// isRecordText reports whether s consists of URL-safe base64 characters
// only and fits a sealed record: what parsers accept before decoding.
func isRecordText(s string) bool {
	if len(s) < minSealedEncodedLen || len(s) > maxSealedEncodedLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
