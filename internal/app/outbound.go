package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scrapedefense/scrapedefense/internal/classifier"
	"github.com/scrapedefense/scrapedefense/internal/config"
	"github.com/scrapedefense/scrapedefense/internal/escalation"
	"github.com/scrapedefense/scrapedefense/internal/events"
	"github.com/scrapedefense/scrapedefense/internal/notify"
	"github.com/scrapedefense/scrapedefense/internal/outbound"
	"github.com/scrapedefense/scrapedefense/internal/telemetry"
)

// newDispatcher builds the alert channels the configuration enables; it
// returns nil when none is.
func newDispatcher(cfg config.Alerts, tel *telemetry.Telemetry, logger *slog.Logger) (*notify.Dispatcher, error) {
	policy := outbound.Policy{AllowPrivate: cfg.AllowPrivate}
	client := outbound.NewClient(outbound.Options{Policy: policy})
	var ns []notify.Notifier
	add := func(n notify.Notifier, err error) error {
		if err == nil {
			ns = append(ns, n)
		}
		return err
	}
	if cfg.Webhook.URL != "" {
		secret, err := config.ReadSecret(cfg.Webhook.SecretFile)
		if err == nil {
			err = add(notify.NewWebhook(notify.WebhookOptions{URL: cfg.Webhook.URL, Secret: []byte(secret), Client: client}))
		}
		if err != nil {
			return nil, fmt.Errorf("alerts.webhook: %w", err)
		}
	}
	if cfg.Slack.URLFile != "" {
		u, err := config.ReadSecret(cfg.Slack.URLFile)
		if err == nil {
			err = add(notify.NewSlack(notify.SlackOptions{WebhookURL: u, Client: client}))
		}
		if err != nil {
			return nil, fmt.Errorf("alerts.slack: %w", err)
		}
	}
	if s := cfg.SMTP; s.Addr != "" {
		host, portStr, _ := net.SplitHostPort(s.Addr)
		port, _ := strconv.Atoi(portStr)
		var password string
		if s.PasswordFile != "" {
			p, err := config.ReadSecret(s.PasswordFile)
			if err != nil {
				return nil, fmt.Errorf("alerts.smtp.password_file: %w", err)
			}
			password = p
		}
		mode := notify.SMTPStartTLS
		if s.InsecureNoTLS {
			mode = notify.SMTPNoTLS
		}
		if err := add(notify.NewSMTP(notify.SMTPOptions{Host: host, Port: port, TLS: mode, Username: s.Username,
			Password: password, From: s.From, To: s.To, Policy: policy})); err != nil {
			return nil, fmt.Errorf("alerts.smtp: %w", err)
		}
	}
	if cfg.PagerDuty.RoutingKeyFile != "" {
		key, err := config.ReadSecret(cfg.PagerDuty.RoutingKeyFile)
		if err == nil {
			err = add(notify.NewPagerDuty(notify.PagerDutyOptions{RoutingKey: key, URL: cfg.PagerDuty.URL, Client: client}))
		}
		if err != nil {
			return nil, fmt.Errorf("alerts.pagerduty: %w", err)
		}
	}
	if len(ns) == 0 {
		return nil, nil
	}
	sev, err := notify.ParseSeverity(cfg.MinSeverity)
	if err != nil {
		return nil, fmt.Errorf("alerts.min_severity: %w", err)
	}
	return notify.NewDispatcher(notify.DispatcherOptions{
		MinSeverity: sev, Window: cfg.Window, Logger: logger,
		Registerer: tel.Registerer(), QueueLength: tel.QueueLength("alerts"),
	}, ns...), nil
}

// verdictAlert turns an enforced verdict into an alert: a block pages
// someone, a tarpit is a warning, the rest are information.
func verdictAlert(v events.Verdict) notify.Alert {
	sev := notify.Info
	switch v.Action {
	case "block":
		sev = notify.Critical
	case "tarpit":
		sev = notify.Warning
	}
	text := fmt.Sprintf("%s %s (score %.2f, decision for %s)", v.Action, v.ClientIP, v.Score, v.TTL)
	for i, r := range v.Reasons {
		if i == 5 {
			break
		}
		text += fmt.Sprintf("\n  %+.2f %s/%s", r.Weight, r.Stage, r.Signal)
	}
	return notify.Alert{Key: v.ClientIP, Severity: sev, Title: "scrapedefense: " + v.Action + " " + v.ClientIP,
		Text: text, Verdict: &v, Time: v.Time}
}

// newGreyZone builds the optional classifier for grey-zone scores.
func newGreyZone(cfg config.Classifier, reg prometheus.Registerer) (escalation.GreyZone, error) {
	if cfg.Kind == "" || cfg.Kind == "none" {
		return nil, nil
	}
	client := outbound.NewClient(outbound.Options{Policy: outbound.Policy{AllowPrivate: cfg.AllowPrivate}, Timeout: cfg.Budget + time.Second})
	var key string
	if cfg.APIKeyFile != "" {
		k, err := config.ReadSecret(cfg.APIKeyFile)
		if err != nil {
			return nil, fmt.Errorf("escalation.classifier.api_key_file: %w", err)
		}
		key = k
	}
	var c classifier.Classifier
	var err error
	switch cfg.Kind {
	case "openai":
		c, err = classifier.NewOpenAI(classifier.OpenAIOptions{BaseURL: cfg.URL, APIKey: key, Model: cfg.Model, Client: client,
			PricePer1KPromptTokens: cfg.PricePer1K, PricePer1KCompletionTokens: cfg.PricePer1K})
	case "http":
		c, err = classifier.NewHTTP(classifier.HTTPOptions{URL: cfg.URL, BearerToken: key, Client: client})
	default:
		err = fmt.Errorf("unknown kind %q", cfg.Kind)
	}
	if err != nil {
		return nil, fmt.Errorf("escalation.classifier: %w", err)
	}
	return greyZone{classifier.Guard(c, classifier.GuardOptions{Budget: cfg.Budget, MaxConcurrent: cfg.MaxConcurrent, Registerer: reg})}, nil
}

// greyZone adapts a classifier to the engine's GreyZone.
type greyZone struct{ c classifier.Classifier }

func (g greyZone) Classify(ctx context.Context, q escalation.GreyQuery) (escalation.GreyOpinion, error) {
	op, err := g.c.Classify(ctx, classifier.Query{Event: q.Event, Score: q.Score, Reasons: q.Reasons})
	return escalation.GreyOpinion{Bot: op.Bot, Reason: op.Reason}, err
}
