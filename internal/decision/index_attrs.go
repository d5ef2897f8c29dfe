package decision

import (
	"strings"
	"sync"
	"sync/atomic"
)

// attr is the part of a decision that many entries share: one escalation
// wave can block a million addresses with the same action, reason and
// source. It is immutable once published.
type attr struct {
	action Action
	reason string
	source string
}

const (
	attrChunkBits = 12
	attrChunkSize = 1 << attrChunkBits
)

type attrChunk [attrChunkSize]atomic.Pointer[attr]

// attrTable interns attrs under small integer ids with reference counts, so
// that the exact-address tables can hold a 4-byte id instead of two strings
// and stay free of pointers (the GC never scans them).
//
// Readers resolve ids without locking: chunks never move once allocated and
// the chunk directory is replaced copy-on-write. An id is only reused after
// its last reference is gone; readers of the exact tables detect that case
// through their shard's sequence counter (see shard4.lookup).
type attrTable struct {
	dir atomic.Pointer[[]*attrChunk]

	mu   sync.Mutex // guards the fields below
	ids  map[attr]uint32
	refs []uint32 // by id; id 0 is reserved to mark empty slots
	free []uint32
}

func newAttrTable() *attrTable {
	t := &attrTable{ids: make(map[attr]uint32), refs: []uint32{0}}
	dir := []*attrChunk{new(attrChunk)}
	t.dir.Store(&dir)
	return t
}

// get returns the attr for id, or nil if id is not (or no longer) in use.
func (t *attrTable) get(id uint32) *attr {
	dir := *t.dir.Load()
	c := id >> attrChunkBits
	if c >= uint32(len(dir)) {
		return nil
	}
	return dir[c][id&(attrChunkSize-1)].Load()
}

// acquire returns the id for (action, reason, source), taking a reference.
func (t *attrTable) acquire(action Action, reason, source string) uint32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	key := attr{action: action, reason: reason, source: source}
	if id, ok := t.ids[key]; ok {
		t.refs[id]++
		return id
	}
	// Clone so that an interned reason does not pin a large request buffer
	// it was sliced from.
	key.reason, key.source = strings.Clone(reason), strings.Clone(source)
	var id uint32
	if n := len(t.free); n > 0 {
		id = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		id = uint32(len(t.refs))
		t.refs = append(t.refs, 0)
		if dir := *t.dir.Load(); id>>attrChunkBits >= uint32(len(dir)) {
			grown := append(dir[:len(dir):len(dir)], new(attrChunk))
			t.dir.Store(&grown)
		}
	}
	t.refs[id] = 1
	t.ids[key] = id
	a := key
	(*t.dir.Load())[id>>attrChunkBits][id&(attrChunkSize-1)].Store(&a)
	return id
}

// release drops one reference to each id; an id whose count reaches zero
// is freed for reuse.
func (t *attrTable) release(ids ...uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	dir := *t.dir.Load()
	for _, id := range ids {
		if id == 0 || int(id) >= len(t.refs) || t.refs[id] == 0 {
			continue
		}
		t.refs[id]--
		if t.refs[id] > 0 {
			continue
		}
		slot := &dir[id>>attrChunkBits][id&(attrChunkSize-1)]
		if a := slot.Load(); a != nil {
			delete(t.ids, *a)
		}
		slot.Store(nil)
		t.free = append(t.free, id)
	}
}

// len reports the number of distinct attrs in use.
func (t *attrTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.ids)
}
