package aiservice

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/events"
	"github.com/scrapedefense/scrapedefense/internal/hmacsig"
	"github.com/scrapedefense/scrapedefense/internal/telemetry"
)

// memKV stands in for the store so that the benchmark measures the
// handler, not the disk. The other CommandStore methods are unused.
type memKV struct {
	CommandStore
	mu sync.Mutex
	m  map[string][]byte
}

func (k *memKV) SetNX(_ context.Context, key string, v []byte, _ time.Duration) (bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.m[key]; ok {
		return false, nil
	}
	k.m[key] = v
	return true, nil
}

type discardQueue struct{}

func (discardQueue) Enqueue(context.Context, []events.Event) error { return nil }

// signedBodies pre-builds n distinct signed bodies of batch events each, so
// that every iteration has a fresh signature.
func signedBodies(b *testing.B, n, batch int, now time.Time) (bodies [][]byte, sigs []string) {
	b.Helper()
	for i := range n {
		evs := manyEvents(batch)
		evs[0]["path"] = fmt.Sprintf("/bench/%d", i)
		body := eventsBody(b, evs...)
		bodies = append(bodies, body)
		sigs = append(sigs, Sign(testSecret, now, body))
	}
	return bodies, sigs
}

func benchWebhook(b *testing.B, st CommandStore, batch int) {
	svc, err := New(Options{
		Senders:       map[string][]byte{testSender: testSecret},
		Store:         st,
		Enqueuer:      discardQueue{},
		Telemetry:     telemetry.New("ai_service", telemetry.BuildInfo{}),
		Now:           func() time.Time { return testNow },
		RatePerSecond: 1e9, RateBurst: 1 << 30,
	})
	if err != nil {
		b.Fatal(err)
	}
	h := svc.Handler()
	bodies, sigs := signedBodies(b, b.N, batch, testNow)
	b.ReportAllocs()
	b.SetBytes(int64(len(bodies[0])))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, _ := http.NewRequest(http.MethodPost, RouteWebhook, bytes.NewReader(bodies[i]))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set(HeaderSender, testSender)
		r.Header.Set(HeaderSignature, sigs[i])
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusAccepted {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// BenchmarkWebhook measures one signed events request through the whole
// handler (auth, replay check, strict decode, validation, enqueue,
// metrics), with an in-memory KV.
func BenchmarkWebhook(b *testing.B) {
	for _, batch := range []int{1, 100} {
		b.Run(fmt.Sprintf("events=%d", batch), func(b *testing.B) {
			benchWebhook(b, &memKV{m: make(map[string][]byte)}, batch)
		})
	}
}

// BenchmarkWebhookEmbeddedStore is the same with the replay check going to
// the embedded bbolt store (without fsync).
func BenchmarkWebhookEmbeddedStore(b *testing.B) {
	benchWebhook(b, openStore(b), 1)
}

func BenchmarkVerify(b *testing.B) {
	v := newVerifier(map[string][]byte{testSender: testSecret}, []byte("dummy"))
	body := bytes.Repeat([]byte("x"), 1024)
	sig, _ := hmacsig.Parse(Sign(testSecret, testNow, body))
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, ok := v.verify(testSender, &sig, body); !ok {
			b.Fatal("verify failed")
		}
	}
}
