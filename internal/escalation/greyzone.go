package escalation

import (
	"context"
	"errors"
	"net/netip"
	"strings"

	"github.com/scrapedefense/scrapedefense/internal/events"
)

// GreyZone is a slower second opinion (an LLM or an external classifier)
// asked only about scores in the grey band, within a time budget.
type GreyZone interface {
	Classify(ctx context.Context, q GreyQuery) (GreyOpinion, error)
}

// GreyQuery is what the grey zone is asked about.
type GreyQuery struct {
	Event   events.Event
	Score   float64
	Reasons []events.Reason
}

// GreyOpinion is the grey zone's answer: Bot is a probability in [0, 1].
type GreyOpinion struct {
	Bot    float64
	Reason string
}

// Grey-zone outcomes, the result label of escalation_greyzone_total.
const (
	greyOK      = "ok"
	greyTimeout = "timeout"
	greyError   = "error"
	greyBusy    = "busy"
	greyInvalid = "invalid"
)

const maxGreyReason = 200

// greyAnswer is the outcome of one grey-zone call.
type greyAnswer struct {
	op  GreyOpinion
	err error
}

// askGreyZone asks within the budget and blends the opinion into v. The
// call runs in its own goroutine so that a classifier which ignores its
// context still cannot hold the verdict past the budget; the in-flight
// limit bounds how many such calls can pile up.
func (e *Engine) askGreyZone(ctx context.Context, ev *events.Event, v *events.Verdict) {
	if !e.takeGreySlot() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, e.opts.GreyBudget)
	defer cancel()
	done := make(chan greyAnswer, 1)
	q := GreyQuery{Event: *ev, Score: v.Score, Reasons: append([]events.Reason(nil), v.Reasons...)}
	go func() {
		defer func() { <-e.greySlots }()
		op, err := e.opts.GreyZone.Classify(ctx, q)
		done <- greyAnswer{op, err}
	}()
	var a greyAnswer
	select {
	case a = <-done:
	case <-ctx.Done():
		a.err = ctx.Err()
	}
	e.blend(ev, v, a)
}

// askGreyZoneLater asks in the background and reports a verdict whose
// action the opinion changed to Options.OnGreyVerdict. v is the verdict
// already returned; the refined one is a copy.
func (e *Engine) askGreyZoneLater(ev events.Event, v events.Verdict, addr netip.Addr) {
	if !e.takeGreySlot() {
		return
	}
	q := GreyQuery{Event: ev, Score: v.Score, Reasons: append([]events.Reason(nil), v.Reasons...)}
	go func() {
		defer func() { <-e.greySlots }()
		ctx, cancel := context.WithTimeout(context.Background(), e.opts.GreyBudget)
		defer cancel()
		op, err := e.opts.GreyZone.Classify(ctx, q)
		if err == nil && ctx.Err() != nil {
			err = ctx.Err() // answered, but past the budget
		}
		refined := v
		refined.Reasons = q.Reasons
		if !e.blend(&ev, &refined, greyAnswer{op, err}) {
			return
		}
		e.settle(&refined, addr, "")
		if refined.Action != v.Action {
			e.opts.OnGreyVerdict(ev, refined)
		}
	}()
}

func (e *Engine) takeGreySlot() bool {
	select {
	case e.greySlots <- struct{}{}:
		return true
	default:
		e.m.grey[greyBusy].Inc()
		return false
	}
}

// blend counts the outcome and, for a valid opinion, blends it into v and
// reports true.
func (e *Engine) blend(ev *events.Event, v *events.Verdict, a greyAnswer) bool {
	switch {
	case errors.Is(a.err, context.DeadlineExceeded):
		e.m.grey[greyTimeout].Inc()
		return false
	case a.err != nil:
		e.m.grey[greyError].Inc()
		e.opts.Logger.Debug("grey zone failed", "client_ip", ev.ClientIP, "err", a.err)
		return false
	case !(a.op.Bot >= 0 && a.op.Bot <= 1):
		e.m.grey[greyInvalid].Inc()
		return false
	}
	e.m.grey[greyOK].Inc()
	blended := (1-e.opts.GreyWeight)*v.Score + e.opts.GreyWeight*a.op.Bot
	reason := a.op.Reason
	if len(reason) > maxGreyReason {
		reason = strings.ToValidUTF8(reason[:maxGreyReason], "")
	}
	// The grey zone's weight is its change to the score (probability
	// units), unlike the model's logit contributions.
	v.Reasons = append(v.Reasons, events.Reason{Stage: StageGreyZone, Signal: "opinion", Weight: blended - v.Score, Detail: reason})
	v.Score = blended
	return true
}
