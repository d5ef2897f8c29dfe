package challenge

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/scrapedefense/scrapedefense/internal/store"
)

// noJSGet follows a no-JS link with the given challenge cookie.
func (s *testService) noJSGet(t testing.TB, client netip.Addr, id, cookie string) *http.Response {
	t.Helper()
	r := browserRequest(http.MethodGet, Prefix+"nojs?challenge="+id, nil)
	if cookie != "" {
		r.AddCookie(&http.Cookie{Name: s.challengeCookie, Value: cookie})
	}
	w := httptest.NewRecorder()
	s.ServeEndpoint(w, r, client)
	return w.Result()
}

func TestChallengePageHeadersAndMarkup(t *testing.T) {
	s := newTestService(t, Config{}, nil)
	for _, weight := range []int{0, 30} {
		w := httptest.NewRecorder()
		r := browserRequest(http.MethodGet, "/docs?a=1", nil)
		r.Header.Set("Accept-Language", "de-DE,de;q=0.9")
		s.Serve(w, r, testClient, weight)
		res := w.Result()
		body, _ := io.ReadAll(res.Body)
		page := string(body)
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("weight %d: status %d", weight, res.StatusCode)
		}
		for h, want := range map[string]string{
			"Content-Security-Policy": contentSecurityPolicy,
			"Cache-Control":           "no-store",
			"Content-Type":            "text/html; charset=utf-8",
			"Content-Language":        "de",
			"X-Content-Type-Options":  "nosniff",
		} {
			if got := res.Header.Get(h); got != want {
				t.Errorf("weight %d: %s = %q, want %q", weight, h, got, want)
			}
		}
		if !strings.Contains(page, `<html lang="de">`) {
			t.Errorf("weight %d: page not in German", weight)
		}
		// Strict CSP: no inline script, style or event handler.
		for _, re := range []string{`<script(?:\s[^>]*)?>[^<]`, `<script>`, `<style`, `\sstyle=`, `\son[a-z]+=`, `https?://`} {
			if regexp.MustCompile(re).MatchString(page) {
				t.Errorf("weight %d: page matches %s", weight, re)
			}
		}
		if !strings.Contains(page, `http-equiv="refresh"`) {
			t.Errorf("weight %d: no meta refresh", weight)
		}
		if weight > 0 {
			for _, want := range []string{`<noscript><meta http-equiv="refresh"`, `<label for="sd-progress">`, `aria-live="polite"`, `role="status"`, `src="` + Prefix + `assets/challenge.js?v=`} {
				if !strings.Contains(page, want) {
					t.Errorf("proof-of-work page lacks %s", want)
				}
			}
		}
	}
}

func TestPoWFlow(t *testing.T) {
	s := newTestService(t, Config{}, nil)
	ch := s.issue(t, "/articles/1?page=2", 40)
	if ch.difficulty != "10" {
		t.Fatalf("difficulty %q, want 10 (max)", ch.difficulty)
	}
	if ch.browserCookie == "" {
		t.Fatal("no challenge cookie set")
	}
	diff, _ := strconv.Atoi(ch.difficulty)
	nonce := solve(t, ch.seed, diff)

	s.clock.Advance(1500 * time.Millisecond)
	res := s.submit(t, testClient, ch.challenge, nonce, ch.difficulty)
	if res.StatusCode != http.StatusSeeOther {
		body, _ := io.ReadAll(res.Body)
		t.Fatalf("verify: status %d\n%s", res.StatusCode, body)
	}
	if loc := res.Header.Get("Location"); loc != "/articles/1?page=2" {
		t.Errorf("redirect to %q", loc)
	}
	pass := passCookie(t, s, res)
	if pass == nil {
		t.Fatal("no pass cookie")
	}
	if !s.CheckPass(withPass(s, "/other", pass.Value), testClient) {
		t.Error("fresh pass refused")
	}
	if got := s.passes(methodPoW); got != 1 {
		t.Errorf("passed{pow} = %v", got)
	}
	if got := testutil.CollectAndCount(s.metrics.solve); got != 1 {
		t.Errorf("solve histogram series = %d", got)
	}
	if s.events.count(EventIssued, "") != 1 || s.events.count(EventPassed, "") != 1 {
		t.Errorf("events: %+v", s.events.all)
	}
	for _, ev := range s.events.all {
		if ev.Kind == EventPassed && (ev.SolveTime < 1500*time.Millisecond || ev.SolveTime > 1501*time.Millisecond) {
			t.Errorf("solve time %v", ev.SolveTime)
		}
	}

	// The same solution again is a replay.
	res = s.submit(t, testClient, ch.challenge, nonce, ch.difficulty)
	if res.StatusCode != http.StatusForbidden || passCookie(t, s, res) != nil {
		t.Errorf("replay: status %d", res.StatusCode)
	}
	if got := s.failures("pow", reasonReplayed); got != 1 {
		t.Errorf("replayed failures = %v", got)
	}
}

func TestVerifyRejections(t *testing.T) {
	s := newTestService(t, Config{}, nil)
	pow := s.issue(t, "/", 40)
	nonce := solve(t, pow.seed, 10)
	bad := "0"
	for workBits(pow.seed, bad) >= 10 {
		bad += "1"
	}
	nojs := s.issue(t, "/", 0)
	// Another character in the middle changes the id: the seal no longer
	// matches.
	mid := len(pow.challenge) / 2
	flip := byte('A')
	if pow.challenge[mid] == 'A' {
		flip = 'B'
	}
	tampered := pow.challenge[:mid] + string(flip) + pow.challenge[mid+1:]
	foreign := resealWithNewKey(t, s, pow.challenge)

	tests := []struct {
		name                         string
		client                       string
		challenge, nonce, difficulty string
		want                         reason
	}{
		{"insufficient work", "", pow.challenge, bad, "10", reasonInsufficientWork},
		{"wrong difficulty", "", pow.challenge, nonce, "9", reasonWrongDifficulty},
		{"non-numeric nonce", "", pow.challenge, "12ab", "10", reasonBadNonce},
		{"tampered record", "", tampered, nonce, "10", reasonTampered},
		{"unknown key", "", foreign, nonce, "10", reasonUnknownKey},
		{"truncated record", "", pow.challenge[:minSealedEncodedLen-1], nonce, "10", reasonBadForm},
		{"record not base64", "", strings.Repeat("*", minSealedEncodedLen), nonce, "10", reasonBadForm},
		{"record not canonical", "", pow.challenge[:len(pow.challenge)-1] + "_", nonce, "10", reasonBadForm},
		{"foreign prefix", "203.0.113.5", pow.challenge, nonce, "10", reasonForeignPrefix},
		{"no-JS challenge", "", nojs.challenge, nonce, "10", reasonWrongMethod},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := testClient
			if tt.client != "" {
				client = netip.MustParseAddr(tt.client)
			}
			before := s.failures("pow", tt.want)
			res := s.submit(t, client, tt.challenge, tt.nonce, tt.difficulty)
			if res.StatusCode != http.StatusForbidden || passCookie(t, s, res) != nil {
				t.Errorf("status %d", res.StatusCode)
			}
			if got := s.failures("pow", tt.want) - before; got != 1 {
				t.Errorf("failures{%s} grew by %v", tt.want, got)
			}
		})
	}

	t.Run("wrong ua", func(t *testing.T) {
		r := browserRequest(http.MethodPost, Prefix+"verify", strings.NewReader("challenge="+pow.challenge+"&nonce="+nonce+"&difficulty=10"))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("User-Agent", "python-requests/2.31")
		w := httptest.NewRecorder()
		s.ServeEndpoint(w, r, testClient)
		if w.Code != http.StatusForbidden || s.failures("pow", reasonWrongUA) != 1 {
			t.Errorf("status %d, failures %v", w.Code, s.failures("pow", reasonWrongUA))
		}
	})
	t.Run("not a form", func(t *testing.T) {
		before := s.failures("pow", reasonBadForm)
		r := browserRequest(http.MethodPost, Prefix+"verify", strings.NewReader(`{"id":1}`))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		s.ServeEndpoint(w, r, testClient)
		if w.Code != http.StatusForbidden || s.failures("pow", reasonBadForm) != before+1 {
			t.Errorf("status %d", w.Code)
		}
	})
	t.Run("oversized body", func(t *testing.T) {
		r := browserRequest(http.MethodPost, Prefix+"verify", strings.NewReader(strings.Repeat("a", 1<<20)))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		s.ServeEndpoint(w, r, testClient)
		if w.Code != http.StatusForbidden {
			t.Errorf("status %d", w.Code)
		}
	})
	t.Run("get verify", func(t *testing.T) {
		w := httptest.NewRecorder()
		s.ServeEndpoint(w, browserRequest(http.MethodGet, Prefix+"verify", nil), testClient)
		if w.Code != http.StatusMethodNotAllowed {
			t.Errorf("status %d", w.Code)
		}
	})

	// After every failed attempt the right solution still works.
	if res := s.submit(t, testClient, pow.challenge, nonce, "10"); res.StatusCode != http.StatusSeeOther {
		t.Errorf("good solution after failures: %d", res.StatusCode)
	}
}

func TestNoJSFlow(t *testing.T) {
	s := newTestService(t, Config{}, nil)
	ch := s.issue(t, "/blog/post", 0)
	if !strings.Contains(ch.page, `<meta http-equiv="refresh" content="1;url=`+Prefix+`nojs?challenge=`+ch.challenge+`">`) {
		t.Fatalf("no meta refresh in page:\n%s", ch.page)
	}

	// An HTTP library that keeps no cookies fails.
	res := s.noJSGet(t, testClient, ch.challenge, "")
	if res.StatusCode != http.StatusForbidden || s.failures("nojs", reasonNoCookie) != 1 {
		t.Fatalf("without cookie: %d", res.StatusCode)
	}
	// Too soon: refused with a page that retries after the rest of the wait.
	res = s.noJSGet(t, testClient, ch.challenge, ch.browserCookie)
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusForbidden || s.failures("nojs", reasonTooFast) != 1 {
		t.Fatalf("too fast: %d", res.StatusCode)
	}
	if !strings.Contains(string(body), `http-equiv="refresh" content="1;url=`+Prefix+`nojs?challenge=`+ch.challenge) {
		t.Errorf("too-fast page does not retry:\n%s", body)
	}

	s.clock.Advance(time.Second)
	res = s.noJSGet(t, testClient, ch.challenge, ch.browserCookie)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/blog/post" {
		t.Fatalf("after wait: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	pass := passCookie(t, s, res)
	if pass == nil || !s.CheckPass(withPass(s, "/", pass.Value), testClient) {
		t.Fatal("no usable pass")
	}
	if got := s.passes(methodNoJS); got != 1 {
		t.Errorf("passed{nojs} = %v", got)
	}
	res = s.noJSGet(t, testClient, ch.challenge, ch.browserCookie)
	if res.StatusCode != http.StatusForbidden || s.failures("nojs", reasonReplayed) != 1 {
		t.Errorf("replay: %d", res.StatusCode)
	}
	// A bad id is a clear rejection.
	res = s.noJSGet(t, testClient, "../../etc", ch.browserCookie)
	if res.StatusCode != http.StatusForbidden || s.failures("nojs", reasonBadForm) != 1 {
		t.Errorf("bad id: %d", res.StatusCode)
	}
}

func TestFallbackFlow(t *testing.T) {
	s := newTestService(t, Config{NoJSFallbackWait: 3 * time.Second}, nil)
	ch := s.issue(t, "/x", 40)
	if !strings.Contains(ch.page, `<noscript><meta http-equiv="refresh" content="3;url=`) {
		t.Fatalf("no noscript refresh:\n%s", ch.page)
	}
	s.clock.Advance(time.Second)
	if res := s.noJSGet(t, testClient, ch.challenge, ch.browserCookie); res.StatusCode != http.StatusForbidden {
		t.Fatalf("fallback after 1 s of 3: %d", res.StatusCode)
	}
	if got := s.failures("fallback", reasonTooFast); got != 1 {
		t.Errorf("too_fast{fallback} = %v", got)
	}
	s.clock.Advance(2 * time.Second)
	res := s.noJSGet(t, testClient, ch.challenge, ch.browserCookie)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("fallback after wait: %d", res.StatusCode)
	}
	if got := s.passes(methodFallback); got != 1 {
		t.Errorf("passed{fallback} = %v", got)
	}
}

func TestServeSubresourceLeavesCookiesAlone(t *testing.T) {
	s := newTestService(t, Config{}, nil)
	r := httptest.NewRequest(http.MethodGet, "/img/logo.png", nil)
	r.Header.Set("Sec-Fetch-Dest", "image")
	r.Header.Set("Accept", "image/avif,image/webp,*/*")
	w := httptest.NewRecorder()
	s.Serve(w, r, testClient, 40)
	res := w.Result()
	if res.StatusCode != http.StatusForbidden || len(res.Cookies()) != 0 || res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("status %d cookies %v", res.StatusCode, res.Cookies())
	}
	if got := testutil.ToFloat64(s.metrics.issued.WithLabelValues("pow")); got != 0 {
		t.Errorf("subresource counted as issued: %v", got)
	}
}

func TestServeReusesBrowserCookieAndSanitisesReturn(t *testing.T) {
	s := newTestService(t, Config{}, nil)
	first := s.issue(t, "/", 0)
	r := browserRequest(http.MethodGet, "/", nil)
	r.RequestURI = "//evil.com/x"
	r.URL.Path = "//evil.com/x"
	r.AddCookie(&http.Cookie{Name: s.challengeCookie, Value: first.browserCookie})
	w := httptest.NewRecorder()
	s.Serve(w, r, testClient, 0)
	if len(w.Result().Cookies()) != 0 {
		t.Error("challenge cookie replaced although valid")
	}
	id := between(w.Body.String(), "nojs?challenge=", `"`)
	s.clock.Advance(time.Second)
	res := s.noJSGet(t, testClient, id, first.browserCookie)
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || loc != "/" {
		t.Errorf("open redirect: %d %q", res.StatusCode, loc)
	}
}

func TestServeHead(t *testing.T) {
	s := newTestService(t, Config{StatusCode: http.StatusTooManyRequests}, nil)
	w := httptest.NewRecorder()
	s.Serve(w, browserRequest(http.MethodHead, "/", nil), testClient, 40)
	if w.Code != http.StatusTooManyRequests || w.Body.Len() != 0 {
		t.Errorf("HEAD: %d, %d bytes", w.Code, w.Body.Len())
	}
}

func TestAssets(t *testing.T) {
	s := newTestService(t, Config{}, nil)
	h := s.Handler()
	for url, ctype := range map[string]string{
		s.pages.scriptURL: "text/javascript; charset=utf-8",
		s.pages.workerURL: "text/javascript; charset=utf-8",
		s.pages.cssURL:    "text/css; charset=utf-8",
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, url, nil))
		if w.Code != http.StatusOK || w.Header().Get("Content-Type") != ctype || w.Body.Len() == 0 {
			t.Errorf("%s: %d %q", url, w.Code, w.Header().Get("Content-Type"))
		}
		if !strings.Contains(w.Header().Get("Cache-Control"), "immutable") {
			t.Errorf("%s: versioned asset not cacheable", url)
		}
	}
	for _, url := range []string{Prefix + "assets/nope.js", Prefix + "assets/../page.go", Prefix + "other", "/elsewhere"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, url, nil))
		if w.Code != http.StatusNotFound {
			t.Errorf("%s: %d", url, w.Code)
		}
	}
}

func TestHandlerClientFromContext(t *testing.T) {
	s := newTestService(t, Config{}, nil)
	ch := s.issue(t, "/", 40)
	nonce := solve(t, ch.seed, 10)
	body := "challenge=" + ch.challenge + "&nonce=" + nonce + "&difficulty=10"

	// The peer address is a proxy in another network; the context carries
	// the client the edge resolved.
	r := browserRequest(http.MethodPost, Prefix+"verify", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.RemoteAddr = "10.9.9.9:1234"
	r = r.WithContext(ContextWithClient(r.Context(), testClient))
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, r)
	if w.Code != http.StatusSeeOther {
		t.Errorf("status %d", w.Code)
	}
}

// TestTwoServicesOneStore is two edge instances over one store: each
// accepts the other's passes, and a solution accepted by one is a replay
// on the other.
func TestTwoServicesOneStore(t *testing.T) {
	kv := openStore(t)
	a := newTestService(t, Config{}, kv)
	b := newTestService(t, Config{}, kv)
	if a.keys.Load().signer().id != b.keys.Load().signer().id {
		t.Fatal("instances generated different keys")
	}

	ch := a.issue(t, "/shared", 40)
	nonce := solve(t, ch.seed, 10)
	res := a.submit(t, testClient, ch.challenge, nonce, ch.difficulty)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("a: %d", res.StatusCode)
	}
	res = b.submit(t, testClient, ch.challenge, nonce, ch.difficulty)
	if res.StatusCode != http.StatusForbidden || b.failures("pow", reasonReplayed) != 1 {
		t.Fatalf("b accepted a replay: %d", res.StatusCode)
	}
	passA := passCookie(t, a, a.submitFresh(t))
	if !b.CheckPass(withPass(b, "/", passA.Value), testClient) {
		t.Error("b refuses a's pass")
	}

	// A challenge issued by b can be solved at a, once.
	ch = b.issue(t, "/other", 40)
	nonce = solve(t, ch.seed, 10)
	res = a.submit(t, testClient, ch.challenge, nonce, ch.difficulty)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("a refuses b's challenge: %d", res.StatusCode)
	}
	passFromA := passCookie(t, a, res)
	if !b.CheckPass(withPass(b, "/", passFromA.Value), testClient) {
		t.Error("b refuses a pass issued by a")
	}
	if res := b.submit(t, testClient, ch.challenge, nonce, ch.difficulty); res.StatusCode != http.StatusForbidden {
		t.Errorf("b accepted its own challenge twice: %d", res.StatusCode)
	}

	// Concurrent submissions of one solution: exactly one wins.
	ch = a.issue(t, "/race", 40)
	nonce = solve(t, ch.seed, 10)
	results := make(chan int, 8)
	for i := range 8 {
		srv := a
		if i%2 == 1 {
			srv = b
		}
		go func() { results <- srv.submit(t, testClient, ch.challenge, nonce, ch.difficulty).StatusCode }()
	}
	won := 0
	for range 8 {
		if <-results == http.StatusSeeOther {
			won++
		}
	}
	if won != 1 {
		t.Errorf("%d of 8 concurrent submissions passed, want 1", won)
	}
}

// submitFresh issues and solves a new challenge and returns the response.
func (s *testService) submitFresh(t testing.TB) *http.Response {
	t.Helper()
	ch := s.issue(t, "/", 40)
	d, _ := strconv.Atoi(ch.difficulty)
	return s.submit(t, testClient, ch.challenge, solve(t, ch.seed, d), ch.difficulty)
}

// TestStoreFailure: issuing never touches the store, so it works while the
// store is down; a solution then is reported as unavailable, never a pass,
// and still counts once the store is back.
func TestStoreFailure(t *testing.T) {
	kv := &failingKV{KV: openStore(t)}
	s := newTestService(t, Config{}, kv)
	kv.fail = true
	for _, weight := range []int{0, 40} {
		w := httptest.NewRecorder()
		s.Serve(w, browserRequest(http.MethodGet, "/", nil), testClient, weight)
		if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "challenge=") {
			t.Errorf("weight %d: serve with failing store: %d", weight, w.Code)
		}
	}
	ch := s.issue(t, "/after", 40)
	nonce := solve(t, ch.seed, 10)
	res := s.submit(t, testClient, ch.challenge, nonce, ch.difficulty)
	if res.StatusCode != http.StatusServiceUnavailable || passCookie(t, s, res) != nil {
		t.Errorf("verify with failing store: %d", res.StatusCode)
	}
	if got := s.failures("pow", reasonStoreError); got != 1 {
		t.Errorf("store_error failures = %v", got)
	}
	kv.fail = false
	if res := s.submit(t, testClient, ch.challenge, nonce, ch.difficulty); res.StatusCode != http.StatusSeeOther {
		t.Errorf("verify after the store recovered: %d", res.StatusCode)
	}
}

// TestServeWritesNothing: issuing challenges leaves the store as it was;
// only an accepted solution writes its spent marker.
func TestServeWritesNothing(t *testing.T) {
	kv := &countingKV{KV: openStore(t)}
	s := newTestService(t, Config{}, kv)
	kv.reset()
	var last issued
	for i := range 50 {
		last = s.issue(t, "/page/"+strconv.Itoa(i), i)
	}
	if n := kv.calls(); n != 0 {
		t.Fatalf("issuing 50 challenges made %d store calls", n)
	}
	res := s.submit(t, testClient, last.challenge, solve(t, last.seed, 10), last.difficulty)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("verify: %d", res.StatusCode)
	}
	if kv.setNX.Load() != 1 || kv.calls() != 1 {
		t.Errorf("accepted solution: %d SetNX, %d store calls; want one SetNX", kv.setNX.Load(), kv.calls())
	}
}

// TestRecordExpiry: a record is refused as expired once ChallengeTTL has
// passed, on both paths.
func TestRecordExpiry(t *testing.T) {
	s := newTestService(t, Config{ChallengeTTL: time.Minute}, nil)
	pow := s.issue(t, "/", 40)
	nojs := s.issue(t, "/", 0)
	nonce := solve(t, pow.seed, 10)
	s.clock.Advance(time.Minute)
	if res := s.submit(t, testClient, pow.challenge, nonce, pow.difficulty); res.StatusCode != http.StatusForbidden {
		t.Errorf("expired pow: %d", res.StatusCode)
	}
	if res := s.noJSGet(t, testClient, nojs.challenge, nojs.browserCookie); res.StatusCode != http.StatusForbidden {
		t.Errorf("expired nojs: %d", res.StatusCode)
	}
	if s.failures("pow", reasonExpired) != 1 || s.failures("nojs", reasonExpired) != 1 {
		t.Errorf("expired failures: pow %v, nojs %v", s.failures("pow", reasonExpired), s.failures("nojs", reasonExpired))
	}
}

// TestRecordKeyRotation: a record sealed before a rotation is accepted while
// its key is still in the keyring, and refused as unknown_key after.
func TestRecordKeyRotation(t *testing.T) {
	s := newTestService(t, Config{}, nil)
	before := s.issue(t, "/a", 40)
	dropped := s.issue(t, "/b", 40)
	old := s.keys.Load()
	next, err := generateKey(s.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	s.keys.Store(&keyring{keys: append([]signingKey{next}, old.keys...)})
	if res := s.submit(t, testClient, before.challenge, solve(t, before.seed, 10), before.difficulty); res.StatusCode != http.StatusSeeOther {
		t.Errorf("record sealed by the previous key: %d", res.StatusCode)
	}
	after := s.issue(t, "/c", 40)
	if rec, why := s.openRecord(after.challenge); why != "" || rec.key != next.id {
		t.Errorf("new record not sealed by the new key: %q", why)
	}
	s.keys.Store(&keyring{keys: []signingKey{next}})
	if res := s.submit(t, testClient, dropped.challenge, solve(t, dropped.seed, 10), dropped.difficulty); res.StatusCode != http.StatusForbidden {
		t.Errorf("record sealed by a dropped key: %d", res.StatusCode)
	}
	if got := s.failures("pow", reasonUnknownKey); got != 1 {
		t.Errorf("unknown_key failures = %v", got)
	}
}

// resealWithNewKey returns the record in sealed, sealed again by a key the
// service does not have.
func resealWithNewKey(t testing.TB, s *testService, sealed string) string {
	t.Helper()
	rec, why := s.openRecord(sealed)
	if why != "" {
		t.Fatalf("open record: %s", why)
	}
	k, err := generateKey(s.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	rec.key = k.id
	return string(rec.seal(nil, k.mac))
}

// countingKV counts calls to the KV it wraps.
type countingKV struct {
	KV                   store.KV
	get, set, setNX, del atomic.Int64
}

func (c *countingKV) reset() {
	c.get.Store(0)
	c.set.Store(0)
	c.setNX.Store(0)
	c.del.Store(0)
}

func (c *countingKV) calls() int64 {
	return c.get.Load() + c.set.Load() + c.setNX.Load() + c.del.Load()
}

func (c *countingKV) Get(ctx context.Context, key string) ([]byte, bool, error) {
	c.get.Add(1)
	return c.KV.Get(ctx, key)
}

func (c *countingKV) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	c.set.Add(1)
	return c.KV.Set(ctx, key, value, ttl)
}

func (c *countingKV) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	c.setNX.Add(1)
	return c.KV.SetNX(ctx, key, value, ttl)
}

func (c *countingKV) Delete(ctx context.Context, key string) error {
	c.del.Add(1)
	return c.KV.Delete(ctx, key)
}

type failingKV struct {
	KV interface {
		Get(ctx context.Context, key string) ([]byte, bool, error)
		Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
		SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
		Delete(ctx context.Context, key string) error
	}
	fail bool
}

var errStoreDown = io.ErrUnexpectedEOF

func (f *failingKV) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if f.fail {
		return nil, false, errStoreDown
	}
	return f.KV.Get(ctx, key)
}

func (f *failingKV) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if f.fail {
		return errStoreDown
	}
	return f.KV.Set(ctx, key, value, ttl)
}

func (f *failingKV) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if f.fail {
		return false, errStoreDown
	}
	return f.KV.SetNX(ctx, key, value, ttl)
}

func (f *failingKV) Delete(ctx context.Context, key string) error {
	if f.fail {
		return errStoreDown
	}
	return f.KV.Delete(ctx, key)
}
