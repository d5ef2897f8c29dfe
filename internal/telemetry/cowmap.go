package telemetry

import (
	"sync"
	"sync/atomic"
)

// cowMap is a copy-on-write map for values resolved once and then read on
// every request: reads are a lock-free map lookup with no allocation, writes
// copy the map under a mutex. It suits small maps that stop growing early,
// such as resolved metric children.
type cowMap[K comparable, V any] struct {
	mu sync.Mutex
	m  atomic.Pointer[map[K]V]
}

func (c *cowMap[K, V]) load(k K) (V, bool) {
	if m := c.m.Load(); m != nil {
		v, ok := (*m)[k]
		return v, ok
	}
	var zero V
	return zero, false
}

// loadOrCreate returns the value for k, creating and storing it if absent.
// When the map already holds limit entries (limit < 0: no limit) nothing is
// created and ok is false.
func (c *cowMap[K, V]) loadOrCreate(k K, limit int, create func() V) (v V, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v, true
		}
	}
	n := 0
	if old != nil {
		n = len(*old)
	}
	if limit >= 0 && n >= limit {
		return v, false
	}
	next := make(map[K]V, n+1)
	if old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	v = create()
	next[k] = v
	c.m.Store(&next)
	return v, true
}
