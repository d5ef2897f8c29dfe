package fanout

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/decision"
	"github.com/scrapedefense/scrapedefense/internal/store"
)

func put(value string) store.Change {
	return store.Change{Op: store.OpPut, Decision: decision.Decision{Scope: decision.ScopeIP, Value: value}}
}

func next(t *testing.T, ch <-chan store.Change) store.Change {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatal("channel closed")
		}
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("timed out")
	}
	panic("unreachable")
}

func waitClosed(t *testing.T, ch <-chan store.Change) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("channel not closed")
		}
	}
}

func TestDeliversInOrder(t *testing.T) {
	h := New(16)
	t.Cleanup(h.Close)
	ch, err := h.Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	h.Publish(put("a"), put("b"))
	h.Publish(put("c"))
	for _, want := range []string{"a", "b", "c"} {
		if c := next(t, ch); c.Op != store.OpPut || c.Decision.Value != want {
			t.Fatalf("got %v %s; want put %s", c.Op, c.Decision.Value, want)
		}
	}
}

func TestOverflowSendsOneResync(t *testing.T) {
	const buffer = 4
	h := New(buffer)
	t.Cleanup(h.Close)
	ch, err := h.Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// Publishing in one call makes the outcome deterministic: the delivery
	// goroutine cannot take anything until Publish returns.
	var cs []store.Change
	for i := range 3*buffer + 1 {
		cs = append(cs, put(fmt.Sprint(i)))
	}
	h.Publish(cs...)
	if c := next(t, ch); c.Op != store.OpResync {
		t.Fatalf("first change = %v; want resync", c.Op)
	}
	// The overflow cleared the queue at change 12, which was then queued alone.
	if c := next(t, ch); c.Decision.Value != "12" {
		t.Fatalf("after resync got %s; want 12", c.Decision.Value)
	}
	h.Publish(put("after"))
	if c := next(t, ch); c.Op != store.OpPut || c.Decision.Value != "after" {
		t.Fatalf("got %v %s; want put after", c.Op, c.Decision.Value)
	}
}

func TestSlowWatcherDoesNotBlockOthers(t *testing.T) {
	h := New(8)
	t.Cleanup(h.Close)
	if _, err := h.Subscribe(t.Context()); err != nil { // never read
		t.Fatal(err)
	}
	fast, err := h.Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 10_000 {
			h.Publish(put(fmt.Sprint(i)))
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Publish blocked on a slow watcher")
	}
	// The fast watcher ends with the last change, whatever it skipped.
	for {
		c := next(t, fast)
		if c.Decision.Value == "9999" {
			break
		}
	}
}

func TestContextEndsWatch(t *testing.T) {
	h := New(8)
	t.Cleanup(h.Close)
	ctx, cancel := context.WithCancel(t.Context())
	ch, err := h.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h.Publish(put("pending")) // undelivered when the context ends
	cancel()
	waitClosed(t, ch)
	deadline := time.Now().Add(5 * time.Second)
	for h.Watchers() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d watchers left after cancel", h.Watchers())
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := h.Subscribe(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Subscribe with ended context: %v", err)
	}
}

func TestClose(t *testing.T) {
	h := New(0)
	ch, err := h.Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	h.Publish(put("x"))
	h.Close()
	waitClosed(t, ch)
	h.Close() // idempotent
	if _, err := h.Subscribe(t.Context()); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v; want ErrClosed", err)
	}
	h.Publish(put("y")) // no watchers, no panic
}

func BenchmarkPublish(b *testing.B) {
	for _, watchers := range []int{1, 8} {
		b.Run(fmt.Sprintf("watchers=%d", watchers), func(b *testing.B) {
			h := New(DefaultBuffer)
			b.Cleanup(h.Close)
			for range watchers {
				ch, err := h.Subscribe(b.Context())
				if err != nil {
					b.Fatal(err)
				}
				go func() {
					for range ch {
					}
				}()
			}
			c := put("192.0.2.1")
			b.ReportAllocs()
			for b.Loop() {
				h.Publish(c)
			}
		})
	}
}
