package embedded

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/decision"
	"github.com/scrapedefense/scrapedefense/internal/store"
)

// On-disk layout. Every bucket lives at the top level of the bbolt file.
//
//	decisions  canonical prefix          -> JSON decision.Decision
//	kv         key                       -> expiry(8) value
//	counters   key                       -> windowStart(8) window(8) count(8)
//	expiry     expiry(8) kind(1) key     -> empty (index the janitor walks in time order)
//	audit      time(8) seq(8)            -> JSON store.AuditEntry
//	queues     <queue name>/ (one nested bucket per queue)
//	             seq(8)                  -> payload
//	queue_len  queue name                -> uint64 messages held
//	history    keylen(2) key seq(8)      -> record
//	history_keys   key                   -> lastSeq(8) count(8)
//	history_lru    lastSeq(8) key        -> empty (keys by last append, for eviction)
//	meta       "schema", "audit_count", "decision_count",
//	           "history_keys", "history_records" -> uint64
//
// Integers are big-endian so that byte order is time order; times are Unix
// nanoseconds and 0 means "never expires".
var (
	bucketDecisions = []byte("decisions")
	bucketKV        = []byte("kv")
	bucketCounters  = []byte("counters")
	bucketExpiry    = []byte("expiry")
	bucketAudit     = []byte("audit")
	bucketMeta      = []byte("meta")

	bucketQueues      = []byte("queues")
	bucketQueueLen    = []byte("queue_len")
	bucketHistory     = []byte("history")
	bucketHistoryKeys = []byte("history_keys")
	bucketHistoryLRU  = []byte("history_lru")

	allBuckets = [][]byte{bucketDecisions, bucketKV, bucketCounters, bucketExpiry, bucketAudit, bucketMeta,
		bucketQueues, bucketQueueLen, bucketHistory, bucketHistoryKeys, bucketHistoryLRU}
	// dataBuckets are counted page by page for Health; queues and history
	// can be large and keep their counts instead.
	dataBuckets = [][]byte{bucketDecisions, bucketKV, bucketCounters, bucketAudit}

	metaSchema         = []byte("schema")
	metaAuditCount     = []byte("audit_count")
	metaDecisionCount  = []byte("decision_count")
	metaHistoryKeys    = []byte("history_keys")
	metaHistoryRecords = []byte("history_records")
)

// schemaVersion is bumped on an incompatible layout change; Open refuses a
// file from a newer version rather than misreading it.
const schemaVersion = 1

// Kinds of entries in the expiry index.
const (
	kindKV      byte = 'k'
	kindCounter byte = 'c'
)

var errShortRecord = errors.New("record too short")

// unixNano converts t to the stored form; the zero time (and anything
// before the epoch) is 0.
func unixNano(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	ns := t.UnixNano()
	if ns < 0 {
		return 0
	}
	return uint64(ns)
}

func expiryAt(now time.Time, ttl time.Duration) uint64 {
	if ttl <= 0 {
		return 0
	}
	return unixNano(now.Add(ttl))
}

// expired reports whether a stored expiry has passed at now.
func expired(exp uint64, now time.Time) bool {
	return exp != 0 && exp <= unixNano(now)
}

func encodeKV(exp uint64, value []byte) []byte {
	b := make([]byte, 8+len(value))
	binary.BigEndian.PutUint64(b, exp)
	copy(b[8:], value)
	return b
}

// decodeKV splits a kv record. The returned value aliases rec.
func decodeKV(rec []byte) (exp uint64, value []byte, err error) {
	if len(rec) < 8 {
		return 0, nil, fmt.Errorf("%w: kv %w", store.ErrCorrupt, errShortRecord)
	}
	return binary.BigEndian.Uint64(rec), rec[8:], nil
}

type counterRecord struct {
	start  uint64 // window start, Unix ns
	window uint64 // window length, ns
	count  int64
}

func (c counterRecord) expiry() uint64 {
	if c.start > math.MaxUint64-c.window {
		return math.MaxUint64
	}
	return c.start + c.window
}

func encodeCounter(c counterRecord) []byte {
	b := make([]byte, 24)
	binary.BigEndian.PutUint64(b[0:], c.start)
	binary.BigEndian.PutUint64(b[8:], c.window)
	binary.BigEndian.PutUint64(b[16:], uint64(c.count))
	return b
}

func decodeCounter(rec []byte) (counterRecord, error) {
	if len(rec) != 24 {
		return counterRecord{}, fmt.Errorf("%w: counter record is %d bytes, want 24", store.ErrCorrupt, len(rec))
	}
	return counterRecord{
		start:  binary.BigEndian.Uint64(rec[0:]),
		window: binary.BigEndian.Uint64(rec[8:]),
		count:  int64(binary.BigEndian.Uint64(rec[16:])),
	}, nil
}

func expiryKey(exp uint64, kind byte, key []byte) []byte {
	b := make([]byte, 9+len(key))
	binary.BigEndian.PutUint64(b, exp)
	b[8] = kind
	copy(b[9:], key)
	return b
}

// decodeExpiryKey splits an expiry index key. The returned key aliases k.
func decodeExpiryKey(k []byte) (exp uint64, kind byte, key []byte, err error) {
	if len(k) < 10 {
		return 0, 0, nil, fmt.Errorf("%w: expiry index %w", store.ErrCorrupt, errShortRecord)
	}
	return binary.BigEndian.Uint64(k), k[8], k[9:], nil
}

func auditKey(t time.Time, seq uint64) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b, unixNano(t))
	binary.BigEndian.PutUint64(b[8:], seq)
	return b
}

// storedDecision has Decision's fields without its UnmarshalJSON, which
// would parse every record twice; decodeDecision canonicalises instead.
type storedDecision decision.Decision

func decodeDecision(rec []byte) (decision.Decision, error) {
	var sd storedDecision
	if err := json.Unmarshal(rec, &sd); err != nil {
		return decision.Decision{}, fmt.Errorf("%w: decision: %w", store.ErrCorrupt, err)
	}
	d := decision.Decision(sd)
	p, err := d.Prefix()
	if err != nil {
		return decision.Decision{}, fmt.Errorf("%w: decision: %w", store.ErrCorrupt, err)
	}
	d.SetPrefix(p)
	if err := d.Validate(); err != nil {
		return decision.Decision{}, fmt.Errorf("%w: decision: %w", store.ErrCorrupt, err)
	}
	return d, nil
}

func decodeAudit(rec []byte) (store.AuditEntry, error) {
	var e store.AuditEntry
	if err := json.Unmarshal(rec, &e); err != nil {
		return store.AuditEntry{}, fmt.Errorf("%w: audit entry: %w", store.ErrCorrupt, err)
	}
	return e, nil
}

func encodeUint(v uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, v)
}

func decodeUint(b []byte) (uint64, bool) {
	if len(b) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(b), true
}

// seqKeys encodes consecutive queue sequences first, first+1, … as n keys
// sharing one allocation.
func seqKeys(first uint64, n int) [][]byte {
	buf := make([]byte, 8*n)
	keys := make([][]byte, n)
	for i := range keys {
		k := buf[8*i : 8*i+8 : 8*i+8]
		binary.BigEndian.PutUint64(k, first+uint64(i))
		keys[i] = k
	}
	return keys
}

// historyPrefix is the common start of every record key of one history
// key. The length comes first so that no key's range contains another's.
func historyPrefix(key string) []byte {
	b := make([]byte, 2, 2+len(key)+8)
	binary.BigEndian.PutUint16(b, uint16(len(key)))
	return append(b, key...)
}

// historyRecordKey appends seq to a copy of prefix.
func historyRecordKey(prefix []byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(prefix[:len(prefix):len(prefix)], seq)
}

func encodeHistoryMeta(lastSeq, count uint64) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b, lastSeq)
	binary.BigEndian.PutUint64(b[8:], count)
	return b
}

func decodeHistoryMeta(b []byte) (lastSeq, count uint64, ok bool) {
	if len(b) != 16 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:]), true
}

func historyLRUKey(seq uint64, key []byte) []byte {
	b := make([]byte, 8, 8+len(key))
	binary.BigEndian.PutUint64(b, seq)
	return append(b, key...)
}
