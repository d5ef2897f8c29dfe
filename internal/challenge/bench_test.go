package challenge

import (
	"context"
	"net/http"
	"sync"
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

// BenchmarkServe issues a proof-of-work page: random id, record written to
// the embedded store (group commit, no fsync in tests), page rendered.
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

// BenchmarkVerifyPoW is a full accepted solution: record read, hash check,
// spent marker (SetNX), pass signed.
func BenchmarkVerifyPoW(b *testing.B) {
	s := newTestService(b, Config{MinDifficulty: 1, MaxDifficulty: 1}, nil)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		ch := s.issue(b, "/", 40)
		nonce := solve(b, ch.id, 1)
		b.StartTimer()
		if res := s.submit(b, testClient, ch.id, nonce, "1"); res.StatusCode != http.StatusSeeOther {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
}

// memKV is a map-backed store.KV without TTL handling, to separate the
// service's own cost from the embedded store's write transaction.
type memKV struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (k *memKV) Get(_ context.Context, key string) ([]byte, bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.m[key]
	return v, ok, nil
}

func (k *memKV) Set(_ context.Context, key string, value []byte, _ time.Duration) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.m[key] = value
	return nil
}

func (k *memKV) SetNX(_ context.Context, key string, value []byte, _ time.Duration) (bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.m[key]; ok {
		return false, nil
	}
	k.m[key] = value
	return true, nil
}

func (k *memKV) Delete(_ context.Context, key string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.m, key)
	return nil
}

// BenchmarkServeMemKV is BenchmarkServe over an in-memory KV: the cost of
// the challenge itself (random id, record, page), without the store.
func BenchmarkServeMemKV(b *testing.B) {
	s := newTestService(b, Config{}, &memKV{m: make(map[string][]byte)})
	r := browserRequest(http.MethodGet, "/articles/1?page=2", nil)
	w := &discardWriter{h: make(http.Header)}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		s.Serve(w, r, testClient, 40)
	}
}
