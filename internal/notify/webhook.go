package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/hmacsig"
	"github.com/scrapedefense/scrapedefense/internal/outbound"
)

// WebhookOptions configure a generic JSON webhook.
type WebhookOptions struct {
	// URL receives a POST with the batch as JSON.
	URL string
	// Secret signs the body (header X-Scrapedefense-Signature, see
	// package hmacsig). Empty sends unsigned requests.
	Secret []byte
	// Client is the HTTP client; use one from outbound.NewClient.
	Client *http.Client
	// Now is the clock used for signatures (default time.Now).
	Now func() time.Time
}

// Webhook posts batches as JSON:
//
//	{"source":"scrapedefense","batch":{...Batch...}}
type Webhook struct{ o WebhookOptions }

// NewWebhook checks the URL with the client's policy left to the dialer.
func NewWebhook(o WebhookOptions) (*Webhook, error) {
	if err := checkURL(o.URL); err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	if o.Client == nil {
		return nil, errors.New("webhook: no HTTP client")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Webhook{o: o}, nil
}

// checkURL checks only the form: addresses are the dialer's business, so a
// private receiver allowed by the client's policy still works.
func checkURL(raw string) error {
	return outbound.Policy{AllowPrivate: true}.CheckURL(raw)
}

// Name implements Notifier.
func (w *Webhook) Name() string { return "webhook" }

type webhookPayload struct {
	Source string `json:"source"`
	Batch  Batch  `json:"batch"`
}

// Send implements Notifier.
func (w *Webhook) Send(ctx context.Context, b Batch) error {
	body, err := json.Marshal(webhookPayload{Source: "scrapedefense", Batch: b})
	if err != nil {
		return outbound.Permanent(fmt.Errorf("webhook: encode: %w", err))
	}
	var hdr http.Header
	if len(w.o.Secret) > 0 {
		hdr = http.Header{hmacsig.Header: {hmacsig.Sign(w.o.Secret, w.o.Now(), body)}}
	}
	if _, err := outbound.PostJSON(ctx, w.o.Client, w.o.URL, body, 64<<10, hdr); err != nil {
		return fmt.Errorf("webhook %s: %w", outbound.RedactURL(w.o.URL), err)
	}
	return nil
}
