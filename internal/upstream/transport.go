// Package upstream is the HTTP/1.1 client transport behind the edge's reverse
// proxy. For the common proxied request (plain http, no body, no upgrade) it
// writes the request and reads the response in the calling goroutine, so a
// request costs no goroutine hand-offs; everything else goes to a fallback
// http.RoundTripper.
package upstream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	defaultMaxIdleConns = 1024
	defaultIdleTimeout  = 90 * time.Second
	defaultDialTimeout  = 30 * time.Second
	tcpKeepAlive        = 30 * time.Second

	// maxResponseHeaderBytes bounds what an upstream may send before the
	// end of its response header (nginx allows 4-8 KiB by default).
	maxResponseHeaderBytes = 1 << 20
	// max1xxResponses bounds informational responses before the final one.
	max1xxResponses = 5

	readBufferSize  = 8 << 10
	writeBufferSize = 4 << 10
)

// Options tunes the connection pool. Zero values get the defaults noted.
type Options struct {
	// MaxIdleConns bounds the idle connections kept, over all hosts
	// (default 1024). Connections returned while the pool is full are closed.
	MaxIdleConns int
	// MaxConns caps the open connections, idle and busy, over all hosts;
	// 0 means no cap. A request over the cap waits for a connection, bounded
	// by its context.
	MaxConns int
	// DialTimeout bounds a TCP connect (default 30 s).
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for the response header after
	// the request is written; 0 means no limit besides the context.
	ResponseHeaderTimeout time.Duration
	// IdleTimeout is how long an idle connection may be kept (default 90 s).
	IdleTimeout time.Duration
}

// Stats is a snapshot of the transport's counters, for metrics.
type Stats struct {
	Idle         int    // idle connections in the pool
	Open         int    // open connections, idle and busy (including dials in progress)
	Dials        uint64 // connections dialled
	Reuses       uint64 // requests served on a pooled connection
	Fallbacks    uint64 // requests handed to the fallback RoundTripper
	StaleRetries uint64 // requests retried on a fresh connection after a pooled one had gone stale
}

// ErrNoFallback is returned for a request the transport does not serve itself
// when it was built without a fallback.
var ErrNoFallback = errors.New("upstream: request needs the fallback transport, and there is none")

// errBodyClosed is returned by reads after the response body was closed.
var errBodyClosed = errors.New("upstream: read on closed response body")

// Transport is an http.RoundTripper made by NewTransport (the zero value is
// not usable). It is safe for concurrent use.
type Transport struct {
	fallback              http.RoundTripper
	dial                  func(ctx context.Context, network, addr string) (net.Conn, error)
	responseHeaderTimeout time.Duration
	pool                  pool

	readers sync.Pool // *bufio.Reader, attached to a connection while it is busy
	writers sync.Pool // *bufio.Writer, used only while writing a request

	dials, reuses, fallbacks, staleRetries atomic.Uint64
}

// NewTransport returns a RoundTripper that serves plain-http GET, HEAD,
// OPTIONS and DELETE requests without a body and without Upgrade itself, and
// hands everything else (bodies, upgrades, https, HTTP/2) to fallback. A nil
// fallback makes those requests fail with ErrNoFallback.
//
// Unlike http.Transport it never uses an environment proxy, does not add
// "Accept-Encoding: gzip" nor decompress responses, and speaks only
// HTTP/1.1 itself: what a reverse proxy wants.
func NewTransport(o Options, fallback http.RoundTripper) *Transport {
	if o.MaxIdleConns <= 0 {
		o.MaxIdleConns = defaultMaxIdleConns
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = defaultIdleTimeout
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = defaultDialTimeout
	}
	dialer := &net.Dialer{Timeout: o.DialTimeout, KeepAlive: tcpKeepAlive}
	t := &Transport{
		fallback:              fallback,
		dial:                  dialer.DialContext,
		responseHeaderTimeout: o.ResponseHeaderTimeout,
		pool: pool{
			maxIdle:     o.MaxIdleConns,
			maxConns:    max(o.MaxConns, 0),
			idleTimeout: o.IdleTimeout,
		},
	}
	t.readers.New = func() any { return bufio.NewReaderSize(nil, readBufferSize) }
	t.writers.New = func() any { return bufio.NewWriterSize(nil, writeBufferSize) }
	return t
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !servesItself(req) {
		return t.roundTripFallback(req)
	}
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	key := connKey(req)
	pc, err := t.getConn(ctx, key)
	if err != nil {
		return nil, err
	}
	resp, retry, err := t.exchange(ctx, pc, req)
	if retry {
		// The pooled connection had been closed by the upstream before
		// it saw our request (or before it answered a byte): the request
		// has no body and an idempotent method, so send it again, once,
		// on a new connection. The slot of the dead one is reused.
		t.staleRetries.Add(1)
		if pc, err = t.dialConn(ctx, key); err != nil {
			return nil, err
		}
		resp, _, err = t.exchange(ctx, pc, req)
	}
	return resp, err
}

func (t *Transport) roundTripFallback(req *http.Request) (*http.Response, error) {
	t.fallbacks.Add(1)
	if t.fallback == nil {
		if req.Body != nil {
			_ = req.Body.Close() // a RoundTripper must close the body, even on errors
		}
		return nil, ErrNoFallback
	}
	return t.fallback.RoundTrip(req)
}

// CloseIdleConnections closes the idle connections, here and in the
// fallback. Busy connections are closed when their response is done.
func (t *Transport) CloseIdleConnections() {
	t.pool.closeIdle()
	if f, ok := t.fallback.(interface{ CloseIdleConnections() }); ok {
		f.CloseIdleConnections()
	}
}

// Stats returns a snapshot of the counters.
func (t *Transport) Stats() Stats {
	idle, open := t.pool.counts()
	return Stats{
		Idle:         idle,
		Open:         open,
		Dials:        t.dials.Load(),
		Reuses:       t.reuses.Load(),
		Fallbacks:    t.fallbacks.Load(),
		StaleRetries: t.staleRetries.Load(),
	}
}

// servesItself reports whether req is the kind this transport sends itself:
// plain http, an idempotent method without a body (so a retry on a stale
// connection is safe), and no protocol upgrade.
func servesItself(req *http.Request) bool {
	u := req.URL
	if u == nil || u.Scheme != "http" || u.Host == "" || u.User != nil {
		return false
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodDelete:
	default:
		return false
	}
	if (req.Body != nil && req.Body != http.NoBody) || req.ContentLength != 0 || len(req.TransferEncoding) != 0 {
		return false
	}
	if len(req.Header["Upgrade"]) != 0 || headerHasToken(req.Header["Connection"], "upgrade") {
		return false
	}
	return true
}

// connKey is the dial address of req: host:port.
func connKey(req *http.Request) string {
	if req.URL.Port() != "" {
		return req.URL.Host
	}
	return net.JoinHostPort(req.URL.Hostname(), "80")
}

// wantsClose reports whether the request asks the upstream to close the
// connection after the response.
func wantsClose(req *http.Request) bool {
	return req.Close || headerHasToken(req.Header["Connection"], "close")
}

// headerHasToken reports whether the comma-separated header values contain
// token, case-insensitively (RFC 9110 §5.6.1 lists).
func headerHasToken(values []string, token string) bool {
	for _, v := range values {
		for len(v) > 0 {
			var item string
			item, v = cutByte(v, ',')
			item = trimOWS(item)
			if len(item) == len(token) && asciiEqualFold(item, token) {
				return true
			}
		}
	}
	return false
}

func cutByte(s string, sep byte) (before, after string) {
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// asciiEqualFold compares ASCII case-insensitively; unlike strings.EqualFold
// it does not fold Unicode (a header token is ASCII).
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// getConn returns a pooled connection to key, or a new one.
func (t *Transport) getConn(ctx context.Context, key string) (*conn, error) {
	pc, err := t.pool.get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("upstream: waiting for a connection to %s: %w", key, err)
	}
	if pc != nil {
		t.reuses.Add(1)
		return pc, nil
	}
	return t.dialConn(ctx, key) // get reserved a slot for it
}

// dialConn dials key on a slot already reserved in the pool.
func (t *Transport) dialConn(ctx context.Context, key string) (*conn, error) {
	t.dials.Add(1)
	nc, err := t.dial(ctx, "tcp", key)
	if err != nil {
		t.pool.freeSlot()
		if cerr := ctx.Err(); cerr != nil {
			err = cerr
		}
		return nil, fmt.Errorf("upstream: dial %s: %w", key, err)
	}
	pc := &conn{t: t, key: key, nc: nc}
	pc.cr.nc = nc
	pc.cr.limit = noReadLimit
	return pc, nil
}

// exchange writes req on pc and reads the response header. On error pc is
// gone (closed; with retry set its pool slot is kept for a new dial).
//
// The context bounds the exchange by closing the connection when it is
// done, which also covers its deadline; the connection's own read deadline
// serves only ResponseHeaderTimeout, and is re-armed lazily (see
// connReader) so that most requests set no deadline at all.
func (t *Transport) exchange(ctx context.Context, pc *conn, req *http.Request) (resp *http.Response, retry bool, err error) {
	var stop func() bool
	if ctx.Done() != nil {
		nc := pc.nc
		stop = context.AfterFunc(ctx, func() { _ = nc.Close() })
	}

	bw := t.writers.Get().(*bufio.Writer)
	bw.Reset(pc.nc)
	err = writeRequest(bw, req)
	if err == nil {
		err = bw.Flush()
	}
	bw.Reset(nil)
	t.writers.Put(bw)
	if err != nil {
		return t.fail(ctx, pc, stop, "write request", err)
	}

	var headerDeadline time.Time
	if t.responseHeaderTimeout > 0 {
		headerDeadline = time.Now().Add(t.responseHeaderTimeout)
	}
	if err := pc.cr.startHeader(headerDeadline); err != nil {
		return t.fail(ctx, pc, stop, "set deadline", err)
	}
	pc.br = t.readers.Get().(*bufio.Reader)
	pc.br.Reset(&pc.cr)
	// Peek first: a pooled connection that the upstream closed while idle
	// fails here, before any response byte, and only then is a retry safe.
	if _, err := pc.br.Peek(1); err != nil {
		return t.fail(ctx, pc, stop, "read response", err)
	}
	resp, err = readResponse(ctx, pc.br, req)
	if err != nil {
		pc.reused = false // bytes arrived: never retry
		return t.fail(ctx, pc, stop, "read response", err)
	}
	pc.cr.startBody()

	keepAlive := !resp.Close && !wantsClose(req)
	if resp.Body == http.NoBody {
		// HEAD, 204, 304, Content-Length: 0: the connection is free now.
		t.finish(pc, stop, keepAlive)
		return resp, false, nil
	}
	resp.Body = &body{t: t, pc: pc, rc: resp.Body, ctx: ctx, stop: stop, keepAlive: keepAlive}
	return resp, false, nil
}

// readResponse reads the final response, passing informational (1xx) ones
// to the request's httptrace.ClientTrace as http.Transport does (the reverse
// proxy forwards 103 Early Hints that way).
func readResponse(ctx context.Context, br *bufio.Reader, req *http.Request) (*http.Response, error) {
	for n := 0; ; n++ {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			return nil, err
		}
		code := resp.StatusCode
		if code < 100 {
			// ReadResponse accepts any three digits; a proxy's WriteHeader
			// would panic on these.
			return nil, fmt.Errorf("malformed status code %d", code)
		}
		if code >= 200 {
			return resp, nil
		}
		if code == http.StatusSwitchingProtocols {
			return nil, errors.New("unexpected 101 Switching Protocols to a request without Upgrade")
		}
		if n >= max1xxResponses {
			return nil, errors.New("too many 1xx informational responses")
		}
		if trace := httptrace.ContextClientTrace(ctx); trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(code, textproto.MIMEHeader(resp.Header)); err != nil {
				return nil, err
			}
		}
	}
}

// fail closes pc after a failed exchange and reports whether the request may
// be retried on a new connection, keeping pc's pool slot for that dial.
func (t *Transport) fail(ctx context.Context, pc *conn, stop func() bool, op string, err error) (*http.Response, bool, error) {
	if stop != nil {
		stop()
	}
	retry := pc.reused && ctx.Err() == nil && isConnDrop(err)
	if retry {
		pc.closeKeepSlot()
	} else {
		pc.discard()
	}
	return nil, retry, wrapErr(ctx, pc.key, op, err)
}

// wrapErr turns an I/O error into the error RoundTrip or Read returns:
// the context's error when that was the cause.
func wrapErr(ctx context.Context, key, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("upstream: %s %s: %w", op, key, cerr)
	}
	if op == "read response" && errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("upstream: timeout awaiting response headers from %s: %w", key, err)
	}
	return fmt.Errorf("upstream: %s %s: %w", op, key, err)
}

// isConnDrop reports whether err says the peer had closed the connection.
func isConnDrop(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNABORTED)
}

// finish ends a request on pc: back to the pool when the exchange left it
// clean and reusable, closed otherwise.
func (t *Transport) finish(pc *conn, stop func() bool, reuse bool) {
	if stop != nil && !stop() {
		reuse = false // the cancellation has closed, or is closing, the connection
	}
	if reuse && pc.br.Buffered() != 0 {
		reuse = false // bytes beyond the response: the stream is out of step
	}
	if !reuse {
		pc.discard()
		return
	}
	pc.releaseReader()
	t.pool.put(pc)
}
