package escalation

import (
	"math"
	"sync"
	"sync/atomic"
)

// navigation is a first-order Markov model of page-template transitions,
// learned from clients that look human. It is bounded: when the table is
// full every count is halved and the transitions that drop to zero are
// forgotten, so what is common survives and what is rare ages out.
type navigation struct {
	shards   [16]navShard
	maxPer   int
	observed atomic.Int64 // transitions learned, for readiness
	// humanNLL is the running mean surprise of learned transitions
	// (float64 bits), the baseline a client is compared with.
	humanNLL atomic.Uint64
	states   atomic.Int64 // distinct source templates, for smoothing
}

type navShard struct {
	mu    sync.Mutex
	trans map[uint64]uint32 // from<<32 | to → count
	from  map[uint32]uint32 // from → total count
}

const navSmoothing = 0.5

func newNavigation(maxTransitions int) *navigation {
	n := &navigation{maxPer: max(maxTransitions/16, 16)}
	for i := range n.shards {
		n.shards[i].trans = make(map[uint64]uint32)
		n.shards[i].from = make(map[uint32]uint32)
	}
	return n
}

func (n *navigation) shard(from uint32) *navShard { return &n.shards[from&15] }

// surprise returns -ln P(to | from) with additive smoothing.
func (n *navigation) surprise(from, to uint32) float64 {
	sh := n.shard(from)
	sh.mu.Lock()
	c, total := sh.trans[uint64(from)<<32|uint64(to)], sh.from[from]
	sh.mu.Unlock()
	return n.surpriseOf(c, total)
}

func (n *navigation) surpriseOf(c, total uint32) float64 {
	v := float64(max(n.states.Load(), 16))
	return -math.Log((float64(c) + navSmoothing) / (float64(total) + navSmoothing*v))
}

// ready reports whether enough transitions were learned for surprise to
// mean something.
func (n *navigation) ready(minObserved int) bool { return n.observed.Load() >= int64(minObserved) }

// baseline is the mean surprise of human transitions.
func (n *navigation) baseline() float64 { return math.Float64frombits(n.humanNLL.Load()) }

// learn records a human transition.
func (n *navigation) learn(from, to uint32) {
	sh := n.shard(from)
	sh.mu.Lock()
	key := uint64(from)<<32 | uint64(to)
	c, total := sh.trans[key], sh.from[from]
	nll := n.surpriseOf(c, total)
	if c == 0 && len(sh.trans) >= n.maxPer {
		n.states.Add(-sh.age())
	}
	if total == 0 {
		n.states.Add(1)
	}
	if c < math.MaxUint32 {
		sh.trans[key]++
		sh.from[from]++
	}
	sh.mu.Unlock()

	// Running mean of surprise, weighted towards recent traffic once there
	// is enough of it. Races between learners lose an update, which is
	// harmless for a mean.
	obs := n.observed.Add(1)
	old := n.baseline()
	alpha := math.Max(1/float64(obs), 0.001)
	n.humanNLL.Store(math.Float64bits(old + alpha*(nll-old)))
}

// age halves every count and forgets transitions (and sources) that reach
// zero, returning how many sources it forgot. The caller holds the lock.
func (sh *navShard) age() (forgotten int64) {
	for k, c := range sh.trans {
		if c /= 2; c == 0 {
			delete(sh.trans, k)
		} else {
			sh.trans[k] = c
		}
	}
	for k, c := range sh.from {
		if c /= 2; c == 0 {
			delete(sh.from, k)
			forgotten++
		} else {
			sh.from[k] = c
		}
	}
	return forgotten
}
