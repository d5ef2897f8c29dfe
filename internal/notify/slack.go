package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/scrapedefense/scrapedefense/internal/outbound"
)

// SlackOptions configure a Slack incoming webhook.
type SlackOptions struct {
	// WebhookURL is the incoming-webhook URL; it is a secret.
	WebhookURL string
	Client     *http.Client
}

// Slack posts to a Slack incoming webhook.
type Slack struct{ o SlackOptions }

// NewSlack validates the options.
func NewSlack(o SlackOptions) (*Slack, error) {
	if err := checkURL(o.WebhookURL); err != nil {
		return nil, fmt.Errorf("slack: %w", err)
	}
	if o.Client == nil {
		return nil, errors.New("slack: no HTTP client")
	}
	return &Slack{o: o}, nil
}

// Name implements Notifier.
func (s *Slack) Name() string { return "slack" }

// Slack's limits: 3000 characters per section text, 50 blocks.
const (
	slackMaxText   = 2900
	slackMaxBlocks = 12
)

type slackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type slackBlock struct {
	Type string     `json:"type"`
	Text *slackText `json:"text,omitempty"`
}

type slackMessage struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

var severityEmoji = map[Severity]string{Info: ":information_source:", Warning: ":warning:", Critical: ":rotating_light:"}

// slackEscape escapes the three characters Slack's mrkdwn treats as
// control sequences, so that alert text (attacker-influenced: user agents,
// paths) cannot ping @channel or forge links.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary.
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

func slackPayload(b Batch) slackMessage {
	title := slackEscape(b.Title())
	msg := slackMessage{Text: clip(title, slackMaxText)}
	msg.Blocks = append(msg.Blocks, slackBlock{Type: "header", Text: &slackText{Type: "plain_text", Text: clip(b.Title(), 140)}})
	msg.Blocks = append(msg.Blocks, slackBlock{Type: "section", Text: &slackText{Type: "mrkdwn",
		Text: fmt.Sprintf("%s *%s* · key `%s` · %d alert(s)", severityEmoji[b.Severity], b.Severity, clip(slackEscape(b.Key), 100), b.Count)}})
	for _, a := range b.Alerts {
		if len(msg.Blocks) >= slackMaxBlocks {
			break
		}
		var sb strings.Builder
		fmt.Fprintf(&sb, "*%s*", slackEscape(a.Title))
		if a.Text != "" {
			sb.WriteString("\n")
			sb.WriteString(slackEscape(a.Text))
		}
		if v := a.Verdict; v != nil {
			fmt.Fprintf(&sb, "\nverdict `%s` score %.2f", slackEscape(v.Action), v.Score)
			for _, r := range v.Reasons {
				fmt.Fprintf(&sb, "\n• %s/%s %+.2f", slackEscape(r.Stage), slackEscape(r.Signal), r.Weight)
			}
		}
		msg.Blocks = append(msg.Blocks, slackBlock{Type: "section", Text: &slackText{Type: "mrkdwn", Text: clip(sb.String(), slackMaxText)}})
	}
	return msg
}

// Send implements Notifier.
func (s *Slack) Send(ctx context.Context, b Batch) error {
	body, err := json.Marshal(slackPayload(b))
	if err != nil {
		return outbound.Permanent(fmt.Errorf("slack: encode: %w", err))
	}
	if _, err := outbound.PostJSON(ctx, s.o.Client, s.o.WebhookURL, body, 64<<10, nil); err != nil {
		return fmt.Errorf("slack %s: %w", outbound.RedactURL(s.o.WebhookURL), err)
	}
	return nil
}
