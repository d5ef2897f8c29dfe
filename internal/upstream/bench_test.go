package upstream

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkRoundTrip compares this transport with a tuned http.Transport on
// the same origin: a 2 KiB page with Content-Length, like bench/origin.
func BenchmarkRoundTrip(b *testing.B) {
	page := "<!doctype html><p>" + strings.Repeat("x", 2048-19) + "\n"
	length := strconv.Itoa(len(page))
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Length", length)
		io.WriteString(w, page)
	}))
	defer o.Close()

	transports := []struct {
		name string
		new  func() http.RoundTripper
	}{
		{"upstream", func() http.RoundTripper { return NewTransport(Options{MaxIdleConns: 1024}, nil) }},
		{"http.Transport", func() http.RoundTripper {
			return &http.Transport{
				DialContext:         (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
				MaxIdleConns:        1024,
				MaxIdleConnsPerHost: 1024,
				IdleConnTimeout:     90 * time.Second,
				WriteBufferSize:     32 << 10,
				ReadBufferSize:      32 << 10,
			}
		}},
	}
	roundTrip := func(b *testing.B, rt http.RoundTripper, req *http.Request, buf []byte) {
		resp, err := rt.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyBuffer(io.Discard, resp.Body, buf); err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
	// The request as a reverse proxy sends it: a cancellable context and
	// browser-like headers.
	newReq := func(b *testing.B, ctx context.Context) *http.Request {
		req := newRequest(b, ctx, http.MethodGet, o.URL+"/page")
		req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0.0.0")
		req.Header.Set("Accept", "text/html,application/xhtml+xml")
		req.Header.Set("Accept-Encoding", "gzip, deflate, br")
		req.Header.Set("X-Forwarded-For", "10.1.2.3")
		return req
	}
	for _, tc := range transports {
		b.Run(tc.name+"/sequential", func(b *testing.B) {
			rt := tc.new()
			defer rt.(interface{ CloseIdleConnections() }).CloseIdleConnections()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, buf := newReq(b, ctx), make([]byte, 32<<10)
			b.ReportAllocs()
			for b.Loop() {
				roundTrip(b, rt, req, buf)
			}
		})
		b.Run(tc.name+"/parallel", func(b *testing.B) {
			rt := tc.new()
			defer rt.(interface{ CloseIdleConnections() }).CloseIdleConnections()
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				req, buf := newReq(b, ctx), make([]byte, 32<<10)
				for pb.Next() {
					roundTrip(b, rt, req, buf)
				}
			})
		})
	}
}
