package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/decision"
	"github.com/scrapedefense/scrapedefense/internal/edge"
	"github.com/scrapedefense/scrapedefense/internal/pipeline"
)

// Client talks to a running server's decisions API, for the CLI while the
// server holds the store.
type Client struct {
	BaseURL string
	Token   string
	HTTP    *http.Client
}

// NewClient returns a client for the admin listener at addr.
func NewClient(addr, token string) *Client {
	return &Client{BaseURL: "http://" + displayAddr(addr), Token: token, HTTP: &http.Client{Timeout: 10 * time.Second}}
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("server API: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct{ Code, Message string }
		if json.Unmarshal(data, &e) == nil && e.Message != "" {
			return fmt.Errorf("server API: %s: %s", e.Code, e.Message)
		}
		return fmt.Errorf("server API: status %d", resp.StatusCode)
	}
	switch o := out.(type) {
	case nil:
	case *string:
		*o = string(data)
	default:
		return json.Unmarshal(data, out)
	}
	return nil
}

// AddDecision creates or replaces a decision.
func (c *Client) AddDecision(ctx context.Context, req edge.AddDecisionRequest) (decision.Decision, error) {
	var d decision.Decision
	err := c.do(ctx, http.MethodPost, "/api/v1/decisions", req, &d)
	return d, err
}

// ListDecisions lists the active decisions.
func (c *Client) ListDecisions(ctx context.Context) ([]decision.Decision, error) {
	var ds []decision.Decision
	err := c.do(ctx, http.MethodGet, "/api/v1/decisions", nil, &ds)
	return ds, err
}

// DeleteDecision removes the decision for value.
func (c *Client) DeleteDecision(ctx context.Context, value string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/decisions?value="+url.QueryEscape(value), nil, nil)
}

// Explain asks the running edge to explain a request.
func (c *Client) Explain(ctx context.Context, req edge.ExplainRequest) (string, error) {
	var s string
	err := c.do(ctx, http.MethodPost, "/api/v1/explain", req, &s)
	return s, err
}

// History returns a client's escalation history from the running server.
func (c *Client) History(ctx context.Context, ip string) ([]pipeline.Record, error) {
	var recs []pipeline.Record
	err := c.do(ctx, http.MethodGet, "/api/v1/history?ip="+url.QueryEscape(ip), nil, &recs)
	return recs, err
}
