package escalation

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/events"
)

// score sets the clock to the event's time and scores it.
func score(e *Engine, clock *fakeClock, ev events.Event) events.Verdict {
	clock.mu.Lock()
	clock.now = ev.Time
	clock.mu.Unlock()
	return e.Score(context.Background(), ev)
}

func TestStealthScraperReachesBlock(t *testing.T) {
	clock := newFakeClock()
	e, reg := newTestEngine(t, clock, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	now := clock.Now()
	blockedAt := 0
	var last events.Verdict
	for i := 1; i <= 30; i++ {
		path := fmt.Sprintf("/articles/%d", 1000+i)
		ev := chromePage("203.0.113.7", path, "", now)
		if i%4 == 0 {
			ev.Path = fmt.Sprintf("/private/%d", i)
			ev.RobotsDisallowed = true
		}
		last = score(e, clock, ev)
		if last.Action == ActionBlock {
			blockedAt = i
			break
		}
		now = now.Add(200*time.Millisecond + time.Duration(rng.IntN(40)-20)*time.Millisecond)
	}
	if blockedAt == 0 {
		t.Fatalf("stealth scraper not blocked within 30 events; last verdict %+v", last)
	}
	t.Logf("blocked at event %d with score %.3f, reasons %v", blockedAt, last.Score, last.Reasons)
	if blockedAt < 5 {
		t.Errorf("blocked at event %d: too quick to be backed by behaviour", blockedAt)
	}
	if last.TTL != DefaultTTLs.Block {
		t.Errorf("TTL = %v, want the base block TTL %v", last.TTL, DefaultTTLs.Block)
	}
	if got := counterValue(t, reg, "escalation_verdicts_total", map[string]string{"action": "block"}); got != 1 {
		t.Errorf("escalation_verdicts_total{action=block} = %v, want 1", got)
	}
}

// runPeople plays n visitors in one /24 for pages page views each,
// interleaved in time, and returns the highest score and any non-allow
// verdict.
func runPeople(t *testing.T, e *Engine, clock *fakeClock, n, pages int) (maxScore float64) {
	t.Helper()
	type visitor struct {
		p    *person
		next time.Time
		left int
	}
	start := clock.Now()
	vs := make([]*visitor, n)
	for i := range vs {
		vs[i] = &visitor{p: newPerson(fmt.Sprintf("198.51.100.%d", 10+i), uint64(i+1)), next: start.Add(time.Duration(i) * 700 * time.Millisecond), left: pages}
	}
	for {
		var v *visitor
		for _, c := range vs {
			if c.left > 0 && (v == nil || c.next.Before(v.next)) {
				v = c
			}
		}
		if v == nil {
			return maxScore
		}
		evs, read := v.p.next(v.next)
		for _, ev := range evs {
			verdict := score(e, clock, ev)
			maxScore = max(maxScore, verdict.Score)
			if verdict.Action != ActionAllow {
				t.Fatalf("person %s page %d (%s): %s, score %.3f, reasons %+v",
					ev.ClientIP, pages-v.left+1, ev.Path, verdict.Action, verdict.Score, verdict.Reasons)
			}
		}
		v.left--
		v.next = evs[len(evs)-1].Time.Add(read)
	}
}

func TestPersonStaysAllowed(t *testing.T) {
	clock := newFakeClock()
	e, _ := newTestEngine(t, clock, nil)
	t.Logf("max score over 200 pages: %.3f", runPeople(t, e, clock, 1, 200))
}

func TestPeopleSharingSubnetStayAllowed(t *testing.T) {
	clock := newFakeClock()
	e, _ := newTestEngine(t, clock, func(o *Options) { o.NavMinObservations = 200 })
	t.Logf("max score, 6 people in one /24: %.3f", runPeople(t, e, clock, 6, 200))
	if !e.nav.ready(200) {
		t.Error("navigation model did not learn from the visitors")
	}
}

func TestDeclaredLibraryBlockedAtOnce(t *testing.T) {
	for _, ua := range []string{"python-requests/2.32.3", "curl/8.5.0", "Go-http-client/1.1", "Scrapy/2.11 (+https://scrapy.org)", "node", ""} {
		t.Run(ua, func(t *testing.T) {
			clock := newFakeClock()
			e, reg := newTestEngine(t, clock, nil)
			ev := events.Event{Time: clock.Now(), ClientIP: "192.0.2.1", Method: "GET", Path: "/", UserAgent: ua,
				HeaderOrder: []string{"host", "user-agent", "accept-encoding", "accept", "connection"}}
			v := e.Score(context.Background(), ev)
			if v.Action != ActionBlock || v.Stopped != StageHeuristics || v.Score != 1 {
				t.Fatalf("verdict %+v, want block stopped at heuristics", v)
			}
			if len(v.Reasons) == 0 || v.Reasons[0].Signal != "declared_library" {
				t.Errorf("reasons %+v, want declared_library first", v.Reasons)
			}
			if got := counterValue(t, reg, "escalation_stage_stopped_total", map[string]string{"stage": StageHeuristics}); got != 1 {
				t.Errorf("escalation_stage_stopped_total = %v, want 1", got)
			}
		})
	}
}

func TestTrapHitIsCertain(t *testing.T) {
	clock := newFakeClock()
	e, _ := newTestEngine(t, clock, nil)
	ev := chromePage("192.0.2.9", "/trap/abc", "", clock.Now())
	ev.Kind = events.KindTrap
	if v := e.Score(context.Background(), ev); v.Action != ActionBlock || v.Stopped != StageHeuristics {
		t.Fatalf("trap hit: %+v", v)
	}
	// The hit stays in the client's history: its next ordinary page scores.
	clock.Advance(time.Second)
	v := e.Score(context.Background(), chromePage("192.0.2.9", "/", "", clock.Now()))
	if v.Action == ActionAllow {
		t.Errorf("page after a trap hit allowed: %+v", v)
	}
}

func TestVerifiedCrawlerProtected(t *testing.T) {
	clock := newFakeClock()
	e, _ := newTestEngine(t, clock, nil)
	now := clock.Now()
	maxScore := 0.0
	for i := range 100 {
		ev := events.Event{Time: now, ClientIP: "66.249.66.1", Method: "GET", Path: fmt.Sprintf("/articles/%d", i),
			UserAgent:   "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
			Headers:     map[string]string{"Accept": "*/*"},
			HeaderOrder: []string{"host", "connection", "user-agent", "accept", "accept-encoding"},
			Crawler:     "googlebot", CrawlerVerified: true}
		v := score(e, clock, ev)
		if v.Action != ActionAllow || v.Protected == "" || v.TTL != 0 {
			t.Fatalf("event %d: %+v, want allow with Protected", i, v)
		}
		maxScore = max(maxScore, v.Score)
		now = now.Add(50 * time.Millisecond)
	}
	if maxScore < 0.9 {
		t.Errorf("fast crawler peaked at %.3f; the score should still show what it does", maxScore)
	}
}

func TestProtectedHook(t *testing.T) {
	clock := newFakeClock()
	trusted := netip.MustParseAddr("10.0.0.1")
	e, _ := newTestEngine(t, clock, func(o *Options) {
		o.Protected = func(ip netip.Addr) string {
			if ip == trusted {
				return "trusted proxy"
			}
			return ""
		}
	})
	ev := events.Event{Time: clock.Now(), ClientIP: "10.0.0.1", Path: "/", UserAgent: "curl/8"}
	if v := e.Score(context.Background(), ev); v.Action != ActionAllow || v.Protected != "trusted proxy" {
		t.Errorf("protected client: %+v", v)
	}
	ev.ClientIP = "10.0.0.2"
	if v := e.Score(context.Background(), ev); v.Action != ActionBlock {
		t.Errorf("unprotected client: %+v", v)
	}
}

func TestRepeatOffenderTTLGrows(t *testing.T) {
	clock := newFakeClock()
	e, _ := newTestEngine(t, clock, func(o *Options) { o.MaxTTL = 10 * time.Hour })
	ev := events.Event{ClientIP: "192.0.2.50", Path: "/", UserAgent: "curl/8"}
	var ttls []time.Duration
	var offences []int
	for range 5 {
		ev.Time = clock.Now()
		v := e.Score(context.Background(), ev)
		// A second event in the same burst is the same offence.
		if w := e.Score(context.Background(), ev); w.TTL != v.TTL {
			t.Errorf("same burst: TTL %v then %v", v.TTL, w.TTL)
		}
		ttls = append(ttls, v.TTL)
		offences = append(offences, v.Offences)
		clock.Advance(time.Hour)
	}
	want := []time.Duration{4 * time.Hour, 8 * time.Hour, 10 * time.Hour, 10 * time.Hour, 10 * time.Hour}
	for i := range want {
		if ttls[i] != want[i] || offences[i] != i {
			t.Errorf("offence %d: TTL %v offences %d, want %v and %d", i, ttls[i], offences[i], want[i], i)
		}
	}
}

// hangingGreyZone ignores its context until the test ends.
type hangingGreyZone struct{ release chan struct{} }

func (h hangingGreyZone) Classify(context.Context, GreyQuery) (GreyOpinion, error) {
	<-h.release
	return GreyOpinion{Bot: 1}, nil
}

type fixedGreyZone struct{ bot float64 }

func (f fixedGreyZone) Classify(_ context.Context, q GreyQuery) (GreyOpinion, error) {
	if len(q.Reasons) == 0 && q.Score == 0 {
		return GreyOpinion{}, fmt.Errorf("empty query")
	}
	return GreyOpinion{Bot: f.bot, Reason: "looks automated"}, nil
}

// middleModel scores every event 0.5, inside the grey band.
func middleModel(t *testing.T) *Model {
	t.Helper()
	m, err := newModel(modelFile{Version: "test", Features: []string{"probe_path"}, Weights: []float64{0}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestGreyZoneTimeoutLeavesVerdictToOtherStages(t *testing.T) {
	clock := newFakeClock()
	hang := hangingGreyZone{release: make(chan struct{})}
	t.Cleanup(func() { close(hang.release) })
	const budget = 50 * time.Millisecond
	e, reg := newTestEngine(t, clock, func(o *Options) {
		o.GreyZone, o.GreyBudget, o.Model = hang, budget, middleModel(t)
	})
	start := time.Now()
	v := e.Score(context.Background(), chromePage("192.0.2.77", "/", "", clock.Now()))
	if took := time.Since(start); took > budget+250*time.Millisecond {
		t.Errorf("Score took %v with a %v budget", took, budget)
	}
	if v.Action != ActionChallenge || v.Score != 0.5 {
		t.Errorf("verdict %+v, want the model's challenge at 0.5", v)
	}
	if got := counterValue(t, reg, "escalation_greyzone_total", map[string]string{"result": "timeout"}); got != 1 {
		t.Errorf("escalation_greyzone_total{result=timeout} = %v, want 1", got)
	}
}

func TestGreyZoneOpinionBlended(t *testing.T) {
	clock := newFakeClock()
	e, reg := newTestEngine(t, clock, func(o *Options) { o.GreyZone, o.Model = fixedGreyZone{bot: 1}, middleModel(t) })
	v := e.Score(context.Background(), chromePage("192.0.2.78", "/", "", clock.Now()))
	if v.Score != 0.75 || v.Action != ActionThrottle {
		t.Errorf("verdict %+v, want score 0.75 (throttle)", v)
	}
	last := v.Reasons[len(v.Reasons)-1]
	if last.Stage != StageGreyZone || last.Detail != "looks automated" {
		t.Errorf("last reason %+v, want the grey zone's", last)
	}
	if got := counterValue(t, reg, "escalation_greyzone_total", map[string]string{"result": "ok"}); got != 1 {
		t.Errorf("escalation_greyzone_total{result=ok} = %v, want 1", got)
	}
}

// TestGreyZoneLaterDoesNotWait: with OnGreyVerdict set, Score answers from
// the other stages at once, and an opinion that changes the action arrives
// as a refined verdict; a hanging classifier delays nothing.
func TestGreyZoneLaterDoesNotWait(t *testing.T) {
	clock := newFakeClock()
	refined := make(chan events.Verdict, 1)
	e, _ := newTestEngine(t, clock, func(o *Options) {
		o.GreyZone, o.Model = fixedGreyZone{bot: 1}, middleModel(t)
		o.OnGreyVerdict = func(_ events.Event, v events.Verdict) { refined <- v }
	})
	v := e.Score(context.Background(), chromePage("192.0.2.90", "/", "", clock.Now()))
	if v.Score != 0.5 || v.Action != ActionChallenge {
		t.Errorf("immediate verdict %+v, want the model's challenge at 0.5", v)
	}
	select {
	case r := <-refined:
		if r.Score != 0.75 || r.Action != ActionThrottle || r.TTL == 0 {
			t.Errorf("refined verdict %+v, want throttle at 0.75 with a TTL", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no refined verdict")
	}
	// ScoreWait still blends before answering.
	if v := e.ScoreWait(context.Background(), chromePage("192.0.2.91", "/", "", clock.Now())); v.Score != 0.75 {
		t.Errorf("ScoreWait verdict %+v, want the blended 0.75", v)
	}

	hang := hangingGreyZone{release: make(chan struct{})}
	e2, _ := newTestEngine(t, clock, func(o *Options) {
		o.GreyZone, o.GreyBudget, o.Model = hang, 50*time.Millisecond, middleModel(t)
		o.OnGreyVerdict = func(events.Event, events.Verdict) { t.Error("a hanging classifier produced a verdict") }
	})
	start := time.Now()
	e2.Score(context.Background(), chromePage("192.0.2.92", "/", "", clock.Now()))
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("Score took %v with a hanging classifier", took)
	}
	// An answer after the budget is a timeout, not a verdict.
	time.Sleep(100 * time.Millisecond)
	close(hang.release)
	time.Sleep(20 * time.Millisecond)
}

func TestSetModelHotSwap(t *testing.T) {
	clock := newFakeClock()
	var versions []string
	e, _ := newTestEngine(t, clock, func(o *Options) { o.OnModel = func(v string) { versions = append(versions, v) } })
	ev := chromePage("192.0.2.80", "/", "", clock.Now())
	if v := e.Score(context.Background(), ev); v.ModelVersion != DefaultModel().Version() {
		t.Errorf("model version %q", v.ModelVersion)
	}
	e.SetModel(middleModel(t))
	if v := e.Score(context.Background(), ev); v.ModelVersion != "test" || v.Score != 0.5 {
		t.Errorf("after swap: %+v", v)
	}
	if len(versions) != 2 || versions[1] != "test" {
		t.Errorf("OnModel calls %v", versions)
	}
}

func TestOptionsValidation(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Options)
	}{
		{"thresholds out of order", func(o *Options) { o.Thresholds = Thresholds{Challenge: 0.8, Throttle: 0.7, Tarpit: 0.9, Block: 0.95} }},
		{"block above 1", func(o *Options) { o.Thresholds = Thresholds{Challenge: 0.5, Throttle: 0.6, Tarpit: 0.7, Block: 1.5} }},
		{"growth below 1", func(o *Options) { o.TTLGrowth = 0.5 }},
		{"grey band inverted", func(o *Options) { o.GreyLow, o.GreyHigh = 0.8, 0.4 }},
		{"negative window", func(o *Options) { o.Window = -time.Second }},
		{"negative max ips", func(o *Options) { o.MaxIPs = -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o Options
			tt.mod(&o)
			if _, err := New(o); err == nil {
				t.Error("New accepted invalid options")
			}
		})
	}
}

func TestWindowEvictionBounded(t *testing.T) {
	clock := newFakeClock()
	e, reg := newTestEngine(t, clock, func(o *Options) { o.MaxIPs, o.Shards = 256, 4 })
	for i := range 2000 {
		ev := chromePage(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String(), "/", "", clock.Now())
		e.Score(context.Background(), ev)
	}
	if n := e.ips.entries.Load(); n > 256 {
		t.Errorf("%d IP entries, limit 256", n)
	}
	if got := counterValue(t, reg, "escalation_window_evictions_total", map[string]string{"window": "ip"}); got < 2000-256 {
		t.Errorf("evictions = %v, want at least %d", got, 2000-256)
	}
	if got := counterValue(t, reg, "escalation_window_entries", map[string]string{"window": "ip"}); got != 256 {
		t.Errorf("escalation_window_entries{window=ip} = %v, want 256", got)
	}
}

// A returning visitor with a warm cache loads no assets; at reading pace
// that alone must not ban them.
func TestWarmCacheVisitorAllowed(t *testing.T) {
	clock := newFakeClock()
	e, _ := newTestEngine(t, clock, nil)
	now := clock.Now()
	rng := rand.New(rand.NewPCG(11, 12))
	for i := range 60 {
		v := score(e, clock, chromePage("198.51.100.200", fmt.Sprintf("/articles/%d", rng.IntN(3000)), "", now))
		if v.Action != ActionAllow {
			t.Fatalf("page %d: %s at %.3f, reasons %+v", i, v.Action, v.Score, v.Reasons)
		}
		now = now.Add(3*time.Second + time.Duration(rng.Int64N(int64(7*time.Second))))
	}
}

func TestScoreConcurrent(t *testing.T) {
	clock := newFakeClock()
	e, _ := newTestEngine(t, clock, func(o *Options) { o.NavMinObservations = 10 })
	evs := mixedEvents(4000)
	done := make(chan struct{})
	for w := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := w; i < len(evs); i += 4 {
				e.Score(context.Background(), evs[i])
			}
		}()
	}
	for range 4 {
		<-done
	}
}
