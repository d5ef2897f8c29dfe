package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/scrapedefense/scrapedefense/internal/store"
)

func appendHistory(t *testing.T, s store.Store, key string, records ...string) {
	t.Helper()
	for _, r := range records {
		if err := s.AppendHistory(testContext(t), key, []byte(r)); err != nil {
			t.Fatalf("AppendHistory(%q, %q): %v", key, r, err)
		}
	}
}

func listHistory(t *testing.T, s store.Store, key string, limit int) []string {
	t.Helper()
	recs, err := s.ListHistory(testContext(t), key, limit)
	if err != nil {
		t.Fatalf("ListHistory(%q, %d): %v", key, limit, err)
	}
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = string(r)
	}
	return out
}

func reversed(s []string) []string {
	s = slices.Clone(s)
	slices.Reverse(s)
	return s
}

var historyTests = []test{
	{"NewestFirst", func(t *testing.T, s store.Store) {
		appendHistory(t, s, "client:192.0.2.1", "r0", "r1", "r2", "r3", "r4")
		for _, tc := range []struct {
			limit int
			want  []string
		}{
			{0, []string{"r4", "r3", "r2", "r1", "r0"}},
			{-1, []string{"r4", "r3", "r2", "r1", "r0"}},
			{2, []string{"r4", "r3"}},
			{5, []string{"r4", "r3", "r2", "r1", "r0"}},
			{store.MaxHistoryPerKey + 1, []string{"r4", "r3", "r2", "r1", "r0"}},
		} {
			if got := listHistory(t, s, "client:192.0.2.1", tc.limit); !slices.Equal(got, tc.want) {
				t.Errorf("ListHistory(limit %d) = %q; want %q", tc.limit, got, tc.want)
			}
		}
	}},
	{"UnknownKey", func(t *testing.T, s store.Store) {
		if got := listHistory(t, s, "nobody", 0); len(got) != 0 {
			t.Fatalf("ListHistory(unknown) = %q; want empty", got)
		}
	}},
	{"BoundedPerKey", func(t *testing.T, s store.Store) {
		all := seqPayloads("r", 0, store.MaxHistoryPerKey+25)
		appendHistory(t, s, "busy", all...)
		want := reversed(all[25:])
		if got := listHistory(t, s, "busy", 0); !slices.Equal(got, want) {
			t.Fatalf("ListHistory = %d records, newest %q, oldest %q; want the newest %d", len(got), first(got), last(got), store.MaxHistoryPerKey)
		}
	}},
	{"KeysIndependent", func(t *testing.T, s store.Store) {
		// Keys that are prefixes of each other must not see each other's records.
		keys := []string{"a", "ab", "a\x00", "b", "a\xff", "abc"}
		for round := range 3 {
			for _, k := range keys {
				appendHistory(t, s, k, fmt.Sprintf("%q-%d", k, round))
			}
		}
		for _, k := range keys {
			want := []string{fmt.Sprintf("%q-2", k), fmt.Sprintf("%q-1", k), fmt.Sprintf("%q-0", k)}
			if got := listHistory(t, s, k, 0); !slices.Equal(got, want) {
				t.Errorf("ListHistory(%q) = %q; want %q", k, got, want)
			}
		}
	}},
	{"RecordsAreCopies", func(t *testing.T, s store.Store) {
		ctx := testContext(t)
		rec := []byte("verdict")
		if err := s.AppendHistory(ctx, "k", rec); err != nil {
			t.Fatal(err)
		}
		if err := s.AppendHistory(ctx, "k", nil); err != nil {
			t.Fatalf("AppendHistory(empty record): %v", err)
		}
		copy(rec, "changed")
		got, err := s.ListHistory(ctx, "k", 0)
		if err != nil || len(got) != 2 || len(got[0]) != 0 || string(got[1]) != "verdict" {
			t.Fatalf("ListHistory = %q, %v; want [\"\" verdict]", got, err)
		}
		got[1][0] = 'X'
		if again := listHistory(t, s, "k", 0); again[1] != "verdict" {
			t.Fatalf("changing a returned record changed the store: %q", again)
		}
	}},
	{"Validation", func(t *testing.T, s store.Store) {
		ctx := testContext(t)
		for _, k := range []string{"", strings.Repeat("k", store.MaxKeyLen+1)} {
			if err := s.AppendHistory(ctx, k, []byte("r")); !errors.Is(err, store.ErrInvalidKey) {
				t.Errorf("AppendHistory(key of %d bytes) err = %v; want ErrInvalidKey", len(k), err)
			}
			if _, err := s.ListHistory(ctx, k, 0); !errors.Is(err, store.ErrInvalidKey) {
				t.Errorf("ListHistory(key of %d bytes) err = %v; want ErrInvalidKey", len(k), err)
			}
		}
		if err := s.AppendHistory(ctx, "k", make([]byte, store.MaxHistoryRecordLen+1)); !errors.Is(err, store.ErrValueTooLarge) {
			t.Errorf("AppendHistory(oversized record) err = %v; want ErrValueTooLarge", err)
		}
		if err := s.AppendHistory(ctx, strings.Repeat("k", store.MaxKeyLen), make([]byte, store.MaxHistoryRecordLen)); err != nil {
			t.Errorf("AppendHistory at both limits: %v", err)
		}
		if got := listHistory(t, s, "k", 0); len(got) != 0 {
			t.Errorf("rejected records were stored: %q", got)
		}
	}},
	{"ConcurrentAppends", func(t *testing.T, s store.Store) {
		const writers, each = 6, 30
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					if err := s.AppendHistory(testContext(t), "shared", fmt.Appendf(nil, "w%d-%03d", w, i)); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		got := listHistory(t, s, "shared", 0)
		if len(got) != store.MaxHistoryPerKey {
			t.Fatalf("ListHistory = %d records; want %d", len(got), store.MaxHistoryPerKey)
		}
		// Newest first holds per writer too.
		lastSeen := map[byte]string{}
		for _, r := range got {
			if prev, ok := lastSeen[r[1]]; ok && r >= prev {
				t.Fatalf("records of one writer out of order: %q after %q", r, prev)
			}
			lastSeen[r[1]] = r
		}
	}},
}

var historyEnvTests = []envTest{
	{"EvictsLeastRecentlyAppended", func(t *testing.T, s store.Store, e env) {
		if e.historyKeys == 0 {
			t.Skip("WithHistoryKeys not given")
		}
		key := func(i int) string { return fmt.Sprintf("client:%d", i) }
		for i := range e.historyKeys {
			appendHistory(t, s, key(i), "old")
		}
		appendHistory(t, s, key(0), "refreshed") // key 0 is now the most recent
		appendHistory(t, s, key(e.historyKeys), "new")
		appendHistory(t, s, key(e.historyKeys+1), "new")
		for _, i := range []int{1, 2} {
			if got := listHistory(t, s, key(i), 0); len(got) != 0 {
				t.Errorf("%s = %q; want evicted", key(i), got)
			}
		}
		if got := listHistory(t, s, key(0), 0); !slices.Equal(got, []string{"refreshed", "old"}) {
			t.Errorf("%s = %q; want kept, it was appended to recently", key(0), got)
		}
		for _, i := range []int{3, e.historyKeys - 1, e.historyKeys, e.historyKeys + 1} {
			if got := listHistory(t, s, key(i), 0); len(got) != 1 {
				t.Errorf("%s = %q; want kept", key(i), got)
			}
		}
		// An evicted key starts afresh.
		appendHistory(t, s, key(1), "back")
		if got := listHistory(t, s, key(1), 0); !slices.Equal(got, []string{"back"}) {
			t.Errorf("%s after eviction = %q; want [back]", key(1), got)
		}
	}},
	{"SurvivesReopen", func(t *testing.T, s store.Store, e env) {
		if e.reopen == nil {
			t.Skip("WithReopen not given")
		}
		appendHistory(t, s, "k", "r0", "r1")
		s = e.reopen(t, s)
		appendHistory(t, s, "k", "r2")
		if got := listHistory(t, s, "k", 0); !slices.Equal(got, []string{"r2", "r1", "r0"}) {
			t.Fatalf("after reopen ListHistory = %q", got)
		}
	}},
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func last(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}
