package events

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestQueueDropsWhenFull(t *testing.T) {
	q := NewQueue(2)
	for i := range 5 {
		ok := q.TryPush(Event{Path: "/" + strconv.Itoa(i)})
		if want := i < 2; ok != want {
			t.Errorf("push %d: %v, want %v", i, ok, want)
		}
	}
	if q.Len() != 2 || q.Cap() != 2 || q.Pushed() != 2 || q.Dropped() != 3 {
		t.Errorf("len %d cap %d pushed %d dropped %d, want 2 2 2 3", q.Len(), q.Cap(), q.Pushed(), q.Dropped())
	}
	ctx := context.Background()
	for _, want := range []string{"/0", "/1"} { // first in, first out; drops lose the newest
		ev, err := q.Pop(ctx)
		if err != nil || ev.Path != want {
			t.Errorf("Pop = %q, %v; want %q", ev.Path, err, want)
		}
	}
	if !q.TryPush(Event{}) {
		t.Error("push after draining failed")
	}
}

func TestQueuePopWaitsForContext(t *testing.T) {
	q := NewQueue(1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := q.Pop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Pop on an empty queue = %v, want the context's error", err)
	}
}

// TestQueueConcurrent checks that every push is either queued or counted as
// dropped, whatever the interleaving.
func TestQueueConcurrent(t *testing.T) {
	q := NewQueue(64)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var popped int
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, err := q.Pop(ctx); err != nil {
				return
			}
			popped++
		}
	}()
	const producers, each = 8, 500
	var wg sync.WaitGroup
	for range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				q.TryPush(Event{})
			}
		}()
	}
	wg.Wait()
	if got := q.Pushed() + q.Dropped(); got != producers*each {
		t.Errorf("pushed %d + dropped %d = %d, want %d", q.Pushed(), q.Dropped(), got, producers*each)
	}
	deadline := time.Now().Add(5 * time.Second)
	for q.Len() > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	if uint64(popped) != q.Pushed() {
		t.Errorf("popped %d, pushed %d", popped, q.Pushed())
	}
}

func TestRecent(t *testing.T) {
	paths := func(evs []Event) []string {
		out := make([]string, len(evs))
		for i, e := range evs {
			out[i] = e.Path
		}
		return out
	}
	r := NewRecent(3)
	if got := r.List(); got == nil || len(got) != 0 {
		t.Errorf("empty ring lists %v, want an empty non-nil slice", got)
	}
	for i := 1; i <= 2; i++ {
		r.Add(Event{Path: strconv.Itoa(i)})
	}
	if got := paths(r.List()); len(got) != 2 || got[0] != "2" || got[1] != "1" {
		t.Errorf("List = %v, want [2 1]", got)
	}
	for i := 3; i <= 7; i++ {
		r.Add(Event{Path: strconv.Itoa(i)})
	}
	if got := paths(r.List()); len(got) != 3 || got[0] != "7" || got[1] != "6" || got[2] != "5" {
		t.Errorf("List = %v, want [7 6 5]", got)
	}
}

func TestPopBatchTakesWhatIsQueued(t *testing.T) {
	q := NewQueue(8)
	for i := range 5 {
		q.TryPush(Event{Path: "/" + strconv.Itoa(i)})
	}
	buf := make([]Event, 3)
	ctx := context.Background()
	for _, want := range []int{3, 2} {
		n, err := q.PopBatch(ctx, buf)
		if err != nil || n != want {
			t.Fatalf("PopBatch = %d, %v; want %d", n, err, want)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if n, err := q.PopBatch(ctx, buf); n != 0 || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("PopBatch on an empty queue = %d, %v; want 0 and the context's error", n, err)
	}
}

func TestClip(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"abcdef", 3, "abc"},
		{"héllo", 2, "h"},         // é is two bytes: not split
		{"a\xffbc", 3, "ab"},      // invalid UTF-8 in what is kept is dropped
		{"exactly", 7, "exactly"}, // at the limit, untouched
	} {
		if got := Clip(tc.in, tc.n); got != tc.want {
			t.Errorf("Clip(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
