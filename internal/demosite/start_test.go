package demosite

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	base, wait, err := Start(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Fatalf("url %q", base)
	}

	client := &http.Client{Timeout: 5 * time.Second}
	for _, p := range []string{"/", "/static/site.css", "/feed.xml"} {
		resp, err := client.Get(base + p)
		if err != nil {
			t.Fatalf("GET %s: %v", p, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(body) == 0 {
			t.Errorf("GET %s: status %d, %d bytes", p, resp.StatusCode, len(body))
		}
	}
	// Absolute URLs name the address the site was reached on.
	resp, err := client.Get(base + "/robots.txt")
	if err != nil {
		t.Fatal(err)
	}
	robots, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(robots), "Sitemap: "+base+"/sitemap.xml") {
		t.Errorf("robots.txt does not name %s:\n%s", base, robots)
	}

	cancel()
	done := make(chan error, 1)
	go func() { done <- wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("wait: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop after its context ended")
	}
	if err := wait(); err != nil {
		t.Errorf("second wait: %v", err)
	}
	if conn, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), time.Second); err == nil {
		conn.Close()
		t.Error("still accepting connections after stop")
	}
}

func TestStartListenError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })

	for _, addr := range []string{ln.Addr().String(), "127.0.0.1:99999", "not-an-address"} {
		if _, _, err := Start(context.Background(), addr); err == nil || !strings.Contains(err.Error(), "listen") {
			t.Errorf("Start(%q): err = %v, want a listen error", addr, err)
		}
	}
}

func TestStartCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	url, wait, err := Start(ctx, "127.0.0.1:0")
	if err != nil {
		return // refusing to listen on a dead context is fine too
	}
	if url == "" {
		t.Error("no url")
	}
	if err := wait(); err != nil {
		t.Errorf("wait: %v", err)
	}
}
