package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/scrapedefense/scrapedefense/internal/events"
	"github.com/scrapedefense/scrapedefense/internal/hmacsig"
	"github.com/scrapedefense/scrapedefense/internal/outbound"
)

var testTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func testBatch() Batch {
	a := Alert{
		Key: "198.51.100.7", Severity: Critical, Title: "Blocked 198.51.100.7", Text: "score over threshold",
		Time: testTime,
		Verdict: &events.Verdict{ClientIP: "198.51.100.7", Action: "block", Score: 0.97, TTL: time.Hour,
			Reasons: []events.Reason{{Stage: "heuristics", Signal: "ua_list", Weight: 0.6, Detail: "GPTBot"}}},
	}
	return Batch{Key: a.Key, Severity: a.Severity, First: a.Time, Last: a.Time, Count: 1, Alerts: []Alert{a}}
}

func testClient() *http.Client {
	return outbound.NewClient(outbound.Options{Policy: outbound.Policy{AllowPrivate: true}})
}

// receiver records request bodies and answers with the given statuses in
// turn (200 once they run out).
type receiver struct {
	mu       sync.Mutex
	bodies   [][]byte
	headers  []http.Header
	statuses []int
}

func newReceiver(t *testing.T, statuses ...int) (*receiver, *httptest.Server) {
	t.Helper()
	rc := &receiver{statuses: statuses}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.bodies = append(rc.bodies, b)
		rc.headers = append(rc.headers, r.Header.Clone())
		code := http.StatusOK
		if len(rc.statuses) > 0 {
			code, rc.statuses = rc.statuses[0], rc.statuses[1:]
		}
		rc.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(srv.Close)
	return rc, srv
}

func TestParseSeverity(t *testing.T) {
	for in, want := range map[string]Severity{"info": Info, "WARNING": Warning, " critical ": Critical, "warn": Warning} {
		got, err := ParseSeverity(in)
		if err != nil || got != want {
			t.Errorf("ParseSeverity(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseSeverity("fatal"); err == nil {
		t.Error("ParseSeverity(fatal) succeeded")
	}
	var s Severity
	if err := s.UnmarshalText([]byte("warning")); err != nil || s != Warning {
		t.Errorf("UnmarshalText = %v, %v", s, err)
	}
	if b, _ := json.Marshal(Critical); string(b) != `"critical"` {
		t.Errorf("json = %s", b)
	}
}

func TestWebhookSigned(t *testing.T) {
	rc, srv := newReceiver(t)
	secret := []byte("whsec")
	w, err := NewWebhook(WebhookOptions{URL: srv.URL + "/hook", Secret: secret, Client: testClient(), Now: func() time.Time { return testTime }})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Send(context.Background(), testBatch()); err != nil {
		t.Fatal(err)
	}
	body, h := rc.bodies[0], rc.headers[0]
	if err := hmacsig.Verify(secret, h.Get(hmacsig.Header), body, testTime, 0); err != nil {
		t.Errorf("signature: %v", err)
	}
	var p struct {
		Source string
		Batch  Batch
	}
	if err := json.Unmarshal(body, &p); err != nil || p.Source != "scrapedefense" || p.Batch.Key != "198.51.100.7" ||
		p.Batch.Severity != Critical || p.Batch.Alerts[0].Verdict.Action != "block" {
		t.Errorf("payload %s: %v", body, err)
	}
}

func TestSlackPayload(t *testing.T) {
	rc, srv := newReceiver(t)
	s, err := NewSlack(SlackOptions{WebhookURL: srv.URL + "/services/T0/B0/SECRET", Client: testClient()})
	if err != nil {
		t.Fatal(err)
	}
	b := testBatch()
	b.Alerts[0].Text = "UA <!channel> <https://evil.example|click>"
	if err := s.Send(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	var msg struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type string `json:"type"`
			Text struct{ Type, Text string }
		} `json:"blocks"`
	}
	if err := json.Unmarshal(rc.bodies[0], &msg); err != nil {
		t.Fatal(err)
	}
	if msg.Text == "" || len(msg.Blocks) < 3 || msg.Blocks[0].Type != "header" {
		t.Fatalf("message %s", rc.bodies[0])
	}
	if strings.Contains(string(rc.bodies[0]), "<!channel>") || !strings.Contains(msg.Blocks[2].Text.Text, "&lt;!channel&gt;") {
		t.Errorf("mrkdwn not escaped: %s", rc.bodies[0])
	}
}

func TestSlackErrorRedactsURL(t *testing.T) {
	_, srv := newReceiver(t, 500)
	s, _ := NewSlack(SlackOptions{WebhookURL: srv.URL + "/services/T0/B0/SECRET", Client: testClient()})
	err := s.Send(context.Background(), testBatch())
	var se *outbound.StatusError
	if !errors.As(err, &se) || se.Code != 500 || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("Send = %v", err)
	}
}

func TestPagerDutyEvent(t *testing.T) {
	rc, srv := newReceiver(t, http.StatusAccepted)
	p, err := NewPagerDuty(PagerDutyOptions{RoutingKey: "R0UTING", URL: srv.URL + "/v2/enqueue", Client: testClient()})
	if err != nil {
		t.Fatal(err)
	}
	b := testBatch()
	b.Severity = Warning
	if err := p.Send(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	var ev struct {
		RoutingKey  string `json:"routing_key"`
		EventAction string `json:"event_action"`
		DedupKey    string `json:"dedup_key"`
		Payload     struct {
			Summary, Source, Severity, Timestamp string
			CustomDetails                        map[string]any `json:"custom_details"`
		}
	}
	if err := json.Unmarshal(rc.bodies[0], &ev); err != nil {
		t.Fatal(err)
	}
	if ev.RoutingKey != "R0UTING" || ev.EventAction != "trigger" || ev.DedupKey != "scrapedefense:198.51.100.7" ||
		ev.Payload.Severity != "warning" || ev.Payload.Source != "scrapedefense" || ev.Payload.Summary == "" ||
		ev.Payload.Timestamp != "2026-01-02T03:04:05Z" || ev.Payload.CustomDetails["verdict"] == nil {
		t.Errorf("event %s", rc.bodies[0])
	}
	if _, err := NewPagerDuty(PagerDutyOptions{Client: testClient()}); err == nil {
		t.Error("accepted a missing routing key")
	}
	if d, _ := NewPagerDuty(PagerDutyOptions{RoutingKey: "k", Client: testClient()}); d.o.URL != DefaultPagerDutyURL {
		t.Errorf("default URL %q", d.o.URL)
	}
}

func TestNotifierURLValidation(t *testing.T) {
	c := testClient()
	if _, err := NewWebhook(WebhookOptions{URL: "ftp://x/", Client: c}); err == nil {
		t.Error("webhook accepted ftp")
	}
	if _, err := NewSlack(SlackOptions{WebhookURL: "", Client: c}); err == nil {
		t.Error("slack accepted an empty URL")
	}
	if _, err := NewPagerDuty(PagerDutyOptions{RoutingKey: "k", URL: "gopher://x", Client: c}); err == nil {
		t.Error("pagerduty accepted gopher")
	}
}

// recorder is a Notifier that records batches and fails as told.
type recorder struct {
	name  string
	mu    sync.Mutex
	got   []Batch
	calls int
	fail  func(call int) error
}

func (r *recorder) Name() string { return r.name }

func (r *recorder) Send(ctx context.Context, b Batch) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.fail != nil {
		if err := r.fail(r.calls); err != nil {
			return err
		}
	}
	r.got = append(r.got, b)
	return nil
}

func (r *recorder) batches() []Batch {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Batch(nil), r.got...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func startDispatcher(t *testing.T, o DispatcherOptions, ns ...Notifier) (*Dispatcher, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	o.Registerer = reg
	d := NewDispatcher(o, ns...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return d, reg
}

func TestDispatcherAggregatesPerKey(t *testing.T) {
	rec := &recorder{name: "rec"}
	d, _ := startDispatcher(t, DispatcherOptions{Window: 300 * time.Millisecond, SampleSize: 3}, rec)
	for i := range 10 {
		sev := Warning
		if i == 7 {
			sev = Critical
		}
		if !d.Notify(Alert{Key: "a", Severity: sev, Title: "t"}) {
			t.Fatal("Notify refused")
		}
	}
	d.Notify(Alert{Key: "b", Severity: Info, Title: "other"})
	waitFor(t, "first alerts", func() bool { return len(rec.batches()) >= 2 })
	got := rec.batches()
	if got[0].Key != "a" || got[0].Count != 1 || got[0].Summary || got[1].Key != "b" {
		t.Fatalf("first batches %+v", got)
	}
	if testutil.ToFloat64(d.suppress) != 9 {
		t.Errorf("suppressed = %v, want 9", testutil.ToFloat64(d.suppress))
	}
	waitFor(t, "summary", func() bool { return len(rec.batches()) >= 3 })
	sum := rec.batches()[2]
	if sum.Key != "a" || !sum.Summary || sum.Count != 9 || len(sum.Alerts) != 3 || sum.Severity != Critical {
		t.Errorf("summary %+v", sum)
	}
	time.Sleep(400 * time.Millisecond)
	if n := len(rec.batches()); n != 3 {
		t.Errorf("%d batches, want 3 (key b had no further alerts)", n)
	}
	// A new window opens for a after the old one closed.
	d.Notify(Alert{Key: "a", Severity: Warning})
	waitFor(t, "new window", func() bool { return len(rec.batches()) == 4 })
	if ok := testutil.ToFloat64(d.sent.WithLabelValues("rec", "ok")); ok != 4 {
		t.Errorf("sent ok = %v", ok)
	}
}

func TestDispatcherMinSeverity(t *testing.T) {
	d := NewDispatcher(DispatcherOptions{MinSeverity: Warning})
	if d.Notify(Alert{Key: "x", Severity: Info}) {
		t.Error("info accepted")
	}
	if !d.Notify(Alert{Key: "x", Severity: Critical}) {
		t.Error("critical refused")
	}
}

func TestDispatcherQueueFullNeverBlocks(t *testing.T) {
	gauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: "q"})
	d := NewDispatcher(DispatcherOptions{QueueSize: 2, QueueLength: gauge}) // Run not started
	start := time.Now()
	accepted := 0
	for range 100 {
		if d.Notify(Alert{Key: "k"}) {
			accepted++
		}
	}
	if accepted != 2 || testutil.ToFloat64(d.dropped) != 98 || testutil.ToFloat64(gauge) != 2 {
		t.Errorf("accepted %d dropped %v gauge %v", accepted, testutil.ToFloat64(d.dropped), testutil.ToFloat64(gauge))
	}
	if time.Since(start) > 100*time.Millisecond {
		t.Error("Notify blocked")
	}
}

func TestDispatcherMaxKeysEvicts(t *testing.T) {
	rec := &recorder{name: "rec"}
	d, _ := startDispatcher(t, DispatcherOptions{Window: time.Hour, MaxKeys: 3}, rec)
	d.Notify(Alert{Key: "k0"})
	d.Notify(Alert{Key: "k0"}) // suppressed, flushed when k0 is evicted
	for _, k := range []string{"k1", "k2", "k3", "k4"} {
		d.Notify(Alert{Key: k})
	}
	waitFor(t, "batches", func() bool { return len(rec.batches()) == 6 })
	if ev := testutil.ToFloat64(d.evicted); ev != 2 {
		t.Errorf("evicted = %v, want 2", ev)
	}
	var summary bool
	for _, b := range rec.batches() {
		summary = summary || (b.Key == "k0" && b.Summary && b.Count == 1)
	}
	if !summary {
		t.Error("evicted window's summary not sent")
	}
	if len(d.windows) > 3 {
		// Only read after the sends above: the worker is idle by now.
		t.Errorf("%d windows open", len(d.windows))
	}
}

func TestDispatcherRetries(t *testing.T) {
	flaky := &recorder{name: "flaky", fail: func(call int) error {
		if call < 3 {
			return &outbound.StatusError{Code: 503}
		}
		return nil
	}}
	broken := &recorder{name: "broken", fail: func(int) error { return &outbound.StatusError{Code: 400} }}
	d, _ := startDispatcher(t, DispatcherOptions{Retries: 4, RetryBase: time.Millisecond}, flaky, broken)
	d.Notify(Alert{Key: "x", Severity: Critical})
	waitFor(t, "delivery", func() bool {
		return testutil.ToFloat64(d.sent.WithLabelValues("flaky", "ok")) == 1 &&
			testutil.ToFloat64(d.sent.WithLabelValues("broken", "error")) == 1
	})
	broken.mu.Lock()
	defer broken.mu.Unlock()
	if broken.calls != 1 {
		t.Errorf("a 400 was retried: %d calls", broken.calls)
	}
}

func TestDispatcherFlushesOnShutdown(t *testing.T) {
	rec := &recorder{name: "rec"}
	d := NewDispatcher(DispatcherOptions{Window: time.Hour}, rec)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = d.Run(ctx); close(done) }()
	for range 3 {
		d.Notify(Alert{Key: "k"})
	}
	waitFor(t, "first", func() bool { return len(rec.batches()) == 1 })
	time.Sleep(20 * time.Millisecond)
	cancel()
	<-done
	got := rec.batches()
	if len(got) != 2 || !got[1].Summary || got[1].Count != 2 {
		t.Errorf("batches after shutdown %+v", got)
	}
}

func TestDispatcherLogsNoSecrets(t *testing.T) {
	_, srv := newReceiver(t, 500, 500, 500)
	var logs syncBuffer
	slack, _ := NewSlack(SlackOptions{WebhookURL: srv.URL + "/services/T0/B0/TOPSECRET", Client: testClient()})
	pd, _ := NewPagerDuty(PagerDutyOptions{RoutingKey: "ROUTINGSECRET", URL: srv.URL + "/x?token=QSECRET", Client: testClient()})
	d, _ := startDispatcher(t, DispatcherOptions{Retries: 1, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, slack, pd)
	d.Notify(Alert{Key: "k", Severity: Critical})
	waitFor(t, "errors", func() bool { return strings.Count(logs.String(), "alert delivery failed") == 2 })
	for _, s := range []string{"TOPSECRET", "ROUTINGSECRET", "QSECRET"} {
		if strings.Contains(logs.String(), s) {
			t.Errorf("log contains %s: %s", s, logs.String())
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestBatchText(t *testing.T) {
	b := testBatch()
	if b.Title() != "Blocked 198.51.100.7" {
		t.Errorf("Title = %q", b.Title())
	}
	body := b.Body()
	for _, want := range []string{"Severity: critical", "heuristics/ua_list +0.60 GPTBot", "ttl 1h0m0s"} {
		if !strings.Contains(body, want) {
			t.Errorf("Body lacks %q:\n%s", want, body)
		}
	}
	b.Summary, b.Count = true, 12
	if !strings.Contains(b.Title(), "12 more") {
		t.Errorf("summary Title = %q", b.Title())
	}
}

func BenchmarkDispatcherNotify(b *testing.B) {
	d := NewDispatcher(DispatcherOptions{QueueSize: 1 << 20})
	a := Alert{Key: "198.51.100.7", Severity: Warning, Title: "t", Time: testTime}
	b.ReportAllocs()
	for b.Loop() {
		if !d.Notify(a) {
			<-d.queue
		}
	}
}

func BenchmarkDispatcherAdd(b *testing.B) {
	d := NewDispatcher(DispatcherOptions{Window: time.Hour}, &recorder{name: "r"})
	a := Alert{Key: "198.51.100.7", Severity: Warning, Title: "t", Time: testTime}
	d.add(a)
	b.ReportAllocs()
	for b.Loop() {
		d.add(a) // the suppressed path: what a flood of alerts for one client costs
	}
}

func TestDispatcherRunsOnce(t *testing.T) {
	d, _ := startDispatcher(t, DispatcherOptions{})
	waitFor(t, "running", d.running.Load)
	if err := d.Run(context.Background()); err == nil {
		t.Error("second Run succeeded")
	}
}
