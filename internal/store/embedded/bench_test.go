package embedded

import (
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/decision"
)

// benchStore opens a store with fsync on, as in production.
func benchStore(b *testing.B) *Store {
	b.Helper()
	s, err := Open(b.Context(), filepath.Join(b.TempDir(), FileName), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func benchDecision(i uint32) decision.Decision {
	d, _ := decision.New(fmt.Sprintf("10.%d.%d.%d", (i>>16)&0xff, (i>>8)&0xff, i&0xff),
		decision.ActionBlock, "benchmark", "bench", time.Hour, time.Now())
	return d
}

// BenchmarkPutDecision measures one writer: every put pays a commit.
func BenchmarkPutDecision(b *testing.B) {
	s := benchStore(b)
	ctx := b.Context()
	ds := make([]decision.Decision, 4096)
	for i := range ds {
		ds[i] = benchDecision(uint32(i))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := s.PutDecision(ctx, ds[i%len(ds)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkPutDecisionParallel measures group commit: goroutines share
// transactions. p is goroutines per GOMAXPROCS.
func BenchmarkPutDecisionParallel(b *testing.B) {
	for _, p := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("p=%d", p), func(b *testing.B) {
			s := benchStore(b)
			ctx := b.Context()
			var n atomic.Uint32
			b.ReportAllocs()
			b.ResetTimer()
			b.SetParallelism(p)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := s.PutDecision(ctx, benchDecision(n.Add(1))); err != nil {
						b.Error(err)
						return
					}
				}
			})
			st := s.Stats()
			b.ReportMetric(float64(st.Writes)/float64(max(st.Commits, 1)), "writes/commit")
		})
	}
}

func BenchmarkGetDecision(b *testing.B) {
	s := benchStore(b)
	ctx := b.Context()
	for i := range 1000 {
		if err := s.PutDecision(ctx, benchDecision(uint32(i))); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok, err := s.GetDecision(ctx, "10.0.1.44"); err != nil || !ok {
				b.Error(ok, err)
				return
			}
		}
	})
}

func BenchmarkListDecisions1000(b *testing.B) {
	s := benchStore(b)
	ctx := b.Context()
	for i := range 1000 {
		if err := s.PutDecision(ctx, benchDecision(uint32(i))); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if ds, err := s.ListDecisions(ctx); err != nil || len(ds) != 1000 {
			b.Fatal(len(ds), err)
		}
	}
}

func BenchmarkKVGet(b *testing.B) {
	s := benchStore(b)
	ctx := b.Context()
	if err := s.Set(ctx, "challenge:abc", make([]byte, 128), time.Hour); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok, err := s.Get(ctx, "challenge:abc"); err != nil || !ok {
				b.Error(ok, err)
				return
			}
		}
	})
}

func BenchmarkSetNXParallel(b *testing.B) {
	s := benchStore(b)
	ctx := b.Context()
	var n atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.SetNX(ctx, fmt.Sprint("nonce:", n.Add(1)), []byte("1"), time.Minute); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkIncrParallel(b *testing.B) {
	s := benchStore(b)
	ctx := b.Context()
	b.ReportAllocs()
	b.ResetTimer()
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Incr(ctx, "hops:192.0.2.1", 1, time.Minute); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
