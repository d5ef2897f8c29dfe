package edge

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/config"
	"github.com/scrapedefense/scrapedefense/internal/crawlers"
	"github.com/scrapedefense/scrapedefense/internal/robots"
	"github.com/scrapedefense/scrapedefense/internal/telemetry"
)

// maxRobotsBytes is what RFC 9309 asks crawlers to parse at least; more is
// ignored.
const maxRobotsBytes = 500 << 10

// robotsCache keeps the upstream's robots.txt, parsed for the
// robots_disallowed matcher and rendered (merged with the AI-agent groups)
// for serving at the edge.
type robotsCache struct {
	client *http.Client
	cfg    config.Robots
	fp     *FastPath
	// traps are maze prefixes disallowed for every agent, so that only a
	// client that ignores robots.txt walks into the tarpit.
	traps []string

	body atomic.Pointer[[]byte]

	mu       sync.Mutex
	lastErr  error
	lastOK   time.Time
	lastCode int
}

func newRobotsCache(rt http.RoundTripper, cfg config.Robots, fp *FastPath) *robotsCache {
	c := &robotsCache{client: &http.Client{Transport: rt, Timeout: 10 * time.Second}, cfg: cfg, fp: fp}
	empty := []byte{}
	c.body.Store(&empty)
	return c
}

// Body is the robots.txt served by the edge.
func (c *robotsCache) Body() []byte { return *c.body.Load() }

// Run fetches the upstream's robots.txt now and every cfg.Refresh.
func (c *robotsCache) Run(ctx context.Context, upstream *url.URL, catalog func() *crawlers.Catalog) {
	t := time.NewTicker(c.cfg.Refresh)
	defer t.Stop()
	for {
		c.refresh(ctx, upstream, catalog())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *robotsCache) refresh(ctx context.Context, upstream *url.URL, cat *crawlers.Catalog) {
	raw, code, err := c.fetch(ctx, upstream)
	c.mu.Lock()
	c.lastErr, c.lastCode = err, code
	if err == nil {
		c.lastOK = time.Now()
	}
	c.mu.Unlock()
	if err != nil {
		if c.fp.robots.Load() != nil {
			return // keep what we had
		}
		raw = nil
	}
	c.fp.SetRobots(robots.Parse(raw))
	var agents []string
	if c.cfg.DisallowAIAgents {
		for _, a := range cat.AIAgents() {
			agents = append(agents, a.Name)
		}
	}
	body := robots.Render(raw, agents, c.traps...)
	c.body.Store(&body)
}

// fetch gets upstream /robots.txt. Per RFC 9309 a 4xx means "no rules";
// other failures are errors and keep the previous copy.
func (c *robotsCache) fetch(ctx context.Context, upstream *url.URL) ([]byte, int, error) {
	u := upstream.JoinPath("/robots.txt")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("User-Agent", "scrapedefense-edge")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		return nil, resp.StatusCode, nil
	case resp.StatusCode != http.StatusOK:
		return nil, resp.StatusCode, fmt.Errorf("upstream robots.txt: status %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxRobotsBytes))
	return b, resp.StatusCode, err
}

// upstreamHealth reports whether the upstream answered the last robots.txt
// fetch: a cheap, regular sign of life that costs no extra request.
func (c *robotsCache) upstreamHealth() telemetry.Component {
	c.mu.Lock()
	defer c.mu.Unlock()
	data := map[string]any{"last_status": c.lastCode}
	if !c.lastOK.IsZero() {
		data["last_ok"] = c.lastOK.UTC().Format(time.RFC3339)
	}
	if c.lastErr != nil {
		return telemetry.Component{Status: telemetry.StatusDegraded, Detail: c.lastErr.Error(), Data: data}
	}
	return telemetry.Component{Status: telemetry.StatusOK, Data: data}
}
