package telemetry

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// httpKey identifies one resolved set of HTTP series. method is already
// normalised, so the key space is bounded by routes × 8 × codes.
type httpKey struct {
	route  string
	method string
	code   int
}

// httpSeries holds the resolved children so the hot path does no label
// hashing or allocation.
type httpSeries struct {
	duration prometheus.Observer
	latency  prometheus.Observer
	requests prometheus.Counter
}

// ObserveHTTP records one served request: http_request_duration_seconds,
// request_latency_seconds (endpoint = route) and http_requests_total. route
// must be a route template ("/webhook", "/maze/{page}"), never a raw path.
// Methods outside GET, HEAD, POST, PUT, DELETE, PATCH and OPTIONS are
// recorded as "other". Repeated (route, method, code) combinations do not
// allocate.
func (t *Telemetry) ObserveHTTP(route, method string, code int, d time.Duration) {
	key := httpKey{route: route, method: normalizeMethod(method), code: normalizeCode(code)}
	s, ok := t.httpSeries.load(key)
	if !ok {
		s = t.httpSeriesSlow(key)
	}
	sec := d.Seconds()
	s.duration.Observe(sec)
	s.latency.Observe(sec)
	s.requests.Inc()
}

func (t *Telemetry) httpSeriesSlow(key httpKey) *httpSeries {
	if s, ok := t.httpSeries.loadOrCreate(key, maxHTTPSeries, func() *httpSeries { return t.newHTTPSeries(key) }); ok {
		return s
	}
	// Too many distinct routes: fold the rest into one route. The overflow
	// keys are bounded by methods × codes, so they bypass the limit.
	t.overflow.Inc()
	key.route = OverflowRoute
	s, _ := t.httpSeries.loadOrCreate(key, -1, func() *httpSeries { return t.newHTTPSeries(key) })
	return s
}

func (t *Telemetry) newHTTPSeries(key httpKey) *httpSeries {
	route := labelValue(key.route)
	code := OtherLabel
	if key.code != 0 {
		code = strconv.Itoa(key.code)
	}
	return &httpSeries{
		duration: t.httpDuration.WithLabelValues(route, key.method, code),
		latency:  t.latency.WithLabelValues(route),
		requests: t.httpRequests.WithLabelValues(route, key.method, code),
	}
}

// normalizeMethod maps the method to a fixed set so clients cannot create
// series. Methods are case-sensitive (RFC 9110), so "get" is "other".
func normalizeMethod(m string) string {
	switch m {
	case http.MethodGet:
		return http.MethodGet
	case http.MethodHead:
		return http.MethodHead
	case http.MethodPost:
		return http.MethodPost
	case http.MethodPut:
		return http.MethodPut
	case http.MethodDelete:
		return http.MethodDelete
	case http.MethodPatch:
		return http.MethodPatch
	case http.MethodOptions:
		return http.MethodOptions
	default:
		return OtherLabel
	}
}

// normalizeCode keeps valid three-digit status codes and maps the rest to 0,
// which is exported as "other".
func normalizeCode(code int) int {
	if code < 100 || code > 999 {
		return 0
	}
	return code
}

// Instrument wraps h so every request is recorded by ObserveHTTP under route.
// The status is the first final status written (200 when the handler writes
// nothing); a handler that panics is recorded as 500 and a hijacked
// connection that wrote no status as 101. The ResponseWriter passed to h
// keeps http.Flusher, http.Hijacker and io.ReaderFrom, and unwraps for
// http.ResponseController.
func (t *Telemetry) Instrument(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := t.writers.Get().(*statusWriter)
		sw.ResponseWriter = w
		finished := false
		defer func() {
			code := sw.finalCode(finished)
			t.ObserveHTTP(route, r.Method, code, time.Since(start))
			if finished {
				// The handler has returned, so by the ResponseWriter
				// contract nothing uses sw any more.
				*sw = statusWriter{}
				t.writers.Put(sw)
			}
		}()
		h.ServeHTTP(sw, r)
		finished = true
	})
}

// statusWriter records the status code on its way to the client.
type statusWriter struct {
	http.ResponseWriter
	code     int
	hijacked bool
}

func (w *statusWriter) finalCode(finished bool) int {
	switch {
	case w.code != 0:
		return w.code
	case !finished:
		return http.StatusInternalServerError
	case w.hijacked:
		return http.StatusSwitchingProtocols
	default:
		return http.StatusOK
	}
}

func (w *statusWriter) WriteHeader(code int) {
	// 1xx responses other than 101 are informational: the final status
	// comes later.
	if w.code == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer's
// optional methods (deadlines, full-duplex).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush implements http.Flusher; flushing commits the headers with 200 if
// none were written.
func (w *statusWriter) Flush() {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack implements http.Hijacker. It fails with http.ErrNotSupported when
// the underlying connection cannot be hijacked (HTTP/2).
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.hijacked = true
	}
	return conn, rw, err
}

// ReadFrom implements io.ReaderFrom so io.Copy into the wrapper still uses
// sendfile/splice when the underlying writer can.
func (w *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{w.ResponseWriter}, r)
}

// writerOnly hides ReadFrom so io.Copy does not recurse.
type writerOnly struct{ io.Writer }
