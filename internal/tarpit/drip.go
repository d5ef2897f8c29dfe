package tarpit

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// End reasons of a drip session: the label values of tarpit_sessions_ended_total.
const (
	endComplete     = "complete"
	endMaxSession   = "max_session"
	endWriteTimeout = "write_timeout"
	endClientGone   = "client_gone"
	endShutdown     = "shutdown"
)

// session is one hijacked connection being fed its page a chunk at a time.
// It holds only the bytes still to send (at most rate × MaxSession).
type session struct {
	conn     net.Conn
	data     []byte
	started  time.Time
	deadline time.Time
	end      func(s *session, reason string) // releases budgets, counts metrics
}

// scheduler drips every session from a few goroutines instead of one per
// connection: each shard owns a wheel with one slot per tick of the chunk
// interval; a tick visits one slot. Since every session has the same
// interval, a session stays in its slot for its whole life.
type scheduler struct {
	tick         time.Duration
	chunk        int
	writeTimeout time.Duration
	bucket       *tokenBucket
	sent         func(n int)
	now          func() time.Time

	shards []*shard
	rr     atomic.Uint32
	wg     sync.WaitGroup
}

type shard struct {
	mu     sync.Mutex
	slots  [][]*session
	pos    int
	closed bool
}

func newScheduler(interval time.Duration, chunk int, writeTimeout time.Duration, bucket *tokenBucket, sent func(int), now func() time.Time) *scheduler {
	tick := min(100*time.Millisecond, interval)
	nslots := max(1, int((interval+tick/2)/tick))
	s := &scheduler{tick: tick, chunk: chunk, writeTimeout: writeTimeout, bucket: bucket, sent: sent, now: now}
	for range 4 {
		s.shards = append(s.shards, &shard{slots: make([][]*session, nslots)})
	}
	return s
}

// start runs the shards until ctx ends; then every session is closed.
func (s *scheduler) start(ctx context.Context) {
	for _, sh := range s.shards {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.runShard(ctx, sh)
		}()
	}
}

func (s *scheduler) wait() { s.wg.Wait() }

func (s *scheduler) runShard(ctx context.Context, sh *shard) {
	t := time.NewTicker(s.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.closeShard(sh, true)
			return
		case <-t.C:
		}
		sh.mu.Lock()
		pos := sh.pos
		due := sh.slots[pos]
		sh.slots[pos] = nil
		sh.pos = (pos + 1) % len(sh.slots)
		sh.mu.Unlock()
		if len(due) == 0 {
			continue
		}
		keep := due[:0]
		for _, ss := range due {
			if s.step(ss) {
				keep = append(keep, ss)
			}
		}
		sh.mu.Lock()
		if sh.closed {
			sh.mu.Unlock()
			for _, ss := range keep {
				ss.end(ss, endShutdown)
			}
			continue
		}
		sh.slots[pos] = append(sh.slots[pos], keep...)
		sh.mu.Unlock()
	}
}

// closeAll ends every session (listener shutdown) but keeps the scheduler
// running for sessions added later.
func (s *scheduler) closeAll() {
	for _, sh := range s.shards {
		s.closeShard(sh, false)
	}
}

func (s *scheduler) closeShard(sh *shard, final bool) {
	sh.mu.Lock()
	var all []*session
	for i, slot := range sh.slots {
		all = append(all, slot...)
		sh.slots[i] = nil
	}
	if final {
		sh.closed = true
	}
	sh.mu.Unlock()
	for _, ss := range all {
		ss.end(ss, endShutdown)
	}
}

// add sends the first chunk now and queues the session for the rest. It
// reports false (and has ended the session) when the session is over.
func (s *scheduler) add(ss *session) bool {
	if !s.step(ss) {
		return false
	}
	sh := s.shards[s.rr.Add(1)%uint32(len(s.shards))]
	sh.mu.Lock()
	if sh.closed {
		sh.mu.Unlock()
		ss.end(ss, endShutdown)
		return false
	}
	// The slot just visited comes round again after one full interval.
	slot := (sh.pos + len(sh.slots) - 1) % len(sh.slots)
	sh.slots[slot] = append(sh.slots[slot], ss)
	sh.mu.Unlock()
	return true
}

// step writes one chunk; false means the session has ended.
func (s *scheduler) step(ss *session) bool {
	now := s.now()
	if !now.Before(ss.deadline) {
		ss.end(ss, endMaxSession)
		return false
	}
	n := min(s.chunk, len(ss.data))
	if !s.bucket.take(n) {
		return true // over the global byte budget: skip a beat
	}
	_ = ss.conn.SetWriteDeadline(now.Add(s.writeTimeout))
	w, err := ss.conn.Write(ss.data[:n])
	s.sent(w)
	ss.data = ss.data[w:]
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		ss.end(ss, endWriteTimeout)
		return false
	case err != nil:
		ss.end(ss, endClientGone)
		return false
	case len(ss.data) == 0:
		ss.end(ss, endComplete)
		return false
	}
	return true
}
