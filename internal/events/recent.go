package events

import "sync"

// Recent keeps the last N events in a ring so that operators can see what
// the edge decided (decisions API, explain) before the analysis pipeline
// exists to consume them.
type Recent struct {
	mu   sync.Mutex
	buf  []Event
	next int
	full bool
}

// NewRecent returns a ring holding n events.
func NewRecent(n int) *Recent { return &Recent{buf: make([]Event, n)} }

// Add stores e, overwriting the oldest event when full.
func (r *Recent) Add(e Event) {
	r.mu.Lock()
	r.buf[r.next] = e
	r.next = (r.next + 1) % len(r.buf)
	if r.next == 0 {
		r.full = true
	}
	r.mu.Unlock()
}

// List returns the events, newest first.
func (r *Recent) List() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.next
	if r.full {
		n = len(r.buf)
	}
	out := make([]Event, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, r.buf[(r.next-i+len(r.buf))%len(r.buf)])
	}
	return out
}
