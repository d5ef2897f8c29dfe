package main

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// header is one request header line. Requests carry an ordered slice
// rather than an http.Header because net/http sorts header names, and the
// order a client sends is part of its fingerprint.
type header struct {
	Name, Value string
}

// request is what a simulated client sends. Headers are written exactly in
// the given order; the Host header is one of them.
type request struct {
	Method  string
	Path    string
	Headers []header
}

// response is what came back, with the body already decoded.
type response struct {
	Status   int
	Header   http.Header
	Body     []byte
	Elapsed  time.Duration
	TimedOut bool // the response did not finish within the client's timeout
}

// maxBody bounds how much of one body a client keeps: the tarpit answers
// with endless pages, and the scorer needs only the start of a page.
const maxBody = 1 << 20

// rawConn is one keep-alive HTTP/1.1 connection that writes requests byte
// for byte as given.
type rawConn struct {
	addr    string
	timeout time.Duration
	conn    net.Conn
	br      *bufio.Reader
	buf     bytes.Buffer
}

func newRawConn(addr string, timeout time.Duration) *rawConn {
	return &rawConn{addr: addr, timeout: timeout}
}

// Close drops the connection, if any.
func (c *rawConn) Close() {
	if c.conn != nil {
		_ = c.conn.Close()
		c.conn, c.br = nil, nil
	}
}

// Do sends req and reads the response. A request on a reused connection
// that fails before any response byte (the server closed it while idle) is
// retried once on a fresh connection, as browsers do.
func (c *rawConn) Do(ctx context.Context, req request) (response, error) {
	reused := c.conn != nil
	resp, err := c.do(ctx, req)
	if err != nil && reused && !resp.TimedOut && ctx.Err() == nil && errors.Is(err, errStale) {
		c.Close()
		resp, err = c.do(ctx, req)
	}
	return resp, err
}

var errStale = errors.New("connection closed before the response")

func (c *rawConn) do(ctx context.Context, req request) (response, error) {
	start := time.Now()
	if c.conn == nil {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", c.addr)
		if err != nil {
			return response{}, fmt.Errorf("dial %s: %w", c.addr, err)
		}
		c.conn, c.br = conn, bufio.NewReader(conn)
	}
	deadline := start.Add(c.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(time.Now()) })
	defer stop()

	c.buf.Reset()
	writeRequest(&c.buf, req)
	if _, err := c.conn.Write(c.buf.Bytes()); err != nil {
		c.Close()
		return response{}, fmt.Errorf("write: %w", errStale)
	}
	hr, err := http.ReadResponse(c.br, nil)
	if err != nil {
		timedOut := isTimeout(err) && ctx.Err() == nil
		c.Close()
		if timedOut {
			return response{TimedOut: true, Elapsed: time.Since(start)}, nil
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return response{}, fmt.Errorf("read: %w", errStale)
		}
		return response{}, fmt.Errorf("read response: %w", err)
	}
	body, err := io.ReadAll(io.LimitReader(hr.Body, maxBody+1))
	resp := response{Status: hr.StatusCode, Header: hr.Header, Elapsed: time.Since(start)}
	switch {
	case err != nil && isTimeout(err) && ctx.Err() == nil:
		resp.TimedOut = true
		c.Close()
	case err != nil:
		c.Close()
		return resp, fmt.Errorf("read body: %w", err)
	case len(body) > maxBody:
		body = body[:maxBody]
		c.Close() // the rest is unread, so the connection cannot be reused
	case hr.Close:
		c.Close()
	}
	_ = hr.Body.Close()
	resp.Body = decode(hr.Header.Get("Content-Encoding"), body)
	return resp, nil
}

// writeRequest renders req as HTTP/1.1 in its header order.
func writeRequest(w *bytes.Buffer, req request) {
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	w.WriteString(method)
	w.WriteByte(' ')
	w.WriteString(req.Path)
	w.WriteString(" HTTP/1.1\r\n")
	for _, h := range req.Headers {
		w.WriteString(h.Name)
		w.WriteString(": ")
		w.WriteString(h.Value)
		w.WriteString("\r\n")
	}
	w.WriteString("\r\n")
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// decode undoes the content codings the standard library can; anything
// else (br, zstd) stays encoded and simply yields no links when parsed.
func decode(coding string, body []byte) []byte {
	var r io.Reader
	switch strings.ToLower(strings.TrimSpace(coding)) {
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return body
		}
		r = zr
	case "deflate":
		r = flate.NewReader(bytes.NewReader(body))
	default:
		return body
	}
	out, err := io.ReadAll(io.LimitReader(r, maxBody))
	if err != nil && len(out) == 0 {
		return body
	}
	return out
}
