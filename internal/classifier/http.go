package classifier

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/hmacsig"
	"github.com/scrapedefense/scrapedefense/internal/outbound"
)

// HTTPOptions configure a generic HTTP classifier.
type HTTPOptions struct {
	// URL receives a POST with the Query as JSON and answers
	// {"bot": 0.93, "reason": "..."}.
	URL string
	// BearerToken, if set, is sent as Authorization: Bearer.
	BearerToken string
	// Secret, if set, signs the body (X-Scrapedefense-Signature, package
	// hmacsig) so that the service can authenticate the caller.
	Secret []byte
	Client *http.Client
	// MaxResponseBytes bounds the response read (default 16 KiB).
	MaxResponseBytes int64
	// Now is the clock for signatures (default time.Now).
	Now func() time.Time
}

// HTTP is a Classifier that posts queries to a service of the operator's.
type HTTP struct{ o HTTPOptions }

// NewHTTP validates the options.
func NewHTTP(o HTTPOptions) (*HTTP, error) {
	if err := (outbound.Policy{AllowPrivate: true}).CheckURL(o.URL); err != nil {
		return nil, fmt.Errorf("http classifier: %w", err)
	}
	if o.Client == nil {
		return nil, errors.New("http classifier: no HTTP client")
	}
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = 16 << 10
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &HTTP{o: o}, nil
}

// Classify implements Classifier.
func (c *HTTP) Classify(ctx context.Context, q Query) (Opinion, error) {
	body, err := encodeJSON(q)
	if err != nil {
		return Opinion{}, fmt.Errorf("http classifier: %w", err)
	}
	hdr := http.Header{"Accept": {"application/json"}}
	if c.o.BearerToken != "" {
		hdr.Set("Authorization", "Bearer "+c.o.BearerToken)
	}
	if len(c.o.Secret) > 0 {
		hdr.Set(hmacsig.Header, hmacsig.Sign(c.o.Secret, c.o.Now(), body))
	}
	resp, err := outbound.PostJSON(ctx, c.o.Client, c.o.URL, body, c.o.MaxResponseBytes, hdr)
	if err != nil {
		return Opinion{}, fmt.Errorf("http classifier %s: %w", outbound.RedactURL(c.o.URL), err)
	}
	op, err := ParseOpinion(string(resp))
	if err != nil {
		return Opinion{}, fmt.Errorf("http classifier: %w", err)
	}
	return op, nil
}
