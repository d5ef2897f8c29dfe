package demosite

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// discardWriter is a ResponseWriter that keeps nothing, so the benchmarks
// measure the handler rather than a recorder. Like net/http's own writer it
// implements io.ReaderFrom, which ServeContent's copy uses.
type discardWriter struct{ h http.Header }

func (w *discardWriter) ReadFrom(r io.Reader) (int64, error) { return io.Copy(io.Discard, r) }
func (w *discardWriter) Header() http.Header                 { return w.h }
func (w *discardWriter) Write(b []byte) (int, error)         { return len(b), nil }
func (w *discardWriter) WriteHeader(int)                     {}

func benchmarkGet(b *testing.B, target string, header http.Header) {
	h := Handler()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.Host = "demo.test"
	for k, v := range header {
		req.Header[k] = v
	}
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}

func BenchmarkServeArticle(b *testing.B)  { benchmarkGet(b, "/notes/heron-office-hours", nil) }
func BenchmarkServeAsset(b *testing.B)    { benchmarkGet(b, "/static/site.css", nil) }
func BenchmarkServeFeed(b *testing.B)     { benchmarkGet(b, "/feed.xml", nil) }
func BenchmarkServeSearch(b *testing.B)   { benchmarkGet(b, "/search?q=winter+birds", nil) }
func BenchmarkServeNotFound(b *testing.B) { benchmarkGet(b, "/no/such/page", nil) }
func BenchmarkServeNotModified(b *testing.B) {
	etag := Handler().(*site).files["/static/site.css"].header.Get("ETag")
	benchmarkGet(b, "/static/site.css", http.Header{"If-None-Match": {etag}})
}

func BenchmarkHandler(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = Handler()
	}
}
