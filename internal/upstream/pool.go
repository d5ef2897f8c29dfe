package upstream

import (
	"context"
	"sync"
	"time"
)

// keepEmptyStacks is how many hosts keep their empty idle stack allocated;
// beyond it empty stacks are deleted, so the map stays bounded by the idle
// connections plus this.
const keepEmptyStacks = 16

// pool holds idle connections per host (LIFO, so the warmest connection is
// reused and the oldest age out at the bottom) and counts open connections
// against the optional cap. It runs no goroutines: idle connections past
// the idle timeout are reaped when their host's stack is touched.
type pool struct {
	maxIdle     int
	maxConns    int // 0: no cap
	idleTimeout time.Duration

	mu      sync.Mutex
	idle    map[string]*idleStack
	nIdle   int
	nOpen   int
	waiters []*waiter // FIFO; only when at maxConns, one per blocked request
}

type idleStack struct{ conns []*conn } // oldest first

// waiter is a request blocked on maxConns. It receives one hand-off: a
// connection to its host, or nil meaning a slot to dial with.
type waiter struct {
	key string
	ch  chan *conn
}

// get returns an idle connection to key, or nil after reserving a slot for
// a new connection, waiting for one while the pool is at maxConns.
func (p *pool) get(ctx context.Context, key string) (*conn, error) {
	p.mu.Lock()
	pc, stale := p.popLocked(key, nil)
	if pc != nil {
		p.mu.Unlock()
		closeConns(stale)
		return pc, nil
	}
	if p.maxConns == 0 || p.nOpen < p.maxConns {
		p.nOpen++
		p.mu.Unlock()
		closeConns(stale)
		return nil, nil
	}
	// At the cap. An idle connection to another host gives way (its slot
	// passes to us); otherwise wait for a connection or a slot.
	if victim := p.evictLocked(); victim != nil {
		p.mu.Unlock()
		closeConns(append(stale, victim))
		return nil, nil
	}
	w := &waiter{key: key, ch: make(chan *conn, 1)}
	p.waiters = append(p.waiters, w)
	p.mu.Unlock()
	closeConns(stale)

	select {
	case pc := <-w.ch:
		return pc, nil
	case <-ctx.Done():
		p.mu.Lock()
		removed := p.removeWaiterLocked(w)
		p.mu.Unlock()
		if !removed {
			// A hand-off raced with the cancellation: pass it on.
			if pc := <-w.ch; pc != nil {
				p.put(pc)
			} else {
				p.freeSlot()
			}
		}
		return nil, ctx.Err()
	}
}

// popLocked takes the newest idle connection to key. If that one has been
// idle too long, so have all below it: they are removed into stale.
func (p *pool) popLocked(key string, stale []*conn) (*conn, []*conn) {
	st := p.idle[key]
	if st == nil || len(st.conns) == 0 {
		return nil, stale
	}
	n := len(st.conns)
	pc := st.conns[n-1]
	if time.Since(pc.idleSince) <= p.idleTimeout {
		st.conns[n-1] = nil
		st.conns = st.conns[:n-1]
		p.nIdle--
		p.dropEmptyLocked(key, st)
		pc.reused = true
		return pc, stale
	}
	stale = append(stale, st.conns...)
	clear(st.conns)
	st.conns = st.conns[:0]
	p.nIdle -= n
	for range n {
		p.freeSlotLocked()
	}
	p.dropEmptyLocked(key, st)
	return nil, stale
}

// evictLocked removes the oldest idle connection of some host; its slot is
// the caller's.
func (p *pool) evictLocked() *conn {
	for key, st := range p.idle {
		if len(st.conns) == 0 {
			continue
		}
		pc := st.conns[0]
		copy(st.conns, st.conns[1:])
		st.conns[len(st.conns)-1] = nil
		st.conns = st.conns[:len(st.conns)-1]
		p.nIdle--
		p.dropEmptyLocked(key, st)
		return pc
	}
	return nil
}

func (p *pool) dropEmptyLocked(key string, st *idleStack) {
	if len(st.conns) == 0 && len(p.idle) > keepEmptyStacks {
		delete(p.idle, key)
	}
}

// put returns a busy connection, clean and reusable, to the pool: to a
// request waiting for its host, else onto its host's idle stack unless the
// pool is full.
func (p *pool) put(pc *conn) {
	now := time.Now()
	p.mu.Lock()
	for i, w := range p.waiters {
		if w.key == pc.key {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			pc.reused = true
			w.ch <- pc
			p.mu.Unlock()
			return
		}
	}
	if len(p.waiters) != 0 || p.nIdle >= p.maxIdle {
		// Requests to other hosts wait for a slot, or there is no room:
		// close this connection and pass its slot on.
		p.freeSlotLocked()
		p.mu.Unlock()
		closeConns([]*conn{pc})
		return
	}
	if p.idle == nil {
		p.idle = make(map[string]*idleStack)
	}
	st := p.idle[pc.key]
	if st == nil {
		st = &idleStack{}
		p.idle[pc.key] = st
	}
	pc.idleSince = now
	st.conns = append(st.conns, pc)
	p.nIdle++
	// Reap from the bottom, where the oldest are.
	var stale []*conn
	for len(st.conns) > 1 && now.Sub(st.conns[0].idleSince) > p.idleTimeout {
		stale = append(stale, st.conns[0])
		copy(st.conns, st.conns[1:])
		st.conns[len(st.conns)-1] = nil
		st.conns = st.conns[:len(st.conns)-1]
		p.nIdle--
		p.freeSlotLocked()
	}
	p.mu.Unlock()
	closeConns(stale)
}

// freeSlot is called when a busy connection is closed or a dial failed.
func (p *pool) freeSlot() {
	p.mu.Lock()
	p.freeSlotLocked()
	p.mu.Unlock()
}

// freeSlotLocked passes a slot to the first waiter or gives it up.
func (p *pool) freeSlotLocked() {
	if len(p.waiters) != 0 {
		w := p.waiters[0]
		p.waiters[0] = nil
		p.waiters = p.waiters[1:]
		w.ch <- nil // buffered, and each waiter gets one hand-off
		return
	}
	p.nOpen--
}

func (p *pool) removeWaiterLocked(w *waiter) bool {
	for i, x := range p.waiters {
		if x == w {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			return true
		}
	}
	return false
}

// closeIdle closes every idle connection.
func (p *pool) closeIdle() {
	var conns []*conn
	p.mu.Lock()
	for key, st := range p.idle {
		conns = append(conns, st.conns...)
		for range st.conns {
			p.freeSlotLocked()
		}
		delete(p.idle, key)
	}
	p.nIdle = 0
	p.mu.Unlock()
	closeConns(conns)
}

func (p *pool) counts() (idle, open int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.nIdle, p.nOpen
}

// closeConns closes connections that the pool no longer holds; their
// slots have been accounted for already.
func closeConns(conns []*conn) {
	for _, pc := range conns {
		if pc.closed.CompareAndSwap(false, true) {
			_ = pc.nc.Close()
		}
	}
}
