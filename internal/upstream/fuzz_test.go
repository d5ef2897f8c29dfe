package upstream

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// scriptConn is a net.Conn whose peer sends fixed bytes and then closes.
type scriptConn struct {
	mu     sync.Mutex
	r      *bytes.Reader
	closed bool
}

func (c *scriptConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.r.Read(p)
}

func (c *scriptConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	return len(p), nil
}

func (c *scriptConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

func (*scriptConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (*scriptConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (*scriptConn) SetDeadline(time.Time) error      { return nil }
func (*scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (*scriptConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzResponse feeds arbitrary upstream bytes to the transport: it must
// never panic, never hang, and keep its connection accounting straight.
func FuzzResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\n\r\n",
		"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
		"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\nuntil close",
		"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc",
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
		"HTTP/1.1 101 Switching Protocols\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nok",
		"garbage",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tr := NewTransport(Options{MaxConns: 2}, nil)
		tr.dial = func(context.Context, string, string) (net.Conn, error) {
			return &scriptConn{r: bytes.NewReader(data)}, nil
		}
		for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodGet} {
			req, _ := http.NewRequest(method, "http://upstream.test/", nil)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				continue
			}
			if resp.StatusCode < 200 || resp.StatusCode > 999 {
				t.Fatalf("status %d returned as final", resp.StatusCode)
			}
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			_ = resp.Body.Close()
		}
		tr.CloseIdleConnections()
		if s := tr.Stats(); s.Open != 0 || s.Idle != 0 {
			t.Fatalf("after closing idle connections: %+v", s)
		}
	})
}

// FuzzHeaderHasToken checks the Connection-token parser on arbitrary
// header values against a plain reference.
func FuzzHeaderHasToken(f *testing.F) {
	for _, s := range []string{"close", "Keep-Alive, CLOSE", " \tupgrade\t,", "closed", ",,,", "cloſe", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		for _, token := range []string{"close", "upgrade"} {
			want := false
			for _, item := range strings.Split(v, ",") {
				item = strings.Trim(item, " \t")
				if len(item) == len(token) && strings.ToLower(asciiOnly(item)) == token {
					want = true
				}
			}
			if got := headerHasToken([]string{v}, token); got != want {
				t.Fatalf("headerHasToken(%q, %q) = %v, want %v", v, token, got, want)
			}
		}
	})
}

// asciiOnly replaces non-ASCII bytes so strings.ToLower folds ASCII only.
func asciiOnly(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 0x80 {
			b[i] = 0
		}
	}
	return string(b)
}
