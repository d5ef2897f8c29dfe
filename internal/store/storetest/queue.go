package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/store"
)

const testQueue = "escalation"

func enqueue(t *testing.T, s store.Store, queue string, payloads ...string) {
	t.Helper()
	bs := make([][]byte, len(payloads))
	for i, p := range payloads {
		bs[i] = []byte(p)
	}
	if err := s.Enqueue(testContext(t), queue, bs...); err != nil {
		t.Fatalf("Enqueue(%q, %d payloads): %v", queue, len(payloads), err)
	}
}

func dequeue(t *testing.T, s store.Store, queue string, max int, lease time.Duration) []store.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	msgs, err := s.Dequeue(ctx, queue, max, lease)
	if err != nil {
		t.Fatalf("Dequeue(%q, %d): %v", queue, max, err)
	}
	return msgs
}

// wantNothing checks that no message becomes visible within wait.
func wantNothing(t *testing.T, s store.Store, queue string, wait time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	msgs, err := s.Dequeue(ctx, queue, 0, time.Minute)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dequeue = %s, %v; want nothing before the deadline", payloads(msgs), err)
	}
}

func payloads(msgs []store.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(m.Payload)
	}
	return out
}

func ids(msgs []store.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID
	}
	return out
}

func ack(t *testing.T, s store.Store, queue string, msgs []store.Message) {
	t.Helper()
	if err := s.Ack(testContext(t), queue, ids(msgs)...); err != nil {
		t.Fatalf("Ack: %v", err)
	}
}

func wantLen(t *testing.T, s store.Store, queue string, want int64) {
	t.Helper()
	if n, err := s.QueueLen(testContext(t), queue); err != nil || n != want {
		t.Fatalf("QueueLen(%q) = %d, %v; want %d", queue, n, err, want)
	}
}

func seqPayloads(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s%04d", prefix, i))
	}
	return out
}

var queueTests = []test{
	{"OrderAcrossBatches", func(t *testing.T, s store.Store) {
		enqueue(t, s, testQueue, "a")
		enqueue(t, s, testQueue, "b", "c")
		enqueue(t, s, testQueue, "d", "e", "f")
		wantLen(t, s, testQueue, 6)
		msgs := dequeue(t, s, testQueue, 10, time.Minute)
		if got := payloads(msgs); !slices.Equal(got, []string{"a", "b", "c", "d", "e", "f"}) {
			t.Fatalf("Dequeue = %q; want a..f in order", got)
		}
		seen := map[string]bool{}
		for _, m := range msgs {
			if m.Attempts != 1 || m.ID == "" || seen[m.ID] {
				t.Fatalf("message %+v: want a fresh, unique ID and Attempts 1", m)
			}
			seen[m.ID] = true
		}
		wantLen(t, s, testQueue, 6) // leased messages are still held
		ack(t, s, testQueue, msgs)
		wantLen(t, s, testQueue, 0)
	}},
	{"MaxAndLeasedInvisible", func(t *testing.T, s store.Store) {
		all := seqPayloads("m", 0, 10)
		enqueue(t, s, testQueue, all...)
		first := dequeue(t, s, testQueue, 3, time.Minute)
		second := dequeue(t, s, testQueue, 3, time.Minute)
		rest := dequeue(t, s, testQueue, 0, time.Minute)
		got := slices.Concat(payloads(first), payloads(second), payloads(rest))
		if len(first) != 3 || len(second) != 3 || !slices.Equal(got, all) {
			t.Fatalf("Dequeue in steps = %q, %q, %q; want 3, 3 and the rest, in order", payloads(first), payloads(second), payloads(rest))
		}
		wantNothing(t, s, testQueue, 50*time.Millisecond)
	}},
	{"PayloadsAreCopies", func(t *testing.T, s store.Store) {
		ctx := testContext(t)
		p := []byte("original")
		empty := []byte{}
		if err := s.Enqueue(ctx, testQueue, p, empty); err != nil {
			t.Fatal(err)
		}
		copy(p, "mutated!")
		msgs := dequeue(t, s, testQueue, 0, time.Minute)
		if got := payloads(msgs); !slices.Equal(got, []string{"original", ""}) {
			t.Fatalf("Dequeue = %q; want the payloads as enqueued", got)
		}
	}},
	{"EmptyEnqueue", func(t *testing.T, s store.Store) {
		if err := s.Enqueue(testContext(t), testQueue); err != nil {
			t.Fatalf("Enqueue with no payloads: %v", err)
		}
		wantLen(t, s, testQueue, 0)
	}},
	{"QueuesIndependent", func(t *testing.T, s store.Store) {
		enqueue(t, s, "a", "a1", "a2")
		enqueue(t, s, "b", "b1")
		wantLen(t, s, "a", 2)
		wantLen(t, s, "b", 1)
		wantLen(t, s, "unknown", 0)
		if got := payloads(dequeue(t, s, "b", 0, time.Minute)); !slices.Equal(got, []string{"b1"}) {
			t.Fatalf("Dequeue(b) = %q", got)
		}
		if got := payloads(dequeue(t, s, "a", 0, time.Minute)); !slices.Equal(got, []string{"a1", "a2"}) {
			t.Fatalf("Dequeue(a) = %q", got)
		}
	}},
	{"Validation", func(t *testing.T, s store.Store) {
		ctx := testContext(t)
		for _, name := range []string{"", "has space", "slash/", "ümlaut", strings.Repeat("q", store.MaxQueueNameLen+1)} {
			if err := s.Enqueue(ctx, name, []byte("x")); !errors.Is(err, store.ErrInvalidKey) {
				t.Errorf("Enqueue(%q) err = %v; want ErrInvalidKey", name, err)
			}
			if _, err := s.Dequeue(ctx, name, 1, time.Second); !errors.Is(err, store.ErrInvalidKey) {
				t.Errorf("Dequeue(%q) err = %v; want ErrInvalidKey", name, err)
			}
			if err := s.Ack(ctx, name, "1"); !errors.Is(err, store.ErrInvalidKey) {
				t.Errorf("Ack(%q) err = %v; want ErrInvalidKey", name, err)
			}
			if _, err := s.QueueLen(ctx, name); !errors.Is(err, store.ErrInvalidKey) {
				t.Errorf("QueueLen(%q) err = %v; want ErrInvalidKey", name, err)
			}
		}
		if err := s.Enqueue(ctx, "ok.name_1:x-y", []byte("x")); err != nil {
			t.Errorf("Enqueue with a name of every allowed kind: %v", err)
		}
		big := make([]byte, store.MaxValueLen+1)
		if err := s.Enqueue(ctx, testQueue, []byte("good"), big); !errors.Is(err, store.ErrValueTooLarge) {
			t.Errorf("Enqueue with an oversized payload: err = %v; want ErrValueTooLarge", err)
		}
		batch := make([][]byte, store.MaxEnqueueBatch+1)
		if err := s.Enqueue(ctx, testQueue, batch...); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("Enqueue of %d payloads: err = %v; want ErrInvalid", len(batch), err)
		}
		wantLen(t, s, testQueue, 0)
		for _, lease := range []time.Duration{0, -time.Second, store.MaxLease + time.Second} {
			if _, err := s.Dequeue(ctx, testQueue, 1, lease); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("Dequeue with lease %v: err = %v; want ErrInvalid", lease, err)
			}
		}
	}},
	{"LeaseExpiryRedelivers", func(t *testing.T, s store.Store) {
		enqueue(t, s, testQueue, "x", "y")
		const lease = 150 * time.Millisecond
		first := dequeue(t, s, testQueue, 1, lease)
		if len(first) != 1 || string(first[0].Payload) != "x" || first[0].Attempts != 1 {
			t.Fatalf("first Dequeue = %+v; want x, attempt 1", first)
		}
		start := time.Now()
		// While x is leased, y is next; then x comes back (it is older) once its lease ends.
		if got := payloads(dequeue(t, s, testQueue, 0, time.Minute)); !slices.Equal(got, []string{"y"}) {
			t.Fatalf("Dequeue during the lease = %q; want y", got)
		}
		again := dequeue(t, s, testQueue, 0, time.Minute) // waits for the expiry
		if len(again) != 1 || again[0].ID != first[0].ID || string(again[0].Payload) != "x" || again[0].Attempts != 2 {
			t.Fatalf("redelivery = %+v; want %s again with Attempts 2", again, first[0].ID)
		}
		if waited := time.Since(start); waited < lease/2 {
			t.Fatalf("redelivered after %v, before the %v lease ended", waited, lease)
		}
		wantLen(t, s, testQueue, 2)
	}},
	{"Ack", func(t *testing.T, s store.Store) {
		ctx := testContext(t)
		enqueue(t, s, testQueue, "a", "b", "c")
		msgs := dequeue(t, s, testQueue, 0, 100*time.Millisecond)
		if len(msgs) != 3 {
			t.Fatalf("Dequeue = %q; want 3", payloads(msgs))
		}
		if err := s.Ack(ctx, testQueue, msgs[0].ID, msgs[2].ID); err != nil {
			t.Fatal(err)
		}
		wantLen(t, s, testQueue, 1)
		for _, id := range [][]string{{msgs[0].ID}, {"999999"}, {"not-an-id"}, {""}, nil} {
			if err := s.Ack(ctx, testQueue, id...); err != nil {
				t.Errorf("Ack(%q) = %v; want nil for unknown ids", id, err)
			}
		}
		if err := s.Ack(ctx, "never-used", "1"); err != nil {
			t.Errorf("Ack on an unknown queue = %v; want nil", err)
		}
		wantLen(t, s, testQueue, 1)
		// Only the unacked message comes back when the lease ends.
		again := dequeue(t, s, testQueue, 0, time.Minute)
		if len(again) != 1 || again[0].ID != msgs[1].ID {
			t.Fatalf("after lease expiry = %+v; want only %s", again, msgs[1].ID)
		}
		ack(t, s, testQueue, again)
		wantLen(t, s, testQueue, 0)
	}},
	{"AckAfterLeaseExpired", func(t *testing.T, s store.Store) {
		enqueue(t, s, testQueue, "late")
		msgs := dequeue(t, s, testQueue, 0, 30*time.Millisecond)
		time.Sleep(60 * time.Millisecond)
		ack(t, s, testQueue, msgs) // a slow consumer still finished the work
		wantLen(t, s, testQueue, 0)
		wantNothing(t, s, testQueue, 80*time.Millisecond)
	}},
	{"WaitingDequeueWakes", func(t *testing.T, s store.Store) {
		got := make(chan []store.Message, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			msgs, err := s.Dequeue(ctx, testQueue, 0, time.Minute)
			if err != nil {
				t.Errorf("waiting Dequeue: %v", err)
			}
			got <- msgs
		}()
		time.Sleep(50 * time.Millisecond)
		start := time.Now()
		enqueue(t, s, testQueue, "wake")
		msgs := <-got
		if !slices.Equal(payloads(msgs), []string{"wake"}) {
			t.Fatalf("waiting Dequeue = %q; want wake", payloads(msgs))
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("waiting Dequeue took %v after Enqueue; want prompt", d)
		}
	}},
	{"CancelWaitingDequeue", func(t *testing.T, s store.Store) {
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(50*time.Millisecond, cancel)
		start := time.Now()
		msgs, err := s.Dequeue(ctx, testQueue, 0, time.Minute)
		if !errors.Is(err, context.Canceled) || len(msgs) != 0 {
			t.Fatalf("Dequeue = %+v, %v; want context.Canceled", msgs, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("Dequeue returned %v after cancel; want prompt", d)
		}
		// The canceled wait took nothing.
		enqueue(t, s, testQueue, "after")
		if got := payloads(dequeue(t, s, testQueue, 0, time.Minute)); !slices.Equal(got, []string{"after"}) {
			t.Fatalf("Dequeue after cancel = %q", got)
		}
	}},
	{"CloseWakesDequeue", func(t *testing.T, s store.Store) {
		errc := make(chan error, 1)
		go func() {
			_, err := s.Dequeue(context.Background(), testQueue, 0, time.Minute)
			errc <- err
		}()
		time.Sleep(50 * time.Millisecond)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-errc:
			if !errors.Is(err, store.ErrClosed) {
				t.Fatalf("waiting Dequeue after Close: %v; want ErrClosed", err)
			}
		case <-time.After(waitTimeout):
			t.Fatal("Close did not end a waiting Dequeue")
		}
	}},
	{"ConcurrentConsumers", func(t *testing.T, s store.Store) {
		const total = 600
		for i := 0; i < total; i += 100 {
			enqueue(t, s, testQueue, seqPayloads("c", i, i+100)...)
		}
		var (
			mu   sync.Mutex
			seen = map[string]string{} // ID -> payload
			wg   sync.WaitGroup
		)
		for range 4 {
			wg.Go(func() {
				ctx := testContext(t)
				for {
					mu.Lock()
					done := len(seen) == total
					mu.Unlock()
					if done {
						return
					}
					short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
					msgs, err := s.Dequeue(short, testQueue, 7, time.Minute)
					cancel()
					if errors.Is(err, context.DeadlineExceeded) {
						continue
					}
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					for _, m := range msgs {
						if prev, dup := seen[m.ID]; dup {
							t.Errorf("message %s (%s) delivered twice while leased (first as %s)", m.ID, m.Payload, prev)
						}
						seen[m.ID] = string(m.Payload)
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		got := make([]string, 0, len(seen))
		for _, p := range seen {
			got = append(got, p)
		}
		slices.Sort(got)
		if !slices.Equal(got, seqPayloads("c", 0, total)) {
			t.Fatalf("consumers got %d distinct payloads; want all %d", len(got), total)
		}
	}},
	{"ProducersAndConsumers", func(t *testing.T, s store.Store) {
		const producers, batches, batchSize = 4, 25, 8
		const total = producers * batches * batchSize
		var (
			mu       sync.Mutex
			received = map[string]int{}
			wg       sync.WaitGroup
		)
		ctx := testContext(t)
		consumeCtx, stop := context.WithCancel(ctx)
		defer stop()
		var consumers sync.WaitGroup
		for range 3 {
			consumers.Go(func() {
				for {
					msgs, err := s.Dequeue(consumeCtx, testQueue, 16, time.Minute)
					if err != nil {
						if consumeCtx.Err() == nil {
							t.Error(err)
						}
						return
					}
					mu.Lock()
					for _, m := range msgs {
						received[string(m.Payload)]++
					}
					n := len(received)
					mu.Unlock()
					if err := s.Ack(ctx, testQueue, ids(msgs)...); err != nil {
						t.Error(err)
						return
					}
					if n == total {
						stop()
					}
				}
			})
		}
		for p := range producers {
			wg.Go(func() {
				for b := range batches {
					batch := make([][]byte, batchSize)
					for i := range batch {
						batch[i] = fmt.Appendf(nil, "p%d-b%d-%d", p, b, i)
					}
					if err := s.Enqueue(ctx, testQueue, batch...); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			stop()
		}
		consumers.Wait()
		if len(received) != total {
			t.Fatalf("received %d distinct messages; want %d", len(received), total)
		}
		for p, n := range received {
			if n != 1 {
				t.Errorf("%s received %d times without a lease expiry", p, n)
			}
		}
		wantLen(t, s, testQueue, 0)
	}},
}

var queueEnvTests = []envTest{
	{"CapacityBatchAtomic", func(t *testing.T, s store.Store, e env) {
		if e.queueCapacity == 0 {
			t.Skip("WithQueueCapacity not given")
		}
		ctx := testContext(t)
		enqueue(t, s, testQueue, seqPayloads("f", 0, e.queueCapacity-1)...)
		err := s.Enqueue(ctx, testQueue, []byte("over1"), []byte("over2"))
		if !errors.Is(err, store.ErrFull) {
			t.Fatalf("Enqueue past capacity: err = %v; want ErrFull", err)
		}
		wantLen(t, s, testQueue, int64(e.queueCapacity-1)) // none of the batch was appended
		enqueue(t, s, testQueue, "last")
		if err := s.Enqueue(ctx, testQueue, []byte("over")); !errors.Is(err, store.ErrFull) {
			t.Fatalf("Enqueue into a full queue: err = %v; want ErrFull", err)
		}
		// Leased messages still count; acked ones free room.
		msgs := dequeue(t, s, testQueue, 2, time.Minute)
		if err := s.Enqueue(ctx, testQueue, []byte("over")); !errors.Is(err, store.ErrFull) {
			t.Fatalf("Enqueue with leased messages filling the queue: err = %v; want ErrFull", err)
		}
		ack(t, s, testQueue, msgs)
		enqueue(t, s, testQueue, "room1", "room2")
		wantLen(t, s, testQueue, int64(e.queueCapacity))
		// Another queue has its own capacity.
		enqueue(t, s, "other", "o")
		rest := dequeue(t, s, testQueue, 0, time.Minute)
		got := payloads(rest)
		if got[0] != "f0002" || !slices.Contains(got, "last") || got[len(got)-1] != "room2" || slices.Contains(got, "over1") {
			t.Fatalf("queue after ErrFull = %q; want f0002.. last room1 room2 and nothing rejected", got)
		}
	}},
	{"ReopenKeepsUnacked", func(t *testing.T, s store.Store, e env) {
		if e.reopen == nil {
			t.Skip("WithReopen not given")
		}
		enqueue(t, s, testQueue, "a", "b", "c", "d", "e")
		leased := dequeue(t, s, testQueue, 2, time.Hour)
		if err := s.Ack(testContext(t), testQueue, leased[0].ID); err != nil {
			t.Fatal(err)
		}
		s = e.reopen(t, s)
		wantLen(t, s, testQueue, 4)
		enqueue(t, s, testQueue, "f")
		// b was leased for an hour, but leases do not survive a restart.
		msgs := dequeue(t, s, testQueue, 0, time.Minute)
		if got := payloads(msgs); !slices.Equal(got, []string{"b", "c", "d", "e", "f"}) {
			t.Fatalf("after reopen Dequeue = %q; want b c d e f", got)
		}
		if msgs[0].ID != leased[1].ID {
			t.Fatalf("b has ID %s after reopen, %s before; want it stable", msgs[0].ID, leased[1].ID)
		}
		ack(t, s, testQueue, msgs)
		s = e.reopen(t, s)
		wantLen(t, s, testQueue, 0)
		wantNothing(t, s, testQueue, 50*time.Millisecond)
	}},
}
