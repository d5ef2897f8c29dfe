package aiservice

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/decision"
	"github.com/scrapedefense/scrapedefense/internal/events"
	"github.com/scrapedefense/scrapedefense/internal/store"
)

func TestWebhookRejections(t *testing.T) {
	long := strings.Repeat("a", 65)
	tooLarge := append(eventsBody(t, event()), bytes.Repeat([]byte(" "), DefaultMaxBodyBytes)...)
	headers65 := map[string]any{}
	for i := range 65 {
		headers65[fmt.Sprintf("X-H%d", i)] = "v"
	}
	tests := []struct {
		name   string
		body   []byte
		mod    func(hs *harness, r *http.Request) *http.Request // nil: signed POST /webhook
		status int
		code   Code
	}{
		{name: "GET", status: 405, code: CodeMethodNotAllowed, mod: func(hs *harness, r *http.Request) *http.Request {
			r.Method = http.MethodGet
			return r
		}},
		{name: "text/plain", status: 415, code: CodeUnsupportedMediaType, mod: func(hs *harness, r *http.Request) *http.Request {
			r.Header.Set("Content-Type", "text/plain")
			return r
		}},
		{name: "latin-1 JSON", status: 415, code: CodeUnsupportedMediaType, mod: func(hs *harness, r *http.Request) *http.Request {
			r.Header.Set("Content-Type", "application/json; charset=iso-8859-1")
			return r
		}},
		{name: "no sender", status: 401, code: CodeUnauthenticated, mod: func(hs *harness, r *http.Request) *http.Request {
			r.Header.Del(HeaderSender)
			return r
		}},
		{name: "unknown sender", status: 401, code: CodeUnauthenticated, mod: func(hs *harness, r *http.Request) *http.Request {
			r.Header.Set(HeaderSender, "mallory")
			return r
		}},
		{name: "other sender's name", status: 401, code: CodeUnauthenticated, mod: func(hs *harness, r *http.Request) *http.Request {
			r.Header.Set(HeaderSender, "vector")
			return r
		}},
		{name: "bad signature", status: 401, code: CodeUnauthenticated, mod: func(hs *harness, r *http.Request) *http.Request {
			r.Header.Set(HeaderSignature, Sign([]byte("wrong-secret-wrong-secret"), hs.now, []byte("{}")))
			return r
		}},
		{name: "malformed signature header", status: 401, code: CodeUnauthenticated, mod: func(hs *harness, r *http.Request) *http.Request {
			r.Header.Set(HeaderSignature, "t=abc,v1=zz")
			return r
		}},
		{name: "stale signature", status: 401, code: CodeStaleSignature, mod: func(hs *harness, _ *http.Request) *http.Request {
			body := eventsBody(t, event())
			r := hs.signed(RouteWebhook, body)
			r.Header.Set(HeaderSignature, Sign(testSecret, hs.now.Add(-6*time.Minute), body))
			return r
		}},
		{name: "future signature", status: 401, code: CodeStaleSignature, mod: func(hs *harness, _ *http.Request) *http.Request {
			body := eventsBody(t, event())
			r := hs.signed(RouteWebhook, body)
			r.Header.Set(HeaderSignature, Sign(testSecret, hs.now.Add(6*time.Minute), body))
			return r
		}},
		{name: "body too large (length)", status: 413, code: CodeBodyTooLarge, body: tooLarge},
		{name: "body too large (chunked)", status: 413, code: CodeBodyTooLarge, body: tooLarge, mod: func(hs *harness, r *http.Request) *http.Request {
			r.ContentLength = -1
			return r
		}},
		{name: "not JSON", body: []byte("v=1"), status: 400, code: CodeMalformedJSON},
		{name: "empty body", body: []byte(""), status: 400, code: CodeMalformedJSON},
		{name: "trailing data", body: append(eventsBody(t, event()), []byte(`{}`)...), status: 400, code: CodeMalformedJSON},
		{name: "unknown top-level field", body: []byte(`{"v":1,"type":"events","events":[],"extra":1}`), status: 400, code: CodeUnknownField},
		{name: "unknown event field", body: eventsBody(t, event("cookie", "x")), status: 400, code: CodeUnknownField},
		{name: "wrong JSON type", body: eventsBody(t, event("status", "200")), status: 400, code: CodeSchemaViolation},
		{name: "message v2", body: []byte(`{"v":2,"type":"events","events":[]}`), status: 400, code: CodeUnsupportedVersion},
		{name: "event v0", body: eventsBody(t, event("v", nil)), status: 400, code: CodeUnsupportedVersion},
		{name: "no type", body: []byte(`{"v":1}`), status: 400, code: CodeSchemaViolation},
		{name: "unknown type", body: []byte(`{"v":1,"type":"telemetry"}`), status: 400, code: CodeSchemaViolation},
		{name: "no events", body: eventsBody(t), status: 400, code: CodeSchemaViolation},
		{name: "events with command", body: []byte(`{"v":1,"type":"events","events":[],"command":{}}`), status: 400, code: CodeSchemaViolation},
		{name: "too many events", body: eventsBody(t, manyEvents(501)...), status: 400, code: CodeTooManyEvents},
		{name: "bad ip", body: eventsBody(t, event("client_ip", "203.0.113.300")), status: 400, code: CodeInvalidIP},
		{name: "missing ip", body: eventsBody(t, event("client_ip", nil)), status: 400, code: CodeInvalidIP},
		{name: "ip with zone", body: eventsBody(t, event("client_ip", "fe80::1%eth0")), status: 400, code: CodeInvalidIP},
		{name: "missing time", body: eventsBody(t, event("time", nil)), status: 400, code: CodeInvalidTime},
		{name: "future time", body: eventsBody(t, event("time", testNow.Add(time.Hour).Format(time.RFC3339))), status: 400, code: CodeInvalidTime},
		{name: "unparsable time", body: eventsBody(t, event("time", "yesterday")), status: 400, code: CodeInvalidTime},
		{name: "relative path", body: eventsBody(t, event("path", "index.html")), status: 400, code: CodeSchemaViolation},
		{name: "request without path", body: eventsBody(t, event("path", nil)), status: 400, code: CodeSchemaViolation},
		{name: "method not a token", body: eventsBody(t, event("method", "GE T")), status: 400, code: CodeSchemaViolation},
		{name: "bad kind", body: eventsBody(t, event("kind", "scrape")), status: 400, code: CodeSchemaViolation},
		{name: "too many headers", body: eventsBody(t, event("headers", headers65)), status: 400, code: CodeSchemaViolation},
		{name: "header name too long", body: eventsBody(t, event("headers", map[string]any{"X-" + long: "v"})), status: 400, code: CodeSchemaViolation},
		{name: "header name not a token", body: eventsBody(t, event("headers", map[string]any{"Bad Name": "v"})), status: 400, code: CodeSchemaViolation},
		{name: "header value too long", body: eventsBody(t, event("headers", map[string]any{"Accept": strings.Repeat("v", 1025)})), status: 400, code: CodeSchemaViolation},
		{name: "header value with newline", body: eventsBody(t, event("headers", map[string]any{"Accept": "a\r\nSet-Cookie: x"})), status: 400, code: CodeSchemaViolation},
		{name: "same header twice", body: eventsBody(t, event("headers", map[string]any{"accept": "a", "Accept": "b"})), status: 400, code: CodeSchemaViolation},
		{name: "header order too long", body: eventsBody(t, event("header_order", make([]string, 65))), status: 400, code: CodeSchemaViolation},
		{name: "user agent too long", body: eventsBody(t, event("user_agent", strings.Repeat("u", 1025))), status: 400, code: CodeSchemaViolation},
		{name: "id with space", body: eventsBody(t, event("id", "a b")), status: 400, code: CodeSchemaViolation},
		{name: "status out of range", body: eventsBody(t, event("status", 42)), status: 400, code: CodeSchemaViolation},
		{name: "too many rules", body: eventsBody(t, event("rules", make([]string, 33))), status: 400, code: CodeSchemaViolation},
		{name: "command missing", body: []byte(`{"v":1,"type":"command"}`), status: 400, code: CodeSchemaViolation},
		{name: "command unknown field", body: commandBody(t, map[string]any{"action": "block", "target": "203.0.113.7", "scope": "ip"}), status: 400, code: CodeUnknownField},
		{name: "command bad action", body: commandBody(t, map[string]any{"action": "nuke", "target": "203.0.113.7"}), status: 400, code: CodeInvalidCommand},
		{name: "command bad target", body: commandBody(t, map[string]any{"action": "block", "target": "example.org"}), status: 400, code: CodeInvalidCommand},
		{name: "command too broad", body: commandBody(t, map[string]any{"action": "block", "target": "0.0.0.0/0"}), status: 400, code: CodeInvalidCommand},
		{name: "command bad ttl", body: commandBody(t, map[string]any{"action": "block", "target": "203.0.113.7", "ttl": "1 day"}), status: 400, code: CodeInvalidCommand},
		{name: "command ttl too long", body: commandBody(t, map[string]any{"action": "flag", "target": "203.0.113.7", "ttl": "10000h"}), status: 400, code: CodeInvalidCommand},
		{name: "command negative ttl", body: commandBody(t, map[string]any{"action": "block", "target": "203.0.113.7", "ttl": "-1h"}), status: 400, code: CodeInvalidCommand},
		{name: "command reason too long", body: commandBody(t, map[string]any{"action": "block", "target": "203.0.113.7", "reason": strings.Repeat("r", 257)}), status: 400, code: CodeInvalidCommand},
		{name: "idempotency key too long", body: eventsBody(t, event()), status: 400, code: CodeInvalidIdempotencyKey, mod: func(hs *harness, r *http.Request) *http.Request {
			r.Header.Set(HeaderIdempotency, strings.Repeat("k", 129))
			return r
		}},
		{name: "unknown route", status: 404, code: CodeNotFound, mod: func(hs *harness, r *http.Request) *http.Request {
			return hs.signed("/webhooks", eventsBody(t, event()))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t, nil)
			body := tt.body
			if body == nil {
				body = eventsBody(t, event())
			}
			r := hs.signed(RouteWebhook, body)
			if tt.mod != nil {
				r = tt.mod(hs, r)
			}
			w := hs.do(r)
			if w.Code != tt.status {
				t.Errorf("status %d, want %d (body %s)", w.Code, tt.status, w.Body)
			}
			if got := errorCode(t, w); got != tt.code {
				t.Errorf("code %q, want %q (body %s)", got, tt.code, w.Body)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if n := len(hs.queue.events()); n != 0 {
				t.Errorf("%d events enqueued by a rejected request", n)
			}
			if got := hs.counter(t, "webhook_rejected_total", "reason", string(tt.code)); got != 1 {
				t.Errorf("webhook_rejected_total{reason=%q} = %v, want 1", tt.code, got)
			}
			decs, err := hs.store.ListDecisions(context.Background())
			if err != nil || len(decs) != 0 {
				t.Errorf("decisions after rejection: %v, %v", decs, err)
			}
		})
	}
}

// TestUnauthenticatedLooksTheSame checks that an unknown sender and a bad
// signature cannot be told apart from the response.
func TestUnauthenticatedLooksTheSame(t *testing.T) {
	hs := newHarness(t, nil)
	body := eventsBody(t, event())
	r1 := hs.signed(RouteWebhook, body)
	r1.Header.Set(HeaderSender, "nobody")
	r2 := hs.signed(RouteWebhook, body)
	r2.Header.Set(HeaderSignature, Sign([]byte("not-the-secret-at-all"), hs.now, body))
	w1, w2 := hs.do(r1), hs.do(r2)
	if w1.Code != w2.Code || w1.Body.String() != w2.Body.String() {
		t.Errorf("unknown sender %d %s; bad signature %d %s", w1.Code, w1.Body, w2.Code, w2.Body)
	}
}

func TestWebhookAcceptsEvents(t *testing.T) {
	hs := newHarness(t, nil)
	body := eventsBody(t,
		event("source", "spoofed", "client_ip", "::ffff:203.0.113.7", "headers", map[string]any{"accept-language": "en"}, "header_order", []string{"Host", "User-Agent"}),
		event("kind", "trap", "path", nil, "method", nil),
	)
	w := hs.do(hs.signed(RouteWebhook, body))
	if w.Code != http.StatusAccepted || strings.TrimSpace(w.Body.String()) != `{"accepted":2}` {
		t.Fatalf("got %d %s", w.Code, w.Body)
	}
	got := hs.queue.events()
	if len(got) != 2 {
		t.Fatalf("enqueued %d events, want 2", len(got))
	}
	ev := got[0]
	if ev.Source != testSender || ev.ClientIP != "203.0.113.7" || ev.Headers["Accept-Language"] != "en" ||
		ev.HeaderOrder[0] != "host" || ev.Time.Location() != time.UTC {
		t.Errorf("event not canonicalised: %+v", ev)
	}
	if got[1].Kind != events.KindTrap || got[1].Source != testSender {
		t.Errorf("second event %+v", got[1])
	}
	if n := hs.counter(t, "webhook_events_accepted_total", "sender", testSender); n != 2 {
		t.Errorf("webhook_events_accepted_total = %v, want 2", n)
	}
}

func TestWebhookMaxBatch(t *testing.T) {
	hs := newHarness(t, nil)
	w := hs.do(hs.signed(RouteWebhook, eventsBody(t, manyEvents(DefaultMaxEvents)...)))
	if w.Code != http.StatusAccepted || len(hs.queue.events()) != DefaultMaxEvents {
		t.Fatalf("got %d %s, %d enqueued", w.Code, w.Body, len(hs.queue.events()))
	}
}

func TestReplayedSignature(t *testing.T) {
	hs := newHarness(t, nil)
	r := hs.signed(RouteWebhook, eventsBody(t, event()))
	sig := r.Header.Get(HeaderSignature)
	if w := hs.do(r); w.Code != http.StatusAccepted {
		t.Fatalf("first: %d %s", w.Code, w.Body)
	}
	hs.now = hs.now.Add(time.Minute) // still inside the window
	r = hs.signed(RouteWebhook, eventsBody(t, event()))
	r.Header.Set(HeaderSignature, sig)
	w := hs.do(r)
	if w.Code != http.StatusUnauthorized || errorCode(t, w) != CodeReplayedSignature {
		t.Fatalf("replay: %d %s", w.Code, w.Body)
	}
	if n := len(hs.queue.events()); n != 1 {
		t.Errorf("%d events enqueued, want 1", n)
	}
}

func TestIdempotencyKey(t *testing.T) {
	hs := newHarness(t, nil)
	send := func(key string) *httptest.ResponseRecorder {
		r := hs.signed(RouteWebhook, eventsBody(t, event()))
		r.Header.Set(HeaderIdempotency, key)
		hs.now = hs.now.Add(time.Second) // a fresh signature each time
		return hs.do(r)
	}
	if w := send("batch-1"); w.Code != http.StatusAccepted {
		t.Fatalf("first: %d %s", w.Code, w.Body)
	}
	w := send("batch-1")
	if w.Code != http.StatusAccepted || !strings.Contains(w.Body.String(), `"duplicate":true`) {
		t.Fatalf("repeat: %d %s", w.Code, w.Body)
	}
	if n := len(hs.queue.events()); n != 1 {
		t.Errorf("%d events enqueued, want 1", n)
	}
	if w := send("batch-2"); w.Code != http.StatusAccepted || strings.Contains(w.Body.String(), "duplicate") {
		t.Fatalf("new key: %d %s", w.Code, w.Body)
	}
	// Another sender's key space is its own.
	body := eventsBody(t, event())
	r := hs.signed(RouteWebhook, body)
	r.Header.Set(HeaderSender, "vector")
	r.Header.Set(HeaderSignature, Sign([]byte("another-secret-of-enough-length"), hs.now, body))
	r.Header.Set(HeaderIdempotency, "batch-1")
	if w := hs.do(r); w.Code != http.StatusAccepted || strings.Contains(w.Body.String(), "duplicate") {
		t.Fatalf("other sender: %d %s", w.Code, w.Body)
	}
	if n := len(hs.queue.events()); n != 3 {
		t.Errorf("%d events enqueued, want 3", n)
	}
}

func TestIdempotencyKeyReleasedOnQueueFull(t *testing.T) {
	hs := newHarness(t, nil)
	hs.queue.err = fmt.Errorf("queue: %w", store.ErrFull)
	send := func() *httptest.ResponseRecorder {
		r := hs.signed(RouteWebhook, eventsBody(t, event("id", "ev-1")))
		r.Header.Set(HeaderIdempotency, "k1")
		hs.now = hs.now.Add(time.Second)
		return hs.do(r)
	}
	w := send()
	if w.Code != http.StatusServiceUnavailable || errorCode(t, w) != CodeQueueFull || w.Header().Get("Retry-After") == "" {
		t.Fatalf("queue full: %d %s %v", w.Code, w.Body, w.Header())
	}
	hs.queue.err = nil
	if w := send(); w.Code != http.StatusAccepted || strings.Contains(w.Body.String(), "duplicate") {
		t.Fatalf("retry after queue full: %d %s", w.Code, w.Body)
	}
	if n := len(hs.queue.events()); n != 1 {
		t.Errorf("%d events enqueued, want 1", n)
	}
}

func TestEventIDDeduplication(t *testing.T) {
	hs := newHarness(t, nil)
	w := hs.do(hs.signed(RouteWebhook, eventsBody(t, event("id", "a"), event("id", "b"), event("id", "a"), event())))
	if w.Code != http.StatusAccepted || strings.TrimSpace(w.Body.String()) != `{"accepted":3,"duplicates":1}` {
		t.Fatalf("first: %d %s", w.Code, w.Body)
	}
	hs.now = hs.now.Add(time.Second)
	w = hs.do(hs.signed(RouteWebhook, eventsBody(t, event("id", "b"), event("id", "c"))))
	if w.Code != http.StatusAccepted || strings.TrimSpace(w.Body.String()) != `{"accepted":1,"duplicates":1}` {
		t.Fatalf("second: %d %s", w.Code, w.Body)
	}
	var ids []string
	for _, ev := range hs.queue.events() {
		ids = append(ids, ev.ID)
	}
	if strings.Join(ids, ",") != "a,b,,c" {
		t.Errorf("enqueued ids %q", ids)
	}
}

func TestRateLimit(t *testing.T) {
	hs := newHarness(t, func(o *Options) { o.RatePerSecond, o.RateBurst = 1, 3 })
	// Distinct bodies: signatures made in the same second must differ.
	for i := range 3 {
		hs.now = hs.now.Add(time.Millisecond)
		if w := hs.do(hs.signed(RouteWebhook, eventsBody(t, event("path", fmt.Sprintf("/%d", i))))); w.Code != http.StatusAccepted {
			t.Fatalf("request %d: %d %s", i, w.Code, w.Body)
		}
	}
	hs.now = hs.now.Add(time.Millisecond)
	w := hs.do(hs.signed(RouteWebhook, eventsBody(t, event())))
	if w.Code != http.StatusTooManyRequests || errorCode(t, w) != CodeRateLimited || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("over limit: %d %s %v", w.Code, w.Body, w.Header())
	}
	hs.now = hs.now.Add(time.Second)
	if w := hs.do(hs.signed(RouteWebhook, eventsBody(t, event()))); w.Code != http.StatusAccepted {
		t.Fatalf("after refill: %d %s", w.Code, w.Body)
	}
	if n := len(hs.queue.events()); n != 4 {
		t.Errorf("%d events enqueued, want 4", n)
	}
}

func TestCommands(t *testing.T) {
	hs := newHarness(t, nil)
	ctx := context.Background()
	send := func(cmd map[string]any) *httptest.ResponseRecorder {
		t.Helper()
		hs.now = hs.now.Add(time.Second)
		return hs.do(hs.signed(RouteWebhook, commandBody(t, cmd)))
	}

	w := send(map[string]any{"action": "block", "target": "203.0.113.7", "ttl": "1h", "reason": "scraping /articles"})
	if w.Code != http.StatusOK {
		t.Fatalf("block: %d %s", w.Code, w.Body)
	}
	var res Result
	if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil || res.Decision == nil || res.Target != "203.0.113.7" {
		t.Fatalf("block result %s: %v", w.Body, err)
	}
	d, ok, err := hs.store.GetDecision(ctx, "203.0.113.7")
	if err != nil || !ok {
		t.Fatalf("decision not stored: %v %v", ok, err)
	}
	if d.Action != decision.ActionBlock || d.Source != "webhook:"+testSender || d.Reason != "scraping /articles" || !d.Expires.Equal(hs.now.Add(time.Hour)) {
		t.Errorf("decision %+v", d)
	}

	if w := send(map[string]any{"action": "allow", "target": "198.51.100.9/24"}); w.Code != http.StatusOK {
		t.Fatalf("allow: %d %s", w.Code, w.Body)
	}
	d, ok, err = hs.store.GetDecision(ctx, "198.51.100.0/24")
	if err != nil || !ok || d.Action != decision.ActionAllow || d.Scope != decision.ScopeCIDR || !d.Expires.Equal(hs.now.Add(DefaultCommandTTL)) {
		t.Errorf("allow decision %+v %v %v", d, ok, err)
	}

	if w := send(map[string]any{"action": "flag", "target": "2001:db8::/48", "ttl": "30m", "reason": "odd header order"}); w.Code != http.StatusOK {
		t.Fatalf("flag: %d %s", w.Code, w.Body)
	}
	f, ok, err := Flagged(ctx, hs.store, mustAddr(t, "2001:db8:0:1::5"))
	if err != nil || !ok || f.Prefix != "2001:db8::/48" || f.Reason != "odd header order" || f.Source != "webhook:"+testSender {
		t.Errorf("Flagged = %+v %v %v", f, ok, err)
	}
	if _, ok, _ := Flagged(ctx, hs.store, mustAddr(t, "2001:db9::1")); ok {
		t.Error("an address outside the flagged prefix is flagged")
	}
	if w := send(map[string]any{"action": "unflag", "target": "2001:db8::/48"}); w.Code != http.StatusOK {
		t.Fatalf("unflag: %d %s", w.Code, w.Body)
	}
	if _, ok, _ := Flagged(ctx, hs.store, mustAddr(t, "2001:db8:0:1::5")); ok {
		t.Error("still flagged after unflag")
	}

	audit, err := hs.store.ListAudit(ctx, time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range audit {
		if e.Actor != "webhook:"+testSender {
			t.Errorf("audit actor %q", e.Actor)
		}
		got = append(got, e.Action+" "+e.Target)
	}
	want := "decision.put 203.0.113.7|decision.put 198.51.100.0/24|flag.put 2001:db8::/48|flag.delete 2001:db8::/48"
	if strings.Join(got, "|") != want {
		t.Errorf("audit\n got %q\nwant %q", strings.Join(got, "|"), want)
	}
	for _, a := range commandActions {
		if n := hs.counter(t, "webhook_commands_total", "action", a); n != 1 {
			t.Errorf("webhook_commands_total{action=%q} = %v, want 1", a, n)
		}
	}
}

func TestCommandIdempotency(t *testing.T) {
	hs := newHarness(t, nil)
	body := commandBody(t, map[string]any{"action": "block", "target": "203.0.113.8", "ttl": "1h"})
	for i, wantDup := range []bool{false, true} {
		hs.now = hs.now.Add(time.Second)
		r := hs.signed(RouteWebhook, body)
		r.Header.Set(HeaderIdempotency, "cmd-1")
		w := hs.do(r)
		if w.Code != http.StatusOK || strings.Contains(w.Body.String(), "duplicate") != wantDup {
			t.Fatalf("call %d: %d %s", i, w.Code, w.Body)
		}
	}
	audit, _ := hs.store.ListAudit(context.Background(), time.Time{}, 0)
	if len(audit) != 1 {
		t.Errorf("%d audit entries, want 1", len(audit))
	}
}

func TestEscalate(t *testing.T) {
	hs := newHarness(t, nil)
	body := mustJSON(t, map[string]any{"v": 1, "event": event()})
	w := hs.do(hs.signed(RouteEscalate, body))
	if w.Code != http.StatusOK {
		t.Fatalf("escalate: %d %s", w.Code, w.Body)
	}
	var v events.Verdict
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil || v.Action != "block" || v.ClientIP != "203.0.113.7" || v.Reasons[0].Signal != "source:"+testSender {
		t.Errorf("verdict %s: %v", w.Body, err)
	}

	for name, tc := range map[string]struct {
		body []byte
		code Code
	}{
		"no event":      {[]byte(`{"v":1}`), CodeSchemaViolation},
		"batch shape":   {eventsBody(t, event()), CodeUnknownField},
		"bad ip":        {mustJSON(t, map[string]any{"v": 1, "event": event("client_ip", "nope")}), CodeInvalidIP},
		"wrong version": {mustJSON(t, map[string]any{"v": 3, "event": event()}), CodeUnsupportedVersion},
	} {
		hs.now = hs.now.Add(time.Second)
		w := hs.do(hs.signed(RouteEscalate, tc.body))
		if w.Code != http.StatusBadRequest || errorCode(t, w) != tc.code {
			t.Errorf("%s: %d %s, want 400 %s", name, w.Code, w.Body, tc.code)
		}
	}

	off := newHarness(t, func(o *Options) { o.Scorer = nil })
	w = off.do(off.signed(RouteEscalate, body))
	if w.Code != http.StatusNotImplemented || errorCode(t, w) != CodeNotEnabled {
		t.Errorf("without scorer: %d %s", w.Code, w.Body)
	}
}

func TestIngest(t *testing.T) {
	hs := newHarness(t, nil)
	ctx := context.Background()
	in := []events.Event{{
		Version: events.SchemaVersion, Time: testNow, ClientIP: "192.0.2.1", Method: "GET", Path: "/",
		Headers: map[string]string{"accept": "*/*"}, Source: "edge",
	}, {
		Version: events.SchemaVersion, Time: testNow, ClientIP: "192.0.2.2", Kind: events.KindChallengePass,
	}}
	if err := hs.svc.Ingest(ctx, in); err != nil {
		t.Fatalf("Ingest: %v", err)
	}
	if _, ok := in[0].Headers["accept"]; !ok {
		t.Error("Ingest modified the caller's headers")
	}
	got := hs.queue.events()
	if len(got) != 2 || got[0].Source != "edge" || got[1].Source != localSender || got[0].Headers["Accept"] != "*/*" {
		t.Errorf("enqueued %+v", got)
	}
	// A bad event is dropped alone; its batch-mates are enqueued.
	bad := events.Event{Version: 1, Time: testNow, ClientIP: "999.1.1.1", Path: "/"}
	if err := hs.svc.Ingest(ctx, []events.Event{bad, in[0]}); err != nil {
		t.Errorf("Ingest with one bad event = %v, want nil", err)
	}
	if got := hs.queue.events(); len(got) != 3 || got[2].ClientIP != "192.0.2.1" {
		t.Errorf("after a batch with a bad event the queue holds %+v", got)
	}
	var e *Error
	hs.queue.err = fmt.Errorf("wrapped: %w", store.ErrFull)
	err := hs.svc.Ingest(ctx, in)
	if !errors.As(err, &e) || e.Code != CodeQueueFull || !errors.Is(err, store.ErrFull) {
		t.Errorf("Ingest into a full queue = %v", err)
	}
}

func TestNewValidatesOptions(t *testing.T) {
	st := openStore(t)
	q := &recorder{}
	for name, o := range map[string]Options{
		"no store":      {Enqueuer: q},
		"no enqueuer":   {Store: st},
		"short secret":  {Store: st, Enqueuer: q, Senders: map[string][]byte{"a": []byte("short")}},
		"bad name":      {Store: st, Enqueuer: q, Senders: map[string][]byte{"a b": testSecret}},
		"reserved name": {Store: st, Enqueuer: q, Senders: map[string][]byte{"local": testSecret}},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

func TestMediaType(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/json":                   true,
		"Application/JSON; charset=UTF-8":    true,
		"application/json;charset=\"utf-8\"": true,
		"application/json; charset=latin1":   false,
		"application/jsonx":                  false,
		"text/json":                          false,
		"":                                   false,
	} {
		if got := isJSONMediaType(ct); got != want {
			t.Errorf("isJSONMediaType(%q) = %v", ct, got)
		}
	}
}

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "1", 10 * time.Millisecond: "1", 1500 * time.Millisecond: "2", 5 * time.Second: "5"} {
		if got := retryAfterSeconds(d); got != want {
			t.Errorf("retryAfterSeconds(%v) = %q, want %q", d, got, want)
		}
	}
}
