package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// requireTool finds a program the test drives; CI installs it, so there a
// missing tool is a failure rather than a skip.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed", name)
		}
		t.Skipf("%s is not installed", name)
	}
	return p
}

// TestNginxForwardAuthSnippet runs the documented nginx configuration
// against a real nginx and the real binary.
func TestNginxForwardAuthSnippet(t *testing.T) {
	nginx := requireTool(t, "nginx")
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "origin "+r.URL.Path)
	}))
	t.Cleanup(origin.Close)
	s := startServer(t, t.TempDir(), []string{
		"SCRAPEDEFENSE_EDGE_RATE_LIMIT_PER_IP_REQUESTS=20",
		"SCRAPEDEFENSE_EDGE_RATE_LIMIT_PER_IP_BURST=5",
	}, "--roles", "edge", "--upstream", origin.URL) // the forward-auth contract of the edge alone

	snippet, err := os.ReadFile("../../deploy/forward-auth/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	public := freePort(t)
	conf := strings.NewReplacer(
		"127.0.0.1:9080", s.admin,
		"http://127.0.0.1:3000", origin.URL,
		"listen 8081;", "listen "+public+";",
	).Replace(string(snippet))
	dir := t.TempDir()
	full := "daemon off;\npid " + dir + "/nginx.pid;\nerror_log " + dir + "/error.log warn;\nevents {}\nhttp {\n" +
		"access_log off;\nclient_body_temp_path " + dir + ";\nproxy_temp_path " + dir + ";\n" +
		"fastcgi_temp_path " + dir + ";\nuwsgi_temp_path " + dir + ";\nscgi_temp_path " + dir + ";\n" + conf + "\n}\n"
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(full), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nginx, "-c", confPath, "-e", filepath.Join(dir, "error.log"))
	out, err := os.Create(filepath.Join(dir, "nginx.out"))
	if err != nil {
		t.Fatal(err)
	}
	// A file, not a pipe: nginx's workers would hold a pipe open after the
	// master exits and Wait would never return.
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM) // nginx stops its workers on TERM
		_ = cmd.Wait()
		out.Close()
	})
	base := "http://" + public
	deadline := time.Now().Add(10 * time.Second)
	for {
		if resp, err := testClient.Get(base + "/"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			logs, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			stdout, _ := os.ReadFile(out.Name())
			t.Fatalf("nginx did not start: %s\n%s", stdout, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}

	if code, body, _ := get(t, base+"/page", browser()); code != http.StatusOK || body != "origin /page" {
		t.Fatalf("browser through nginx: %d %q", code, body)
	}
	if code, _, _ := get(t, base+"/page", ua("GPTBot/1.1")); code != http.StatusForbidden {
		t.Fatalf("GPTBot through nginx: %d", code)
	}
	var throttled bool
	for range 40 {
		code, _, h := get(t, base+"/page", browser())
		if code == http.StatusTooManyRequests {
			if h.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
			throttled = true
			break
		}
	}
	if !throttled {
		t.Fatal("a flood through nginx was never throttled")
	}
}
