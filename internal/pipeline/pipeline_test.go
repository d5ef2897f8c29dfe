package pipeline

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scrapedefense/scrapedefense/internal/decision"
	"github.com/scrapedefense/scrapedefense/internal/events"
	"github.com/scrapedefense/scrapedefense/internal/store"
	"github.com/scrapedefense/scrapedefense/internal/store/embedded"
	"github.com/scrapedefense/scrapedefense/internal/telemetry"
)

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := embedded.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func verdict(ip, action string, ttl time.Duration) events.Verdict {
	return events.Verdict{ClientIP: ip, Action: action, Score: 0.95, TTL: ttl,
		Reasons: []events.Reason{{Stage: "behaviour", Signal: "no_assets", Weight: 2}}}
}

func TestEnforcerApply(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	var alerts []events.Verdict
	e := NewEnforcer(st, func(v events.Verdict) { alerts = append(alerts, v) }, quiet, prometheus.NewRegistry())
	ev := events.Event{Version: 1, Kind: events.KindRequest, ClientIP: "192.0.2.7", Path: "/a", Action: "allow"}

	if err := e.Apply(ctx, ev, verdict("192.0.2.7", "block", time.Hour)); err != nil {
		t.Fatal(err)
	}
	d, ok, err := st.GetDecision(ctx, "192.0.2.7")
	if err != nil || !ok || d.Action != decision.ActionBlock || d.Source != Source {
		t.Fatalf("decision = %+v, %v, %v; want a block from escalation", d, ok, err)
	}
	// The same verdict again changes nothing and sends no second alert.
	if err := e.Apply(ctx, ev, verdict("192.0.2.7", "block", time.Hour)); err != nil {
		t.Fatal(err)
	}
	if len(alerts) != 1 {
		t.Errorf("%d alerts, want 1", len(alerts))
	}
	recs, err := History(ctx, st, "192.0.2.7", 10)
	if err != nil || len(recs) != 1 || recs[0].Verdict.Action != "block" {
		t.Errorf("history = %+v, %v; want the one verdict that wrote a decision", recs, err)
	}
	audit, _ := st.ListAudit(ctx, time.Time{}, 10)
	if len(audit) != 1 || audit[0].Actor != Source {
		t.Errorf("audit = %+v, want one entry by escalation", audit)
	}

	// An operator allow decision protects the client.
	allow, _ := decision.New("198.51.100.0/24", decision.ActionAllow, "partner", "cli", time.Hour, time.Now())
	if err := st.PutDecision(ctx, allow); err != nil {
		t.Fatal(err)
	}
	if err := e.Apply(ctx, ev, verdict("198.51.100.9", "block", time.Hour)); err != nil {
		t.Fatal(err)
	}
	if d, ok, _ := st.GetDecision(ctx, "198.51.100.9"); ok {
		t.Errorf("protected client got %+v", d)
	}

	// Protected verdicts and allow verdicts write nothing.
	pv := verdict("203.0.113.1", "block", time.Hour)
	pv.Protected = "verified crawler"
	if err := e.Apply(ctx, ev, pv); err != nil {
		t.Fatal(err)
	}
	if err := e.Apply(ctx, ev, verdict("203.0.113.2", "allow", 0)); err != nil {
		t.Fatal(err)
	}
	for _, ip := range []string{"203.0.113.1", "203.0.113.2"} {
		if _, ok, _ := st.GetDecision(ctx, ip); ok {
			t.Errorf("%s got a decision", ip)
		}
	}
	// A plain allowed request is not history.
	if recs, _ := History(ctx, st, "203.0.113.2", 10); len(recs) != 0 {
		t.Errorf("allowed plain request recorded: %+v", recs)
	}
}

type scorerFunc func(events.Event) events.Verdict

func (f scorerFunc) Score(_ context.Context, ev events.Event) events.Verdict { return f(ev) }

func TestWorkersScoreQueuedEvents(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := openStore(t)
	tel := telemetry.New("escalation", telemetry.BuildInfo{})
	var mu sync.Mutex
	scored := map[string]int{}
	w := NewWorkers(WorkerOptions{
		Store: st, Workers: 2, Batch: 8, Telemetry: tel, Logger: quiet,
		Enforcer: NewEnforcer(st, nil, quiet, tel.Registerer()),
		Scorer: scorerFunc(func(ev events.Event) events.Verdict {
			mu.Lock()
			scored[ev.Path]++
			mu.Unlock()
			if ev.Path == "/bot" {
				return verdict(ev.ClientIP, "block", time.Hour)
			}
			return verdict(ev.ClientIP, "allow", 0)
		}),
	})
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()

	in := Intake{Queue: st}
	evs := []events.Event{
		{Version: 1, ClientIP: "192.0.2.1", Path: "/ok", Action: "allow"},
		{Version: 1, ClientIP: "192.0.2.2", Path: "/bot", Action: "allow"},
	}
	if err := in.Enqueue(ctx, evs); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok, _ := st.GetDecision(ctx, "192.0.2.2"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no decision after 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for time.Now().Before(deadline) {
		if n, _ := st.QueueLen(ctx, Queue); n == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n, _ := st.QueueLen(ctx, Queue); n != 0 {
		t.Errorf("queue holds %d events after scoring, want 0 (acked)", n)
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if scored["/ok"] != 1 || scored["/bot"] != 1 {
		t.Errorf("scored %v, want each event once", scored)
	}
}

func TestEnforcerLeavesEdgeVerdictsAndOperatorDecisions(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	e := NewEnforcer(st, nil, quiet, prometheus.NewRegistry())

	// The edge blocked a declared HTTP library by its user agent: no
	// address-wide decision.
	lib := events.Event{Version: 1, ClientIP: "192.0.2.30", Path: "/", UserAgent: "python-requests/2.32", Action: "block", Rule: "http-libraries"}
	if err := e.Apply(ctx, lib, verdict("192.0.2.30", "block", time.Hour)); err != nil {
		t.Fatal(err)
	}
	if d, ok, _ := st.GetDecision(ctx, "192.0.2.30"); ok {
		t.Errorf("edge-enforced verdict wrote %+v", d)
	}
	// A trap hit is different: the edge let it into the maze on purpose.
	trap := events.Event{Version: 1, Kind: events.KindTrap, ClientIP: "192.0.2.31", Path: "/t/", Action: "tarpit"}
	if err := e.Apply(ctx, trap, verdict("192.0.2.31", "block", time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := st.GetDecision(ctx, "192.0.2.31"); !ok {
		t.Error("trap verdict wrote no decision")
	}

	// An operator's challenge on the address stays.
	op, _ := decision.New("192.0.2.32", decision.ActionChallenge, "check them", "cli", time.Hour, time.Now())
	if err := st.PutDecision(ctx, op); err != nil {
		t.Fatal(err)
	}
	ev := events.Event{Version: 1, ClientIP: "192.0.2.32", Path: "/", Action: "challenge"}
	if err := e.Apply(ctx, ev, verdict("192.0.2.32", "block", time.Hour)); err != nil {
		t.Fatal(err)
	}
	if d, _, _ := st.GetDecision(ctx, "192.0.2.32"); d.Source != "cli" || d.Action != decision.ActionChallenge {
		t.Errorf("operator decision replaced by %+v", d)
	}
}

func TestEnforcerRespectsPolicyAllowByName(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	e := NewEnforcer(st, nil, quiet, prometheus.NewRegistry())
	// LinkedIn's preview fetcher names Apache-HttpClient: the heuristics say
	// library, the policy's link-previews rule says allow.
	preview := events.Event{Version: 1, ClientIP: "192.0.2.40", Path: "/", Action: "allow", Stage: "policy", Rule: "link-previews"}
	v := verdict("192.0.2.40", "block", time.Hour)
	v.Stopped = "heuristics"
	if err := e.Apply(ctx, preview, v); err != nil {
		t.Fatal(err)
	}
	if d, ok, _ := st.GetDecision(ctx, "192.0.2.40"); ok {
		t.Errorf("a policy-allowed preview got %+v", d)
	}
	// Heuristics alone, not certain (Discordbot's header order), neither.
	v.Stopped = ""
	v.Reasons = []events.Reason{{Stage: "heuristics", Signal: "library_header_order", Weight: 3.5}}
	if err := e.Apply(ctx, preview, v); err != nil {
		t.Fatal(err)
	}
	if d, ok, _ := st.GetDecision(ctx, "192.0.2.40"); ok {
		t.Errorf("heuristics alone wrote %+v", d)
	}
	// Behaviour still counts.
	v.Reasons = append(v.Reasons, events.Reason{Stage: "behaviour", Signal: "page_rate", Weight: 2})
	if err := e.Apply(ctx, preview, v); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := st.GetDecision(ctx, "192.0.2.40"); !ok {
		t.Error("a behavioural verdict on a policy-allowed client wrote no decision")
	}
}
