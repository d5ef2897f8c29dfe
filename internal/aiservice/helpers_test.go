package aiservice

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/events"
	"github.com/scrapedefense/scrapedefense/internal/store/embedded"
	"github.com/scrapedefense/scrapedefense/internal/telemetry"
)

var (
	testSecret = []byte("0123456789abcdef-test-secret")
	// testNow is the wall clock: the embedded store expires records by it.
	testNow = time.Now().UTC().Truncate(time.Second)
)

const testSender = "nginx-1"

// recorder is an Enqueuer that keeps what it gets, or fails with err.
type recorder struct {
	mu  sync.Mutex
	evs []events.Event
	err error
}

func (r *recorder) Enqueue(_ context.Context, evs []events.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.evs = append(r.evs, evs...)
	return nil
}

func (r *recorder) events() []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]events.Event(nil), r.evs...)
}

type fixedScorer struct{}

func (fixedScorer) Score(_ context.Context, ev events.Event) events.Verdict {
	return events.Verdict{Time: ev.Time, ClientIP: ev.ClientIP, Action: "block", Score: 0.93,
		Reasons: []events.Reason{{Stage: "heuristics", Signal: "source:" + ev.Source, Weight: 0.93}}}
}

type harness struct {
	svc   *Service
	h     http.Handler
	store *embedded.Store
	queue *recorder
	tel   *telemetry.Telemetry
	now   time.Time
}

func openStore(tb testing.TB) *embedded.Store {
	tb.Helper()
	st, err := embedded.Open(context.Background(), filepath.Join(tb.TempDir(), embedded.FileName), embedded.Options{NoSync: true})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	return st
}

func newHarness(tb testing.TB, mod func(*Options)) *harness {
	tb.Helper()
	hs := &harness{store: openStore(tb), queue: &recorder{}, tel: telemetry.New("ai_service", telemetry.BuildInfo{}), now: testNow}
	opts := Options{
		Senders:   map[string][]byte{testSender: testSecret, "vector": []byte("another-secret-of-enough-length")},
		Store:     hs.store,
		Enqueuer:  hs.queue,
		Scorer:    fixedScorer{},
		Telemetry: hs.tel,
		Now:       func() time.Time { return hs.now },
	}
	if mod != nil {
		mod(&opts)
	}
	svc, err := New(opts)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	hs.svc, hs.h = svc, svc.Handler()
	return hs
}

// signed builds a request signed now by testSender.
func (hs *harness) signed(path string, body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set(HeaderSender, testSender)
	r.Header.Set(HeaderSignature, Sign(testSecret, hs.now, body))
	return r
}

func (hs *harness) do(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	hs.h.ServeHTTP(w, r)
	return w
}

func errorCode(tb testing.TB, w *httptest.ResponseRecorder) Code {
	tb.Helper()
	var b errorBody
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
		tb.Fatalf("response %q is not an error body: %v", w.Body.String(), err)
	}
	return b.Error.Code
}

func (hs *harness) counter(tb testing.TB, name, label, value string) float64 {
	tb.Helper()
	mfs, err := hs.tel.Registry().Gather()
	if err != nil {
		tb.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// event returns a valid event JSON object with fields overridden by kv
// pairs (a nil value deletes the field).
func event(kv ...any) map[string]any {
	ev := map[string]any{
		"v":          1,
		"time":       testNow.Add(-time.Minute).Format(time.RFC3339Nano),
		"client_ip":  "203.0.113.7",
		"method":     "GET",
		"host":       "example.org",
		"path":       "/articles/1",
		"user_agent": "GPTBot/1.0",
		"headers":    map[string]any{"Accept": "text/html"},
	}
	for i := 0; i+1 < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == nil {
			delete(ev, k)
		} else {
			ev[k] = kv[i+1]
		}
	}
	return ev
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func eventsBody(tb testing.TB, evs ...map[string]any) []byte {
	tb.Helper()
	return mustJSON(tb, map[string]any{"v": 1, "type": "events", "events": evs})
}

func commandBody(tb testing.TB, cmd map[string]any) []byte {
	tb.Helper()
	return mustJSON(tb, map[string]any{"v": 1, "type": "command", "command": cmd})
}

func manyEvents(n int) []map[string]any {
	evs := make([]map[string]any, n)
	for i := range evs {
		evs[i] = event("path", fmt.Sprintf("/p/%d", i))
	}
	return evs
}
