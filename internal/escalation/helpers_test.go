package escalation

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scrapedefense/scrapedefense/internal/events"
)

// fakeClock is a settable clock for tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newTestEngine(t testing.TB, clock *fakeClock, mod func(*Options)) (*Engine, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts := Options{Now: clock.Now, Registerer: reg, MaxIPs: 10_000, MaxSubnets: 1_000, MaxFingerprints: 1_000, Shards: 8}
	if mod != nil {
		mod(&opts)
	}
	e, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e, reg
}

const chromeUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

var chromeOrder = []string{
	"host", "connection", "sec-ch-ua", "sec-ch-ua-mobile", "sec-ch-ua-platform",
	"upgrade-insecure-requests", "user-agent", "accept", "sec-fetch-site", "sec-fetch-mode",
	"sec-fetch-user", "sec-fetch-dest", "accept-encoding", "accept-language",
}

// chromePage is a page request with Chrome's full headers.
func chromePage(ip, path, referer string, now time.Time) events.Event {
	h := map[string]string{
		"Accept":                    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
		"Accept-Language":           "en-US,en;q=0.9",
		"Accept-Encoding":           "gzip, deflate, br, zstd",
		"Sec-Ch-Ua":                 `"Chromium";v="131", "Not_A Brand";v="24"`,
		"Sec-Ch-Ua-Mobile":          "?0",
		"Sec-Ch-Ua-Platform":        `"Windows"`,
		"Sec-Fetch-Site":            "same-origin",
		"Sec-Fetch-Mode":            "navigate",
		"Sec-Fetch-User":            "?1",
		"Sec-Fetch-Dest":            "document",
		"Upgrade-Insecure-Requests": "1",
	}
	if referer != "" {
		h["Referer"] = referer
	}
	return events.Event{
		Version: events.SchemaVersion, Kind: events.KindRequest, Time: now, ClientIP: ip,
		Method: "GET", Host: "example.org", Path: path, UserAgent: chromeUA, Status: 200,
		Headers: h, HeaderOrder: chromeOrder, TLSFingerprint: "t13d1516h2_8daaf6152771_02713d6af862", Source: "edge",
	}
}

// chromeAsset is a sub-resource request of a page.
func chromeAsset(ip, path, dest, referer string, now time.Time) events.Event {
	ev := chromePage(ip, path, referer, now)
	ev.Headers = map[string]string{
		"Accept":          "*/*",
		"Accept-Language": "en-US,en;q=0.9",
		"Sec-Ch-Ua":       `"Chromium";v="131", "Not_A Brand";v="24"`,
		"Sec-Fetch-Site":  "same-origin",
		"Sec-Fetch-Mode":  "no-cors",
		"Sec-Fetch-Dest":  dest,
		"Referer":         referer,
	}
	return ev
}

// person simulates one visitor: pages with their assets, 2–10 s between
// pages, sometimes going back to a page already seen.
type person struct {
	ip      string
	rng     *rand.Rand
	visited []string
	current string
}

func newPerson(ip string, seed uint64) *person {
	return &person{ip: ip, rng: rand.New(rand.NewPCG(seed, 7))}
}

// next returns the events of the person's next page view starting at now,
// and the time the person spends reading it.
func (p *person) next(now time.Time) ([]events.Event, time.Duration) {
	var path string
	switch r := p.rng.IntN(10); {
	case len(p.visited) > 0 && r < 2:
		path = p.visited[p.rng.IntN(len(p.visited))]
	case r < 5:
		path = fmt.Sprintf("/articles/%d", p.rng.IntN(5000))
	case r < 7:
		path = fmt.Sprintf("/category/%s", []string{"news", "tech", "science", "sport"}[p.rng.IntN(4)])
	case r < 8:
		path = "/"
	default:
		path = fmt.Sprintf("/articles/%d/comments", p.rng.IntN(5000))
	}
	p.visited = append(p.visited, path)
	ref := ""
	if p.current != "" {
		ref = "https://example.org" + p.current
	}
	p.current = path
	evs := []events.Event{chromePage(p.ip, path, ref, now)}
	page := "https://example.org" + path
	assets := []struct{ path, dest string }{
		{"/static/site.css", "style"}, {"/static/app.js", "script"},
		{fmt.Sprintf("/img/%d.webp", p.rng.IntN(1000)), "image"}, {fmt.Sprintf("/img/%d.webp", p.rng.IntN(1000)), "image"},
	}
	n := 1 + p.rng.IntN(len(assets))
	t := now
	for _, a := range assets[:n] {
		t = t.Add(time.Duration(20+p.rng.IntN(150)) * time.Millisecond)
		evs = append(evs, chromeAsset(p.ip, a.path, a.dest, page, t))
	}
	read := 2*time.Second + time.Duration(p.rng.Int64N(int64(8*time.Second)))
	return evs, read
}

func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue metric
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return 0
}
