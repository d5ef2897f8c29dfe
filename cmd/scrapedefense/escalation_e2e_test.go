package main

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// visitor fetches pages from the edge as one client (its own
// X-Forwarded-For address, trusted from 127.0.0.1) the way Chrome does: its
// headers, in Chrome's order. (Go's http.Client sends its own header order,
// which the escalation engine rightly takes for an HTTP library.)
type visitor struct {
	t    *testing.T
	base string // http://host:port
	ip   string
}

func (v visitor) fetch(path, dest string) (int, string) {
	v.t.Helper()
	host := strings.TrimPrefix(v.base, "http://")
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: keep-alive\r\n", path, host)
	b.WriteString("sec-ch-ua: \"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\"\r\nsec-ch-ua-mobile: ?0\r\nsec-ch-ua-platform: \"Linux\"\r\n")
	if dest == "document" {
		b.WriteString("Upgrade-Insecure-Requests: 1\r\n")
	}
	b.WriteString("User-Agent: " + browserUA + "\r\n")
	switch dest {
	case "document":
		b.WriteString("Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n" +
			"Sec-Fetch-Site: none\r\nSec-Fetch-Mode: navigate\r\nSec-Fetch-User: ?1\r\nSec-Fetch-Dest: document\r\n")
	default:
		accept := map[string]string{"style": "text/css,*/*;q=0.1", "script": "*/*", "image": "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"}[dest]
		fmt.Fprintf(&b, "Accept: %s\r\nSec-Fetch-Site: same-origin\r\nSec-Fetch-Mode: no-cors\r\nSec-Fetch-Dest: %s\r\nReferer: %s/\r\n", accept, dest, v.base)
	}
	b.WriteString("Accept-Encoding: gzip, deflate, br\r\nAccept-Language: en-GB,en;q=0.9\r\n")
	fmt.Fprintf(&b, "X-Forwarded-For: %s\r\n\r\n", v.ip) // added by the proxy in front
	conn, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		v.t.Fatalf("GET %s: %v", path, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(conn, b.String()); err != nil {
		v.t.Fatalf("GET %s: %v", path, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		v.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body) // a maze page ends with the deadline
	return resp.StatusCode, string(body)
}

var (
	pageLink  = regexp.MustCompile(`href="(/[^"#]*)"`)
	assetLink = regexp.MustCompile(`(?:src|href)="(/static/[^"]+)"`)
)

func isBlockPage(code int, body string) bool {
	return code == http.StatusForbidden && strings.Contains(body, "<title>Access denied</title>")
}

// startPipeline starts every role, trusting X-Forwarded-For from the test.
// The maze answers fast: tests count requests, not the minutes a real
// tarpit keeps a bot waiting.
func startPipeline(t *testing.T, env ...string) *server {
	t.Helper()
	return startServer(t, t.TempDir(), append([]string{
		"SCRAPEDEFENSE_EDGE_TRUSTED_PROXIES=127.0.0.1/32",
		"SCRAPEDEFENSE_TARPIT_DRIP_BYTES_PER_SECOND=1000000",
		"SCRAPEDEFENSE_TARPIT_MAX_SESSION=1s",
	}, env...))
}

// TestStealthScraperIsBlocked: browser user agent and headers, robots.txt
// ignored, five pages a second, no assets. The escalation engine must get
// it blocked at the edge within 30 requests.
func TestStealthScraperIsBlocked(t *testing.T) {
	t.Parallel()
	s := startPipeline(t)
	v := visitor{t: t, base: "http://" + s.public, ip: "203.0.113.77"}
	if n := v.crawlUntilBlocked(30); n > 0 {
		t.Logf("blocked at request %d", n)
		// explain shows why, from the escalation history.
		if out := s.cli("explain", "--ip", v.ip); !strings.Contains(out, "Escalation history (newest first") || !strings.Contains(out, "behaviour/") {
			t.Errorf("explain --ip %s:\n%s", v.ip, out)
		}
		return
	}
	t.Fatalf("not blocked after 30 requests; decisions:\n%s", s.cli("decisions", "list"))
}

// crawlUntilBlocked crawls like a stealth scraper (every page link, no
// assets, five pages a second) and returns the request that got the block
// page, or 0 if none of max did.
func (v visitor) crawlUntilBlocked(max int) int {
	queue := []string{"/"}
	seen := map[string]bool{"/": true}
	for n := 1; n <= max; n++ {
		var path string
		if len(queue) > 0 {
			path, queue = queue[0], queue[1:]
		} else {
			path = "/archive?page=" + strconv.Itoa(n) // ran out of links: page through the archive
		}
		code, body := v.fetch(path, "document")
		if isBlockPage(code, body) {
			return n
		}
		for _, m := range pageLink.FindAllStringSubmatch(body, -1) {
			if p := m[1]; !seen[p] && !strings.HasPrefix(p, "/static/") {
				seen[p] = true
				queue = append(queue, p)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return 0
}

// TestPersonIsNeverStopped: a person reads pages with their CSS, scripts and
// images, seconds apart, and is never blocked, throttled or challenged.
func TestPersonIsNeverStopped(t *testing.T) {
	t.Parallel()
	s := startPipeline(t)
	v := visitor{t: t, base: "http://" + s.public, ip: "198.51.100.23"}
	pages := []string{"/", "/notes/heron-office-hours", "/", "/archive", "/notes/churchyard-lichens",
		"/about", "/notes/reading-a-hedgerow", "/archive", "/notes/what-the-flood-left", "/"}
	for i, p := range pages {
		code, body := v.fetch(p, "document")
		if code != http.StatusOK {
			t.Fatalf("page %d %s: status %d\n%.300s", i, p, code, body)
		}
		for _, m := range assetLink.FindAllStringSubmatch(body, -1) {
			dest := "image"
			switch {
			case strings.HasSuffix(m[1], ".css"):
				dest = "style"
			case strings.HasSuffix(m[1], ".js"):
				dest = "script"
			}
			if code, _ := v.fetch(m[1], dest); code != http.StatusOK {
				t.Fatalf("asset %s on page %d: status %d", m[1], i, code)
			}
		}
		time.Sleep(1500 * time.Millisecond) // reading
	}
	if out := s.cli("decisions", "list"); strings.Contains(out, v.ip) {
		t.Errorf("the person got a decision:\n%s", out)
	}
}

// sign makes the webhook's signature header.
func sign(secret []byte, ts time.Time, body []byte) string {
	t := strconv.FormatInt(ts.Unix(), 10)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(t + "." + string(body)))
	return "t=" + t + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

func postWebhook(t *testing.T, url, sender string, secret []byte, body []byte) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Scrapedefense-Sender", sender)
	req.Header.Set("X-Scrapedefense-Signature", sign(secret, time.Now(), body))
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func libraryEvents(ip string, n int) []byte {
	evs := make([]map[string]any, n)
	for i := range evs {
		evs[i] = map[string]any{"v": 1, "time": time.Now().UTC(), "client_ip": ip, "method": "GET", "host": "example.org",
			"path": fmt.Sprintf("/p/%d", i), "user_agent": "python-requests/2.32", "status": 200}
	}
	b, _ := json.Marshal(map[string]any{"v": 1, "type": "events", "events": evs})
	return b
}

// TestWebhookVerdictEnforcedWithinASecond: an event from another sender
// (nginx, a log shipper) reaches the edge as an enforced verdict within 1 s.
func TestWebhookVerdictEnforcedWithinASecond(t *testing.T) {
	t.Parallel()
	secretFile := filepath.Join(t.TempDir(), "nginx.secret")
	secret := []byte("0123456789abcdef0123456789abcdef")
	if err := os.WriteFile(secretFile, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	s := startPipeline(t, "SCRAPEDEFENSE_AI_SENDERS=nginx:"+secretFile)
	v := visitor{t: t, base: "http://" + s.public, ip: "192.0.2.200"}
	if code, _ := v.fetch("/", "document"); code != http.StatusOK {
		t.Fatalf("before the event: %d", code)
	}
	start := time.Now()
	if code := postWebhook(t, "http://"+s.ai+"/webhook", "nginx", secret, libraryEvents(v.ip, 1)); code != http.StatusAccepted {
		t.Fatalf("webhook: %d", code)
	}
	for {
		code, body := v.fetch("/", "document")
		if isBlockPage(code, body) {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("not enforced after 5 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("verdict enforced %v after the event, want within 1 s", took)
	} else {
		t.Logf("enforced %v after the event", took)
	}
	// POST /escalate on the escalation role scores synchronously.
	one, _ := json.Marshal(map[string]any{"v": 1, "event": map[string]any{"v": 1, "time": time.Now().UTC(), "client_ip": "192.0.2.201",
		"method": "GET", "path": "/", "user_agent": "python-requests/2.32"}})
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.escalation+"/escalate", bytes.NewReader(one))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Scrapedefense-Sender", "nginx")
	req.Header.Set("X-Scrapedefense-Signature", sign(secret, time.Now(), one))
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var verdict struct {
		Action  string `json:"action"`
		Reasons []struct{ Signal string }
	}
	err = json.NewDecoder(resp.Body).Decode(&verdict)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || verdict.Action != "block" || len(verdict.Reasons) == 0 {
		t.Errorf("/escalate: %d %+v %v", resp.StatusCode, verdict, err)
	}

	// A bad signature is refused with a machine-readable code.
	if code := postWebhook(t, "http://"+s.ai+"/webhook", "nginx", []byte("wrong-secret-wrong-secret-wrong!"), libraryEvents(v.ip, 1)); code != http.StatusUnauthorized {
		t.Errorf("badly signed webhook: %d, want 401", code)
	}
}

// TestQueuedEventsSurviveSIGKILL: events accepted while no worker runs are
// on disk; after SIGKILL and a restart with the workers they are scored.
func TestQueuedEventsSurviveSIGKILL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	secretFile := filepath.Join(t.TempDir(), "shipper.secret")
	secret := []byte("fedcba9876543210fedcba9876543210")
	if err := os.WriteFile(secretFile, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"SCRAPEDEFENSE_EDGE_TRUSTED_PROXIES=127.0.0.1/32", "SCRAPEDEFENSE_AI_SENDERS=shipper:" + secretFile}
	s := startServer(t, dir, env, "--roles", "edge,ai-service") // no escalation workers: events wait in the queue
	const ip = "192.0.2.99"
	if code := postWebhook(t, "http://"+s.ai+"/webhook", "shipper", secret, libraryEvents(ip, 20)); code != http.StatusAccepted {
		t.Fatalf("webhook: %d", code)
	}
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-s.done

	s2 := startServer(t, dir, env)
	v := visitor{t: t, base: "http://" + s2.public, ip: ip}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := v.fetch("/", "document")
		if isBlockPage(code, body) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the queued events were not scored after the restart:\n%s", s2.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Every queued event is scored, not only enough of them to block.
	dequeued := regexp.MustCompile(`queue_dequeued_total\{[^}]*\} (\d+)`)
	for {
		_, metrics, _ := get(t, "http://"+s2.escalation+"/metrics")
		m := dequeued.FindStringSubmatch(metrics)
		if m == nil {
			t.Fatalf("no queue_dequeued_total in escalation metrics")
		}
		if n, _ := strconv.Atoi(m[1]); n >= 20 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("queue_dequeued_total = %d after restart, want all 20 queued events", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
