// Package fanout delivers decision changes from one store to many watchers
// without letting a slow watcher hold up the writer or grow memory.
//
// Each watcher has a bounded queue. When it overflows, the queued changes
// are dropped (the watcher must reload anyway) and a single store.OpResync
// is delivered in their place, ahead of any later change. Store
// implementations share it: the embedded store publishes after each commit,
// a Redis store after each pub/sub message.
package fanout

import (
	"context"
	"sync"

	"github.com/scrapedefense/scrapedefense/internal/store"
)

// DefaultBuffer is the per-watcher queue length used when New gets <= 0.
const DefaultBuffer = 1024

// Hub fans changes out to watchers. The zero value is not usable; call New.
type Hub struct {
	buffer int

	mu       sync.Mutex
	closed   bool
	watchers map[*watcher]struct{}
	wg       sync.WaitGroup
}

// New returns a hub whose watchers queue at most buffer changes each.
func New(buffer int) *Hub {
	if buffer <= 0 {
		buffer = DefaultBuffer
	}
	return &Hub{buffer: buffer, watchers: make(map[*watcher]struct{})}
}

type watcher struct {
	mu     sync.Mutex
	queue  []store.Change
	resync bool          // changes were dropped; deliver OpResync next
	wake   chan struct{} // cap 1: something was queued
	done   chan struct{} // closed by Hub.Close
	out    chan store.Change
}

// Subscribe registers a watcher that receives every change published after
// the call, until ctx ends or the hub closes; then the channel is closed.
func (h *Hub) Subscribe(ctx context.Context) (<-chan store.Change, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	w := &watcher{
		queue: make([]store.Change, 0, min(h.buffer, 64)),
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}),
		out:   make(chan store.Change),
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, store.ErrClosed
	}
	h.watchers[w] = struct{}{}
	h.wg.Add(1)
	h.mu.Unlock()

	go h.deliver(ctx, w)
	return w.out, nil
}

// Publish queues changes, in order, for every watcher. It never blocks on
// a watcher.
func (h *Hub) Publish(changes ...store.Change) {
	if len(changes) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers {
		w.push(changes, h.buffer)
	}
}

// Watchers returns the number of active watchers.
func (h *Hub) Watchers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.watchers)
}

// Close ends every watch and waits for the delivery goroutines to exit.
// Subscribe fails with store.ErrClosed afterwards.
func (h *Hub) Close() {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		for w := range h.watchers {
			close(w.done)
		}
	}
	h.mu.Unlock()
	h.wg.Wait()
}

func (w *watcher) push(changes []store.Change, limit int) {
	w.mu.Lock()
	for _, c := range changes {
		if len(w.queue) >= limit {
			// Everything queued is stale once the watcher reloads.
			clear(w.queue)
			w.queue = w.queue[:0]
			w.resync = true
		}
		w.queue = append(w.queue, c)
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// take returns what to deliver next: OpResync first if changes were
// dropped, then the queued changes. spare is reused as the next queue.
func (w *watcher) take(spare []store.Change) ([]store.Change, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	resync := w.resync
	w.resync = false
	batch := w.queue
	w.queue = spare[:0]
	return batch, resync
}

func (h *Hub) deliver(ctx context.Context, w *watcher) {
	defer func() {
		h.mu.Lock()
		delete(h.watchers, w)
		h.mu.Unlock()
		close(w.out)
		h.wg.Done()
	}()
	send := func(c store.Change) bool {
		select {
		case w.out <- c:
			return true
		case <-ctx.Done():
		case <-w.done:
		}
		return false
	}
	var spare []store.Change
	for {
		select {
		case <-w.wake:
		case <-ctx.Done():
			return
		case <-w.done:
			return
		}
		batch, resync := w.take(spare)
		if resync && !send(store.Change{Op: store.OpResync}) {
			return
		}
		for _, c := range batch {
			if !send(c) {
				return
			}
		}
		clear(batch)
		spare = batch
	}
}
