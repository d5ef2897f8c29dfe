// Package store defines the state behind every role: decisions, key-value
// records with TTL, fixed-window counters, an append-only audit log, a
// durable work queue and a bounded per-client history.
//
// The interfaces are small on purpose so that a role asks only for what it
// uses (the edge needs Decisions, the challenge service needs KV). Every
// implementation (embedded bbolt today, Redis later) must pass the one
// conformance suite in package storetest.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/decision"
)

// Sentinel errors. Implementations wrap them with %w so callers can test
// with errors.Is.
var (
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("store closed")
	// ErrLocked is returned by Open when another process holds the store
	// (the CLI then talks to the running server instead).
	ErrLocked = errors.New("store locked by another process")
	// ErrInvalidKey is returned for an empty or over-long key, or a decision
	// key that is not an address or CIDR.
	ErrInvalidKey = errors.New("invalid key")
	// ErrValueTooLarge is returned for a value over MaxValueLen.
	ErrValueTooLarge = errors.New("value too large")
	// ErrInvalid is returned for an argument that fails validation (a
	// decision, an audit entry, a counter window).
	ErrInvalid = errors.New("invalid argument")
	// ErrCorrupt is returned when a stored record cannot be decoded.
	ErrCorrupt = errors.New("corrupt record")
	// ErrFull is returned when a write would exceed a configured capacity
	// (for example the maximum number of decisions).
	ErrFull = errors.New("store full")
)

// Limits shared by every implementation, so that a record accepted by one
// backend is accepted by the other.
const (
	// MaxKeyLen bounds KV and counter keys.
	MaxKeyLen = 512
	// MaxValueLen bounds KV values (challenge records, spent sets, keys).
	MaxValueLen = 64 << 10
	// MaxAuditFieldLen bounds Actor, Action and Target of an audit entry.
	MaxAuditFieldLen = 256
	// MaxAuditDetailLen bounds the Detail of an audit entry.
	MaxAuditDetailLen = 4 << 10
	// MaxAuditList is the most entries ListAudit returns in one call.
	MaxAuditList = 10_000

	// MaxQueueNameLen bounds a queue name (see CheckQueueName).
	MaxQueueNameLen = 128
	// MaxQueues bounds the distinct queues one store holds: names come
	// from code, so more means a bug, not load.
	MaxQueues = 64
	// MaxEnqueueBatch is the most payloads one Enqueue call takes; each
	// payload is limited by MaxValueLen.
	MaxEnqueueBatch = 1024
	// MaxDequeue is the most messages one Dequeue call leases.
	MaxDequeue = 1024
	// MaxLease is the longest lease Dequeue accepts.
	MaxLease = 24 * time.Hour

	// MaxHistoryPerKey is how many records History keeps per key.
	MaxHistoryPerKey = 100
	// MaxHistoryRecordLen bounds one history record.
	MaxHistoryRecordLen = 16 << 10
)

// Decisions persists the decision contract and publishes changes.
type Decisions interface {
	// PutDecision validates d and inserts or replaces the decision with the
	// same d.Key().
	PutDecision(ctx context.Context, d decision.Decision) error
	// DeleteDecision removes the decision for key (an address or CIDR, in any
	// form decision.ParsePrefix accepts) and reports whether a live one existed.
	DeleteDecision(ctx context.Context, key string) (bool, error)
	// GetDecision returns the live decision for key. Expired decisions are absent.
	GetDecision(ctx context.Context, key string) (decision.Decision, bool, error)
	// ListDecisions returns every live decision, in no particular order.
	ListDecisions(ctx context.Context) ([]decision.Decision, error)
	// WatchDecisions delivers every change made after the call until ctx
	// ends; then the channel is closed. Delivery is best effort with a bounded
	// buffer: when a watcher falls behind, it receives a Change with
	// Op == OpResync, telling it to call ListDecisions again.
	WatchDecisions(ctx context.Context) (<-chan Change, error)
	// PurgeExpiredDecisions deletes decisions expired at now and returns how
	// many. Watchers see an OpDelete for each.
	PurgeExpiredDecisions(ctx context.Context, now time.Time) (int, error)
}

// Op is the kind of a decision change.
type Op uint8

// Change kinds.
const (
	OpPut Op = iota + 1
	OpDelete
	// OpResync means changes were dropped: reload with ListDecisions.
	OpResync
)

// String returns the lower-case name of the operation.
func (o Op) String() string {
	switch o {
	case OpPut:
		return "put"
	case OpDelete:
		return "delete"
	case OpResync:
		return "resync"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Change is one event on a decision watch. For OpDelete only
// Decision.Scope and Decision.Value are meaningful; for OpResync nothing is.
type Change struct {
	Op       Op
	Decision decision.Decision
}

// KV is a key-value map with per-key TTL (challenge records, spent sets, keys).
// Expired entries are absent for every method.
type KV interface {
	// Get returns a copy of the value for key.
	Get(ctx context.Context, key string) ([]byte, bool, error)
	// Set stores value under key; ttl <= 0 means no expiry.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// SetNX sets key only if it is absent (or expired) and reports whether it
	// did. Exactly one of many concurrent callers wins: use it for replay
	// protection.
	SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	// Delete removes key; deleting an absent key is not an error.
	Delete(ctx context.Context, key string) error
}

// Counters are fixed-window counters (tarpit hops, per-IP tallies).
type Counters interface {
	// Incr adds delta to the counter for key in the current fixed window of
	// the given length and returns the new value. Windows are aligned to
	// multiples of window since the Unix epoch; a new window starts at zero.
	Incr(ctx context.Context, key string, delta int64, window time.Duration) (int64, error)
}

// Audit is an append-only log of who changed what.
type Audit interface {
	// AppendAudit records e. A zero e.Time is set to the current time.
	AppendAudit(ctx context.Context, e AuditEntry) error
	// ListAudit returns up to limit entries with Time >= since, oldest first.
	// limit <= 0 or above MaxAuditList means MaxAuditList.
	ListAudit(ctx context.Context, since time.Time, limit int) ([]AuditEntry, error)
}

// AuditEntry is one line of the audit log.
type AuditEntry struct {
	Time   time.Time `json:"time"`
	Actor  string    `json:"actor"`  // who: "admin:alice", "escalation", "cli"
	Action string    `json:"action"` // what: "decision.put", "config.reload"
	Target string    `json:"target"` // on what: "198.51.100.0/24"
	Detail string    `json:"detail,omitempty"`
}

// Queue is a durable, at-least-once work queue (the escalation queue).
//
// A message stays in the queue until it is acked. Dequeue leases messages:
// a consumer that dies without acking loses its lease, and the messages are
// delivered again, so consumers must tolerate duplicates (events carry an ID
// for that).
type Queue interface {
	// Enqueue appends payloads, in order, as one atomic batch. They are
	// durable (on disk, or in the backend's replicated log) when it
	// returns nil. If the batch would take the queue past its capacity,
	// Enqueue returns an error wrapping ErrFull and appends none of them.
	Enqueue(ctx context.Context, queue string, payloads ...[]byte) error
	// Dequeue waits until at least one message is available (or ctx ends)
	// and leases up to max messages, oldest first; max <= 0 or above
	// MaxDequeue means MaxDequeue. A leased message is invisible to other
	// Dequeue calls until it is acked or the lease (0 < lease <= MaxLease)
	// expires; after a restart every unacked message is visible again.
	Dequeue(ctx context.Context, queue string, max int, lease time.Duration) ([]Message, error)
	// Ack deletes processed messages. Acking an unknown (or already acked)
	// id is not an error.
	Ack(ctx context.Context, queue string, ids ...string) error
	// QueueLen reports the messages held, leased or not.
	QueueLen(ctx context.Context, queue string) (int64, error)
}

// Message is one leased queue entry.
type Message struct {
	// ID is opaque and unique within its queue; pass it to Ack.
	ID      string
	Payload []byte
	// Attempts counts deliveries including this one. It is a hint, not a
	// guarantee: a backend may restart the count after a restart.
	Attempts int
}

// History keeps the newest records per key (a client's recent events and
// verdicts), bounded per key and in total.
type History interface {
	// AppendHistory adds record under key, keeping the newest
	// MaxHistoryPerKey records of that key. When the store holds more keys
	// than its limit, the keys least recently appended to are evicted.
	AppendHistory(ctx context.Context, key string, record []byte) error
	// ListHistory returns up to limit records of key, newest first; limit
	// <= 0 or above MaxHistoryPerKey means MaxHistoryPerKey. An unknown key
	// has no records.
	ListHistory(ctx context.Context, key string, limit int) ([][]byte, error)
}

// Store is the whole state of one deployment.
type Store interface {
	Decisions
	KV
	Counters
	Audit
	Queue
	History
	// Health reports backend status and utilisation for /health.
	Health(ctx context.Context) Health
	// Close releases resources and ends every watch. It is idempotent; every
	// other method returns ErrClosed afterwards.
	Close() error
}

// Health is the backend status reported on /health.
type Health struct {
	Backend   string `json:"backend"` // "embedded", "redis"
	OK        bool   `json:"ok"`
	Detail    string `json:"detail,omitempty"`
	Keys      int64  `json:"keys"`       // records held
	SizeBytes int64  `json:"size_bytes"` // bytes used (file size, used_memory)
}

// DecisionKey returns the canonical key for an address or CIDR, the form
// Decision.Key returns, so that "192.0.2.1" and "192.0.2.1/32" name the
// same decision.
func DecisionKey(s string) (string, error) {
	p, err := decision.ParsePrefix(s)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	return p.String(), nil
}

// CheckKey validates a KV or counter key.
func CheckKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty key", ErrInvalidKey)
	case len(key) > MaxKeyLen:
		return fmt.Errorf("%w: key is %d bytes, limit %d", ErrInvalidKey, len(key), MaxKeyLen)
	}
	return nil
}

// CheckValue validates a KV value.
func CheckValue(value []byte) error {
	if len(value) > MaxValueLen {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrValueTooLarge, len(value), MaxValueLen)
	}
	return nil
}

// CheckDecision validates a decision before it is stored.
func CheckDecision(d decision.Decision) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("%w: decision: %w", ErrInvalid, err)
	}
	return nil
}

// CheckWindow validates a counter window.
func CheckWindow(window time.Duration) error {
	if window <= 0 {
		return fmt.Errorf("%w: counter window %v must be positive", ErrInvalid, window)
	}
	return nil
}

// WindowStart returns the start of the fixed window of length window that
// contains now, aligned to multiples of window since the Unix epoch.
func WindowStart(now time.Time, window time.Duration) time.Time {
	ns := now.UnixNano()
	start := ns - ns%int64(window)
	if ns < 0 && ns%int64(window) != 0 {
		start -= int64(window)
	}
	return time.Unix(0, start)
}

// CheckAuditEntry validates an audit entry.
func CheckAuditEntry(e AuditEntry) error {
	var errs []error
	if e.Actor == "" {
		errs = append(errs, errors.New("actor is required"))
	}
	if e.Action == "" {
		errs = append(errs, errors.New("action is required"))
	}
	for _, f := range []struct{ name, v string }{{"actor", e.Actor}, {"action", e.Action}, {"target", e.Target}} {
		if len(f.v) > MaxAuditFieldLen {
			errs = append(errs, fmt.Errorf("%s longer than %d bytes", f.name, MaxAuditFieldLen))
		}
	}
	if len(e.Detail) > MaxAuditDetailLen {
		errs = append(errs, fmt.Errorf("detail longer than %d bytes", MaxAuditDetailLen))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: audit entry: %w", ErrInvalid, err)
	}
	return nil
}

// AuditLimit normalises a ListAudit limit.
func AuditLimit(limit int) int {
	if limit <= 0 || limit > MaxAuditList {
		return MaxAuditList
	}
	return limit
}

// CheckQueueName validates a queue name: 1 to MaxQueueNameLen bytes of
// ASCII letters, digits and "._:-", so that it is safe as a bucket name
// and as part of a Redis key.
func CheckQueueName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty queue name", ErrInvalidKey)
	}
	if len(name) > MaxQueueNameLen {
		return fmt.Errorf("%w: queue name is %d bytes, limit %d", ErrInvalidKey, len(name), MaxQueueNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return fmt.Errorf("%w: queue name %q has byte %#x (allowed: letters, digits, \"._:-\")", ErrInvalidKey, name, c)
		}
	}
	return nil
}

// CheckEnqueue validates the arguments of Queue.Enqueue.
func CheckEnqueue(queue string, payloads [][]byte) error {
	if err := CheckQueueName(queue); err != nil {
		return err
	}
	if len(payloads) > MaxEnqueueBatch {
		return fmt.Errorf("%w: batch of %d payloads, limit %d", ErrInvalid, len(payloads), MaxEnqueueBatch)
	}
	for i, p := range payloads {
		if err := CheckValue(p); err != nil {
			return fmt.Errorf("payload %d: %w", i, err)
		}
	}
	return nil
}

// CheckLease validates a Dequeue lease.
func CheckLease(lease time.Duration) error {
	if lease <= 0 || lease > MaxLease {
		return fmt.Errorf("%w: lease %v must be in (0, %v]", ErrInvalid, lease, MaxLease)
	}
	return nil
}

// DequeueLimit normalises a Dequeue max.
func DequeueLimit(max int) int {
	if max <= 0 || max > MaxDequeue {
		return MaxDequeue
	}
	return max
}

// CheckHistoryRecord validates the arguments of History.AppendHistory.
func CheckHistoryRecord(key string, record []byte) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if len(record) > MaxHistoryRecordLen {
		return fmt.Errorf("%w: history record is %d bytes, limit %d", ErrValueTooLarge, len(record), MaxHistoryRecordLen)
	}
	return nil
}

// HistoryLimit normalises a ListHistory limit.
func HistoryLimit(limit int) int {
	if limit <= 0 || limit > MaxHistoryPerKey {
		return MaxHistoryPerKey
	}
	return limit
}
