package challenge

import (
	"net/http"
	"testing"
	"time"
)

// discardWriter is a ResponseWriter that keeps nothing, so that benchmarks
// measure the service rather than a recorder.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

func BenchmarkCheckPass(b *testing.B) {
	s := newTestService(b, Config{}, nil)
	r := withPass(s, "/articles/1", mint(s, testClient, testUA, s.clock.Now(), time.Hour))
	r.Header.Add("Cookie", "theme=dark; _ga=GA1.2.3.4")
	if !s.CheckPass(r, testClient) {
		b.Fatal("pass refused")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if !s.CheckPass(r, testClient) {
			b.Fatal("pass refused")
		}
	}
}

func BenchmarkCheckPassParallel(b *testing.B) {
	s := newTestService(b, Config{}, nil)
	r := withPass(s, "/articles/1", mint(s, testClient, testUA, s.clock.Now(), time.Hour))
	s.CheckPass(r, testClient)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !s.CheckPass(r, testClient) {
				b.Error("pass refused")
				return
			}
		}
	})
}

// BenchmarkCheckPassUncached is the first request with a pass: the full
// Ed25519 verification, paid once per token and instance.
func BenchmarkCheckPassUncached(b *testing.B) {
	s := newTestService(b, Config{}, nil)
	r := withPass(s, "/", mint(s, testClient, testUA, s.clock.Now(), time.Hour))
	b.ReportAllocs()
	for b.Loop() {
		s.verified = newVerifiedCache(verifiedCacheSize)
		if !s.CheckPass(r, testClient) {
			b.Fatal("pass refused")
		}
	}
}

func BenchmarkCheckPassNoCookie(b *testing.B) {
	s := newTestService(b, Config{}, nil)
	r := browserRequest(http.MethodGet, "/", nil)
	b.ReportAllocs()
	for b.Loop() {
		if s.CheckPass(r, testClient) {
			b.Fatal("pass without cookie")
		}
	}
}

func BenchmarkExempt(b *testing.B) {
	s := newTestService(b, Config{ExemptPaths: []string{"/api/"}}, nil)
	r := browserRequest(http.MethodGet, "/articles/some-long-slug/comments", nil)
	b.ReportAllocs()
	for b.Loop() {
		if s.Exempt(r) {
			b.Fatal("exempt")
		}
	}
}

// BenchmarkServe issues a proof-of-work page: random id and seed, record
// sealed (HMAC-SHA256) into the page, page rendered. No store access.
func BenchmarkServe(b *testing.B) {
	s := newTestService(b, Config{}, nil)
	r := browserRequest(http.MethodGet, "/articles/1?page=2", nil)
	r.Header.Set("Accept-Language", "en-GB,en;q=0.9")
	w := &discardWriter{h: make(http.Header)}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		s.Serve(w, r, testClient, 40)
	}
}

func BenchmarkServeParallel(b *testing.B) {
	s := newTestService(b, Config{}, nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := browserRequest(http.MethodGet, "/articles/1?page=2", nil)
		w := &discardWriter{h: make(http.Header)}
		for pb.Next() {
			clear(w.h)
			s.Serve(w, r, testClient, 40)
		}
	})
}

// BenchmarkVerifyPoW is a full accepted solution: seal checked, hash
// checked, spent marker written to the embedded store (SetNX), pass signed.
func BenchmarkVerifyPoW(b *testing.B) {
	s := newTestService(b, Config{MinDifficulty: 1, MaxDifficulty: 1}, nil)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		ch := s.issue(b, "/", 40)
		nonce := solve(b, ch.seed, 1)
		b.StartTimer()
		if res := s.submit(b, testClient, ch.challenge, nonce, "1"); res.StatusCode != http.StatusSeeOther {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
}

// BenchmarkOpenRecord is the seal check of a submitted record.
func BenchmarkOpenRecord(b *testing.B) {
	s := newTestService(b, Config{}, nil)
	ch := s.issue(b, "/articles/1?page=2", 40)
	b.ReportAllocs()
	for b.Loop() {
		if _, why := s.openRecord(ch.challenge); why != "" {
			b.Fatal(why)
		}
	}
}
