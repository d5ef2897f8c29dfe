package tarpit

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Degrade reasons: the label values of tarpit_degraded_total.
const (
	reasonConns     = "conns"
	reasonSubnet    = "subnet"
	reasonBandwidth = "bandwidth"
	reasonCPU       = "cpu"
	reasonBadPath   = "bad_path"
)

// connBudget caps concurrent drip connections, globally and per subnet.
// The per-subnet map holds only subnets with live connections, so it is
// bounded by the global cap.
type connBudget struct {
	max, perSubnet int
	active         atomic.Int64

	mu      sync.Mutex
	subnets map[netip.Prefix]int
}

func newConnBudget(max, perSubnet int) *connBudget {
	return &connBudget{max: max, perSubnet: perSubnet, subnets: make(map[netip.Prefix]int)}
}

// subnetOf returns the /24 or /64 of addr.
func subnetOf(addr netip.Addr) netip.Prefix {
	addr = addr.Unmap()
	bits := 64
	if addr.Is4() {
		bits = 24
	}
	p, _ := addr.Prefix(bits)
	return p
}

// acquire reserves a connection slot for addr, or returns the reason it
// cannot.
func (b *connBudget) acquire(addr netip.Addr) (netip.Prefix, string) {
	if b.active.Add(1) > int64(b.max) {
		b.active.Add(-1)
		return netip.Prefix{}, reasonConns
	}
	sub := subnetOf(addr)
	b.mu.Lock()
	if b.subnets[sub] >= b.perSubnet {
		b.mu.Unlock()
		b.active.Add(-1)
		return netip.Prefix{}, reasonSubnet
	}
	b.subnets[sub]++
	b.mu.Unlock()
	return sub, ""
}

func (b *connBudget) release(sub netip.Prefix) {
	b.mu.Lock()
	if n := b.subnets[sub] - 1; n > 0 {
		b.subnets[sub] = n
	} else {
		delete(b.subnets, sub)
	}
	b.mu.Unlock()
	b.active.Add(-1)
}

func (b *connBudget) subnetCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subnets)
}

// tokenBucket caps bytes per second across all connections.
type tokenBucket struct {
	mu     sync.Mutex
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
	now    func() time.Time
}

func newTokenBucket(rate int, now func() time.Time) *tokenBucket {
	return &tokenBucket{rate: float64(rate), burst: float64(rate), tokens: float64(rate), last: now(), now: now}
}

func (t *tokenBucket) refill() {
	now := t.now()
	t.tokens = min(t.burst, t.tokens+now.Sub(t.last).Seconds()*t.rate)
	t.last = now
}

// take removes n tokens if that many are available.
func (t *tokenBucket) take(n int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refill()
	if t.tokens < float64(n) {
		return false
	}
	t.tokens -= float64(n)
	return true
}

// available reports the tokens left (for the budget gauge).
func (t *tokenBucket) available() float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refill()
	return t.tokens
}

// semaphore caps concurrent page generations; try never blocks.
type semaphore chan struct{}

func (s semaphore) try() bool {
	select {
	case s <- struct{}{}:
		return true
	default:
		return false
	}
}

func (s semaphore) release() { <-s }
