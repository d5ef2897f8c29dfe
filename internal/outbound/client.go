package outbound

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// Defaults for Options.
const (
	DefaultTimeout         = 10 * time.Second
	DefaultDialTimeout     = 5 * time.Second
	DefaultMaxRedirects    = 3
	DefaultMaxResponseBody = 1 << 20
	DefaultUserAgent       = "scrapedefense-outbound/1"
)

// Options configure NewClient. The zero value is a safe default.
type Options struct {
	Policy
	// Timeout bounds a whole request including reading the body
	// (default 10s). Callers also pass a context deadline.
	Timeout time.Duration
	// DialTimeout bounds the TCP connect (default 5s).
	DialTimeout time.Duration
	// MaxRedirects is how many redirects are followed (default 3; a
	// negative value follows none). Each hop passes the same checks.
	MaxRedirects int
	// UserAgent is set on requests that do not set one.
	UserAgent string
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.MaxRedirects == 0 {
		o.MaxRedirects = DefaultMaxRedirects
	}
	if o.UserAgent == "" {
		o.UserAgent = DefaultUserAgent
	}
	return o
}

// NewClient returns an HTTP client that only talks to addresses allowed by
// opts.Policy. It ignores proxy environment variables: a proxy would be the
// address checked, not the destination.
func NewClient(opts Options) *http.Client {
	opts = opts.withDefaults()
	dialer := opts.Dialer(net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second})
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          16,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   opts.DialTimeout,
		ResponseHeaderTimeout: opts.Timeout,
		ExpectContinueTimeout: time.Second,
	}
	policy := opts.Policy
	maxRedirects := opts.MaxRedirects
	return &http.Client{
		Timeout:   opts.Timeout,
		Transport: userAgent{next: tr, ua: opts.UserAgent},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if maxRedirects < 0 || len(via) > maxRedirects {
				return fmt.Errorf("outbound: stopped after %d redirects", len(via))
			}
			// The dial hook checks the address; this rejects other
			// schemes and literal forbidden hosts before any dial.
			return policy.checkRedirect(req.URL)
		},
	}
}

func (p Policy) checkRedirect(u *url.URL) error {
	if err := p.CheckURL(u.String()); err != nil {
		return fmt.Errorf("outbound: redirect refused: %w", err)
	}
	return nil
}

type userAgent struct {
	next http.RoundTripper
	ua   string
}

func (t userAgent) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("User-Agent") == "" {
		req = req.Clone(req.Context())
		req.Header.Set("User-Agent", t.ua)
	}
	return t.next.RoundTrip(req)
}

// ErrBodyTooLarge is returned by ReadBody when the body exceeds the limit.
var ErrBodyTooLarge = errors.New("outbound: response body too large")

// ReadBody reads at most limit bytes of r (limit <= 0 means
// DefaultMaxResponseBody) and fails rather than truncating silently.
func ReadBody(r io.Reader, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = DefaultMaxResponseBody
	}
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w (limit %d bytes)", ErrBodyTooLarge, limit)
	}
	return b, nil
}

// Drain discards up to 64 KiB of a response body and closes it so that the
// connection can be reused.
func Drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}

// StatusError reports a non-2xx response. It never holds the URL, which may
// carry a secret.
type StatusError struct {
	Code int
	// RetryAfter is the server's Retry-After delay, if any.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("outbound: unexpected status %d %s", e.Code, http.StatusText(e.Code))
}

// Retryable reports whether repeating the request may succeed: 429 and 5xx
// may, other 4xx will not.
func (e *StatusError) Retryable() bool {
	return e.Code == http.StatusTooManyRequests || e.Code >= 500 || e.Code < 400
}

// CheckStatus returns nil for a 2xx response and a *StatusError otherwise.
func CheckStatus(resp *http.Response) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	e := &StatusError{Code: resp.StatusCode}
	if s := resp.Header.Get("Retry-After"); s != "" {
		var secs int
		if _, err := fmt.Sscanf(s, "%d", &secs); err == nil && secs > 0 && secs < 3600 {
			e.RetryAfter = time.Duration(secs) * time.Second
		}
	}
	return e
}

// Do sends req with client and returns a bounded body of a 2xx response;
// other statuses give a *StatusError. The request's context governs it.
func Do(ctx context.Context, client *http.Client, req *http.Request, limit int64) ([]byte, error) {
	resp, err := client.Do(req.WithContext(ctx))
	if err != nil {
		return nil, scrubURLError(err)
	}
	if err := CheckStatus(resp); err != nil {
		Drain(resp)
		return nil, err
	}
	defer resp.Body.Close()
	return ReadBody(resp.Body, limit)
}

// PostJSON posts an encoded JSON body to rawURL with the extra headers
// (signatures, credentials) and returns the response body, at most limit
// bytes. A request that cannot be built is a permanent error: retrying
// cannot mend it.
func PostJSON(ctx context.Context, client *http.Client, rawURL string, body []byte, limit int64, header http.Header) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return nil, Permanent(errors.New("cannot build request"))
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	return Do(ctx, client, req, limit)
}

// scrubURLError replaces a *url.Error's URL (which may carry a webhook
// secret) with its redacted form, keeping the wrapped cause for errors.Is.
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: RedactURL(ue.URL), Err: ue.Err}
	}
	return err
}
