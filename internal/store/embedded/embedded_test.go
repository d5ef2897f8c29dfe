package embedded

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/scrapedefense/scrapedefense/internal/decision"
	"github.com/scrapedefense/scrapedefense/internal/store"
	"github.com/scrapedefense/scrapedefense/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	// Without fsync the suite runs in seconds; the code paths are the same.
	// Durability is covered by TestPersistence and the benchmarks.
	opts := Options{NoSync: true, QueueCapacity: 1000, MaxHistoryKeys: 20}
	storetest.Run(t,
		func(t *testing.T) store.Store {
			return openTest(t, filepath.Join(t.TempDir(), FileName), opts)
		},
		storetest.WithReopen(func(t *testing.T, s store.Store) store.Store {
			es := s.(*Store)
			if err := es.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			return openTest(t, es.Path(), opts)
		}),
		storetest.WithQueueCapacity(opts.QueueCapacity),
		storetest.WithHistoryKeys(opts.MaxHistoryKeys),
	)
}

// openTest opens a store that is closed when the test ends.
func openTest(t *testing.T, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(t.Context(), path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func mustDecision(t *testing.T, value string, ttl time.Duration) decision.Decision {
	t.Helper()
	d, err := decision.New(value, decision.ActionBlock, "test", "embedded_test", ttl, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestPersistence(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "data", FileName) // parent is created
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := mustDecision(t, "192.0.2.10", time.Hour)
	steps := []error{
		s.PutDecision(ctx, d),
		s.PutDecision(ctx, mustDecision(t, "10.0.0.0/8", 0)),
		s.Set(ctx, "key:signing", []byte("secret"), 0),
		s.Set(ctx, "challenge:1", []byte("c"), time.Hour),
		s.AppendAudit(ctx, store.AuditEntry{Actor: "admin", Action: "decision.put", Target: "192.0.2.10"}),
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	if _, err := s.Incr(ctx, "hops", 3, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, path, Options{})
	got, ok, err := s.GetDecision(ctx, "192.0.2.10")
	if err != nil || !ok || got.Action != d.Action || !got.Expires.Equal(d.Expires) {
		t.Fatalf("decision after reopen = %+v, %v, %v", got, ok, err)
	}
	if ds, err := s.ListDecisions(ctx); err != nil || len(ds) != 2 {
		t.Fatalf("ListDecisions after reopen = %v, %v", ds, err)
	}
	for _, k := range []string{"key:signing", "challenge:1"} {
		if _, ok, err := s.Get(ctx, k); err != nil || !ok {
			t.Fatalf("Get(%q) after reopen = %v, %v", k, ok, err)
		}
	}
	if ok, err := s.SetNX(ctx, "challenge:1", nil, 0); err != nil || ok {
		t.Fatalf("SetNX on persisted key = %v, %v; want false", ok, err)
	}
	// If the hour turned during the test the counter restarts; that is correct.
	if v, err := s.Incr(ctx, "hops", 1, time.Hour); err != nil || (v != 4 && v != 1) {
		t.Fatalf("Incr after reopen = %d, %v; want 4", v, err)
	}
	if es, err := s.ListAudit(ctx, time.Time{}, 0); err != nil || len(es) != 1 || es[0].Target != "192.0.2.10" {
		t.Fatalf("audit after reopen = %+v, %v", es, err)
	}
}

func TestLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	openTest(t, path, Options{})

	start := time.Now()
	s, err := Open(t.Context(), path, Options{LockTimeout: 200 * time.Millisecond})
	if err == nil {
		s.Close()
		t.Fatal("second Open succeeded; want ErrLocked")
	}
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second Open err = %v; want ErrLocked", err)
	}
	if el := time.Since(start); el < 150*time.Millisecond || el > 2*time.Second {
		t.Fatalf("second Open failed after %v; want about the lock timeout", el)
	}
	t.Log(err)
}

func TestLockReleasedOnClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	s, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	openTest(t, path, Options{LockTimeout: 100 * time.Millisecond})
}

// writeRaw puts records straight into the file, as damage would.
func writeRaw(t *testing.T, path string, bucket []byte, kv map[string]string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		for k, v := range kv {
			if err := b.Put([]byte(k), []byte(v)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCorruptRecords(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), FileName)
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutDecision(ctx, mustDecision(t, "192.0.2.1", 0)); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAudit(ctx, store.AuditEntry{Actor: "a", Action: "ok"}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	writeRaw(t, path, bucketDecisions, map[string]string{
		"192.0.2.2/32":    "{not json",
		"192.0.2.3/32":    `{"scope":"ip","value":"192.0.2.3","action":"explode","source":"x"}`,
		"192.0.2.4/32":    `{"scope":"ip","value":"999.1.1.1","action":"block","source":"x"}`,
		"198.51.100.0/24": `{"scope":"cidr","value":"198.51.100.0/24","action":"block","source":""}`,
		"garbage-key":     `[]`,
	})
	writeRaw(t, path, bucketAudit, map[string]string{"\x00": "nope"})
	writeRaw(t, path, bucketKV, map[string]string{"short": "abc"})
	writeRaw(t, path, bucketCounters, map[string]string{"bad": "1"})

	s = openTest(t, path, Options{})
	ds, err := s.ListDecisions(ctx)
	if err != nil || len(ds) != 1 || ds[0].Value != "192.0.2.1" {
		t.Fatalf("ListDecisions = %+v, %v; want the one good decision", ds, err)
	}
	if n := s.Stats().CorruptRecords; n != 5 {
		t.Fatalf("CorruptRecords = %d; want 5", n)
	}
	if _, _, err := s.GetDecision(ctx, "192.0.2.2"); !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("GetDecision(corrupt) err = %v; want ErrCorrupt", err)
	}
	if es, err := s.ListAudit(ctx, time.Time{}, 0); err != nil || len(es) != 1 {
		t.Fatalf("ListAudit = %+v, %v; want the one good entry", es, err)
	}
	if _, _, err := s.Get(ctx, "short"); !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("Get(corrupt) err = %v; want ErrCorrupt", err)
	}
	// Corrupt records can be overwritten or deleted.
	if v, err := s.Incr(ctx, "bad", 2, time.Minute); err != nil || v != 2 {
		t.Fatalf("Incr over corrupt counter = %d, %v; want 2", v, err)
	}
	if err := s.Set(ctx, "short", []byte("fixed"), 0); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.DeleteDecision(ctx, "192.0.2.2"); err != nil || !ok {
		t.Fatalf("DeleteDecision(corrupt) = %v, %v", ok, err)
	}
	if n, err := s.PurgeExpiredDecisions(ctx, time.Now()); err != nil || n != 0 {
		t.Fatalf("PurgeExpiredDecisions with corrupt records = %d, %v", n, err)
	}
	if h := s.Health(ctx); !h.OK {
		t.Fatalf("Health = %+v", h)
	}
}

func TestSchemaFromTheFuture(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	s, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	writeRaw(t, path, bucketMeta, map[string]string{string(metaSchema): string(encodeUint(schemaVersion + 1))})
	if s, err := Open(t.Context(), path, Options{}); err == nil {
		s.Close()
		t.Fatal("Open of a newer schema succeeded")
	}
}

func TestWatchOverflowResync(t *testing.T) {
	ctx := t.Context()
	s := openTest(t, filepath.Join(t.TempDir(), FileName), Options{WatchBuffer: 8, NoSync: true})
	ch, err := s.WatchDecisions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The first change is taken by the delivery goroutine and held for us;
	// the buffer holds 8 more; the rest overflow.
	for i := range 40 {
		if err := s.PutDecision(ctx, mustDecision(t, fmt.Sprintf("10.0.0.%d", i), 0)); err != nil {
			t.Fatal(err)
		}
	}
	var ops []store.Op
	var last string
	for last != "10.0.0.39" {
		select {
		case c := <-ch:
			ops = append(ops, c.Op)
			last = c.Decision.Value
		case <-time.After(5 * time.Second):
			t.Fatalf("stuck after %v", ops)
		}
	}
	resyncs := 0
	for _, op := range ops {
		if op == store.OpResync {
			resyncs++
		}
	}
	if resyncs == 0 || len(ops) >= 40 {
		t.Fatalf("got %d changes with %d resyncs; want fewer than 40 and a resync", len(ops), resyncs)
	}
	// After the resync, delivery continues normally.
	if err := s.PutDecision(ctx, mustDecision(t, "10.0.1.1", 0)); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-ch:
		if c.Op != store.OpPut || c.Decision.Value != "10.0.1.1" {
			t.Fatalf("next change = %+v", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no change after resync")
	}
}

func TestAuditCap(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), FileName)
	s, err := Open(ctx, path, Options{MaxAuditEntries: 10, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 25 {
		e := store.AuditEntry{Time: base.Add(time.Duration(i) * time.Second), Actor: "a", Action: "x", Target: fmt.Sprint(i)}
		if err := s.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	es, err := s.ListAudit(ctx, time.Time{}, 0)
	if err != nil || len(es) != 10 || es[0].Target != "15" || es[9].Target != "24" {
		t.Fatalf("audit = %d entries (first %+v), %v; want the newest 10", len(es), es[0], err)
	}
	s.Close()

	// A lower cap on reopen converges, a bounded number per append.
	s = openTest(t, path, Options{MaxAuditEntries: 3, NoSync: true})
	if err := s.AppendAudit(ctx, store.AuditEntry{Time: base.Add(time.Hour), Actor: "a", Action: "x", Target: "last"}); err != nil {
		t.Fatal(err)
	}
	es, err = s.ListAudit(ctx, time.Time{}, 0)
	if err != nil || len(es) != 3 || es[2].Target != "last" {
		t.Fatalf("audit after lowering the cap = %+v, %v", es, err)
	}
}

// rawKeys counts the records in a bucket.
func rawKeys(t *testing.T, s *Store, bucket []byte) int {
	t.Helper()
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucket).Stats().KeyN
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestJanitor(t *testing.T) {
	ctx := t.Context()
	s := openTest(t, filepath.Join(t.TempDir(), FileName), Options{
		JanitorInterval: 20 * time.Millisecond,
		JanitorBatch:    7, // several passes per tick
		NoSync:          true,
	})
	for i := range 30 {
		if err := s.Set(ctx, fmt.Sprint("short:", i), []byte("v"), 30*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Incr(ctx, fmt.Sprint("ctr:", i), 1, 50*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Set(ctx, "long", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "forever", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	// Re-setting without a TTL must drop the old index entry, or the
	// janitor would delete the key.
	if err := s.Set(ctx, "renewed", []byte("v"), 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "renewed", []byte("w"), 0); err != nil {
		t.Fatal(err)
	}

	deadline := time.Now().Add(5 * time.Second)
	for rawKeys(t, s, bucketKV) != 3 || rawKeys(t, s, bucketCounters) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("janitor left kv=%d counters=%d", rawKeys(t, s, bucketKV), rawKeys(t, s, bucketCounters))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := rawKeys(t, s, bucketExpiry); n != 1 {
		t.Fatalf("expiry index holds %d entries; want 1 (for \"long\")", n)
	}
	for _, k := range []string{"long", "forever", "renewed"} {
		if _, ok, err := s.Get(ctx, k); err != nil || !ok {
			t.Fatalf("Get(%q) = %v, %v; janitor deleted a live key", k, ok, err)
		}
	}
}

func TestCounterIndexFollowsWindows(t *testing.T) {
	ctx := t.Context()
	s := openTest(t, filepath.Join(t.TempDir(), FileName), Options{NoSync: true})
	const window = 20 * time.Millisecond
	for range 5 {
		if _, err := s.Incr(ctx, "c", 1, window); err != nil {
			t.Fatal(err)
		}
		time.Sleep(window)
	}
	if n := rawKeys(t, s, bucketExpiry); n != 1 {
		t.Fatalf("expiry index holds %d entries for one counter; want 1", n)
	}
}

func TestPurgeManyChunks(t *testing.T) {
	ctx := t.Context()
	s := openTest(t, filepath.Join(t.TempDir(), FileName), Options{NoSync: true})
	past := time.Now().Add(-time.Minute)
	const n = purgeChunk*2 + 17
	for i := range n {
		d := mustDecision(t, fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&0xff, i&0xff), 0)
		d.Expires = past
		if err := s.PutDecision(ctx, d); err != nil {
			t.Fatal(err)
		}
		if i%100 == 0 {
			if err := s.PutDecision(ctx, mustDecision(t, fmt.Sprintf("172.16.%d.%d", i>>8, i&0xff), 0)); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := s.PurgeExpiredDecisions(ctx, time.Now())
	if err != nil || got != n {
		t.Fatalf("PurgeExpiredDecisions = %d, %v; want %d", got, err, n)
	}
	if ds, err := s.ListDecisions(ctx); err != nil || len(ds) != (n+99)/100 {
		t.Fatalf("ListDecisions after purge = %d, %v", len(ds), err)
	}
}

func TestHealth(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), FileName)
	s := openTest(t, path, Options{NoSync: true})
	for i := range 10 {
		if err := s.Set(ctx, fmt.Sprint(i), []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	h := s.Health(ctx)
	if !h.OK || h.Backend != "embedded" || h.Keys != 10 || h.SizeBytes <= 0 {
		t.Fatalf("Health = %+v", h)
	}
	if st := s.Stats(); st.Writes < 10 || st.Commits < 1 || st.Commits > st.Writes {
		t.Fatalf("Stats = %+v", st)
	}
}

func TestOpenCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Open(ctx, filepath.Join(t.TempDir(), FileName), Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Open with canceled context: %v", err)
	}
}

func TestMaxDecisions(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), FileName)
	opts := Options{MaxDecisions: 3, NoSync: true}
	s, err := Open(ctx, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	put := func(s *Store, v string, expires time.Time) error {
		d := mustDecision(t, v, 0)
		d.Expires = expires
		return s.PutDecision(ctx, d)
	}
	past := time.Now().Add(-time.Minute)
	for _, v := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"} {
		if err := put(s, v, past); err != nil {
			t.Fatal(err)
		}
	}
	if err := put(s, "192.0.2.3", time.Time{}); err != nil {
		t.Fatalf("replacing at the limit: %v", err)
	}
	if err := put(s, "192.0.2.4", time.Time{}); !errors.Is(err, store.ErrFull) {
		t.Fatalf("fourth decision: err = %v; want ErrFull", err)
	}
	if _, err := s.DeleteDecision(ctx, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	if err := put(s, "192.0.2.4", time.Time{}); err != nil {
		t.Fatalf("after a delete: %v", err)
	}
	s.Close()

	s = openTest(t, path, opts) // the count survives a restart
	if err := put(s, "192.0.2.5", time.Time{}); !errors.Is(err, store.ErrFull) {
		t.Fatalf("after reopen: err = %v; want ErrFull", err)
	}
	if n, err := s.PurgeExpiredDecisions(ctx, time.Now()); err != nil || n != 1 {
		t.Fatalf("purge = %d, %v; want 1", n, err)
	}
	if err := put(s, "192.0.2.5", time.Time{}); err != nil {
		t.Fatalf("after purge: %v", err)
	}
}
