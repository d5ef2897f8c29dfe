// Package events carries what the edge saw to the analysis pipeline. The
// queue is bounded and never blocks the request that produced the event: when
// it is full the event is dropped and counted.
package events

import (
	"context"
	"strings"
	"sync/atomic"
	"time"
)

// Event is one request worth analysing, or one signal about a client
// (a challenge outcome, a trap or tarpit hit). The schema is versioned
// because other senders (log shippers, other proxies, the webhook) produce
// it too; docs/webhook.md is its reference.
type Event struct {
	Version int `json:"v"`
	// ID is the sender's idempotency key: an event with an ID already seen
	// is accepted once.
	ID        string    `json:"id,omitempty"`
	Kind      Kind      `json:"kind,omitempty"` // "" means KindRequest
	Time      time.Time `json:"time"`
	ClientIP  string    `json:"client_ip"`
	Method    string    `json:"method,omitempty"`
	Host      string    `json:"host,omitempty"`
	Path      string    `json:"path,omitempty"`
	UserAgent string    `json:"user_agent,omitempty"`
	// Status is the response status when the sender knows it (0 if not).
	Status int `json:"status,omitempty"`
	// Headers holds selected request headers (canonical names), never
	// cookies or credentials.
	Headers map[string]string `json:"headers,omitempty"`
	// HeaderOrder lists the request's header names, lower case, in the
	// order the client sent them (HTTP/1.1 only; empty when unknown).
	HeaderOrder []string `json:"header_order,omitempty"`
	// TLSFingerprint is the client's JA4 (or JA3) when the sender has it.
	TLSFingerprint string `json:"tls_fingerprint,omitempty"`
	// RobotsDisallowed is true when robots.txt disallows Path for the
	// client's user agent.
	RobotsDisallowed bool `json:"robots_disallowed,omitempty"`
	// What the sender decided and why.
	Action  string   `json:"action,omitempty"`
	Stage   string   `json:"stage,omitempty"`
	Rule    string   `json:"rule,omitempty"`
	Weight  int      `json:"weight,omitempty"`
	Rules   []string `json:"rules,omitempty"`
	Crawler string   `json:"crawler,omitempty"`
	// CrawlerVerified is true when Crawler is verified by its operator's
	// published address ranges: such a client is never blocked.
	CrawlerVerified bool   `json:"crawler_verified,omitempty"`
	Source          string `json:"source"`
}

// Notable reports whether the event is more than a plain allowed request
// that matched nothing: a signal kind, a rule, a weight or another action.
func (e *Event) Notable() bool {
	return (e.Kind != "" && e.Kind != KindRequest) || e.Action != "allow" || e.Rule != "" || e.Weight != 0 || len(e.Rules) > 0
}

// Kind says what an event reports.
type Kind string

// Event kinds. Challenge passes are human labels for model training; trap
// and tarpit hits and challenge failures are bot labels.
const (
	KindRequest       Kind = "request"
	KindChallengePass Kind = "challenge_pass"
	KindChallengeFail Kind = "challenge_fail"
	KindTrap          Kind = "trap"
	KindTarpit        Kind = "tarpit"
)

// Valid reports whether k is a known kind ("" counts as KindRequest).
func (k Kind) Valid() bool {
	switch k {
	case "", KindRequest, KindChallengePass, KindChallengeFail, KindTrap, KindTarpit:
		return true
	}
	return false
}

// Limits on the fields of one event. Events are held in queues and
// behaviour windows, so every field is bounded; the webhook rejects an
// event over a limit and in-process senders clip to them (Clip).
const (
	MaxHeaders        = 64
	MaxHeaderNameLen  = 64
	MaxHeaderValueLen = 1 << 10
	MaxHeaderOrder    = 64
	MaxIDLen          = 128
	MaxMethodLen      = 32
	MaxHostLen        = 255
	MaxPathLen        = 8 << 10
	MaxUserAgentLen   = 1 << 10
	MaxFingerprintLen = 256
	MaxLabelLen       = 128 // action, stage, rule, crawler, each of rules, source
	MaxRules          = 32
)

// Clip cuts s to at most n bytes without splitting a UTF-8 sequence, and
// drops invalid UTF-8 from what is cut.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// SchemaVersion is the current Event schema.
const SchemaVersion = 1

// Queue is a bounded multi-producer queue.
type Queue struct {
	ch      chan Event
	dropped atomic.Uint64
	pushed  atomic.Uint64
}

// NewQueue returns a queue holding at most size events.
func NewQueue(size int) *Queue {
	return &Queue{ch: make(chan Event, size)}
}

// TryPush enqueues e without blocking; it reports false (and counts a drop)
// when the queue is full.
func (q *Queue) TryPush(e Event) bool {
	select {
	case q.ch <- e:
		q.pushed.Add(1)
		return true
	default:
		q.dropped.Add(1)
		return false
	}
}

// Pop waits for the next event or for ctx to end.
func (q *Queue) Pop(ctx context.Context) (Event, error) {
	select {
	case e := <-q.ch:
		return e, nil
	case <-ctx.Done():
		return Event{}, ctx.Err()
	}
}

// PopBatch waits for at least one event, then takes whatever else is
// queued without waiting, up to len(buf). It returns how many it stored.
func (q *Queue) PopBatch(ctx context.Context, buf []Event) (int, error) {
	if len(buf) == 0 {
		return 0, nil
	}
	select {
	case buf[0] = <-q.ch:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	n := 1
	for n < len(buf) {
		select {
		case buf[n] = <-q.ch:
			n++
		default:
			return n, nil
		}
	}
	return n, nil
}

// Len is the number of queued events.
func (q *Queue) Len() int { return len(q.ch) }

// Cap is the queue's capacity.
func (q *Queue) Cap() int { return cap(q.ch) }

// Dropped is the number of events dropped because the queue was full.
func (q *Queue) Dropped() uint64 { return q.dropped.Load() }

// Pushed is the number of events accepted.
func (q *Queue) Pushed() uint64 { return q.pushed.Load() }
