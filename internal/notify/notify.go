// Package notify sends alerts about verdicts to operators: a signed JSON
// webhook, Slack, e-mail over SMTP and PagerDuty. A Dispatcher sits in
// front of the channels: it never blocks the caller, aggregates alerts per
// key (one alert per client per window, not one per request) and retries
// failed deliveries.
package notify

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/events"
)

// Severity orders alerts; channels below a dispatcher's minimum are skipped.
type Severity int

// Severities, lowest first.
const (
	Info Severity = iota
	Warning
	Critical
)

// String returns "info", "warning" or "critical".
func (s Severity) String() string {
	switch s {
	case Info:
		return "info"
	case Warning:
		return "warning"
	case Critical:
		return "critical"
	}
	return fmt.Sprintf("severity(%d)", int(s))
}

// ParseSeverity parses "info", "warning" or "critical" (any case).
func ParseSeverity(s string) (Severity, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "info":
		return Info, nil
	case "warning", "warn":
		return Warning, nil
	case "critical", "crit":
		return Critical, nil
	}
	return 0, fmt.Errorf("notify: unknown severity %q (want info, warning or critical)", s)
}

// MarshalText encodes the severity as its name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText accepts the names ParseSeverity does.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Alert is one thing worth telling an operator.
type Alert struct {
	// Key groups alerts for aggregation, typically the client IP.
	Key      string          `json:"key"`
	Severity Severity        `json:"severity"`
	Title    string          `json:"title"`
	Text     string          `json:"text,omitempty"`
	Verdict  *events.Verdict `json:"verdict,omitempty"`
	Time     time.Time       `json:"time"`
}

// Batch is what a channel delivers: either the first alert for a key in a
// window (Count 1) or the summary of the further alerts for that key when
// the window closes.
type Batch struct {
	Key      string    `json:"key"`
	Severity Severity  `json:"severity"`
	First    time.Time `json:"first"`
	Last     time.Time `json:"last"`
	// Count is the number of alerts the batch stands for; Alerts holds a
	// bounded sample of them, newest last.
	Count  int     `json:"count"`
	Alerts []Alert `json:"alerts"`
	// Summary is true for the end-of-window summary.
	Summary bool `json:"summary,omitempty"`
}

// Notifier delivers batches to one channel.
type Notifier interface {
	// Name labels the channel in metrics and logs ("slack", "webhook" …).
	Name() string
	// Send delivers one batch. Errors must not contain secrets.
	Send(ctx context.Context, b Batch) error
}

// Title is a one-line description of the batch for subjects and summaries.
func (b Batch) Title() string {
	title := ""
	if n := len(b.Alerts); n > 0 {
		title = b.Alerts[n-1].Title
	}
	if title == "" {
		title = "scrapedefense alert"
	}
	if b.Summary || b.Count > 1 {
		return fmt.Sprintf("%s (%d more for %s between %s and %s)", title, b.Count, b.Key,
			b.First.UTC().Format(time.TimeOnly), b.Last.UTC().Format(time.TimeOnly))
	}
	return title
}

// Body is a plain-text description of the batch, used by e-mail and Slack.
func (b Batch) Body() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s\nSeverity: %s\nKey: %s\n", b.Title(), b.Severity, b.Key)
	if b.Summary {
		fmt.Fprintf(&sb, "Alerts in window: %d (first %s, last %s); sample below.\n",
			b.Count, b.First.UTC().Format(time.RFC3339), b.Last.UTC().Format(time.RFC3339))
	}
	for _, a := range b.Alerts {
		fmt.Fprintf(&sb, "\n[%s] %s %s\n", a.Time.UTC().Format(time.RFC3339), a.Severity, a.Title)
		if a.Text != "" {
			sb.WriteString(a.Text)
			sb.WriteByte('\n')
		}
		if v := a.Verdict; v != nil {
			fmt.Fprintf(&sb, "Verdict: %s score %.2f for %s", v.Action, v.Score, v.ClientIP)
			if v.TTL > 0 {
				fmt.Fprintf(&sb, " (ttl %s)", v.TTL)
			}
			sb.WriteByte('\n')
			for _, r := range v.Reasons {
				fmt.Fprintf(&sb, "  - %s/%s %+.2f %s\n", r.Stage, r.Signal, r.Weight, r.Detail)
			}
		}
	}
	return sb.String()
}
