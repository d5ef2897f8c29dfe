package challenge

import (
	"encoding/binary"
	"errors"
	"time"
)

// KV key prefixes of challenge state.
const (
	recordPrefix = "challenge/rec/"
	spentPrefix  = "challenge/spent/"
)

// idLen is the length of a challenge id and of a browser id: 16 random
// bytes in lower-case hex.
const idLen = 32

// maxReturnLen bounds the original URL kept in a record.
const maxReturnLen = 2048

// record is an issued challenge, kept in the KV under recordPrefix+id until
// ChallengeTTL. Binding it to the client's prefix and user agent makes a
// solution useless to anyone else; the browser id ties the no-JS path to
// the cookie set with the page.
type record struct {
	method     method
	difficulty int
	issued     time.Time
	wait       time.Duration // earliest return of the no-JS path
	prefix     netPrefix
	uaHash     [uaHashLen]byte
	browser    string // browser id from the challenge cookie (hex)
	returnTo   string // validated same-site path to return to
}

// Record layout: version, method, difficulty, issued (Unix ms), wait (ms),
// family, prefix (8), UA hash (16), browser id (32 hex), return path.
const (
	recordVersion   = 1
	recordHeaderLen = 1 + 1 + 1 + 8 + 8 + 1 + 8 + uaHashLen + idLen
)

var errBadRecord = errors.New("malformed challenge record")

func (r *record) marshal() []byte {
	b := make([]byte, recordHeaderLen, recordHeaderLen+len(r.returnTo))
	b[0] = recordVersion
	b[1] = byte(r.method)
	b[2] = byte(r.difficulty)
	binary.BigEndian.PutUint64(b[3:11], uint64(r.issued.UnixMilli()))
	binary.BigEndian.PutUint64(b[11:19], uint64(r.wait.Milliseconds()))
	b[19] = r.prefix.family
	copy(b[20:28], r.prefix.bits[:])
	copy(b[28:44], r.uaHash[:])
	copy(b[44:76], r.browser)
	return append(b, r.returnTo...)
}

func unmarshalRecord(b []byte) (record, error) {
	if len(b) < recordHeaderLen || len(b) > recordHeaderLen+maxReturnLen || b[0] != recordVersion {
		return record{}, errBadRecord
	}
	r := record{
		method:     method(b[1]),
		difficulty: int(b[2]),
		issued:     time.UnixMilli(int64(binary.BigEndian.Uint64(b[3:11]))),
		wait:       time.Duration(binary.BigEndian.Uint64(b[11:19])) * time.Millisecond,
		browser:    string(b[44:76]),
		returnTo:   string(b[76:]),
	}
	r.prefix.family = b[19]
	copy(r.prefix.bits[:], b[20:28])
	copy(r.uaHash[:], b[28:44])
	if r.method != methodNoJS && r.method != methodPoW {
		return record{}, errBadRecord
	}
	return r, nil
}
