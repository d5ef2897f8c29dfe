package aiservice

import (
	"sync"
	"time"
)

// senderLimiter is a token bucket per configured sender. The table is built
// once from the configuration and never grows, so callers cannot inflate it.
type senderLimiter struct {
	rate    float64 // tokens per second
	burst   float64
	buckets map[string]*bucket
}

type bucket struct {
	mu     sync.Mutex
	tokens float64
	last   time.Time
}

func newSenderLimiter(senders []string, perSecond float64, burst int) *senderLimiter {
	l := &senderLimiter{rate: perSecond, burst: float64(burst), buckets: make(map[string]*bucket, len(senders))}
	for _, s := range senders {
		l.buckets[s] = &bucket{tokens: l.burst}
	}
	return l
}

// allow takes one token for sender. When none is left it reports how long
// until one is.
func (l *senderLimiter) allow(sender string, now time.Time) (bool, time.Duration) {
	b, ok := l.buckets[sender]
	if !ok {
		return false, time.Second
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() {
		if dt := now.Sub(b.last).Seconds(); dt > 0 {
			b.tokens = min(l.burst, b.tokens+dt*l.rate)
		}
	}
	if now.After(b.last) {
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	return false, wait
}
