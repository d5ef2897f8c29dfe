package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scrapedefense/scrapedefense/internal/decision"
	"github.com/scrapedefense/scrapedefense/internal/events"
	"github.com/scrapedefense/scrapedefense/internal/store"
)

// Source is the decision source of escalation verdicts.
const Source = "escalation"

// Record is one entry of a client's history: the event and what the engine
// made of it.
type Record struct {
	Event   events.Event   `json:"event"`
	Verdict events.Verdict `json:"verdict"`
}

// Enforcer carries out verdicts: a decision through the one decision
// contract (the edge enforces it), a history record, an audit entry and an
// alert.
type Enforcer struct {
	// MazeOwnsBlocks caps verdicts on trap and tarpit hits at tarpit: the
	// tarpit's hop limit, not the first hit, decides when a bot in the
	// maze is blocked, so that it wastes its time there first. Set it when
	// a tarpit serves the maze.
	MazeOwnsBlocks bool

	store  store.Store
	alert  func(events.Verdict)
	logger *slog.Logger
	now    func() time.Time
	result *prometheus.CounterVec
}

// NewEnforcer returns an enforcer. alert may be nil.
func NewEnforcer(st store.Store, alert func(events.Verdict), logger *slog.Logger, reg prometheus.Registerer) *Enforcer {
	e := &Enforcer{store: st, alert: alert, logger: logger, now: time.Now,
		result: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verdict_actions_total",
			Help: "Verdicts carried out, by action and result: written (a decision was stored), unchanged (an equal or stronger decision was in force), protected (an allow decision or protected client), operator (an operator's decision on the address stays), edge_enforced (the edge already stopped the request as hard), policy_allowed (the policy allows the client by name and only its own request's heuristics spoke against it), error.",
		}, []string{"action", "result"}),
	}
	reg.MustRegister(e.result)
	return e
}

// Apply records the verdict and, unless it is allow or the client is
// protected, stores a decision. The history keeps what changed something
// (verdicts that wrote a decision) and the signal events (trap hits,
// challenge outcomes), not every scored request: a history write is a
// synced store commit, and events arrive at the edge's request rate.
func (e *Enforcer) Apply(ctx context.Context, ev events.Event, v events.Verdict) error {
	act, err := decision.ParseAction(v.Action)
	if err != nil {
		return fmt.Errorf("verdict: %w", err)
	}
	if e.MazeOwnsBlocks && act > decision.ActionTarpit && (ev.Kind == events.KindTrap || ev.Kind == events.KindTarpit) {
		act, v.Action = decision.ActionTarpit, decision.ActionTarpit.String()
	}
	if ev.Kind != "" && ev.Kind != events.KindRequest {
		e.appendHistory(ctx, ev, v)
	}
	if act == decision.ActionAllow {
		return nil
	}
	if v.Protected != "" {
		e.result.WithLabelValues(v.Action, "protected").Inc()
		return nil
	}
	// The edge already stopped this request as hard (a declared AI crawler
	// or HTTP library, by its user agent): an address-wide decision would
	// add nothing but collateral for people behind the same address.
	if edgeAct, err := decision.ParseAction(ev.Action); err == nil && edgeAct >= act && ev.Kind != events.KindTrap && ev.Kind != events.KindTarpit {
		e.result.WithLabelValues(v.Action, "edge_enforced").Inc()
		return nil
	}
	// The policy allowed this client by name (a link preview, say): its
	// user agent alone is the operator's call, not evidence. Behaviour
	// (a verdict that needed more than the request's own heuristics) still
	// counts, so a scraper wearing that name is still caught.
	if ev.Stage == "policy" && ev.Action == decision.ActionAllow.String() && !beyondHeuristics(v) {
		e.result.WithLabelValues(v.Action, "policy_allowed").Inc()
		return nil
	}
	now := e.now()
	cur, allowed, err := e.covering(ctx, v.ClientIP)
	if err != nil {
		e.result.WithLabelValues(v.Action, "error").Inc()
		return err
	}
	switch {
	case allowed:
		// An allow decision is an operator's (or a command's) word.
		e.result.WithLabelValues(v.Action, "protected").Inc()
		return nil
	case cur != nil && cur.Source != Source && cur.Source != "tarpit":
		// An operator's (or a command's) decision on this very address is
		// never replaced: it would be lost when ours expires.
		e.result.WithLabelValues(v.Action, "operator").Inc()
		return nil
	case cur != nil && cur.Action >= act && cur.Expires.Sub(now) > v.TTL/2:
		e.result.WithLabelValues(v.Action, "unchanged").Inc()
		return nil
	}
	d, err := decision.New(v.ClientIP, act, reasonText(v), Source, v.TTL, now)
	if err != nil {
		e.result.WithLabelValues(v.Action, "error").Inc()
		return fmt.Errorf("verdict decision: %w", err)
	}
	if err := e.store.PutDecision(ctx, d); err != nil {
		e.result.WithLabelValues(v.Action, "error").Inc()
		return fmt.Errorf("store decision: %w", err)
	}
	e.result.WithLabelValues(v.Action, "written").Inc()
	if ev.Kind == "" || ev.Kind == events.KindRequest {
		e.appendHistory(ctx, ev, v)
	}
	if err := e.store.AppendAudit(ctx, store.AuditEntry{Time: now, Actor: Source, Action: "decision.put",
		Target: d.Key(), Detail: events.Clip(fmt.Sprintf("%s for %s, score %.2f: %s", v.Action, v.TTL, v.Score, d.Reason), store.MaxAuditDetailLen)}); err != nil {
		e.logger.Warn("audit append failed", "err", err)
	}
	if e.alert != nil {
		e.alert(v)
	}
	return nil
}

// beyondHeuristics reports whether anything but the request's own looks
// (the heuristics stage) pushed the score up: behaviour, navigation, the
// grey zone.
func beyondHeuristics(v events.Verdict) bool {
	if v.Stopped == "heuristics" {
		return false
	}
	for _, r := range v.Reasons {
		if r.Weight > 0 && r.Stage != "heuristics" {
			return true
		}
	}
	return false
}

// covering returns the client's own decision and whether an allow decision
// covers the address (itself or any enclosing CIDR down to /8 or /32).
// Only verdicts that would write a decision get here, so a lookup per
// prefix length is affordable.
func (e *Enforcer) covering(ctx context.Context, ip string) (*decision.Decision, bool, error) {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return nil, false, fmt.Errorf("verdict client address: %w", err)
	}
	addr = addr.Unmap()
	minBits := 8
	if addr.Is6() {
		minBits = 32
	}
	var own *decision.Decision
	for bits := addr.BitLen(); bits >= minBits; bits-- {
		p := netip.PrefixFrom(addr, bits).Masked()
		d, ok, err := e.store.GetDecision(ctx, p.String())
		if err != nil {
			return nil, false, fmt.Errorf("read decision: %w", err)
		}
		if !ok {
			continue
		}
		if d.Action == decision.ActionAllow {
			return nil, true, nil
		}
		if bits == addr.BitLen() {
			own = &d
		}
	}
	return own, false, nil
}

func (e *Enforcer) appendHistory(ctx context.Context, ev events.Event, v events.Verdict) {
	b, err := json.Marshal(Record{Event: ev, Verdict: v})
	if err == nil && len(b) > store.MaxHistoryRecordLen {
		ev.Headers, ev.HeaderOrder, ev.Rules = nil, nil, nil
		b, err = json.Marshal(Record{Event: ev, Verdict: v})
	}
	if err == nil {
		err = e.store.AppendHistory(ctx, v.ClientIP, b)
	}
	if err != nil && ctx.Err() == nil {
		e.logger.Warn("history append failed", "client_ip", v.ClientIP, "err", err)
	}
}

// History returns a client's records, newest first.
func History(ctx context.Context, h store.History, ip string, limit int) ([]Record, error) {
	raw, err := h.ListHistory(ctx, ip, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Record, 0, len(raw))
	for _, b := range raw {
		var r Record
		if err := json.Unmarshal(b, &r); err != nil {
			continue // a record from a newer version: skip rather than fail
		}
		out = append(out, r)
	}
	return out, nil
}

// reasonText summarises the strongest reasons for the decision's Reason.
func reasonText(v events.Verdict) string {
	var b strings.Builder
	fmt.Fprintf(&b, "escalation score %.2f", v.Score)
	n := 0
	for _, r := range v.Reasons {
		if r.Weight <= 0 {
			continue
		}
		if n == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s/%s", r.Stage, r.Signal)
		if n++; n == 4 {
			break
		}
	}
	return events.Clip(b.String(), decision.MaxReasonLen)
}

// WriteHistory prints a client's records for explain, newest first.
func WriteHistory(w io.Writer, recs []Record) {
	if len(recs) == 0 {
		fmt.Fprintln(w, "\nEscalation history: none (no notable event or verdict recorded for this address)")
		return
	}
	fmt.Fprintf(w, "\nEscalation history (newest first, %d records):\n", len(recs))
	for _, r := range recs {
		ev, v := r.Event, r.Verdict
		kind := string(ev.Kind)
		if kind == "" {
			kind = string(events.KindRequest)
		}
		fmt.Fprintf(w, "  %s  %-9s score %.2f  %s %s %q", v.Time.UTC().Format(time.RFC3339), v.Action, v.Score, kind, ev.Method, ev.Path)
		if ev.Status != 0 {
			fmt.Fprintf(w, " → %d", ev.Status)
		}
		fmt.Fprintln(w)
		if v.Protected != "" {
			fmt.Fprintf(w, "      protected: %s\n", v.Protected)
		}
		for _, reason := range v.Reasons {
			if reason.Weight == 0 {
				continue
			}
			fmt.Fprintf(w, "      %+.2f %s/%s", reason.Weight, reason.Stage, reason.Signal)
			if reason.Detail != "" {
				fmt.Fprintf(w, " (%s)", reason.Detail)
			}
			fmt.Fprintln(w)
		}
	}
}
