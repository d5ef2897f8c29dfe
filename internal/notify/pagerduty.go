package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/outbound"
)

// DefaultPagerDutyURL is the Events API v2 endpoint.
const DefaultPagerDutyURL = "https://events.pagerduty.com/v2/enqueue"

// PagerDutyOptions configure the PagerDuty Events API v2 channel.
type PagerDutyOptions struct {
	// RoutingKey is the integration key of the service; it is a secret.
	RoutingKey string
	// URL defaults to DefaultPagerDutyURL.
	URL string
	// Source names the affected system in incidents (default
	// "scrapedefense").
	Source string
	Client *http.Client
}

// PagerDuty triggers PagerDuty incidents. The dedup key is the alert key,
// so that PagerDuty folds repeated alerts for a client into one incident.
type PagerDuty struct{ o PagerDutyOptions }

// NewPagerDuty validates the options.
func NewPagerDuty(o PagerDutyOptions) (*PagerDuty, error) {
	if o.URL == "" {
		o.URL = DefaultPagerDutyURL
	}
	if o.Source == "" {
		o.Source = "scrapedefense"
	}
	if o.RoutingKey == "" {
		return nil, errors.New("pagerduty: routing key is required")
	}
	if err := checkURL(o.URL); err != nil {
		return nil, fmt.Errorf("pagerduty: %w", err)
	}
	if o.Client == nil {
		return nil, errors.New("pagerduty: no HTTP client")
	}
	return &PagerDuty{o: o}, nil
}

// Name implements Notifier.
func (p *PagerDuty) Name() string { return "pagerduty" }

type pdEvent struct {
	RoutingKey  string    `json:"routing_key"`
	EventAction string    `json:"event_action"`
	DedupKey    string    `json:"dedup_key,omitempty"`
	Payload     pdPayload `json:"payload"`
}

type pdPayload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source"`
	Severity      string         `json:"severity"`
	Timestamp     string         `json:"timestamp"`
	Component     string         `json:"component,omitempty"`
	CustomDetails map[string]any `json:"custom_details,omitempty"`
}

func pdSeverity(s Severity) string {
	switch s {
	case Critical:
		return "critical"
	case Warning:
		return "warning"
	}
	return "info"
}

func (p *PagerDuty) event(b Batch) pdEvent {
	details := map[string]any{"key": b.Key, "count": b.Count, "first": b.First, "last": b.Last, "summary": b.Summary}
	if n := len(b.Alerts); n > 0 {
		last := b.Alerts[n-1]
		if last.Text != "" {
			details["text"] = clip(last.Text, 2000)
		}
		if last.Verdict != nil {
			details["verdict"] = last.Verdict
		}
	}
	dedup := ""
	if b.Key != "" {
		dedup = clip("scrapedefense:"+b.Key, 255)
	}
	return pdEvent{
		RoutingKey:  p.o.RoutingKey,
		EventAction: "trigger",
		DedupKey:    dedup,
		Payload: pdPayload{
			Summary:       clip(b.Title(), 1000), // PagerDuty's limit is 1024
			Source:        p.o.Source,
			Severity:      pdSeverity(b.Severity),
			Timestamp:     b.Last.UTC().Format(time.RFC3339Nano),
			Component:     "escalation",
			CustomDetails: details,
		},
	}
}

// Send implements Notifier.
func (p *PagerDuty) Send(ctx context.Context, b Batch) error {
	body, err := json.Marshal(p.event(b))
	if err != nil {
		return outbound.Permanent(fmt.Errorf("pagerduty: encode: %w", err))
	}
	if _, err := outbound.PostJSON(ctx, p.o.Client, p.o.URL, body, 64<<10, nil); err != nil {
		return fmt.Errorf("pagerduty: %w", err)
	}
	return nil
}
