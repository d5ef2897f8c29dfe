package upstream

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestKeepAliveReuse(t *testing.T) {
	checkGoroutines(t)
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.URL.Path)
	})
	tr := newTestTransport(t, Options{}, nil)
	for i := range 10 {
		resp, body := fetch(t, tr, http.MethodGet, fmt.Sprintf("%s/%d", o.URL, i))
		if resp.StatusCode != http.StatusOK || body != fmt.Sprintf("hello /%d", i) {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	if n := o.accepted.Load(); n != 1 {
		t.Errorf("origin accepted %d connections, want 1", n)
	}
	wantStats(t, tr, Stats{Idle: 1, Open: 1, Dials: 1, Reuses: 9})
}

func TestResponseFraming(t *testing.T) {
	big := strings.Repeat("0123456789", 10_000)
	tests := []struct {
		name     string
		method   string
		handler  http.HandlerFunc
		wantCode int
		wantBody string
		// freeAtOnce: the connection is back in the pool before the body
		// is read (no body at all).
		freeAtOnce bool
		reused     bool
	}{
		{
			name: "content-length", method: http.MethodGet, wantCode: 200, wantBody: big, reused: true,
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Length", fmt.Sprint(len(big)))
				io.WriteString(w, big)
			},
		},
		{
			name: "chunked", method: http.MethodGet, wantCode: 200, wantBody: "part one, part two", reused: true,
			handler: func(w http.ResponseWriter, _ *http.Request) {
				io.WriteString(w, "part one, ")
				w.(http.Flusher).Flush()
				io.WriteString(w, "part two")
			},
		},
		{
			name: "content-length zero", method: http.MethodGet, wantCode: 200, freeAtOnce: true, reused: true,
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Length", "0")
			},
		},
		{
			name: "head", method: http.MethodHead, wantCode: 200, freeAtOnce: true, reused: true,
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Length", "1234")
			},
		},
		{
			name: "204", method: http.MethodDelete, wantCode: 204, freeAtOnce: true, reused: true,
			handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) },
		},
		{
			name: "304", method: http.MethodGet, wantCode: 304, freeAtOnce: true, reused: true,
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Etag", `"x"`)
				w.WriteHeader(http.StatusNotModified)
			},
		},
		{
			name: "options", method: http.MethodOptions, wantCode: 200, wantBody: "opts", reused: true,
			handler: func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "opts") },
		},
		{
			name: "connection close from server", method: http.MethodGet, wantCode: 200, wantBody: "bye", reused: false,
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Connection", "close")
				io.WriteString(w, "bye")
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			o := newOrigin(t, tc.handler)
			tr := newTestTransport(t, Options{}, nil)
			for i := range 3 {
				resp, err := tr.RoundTrip(newRequest(t, context.Background(), tc.method, o.URL))
				if err != nil {
					t.Fatal(err)
				}
				if tc.freeAtOnce {
					if resp.Body != http.NoBody {
						t.Errorf("body = %T, want http.NoBody", resp.Body)
					}
					if s := tr.Stats(); s.Idle != 1 {
						t.Errorf("request %d: %d idle before the body is read, want 1", i, s.Idle)
					}
				}
				b, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != tc.wantCode || string(b) != tc.wantBody {
					t.Fatalf("request %d: got %d %.40q, want %d %.40q", i, resp.StatusCode, b, tc.wantCode, tc.wantBody)
				}
			}
			wantConns := int64(3)
			if tc.reused {
				wantConns = 1
			}
			if n := o.accepted.Load(); n != wantConns {
				t.Errorf("origin accepted %d connections, want %d", n, wantConns)
			}
			if s := tr.Stats(); s.Dials != uint64(wantConns) {
				t.Errorf("dials = %d, want %d", s.Dials, wantConns)
			}
			if !tc.reused {
				wantStats(t, tr, Stats{Dials: 3})
			}
		})
	}
}

func TestRequestConnectionCloseNotReused(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	tr := newTestTransport(t, Options{}, nil)
	for range 2 {
		req := newRequest(t, context.Background(), http.MethodGet, o.URL)
		req.Header.Set("Connection", "close")
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	wantStats(t, tr, Stats{Dials: 2})
}

// A pooled connection that the upstream closed while it was idle is
// replaced transparently.
func TestStaleConnectionRetry(t *testing.T) {
	checkGoroutines(t)
	o := newOrigin(t, func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	tr := newTestTransport(t, Options{}, nil)
	fetch(t, tr, http.MethodGet, o.URL)
	o.CloseClientConnections()
	waitFor(t, "origin to close the connection", func() bool { return o.active.Load() == 0 })
	resp, body := fetch(t, tr, http.MethodGet, o.URL)
	if resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	wantStats(t, tr, Stats{Idle: 1, Open: 1, Dials: 2, Reuses: 1, StaleRetries: 1})
}

// The upstream answers keep-alive, then drops the connection right after:
// the race a pooled connection can lose without any idle timeout.
func TestStaleConnectionRetryRaw(t *testing.T) {
	srv := newRawServer(t, func(n int64, c net.Conn, br *bufio.Reader) {
		if _, err := readRequest(br); err != nil {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n%d", n)
	})
	tr := newTestTransport(t, Options{}, nil)
	for i := 1; i <= 3; i++ {
		_, body := fetch(t, tr, http.MethodGet, srv.URL())
		if body != fmt.Sprint(i) {
			t.Fatalf("request %d answered on connection %s", i, body)
		}
	}
	wantStats(t, tr, Stats{Idle: 1, Open: 1, Dials: 3, Reuses: 2, StaleRetries: 2})
}

func TestNoRetry(t *testing.T) {
	tests := []struct {
		name   string
		script func(n int64, c net.Conn, br *bufio.Reader)
		stats  Stats
	}{
		{
			// The first request is on a new connection: its failure is
			// the upstream's, not staleness.
			name:   "fresh connection dropped",
			script: func(int64, net.Conn, *bufio.Reader) {},
			stats:  Stats{Dials: 1},
		},
		{
			// Part of a response arrived: the upstream saw the request.
			name: "partial response on reused connection",
			script: func(n int64, c net.Conn, br *bufio.Reader) {
				readRequest(br)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				readRequest(br)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Le")
			},
			stats: Stats{Dials: 1, Reuses: 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRawServer(t, tc.script)
			tr := newTestTransport(t, Options{}, nil)
			if tc.stats.Reuses > 0 {
				fetch(t, tr, http.MethodGet, srv.URL())
			}
			_, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodGet, srv.URL()))
			if err == nil {
				t.Fatal("RoundTrip succeeded, want an error")
			}
			wantStats(t, tr, tc.stats)
		})
	}
}

func TestBodyClosedEarly(t *testing.T) {
	big := strings.Repeat("x", 4<<20)
	tests := []struct {
		name   string
		body   string
		reused bool
	}{
		{"large remainder closes the connection", big, false},
		{"short buffered remainder is drained", strings.Repeat("y", 1000), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/next" {
					io.WriteString(w, "next")
					return
				}
				w.Header().Set("Content-Length", fmt.Sprint(len(tc.body)))
				io.WriteString(w, tc.body)
			})
			tr := newTestTransport(t, Options{}, nil)
			resp, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodGet, o.URL))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(resp.Body, make([]byte, 10)); err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if _, err := resp.Body.Read(make([]byte, 1)); !errors.Is(err, errBodyClosed) {
				t.Errorf("read after close: %v, want errBodyClosed", err)
			}
			_, body := fetch(t, tr, http.MethodGet, o.URL+"/next")
			if body != "next" {
				t.Fatalf("next response body %.40q: leftover bytes of the first", body)
			}
			wantDials := uint64(2)
			if tc.reused {
				wantDials = 1
			}
			if s := tr.Stats(); s.Dials != wantDials || s.Open != 1 {
				t.Errorf("stats %+v, want %d dials and 1 open", s, wantDials)
			}
		})
	}
}

// Bytes after the end of a response put the stream out of step: the
// connection must not be reused.
func TestExtraBytesNotReused(t *testing.T) {
	srv := newRawServer(t, func(n int64, c net.Conn, br *bufio.Reader) {
		for {
			if _, err := readRequest(br); err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n")
		}
	})
	tr := newTestTransport(t, Options{}, nil)
	fetch(t, tr, http.MethodGet, srv.URL())
	fetch(t, tr, http.MethodGet, srv.URL())
	wantStats(t, tr, Stats{Dials: 2})
}

func TestCancel(t *testing.T) {
	tests := []struct {
		name string
		// headerFirst: the response header and some body arrive before
		// the cancellation, which then interrupts the body read.
		headerFirst bool
	}{
		{"while waiting for the header", false},
		{"while reading the body", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			release := make(chan struct{})
			o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.headerFirst {
					io.WriteString(w, "start")
					w.(http.Flusher).Flush()
				}
				select {
				case <-release:
				case <-r.Context().Done():
				}
			})
			t.Cleanup(func() { close(release) })
			tr := newTestTransport(t, Options{}, nil)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			time.AfterFunc(50*time.Millisecond, cancel)
			start := time.Now()
			resp, err := tr.RoundTrip(newRequest(t, ctx, http.MethodGet, o.URL))
			if tc.headerFirst {
				if err != nil {
					t.Fatal(err)
				}
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("took %v to give up after the cancellation", d)
			}
			wantStats(t, tr, Stats{Dials: 1})
			waitFor(t, "origin to see the connection closed", func() bool { return o.active.Load() == 0 })
		})
	}
}

func TestTimeouts(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		ctxWait time.Duration
		want    error
	}{
		{"response header timeout", Options{ResponseHeaderTimeout: 50 * time.Millisecond}, 0, os.ErrDeadlineExceeded},
		{"context deadline", Options{}, 50 * time.Millisecond, context.DeadlineExceeded},
		{"context deadline before header timeout", Options{ResponseHeaderTimeout: time.Minute}, 50 * time.Millisecond, context.DeadlineExceeded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			release := make(chan struct{})
			o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/fast" {
					return
				}
				select {
				case <-release:
				case <-r.Context().Done():
				}
			})
			t.Cleanup(func() { close(release) })
			tr := newTestTransport(t, tc.opts, nil)
			// A deadline that a previous request set must not leak into
			// the next one on the same connection.
			fetch(t, tr, http.MethodGet, o.URL+"/fast")
			ctx := context.Background()
			if tc.ctxWait > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.ctxWait)
				defer cancel()
			}
			start := time.Now()
			_, err := tr.RoundTrip(newRequest(t, ctx, http.MethodGet, o.URL))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if d := time.Since(start); d < 40*time.Millisecond || d > 2*time.Second {
				t.Errorf("gave up after %v, want about 50ms", d)
			}
			if s := tr.Stats(); s.Open != 0 {
				t.Errorf("%d connections open after the timeout", s.Open)
			}
		})
	}
}

// The body is streamed: RoundTrip returns, and the first megabyte can be
// read, while the origin has not yet written the rest; reading the whole
// body allocates far less than its size.
func TestLargeBodyStreamed(t *testing.T) {
	checkGoroutines(t)
	const first, total = 1 << 20, 64 << 20
	more := make(chan struct{})
	chunk := make([]byte, 32<<10)
	rand.Read(chunk)
	o := newOrigin(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(total))
		for n := 0; n < total; n += len(chunk) {
			if n == first {
				w.(http.Flusher).Flush()
				<-more
			}
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	tr := newTestTransport(t, Options{}, nil)
	resp, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodGet, o.URL))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.ReadFull(resp.Body, make([]byte, first)); err != nil {
		t.Fatal(err)
	}
	close(more)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	n, err := io.CopyBuffer(io.Discard, resp.Body, make([]byte, 32<<10))
	runtime.ReadMemStats(&after)
	if err != nil || n != total-first {
		t.Fatalf("read %d bytes, err %v; want %d", n, err, total-first)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Errorf("allocated %d bytes reading a %d-byte body", alloc, total)
	}
	wantStats(t, tr, Stats{Idle: 1, Open: 1, Dials: 1})
}

func TestConcurrent(t *testing.T) {
	checkGoroutines(t)
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("chunked") {
			io.WriteString(w, r.URL.Path)
			w.(http.Flusher).Flush()
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(r.URL.Path)))
		io.WriteString(w, r.URL.Path)
	})
	const maxConns = 4
	tr := newTestTransport(t, Options{MaxConns: maxConns, MaxIdleConns: 3}, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				path := fmt.Sprintf("/%d/%d", g, i)
				url := o.URL + path
				if i%3 == 0 {
					url += "?chunked"
				}
				resp, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodGet, url))
				if err != nil {
					errs <- err
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || string(b) != path {
					errs <- fmt.Errorf("%s: body %q, err %v", path, b, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if m := o.maxOpen.Load(); m > maxConns {
		t.Errorf("origin saw %d connections open at once, cap %d", m, maxConns)
	}
	if s := tr.Stats(); s.Open > maxConns || s.Idle > 3 || s.Idle != s.Open {
		t.Errorf("stats after the run: %+v", s)
	}
}

func TestMaxConnsWait(t *testing.T) {
	checkGoroutines(t)
	o := newOrigin(t, func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	tr := newTestTransport(t, Options{MaxConns: 1}, nil)
	held, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodGet, o.URL))
	if err != nil {
		t.Fatal(err)
	}

	// The only connection is busy: a request waits, bounded by its context.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := tr.RoundTrip(newRequest(t, ctx, http.MethodGet, o.URL)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("over the cap: err = %v, want context.DeadlineExceeded", err)
	}

	// A waiter gets the connection as soon as it is released.
	done := make(chan string)
	go func() {
		resp, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodGet, o.URL))
		if err != nil {
			done <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- string(b)
	}()
	time.Sleep(20 * time.Millisecond)
	io.Copy(io.Discard, held.Body)
	held.Body.Close()
	if got := <-done; got != "ok" {
		t.Fatalf("waiter got %q", got)
	}
	wantStats(t, tr, Stats{Idle: 1, Open: 1, Dials: 1, Reuses: 1})
}

// At the cap, an idle connection to another host gives way to a request
// that would otherwise wait forever.
func TestMaxConnsOtherHostGivesWay(t *testing.T) {
	handler := func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }
	a, b := newOrigin(t, handler), newOrigin(t, handler)
	tr := newTestTransport(t, Options{MaxConns: 1}, nil)
	fetch(t, tr, http.MethodGet, a.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := tr.RoundTrip(newRequest(t, ctx, http.MethodGet, b.URL))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	wantStats(t, tr, Stats{Idle: 1, Open: 1, Dials: 2})
	waitFor(t, "the first host's connection to close", func() bool { return a.active.Load() == 0 })
}

func TestMaxIdleConns(t *testing.T) {
	const n = 5
	var arrived sync.WaitGroup
	arrived.Add(n)
	release := make(chan struct{})
	o := newOrigin(t, func(w http.ResponseWriter, _ *http.Request) {
		arrived.Done()
		<-release
		io.WriteString(w, "ok")
	})
	tr := newTestTransport(t, Options{MaxIdleConns: 2}, nil)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { fetch(t, tr, http.MethodGet, o.URL) })
	}
	arrived.Wait()
	close(release)
	wg.Wait()
	wantStats(t, tr, Stats{Idle: 2, Open: 2, Dials: n})
}

func TestIdleTimeout(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	tr := newTestTransport(t, Options{IdleTimeout: 30 * time.Millisecond}, nil)
	fetch(t, tr, http.MethodGet, o.URL)
	time.Sleep(60 * time.Millisecond)
	fetch(t, tr, http.MethodGet, o.URL)
	wantStats(t, tr, Stats{Idle: 1, Open: 1, Dials: 2})
	waitFor(t, "the expired connection to close", func() bool { return o.active.Load() == 1 })
}

func TestCloseIdleConnections(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	tr := newTestTransport(t, Options{}, nil)
	fetch(t, tr, http.MethodGet, o.URL)
	tr.CloseIdleConnections()
	wantStats(t, tr, Stats{Dials: 1})
	waitFor(t, "the origin to see the close", func() bool { return o.active.Load() == 0 })
}

// Close may be called while another goroutine is blocked in Read.
func TestCloseDuringRead(t *testing.T) {
	checkGoroutines(t)
	release := make(chan struct{})
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "start")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	tr := newTestTransport(t, Options{}, nil)
	resp, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodGet, o.URL))
	if err != nil {
		t.Fatal(err)
	}
	readErr := make(chan error)
	go func() {
		_, err := io.ReadAll(resp.Body)
		readErr <- err
	}()
	time.Sleep(30 * time.Millisecond)
	resp.Body.Close()
	if err := <-readErr; !errors.Is(err, errBodyClosed) {
		t.Errorf("read err = %v, want errBodyClosed", err)
	}
	wantStats(t, tr, Stats{Dials: 1})
}

func Test1xxResponses(t *testing.T) {
	srv := newRawServer(t, func(_ int64, c net.Conn, br *bufio.Reader) {
		for {
			if _, err := readRequest(br); err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"+
				"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	tr := newTestTransport(t, Options{}, nil)
	var got []string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		got = append(got, fmt.Sprintf("%d %s", code, h.Get("Link")))
		return nil
	}}
	for range 2 {
		req := newRequest(t, httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, srv.URL())
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "ok" {
			t.Fatalf("got %d %q", resp.StatusCode, b)
		}
	}
	want := "103 </style.css>; rel=preload"
	if len(got) != 2 || got[0] != want || got[1] != want {
		t.Errorf("1xx seen: %q", got)
	}
	wantStats(t, tr, Stats{Idle: 1, Open: 1, Dials: 1, Reuses: 1})
}

func TestBadResponses(t *testing.T) {
	tests := []struct {
		name, response string
	}{
		{"garbage", "NOT HTTP\r\n\r\n"},
		{"switching protocols", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n"},
		{"endless 1xx", strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 10)},
		{"header too large", "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", maxResponseHeaderBytes) + "\r\n\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRawServer(t, func(_ int64, c net.Conn, br *bufio.Reader) {
				if _, err := readRequest(br); err == nil {
					io.WriteString(c, tc.response)
				}
			})
			tr := newTestTransport(t, Options{}, nil)
			if _, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodGet, srv.URL())); err == nil {
				t.Fatal("RoundTrip succeeded")
			}
			wantStats(t, tr, Stats{Dials: 1})
		})
	}
}

func TestFallback(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "direct") })
	tests := []struct {
		name     string
		req      func() *http.Request
		fallback bool
	}{
		{"GET", func() *http.Request { return newRequest(t, context.Background(), http.MethodGet, o.URL) }, false},
		{"POST with body", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, o.URL, strings.NewReader("data"))
			return r
		}, true},
		{"PUT without body", func() *http.Request { return newRequest(t, context.Background(), http.MethodPut, o.URL) }, true},
		{"GET with body", func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, o.URL, strings.NewReader("data"))
			return r
		}, true},
		{"Upgrade", func() *http.Request {
			r := newRequest(t, context.Background(), http.MethodGet, o.URL)
			r.Header.Set("Connection", "Upgrade")
			r.Header.Set("Upgrade", "websocket")
			return r
		}, true},
		{"https", func() *http.Request {
			return newRequest(t, context.Background(), http.MethodGet, strings.Replace(o.URL, "http:", "https:", 1))
		}, true},
		{"userinfo", func() *http.Request {
			return newRequest(t, context.Background(), http.MethodGet, strings.Replace(o.URL, "http://", "http://u:p@", 1))
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fb := &recordingTransport{}
			tr := newTestTransport(t, Options{}, fb)
			resp, err := tr.RoundTrip(tc.req())
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if got := fb.calls.Load() == 1; got != tc.fallback {
				t.Errorf("fallback used: %v, want %v", got, tc.fallback)
			}
			if s := tr.Stats(); (s.Fallbacks == 1) != tc.fallback || (s.Dials == 1) == tc.fallback {
				t.Errorf("stats %+v", s)
			}
		})
	}
	t.Run("none", func(t *testing.T) {
		tr := newTestTransport(t, Options{}, nil)
		r, _ := http.NewRequest(http.MethodPost, o.URL, strings.NewReader("data"))
		if _, err := tr.RoundTrip(r); !errors.Is(err, ErrNoFallback) {
			t.Errorf("err = %v, want ErrNoFallback", err)
		}
	})
}

func TestDialError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	tr := newTestTransport(t, Options{MaxConns: 1}, nil)
	for range 2 { // the failed dial must give its slot back
		if _, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodGet, "http://"+addr)); err == nil {
			t.Fatal("RoundTrip to a closed port succeeded")
		}
	}
	wantStats(t, tr, Stats{Dials: 2})
}

func TestHeaderHasToken(t *testing.T) {
	tests := []struct {
		values []string
		token  string
		want   bool
	}{
		{[]string{"close"}, "close", true},
		{[]string{"Keep-Alive, CLOSE"}, "close", true},
		{[]string{"keep-alive", " \tclose\t "}, "close", true},
		{[]string{"closed"}, "close", false},
		{[]string{"x-close, notclose"}, "close", false},
		{[]string{""}, "close", false},
		{nil, "upgrade", false},
		{[]string{"keep-alive,Upgrade"}, "upgrade", true},
	}
	for _, tc := range tests {
		if got := headerHasToken(tc.values, tc.token); got != tc.want {
			t.Errorf("headerHasToken(%q, %q) = %v, want %v", tc.values, tc.token, got, tc.want)
		}
	}
}

// ResponseHeaderTimeout bounds the header only, and the lazily kept read
// deadline of earlier requests never cuts a later one short.
func TestResponseHeaderTimeoutOnlyBoundsHeader(t *testing.T) {
	checkGoroutines(t)
	const rht = 50 * time.Millisecond
	release := make(chan struct{})
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow-body":
			io.WriteString(w, "head ")
			w.(http.Flusher).Flush()
			time.Sleep(3 * rht)
			io.WriteString(w, "tail")
		case "/slow-header":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		default:
			io.WriteString(w, "ok")
		}
	})
	t.Cleanup(func() { close(release) })
	tr := newTestTransport(t, Options{ResponseHeaderTimeout: rht}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	get := func(path string) (string, error) {
		resp, err := tr.RoundTrip(newRequest(t, ctx, http.MethodGet, o.URL+path))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	steps := []struct {
		path, want string
		sleep      time.Duration // before the request: lets the kept deadline expire
	}{
		{"/", "ok", 0},
		{"/", "ok", 2 * rht},
		{"/slow-body", "head tail", 0},
		{"/", "ok", rht / 2},
		{"/slow-body", "head tail", 2 * rht},
	}
	for i, s := range steps {
		time.Sleep(s.sleep)
		if got, err := get(s.path); err != nil || got != s.want {
			t.Fatalf("step %d %s: %q, %v", i, s.path, got, err)
		}
	}
	if _, err := get("/slow-header"); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("slow header: err = %v, want a timeout", err)
	}
	wantStats(t, tr, Stats{Dials: 1, Reuses: 5})
}
