package tarpit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/robots"
)

// TrainOptions bound a training crawl of the protected site.
type TrainOptions struct {
	// Upstream is the start URL; only its host is crawled.
	Upstream string
	// MaxPages caps the pages fetched. Default 200.
	MaxPages int
	// MaxBytes caps the bytes read in total. Default 32 MiB.
	MaxBytes int64
	// Delay is the pause between requests (politeness). Default 500 ms.
	Delay time.Duration
	// Timeout bounds each request. Default 10 s.
	Timeout time.Duration
	// UserAgent identifies the crawler; robots.txt rules for it are obeyed.
	// Default "scrapedefense-tarpit-trainer".
	UserAgent string
	// HTTPClient is the client to use. Default: a client with Timeout.
	HTTPClient *http.Client
	// Build bounds the model.
	Build BuildOptions
}

// TrainStats describes a finished crawl.
type TrainStats struct {
	Pages, Skipped int
	Bytes, Text    int64
}

// maxPageBytes bounds one response body.
const maxPageBytes = 4 << 20

// Train crawls the site at o.Upstream politely (same host, robots.txt,
// bounded pages and bytes, a delay between requests), strips the markup
// and builds a model, so that the maze reads like the site.
func Train(ctx context.Context, o TrainOptions) (*Model, TrainStats, error) {
	var st TrainStats
	if o.MaxPages <= 0 {
		o.MaxPages = 200
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 32 << 20
	}
	if o.Delay == 0 {
		o.Delay = 500 * time.Millisecond
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.UserAgent == "" {
		o.UserAgent = "scrapedefense-tarpit-trainer"
	}
	client := o.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: o.Timeout}
	}
	start, err := url.Parse(o.Upstream)
	if err != nil || (start.Scheme != "http" && start.Scheme != "https") || start.Host == "" {
		return nil, st, fmt.Errorf("tarpit train: upstream %q must be an absolute http(s) URL", o.Upstream)
	}
	start.Fragment = ""
	if start.Path == "" {
		start.Path = "/"
	}
	c := &crawler{client: client, o: o}
	rules := robots.Parse(nil)
	if body, _, err := c.fetch(ctx, start.ResolveReference(&url.URL{Path: "/robots.txt"}).String()); err == nil {
		rules = robots.Parse(body)
	}
	seen := map[string]bool{start.String(): true}
	queue := []*url.URL{start}
	var text bytes.Buffer
	for len(queue) > 0 && st.Pages < o.MaxPages && st.Bytes < o.MaxBytes {
		u := queue[0]
		queue = queue[1:]
		if !rules.Allowed(o.UserAgent, u.EscapedPath()) {
			st.Skipped++
			continue
		}
		if st.Pages > 0 || st.Skipped > 0 {
			select {
			case <-ctx.Done():
				return nil, st, ctx.Err()
			case <-time.After(o.Delay):
			}
		}
		body, ctype, err := c.fetch(ctx, u.String())
		if err != nil {
			if ctx.Err() != nil {
				return nil, st, ctx.Err()
			}
			st.Skipped++
			continue
		}
		st.Pages++
		st.Bytes += int64(len(body))
		if mt, _, _ := mime.ParseMediaType(ctype); mt != "text/html" && mt != "application/xhtml+xml" {
			continue
		}
		before := text.Len()
		text.Write(StripHTML(nil, body))
		text.WriteByte('\n')
		st.Text += int64(text.Len() - before)
		for _, href := range extractLinks(body) {
			ref, err := url.Parse(href)
			if err != nil {
				continue
			}
			next := u.ResolveReference(ref)
			next.Fragment = ""
			if next.Host != start.Host || next.Scheme != start.Scheme {
				continue
			}
			// Bound the frontier as well as the pages.
			if k := next.String(); !seen[k] && len(seen) < 20*o.MaxPages {
				seen[k] = true
				queue = append(queue, next)
			}
		}
	}
	m, err := Build(&text, o.Build)
	if err != nil {
		return nil, st, fmt.Errorf("tarpit train: %d pages, %d bytes of text: %w", st.Pages, st.Text, err)
	}
	return m, st, nil
}

type crawler struct {
	client *http.Client
	o      TrainOptions
}

var errStatus = errors.New("unexpected status")

func (c *crawler) fetch(ctx context.Context, u string) ([]byte, string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("User-Agent", c.o.UserAgent)
	req.Header.Set("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, "", fmt.Errorf("%s: %w %d", u, errStatus, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPageBytes))
	return body, resp.Header.Get("Content-Type"), err
}

// extractLinks returns the href values of <a> tags.
func extractLinks(doc []byte) []string {
	var out []string
	for i := 0; i < len(doc) && len(out) < 1000; {
		j := bytes.IndexByte(doc[i:], '<')
		if j < 0 {
			break
		}
		i += j
		name, closing, n := tagName(doc[i:])
		if n == 0 {
			i++
			continue
		}
		end := tagEnd(doc[i:], n)
		if end < 0 {
			break
		}
		if !closing && strings.EqualFold(string(name), "a") {
			if href, ok := attr(doc[i+n:i+end], "href"); ok {
				out = append(out, href)
			}
		}
		i += end
	}
	return out
}

// attr finds name="value" (or single-quoted, or bare) in a tag's attributes.
func attr(tag []byte, name string) (string, bool) {
	lower := bytes.ToLower(tag)
	for i := 0; ; {
		k := bytes.Index(lower[i:], []byte(name))
		if k < 0 {
			return "", false
		}
		k += i
		i = k + len(name)
		if k > 0 && !isSpace(lower[k-1]) {
			continue
		}
		rest := bytes.TrimLeft(tag[i:], " \t\n\r")
		if len(rest) == 0 || rest[0] != '=' {
			continue
		}
		rest = bytes.TrimLeft(rest[1:], " \t\n\r")
		if len(rest) == 0 {
			return "", false
		}
		if q := rest[0]; q == '"' || q == '\'' {
			if e := bytes.IndexByte(rest[1:], q); e >= 0 {
				return htmlUnescape(rest[1 : 1+e]), true
			}
			return "", false
		}
		e := bytes.IndexAny(rest, " \t\n\r>")
		if e < 0 {
			e = len(rest)
		}
		return htmlUnescape(rest[:e]), true
	}
}

func htmlUnescape(b []byte) string { return string(appendText(nil, b)) }
