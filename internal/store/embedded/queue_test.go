package embedded

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/store"
)

// crashChildEnv makes the test binary act as the child of
// TestQueueSurvivesSIGKILL: it enqueues into the store at that path until
// killed.
const crashChildEnv = "SCRAPEDEFENSE_QUEUE_CRASH_CHILD"

const (
	crashBatch  = 64
	crashLeased = 16
	crashQueue  = "escalation"
)

// TestQueueSurvivesSIGKILL kills a real process that is busy enqueueing
// and checks that every batch whose Enqueue returned is in the file, that
// batches are all-or-nothing, and that messages leased (not acked) by the
// dead process are delivered again.
func TestQueueSurvivesSIGKILL(t *testing.T) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		return
	}
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := filepath.Join(t.TempDir(), FileName)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestQueueSurvivesSIGKILL$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	acked, leased := -1, false
	for lines.Scan() {
		line := lines.Text()
		if line == "leased" {
			leased = true
		}
		if n, ok := strings.CutPrefix(line, "enqueued "); ok {
			acked, _ = strconv.Atoi(n)
			if acked == 30 {
				// Kill mid-stream: the child is inside another Enqueue now.
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	// Lines written before the kill were read above: acked is the last
	// batch whose Enqueue returned.
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die by SIGKILL: %v", err)
	}
	if !leased || acked < 30 {
		t.Fatalf("child reported leased=%v, %d batches; want both before the kill", leased, acked+1)
	}

	s := openTest(t, path, Options{})
	n, err := s.QueueLen(ctx, crashQueue)
	if err != nil {
		t.Fatal(err)
	}
	want := int64(crashLeased + (acked+1)*crashBatch)
	if n < want || (n-crashLeased)%crashBatch != 0 {
		t.Fatalf("QueueLen after SIGKILL = %d; want at least %d, in whole batches of %d", n, want, crashBatch)
	}
	var got []string
	for int64(len(got)) < n {
		msgs, err := s.Dequeue(ctx, crashQueue, 0, time.Minute)
		if err != nil {
			t.Fatalf("Dequeue after %d of %d: %v", len(got), n, err)
		}
		for _, m := range msgs {
			if m.Attempts != 1 {
				t.Fatalf("message %s has Attempts %d; want 1 after a restart", m.ID, m.Attempts)
			}
			got = append(got, string(m.Payload))
		}
	}
	for i := range crashLeased {
		if want := fmt.Sprintf("leased-%02d", i); got[i] != want {
			t.Fatalf("message %d = %q; want %q (leased by the dead process, never acked)", i, got[i], want)
		}
	}
	for i, p := range got[crashLeased:] {
		if want := crashPayload(i/crashBatch, i%crashBatch); p != want {
			t.Fatalf("message %d = %q; want %q", crashLeased+i, p, want)
		}
	}
	t.Logf("child acked %d batches before SIGKILL; %d messages survived", acked+1, n)
}

func crashPayload(batch, i int) string {
	return fmt.Sprintf("batch-%06d-%02d-%s", batch, i, strings.Repeat("x", 360))
}

// crashChild is the child side: lease some messages without acking, then
// enqueue batches, reporting each on stdout once Enqueue has returned.
func crashChild(path string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(2)
	}
	s, err := Open(ctx, path, Options{})
	if err != nil {
		fail(err)
	}
	first := make([][]byte, crashLeased)
	for i := range first {
		first[i] = fmt.Appendf(nil, "leased-%02d", i)
	}
	if err := s.Enqueue(ctx, crashQueue, first...); err != nil {
		fail(err)
	}
	if msgs, err := s.Dequeue(ctx, crashQueue, crashLeased, time.Hour); err != nil || len(msgs) != crashLeased {
		fail(fmt.Errorf("lease: %d messages, %v", len(msgs), err))
	}
	fmt.Println("leased")
	for b := 0; ctx.Err() == nil; b++ {
		batch := make([][]byte, crashBatch)
		for i := range batch {
			batch[i] = []byte(crashPayload(b, i))
		}
		if err := s.Enqueue(ctx, crashQueue, batch...); err != nil {
			fail(err)
		}
		fmt.Printf("enqueued %d\n", b) // os.Stdout is unbuffered: the parent sees it now
	}
	fail(errors.New("not killed within 30 s"))
}

func TestQueueHealthAndStats(t *testing.T) {
	ctx := t.Context()
	s := openTest(t, filepath.Join(t.TempDir(), FileName), Options{NoSync: true, MaxHistoryKeys: 3})
	if err := s.Enqueue(ctx, "escalation", []byte("a"), []byte("b")); err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue(ctx, "alerts", []byte("c")); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := s.AppendHistory(ctx, fmt.Sprint("client-", i), []byte("r")); err != nil {
			t.Fatal(err)
		}
	}
	h := s.Health(ctx)
	if !h.OK || h.Keys != 3+3 || !strings.Contains(h.Detail, "queues=alerts:1,escalation:2") || !strings.Contains(h.Detail, "history_evictions=2") {
		t.Fatalf("Health = %+v; want 3 queued + 3 history records, queue lengths and evictions in Detail", h)
	}
	if st := s.Stats(); st.HistoryEvictions != 2 {
		t.Fatalf("Stats.HistoryEvictions = %d; want 2", st.HistoryEvictions)
	}
}

func TestHistoryCountsSurviveReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), FileName)
	opts := Options{NoSync: true, MaxHistoryKeys: 3}
	s := openTest(t, path, opts)
	for i := range 3 {
		if err := s.AppendHistory(ctx, fmt.Sprint("client-", i), []byte("r")); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s = openTest(t, path, opts)
	if err := s.AppendHistory(ctx, "client-3", []byte("r")); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ListHistory(ctx, "client-0", 0); err != nil || len(got) != 0 {
		t.Fatalf("client-0 = %q, %v; want evicted by the fourth key after reopen", got, err)
	}
	if rawKeys(t, s, bucketHistoryKeys) != 3 || rawKeys(t, s, bucketHistoryLRU) != 3 || rawKeys(t, s, bucketHistory) != 3 {
		t.Fatal("history buckets out of step after eviction")
	}
}

func TestMaxQueues(t *testing.T) {
	ctx := t.Context()
	s := openTest(t, filepath.Join(t.TempDir(), FileName), Options{NoSync: true})
	for i := range store.MaxQueues {
		if err := s.Enqueue(ctx, fmt.Sprint("q", i), []byte("m")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Enqueue(ctx, "one-too-many", []byte("m")); !errors.Is(err, store.ErrFull) {
		t.Fatalf("Enqueue to queue %d: err = %v; want ErrFull", store.MaxQueues+1, err)
	}
	if err := s.Enqueue(ctx, "q0", []byte("m")); err != nil {
		t.Fatalf("Enqueue to an existing queue at the limit: %v", err)
	}
}

// TestDequeueDoesNotPoll checks that a waiting Dequeue costs nothing: it
// must not run read transactions while nothing happens.
func TestDequeueDoesNotPoll(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), FileName), Options{NoSync: true})
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	before := s.db.Stats().TxN
	if _, err := s.Dequeue(ctx, "idle", 0, time.Minute); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dequeue on an idle queue: %v", err)
	}
	if n := s.db.Stats().TxN - before; n > 2 {
		t.Fatalf("an idle Dequeue ran %d read transactions in 300 ms; want it to sleep", n)
	}
}
