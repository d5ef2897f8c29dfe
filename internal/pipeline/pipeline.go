// Package pipeline carries events from the intake to enforced verdicts: it
// puts events on the durable escalation queue, runs the workers that score
// them, and turns verdicts into decisions, history and alerts.
package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/events"
	"github.com/scrapedefense/scrapedefense/internal/store"
)

// Queue is the name of the durable escalation queue in the store.
const Queue = "escalation"

// Scorer scores one event (the escalation engine).
type Scorer interface {
	Score(ctx context.Context, ev events.Event) events.Verdict
}

// envelope is a queued event with its arrival time, from which the
// queue-to-verdict latency is measured.
type envelope struct {
	Received time.Time    `json:"received"`
	Event    events.Event `json:"event"`
}

// Intake puts events on the durable queue.
type Intake struct {
	Queue store.Queue
}

// Enqueue encodes evs and appends them in one durable batch (the store
// limits a batch, so large ones are split).
func (in Intake) Enqueue(ctx context.Context, evs []events.Event) error {
	for len(evs) > 0 {
		n := min(len(evs), store.MaxEnqueueBatch)
		payloads := make([][]byte, n)
		now := time.Now()
		for i := range payloads {
			b, err := json.Marshal(envelope{Received: now, Event: evs[i]})
			if err != nil {
				return fmt.Errorf("encode event: %w", err)
			}
			payloads[i] = b
		}
		if err := in.Queue.Enqueue(ctx, Queue, payloads...); err != nil {
			return err
		}
		evs = evs[n:]
	}
	return nil
}
