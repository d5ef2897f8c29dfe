package embedded

import (
	"bytes"
	"container/heap"
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/scrapedefense/scrapedefense/internal/store"
)

// queueFillPercent packs queue pages tightly: messages are appended at the
// end and removed from the front, so pages never need room for inserts.
const queueFillPercent = 0.95

// queueState is the in-memory side of one queue: leases and wake-ups.
// Messages live only in the file. Leases do not: a crash or restart forgets
// them, and every unacked message is delivered again. That is what makes
// the queue at-least-once without a disk write per delivery.
type queueState struct {
	mu sync.Mutex
	// next is the lowest sequence this process has not delivered yet.
	// Every message below it is acked, leased, or in ready.
	next   uint64
	out    map[uint64]*delivery // delivered and not acked
	leases leaseHeap            // leased deliveries, earliest deadline first
	ready  seqHeap              // deliveries whose lease expired, oldest first; may hold acked ones
	wake   chan struct{}        // closed and replaced when an Enqueue commits
}

// delivery is a message that was handed out at least once.
type delivery struct {
	seq      uint64
	deadline int64 // lease end, Unix ns
	attempts int
	index    int // position in leases, -1 when not leased
}

func newQueueState() *queueState {
	return &queueState{out: make(map[uint64]*delivery), wake: make(chan struct{})}
}

// notify wakes every waiting Dequeue.
func (q *queueState) notify() {
	q.mu.Lock()
	close(q.wake)
	q.wake = make(chan struct{})
	q.mu.Unlock()
}

// forget drops acked messages from the lease bookkeeping.
func (q *queueState) forget(seqs []uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, seq := range seqs {
		d, ok := q.out[seq]
		if !ok {
			continue
		}
		if d.index >= 0 {
			heap.Remove(&q.leases, d.index)
		}
		delete(q.out, seq)
	}
}

// expire moves deliveries whose lease ended by now to ready.
func (q *queueState) expire(now int64) {
	for len(q.leases) > 0 && q.leases[0].deadline <= now {
		d := heap.Pop(&q.leases).(*delivery)
		heap.Push(&q.ready, d.seq)
	}
}

// lease hands d out once more until deadline.
func (q *queueState) lease(d *delivery, deadline int64) {
	d.attempts++
	d.deadline = deadline
	heap.Push(&q.leases, d)
}

// loadQueues registers the queues found in the file, so that MaxQueues
// counts them.
func (s *Store) loadQueues() error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketQueues).ForEachBucket(func(name []byte) error {
			s.queues[string(name)] = newQueueState()
			return nil
		})
	})
}

// queueState returns the state of the named queue, creating it when needed.
func (s *Store) queueState(name string) (*queueState, error) {
	s.queuesMu.Lock()
	defer s.queuesMu.Unlock()
	if q := s.queues[name]; q != nil {
		return q, nil
	}
	if len(s.queues) >= store.MaxQueues {
		return nil, fmt.Errorf("%w: %d queues already exist, limit %d", store.ErrFull, len(s.queues), store.MaxQueues)
	}
	q := newQueueState()
	s.queues[name] = q
	return q, nil
}

// Enqueue implements store.Queue. The batch is one write in the group
// commit, so concurrent producers share fsyncs.
func (s *Store) Enqueue(ctx context.Context, queue string, payloads ...[]byte) error {
	if err := store.CheckEnqueue(queue, payloads); err != nil {
		return err
	}
	if len(payloads) == 0 {
		return s.view(ctx, func(*bolt.Tx) error { return nil })
	}
	q, err := s.queueState(queue)
	if err != nil {
		return err
	}
	// Copy the payloads: bbolt reads them at commit, which may come after
	// a canceled caller has reused its buffers.
	values := clonePayloads(payloads)
	name := []byte(queue)
	n := uint64(len(values))
	capacity := uint64(s.opts.QueueCapacity)
	var full error
	err = s.update(ctx, func(t *txn) error {
		full = nil
		lens := t.Bucket(bucketQueueLen)
		held, _ := decodeUint(lens.Get(name))
		if held+n > capacity {
			// Not an error for the transaction: the other writes in the
			// batch commit, this one writes nothing.
			full = fmt.Errorf("%w: queue %q holds %d messages, capacity %d, batch %d", store.ErrFull, queue, held, capacity, n)
			return nil
		}
		b, err := t.Bucket(bucketQueues).CreateBucketIfNotExists(name)
		if err != nil {
			return fmt.Errorf("enqueue %q: %w", queue, err)
		}
		b.FillPercent = queueFillPercent
		first := b.Sequence() + 1
		for i, k := range seqKeys(first, len(values)) {
			if err := b.Put(k, values[i]); err != nil {
				return fmt.Errorf("enqueue %q: %w", queue, err)
			}
		}
		if err := b.SetSequence(first + n - 1); err != nil {
			return fmt.Errorf("enqueue %q: %w", queue, err)
		}
		if err := lens.Put(name, encodeUint(held+n)); err != nil {
			return fmt.Errorf("enqueue %q: %w", queue, err)
		}
		t.afterCommit(q.notify)
		return nil
	})
	if err != nil {
		return err
	}
	return full
}

func clonePayloads(payloads [][]byte) [][]byte {
	total := 0
	for _, p := range payloads {
		total += len(p)
	}
	buf := make([]byte, 0, total)
	out := make([][]byte, len(payloads))
	for i, p := range payloads {
		start := len(buf)
		buf = append(buf, p...)
		out[i] = buf[start:len(buf):len(buf)]
	}
	return out
}

// Dequeue implements store.Queue. A waiting call sleeps until an Enqueue
// commits, a lease expires, ctx ends or the store closes: it never polls.
func (s *Store) Dequeue(ctx context.Context, queue string, max int, lease time.Duration) ([]store.Message, error) {
	if err := store.CheckQueueName(queue); err != nil {
		return nil, err
	}
	if err := store.CheckLease(lease); err != nil {
		return nil, err
	}
	max = store.DequeueLimit(max)
	q, err := s.queueState(queue)
	if err != nil {
		return nil, err
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		q.mu.Lock()
		wake := q.wake // taken before looking, so no Enqueue is missed
		msgs, err := s.leaseMessages(ctx, q, queue, max, lease)
		nextExpiry := int64(-1)
		if len(q.leases) > 0 {
			nextExpiry = q.leases[0].deadline
		}
		q.mu.Unlock()
		if err != nil || len(msgs) > 0 {
			return msgs, err
		}

		var expiry <-chan time.Time
		if nextExpiry >= 0 {
			d := time.Until(time.Unix(0, nextExpiry))
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			expiry = timer.C
		}
		select {
		case <-wake:
		case <-expiry:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.closing:
			return nil, store.ErrClosed
		}
	}
}

// leaseMessages leases up to max visible messages, expired leases first
// (they are the oldest). The caller holds q.mu.
func (s *Store) leaseMessages(ctx context.Context, q *queueState, queue string, max int, lease time.Duration) ([]store.Message, error) {
	now := time.Now()
	deadline := now.Add(lease).UnixNano()
	q.expire(now.UnixNano())
	var msgs []store.Message
	take := func(d *delivery, v []byte) {
		q.lease(d, deadline)
		payload := make([]byte, len(v)) // bbolt memory is valid only inside the transaction
		copy(payload, v)
		msgs = append(msgs, store.Message{ID: strconv.FormatUint(d.seq, 10), Payload: payload, Attempts: d.attempts})
	}
	err := s.view(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketQueues).Bucket([]byte(queue))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for len(msgs) < max && len(q.ready) > 0 {
			seq := heap.Pop(&q.ready).(uint64)
			d, ok := q.out[seq]
			if !ok || d.index >= 0 {
				continue // acked since its lease expired
			}
			key := encodeUint(seq)
			k, v := c.Seek(key)
			if !bytes.Equal(k, key) {
				delete(q.out, seq) // gone from the file: nothing to deliver
				continue
			}
			take(d, v)
		}
		for k, v := c.Seek(encodeUint(q.next)); k != nil && len(msgs) < max; k, v = c.Next() {
			seq, ok := decodeUint(k)
			if !ok {
				s.noteCorrupt(bucketQueues, k, fmt.Errorf("%w: queue key is %d bytes, want 8", store.ErrCorrupt, len(k)))
				continue
			}
			q.next = seq + 1
			if _, ok := q.out[seq]; ok {
				continue
			}
			d := &delivery{seq: seq, index: -1}
			q.out[seq] = d
			take(d, v)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return msgs, nil
}

// Ack implements store.Queue. Ids that are malformed, unknown or already
// acked are ignored.
func (s *Store) Ack(ctx context.Context, queue string, ids ...string) error {
	if err := store.CheckQueueName(queue); err != nil {
		return err
	}
	seqs := make([]uint64, 0, len(ids))
	for _, id := range ids {
		if seq, err := strconv.ParseUint(id, 10, 64); err == nil {
			seqs = append(seqs, seq)
		}
	}
	if len(seqs) == 0 {
		return s.view(ctx, func(*bolt.Tx) error { return nil })
	}
	s.queuesMu.Lock()
	q := s.queues[queue]
	s.queuesMu.Unlock()
	keys := make([][]byte, len(seqs))
	for i, seq := range seqs {
		keys[i] = encodeUint(seq)
	}
	name := []byte(queue)
	return s.update(ctx, func(t *txn) error {
		b := t.Bucket(bucketQueues).Bucket(name)
		if b == nil {
			return nil
		}
		b.FillPercent = queueFillPercent
		c := b.Cursor()
		var deleted uint64
		for _, key := range keys {
			if k, _ := c.Seek(key); bytes.Equal(k, key) {
				if err := c.Delete(); err != nil {
					return fmt.Errorf("ack %q: %w", queue, err)
				}
				deleted++
			}
		}
		if deleted > 0 {
			lens := t.Bucket(bucketQueueLen)
			held, _ := decodeUint(lens.Get(name))
			if err := lens.Put(name, encodeUint(held-min(held, deleted))); err != nil {
				return fmt.Errorf("ack %q: %w", queue, err)
			}
		}
		if q != nil {
			t.afterCommit(func() { q.forget(seqs) })
		}
		return nil
	})
}

// QueueLen implements store.Queue.
func (s *Store) QueueLen(ctx context.Context, queue string) (int64, error) {
	if err := store.CheckQueueName(queue); err != nil {
		return 0, err
	}
	var n uint64
	err := s.view(ctx, func(tx *bolt.Tx) error {
		n, _ = decodeUint(tx.Bucket(bucketQueueLen).Get([]byte(queue)))
		return nil
	})
	if err != nil {
		return 0, err
	}
	return int64(n), nil
}

// leaseHeap orders leased deliveries by deadline and tracks each one's
// index, so that Ack removes it in O(log n).
type leaseHeap []*delivery

func (h leaseHeap) Len() int           { return len(h) }
func (h leaseHeap) Less(i, j int) bool { return h[i].deadline < h[j].deadline }
func (h leaseHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}

func (h *leaseHeap) Push(x any) {
	d := x.(*delivery)
	d.index = len(*h)
	*h = append(*h, d)
}

func (h *leaseHeap) Pop() any {
	old := *h
	d := old[len(old)-1]
	old[len(old)-1] = nil
	d.index = -1
	*h = old[:len(old)-1]
	return d
}

// seqHeap is a min-heap of sequences.
type seqHeap []uint64

func (h seqHeap) Len() int           { return len(h) }
func (h seqHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h seqHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *seqHeap) Push(x any)        { *h = append(*h, x.(uint64)) }
func (h *seqHeap) Pop() any {
	old := *h
	v := old[len(old)-1]
	*h = old[:len(old)-1]
	return v
}
