package edge

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/config"
	"github.com/scrapedefense/scrapedefense/internal/decision"
	"github.com/scrapedefense/scrapedefense/internal/role"
	"github.com/scrapedefense/scrapedefense/internal/store"
	"github.com/scrapedefense/scrapedefense/internal/store/embedded"
)

// Requests used throughout the tests.
const (
	browserUA   = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	googlebotUA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
	gptbotUA    = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)"
	claudebotUA = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)"

	testToken = "test-api-token-0123456789"
)

// Addresses inside the published ranges of the embedded snapshot
// (internal/crawlers/data/ip-ranges): googlebot.txt 192.178.4.0/27 and
// openai-gptbot.txt 20.171.206.0/24. testCatalog checks that they still are.
var (
	googlebotAddr = netip.MustParseAddr("192.178.4.1")
	gptbotAddr    = netip.MustParseAddr("20.171.206.1")
)

// trustedPeer is the loopback source address the tests use for a trusted
// proxy; requests from 127.0.0.1 come from an untrusted peer. Linux routes
// the whole of 127.0.0.0/8 to loopback.
const trustedPeer = "127.0.0.2"

// browserHeader is what a desktop Chrome sends for a page over HTTPS: it
// matches no weight rule of the default policy.
func browserHeader() http.Header {
	h := http.Header{}
	h.Set("User-Agent", browserUA)
	h.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8")
	h.Set("Accept-Language", "en-GB,en;q=0.9")
	h.Set("Accept-Encoding", "gzip, deflate, br")
	h.Set("Sec-Ch-Ua", `"Chromium";v="131", "Not_A Brand";v="24"`)
	h.Set("Sec-Ch-Ua-Mobile", "?0")
	h.Set("Sec-Ch-Ua-Platform", `"Linux"`)
	h.Set("Sec-Fetch-Site", "none")
	h.Set("Sec-Fetch-Mode", "navigate")
	h.Set("Sec-Fetch-Dest", "document")
	h.Set("Sec-Fetch-User", "?1")
	h.Set("Upgrade-Insecure-Requests", "1")
	return h
}

// testEdge is a running edge role with its store.
type testEdge struct {
	role    *Role
	public  string // base URL of the public listener
	admin   string // base URL of the admin listener
	pubAddr string
}

// startEdge runs a real edge role on loopback in front of upstream (empty:
// the demo site) and stops it when the test ends. mutate adjusts the
// configuration before the role is built.
func startEdge(t *testing.T, upstream string, mutate func(*config.Config)) *testEdge {
	t.Helper()
	return startEdgeOn(t, nil, upstream, mutate)
}

// startEdgeOn is startEdge over the given store (nil: a new one), so that
// several edges can share one.
func startEdgeOn(t *testing.T, st store.Store, upstream string, mutate func(*config.Config)) *testEdge {
	t.Helper()
	cfg := config.Default()
	cfg.Edge.Listen = "127.0.0.1:0"
	cfg.Edge.AdminListen = "127.0.0.1:0"
	cfg.Edge.Upstream = upstream
	cfg.Edge.Timeouts.Shutdown = 2 * time.Second
	cfg.Lists.RefreshInterval = 0 // never fetch lists from the Internet
	if mutate != nil {
		mutate(&cfg)
	}
	if st == nil {
		st = newStore(t)
	}
	r, err := newRoleOn(t, cfg, st)
	if err != nil {
		t.Fatalf("edge.New: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan []role.Endpoint, 1)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, func(eps ...role.Endpoint) { ready <- eps }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("edge.Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("edge did not stop within 10s")
		}
	})

	te := &testEdge{role: r}
	select {
	case eps := <-ready:
		for _, ep := range eps {
			switch ep.Name {
			case "public":
				te.public, te.pubAddr = "http://"+ep.Addr, ep.Addr
			case "admin":
				te.admin = "http://" + ep.Addr
			}
		}
	case err := <-done:
		t.Fatalf("edge.Run returned before ready: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("edge not ready within 10s")
	}
	if te.public == "" || te.admin == "" {
		t.Fatal("edge reported no public or admin endpoint")
	}
	te.settle(t)
	return te
}

// settleAddr is a TEST-NET-1 address no test uses otherwise.
var settleAddr = netip.MustParseAddr("192.0.2.255")

// settle waits until the role's decision watch runs: its first resync
// replaces the index with the store's content, so a decision put into the
// index alone before that would vanish. A decision written to the store and
// seen in the index is past that point.
func (te *testEdge) settle(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	d, err := decision.New(settleAddr.String(), decision.ActionBlock, "settle", "test", 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := te.role.store.PutDecision(ctx, d); err != nil {
		t.Fatalf("put decision: %v", err)
	}
	ix := te.role.FastPath().Index()
	eventually(t, 5*time.Second, "the decision watch to deliver a put", func() bool {
		_, ok := ix.Lookup(settleAddr, time.Now().UnixNano())
		return ok
	})
	if _, err := te.role.store.DeleteDecision(ctx, d.Key()); err != nil {
		t.Fatalf("delete decision: %v", err)
	}
	eventually(t, 5*time.Second, "the decision watch to deliver a delete", func() bool {
		_, ok := ix.Lookup(settleAddr, time.Now().UnixNano())
		return !ok
	})
}

// newRole builds (without running) an edge role over an embedded store in
// a temporary directory.
func newRole(t *testing.T, cfg config.Config) (*Role, error) {
	t.Helper()
	return newRoleOn(t, cfg, newStore(t))
}

// newStore opens an embedded store in a temporary directory.
func newStore(t *testing.T) store.Store {
	t.Helper()
	st, err := embedded.Open(context.Background(), filepath.Join(t.TempDir(), embedded.FileName), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func newRoleOn(t *testing.T, cfg config.Config, st store.Store) (*Role, error) {
	t.Helper()
	return New(context.Background(), Options{
		Config:   cfg,
		Store:    st,
		Logger:   slog.New(slog.DiscardHandler),
		APIToken: testToken,
	})
}

// client returns an HTTP client whose connections leave from the given
// loopback address ("" for the default, 127.0.0.1). It never uses an
// environment proxy and never follows redirects.
func client(t *testing.T, from string) *http.Client {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	tr := &http.Transport{Proxy: nil, DialContext: d.DialContext, DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// response is a finished exchange.
type response struct {
	code   int
	header http.Header
	body   string
}

// do sends a request with the given headers and reads the whole answer.
func do(t *testing.T, c *http.Client, method, url string, h http.Header, body io.Reader) response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if host := h.Get("Host"); host != "" {
		req.Host = host
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: string(b)}
}

// metric returns the value of the sample of name whose labels include all
// of labels (each as `key="value"`), from the admin listener's /metrics; 0
// when there is none.
func (te *testEdge) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	resp := do(t, client(t, ""), http.MethodGet, te.admin+"/metrics", nil, nil)
	if resp.code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", resp.code)
	}
	return sampleValue(t, resp.body, name, labels...)
}

func sampleValue(t *testing.T, exposition, name string, labels ...string) float64 {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(exposition))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
next:
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		sp := strings.LastIndexByte(rest, ' ')
		series := rest[:sp]
		for _, l := range labels {
			if !strings.Contains(series, l) {
				continue next
			}
		}
		v, err := strconv.ParseFloat(rest[sp+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		return v
	}
	return 0
}

// eventually polls cond every 10ms until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// withHeader returns a copy of h with k set to v.
func withHeader(h http.Header, kv ...string) http.Header {
	out := h.Clone()
	if out == nil {
		out = http.Header{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out.Set(kv[i], kv[i+1])
	}
	return out
}
