// Package storetest is the conformance suite every store.Store
// implementation must pass, so that roles behave the same on the embedded
// store and on Redis.
//
// An implementation's test calls Run with a function that opens a fresh,
// empty store for each subtest:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			s, err := Open(...)
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// Run closes stores itself in some subtests, so Close must be idempotent.
// Options tell Run what else the implementation can do (reopen a store
// over the same data, small capacities), enabling the tests that need it:
//
//	storetest.Run(t, open,
//		storetest.WithReopen(reopen),
//		storetest.WithQueueCapacity(1000),
//		storetest.WithHistoryKeys(20))
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/decision"
	"github.com/scrapedefense/scrapedefense/internal/store"
)

// Opener returns a fresh, empty store and arranges for it to be closed
// when t ends.
type Opener func(t *testing.T) store.Store

// Reopener closes s and returns a store over the same data, as a process
// restart would.
type Reopener func(t *testing.T, s store.Store) store.Store

// Option describes what the stores under test can do beyond the interface.
type Option func(*env)

// WithReopen enables the tests that restart a store (queue and history
// durability).
func WithReopen(r Reopener) Option { return func(e *env) { e.reopen = r } }

// WithQueueCapacity declares the per-queue capacity the opener configures,
// enabling the ErrFull tests. Other tests hold up to 1000 messages, so it
// must be at least that; keep it close.
func WithQueueCapacity(n int) Option { return func(e *env) { e.queueCapacity = n } }

// WithHistoryKeys declares the history key limit the opener configures,
// enabling the eviction tests. Keep it small (tens).
func WithHistoryKeys(n int) Option { return func(e *env) { e.historyKeys = n } }

// env is what a test gets beyond a fresh store.
type env struct {
	reopen        Reopener
	queueCapacity int
	historyKeys   int
}

// Run runs the conformance suite against stores made by open.
func Run(t *testing.T, open Opener, opts ...Option) {
	t.Helper()
	var e env
	for _, o := range opts {
		o(&e)
	}
	groups := []struct {
		name     string
		tests    []test
		envTests []envTest
	}{
		{"Decisions", decisionTests, nil},
		{"Watch", watchTests, nil},
		{"KV", kvTests, nil},
		{"Counters", counterTests, nil},
		{"Audit", auditTests, nil},
		{"Queue", queueTests, queueEnvTests},
		{"History", historyTests, historyEnvTests},
		{"Store", storeTests, nil},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) { tc.run(t, open(t)) })
			}
			for _, tc := range g.envTests {
				t.Run(tc.name, func(t *testing.T) { tc.run(t, open(t), e) })
			}
		})
	}
}

type test struct {
	name string
	run  func(t *testing.T, s store.Store)
}

// envTest is a test that needs more than a fresh store; it skips itself
// when the Option it needs was not given.
type envTest struct {
	name string
	run  func(t *testing.T, s store.Store, e env)
}

// waitTimeout bounds every wait for an asynchronous event.
const waitTimeout = 5 * time.Second

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newDecision builds a valid decision; ttl <= 0 never expires.
func newDecision(t *testing.T, value string, action decision.Action, ttl time.Duration) decision.Decision {
	t.Helper()
	d, err := decision.New(value, action, "conformance", "storetest", ttl, time.Now())
	if err != nil {
		t.Fatalf("decision.New(%q): %v", value, err)
	}
	return d
}

func mustPut(t *testing.T, s store.Store, d decision.Decision) {
	t.Helper()
	if err := s.PutDecision(testContext(t), d); err != nil {
		t.Fatalf("PutDecision(%s): %v", d.Value, err)
	}
}

// sameDecision compares decisions field by field, times by instant.
func sameDecision(a, b decision.Decision) bool {
	return a.Scope == b.Scope && a.Value == b.Value && a.Action == b.Action &&
		a.Reason == b.Reason && a.Source == b.Source &&
		a.Created.Equal(b.Created) && a.Expires.Equal(b.Expires)
}

func wantDecision(t *testing.T, s store.Store, key string, want decision.Decision) {
	t.Helper()
	got, ok, err := s.GetDecision(testContext(t), key)
	if err != nil || !ok {
		t.Fatalf("GetDecision(%q) = _, %v, %v; want found", key, ok, err)
	}
	if !sameDecision(got, want) {
		t.Fatalf("GetDecision(%q) = %+v; want %+v", key, got, want)
	}
}

func wantNoDecision(t *testing.T, s store.Store, key string) {
	t.Helper()
	got, ok, err := s.GetDecision(testContext(t), key)
	if err != nil || ok {
		t.Fatalf("GetDecision(%q) = %+v, %v, %v; want absent", key, got, ok, err)
	}
}

func listKeys(t *testing.T, s store.Store) []string {
	t.Helper()
	ds, err := s.ListDecisions(testContext(t))
	if err != nil {
		t.Fatalf("ListDecisions: %v", err)
	}
	keys := make([]string, len(ds))
	for i, d := range ds {
		keys[i] = d.Key()
	}
	slices.Sort(keys)
	return keys
}

var decisionTests = []test{
	{"PutGet", func(t *testing.T, s store.Store) {
		ip := newDecision(t, "192.0.2.1", decision.ActionBlock, time.Hour)
		cidr := newDecision(t, "2001:db8::/32", decision.ActionTarpit, 0)
		mustPut(t, s, ip)
		mustPut(t, s, cidr)
		wantDecision(t, s, ip.Key(), ip)
		wantDecision(t, s, cidr.Key(), cidr)
		wantNoDecision(t, s, "192.0.2.2")
		wantNoDecision(t, s, "192.0.2.0/24")
	}},
	{"KeyForms", func(t *testing.T, s store.Store) {
		d := newDecision(t, "192.0.2.7", decision.ActionChallenge, 0)
		mustPut(t, s, d)
		for _, k := range []string{"192.0.2.7", "192.0.2.7/32", " 192.0.2.7 ", "::ffff:192.0.2.7"} {
			wantDecision(t, s, k, d)
		}
		n := newDecision(t, "198.51.100.0/24", decision.ActionBlock, 0)
		mustPut(t, s, n)
		wantDecision(t, s, "198.51.100.99/24", n) // host bits are masked
	}},
	{"CanonicalValue", func(t *testing.T, s store.Store) {
		d := newDecision(t, "198.51.100.0/24", decision.ActionBlock, 0)
		d.Value = "198.51.100.77/24" // valid but not canonical
		mustPut(t, s, d)
		got, ok, err := s.GetDecision(testContext(t), "198.51.100.0/24")
		if err != nil || !ok || got.Value != "198.51.100.0/24" {
			t.Fatalf("GetDecision = %+v, %v, %v; want canonical value 198.51.100.0/24", got, ok, err)
		}
	}},
	{"Replace", func(t *testing.T, s store.Store) {
		first := newDecision(t, "203.0.113.5", decision.ActionChallenge, time.Hour)
		mustPut(t, s, first)
		second := newDecision(t, "203.0.113.5", decision.ActionBlock, 2*time.Hour)
		second.Reason = "escalated"
		mustPut(t, s, second)
		wantDecision(t, s, "203.0.113.5", second)
		if keys := listKeys(t, s); !slices.Equal(keys, []string{"203.0.113.5/32"}) {
			t.Fatalf("ListDecisions keys = %v; want one", keys)
		}
	}},
	{"Delete", func(t *testing.T, s store.Store) {
		ctx := testContext(t)
		d := newDecision(t, "203.0.113.0/28", decision.ActionBlock, 0)
		mustPut(t, s, d)
		ok, err := s.DeleteDecision(ctx, "203.0.113.0/28")
		if err != nil || !ok {
			t.Fatalf("DeleteDecision = %v, %v; want true", ok, err)
		}
		wantNoDecision(t, s, "203.0.113.0/28")
		ok, err = s.DeleteDecision(ctx, "203.0.113.0/28")
		if err != nil || ok {
			t.Fatalf("second DeleteDecision = %v, %v; want false", ok, err)
		}
		if keys := listKeys(t, s); len(keys) != 0 {
			t.Fatalf("ListDecisions after delete = %v", keys)
		}
	}},
	{"InvalidRejected", func(t *testing.T, s store.Store) {
		ctx := testContext(t)
		good := newDecision(t, "192.0.2.9", decision.ActionBlock, 0)
		bad := []struct {
			name string
			edit func(d *decision.Decision)
		}{
			{"no action", func(d *decision.Decision) { d.Action = decision.ActionNone }},
			{"bad value", func(d *decision.Decision) { d.Value = "not-an-ip" }},
			{"scope mismatch", func(d *decision.Decision) { d.Scope = decision.ScopeCIDR }},
			{"no source", func(d *decision.Decision) { d.Source = "" }},
			{"long reason", func(d *decision.Decision) { d.Reason = strings.Repeat("x", decision.MaxReasonLen+1) }},
		}
		for _, b := range bad {
			d := good
			b.edit(&d)
			if err := s.PutDecision(ctx, d); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("%s: PutDecision err = %v; want ErrInvalid", b.name, err)
			}
		}
		for _, k := range []string{"", "nope", "300.1.1.1", "10.0.0.0/99"} {
			if _, _, err := s.GetDecision(ctx, k); !errors.Is(err, store.ErrInvalidKey) {
				t.Errorf("GetDecision(%q) err = %v; want ErrInvalidKey", k, err)
			}
			if _, err := s.DeleteDecision(ctx, k); !errors.Is(err, store.ErrInvalidKey) {
				t.Errorf("DeleteDecision(%q) err = %v; want ErrInvalidKey", k, err)
			}
		}
		if keys := listKeys(t, s); len(keys) != 0 {
			t.Fatalf("invalid decisions were stored: %v", keys)
		}
	}},
	{"ListEmpty", func(t *testing.T, s store.Store) {
		ds, err := s.ListDecisions(testContext(t))
		if err != nil || len(ds) != 0 {
			t.Fatalf("ListDecisions on empty store = %v, %v", ds, err)
		}
	}},
	{"List", func(t *testing.T, s store.Store) {
		var want []string
		for i := range 50 {
			d := newDecision(t, fmt.Sprintf("10.0.%d.0/24", i), decision.ActionThrottle, time.Hour)
			mustPut(t, s, d)
			want = append(want, d.Key())
		}
		slices.Sort(want)
		if got := listKeys(t, s); !slices.Equal(got, want) {
			t.Fatalf("ListDecisions keys = %v; want %v", got, want)
		}
	}},
	{"ExpiredHidden", func(t *testing.T, s store.Store) {
		ctx := testContext(t)
		short := newDecision(t, "192.0.2.50", decision.ActionBlock, 80*time.Millisecond)
		long := newDecision(t, "192.0.2.51", decision.ActionBlock, time.Hour)
		past := newDecision(t, "192.0.2.52", decision.ActionBlock, 0)
		past.Expires = time.Now().Add(-time.Second)
		mustPut(t, s, short)
		mustPut(t, s, long)
		mustPut(t, s, past)
		wantNoDecision(t, s, "192.0.2.52")
		time.Sleep(time.Until(short.Expires) + 20*time.Millisecond)
		wantNoDecision(t, s, "192.0.2.50")
		if keys := listKeys(t, s); !slices.Equal(keys, []string{"192.0.2.51/32"}) {
			t.Fatalf("ListDecisions = %v; want only the live decision", keys)
		}
		if ok, err := s.DeleteDecision(ctx, "192.0.2.50"); err != nil || ok {
			t.Fatalf("DeleteDecision(expired) = %v, %v; want false", ok, err)
		}
	}},
	{"Purge", func(t *testing.T, s store.Store) {
		ctx := testContext(t)
		now := time.Now()
		for i := range 5 {
			d := newDecision(t, fmt.Sprintf("198.51.100.%d", i), decision.ActionBlock, 0)
			d.Expires = now.Add(-time.Minute)
			mustPut(t, s, d)
		}
		live := newDecision(t, "198.51.100.200", decision.ActionBlock, time.Hour)
		forever := newDecision(t, "198.51.100.201", decision.ActionBlock, 0)
		mustPut(t, s, live)
		mustPut(t, s, forever)
		n, err := s.PurgeExpiredDecisions(ctx, now)
		if err != nil || n != 5 {
			t.Fatalf("PurgeExpiredDecisions = %d, %v; want 5", n, err)
		}
		n, err = s.PurgeExpiredDecisions(ctx, now)
		if err != nil || n != 0 {
			t.Fatalf("second PurgeExpiredDecisions = %d, %v; want 0", n, err)
		}
		// A later clock expires the one-hour decision too.
		n, err = s.PurgeExpiredDecisions(ctx, now.Add(2*time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("PurgeExpiredDecisions(+2h) = %d, %v; want 1", n, err)
		}
		if keys := listKeys(t, s); !slices.Equal(keys, []string{"198.51.100.201/32"}) {
			t.Fatalf("ListDecisions after purge = %v", keys)
		}
	}},
}

// recv waits for the next change.
func recv(t *testing.T, ch <-chan store.Change) store.Change {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed early")
		}
		return c
	case <-time.After(waitTimeout):
		t.Fatal("no change delivered")
	}
	panic("unreachable")
}

func wantChange(t *testing.T, ch <-chan store.Change, op store.Op, value string) store.Change {
	t.Helper()
	c := recv(t, ch)
	if c.Op != op || c.Decision.Value != value {
		t.Fatalf("change = %v %q; want %v %q", c.Op, c.Decision.Value, op, value)
	}
	return c
}

func wantClosed(t *testing.T, ch <-chan store.Change) {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("watch channel not closed")
		}
	}
}

var watchTests = []test{
	{"PutDeleteInOrder", func(t *testing.T, s store.Store) {
		ctx := testContext(t)
		before := newDecision(t, "192.0.2.99", decision.ActionBlock, 0)
		mustPut(t, s, before) // made before the watch: not delivered
		ch, err := s.WatchDecisions(ctx)
		if err != nil {
			t.Fatalf("WatchDecisions: %v", err)
		}
		a := newDecision(t, "192.0.2.1", decision.ActionChallenge, time.Hour)
		b := newDecision(t, "10.1.0.0/16", decision.ActionBlock, 0)
		a2 := newDecision(t, "192.0.2.1", decision.ActionBlock, time.Hour)
		mustPut(t, s, a)
		mustPut(t, s, b)
		mustPut(t, s, a2)
		if _, err := s.DeleteDecision(ctx, "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DeleteDecision(ctx, "10.1.0.0/16"); err != nil {
			t.Fatal(err)
		}
		if c := wantChange(t, ch, store.OpPut, "192.0.2.1"); !sameDecision(c.Decision, a) {
			t.Fatalf("put change = %+v; want %+v", c.Decision, a)
		}
		if c := wantChange(t, ch, store.OpPut, "10.1.0.0/16"); !sameDecision(c.Decision, b) {
			t.Fatalf("put change = %+v; want %+v", c.Decision, b)
		}
		if c := wantChange(t, ch, store.OpPut, "192.0.2.1"); c.Decision.Action != decision.ActionBlock {
			t.Fatalf("replacement change has action %v", c.Decision.Action)
		}
		if c := wantChange(t, ch, store.OpDelete, "192.0.2.1"); c.Decision.Scope != decision.ScopeIP {
			t.Fatalf("delete change scope = %q", c.Decision.Scope)
		}
		if c := wantChange(t, ch, store.OpDelete, "10.1.0.0/16"); c.Decision.Scope != decision.ScopeCIDR {
			t.Fatalf("delete change scope = %q", c.Decision.Scope)
		}
	}},
	{"Purge", func(t *testing.T, s store.Store) {
		ctx := testContext(t)
		d := newDecision(t, "192.0.2.3", decision.ActionBlock, 0)
		d.Expires = time.Now().Add(-time.Second)
		mustPut(t, s, d)
		ch, err := s.WatchDecisions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := s.PurgeExpiredDecisions(ctx, time.Now()); err != nil || n != 1 {
			t.Fatalf("PurgeExpiredDecisions = %d, %v", n, err)
		}
		wantChange(t, ch, store.OpDelete, "192.0.2.3")
	}},
	{"ManyWatchers", func(t *testing.T, s store.Store) {
		ctx := testContext(t)
		var chans []<-chan store.Change
		for range 3 {
			ch, err := s.WatchDecisions(ctx)
			if err != nil {
				t.Fatal(err)
			}
			chans = append(chans, ch)
		}
		mustPut(t, s, newDecision(t, "192.0.2.4", decision.ActionBlock, 0))
		for _, ch := range chans {
			wantChange(t, ch, store.OpPut, "192.0.2.4")
		}
	}},
	{"EndsWithContext", func(t *testing.T, s store.Store) {
		ctx, cancel := context.WithCancel(testContext(t))
		ch, err := s.WatchDecisions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		wantClosed(t, ch)
		// The store keeps working for others.
		mustPut(t, s, newDecision(t, "192.0.2.5", decision.ActionBlock, 0))
	}},
	{"SlowWatcherConverges", func(t *testing.T, s store.Store) {
		// A watcher that does not read while many changes happen must, by
		// applying changes and reloading on OpResync, end with the stored
		// state; and it may only miss changes if it is told to resync.
		ctx := testContext(t)
		ch, err := s.WatchDecisions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		const writers, perWriter = 8, 400
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Go(func() {
				for i := range perWriter {
					v := fmt.Sprintf("10.%d.%d.0/24", w, i%100)
					var err error
					if i%5 == 4 {
						_, err = s.DeleteDecision(ctx, v)
					} else {
						d, _ := decision.New(v, decision.ActionBlock, fmt.Sprint(i), "storetest", 0, time.Now())
						err = s.PutDecision(ctx, d)
					}
					if err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		sentinel := newDecision(t, "203.0.113.255", decision.ActionAllow, 0)
		mustPut(t, s, sentinel)

		state := map[string]decision.Decision{}
		received, resyncs := 0, 0
		for {
			c := recv(t, ch)
			received++
			switch c.Op {
			case store.OpResync:
				resyncs++
				ds, err := s.ListDecisions(ctx)
				if err != nil {
					t.Fatal(err)
				}
				clear(state)
				for _, d := range ds {
					state[d.Key()] = d
				}
			case store.OpPut:
				state[c.Decision.Key()] = c.Decision
			case store.OpDelete:
				delete(state, c.Decision.Key())
			default:
				t.Fatalf("unexpected op %v", c.Op)
			}
			if c.Op == store.OpPut && c.Decision.Value == sentinel.Value {
				break
			}
		}
		if total := writers*perWriter + 1; resyncs == 0 && received != total {
			t.Fatalf("received %d changes without a resync; want all %d", received, total)
		}
		ds, err := s.ListDecisions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != len(state) {
			t.Fatalf("watcher state has %d decisions; store has %d (resyncs: %d)", len(state), len(ds), resyncs)
		}
		for _, d := range ds {
			if got, ok := state[d.Key()]; !ok || !sameDecision(got, d) {
				t.Fatalf("watcher state for %s = %+v, %v; store has %+v", d.Key(), got, ok, d)
			}
		}
		t.Logf("received %d changes, %d resyncs", received, resyncs)
	}},
}

// wantKV checks Get(key).
func wantKV(t *testing.T, s store.Store, key string, want []byte, found bool) {
	t.Helper()
	got, ok, err := s.Get(testContext(t), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if ok != found || (found && !bytes.Equal(got, want)) {
		t.Fatalf("Get(%q) = %q, %v; want %q, %v", key, got, ok, want, found)
	}
}

var kvTests = []test{
	{"Missing", func(t *testing.T, s store.Store) {
		wantKV(t, s, "absent", nil, false)
	}},
	{"SetGetOverwrite", func(t *testing.T, s store.Store) {
		ctx := testContext(t)
		if err := s.Set(ctx, "challenge:abc", []byte("one"), 0); err != nil {
			t.Fatal(err)
		}
		wantKV(t, s, "challenge:abc", []byte("one"), true)
		if err := s.Set(ctx, "challenge:abc", []byte("two"), 0); err != nil {
			t.Fatal(err)
		}
		wantKV(t, s, "challenge:abc", []byte("two"), true)
		if err := s.Set(ctx, "empty", nil, 0); err != nil {
			t.Fatal(err)
		}
		wantKV(t, s, "empty", []byte{}, true)
		bin := []byte{0, 1, 2, 0xff, 0}
		if err := s.Set(ctx, "bin\x00key", bin, 0); err != nil {
			t.Fatal(err)
		}
		wantKV(t, s, "bin\x00key", bin, true)
	}},
	{"Copies", func(t *testing.T, s store.Store) {
		ctx := testContext(t)
		v := []byte("value")
		if err := s.Set(ctx, "k", v, 0); err != nil {
			t.Fatal(err)
		}
		v[0] = 'X' // the store must have kept its own copy
		got, _, err := s.Get(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		got[0] = 'Y' // and must hand out copies
		wantKV(t, s, "k", []byte("value"), true)
	}},
	{"TTL", func(t *testing.T, s store.Store) {
		ctx := testContext(t)
		const ttl = 80 * time.Millisecond
		start := time.Now()
		if err := s.Set(ctx, "short", []byte("v"), ttl); err != nil {
			t.Fatal(err)
		}
		if err := s.Set(ctx, "forever", []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
		if err := s.Set(ctx, "negative", []byte("v"), -time.Second); err != nil {
			t.Fatal(err)
		}
		if err := s.Set(ctx, "renewed", []byte("v"), ttl); err != nil {
			t.Fatal(err)
		}
		if err := s.Set(ctx, "renewed", []byte("w"), 0); err != nil { // drops the TTL
			t.Fatal(err)
		}
		if time.Since(start) < ttl/2 {
			wantKV(t, s, "short", []byte("v"), true)
		}
		time.Sleep(ttl + 40*time.Millisecond)
		wantKV(t, s, "short", nil, false)
		wantKV(t, s, "forever", []byte("v"), true)
		wantKV(t, s, "negative", []byte("v"), true)
		wantKV(t, s, "renewed", []byte("w"), true)
	}},
	{"Delete", func(t *testing.T, s store.Store) {
		ctx := testContext(t)
		if err := s.Set(ctx, "k", []byte("v"), time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		wantKV(t, s, "k", nil, false)
		if err := s.Delete(ctx, "k"); err != nil {
			t.Fatalf("Delete(absent) = %v; want nil", err)
		}
	}},
	{"SetNX", func(t *testing.T, s store.Store) {
		ctx := testContext(t)
		setNX := func(key, v string, ttl time.Duration, want bool) {
			t.Helper()
			ok, err := s.SetNX(ctx, key, []byte(v), ttl)
			if err != nil || ok != want {
				t.Fatalf("SetNX(%q, %q) = %v, %v; want %v", key, v, ok, err, want)
			}
		}
		setNX("nonce:1", "a", 0, true)
		setNX("nonce:1", "b", 0, false)
		wantKV(t, s, "nonce:1", []byte("a"), true)

		const ttl = 60 * time.Millisecond
		start := time.Now()
		setNX("nonce:2", "a", ttl, true)
		if ok, err := s.SetNX(ctx, "nonce:2", []byte("b"), time.Hour); err != nil || (ok && time.Since(start) < ttl) {
			t.Fatalf("SetNX on a live key = %v, %v; want false", ok, err)
		} else if ok {
			t.Skip("machine too slow to test SetNX before a 60 ms TTL ends")
		}
		time.Sleep(time.Until(start.Add(ttl + 40*time.Millisecond)))
		setNX("nonce:2", "c", time.Hour, true) // expired counts as absent
		wantKV(t, s, "nonce:2", []byte("c"), true)

		if err := s.Delete(ctx, "nonce:1"); err != nil {
			t.Fatal(err)
		}
		setNX("nonce:1", "d", 0, true)
	}},
	{"SetNXOneWinner", func(t *testing.T, s store.Store) {
		ctx := testContext(t)
		const racers = 32
		for round := range 5 {
			key := fmt.Sprintf("spent:%d", round)
			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				winners []int
			)
			start := make(chan struct{})
			for i := range racers {
				wg.Go(func() {
					<-start
					ok, err := s.SetNX(ctx, key, []byte(fmt.Sprint(i)), time.Minute)
					if err != nil {
						t.Error(err)
						return
					}
					if ok {
						mu.Lock()
						winners = append(winners, i)
						mu.Unlock()
					}
				})
			}
			close(start)
			wg.Wait()
			if len(winners) != 1 {
				t.Fatalf("round %d: %d winners %v; want exactly 1", round, len(winners), winners)
			}
			wantKV(t, s, key, []byte(fmt.Sprint(winners[0])), true)
		}
	}},
	{"Limits", func(t *testing.T, s store.Store) {
		ctx := testContext(t)
		longKey := strings.Repeat("k", store.MaxKeyLen+1)
		maxKey := strings.Repeat("k", store.MaxKeyLen)
		big := make([]byte, store.MaxValueLen+1)
		for _, tc := range []struct {
			name string
			err  error
			want error
		}{
			{"Set empty key", s.Set(ctx, "", nil, 0), store.ErrInvalidKey},
			{"Set long key", s.Set(ctx, longKey, nil, 0), store.ErrInvalidKey},
			{"Set big value", s.Set(ctx, "k", big, 0), store.ErrValueTooLarge},
			{"SetNX big value", errOf(s.SetNX(ctx, "k", big, 0)), store.ErrValueTooLarge},
			{"SetNX long key", errOf(s.SetNX(ctx, longKey, nil, 0)), store.ErrInvalidKey},
			{"Get long key", errOf2(s.Get(ctx, longKey)), store.ErrInvalidKey},
			{"Delete empty key", s.Delete(ctx, ""), store.ErrInvalidKey},
			{"Set max key and value", s.Set(ctx, maxKey, big[:store.MaxValueLen], 0), nil},
		} {
			if !errors.Is(tc.err, tc.want) || (tc.want == nil && tc.err != nil) {
				t.Errorf("%s: err = %v; want %v", tc.name, tc.err, tc.want)
			}
		}
		wantKV(t, s, "k", nil, false)
		wantKV(t, s, maxKey, big[:store.MaxValueLen], true)
	}},
}

func errOf[T any](_ T, err error) error { return err }

func errOf2[T, U any](_ T, _ U, err error) error { return err }

// awayFromEdge waits, if needed, so that at least need remains before the
// current window of length window ends.
func awayFromEdge(window, need time.Duration) {
	now := time.Now()
	if left := store.WindowStart(now, window).Add(window).Sub(now); left < need {
		time.Sleep(left + time.Millisecond)
	}
}

func incr(t *testing.T, s store.Store, key string, delta int64, window time.Duration) int64 {
	t.Helper()
	v, err := s.Incr(testContext(t), key, delta, window)
	if err != nil {
		t.Fatalf("Incr(%q): %v", key, err)
	}
	return v
}

var counterTests = []test{
	{"Incr", func(t *testing.T, s store.Store) {
		awayFromEdge(time.Hour, 10*time.Second)
		steps := []struct {
			key   string
			delta int64
			want  int64
		}{
			{"hops:a", 1, 1},
			{"hops:a", 1, 2},
			{"hops:a", 5, 7},
			{"hops:a", -3, 4},
			{"hops:b", 2, 2},
			{"hops:a", 0, 4},
		}
		for _, st := range steps {
			if got := incr(t, s, st.key, st.delta, time.Hour); got != st.want {
				t.Fatalf("Incr(%q, %d) = %d; want %d", st.key, st.delta, got, st.want)
			}
		}
	}},
	{"Windows", func(t *testing.T, s store.Store) {
		const window = 150 * time.Millisecond
		awayFromEdge(window, 100*time.Millisecond)
		start := time.Now()
		incr(t, s, "ip:1", 1, window)
		got := incr(t, s, "ip:1", 1, window)
		if time.Since(start) < 100*time.Millisecond && got != 2 {
			t.Fatalf("second Incr in one window = %d; want 2", got)
		}
		awayFromEdge(window, window) // sleeps into the next window
		if got := incr(t, s, "ip:1", 1, window); got != 1 {
			t.Fatalf("Incr in a new window = %d; want 1", got)
		}
	}},
	{"InvalidArguments", func(t *testing.T, s store.Store) {
		ctx := testContext(t)
		if _, err := s.Incr(ctx, "k", 1, 0); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("Incr window 0: err = %v; want ErrInvalid", err)
		}
		if _, err := s.Incr(ctx, "k", 1, -time.Second); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("Incr negative window: err = %v; want ErrInvalid", err)
		}
		if _, err := s.Incr(ctx, "", 1, time.Second); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("Incr empty key: err = %v; want ErrInvalidKey", err)
		}
	}},
	{"Concurrent", func(t *testing.T, s store.Store) {
		awayFromEdge(time.Hour, 30*time.Second)
		ctx := testContext(t)
		const goroutines, each = 16, 40
		var wg sync.WaitGroup
		for range goroutines {
			wg.Go(func() {
				for range each {
					if _, err := s.Incr(ctx, "shared", 1, time.Hour); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		if got := incr(t, s, "shared", 0, time.Hour); got != goroutines*each {
			t.Fatalf("counter = %d; want %d", got, goroutines*each)
		}
	}},
}

var auditTests = []test{
	{"OrderAndFilter", func(t *testing.T, s store.Store) {
		ctx := testContext(t)
		base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
		// Appended out of time order: listed oldest first.
		for _, i := range []int{2, 0, 4, 1, 3} {
			e := store.AuditEntry{
				Time:   base.Add(time.Duration(i) * time.Minute),
				Actor:  "admin:alice",
				Action: "decision.put",
				Target: fmt.Sprintf("192.0.2.%d", i),
				Detail: "test",
			}
			if err := s.AppendAudit(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		targets := func(es []store.AuditEntry) []string {
			var out []string
			for _, e := range es {
				out = append(out, e.Target)
			}
			return out
		}
		for _, tc := range []struct {
			since time.Time
			limit int
			want  []string
		}{
			{time.Time{}, 0, []string{"192.0.2.0", "192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"}},
			{time.Time{}, 2, []string{"192.0.2.0", "192.0.2.1"}},
			{base.Add(2 * time.Minute), 0, []string{"192.0.2.2", "192.0.2.3", "192.0.2.4"}},
			{base.Add(2*time.Minute + time.Second), 1, []string{"192.0.2.3"}},
			{base.Add(time.Hour), 10, nil},
		} {
			got, err := s.ListAudit(ctx, tc.since, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(targets(got), tc.want) {
				t.Errorf("ListAudit(%v, %d) = %v; want %v", tc.since, tc.limit, targets(got), tc.want)
			}
		}
		got, err := s.ListAudit(ctx, base, 1)
		if err != nil || len(got) != 1 {
			t.Fatalf("ListAudit = %v, %v", got, err)
		}
		if e := got[0]; !e.Time.Equal(base) || e.Actor != "admin:alice" || e.Action != "decision.put" || e.Detail != "test" {
			t.Fatalf("entry = %+v; fields not kept", e)
		}
	}},
	{"ZeroTimeIsNow", func(t *testing.T, s store.Store) {
		ctx := testContext(t)
		before := time.Now().Add(-time.Second)
		if err := s.AppendAudit(ctx, store.AuditEntry{Actor: "cli", Action: "ops.backup"}); err != nil {
			t.Fatal(err)
		}
		got, err := s.ListAudit(ctx, before, 0)
		if err != nil || len(got) != 1 {
			t.Fatalf("ListAudit = %v, %v; want 1 entry", got, err)
		}
		if d := time.Since(got[0].Time); d < 0 || d > time.Minute {
			t.Fatalf("entry time %v is not now", got[0].Time)
		}
	}},
	{"Invalid", func(t *testing.T, s store.Store) {
		ctx := testContext(t)
		for _, e := range []store.AuditEntry{
			{Action: "x"},
			{Actor: "x"},
			{Actor: strings.Repeat("a", store.MaxAuditFieldLen+1), Action: "x"},
			{Actor: "a", Action: "x", Detail: strings.Repeat("d", store.MaxAuditDetailLen+1)},
		} {
			if err := s.AppendAudit(ctx, e); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("AppendAudit(%.40v) err = %v; want ErrInvalid", e, err)
			}
		}
	}},
}

var storeTests = []test{
	{"Health", func(t *testing.T, s store.Store) {
		mustPut(t, s, newDecision(t, "192.0.2.1", decision.ActionBlock, 0))
		h := s.Health(testContext(t))
		if h.Backend == "" || !h.OK {
			t.Fatalf("Health = %+v; want a backend name and OK", h)
		}
		if h.Keys < 0 || h.SizeBytes < 0 {
			t.Fatalf("Health = %+v; negative figures", h)
		}
	}},
	{"Closed", func(t *testing.T, s store.Store) {
		ctx := testContext(t)
		ch, err := s.WatchDecisions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		wantClosed(t, ch)
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		d := newDecision(t, "192.0.2.1", decision.ActionBlock, 0)
		for name, err := range map[string]error{
			"PutDecision":           s.PutDecision(ctx, d),
			"DeleteDecision":        errOf(s.DeleteDecision(ctx, "192.0.2.1")),
			"GetDecision":           errOf2(s.GetDecision(ctx, "192.0.2.1")),
			"ListDecisions":         errOf(s.ListDecisions(ctx)),
			"WatchDecisions":        errOf(s.WatchDecisions(ctx)),
			"PurgeExpiredDecisions": errOf(s.PurgeExpiredDecisions(ctx, time.Now())),
			"Get":                   errOf2(s.Get(ctx, "k")),
			"Set":                   s.Set(ctx, "k", nil, 0),
			"SetNX":                 errOf(s.SetNX(ctx, "k", nil, 0)),
			"Delete":                s.Delete(ctx, "k"),
			"Incr":                  errOf(s.Incr(ctx, "k", 1, time.Second)),
			"AppendAudit":           s.AppendAudit(ctx, store.AuditEntry{Actor: "a", Action: "b"}),
			"ListAudit":             errOf(s.ListAudit(ctx, time.Time{}, 1)),
			"Enqueue":               s.Enqueue(ctx, "q", []byte("m")),
			"Dequeue":               errOf(s.Dequeue(ctx, "q", 1, time.Second)),
			"Ack":                   s.Ack(ctx, "q", "1"),
			"QueueLen":              errOf(s.QueueLen(ctx, "q")),
			"AppendHistory":         s.AppendHistory(ctx, "k", []byte("r")),
			"ListHistory":           errOf(s.ListHistory(ctx, "k", 1)),
		} {
			if !errors.Is(err, store.ErrClosed) {
				t.Errorf("%s after Close: err = %v; want ErrClosed", name, err)
			}
		}
		if h := s.Health(ctx); h.OK {
			t.Errorf("Health after Close = %+v; want not OK", h)
		}
	}},
	{"CanceledContext", func(t *testing.T, s store.Store) {
		ctx, cancel := context.WithCancel(testContext(t))
		cancel()
		if err := s.Set(ctx, "k", []byte("v"), 0); !errors.Is(err, context.Canceled) {
			t.Errorf("Set with canceled context: err = %v", err)
		}
		if _, _, err := s.Get(ctx, "k"); !errors.Is(err, context.Canceled) {
			t.Errorf("Get with canceled context: err = %v", err)
		}
		if _, err := s.WatchDecisions(ctx); err == nil {
			t.Errorf("WatchDecisions with canceled context: no error")
		}
	}},
	{"ConcurrentMixed", func(t *testing.T, s store.Store) {
		ctx := testContext(t)
		ch, err := s.WatchDecisions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for range ch { // a reader that keeps up
			}
		}()
		const workers, rounds = 8, 30
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := range rounds {
					v := fmt.Sprintf("10.%d.%d.1", w, i%10)
					d, _ := decision.New(v, decision.ActionBlock, "mixed", "storetest", time.Minute, time.Now())
					check := func(op string, err error) bool {
						if err != nil {
							t.Errorf("worker %d %s: %v", w, op, err)
						}
						return err == nil
					}
					key := fmt.Sprintf("kv:%d:%d", w, i)
					ok := check("PutDecision", s.PutDecision(ctx, d)) &&
						check("GetDecision", errOf2(s.GetDecision(ctx, v))) &&
						check("Set", s.Set(ctx, key, []byte(key), time.Minute)) &&
						check("SetNX", errOf(s.SetNX(ctx, fmt.Sprintf("nx:%d", i), nil, time.Minute))) &&
						check("Incr", errOf(s.Incr(ctx, "mixed", 1, time.Hour))) &&
						check("AppendAudit", s.AppendAudit(ctx, store.AuditEntry{Actor: "w", Action: "mixed", Target: key})) &&
						check("ListDecisions", errOf(s.ListDecisions(ctx))) &&
						check("ListAudit", errOf(s.ListAudit(ctx, time.Time{}, 10)))
					if i%3 == 0 && ok {
						check("DeleteDecision", errOf(s.DeleteDecision(ctx, v)))
					}
					if got, ok, err := s.Get(ctx, key); err != nil || !ok || string(got) != key {
						t.Errorf("worker %d: Get(%q) = %q, %v, %v", w, key, got, ok, err)
					}
					if !ok {
						return
					}
				}
			})
		}
		wg.Wait()
		got, err := s.ListAudit(ctx, time.Time{}, 0)
		if err != nil || len(got) != workers*rounds {
			t.Fatalf("audit has %d entries, err %v; want %d", len(got), err, workers*rounds)
		}
	}},
}
