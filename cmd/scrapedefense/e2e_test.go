package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests build the real binary and drive it over HTTP, the way an
// operator would.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "scrapedefense-e2e")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "scrapedefense")
		out, err := exec.Command("go", "build", "-race", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// server is a running `scrapedefense serve`.
type server struct {
	t      *testing.T
	cmd    *exec.Cmd
	env    []string
	public string
	admin  string
	// Listeners of the other roles (each serves /health and /metrics).
	ai, escalation, tarpitAdmin string
	dataDir                     string
	stderr                      *syncBuffer
	done                        chan struct{} // closed when the process has exited
	waitErr                     error
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServer runs serve with the given extra environment and waits until it
// prints its endpoints.
func startServer(t *testing.T, dataDir string, env []string, args ...string) *server {
	t.Helper()
	s := &server{t: t, dataDir: dataDir, public: freePort(t), admin: freePort(t),
		ai: freePort(t), escalation: freePort(t), tarpitAdmin: freePort(t),
		stderr: &syncBuffer{}, done: make(chan struct{})}
	s.env = append(os.Environ(),
		"SCRAPEDEFENSE_EDGE_LISTEN="+s.public,
		"SCRAPEDEFENSE_EDGE_ADMIN_LISTEN="+s.admin,
		"SCRAPEDEFENSE_DATA_DIR="+dataDir,
		"SCRAPEDEFENSE_EDGE_TIMEOUTS_SHUTDOWN=10s",
		// Every other role on its own free port, so tests run in parallel.
		"SCRAPEDEFENSE_AI_LISTEN="+s.ai,
		"SCRAPEDEFENSE_ESCALATION_LISTEN="+s.escalation,
		"SCRAPEDEFENSE_TARPIT_LISTEN="+freePort(t),
		"SCRAPEDEFENSE_TARPIT_ADMIN_LISTEN="+s.tarpitAdmin,
	)
	s.env = append(s.env, env...)
	s.cmd = exec.Command(binary(t), append([]string{"serve"}, args...)...)
	s.cmd.Env = s.env
	s.cmd.Stderr = s.stderr
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.waitErr = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() { s.stop() })

	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "public") {
				close(ready)
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case <-ready:
	case <-s.done:
		t.Fatalf("serve exited early: %v\n%s", s.waitErr, s.stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not start\n%s", s.stderr)
	}
	return s
}

func (s *server) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// cli runs another command of the binary with the server's environment.
func (s *server) cli(args ...string) string {
	s.t.Helper()
	cmd := exec.Command(binary(s.t), args...)
	cmd.Env = s.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		s.t.Fatalf("scrapedefense %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// testClient never waits forever on a misbehaving server.
var testClient = &http.Client{Timeout: 15 * time.Second}

type reqOpt func(*http.Request)

func ua(s string) reqOpt { return func(r *http.Request) { r.Header.Set("User-Agent", s) } }
func hdr(k, v string) reqOpt {
	return func(r *http.Request) { r.Header.Set(k, v) }
}

// browser sets the headers a desktop Chrome sends for a page.
func browser() reqOpt {
	return func(r *http.Request) {
		r.Header.Set("User-Agent", browserUA)
		r.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8")
		r.Header.Set("Accept-Language", "en-GB,en;q=0.9")
		r.Header.Set("Accept-Encoding", "gzip, deflate, br")
		r.Header.Set("Sec-Ch-Ua", `"Chromium";v="131", "Not_A Brand";v="24"`)
		r.Header.Set("Sec-Ch-Ua-Mobile", "?0")
		r.Header.Set("Sec-Ch-Ua-Platform", `"Linux"`)
		r.Header.Set("Sec-Fetch-Site", "none")
		r.Header.Set("Sec-Fetch-Mode", "navigate")
		r.Header.Set("Sec-Fetch-Dest", "document")
		r.Header.Set("Sec-Fetch-User", "?1")
		r.Header.Set("Upgrade-Insecure-Requests", "1")
	}
}

func get(t *testing.T, url string, opts ...reqOpt) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range opts {
		o(req)
	}
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

// TestServeProtectsDemoSite checks the edge's fast path alone: with the
// escalation engine running, the flood below would soon be blocked for its
// behaviour rather than throttled (escalation_e2e_test.go covers that).
func TestServeProtectsDemoSite(t *testing.T) {
	s := startServer(t, t.TempDir(), []string{
		// A low limit so the flood test is quick.
		"SCRAPEDEFENSE_EDGE_RATE_LIMIT_PER_IP_REQUESTS=30",
		"SCRAPEDEFENSE_EDGE_RATE_LIMIT_PER_IP_BURST=10",
	}, "--roles", "edge")
	base := "http://" + s.public

	code, body, _ := get(t, base+"/", browser())
	if code != http.StatusOK || !strings.Contains(body, "<html") {
		t.Fatalf("browser: got %d %.200q", code, body)
	}
	if code, _, _ := get(t, base+"/", ua("GPTBot/1.1")); code != http.StatusForbidden {
		t.Errorf("GPTBot: got %d, want 403", code)
	}
	googlebot := "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
	if code, _, _ := get(t, base+"/", ua(googlebot)); code != http.StatusForbidden {
		t.Errorf("Googlebot impostor: got %d, want 403", code)
	}
	// Declared AI crawlers may read robots.txt, which tells them to go away.
	code, robots, _ := get(t, base+"/robots.txt", ua("ClaudeBot/1.0"))
	if code != http.StatusOK || !strings.Contains(robots, "ClaudeBot") {
		t.Errorf("robots.txt: got %d %.300q", code, robots)
	}

	// Explanations come from the running edge.
	for _, tc := range []struct{ ua, want string }{
		{"GPTBot/1.1", "verdict: block"},
		{googlebot, "impostor"},
	} {
		out := s.cli("explain", "--ip", "192.0.2.7", "--ua", tc.ua)
		if !strings.Contains(out, tc.want) {
			t.Errorf("explain %q: want %q in\n%s", tc.ua, tc.want, out)
		}
	}
	out := s.cli(append([]string{"explain", "--ip", "192.0.2.7"}, browserArgs...)...)
	if !strings.Contains(out, "verdict: allow") {
		t.Errorf("explain browser:\n%s", out)
	}

	// A flood from one address is throttled with Retry-After.
	var throttled int
	var retry string
	for range 60 {
		code, _, h := get(t, base+"/about", browser())
		if code == http.StatusTooManyRequests {
			throttled++
			retry = h.Get("Retry-After")
		}
	}
	if throttled == 0 || retry == "" {
		t.Fatalf("flood: %d throttled, Retry-After %q", throttled, retry)
	}
	out = s.cli(append([]string{"explain", "--ip", "127.0.0.1"}, browserArgs...)...)
	if !strings.Contains(out, "rate-limit") || !strings.Contains(out, "throttle") {
		t.Errorf("explain flood:\n%s", out)
	}

	// Health and metrics on the admin listener.
	code, health, _ := get(t, "http://"+s.admin+"/health")
	if code != http.StatusOK || !strings.Contains(health, `"status"`) {
		t.Errorf("health: %d %s", code, health)
	}
	_, metrics, _ := get(t, "http://"+s.admin+"/metrics")
	for _, want := range []string{
		`edge_verdicts_total{action="block",rule="ai-crawlers",service="edge"}`,
		`edge_verdicts_total{action="throttle",rule="rate-limit",service="edge"}`,
		`http_request_duration_seconds_bucket{code="200",method="GET",route="proxy",service="edge",le="0.005"}`,
		"build_info", "cpu_usage_percent", "memory_usage_bytes", "events_dropped_total",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

const browserUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

// browserArgs describe a browser request to explain.
var browserArgs = []string{
	"--ua", browserUA,
	"--header", "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
	"--header", "Accept-Language: en-GB,en;q=0.9",
	"--header", "Accept-Encoding: gzip, deflate, br",
	"--header", `Sec-Ch-Ua: "Chromium";v="131"`,
	"--header", "Sec-Fetch-Mode: navigate",
}

func TestDecisionsSurviveRestartAndExpire(t *testing.T) {
	dataDir := t.TempDir()
	env := []string{"SCRAPEDEFENSE_EDGE_TRUSTED_PROXIES=127.0.0.1"}
	s := startServer(t, dataDir, env, "--roles", "edge")
	from := func(ip string) reqOpt { return hdr("X-Forwarded-For", ip) }
	base := "http://" + s.public

	if code, _, _ := get(t, base+"/", browser(), from("198.51.100.7")); code != http.StatusOK {
		t.Fatalf("before the decision: %d", code)
	}
	out := s.cli("decisions", "add", "198.51.100.0/24", "--action", "block", "--ttl", "1h", "--reason", "e2e")
	if !strings.Contains(out, "198.51.100.0/24") {
		t.Fatalf("decisions add: %s", out)
	}
	s.cli("decisions", "add", "203.0.113.9", "--action", "block", "--ttl", "2s")
	if code, _, _ := get(t, base+"/", browser(), from("198.51.100.7")); code != http.StatusForbidden {
		t.Fatalf("decision not enforced: %d", code)
	}
	if code, _, _ := get(t, base+"/", browser(), from("198.51.101.7")); code != http.StatusOK {
		t.Fatalf("decision too wide: %d", code)
	}
	if out := s.cli("decisions", "list"); !strings.Contains(out, "198.51.100.0/24") || !strings.Contains(out, "e2e") {
		t.Fatalf("decisions list:\n%s", out)
	}

	// Restart: the decision is still enforced.
	s.stop()
	// With no server running the CLI works on the store directly.
	if out := s.cli("decisions", "list"); !strings.Contains(out, "198.51.100.0/24") {
		t.Fatalf("decisions list without a server:\n%s", out)
	}
	s2 := startServer(t, dataDir, env, "--roles", "edge")
	base = "http://" + s2.public
	if code, _, _ := get(t, base+"/", browser(), from("198.51.100.200")); code != http.StatusForbidden {
		t.Fatalf("decision lost across restart: %d", code)
	}
	// The short decision expires.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _, _ := get(t, base+"/", browser(), from("203.0.113.9"))
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("decision did not expire: %d", code)
		}
		time.Sleep(200 * time.Millisecond)
	}
	s2.cli("decisions", "delete", "198.51.100.0/24")
	if code, _, _ := get(t, base+"/", browser(), from("198.51.100.7")); code != http.StatusOK {
		t.Fatalf("deleted decision still enforced: %d", code)
	}
}

func TestPolicyHotReload(t *testing.T) {
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "policy.yaml")
	writePolicy := func(body string) {
		t.Helper()
		tmp := policyFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, policyFile); err != nil {
			t.Fatal(err)
		}
	}
	writePolicy("version: 1\nrules:\n  - name: block-secret\n    match: {path_prefix: [/secret]}\n    action: block\n")
	// The edge alone: its Go test client is, to the escalation engine, a
	// library posing as Chrome, and would soon be blocked for it.
	s := startServer(t, dir, []string{"SCRAPEDEFENSE_EDGE_POLICY_FILE=" + policyFile}, "--roles", "edge")
	base := "http://" + s.public
	if code, _, _ := get(t, base+"/secret", browser()); code != http.StatusForbidden {
		t.Fatalf("policy rule not applied: %d", code)
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s\n%s", what, s.stderr)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	writePolicy("version: 1\nrules:\n  - name: block-other\n    match: {path_prefix: [/other]}\n    action: block\n")
	waitFor("reload", func() bool {
		c1, _, _ := get(t, base+"/secret", browser())
		c2, _, _ := get(t, base+"/other", browser())
		return c1 != http.StatusForbidden && c2 == http.StatusForbidden
	})
	// A broken policy keeps the old one and counts the failure.
	writePolicy("version: 1\nrules:\n  - name: broken\n    match: {path_regex: '('}\n    action: block\n")
	failures := regexp.MustCompile(`(?m)^config_reload_failures_total{service="edge"} 1$`)
	waitFor("reload failure", func() bool {
		_, m, _ := get(t, "http://"+s.admin+"/metrics")
		return failures.MatchString(m)
	})
	if code, _, _ := get(t, base+"/other", browser()); code != http.StatusForbidden {
		t.Fatalf("old policy not kept after a bad reload: %d", code)
	}
	// SIGHUP reloads too (the file is still bad: a second failure).
	_ = s.cmd.Process.Signal(syscall.SIGHUP)
	failures2 := regexp.MustCompile(`(?m)^config_reload_failures_total{service="edge"} 2$`)
	waitFor("SIGHUP reload", func() bool {
		_, m, _ := get(t, "http://"+s.admin+"/metrics")
		return failures2.MatchString(m)
	})
}

func TestGracefulShutdownDrainsInFlight(t *testing.T) {
	release := make(chan struct{})
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		_, _ = io.WriteString(w, "origin "+r.URL.Path)
	}))
	t.Cleanup(origin.Close)
	s := startServer(t, t.TempDir(), nil, "--roles", "edge", "--upstream", origin.URL)

	result := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, "http://"+s.public+"/slow", nil)
		browser()(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			result <- "error: " + err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		result <- string(b)
	}()
	time.Sleep(300 * time.Millisecond) // the request is in flight
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(300 * time.Millisecond)
	close(release)
	select {
	case got := <-result:
		if got != "origin /slow" {
			t.Fatalf("in-flight request: %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("in-flight request never finished")
	}
	select {
	case <-s.done:
		if s.waitErr != nil {
			t.Fatalf("serve exited with %v\n%s", s.waitErr, s.stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not exit")
	}
}

func TestConfigCheckReportsAllErrors(t *testing.T) {
	bin := binary(t)
	out, err := exec.Command(bin, "config", "check", "../../internal/config/testdata/invalid-many.yaml").CombinedOutput()
	if err == nil {
		t.Fatalf("config check passed a bad file:\n%s", out)
	}
	for _, want := range []string{"log.level", "edge.listen", "edge.trusted_proxies[1]", "edge.unknown_key", "lists.refresh_interval"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("config check output lacks %s:\n%s", want, out)
		}
	}
	out, err = exec.Command(bin, "config", "check", "../../configs/scrapedefense.yaml").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("example config: %v\n%s", err, out)
	}
}
