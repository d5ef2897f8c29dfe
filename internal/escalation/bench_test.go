package escalation

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/events"
)

func TestHeuristicsTable(t *testing.T) {
	now := time.Now()
	firefoxOrder := []string{"host", "user-agent", "accept", "accept-language", "accept-encoding", "connection"}
	tests := []struct {
		name string
		ev   events.Event
		want []int
	}{
		{"chrome full", chromePage("192.0.2.1", "/", "", now), nil},
		{"chrome without client hints or fetch metadata", events.Event{UserAgent: chromeUA, Path: "/", Method: "GET",
			Headers: map[string]string{"Accept": "*/*"}}, []int{fNoClientHints, fNoFetchMetadata, fNoAcceptLanguage, fAcceptAnyPage}},
		{"requests order behind a browser UA", events.Event{UserAgent: chromeUA, Path: "/", Method: "GET",
			Headers:     map[string]string{"Sec-Ch-Ua": "x", "Sec-Fetch-Mode": "navigate", "Accept-Language": "en", "Accept": "text/html"},
			HeaderOrder: []string{"host", "user-agent", "accept-encoding", "accept", "connection"}}, []int{fLibraryHeaderOrder}},
		{"firefox order is not curl's", events.Event{UserAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
			Path: "/", Method: "GET", HeaderOrder: firefoxOrder,
			Headers: map[string]string{"Sec-Fetch-Dest": "document", "Accept-Language": "en", "Accept": "text/html"}}, nil},
		{"probe", events.Event{UserAgent: chromeUA, Path: "/WP-Login.php", Method: "PROPFIND", Headers: map[string]string{"Sec-Ch-Ua": "x", "Sec-Fetch-Mode": "navigate", "Accept-Language": "en", "Accept": "text/html"}},
			[]int{fUnusualMethod, fProbePath}},
		{"challenge pass", events.Event{Kind: events.KindChallengePass, UserAgent: chromeUA}, []int{fChallengePass}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fv featureVec
			heuristics(&tt.ev, classify(&tt.ev), &fv)
			var got []int
			for i, x := range fv {
				if x != 0 {
					got = append(got, i)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("features %v, want %v", got, tt.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		path, dest, accept string
		want               requestClass
	}{
		{"/", "document", "", classPage},
		{"/static/a.css", "", "", classAsset},
		{"/img/x.PNG?v=2", "", "", classAsset},
		{"/articles/1", "", "text/html", classPage},
		{"/logo", "", "image/avif,image/webp", classAsset},
		{"/api/data", "empty", "", classAsset},
		{"/file.css", "document", "", classPage},
	}
	for _, tt := range tests {
		ev := events.Event{Path: tt.path, Headers: map[string]string{"Sec-Fetch-Dest": tt.dest, "Accept": tt.accept}}
		if got := classify(&ev); got != tt.want {
			t.Errorf("classify(%q, dest %q, accept %q) = %d, want %d", tt.path, tt.dest, tt.accept, got, tt.want)
		}
	}
}

func TestTemplateHash(t *testing.T) {
	same := [][2]string{
		{"/articles/123", "/articles/98765"},
		{"/u/3f2a9c0d11", "/u/aa00bb11cc22"},
		{"/p/550e8400-e29b-41d4-a716-446655440000", "/p/6ba7b810-9dad-11d1-80b4-00c04fd430c8"},
		{"/blog/how-to-bake-bread", "/blog/ten-tips-for-gardening"},
		{"/page2", "/page17?x=1"},
		{"/a/b/c/d/e", "/a/b/c/d/f/g"},
	}
	for _, p := range same {
		if templateHash(p[0]) != templateHash(p[1]) {
			t.Errorf("%q and %q have different templates", p[0], p[1])
		}
	}
	differ := [][2]string{{"/articles/1", "/category/1"}, {"/", "/about"}, {"/a/1", "/a/1/comments"}}
	for _, p := range differ {
		if templateHash(p[0]) == templateHash(p[1]) {
			t.Errorf("%q and %q share a template", p[0], p[1])
		}
	}
}

// TestWindowStateSize pins the per-key state to its budget.
func TestWindowStateSize(t *testing.T) {
	if s := unsafeSizeof(); s > 128 {
		t.Errorf("windowState is %d bytes, budget 128", s)
	}
}

// TestMemoryMillionIPs measures the heap held by the windows after one
// million distinct addresses.
func TestMemoryMillionIPs(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: one million events")
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	e, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ev := chromePage("", "/articles/1", "", time.Now())
	ev.Time = time.Time{}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 1_000_000 {
		var a [4]byte
		v := rng.Uint32()
		a[0], a[1], a[2], a[3] = byte(v>>24)|1, byte(v>>16), byte(v>>8), byte(v)
		ev.ClientIP = netip.AddrFrom4(a).String()
		e.Score(ctx, ev)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	inuse := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("1,000,000 IPs: %d IP, %d subnet, %d fingerprint entries; heap in use %.1f MiB",
		e.ips.entries.Load(), e.subnets.entries.Load(), e.fingerprints.entries.Load(), float64(inuse)/(1<<20))
	if inuse > 256<<20 {
		t.Errorf("heap in use %d MiB, budget 256 MiB", inuse>>20)
	}
	runtime.KeepAlive(e)
}

// mixedEvents is realistic traffic: people with their assets, stealth
// scrapers, library clients, from a few thousand addresses.
func mixedEvents(n int) []events.Event {
	rng := rand.New(rand.NewPCG(5, 6))
	start := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	people := make([]*person, 2000)
	for i := range people {
		people[i] = newPerson(fmt.Sprintf("198.51.%d.%d", i/250, i%250+1), uint64(i))
	}
	out := make([]events.Event, 0, n)
	now := start
	for len(out) < n {
		now = now.Add(time.Millisecond)
		switch r := rng.IntN(10); {
		case r < 7:
			evs, _ := people[rng.IntN(len(people))].next(now)
			out = append(out, evs...)
		case r < 9:
			ip := fmt.Sprintf("203.0.%d.%d", rng.IntN(4), rng.IntN(250)+1)
			out = append(out, chromePage(ip, fmt.Sprintf("/articles/%d", rng.IntN(100000)), "", now))
		default:
			out = append(out, events.Event{Time: now, ClientIP: fmt.Sprintf("192.0.2.%d", rng.IntN(250)+1), Method: "GET",
				Path: "/", UserAgent: "python-requests/2.32", HeaderOrder: []string{"host", "user-agent", "accept-encoding", "accept", "connection"}})
		}
	}
	return out[:n]
}

func BenchmarkScore(b *testing.B) {
	evs := mixedEvents(1 << 14)
	clock := newFakeClock()
	e, _ := newTestEngine(b, clock, func(o *Options) { o.MaxIPs, o.MaxSubnets, o.MaxFingerprints, o.Shards = 0, 0, 0, 0 })
	ctx := context.Background()
	// Warm up: windows populated and the navigation model trained.
	for _, ev := range evs {
		clock.now = ev.Time
		e.Score(ctx, ev)
	}
	clock.now = evs[len(evs)-1].Time
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		e.Score(ctx, evs[i&(len(evs)-1)])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkScoreParallel(b *testing.B) {
	evs := mixedEvents(1 << 14)
	clock := newFakeClock()
	clock.now = evs[len(evs)-1].Time
	e, _ := newTestEngine(b, clock, func(o *Options) { o.MaxIPs, o.MaxSubnets, o.MaxFingerprints, o.Shards = 0, 0, 0, 0 })
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(len(evs))
		for pb.Next() {
			e.Score(ctx, evs[i&(len(evs)-1)])
			i++
		}
	})
}
