// Package events carries what the edge saw to the analysis pipeline. The
// queue is bounded and never blocks the request that produced the event: when
// it is full the event is dropped and counted.
package events

import (
	"context"
	"sync/atomic"
	"time"
)

// Event is one request the edge found worth analysing: anything with a
// matched rule, weight or a non-allow verdict. The schema is versioned
// because other senders (log shippers, other proxies) will produce it too.
type Event struct {
	Version   int               `json:"v"`
	Time      time.Time         `json:"time"`
	ClientIP  string            `json:"client_ip"`
	Method    string            `json:"method"`
	Host      string            `json:"host"`
	Path      string            `json:"path"`
	UserAgent string            `json:"user_agent"`
	Headers   map[string]string `json:"headers,omitempty"`
	Action    string            `json:"action"`
	Stage     string            `json:"stage"`
	Rule      string            `json:"rule,omitempty"`
	Weight    int               `json:"weight"`
	Rules     []string          `json:"rules,omitempty"`
	Crawler   string            `json:"crawler,omitempty"`
	Source    string            `json:"source"`
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

// Len is the number of queued events.
func (q *Queue) Len() int { return len(q.ch) }

// Cap is the queue's capacity.
func (q *Queue) Cap() int { return cap(q.ch) }

// Dropped is the number of events dropped because the queue was full.
func (q *Queue) Dropped() uint64 { return q.dropped.Load() }

// Pushed is the number of events accepted.
func (q *Queue) Pushed() uint64 { return q.pushed.Load() }
