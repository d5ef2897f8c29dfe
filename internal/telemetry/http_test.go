package telemetry

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestNormalizeMethod(t *testing.T) {
	tests := map[string]string{
		"GET": "GET", "HEAD": "HEAD", "POST": "POST", "PUT": "PUT", "DELETE": "DELETE",
		"PATCH": "PATCH", "OPTIONS": "OPTIONS",
		"get": "other", "CONNECT": "other", "TRACE": "other", "PROPFIND": "other", "": "other",
	}
	for in, want := range tests {
		if got := normalizeMethod(in); got != want {
			t.Errorf("normalizeMethod(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestObserveHTTPCodes(t *testing.T) {
	tests := []struct {
		code int
		want string
	}{
		{200, "200"}, {404, "404"}, {599, "599"}, {999, "999"},
		{0, "other"}, {-1, "other"}, {99, "other"}, {1000, "other"},
	}
	for _, tt := range tests {
		tel := newTestTelemetry(t)
		tel.ObserveHTTP("/r", http.MethodGet, tt.code, time.Millisecond)
		if got := testutil.ToFloat64(tel.httpRequests.WithLabelValues("/r", "GET", tt.want)); got != 1 {
			t.Errorf("code %d: http_requests_total{code=%q} = %v, want 1", tt.code, tt.want, got)
		}
	}
}

func TestObserveHTTPDoesNotAllocate(t *testing.T) {
	tel := newTestTelemetry(t)
	tel.ObserveHTTP("/maze/{page}", http.MethodGet, 200, time.Millisecond) // resolve once
	allocs := testing.AllocsPerRun(1000, func() {
		tel.ObserveHTTP("/maze/{page}", http.MethodGet, 200, time.Millisecond)
	})
	if allocs != 0 {
		t.Errorf("ObserveHTTP allocates %v times per call, want 0", allocs)
	}
}

func TestInstrumentStatus(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"nothing written", func(http.ResponseWriter, *http.Request) {}, "200"},
		{"body only", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hi") }, "200"},
		{"explicit", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }, "418"},
		{"first wins", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusNotFound)
			w.WriteHeader(http.StatusOK)
		}, "404"},
		{"informational first", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusCreated)
		}, "201"},
		{"flush", func(w http.ResponseWriter, _ *http.Request) { w.(http.Flusher).Flush() }, "200"},
		{"read from", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.(io.ReaderFrom).ReadFrom(strings.NewReader("body"))
		}, "200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tel := newTestTelemetry(t)
			rec := httptest.NewRecorder()
			tel.Instrument("/x", tt.handler).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/x", nil))
			if got := testutil.ToFloat64(tel.httpRequests.WithLabelValues("/x", "GET", tt.want)); got != 1 {
				t.Errorf("http_requests_total{code=%q} = %v, want 1", tt.want, got)
			}
		})
	}
}

func TestInstrumentPanicCountsAs500(t *testing.T) {
	tel := newTestTelemetry(t)
	h := tel.Instrument("/boom", http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("panic value %v, want boom re-raised", p)
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/boom", nil))
	}()
	if got := testutil.ToFloat64(tel.httpRequests.WithLabelValues("/boom", "POST", "500")); got != 1 {
		t.Errorf("http_requests_total{code=500} = %v, want 1", got)
	}
}

// TestInstrumentKeepsOptionalInterfaces runs a real server: Flush must reach
// the client before the handler returns, Hijack must hand over the
// connection, and ResponseController must reach the server's writer through
// Unwrap.
func TestInstrumentKeepsOptionalInterfaces(t *testing.T) {
	tel := newTestTelemetry(t)
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.Handle("/stream", tel.Instrument("/stream", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Errorf("SetWriteDeadline through the wrapper: %v", err)
		}
		_, _ = io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		<-release
		_, _ = io.WriteString(w, "second\n")
	})))
	mux.Handle("/hijack", tel.Instrument("/hijack", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		conn, rw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Errorf("Hijack: %v", err)
			return
		}
		defer conn.Close()
		_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\nhello")
		_ = rw.Flush()
	})))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	t.Run("flush", func(t *testing.T) {
		resp, err := http.Get(srv.URL + "/stream")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		close(release) // only after the first line arrived: proves the flush
		if err != nil || line != "first\n" {
			t.Fatalf("first line = %q, %v", line, err)
		}
	})

	t.Run("hijack", func(t *testing.T) {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.WriteString(conn, "GET /hijack HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("status %d, want 101", resp.StatusCode)
		}
	})

	// Observations happen when the handler returns; wait for both.
	deadline := time.Now().Add(5 * time.Second)
	for {
		stream := testutil.ToFloat64(tel.httpRequests.WithLabelValues("/stream", "GET", "200"))
		hijack := testutil.ToFloat64(tel.httpRequests.WithLabelValues("/hijack", "GET", "101"))
		if stream == 1 && hijack == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("observed stream=%v hijack=%v, want 1 and 1", stream, hijack)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestHijackUnsupported(t *testing.T) {
	tel := newTestTelemetry(t)
	var err error
	tel.Instrument("/h", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _, err = w.(http.Hijacker).Hijack()
	})).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/h", nil))
	if !errors.Is(err, http.ErrNotSupported) {
		t.Errorf("Hijack on a recorder: err = %v, want ErrNotSupported", err)
	}
}

// nopWriter is a ResponseWriter that costs nothing, to measure the wrapper.
type nopWriter struct{ h http.Header }

func (w nopWriter) Header() http.Header       { return w.h }
func (nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (nopWriter) WriteHeader(int)             {}

func TestInstrumentDoesNotAllocate(t *testing.T) {
	tel := newTestTelemetry(t)
	h := tel.Instrument("/", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	w := nopWriter{h: http.Header{}}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	h.ServeHTTP(w, r)
	if allocs := testing.AllocsPerRun(1000, func() { h.ServeHTTP(w, r) }); allocs != 0 {
		t.Errorf("Instrument allocates %v times per request, want 0", allocs)
	}
}

func BenchmarkObserveHTTP(b *testing.B) {
	tel := newTestTelemetry(b)
	b.ReportAllocs()
	for b.Loop() {
		tel.ObserveHTTP("/maze/{page}", http.MethodGet, 200, 1500*time.Microsecond)
	}
}

func BenchmarkObserveHTTPParallel(b *testing.B) {
	tel := newTestTelemetry(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			tel.ObserveHTTP("/maze/{page}", http.MethodGet, 200, 1500*time.Microsecond)
		}
	})
}

func BenchmarkInstrument(b *testing.B) {
	tel := newTestTelemetry(b)
	h := tel.Instrument("/", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	w := nopWriter{h: http.Header{}}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

func BenchmarkError(b *testing.B) {
	tel := newTestTelemetry(b)
	b.ReportAllocs()
	for b.Loop() {
		tel.Error("store_write")
	}
}
