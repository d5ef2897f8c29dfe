package challenge

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/scrapedefense/scrapedefense/internal/store"
	"github.com/scrapedefense/scrapedefense/internal/store/embedded"
)

const testUA = "Mozilla/5.0 (X11; Linux x86_64) TestBrowser/1.0"

// fakeClock is a settable clock shared by a test and its services.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// events records what a service reports.
type events struct {
	mu  sync.Mutex
	all []Event
}

func (e *events) add(ev Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
}

func (e *events) count(kind, reason string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.all {
		if ev.Kind == kind && (reason == "" || ev.Reason == reason) {
			n++
		}
	}
	return n
}

// testService bundles a service with what tests inspect.
type testService struct {
	*Service
	clock  *fakeClock
	events *events
}

func openStore(t testing.TB) store.KV {
	t.Helper()
	st, err := embedded.Open(context.Background(), filepath.Join(t.TempDir(), "store.db"), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func newTestService(t testing.TB, cfg Config, kv store.KV) *testService {
	t.Helper()
	if kv == nil {
		kv = openStore(t)
	}
	if cfg.MinDifficulty == 0 {
		cfg.MinDifficulty, cfg.MaxDifficulty = 8, 10
	}
	clock := newFakeClock()
	ev := &events{}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := newService(ctx, cfg, kv, prometheus.NewRegistry(), nil, ev.add, clock.Now)
	if err != nil {
		t.Fatalf("new service: %v", err)
	}
	return &testService{Service: s, clock: clock, events: ev}
}

func (s *testService) failures(m string, why reason) float64 {
	return testutil.ToFloat64(s.metrics.failed.WithLabelValues(m, string(why)))
}

func (s *testService) passes(m method) float64 {
	return testutil.ToFloat64(s.metrics.passed.WithLabelValues(m.String()))
}

var testClient = netip.MustParseAddr("192.0.2.10")

// browserRequest builds a navigation as a browser would send it.
func browserRequest(method, target string, body io.Reader) *http.Request {
	r := httptest.NewRequest(method, target, body)
	r.Header.Set("User-Agent", testUA)
	r.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	r.Header.Set("Sec-Fetch-Dest", "document")
	return r
}

// issued is a challenge served to a test client.
type issued struct {
	challenge, seed, difficulty, browserCookie string
	page                                       string
	status                                     int
}

// issue serves a challenge page for target at weight and extracts its
// sealed record, proof-of-work seed, difficulty and challenge cookie.
func (s *testService) issue(t testing.TB, target string, weight int) issued {
	t.Helper()
	w := httptest.NewRecorder()
	s.Serve(w, browserRequest(http.MethodGet, target, nil), testClient, weight)
	res := w.Result()
	body, _ := io.ReadAll(res.Body)
	out := issued{page: string(body), status: res.StatusCode}
	out.challenge = between(out.page, "nojs?challenge=", `"`)
	if i := strings.IndexByte(out.challenge, ';'); i >= 0 {
		out.challenge = out.challenge[:i]
	}
	out.seed = between(out.page, `data-seed="`, `"`)
	out.difficulty = between(out.page, `name="difficulty" value="`, `"`)
	for _, c := range res.Cookies() {
		if c.Name == s.challengeCookie {
			out.browserCookie = c.Value
		}
	}
	if !isRecordText(out.challenge) {
		t.Fatalf("no sealed challenge in page:\n%s", out.page)
	}
	if form := between(out.page, `name="challenge" value="`, `"`); form != "" && form != out.challenge {
		t.Fatalf("form and no-JS link carry different records: %q, %q", form, out.challenge)
	}
	return out
}

func between(s, start, end string) string {
	i := strings.Index(s, start)
	if i < 0 {
		return ""
	}
	s = s[i+len(start):]
	if j := strings.Index(s, end); j >= 0 {
		return s[:j]
	}
	return s
}

// solve finds a nonce with the given leading zero bits for a seed (hex),
// as the worker does.
func solve(t testing.TB, seed string, difficulty int) string {
	t.Helper()
	for n := uint64(0); n < 1<<28; n++ {
		nonce := strconv.FormatUint(n, 10)
		if workBits(seed, nonce) >= difficulty {
			return nonce
		}
	}
	t.Fatal("no solution found")
	return ""
}

// submit posts a solution to the verify endpoint.
func (s *testService) submit(t testing.TB, client netip.Addr, challenge, nonce, difficulty string) *http.Response {
	t.Helper()
	form := url.Values{"challenge": {challenge}, "nonce": {nonce}, "difficulty": {difficulty}}
	r := browserRequest(http.MethodPost, Prefix+"verify", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	s.ServeEndpoint(w, r, client)
	return w.Result()
}

func passCookie(t testing.TB, s *testService, res *http.Response) *http.Cookie {
	t.Helper()
	for _, c := range res.Cookies() {
		if c.Name == s.cfg.CookieName {
			return c
		}
	}
	return nil
}

// withPass returns a browser request carrying the pass value.
func withPass(s *testService, target, value string) *http.Request {
	r := browserRequest(http.MethodGet, target, nil)
	r.AddCookie(&http.Cookie{Name: s.cfg.CookieName, Value: value})
	return r
}

func writeFile(path, content string) error {
	return os.WriteFile(path, []byte(content), 0o600)
}
