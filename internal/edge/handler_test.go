package edge

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/config"
	"github.com/scrapedefense/scrapedefense/internal/events"
)

const originRobots = "User-agent: *\nDisallow: /private/\n"

// origin is the protected site: the far side of the edge's outbound calls.
type origin struct {
	srv     *httptest.Server
	release chan struct{} // closed to let /stream finish
}

// originSeen is what /echo reports about the request the origin received.
type originSeen struct {
	Host   string      `json:"host"`
	Header http.Header `json:"header"`
}

func startOrigin(t *testing.T) *origin {
	t.Helper()
	o := &origin{release: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/robots.txt", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, originRobots)
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(originSeen{Host: r.Host, Header: r.Header})
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		select {
		case <-o.release:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "second\n")
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "want an upgrade", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		_ = brw.Flush()
		for { // echo lines until the client goes away
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			_, _ = brw.WriteString("echo: " + line)
			if brw.Flush() != nil {
				return
			}
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "hello from origin\n")
	})
	o.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		select {
		case <-o.release:
		default:
			close(o.release)
		}
		o.srv.CloseClientConnections()
		o.srv.Close()
	})
	return o
}

// startProxyEdge runs an edge in front of a fresh origin. 127.0.0.2 is a
// trusted proxy; 127.0.0.1 is not.
func startProxyEdge(t *testing.T, mutate func(*config.Config)) (*testEdge, *origin) {
	t.Helper()
	o := startOrigin(t)
	te := startEdge(t, o.srv.URL, func(c *config.Config) {
		c.Edge.TrustedProxies = []string{trustedPeer + "/32"}
		c.Edge.MaxHeaderBytes = 8 << 10
		if mutate != nil {
			mutate(c)
		}
	})
	return te, o
}

func TestHandlerForwardingHeaders(t *testing.T) {
	t.Parallel()
	te, o := startProxyEdge(t, nil)
	upstreamHost := o.srv.Listener.Addr().String()

	tests := []struct {
		name     string
		from     string
		header   http.Header
		wantXFF  string
		wantReal string
	}{
		{
			name: "untrusted peer: client headers ignored and replaced",
			header: withHeader(browserHeader(),
				"X-Forwarded-For", "6.6.6.6", "X-Real-Ip", "6.6.6.7", "Forwarded", "for=6.6.6.8",
				"X-Forwarded-Host", "evil.example", "X-Forwarded-Proto", "https"),
			wantXFF: "127.0.0.1", wantReal: "127.0.0.1",
		},
		{
			name:    "trusted peer: chain kept and peer appended",
			from:    trustedPeer,
			header:  withHeader(browserHeader(), "X-Forwarded-For", "203.0.113.7, 198.51.100.1", "X-Forwarded-Proto", "https"),
			wantXFF: "203.0.113.7, 198.51.100.1, " + trustedPeer, wantReal: "198.51.100.1",
		},
		{
			name:     "trusted peer without forwarding headers is the client",
			from:     trustedPeer,
			header:   browserHeader(),
			wantXFF:  trustedPeer,
			wantReal: trustedPeer,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := withHeader(tt.header, "Host", "shop.example.test")
			resp := do(t, client(t, tt.from), http.MethodGet, te.public+"/echo", h, nil)
			if resp.code != http.StatusOK {
				t.Fatalf("status %d: %s", resp.code, resp.body)
			}
			var seen originSeen
			if err := json.Unmarshal([]byte(resp.body), &seen); err != nil {
				t.Fatalf("origin answer %q: %v", resp.body, err)
			}
			got := seen.Header
			if v := strings.Join(got.Values("X-Forwarded-For"), ", "); v != tt.wantXFF {
				t.Errorf("X-Forwarded-For = %q, want %q", v, tt.wantXFF)
			}
			if v := got.Get("X-Real-Ip"); v != tt.wantReal {
				t.Errorf("X-Real-Ip = %q, want %q", v, tt.wantReal)
			}
			if v := got.Get("X-Forwarded-Host"); v != "shop.example.test" {
				t.Errorf("X-Forwarded-Host = %q, want shop.example.test", v)
			}
			if v := got.Get("X-Forwarded-Proto"); v != "http" {
				t.Errorf("X-Forwarded-Proto = %q, want http", v)
			}
			if v := got.Get("Forwarded"); v != "" {
				t.Errorf("client's Forwarded header reached the origin: %q", v)
			}
			// SetURL sends the upstream's own host name; the client's is in
			// X-Forwarded-Host.
			if seen.Host != upstreamHost {
				t.Errorf("origin saw Host %q, want the upstream's %q", seen.Host, upstreamHost)
			}
			if got.Get("User-Agent") != browserUA {
				t.Errorf("User-Agent not passed on: %q", got.Get("User-Agent"))
			}
		})
	}
}

func TestHandlerBlock(t *testing.T) {
	t.Parallel()
	te, _ := startProxyEdge(t, nil)
	c := client(t, "")
	h := withHeader(browserHeader(), "User-Agent", gptbotUA)

	resp := do(t, c, http.MethodGet, te.public+"/articles/1", h, nil)
	if resp.code != http.StatusForbidden {
		t.Fatalf("GET status %d, want 403", resp.code)
	}
	if resp.body != defaultBlockPage {
		t.Errorf("body is not the block page:\n%s", resp.body)
	}
	if cc := resp.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	if ct := resp.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type = %q", ct)
	}

	head := do(t, c, http.MethodHead, te.public+"/articles/1", h, nil)
	if head.code != http.StatusForbidden || head.body != "" {
		t.Errorf("HEAD: status %d with %d body bytes, want 403 and none", head.code, len(head.body))
	}
	if cl := head.header.Get("Content-Length"); cl != strconv.Itoa(len(defaultBlockPage)) {
		t.Errorf("HEAD Content-Length = %q, want %d", cl, len(defaultBlockPage))
	}
	if got := te.metric(t, "edge_verdicts_total", `action="block"`, `rule="ai-crawlers"`); got != 2 {
		t.Errorf("edge_verdicts_total{action=block,rule=ai-crawlers} = %v, want 2", got)
	}
}

func TestHandlerThrottle(t *testing.T) {
	t.Parallel()
	te, _ := startProxyEdge(t, func(c *config.Config) {
		c.Edge.RateLimit.PerIP = config.Rate{Requests: 1, Per: time.Minute, Burst: 1}
	})
	c := client(t, "")
	if resp := do(t, c, http.MethodGet, te.public+"/", browserHeader(), nil); resp.code != http.StatusOK {
		t.Fatalf("first request: %d", resp.code)
	}
	resp := do(t, c, http.MethodGet, te.public+"/", browserHeader(), nil)
	if resp.code != http.StatusTooManyRequests {
		t.Fatalf("second request: %d, want 429", resp.code)
	}
	ra, err := strconv.Atoi(resp.header.Get("Retry-After"))
	if err != nil || ra < 1 {
		t.Errorf("Retry-After = %q, want an integer >= 1", resp.header.Get("Retry-After"))
	}
	if cc := resp.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
}

func TestHandlerBadInput(t *testing.T) {
	t.Parallel()
	te, _ := startProxyEdge(t, nil)
	errKind := func() float64 {
		return te.metric(t, "errors_total", `kind="bad_forwarded_header"`, `service="edge"`)
	}

	t.Run("malformed X-Forwarded-For from a trusted peer", func(t *testing.T) {
		before := errKind()
		h := withHeader(browserHeader(), "X-Forwarded-For", "203.0.113.7, not-an-address")
		resp := do(t, client(t, trustedPeer), http.MethodGet, te.public+"/", h, nil)
		if resp.code != http.StatusBadRequest {
			t.Fatalf("status %d, want 400", resp.code)
		}
		if got := errKind(); got != before+1 {
			t.Errorf("errors_total{kind=bad_forwarded_header} = %v, want %v", got, before+1)
		}
	})

	t.Run("malformed X-Forwarded-For from an untrusted peer is ignored", func(t *testing.T) {
		before := errKind()
		h := withHeader(browserHeader(), "X-Forwarded-For", "not-an-address")
		resp := do(t, client(t, ""), http.MethodGet, te.public+"/", h, nil)
		if resp.code != http.StatusOK {
			t.Fatalf("status %d, want 200", resp.code)
		}
		if got := errKind(); got != before {
			t.Errorf("errors_total{kind=bad_forwarded_header} = %v, want %v", got, before)
		}
	})

	t.Run("oversized header block", func(t *testing.T) {
		h := withHeader(browserHeader(), "X-Padding", strings.Repeat("a", 32<<10))
		resp := do(t, client(t, ""), http.MethodGet, te.public+"/", h, nil)
		if resp.code != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("status %d, want 431", resp.code)
		}
	})
}

func TestHandlerRobots(t *testing.T) {
	t.Parallel()
	te, _ := startProxyEdge(t, nil)
	c := client(t, "")
	var resp response
	// The first fetch from the origin happens as the role starts.
	eventually(t, 5*time.Second, "robots.txt with the AI agent groups", func() bool {
		resp = do(t, c, http.MethodGet, te.public+"/robots.txt", browserHeader(), nil)
		return resp.code == http.StatusOK && strings.Contains(resp.body, "User-agent: GPTBot\n")
	})
	for _, want := range []string{"Disallow: /private/\n", "User-agent: ClaudeBot\n", "Disallow: /\n"} {
		if !strings.Contains(resp.body, want) {
			t.Errorf("robots.txt lacks %q:\n%s", want, resp.body)
		}
	}
	if ct := resp.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q", ct)
	}
	// A declared AI crawler may read it: that is how it learns to stay away.
	bot := do(t, c, http.MethodGet, te.public+"/robots.txt", http.Header{"User-Agent": {claudebotUA}}, nil)
	if bot.code != http.StatusOK || bot.body != resp.body {
		t.Errorf("ClaudeBot got %d for robots.txt", bot.code)
	}
	if page := do(t, c, http.MethodGet, te.public+"/", http.Header{"User-Agent": {claudebotUA}}, nil); page.code != http.StatusForbidden {
		t.Errorf("ClaudeBot got %d for a page, want 403", page.code)
	}
}

func TestHandlerUpstreamDown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there any more
	te := startEdge(t, dead, nil)

	before := te.metric(t, "errors_total", `kind="upstream"`, `service="edge"`)
	resp := do(t, client(t, ""), http.MethodGet, te.public+"/", browserHeader(), nil)
	if resp.code != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", resp.code)
	}
	if got := te.metric(t, "errors_total", `kind="upstream"`, `service="edge"`); got != before+1 {
		t.Errorf("errors_total{kind=upstream} = %v, want %v", got, before+1)
	}
}

func TestHandlerUpgrade(t *testing.T) {
	t.Parallel()
	te, _ := startProxyEdge(t, nil)
	conn, err := net.DialTimeout("tcp", te.pubAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))

	var req strings.Builder
	req.WriteString("GET /ws HTTP/1.1\r\nHost: shop.example.test\r\n")
	_ = browserHeader().Write(&req)
	req.WriteString("Connection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	if _, err := io.WriteString(conn, req.String()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read upgrade response: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		t.Fatalf("got %s with Upgrade %q, want 101 websocket", resp.Status, resp.Header.Get("Upgrade"))
	}
	for _, msg := range []string{"hello\n", "again\n"} {
		if _, err := io.WriteString(conn, msg); err != nil {
			t.Fatal(err)
		}
		got, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("read echo: %v", err)
		}
		if got != "echo: "+msg {
			t.Errorf("echo = %q, want %q", got, "echo: "+msg)
		}
	}
}

func TestHandlerStreaming(t *testing.T) {
	t.Parallel()
	te, o := startProxyEdge(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, te.public+"/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = browserHeader()
	resp, err := client(t, "").Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()

	br := bufio.NewReader(resp.Body)
	first := make(chan string, 1)
	go func() {
		line, _ := br.ReadString('\n')
		first <- line
	}()
	select {
	case line := <-first:
		if line != "first\n" {
			t.Fatalf("first chunk = %q", line)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("first chunk not received while the origin holds the response open: the edge buffers")
	}
	close(o.release)
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "second\n" {
		t.Errorf("rest = %q, %v", rest, err)
	}
}

func TestHandlerEvents(t *testing.T) {
	t.Parallel()
	te, _ := startProxyEdge(t, nil)
	c := client(t, "")

	// A trivial browser request is not worth an event; the blocked one after
	// it is. The consumer is FIFO, so once the second is listed the first
	// would be too.
	if resp := do(t, c, http.MethodGet, te.public+"/trivial", browserHeader(), nil); resp.code != http.StatusOK {
		t.Fatalf("browser: %d", resp.code)
	}
	h := withHeader(browserHeader(), "User-Agent", gptbotUA, "Cookie", "session=secret")
	if resp := do(t, c, http.MethodGet, te.public+"/blocked?q=1", h, nil); resp.code != http.StatusForbidden {
		t.Fatalf("GPTBot: %d", resp.code)
	}

	var evs []events.Event
	eventually(t, 5*time.Second, "the block event in /api/v1/events/recent", func() bool {
		evs = recentEvents(t, te)
		return len(evs) > 0
	})
	var found *events.Event
	for i := range evs {
		switch evs[i].Path {
		case "/blocked":
			found = &evs[i]
		case "/trivial":
			t.Errorf("a trivial allow produced an event: %+v", evs[i])
		}
	}
	if found == nil {
		t.Fatalf("no event for /blocked in %+v", evs)
	}
	ev := *found
	if ev.Action != "block" || ev.Stage != "policy" || ev.Rule != "ai-crawlers" || ev.Source != "edge" ||
		ev.ClientIP != "127.0.0.1" || ev.UserAgent != gptbotUA || ev.Version != events.SchemaVersion {
		t.Errorf("event = %+v", ev)
	}
	if ev.Headers["Accept-Language"] == "" {
		t.Errorf("event headers lack Accept-Language: %v", ev.Headers)
	}
	if _, ok := ev.Headers["Cookie"]; ok {
		t.Error("event carries the Cookie header")
	}
}

func recentEvents(t *testing.T, te *testEdge) []events.Event {
	t.Helper()
	resp := do(t, client(t, ""), http.MethodGet, te.admin+"/api/v1/events/recent",
		http.Header{"Authorization": {"Bearer " + testToken}}, nil)
	if resp.code != http.StatusOK {
		t.Fatalf("GET /api/v1/events/recent: %d %s", resp.code, resp.body)
	}
	var evs []events.Event
	if err := json.Unmarshal([]byte(resp.body), &evs); err != nil {
		t.Fatalf("decode events: %v", err)
	}
	return evs
}

// TestHandlerEventsDropped fills a one-event queue. The role is built but
// not run, so that no consumer drains the queue while the test looks.
func TestHandlerEventsDropped(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.Edge.Upstream = "http://127.0.0.1:1" // never dialled: every request is blocked
	cfg.Edge.Events.QueueSize = 1
	r, err := newRole(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	const n = 3
	for i := range n {
		req := httptest.NewRequest(http.MethodGet, "/articles/"+strconv.Itoa(i), nil)
		req.RemoteAddr = "192.0.2.1:40000"
		req.Header = withHeader(browserHeader(), "User-Agent", gptbotUA)
		rec := httptest.NewRecorder()
		r.handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusForbidden {
			t.Fatalf("request %d: %d, want 403", i, rec.Code)
		}
	}
	rec := httptest.NewRecorder()
	r.tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	for name, want := range map[string]float64{"events_dropped_total": n - 1, "events_queued_total": 1} {
		if got := sampleValue(t, body, name, `service="edge"`); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if r.queue.Len() != 1 {
		t.Errorf("queue holds %d events, want 1", r.queue.Len())
	}
}

// TestHandlerDemoSite checks that an edge without an upstream serves the
// built-in demo site through the proxy.
func TestHandlerDemoSite(t *testing.T) {
	t.Parallel()
	te := startEdge(t, "", nil)
	resp := do(t, client(t, ""), http.MethodGet, te.public+"/", browserHeader(), nil)
	if resp.code != http.StatusOK || resp.body == "" {
		t.Fatalf("demo site: %d, %d bytes", resp.code, len(resp.body))
	}
	if got := te.metric(t, "http_requests_total", `route="proxy"`, `code="200"`); got < 1 {
		t.Errorf("http_requests_total{route=proxy,code=200} = %v", got)
	}
}

// TestHandlerEventFieldsClipped: a client controls path, user agent and
// headers; the events the edge queues hold bounded copies of them.
func TestHandlerEventFieldsClipped(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.Edge.Upstream = "http://127.0.0.1:1"
	r, err := newRole(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/"+strings.Repeat("p", 4000), nil)
	req.RemoteAddr = "192.0.2.1:40000"
	req.Header = withHeader(browserHeader(), "User-Agent", gptbotUA+strings.Repeat("u", 4000))
	req.Header.Set("Referer", strings.Repeat("r", 4000))
	r.handler.ServeHTTP(httptest.NewRecorder(), req)
	ev, err := r.queue.Pop(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Path) > maxEventPath || len(ev.UserAgent) > maxEventUA || len(ev.Headers["Referer"]) > maxEventHeader {
		t.Errorf("event fields of %d, %d and %d bytes exceed %d, %d and %d",
			len(ev.Path), len(ev.UserAgent), len(ev.Headers["Referer"]), maxEventPath, maxEventUA, maxEventHeader)
	}
}
