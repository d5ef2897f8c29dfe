package embedded

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const benchBatch = 64

// benchPayloads is one batch of event-sized (~400 byte) payloads.
func benchPayloads() [][]byte {
	batch := make([][]byte, benchBatch)
	for i := range batch {
		batch[i] = fmt.Appendf(nil, `{"v":1,"id":"%06d","client_ip":"198.51.100.7","path":"/%s"}`, i, strings.Repeat("p", 330))
	}
	return batch
}

func benchQueueStore(b *testing.B) *Store {
	b.Helper()
	s, err := Open(b.Context(), filepath.Join(b.TempDir(), FileName), Options{QueueCapacity: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func reportEvents(b *testing.B, events int) {
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkEnqueue64 enqueues durable (fsynced) batches of 64 ~400-byte
// events; p is producers per GOMAXPROCS, sharing fsyncs by group commit.
func BenchmarkEnqueue64(b *testing.B) {
	for _, p := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("p=%d", p), func(b *testing.B) {
			s := benchQueueStore(b)
			ctx := b.Context()
			b.ReportAllocs()
			b.SetParallelism(p)
			b.RunParallel(func(pb *testing.PB) {
				batch := benchPayloads()
				for pb.Next() {
					if err := s.Enqueue(ctx, "escalation", batch...); err != nil {
						b.Error(err)
						return
					}
				}
			})
			reportEvents(b, b.N*benchBatch)
			st := s.Stats()
			b.ReportMetric(float64(st.Writes)/float64(max(st.Commits, 1)), "writes/commit")
		})
	}
}

// BenchmarkDequeueAck64 leases 64 events and acks them (one durable
// commit) per iteration.
func BenchmarkDequeueAck64(b *testing.B) {
	s := benchQueueStore(b)
	ctx := b.Context()
	batch := benchPayloads()
	for range b.N {
		if err := s.Enqueue(ctx, "escalation", batch...); err != nil {
			b.Fatal(err)
		}
	}
	ids := make([]string, 0, benchBatch)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		msgs, err := s.Dequeue(ctx, "escalation", benchBatch, time.Minute)
		if err != nil || len(msgs) != benchBatch {
			b.Fatalf("Dequeue = %d messages, %v", len(msgs), err)
		}
		ids = ids[:0]
		for _, m := range msgs {
			ids = append(ids, m.ID)
		}
		if err := s.Ack(ctx, "escalation", ids...); err != nil {
			b.Fatal(err)
		}
	}
	reportEvents(b, b.N*benchBatch)
}

// BenchmarkQueuePipeline runs 8 producers and one consumer (Dequeue +
// Ack) at once, as the intake and the escalation engine do.
func BenchmarkQueuePipeline(b *testing.B) {
	s := benchQueueStore(b)
	ctx := b.Context()
	total := b.N * benchBatch
	done := make(chan error, 1)
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		for got := 0; got < total; {
			msgs, err := s.Dequeue(ctx, "escalation", 256, time.Minute)
			if err != nil {
				done <- err
				return
			}
			ids := make([]string, len(msgs))
			for i, m := range msgs {
				ids[i] = m.ID
			}
			if err := s.Ack(ctx, "escalation", ids...); err != nil {
				done <- err
				return
			}
			got += len(msgs)
		}
		done <- nil
	}()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		batch := benchPayloads()
		for pb.Next() {
			if err := s.Enqueue(ctx, "escalation", batch...); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	reportEvents(b, total)
}

func BenchmarkAppendHistoryParallel(b *testing.B) {
	s := benchQueueStore(b)
	ctx := b.Context()
	rec := benchPayloads()[0]
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			if err := s.AppendHistory(ctx, fmt.Sprintf("client:%d", i%5000), rec); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkListHistory(b *testing.B) {
	s := benchQueueStore(b)
	ctx := b.Context()
	rec := benchPayloads()[0]
	for range 150 {
		if err := s.AppendHistory(ctx, "client:1", rec); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if recs, err := s.ListHistory(ctx, "client:1", 20); err != nil || len(recs) != 20 {
			b.Fatal(len(recs), err)
		}
	}
}
