package proxyproto

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// errorLog collects errors reported through Options.OnError.
type errorLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errorLog) add(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, err)
}

func (l *errorLog) all() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.errs...)
}

// listen starts a PROXY-protocol listener on a loopback port.
func listen(t *testing.T, opts Options) (net.Listener, *errorLog) {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log := &errorLog{}
	if opts.OnError == nil {
		opts.OnError = log.add
	}
	ln := NewListener(inner, opts)
	t.Cleanup(func() { ln.Close() })
	return ln, log
}

// send dials ln, writes b, and half-closes, returning the client conn.
func send(t *testing.T, ln net.Listener, b []byte) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if len(b) > 0 {
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	return c
}

// accept accepts one connection and returns its RemoteAddr and all it reads.
func accept(t *testing.T, ln net.Listener) (string, []byte, error) {
	t.Helper()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addr := c.RemoteAddr().String()
	data, err := io.ReadAll(c)
	return addr, data, err
}

func TestListener(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB after the header
	tests := []struct {
		name     string
		opts     Options
		header   []byte
		wantAddr string // "peer" for the real peer
		wantErr  error
	}{
		{"v1 tcp4", Options{}, []byte("PROXY TCP4 203.0.113.7 192.0.2.1 4711 443\r\n"), "203.0.113.7:4711", nil},
		{"v1 tcp6", Options{}, []byte("PROXY TCP6 2001:db8::7 2001:db8::1 4711 443\r\n"), "[2001:db8::7]:4711", nil},
		{"v1 unknown", Options{}, []byte("PROXY UNKNOWN\r\n"), "peer", nil},
		{"v2 tcp4", Options{}, v2TCP4("203.0.113.7", "192.0.2.1", 4711, 443, tlv(0x04, "")), "203.0.113.7:4711", nil},
		{"v2 tcp6", Options{}, v2TCP6("2001:db8::7", "2001:db8::1", 4711, 443, nil), "[2001:db8::7]:4711", nil},
		{"v2 local", Options{}, v2Header(0x20, 0x00, nil), "peer", nil},
		{"v2 unix", Options{}, v2Header(0x21, 0x31, make([]byte, 216)), "peer", nil},
		{"no header", Options{}, nil, "peer", nil},
		{"no header, required", Options{Required: true}, nil, "peer", ErrMissingHeader},
		{"header, required", Options{Required: true}, []byte("PROXY TCP4 203.0.113.7 192.0.2.1 4711 443\r\n"), "203.0.113.7:4711", nil},
		{"trusted peer", Options{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
			[]byte("PROXY TCP4 203.0.113.7 192.0.2.1 4711 443\r\n"), "203.0.113.7:4711", nil},
		{"untrusted peer sends header", Options{Trusted: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}},
			[]byte("PROXY TCP4 203.0.113.7 192.0.2.1 4711 443\r\n"), "peer", ErrUntrustedPeer},
		{"untrusted peer sends v2 header", Options{Trusted: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}},
			v2TCP4("203.0.113.7", "192.0.2.1", 4711, 443, nil), "peer", ErrUntrustedPeer},
		{"mapped trusted prefix", Options{Trusted: []netip.Prefix{netip.MustParsePrefix("::ffff:127.0.0.0/104")}},
			[]byte("PROXY TCP4 203.0.113.7 192.0.2.1 4711 443\r\n"), "203.0.113.7:4711", nil},
		{"invalid trusted prefixes trust no one", Options{Trusted: []netip.Prefix{{}}},
			[]byte("PROXY TCP4 203.0.113.7 192.0.2.1 4711 443\r\n"), "peer", ErrUntrustedPeer},
		{"untrusted peer without header", Options{Trusted: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}, nil, "peer", nil},
		{"untrusted peer, required", Options{Required: true, Trusted: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}},
			[]byte("PROXY TCP4 203.0.113.7 192.0.2.1 4711 443\r\n"), "peer", ErrMissingHeader},
		{"malformed v1", Options{}, []byte("PROXY TCP4 203.0.113.7 nope 4711 443\r\n"), "peer", ErrMalformed},
		{"malformed v2", Options{}, v2Header(0x21, 0x11, make([]byte, 4)), "peer", ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ln, log := listen(t, tc.opts)
			client := send(t, ln, append(append([]byte{}, tc.header...), payload...))
			addr, data, err := accept(t, ln)

			want := tc.wantAddr
			if want == "peer" {
				want = client.LocalAddr().String()
			}
			if addr != want {
				t.Errorf("RemoteAddr = %s, want %s", addr, want)
			}
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("read err = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr == nil {
				if !bytes.Equal(data, payload) {
					t.Fatalf("read %d bytes, want the %d-byte payload intact", len(data), len(payload))
				}
				if errs := log.all(); len(errs) > 0 {
					t.Fatalf("OnError called: %v", errs)
				}
				return
			}
			if errs := log.all(); len(errs) != 1 || !errors.Is(errs[0], tc.wantErr) {
				t.Fatalf("OnError got %v, want one %v", errs, tc.wantErr)
			}
			// The server closed the connection: the client sees EOF or a reset.
			_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := client.Read(make([]byte, 1)); err == nil {
				t.Fatal("connection still open after header error")
			}
		})
	}
}

// TestListenerEmptyConn checks that a connection closed without sending
// anything (a TCP health check) is not reported as an error.
func TestListenerEmptyConn(t *testing.T) {
	ln, log := listen(t, Options{Required: true})
	send(t, ln, nil)
	_, data, err := accept(t, ln)
	if err != nil || len(data) != 0 {
		t.Fatalf("got %q, %v", data, err)
	}
	if errs := log.all(); len(errs) != 0 {
		t.Fatalf("OnError got %v", errs)
	}
}

// TestListenerSlowHeader sends the header a few bytes at a time.
func TestListenerSlowHeader(t *testing.T) {
	ln, _ := listen(t, Options{})
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() {
		msg := append(v2TCP6("2001:db8::7", "::1", 9, 10, tlv(0x20, strings.Repeat("x", 300))), "hello"...)
		for len(msg) > 0 {
			n := min(7, len(msg))
			if _, err := c.Write(msg[:n]); err != nil {
				return
			}
			msg = msg[n:]
			time.Sleep(time.Millisecond)
		}
		c.(*net.TCPConn).CloseWrite()
	}()
	addr, data, err := accept(t, ln)
	if err != nil || addr != "[2001:db8::7]:9" || string(data) != "hello" {
		t.Fatalf("got %s %q %v", addr, data, err)
	}
}

// TestListenerSilentClient checks that a client that never sends does not
// hold up Accept, times out, and leaves no goroutine behind.
func TestListenerSilentClient(t *testing.T) {
	before := runtime.NumGoroutine()
	const timeout = time.Second
	ln, log := listen(t, Options{HeaderTimeout: timeout})

	silent, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	sc, err := ln.Accept() // must return at once
	if err != nil {
		t.Fatal(err)
	}
	silentDone := make(chan error, 1)
	start := time.Now()
	go func() {
		defer sc.Close()
		_, err := sc.Read(make([]byte, 1))
		silentDone <- err
	}()

	// Meanwhile other clients are served.
	for i := range 3 {
		send(t, ln, fmt.Appendf(nil, "PROXY TCP4 203.0.113.%d 192.0.2.1 1 2\r\nhi", i))
		addr, data, err := accept(t, ln)
		if err != nil || addr != fmt.Sprintf("203.0.113.%d:1", i) || string(data) != "hi" {
			t.Fatalf("client %d: %s %q %v", i, addr, data, err)
		}
	}
	select {
	case err := <-silentDone:
		t.Fatalf("silent client finished (%v) before the others were served", err)
	default:
	}

	select {
	case err := <-silentDone:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("silent client: err = %v, want deadline exceeded", err)
		}
		if d := time.Since(start); d < timeout*8/10 {
			t.Fatalf("timed out after %v, before HeaderTimeout", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("silent client never timed out")
	}
	if errs := log.all(); len(errs) != 1 || !errors.Is(errs[0], os.ErrDeadlineExceeded) {
		t.Fatalf("OnError got %v", errs)
	}

	ln.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines left, %d before", n, before)
	}
}

// TestListenerDeadlines checks that a read deadline set before the header
// is read applies afterwards, and that one after the header is honoured.
func TestListenerDeadlines(t *testing.T) {
	ln, _ := listen(t, Options{HeaderTimeout: 5 * time.Second})
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("PROXY TCP4 203.0.113.7 192.0.2.1 1 2\r\n")); err != nil {
		t.Fatal(err)
	}
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if err := sc.SetReadDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = sc.Read(make([]byte, 1)) // header arrives, then no data
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("deadline ignored: read took %v", d)
	}
	if got := sc.RemoteAddr().String(); got != "203.0.113.7:1" {
		t.Fatalf("RemoteAddr = %s", got)
	}
	// Clearing the deadline works after the header too.
	if err := sc.SetDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := sc.Read(make([]byte, 1)); err != nil {
		t.Fatalf("read after clearing deadline: %v", err)
	}
}

// TestHTTPServer runs net/http on top of the listener: handlers see the
// client from the header in r.RemoteAddr.
func TestHTTPServer(t *testing.T) {
	ln, log := listen(t, Options{Required: true})
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, r.RemoteAddr)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})

	// A client whose connections start with a PROXY header, as from a load
	// balancer; keep-alive reuses the connection, and the header is sent once.
	client := func(header []byte) *http.Client {
		return &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				if _, err := c.Write(header); err != nil {
					c.Close()
					return nil, err
				}
				return c, nil
			},
		}}
	}
	get := func(c *http.Client) (string, error) {
		resp, err := c.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}

	v1 := client([]byte("PROXY TCP4 203.0.113.7 192.0.2.1 4711 80\r\n"))
	v2 := client(v2TCP6("2001:db8::7", "2001:db8::1", 4712, 80, nil))
	for _, tc := range []struct {
		c    *http.Client
		want string
	}{{v1, "203.0.113.7:4711"}, {v2, "[2001:db8::7]:4712"}, {v1, "203.0.113.7:4711"}, {v2, "[2001:db8::7]:4712"}} {
		got, err := get(tc.c)
		if err != nil || got != tc.want {
			t.Fatalf("r.RemoteAddr = %q, %v; want %q", got, err, tc.want)
		}
	}

	// A plain client is refused: the header is required.
	if _, err := get(&http.Client{}); err == nil {
		t.Fatal("request without header was served")
	}
	if errs := log.all(); len(errs) != 1 || !errors.Is(errs[0], ErrMissingHeader) {
		t.Fatalf("OnError got %v", errs)
	}

	// A raw request line with a header, as HAProxy would send it.
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "PROXY TCP4 198.51.100.9 192.0.2.1 1234 80\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "198.51.100.9:1234" {
		t.Fatalf("body = %q", body)
	}
}

func BenchmarkReadHeader(b *testing.B) {
	for _, bc := range []struct {
		name string
		in   []byte
	}{
		{"v1", []byte("PROXY TCP4 203.0.113.7 192.0.2.1 4711 443\r\nGET / HTTP/1.1\r\n")},
		{"v2", append(v2TCP6("2001:db8::7", "2001:db8::1", 4711, 443, nil), "GET / HTTP/1.1\r\n"...)},
		{"none", []byte("GET / HTTP/1.1\r\n")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			r := bytes.NewReader(bc.in)
			for b.Loop() {
				r.Reset(bc.in)
				if _, _, err := readHeader(r, true); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
