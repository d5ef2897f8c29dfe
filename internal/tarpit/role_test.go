package tarpit

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/decision"
	"github.com/scrapedefense/scrapedefense/internal/events"
	"github.com/scrapedefense/scrapedefense/internal/store"
	"github.com/scrapedefense/scrapedefense/internal/store/embedded"
)

func openStore(t *testing.T) store.Store {
	t.Helper()
	s, err := embedded.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fastConfig drips quickly so that tests finish in milliseconds.
func fastConfig() Config {
	c := DefaultConfig()
	c.Seed = []byte("test-seed")
	c.DripBytesPerSecond = 1 << 20
	c.ChunkSize = 64 << 10
	c.MaxSession = 5 * time.Second
	c.MaxBytesPerSecond = 1 << 30
	return c
}

type testRole struct {
	*Role
	srv    *httptest.Server
	mu     sync.Mutex
	events []events.Event
}

func newTestRole(t *testing.T, cfg Config, st store.Store) *testRole {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tr := &testRole{}
	r, err := New(ctx, Options{Config: cfg, Store: st, Emit: func(e events.Event) {
		tr.mu.Lock()
		tr.events = append(tr.events, e)
		tr.mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	tr.Role = r
	tr.srv = httptest.NewServer(r.Handler())
	t.Cleanup(func() {
		tr.srv.Close()
		cancel()
		r.sched.wait()
	})
	return tr
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestRoleDeterministicAcrossInstances(t *testing.T) {
	st := openStore(t)
	a, b := newTestRole(t, fastConfig(), st), newTestRole(t, fastConfig(), st)
	other := fastConfig()
	other.Seed = []byte("other")
	c := newTestRole(t, other, st)
	path := "/.well-known/sd-archive/x/y.html"
	_, pa := get(t, a.srv.URL+path)
	_, pb := get(t, b.srv.URL+path)
	_, pc := get(t, c.srv.URL+path)
	// The Host header differs by port between the servers: compare pages
	// generated for the same host.
	want := string(a.gen.AppendPage(nil, "same", path))
	if got := string(b.gen.AppendPage(nil, "same", path)); got != want {
		t.Error("two instances with the same seed differ")
	}
	if string(c.gen.AppendPage(nil, "same", path)) == want {
		t.Error("different seed gave the same page")
	}
	if !strings.Contains(pa, "</html>") || !strings.Contains(pb, "</html>") || !strings.Contains(pc, "</html>") {
		t.Error("dripped page incomplete")
	}
	if pa2 := func() string { _, s := get(t, a.srv.URL+path); return s }(); pa2 != pa {
		t.Error("same URL, same instance, different page")
	}
}

func TestRoleStoredSeed(t *testing.T) {
	st := openStore(t)
	cfg := fastConfig()
	cfg.Seed = nil
	a, b := newTestRole(t, cfg, st), newTestRole(t, cfg, st)
	if string(a.gen.AppendPage(nil, "h", "/p")) != string(b.gen.AppendPage(nil, "h", "/p")) {
		t.Error("instances sharing a store got different seeds")
	}
}

func TestHopLimitWritesOneDecision(t *testing.T) {
	st := openStore(t)
	cfg := fastConfig()
	cfg.HopLimit = 3
	r := newTestRole(t, cfg, st)
	for i := range 6 {
		code, _ := get(t, r.srv.URL+"/.well-known/sd-archive/a/"+string(rune('a'+i))+".html")
		if code != http.StatusOK {
			t.Fatalf("hop %d: status %d", i, code)
		}
	}
	ds, err := st.ListDecisions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].Value != "127.0.0.1" || ds[0].Action != decision.ActionBlock || ds[0].Source != "tarpit" || ds[0].Reason != "tarpit: 3 hops" {
		t.Fatalf("decisions = %+v, want one block for 127.0.0.1", ds)
	}
	if ds[0].Expires.IsZero() {
		t.Error("block decision has no TTL")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.events) != 6 || r.events[0].Kind != events.KindTarpit || r.events[0].Source != "tarpit" {
		t.Errorf("events: %d, first %+v", len(r.events), r.events[0])
	}
}

func TestEntranceIsTrapEvent(t *testing.T) {
	r := newTestRole(t, fastConfig(), openStore(t))
	get(t, r.srv.URL+"/.well-known/sd-archive/")
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.events) != 1 || r.events[0].Kind != events.KindTrap {
		t.Errorf("entrance events = %+v", r.events)
	}
}

func TestWithClientAddress(t *testing.T) {
	st := openStore(t)
	cfg := fastConfig()
	cfg.HopLimit = 1
	r := newTestRole(t, cfg, st)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.Handler().ServeHTTP(w, req.WithContext(WithClient(req.Context(), mustAddr("198.51.100.7"))))
	}))
	defer srv.Close()
	get(t, srv.URL+"/anything")
	if _, ok, _ := st.GetDecision(context.Background(), "198.51.100.7"); !ok {
		t.Error("no decision for the client address given by WithClient")
	}
}

func TestBudgetConnectionCap(t *testing.T) {
	cfg := fastConfig()
	cfg.MaxConns = 1
	cfg.DripBytesPerSecond = 10
	cfg.ChunkSize = 10
	r := newTestRole(t, cfg, openStore(t))
	// First client: held in a slow drip.
	conn, err := net.Dial("tcp", r.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /.well-known/sd-archive/a.html HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(conn)
	if line, err := br.ReadString('\n'); err != nil || !strings.Contains(line, "200") {
		t.Fatalf("first client: %q %v", line, err)
	}
	start := time.Now()
	code, body := get(t, r.srv.URL+"/.well-known/sd-archive/b.html")
	if code != http.StatusServiceUnavailable || body != cheapPage {
		t.Errorf("second client: %d %q", code, body)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("cheap answer took %v", d)
	}
	if got := r.conns.active.Load(); got != 1 {
		t.Errorf("active = %d, want 1", got)
	}
}

func TestBudgetSubnetCap(t *testing.T) {
	cfg := fastConfig()
	cfg.MaxConnsPerSubnet = 1
	cfg.DripBytesPerSecond = 10
	cfg.ChunkSize = 10
	r := newTestRole(t, cfg, openStore(t))
	conn, err := net.Dial("tcp", r.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
	bufio.NewReader(conn).ReadString('\n')
	if code, _ := get(t, r.srv.URL+"/y"); code != http.StatusTooManyRequests {
		t.Errorf("same /24: status %d, want 429", code)
	}
}

func TestBadPathsGetCheapAnswer(t *testing.T) {
	r := newTestRole(t, fastConfig(), openStore(t))
	for _, p := range []string{"/a/%2e%2e/b", "/" + strings.Repeat("a/", 40), "/%ff%fe", "/a%00b", "/" + strings.Repeat("x", 2000)} {
		code, body := get(t, r.srv.URL+p)
		if code != http.StatusNotFound || body != cheapPage {
			t.Errorf("%.40s: %d", p, code)
		}
	}
}

func TestNeverReadingClientTimesOut(t *testing.T) {
	cfg := fastConfig()
	cfg.WriteTimeout = 200 * time.Millisecond
	cfg.ChunkSize = 1 << 20
	cfg.DripBytesPerSecond = 64 << 20
	r := newTestRole(t, cfg, openStore(t))
	before := runtime.NumGoroutine()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close() // the client never reads
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	ended := make(chan string, 1)
	// More than any socket buffer holds, so writes must block.
	ss := &session{conn: server, data: make([]byte, 256<<20), started: time.Now(), deadline: time.Now().Add(time.Minute),
		end: func(ss *session, reason string) { ss.conn.Close(); ended <- reason }}
	r.sched.add(ss)
	select {
	case reason := <-ended:
		if reason != endWriteTimeout {
			t.Errorf("session ended with %q, want %q", reason, endWriteTimeout)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("never-reading client was not dropped")
	}
	waitGoroutines(t, before)
}

func TestShutdownClosesSessionsWithoutLeaks(t *testing.T) {
	cfg := fastConfig()
	cfg.DripBytesPerSecond = 10
	cfg.ChunkSize = 10
	st := openStore(t)
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	r, err := New(ctx, Options{Config: cfg, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r.Handler())
	var conns []net.Conn
	for range 5 {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		io.WriteString(c, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
		bufio.NewReader(c).ReadString('\n')
	}
	if n := r.conns.active.Load(); n != 5 {
		t.Errorf("active %d, want 5", n)
	}
	cancel()
	r.sched.wait()
	srv.Close()
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.ReadAll(c); err != nil {
			t.Errorf("session not closed at shutdown: %v", err)
		}
		c.Close()
	}
	for deadline := time.Now().Add(5 * time.Second); r.conns.active.Load() != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("active %d after shutdown", r.conns.active.Load())
		}
	}
	waitGoroutines(t, before)
}

func TestNewRejectsBadModelFile(t *testing.T) {
	cfg := fastConfig()
	cfg.ModelFile = filepath.Join(t.TempDir(), "nope.model")
	if _, err := New(context.Background(), Options{Config: cfg, Store: openStore(t)}); err == nil || !strings.Contains(err.Error(), "tarpit.model_file") {
		t.Errorf("New with missing model = %v", err)
	}
}

func TestMetricsAndHealth(t *testing.T) {
	r := newTestRole(t, fastConfig(), openStore(t))
	get(t, r.srv.URL+"/.well-known/sd-archive/a.html")
	admin := httptest.NewServer(r.AdminHandler())
	defer admin.Close()
	_, metrics := get(t, admin.URL+"/metrics")
	for _, want := range []string{"tarpit_entries_total", "tarpit_active_connections", "tarpit_bytes_sent_total", "tarpit_time_wasted_seconds_total", "tarpit_hops_total", `tarpit_degraded_total{reason="conns"`, `route="/maze"`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(metrics, "a.html") {
		t.Error("raw maze path in metrics")
	}
	if code, _ := get(t, admin.URL+"/health"); code != http.StatusOK {
		t.Errorf("health %d", code)
	}
}

func TestGzipTrap(t *testing.T) {
	cfg := fastConfig()
	cfg.GzipBomb = true
	cfg.GzipBombSize = 8 << 20
	cfg.HopLimit = 2
	r := newTestRole(t, cfg, openStore(t))
	req, _ := http.NewRequest("GET", r.srv.URL+"/.well-known/sd-archive/a.html", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" || len(body) > 64<<10 {
		t.Errorf("gzip trap: encoding %q, %d bytes", resp.Header.Get("Content-Encoding"), len(body))
	}
}
