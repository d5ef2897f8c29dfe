package deploy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fastWindows maps the rule windows to seconds for the end-to-end test: with
// a 1 s scrape and evaluation interval, each window still holds several
// samples. The order of the windows is kept (5m < 30m < 1h < 6h < 30d), so
// the multi-window logic is the same; only time is compressed.
var fastWindows = map[string]string{
	"[5m]": "[4s]", "[30m]": "[6s]", "[1h]": "[8s]", "[6h]": "[10s]", "[30d]": "[12s]",
}

var forClause = regexp.MustCompile(`(?m)^(\s+for:) \S+`)

// compressRules rewrites a rule file for a test that cannot wait hours:
// range windows per fastWindows and every `for:` to 1 s.
func compressRules(src string) string {
	for from, to := range fastWindows {
		src = strings.ReplaceAll(src, from, to)
	}
	return forClause.ReplaceAllString(src, "$1 1s")
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startProcess runs cmd until the test ends.
func startProcess(t *testing.T, cmd *exec.Cmd) *strings.Builder {
	t.Helper()
	var logs strings.Builder
	var mu sync.Mutex
	w := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return logs.Write(p) })
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			mu.Lock()
			t.Logf("%s output:\n%s", filepath.Base(cmd.Path), logs.String())
			mu.Unlock()
		}
	})
	return &logs
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; last: %s", what, last)
}

// TestEndToEnd runs the real binary and a real Prometheus with the
// (time-compressed) rules: traffic through the edge gives a plausible SLI,
// and taking the protected site down fires the fast-burn page.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs prometheus")
	}
	prom := tool(t, "prometheus", "prometheus")
	dir := t.TempDir()

	bin := filepath.Join(dir, "scrapedefense")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/scrapedefense").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "origin")
	}))
	t.Cleanup(origin.Close)

	public, admin := freeAddr(t), freeAddr(t)
	sd := exec.Command(bin, "serve", "--roles", "edge", "--upstream", origin.URL)
	sd.Env = append(os.Environ(),
		"SCRAPEDEFENSE_EDGE_LISTEN="+public,
		"SCRAPEDEFENSE_EDGE_ADMIN_LISTEN="+admin,
		"SCRAPEDEFENSE_DATA_DIR="+filepath.Join(dir, "data"),
		"SCRAPEDEFENSE_EDGE_RATE_LIMIT_PER_IP_REQUESTS=1000000",
		"SCRAPEDEFENSE_EDGE_RATE_LIMIT_PER_SUBNET_REQUESTS=1000000",
	)
	startProcess(t, sd)
	waitUntil(t, "scrapedefense admin listener", 30*time.Second, func() (bool, string) {
		resp, err := http.Get("http://" + admin + "/health")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return true, ""
	})

	// Prometheus with the compressed SLO and alert rules.
	for _, name := range []string{"slo.yml", "alerts.yml"} {
		b, err := os.ReadFile(filepath.Join("prometheus", "rules", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(compressRules(string(b))), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [slo.yml, alerts.yml]
scrape_configs:
  - job_name: edge
    static_configs: [{targets: [%q]}]
`, admin)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	promAddr := freeAddr(t)
	startProcess(t, exec.Command(prom, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "tsdb"), "--web.listen-address="+promAddr))

	// Steady traffic through the edge, as a browser.
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { stop(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+public+"/page", nil)
			req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
			req.Header.Set("Accept", "text/html,application/xhtml+xml")
			req.Header.Set("Accept-Language", "en-GB,en;q=0.9")
			req.Header.Set("Accept-Encoding", "gzip, deflate, br")
			if resp, err := http.DefaultClient.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	query := func(expr string) (float64, string) {
		resp, err := http.PostForm("http://"+promAddr+"/api/v1/query", url.Values{"query": {expr}})
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		var r struct {
			Data struct {
				Result []struct {
					Value [2]any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			return 0, err.Error()
		}
		if len(r.Data.Result) != 1 {
			return 0, fmt.Sprintf("%d series", len(r.Data.Result))
		}
		s, _ := r.Data.Result[0].Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, err.Error()
		}
		return v, s
	}

	// Healthy: the availability SLI is perfect, the latency SLI a ratio.
	waitUntil(t, "edge-availability SLI", 30*time.Second, func() (bool, string) {
		v, s := query(`slo:error_ratio:rate5m{slo="edge-availability"}`)
		return s != "" && v == 0, s
	})
	v, s := query(`1 - slo:error_ratio:rate5m{slo="edge-latency"}`)
	if s == "" || v < 0 || v > 1 {
		t.Fatalf("edge-latency SLI = %q, want a ratio in [0, 1]", s)
	}
	if v, s := query(`slo:burn_rate:rate1h{slo="edge-availability"}`); v != 0 {
		t.Fatalf("burn rate while healthy = %s", s)
	}

	// Fault: the protected site goes away; every proxied request is a 502.
	origin.Close()
	waitUntil(t, "SLOErrorBudgetFastBurn firing for edge-availability", 40*time.Second, func() (bool, string) {
		resp, err := http.Get("http://" + promAddr + "/api/v1/alerts")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		var r struct {
			Data struct {
				Alerts []struct {
					Labels map[string]string `json:"labels"`
					State  string            `json:"state"`
				} `json:"alerts"`
			} `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			return false, err.Error()
		}
		var states []string
		for _, a := range r.Data.Alerts {
			states = append(states, a.Labels["alertname"]+"/"+a.Labels["slo"]+"="+a.State)
			if a.Labels["alertname"] == "SLOErrorBudgetFastBurn" && a.Labels["slo"] == "edge-availability" &&
				a.State == "firing" && a.Labels["severity"] == "page" {
				return true, ""
			}
		}
		return false, strings.Join(states, ", ")
	})
}
