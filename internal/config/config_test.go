package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite golden files and the reference in docs/configuration.md")

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadDefaultsWithoutFile(t *testing.T) {
	cfg, err := Load("", nil)
	if err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if cfg.Edge.Listen != ":8080" || cfg.Edge.AdminListen != "127.0.0.1:9080" {
		t.Errorf("unexpected listeners %q %q", cfg.Edge.Listen, cfg.Edge.AdminListen)
	}
}

func TestLoadFileAndEnv(t *testing.T) {
	path := writeFile(t, `
edge:
  listen: ":9999"
  trusted_proxies: ["10.0.0.0/8", "192.0.2.1"]
  rate_limit:
    per_ip: {requests: 10, per: 10s, burst: 5}
log:
  level: debug
`)
	env := []string{
		"SCRAPEDEFENSE_EDGE_LISTEN=127.0.0.1:7000",
		"SCRAPEDEFENSE_EDGE_TRUSTED_PROXIES=127.0.0.1, ::1",
		"SCRAPEDEFENSE_EDGE_TIMEOUTS_SHUTDOWN=5s",
		"SCRAPEDEFENSE_EDGE_ALLOW_VERIFIED_CRAWLERS=false",
		"PATH=/bin",
	}
	cfg, err := Load(path, env)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"env beats file", cfg.Edge.Listen, "127.0.0.1:7000"},
		{"env list", strings.Join(cfg.Edge.TrustedProxies, ","), "127.0.0.1,::1"},
		{"env duration", cfg.Edge.Timeouts.Shutdown, 5 * time.Second},
		{"env bool", cfg.Edge.AllowVerifiedBots, false},
		{"file nested", cfg.Edge.RateLimit.PerIP, Rate{Requests: 10, Per: 10 * time.Second, Burst: 5}},
		{"file scalar", cfg.Log.Level, "debug"},
		{"default kept", cfg.Edge.RateLimit.IPv4SubnetBits, 24},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

func TestEnvName(t *testing.T) {
	if got := EnvName("edge.listen"); got != "SCRAPEDEFENSE_EDGE_LISTEN" {
		t.Errorf("EnvName = %q", got)
	}
}

// TestCheckReportsEveryError loads files with many mistakes and compares all
// the messages to golden files.
func TestCheckReportsEveryError(t *testing.T) {
	files, _ := filepath.Glob("testdata/invalid-*.yaml")
	if len(files) == 0 {
		t.Fatal("no test files")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := Load(f, []string{"SCRAPEDEFENSE_EDGE_IDLE_TIMEOUT=1s", "SCRAPEDEFENSE_EDGE_MAX_HEADER_BYTES=lots"})
			if err == nil {
				t.Fatal("want errors")
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("errors carry no key path: %v", err)
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("errors differ from %s:\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}

func TestValidateTable(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		path   string
	}{
		{"bad listen", func(c *Config) { c.Edge.Listen = "nonsense" }, "edge.listen"},
		{"same listeners", func(c *Config) { c.Edge.AdminListen = c.Edge.Listen }, "edge.admin_listen"},
		{"upstream scheme", func(c *Config) { c.Edge.Upstream = "ftp://x" }, "edge.upstream"},
		{"trusted proxy", func(c *Config) { c.Edge.TrustedProxies = []string{"10.0.0.0/33"} }, "edge.trusted_proxies[0]"},
		{"header", func(c *Config) { c.Edge.ClientIPHeaders = []string{"X-Client"} }, "edge.client_ip_headers[0]"},
		{"block status", func(c *Config) { c.Edge.Block.Status = 200 }, "edge.block.status"},
		{"missing file", func(c *Config) { c.Edge.PolicyFile = "/nonexistent/policy.yaml" }, "edge.policy_file"},
		{"rate per", func(c *Config) { c.Edge.RateLimit.PerIP.Per = 0 }, "edge.rate_limit.per_ip.per"},
		{"slots", func(c *Config) { c.Edge.RateLimit.Slots = 1000 }, "edge.rate_limit.slots"},
		{"queue", func(c *Config) { c.Edge.Events.QueueSize = 0 }, "edge.events.queue_size"},
		{"refresh", func(c *Config) { c.Lists.RefreshInterval = time.Second }, "lists.refresh_interval"},
		{"level", func(c *Config) { c.Log.Level = "loud" }, "log.level"},
		{"forward auth", func(c *Config) { c.Edge.ForwardAuthPath = "auth" }, "edge.forward_auth_path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mutate(&c)
			err := c.Validate()
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Path != tc.path {
				t.Fatalf("want an error at %s, got %v", tc.path, err)
			}
		})
	}
}

func TestReadSecret(t *testing.T) {
	p := writeFile(t, "s3cret\n")
	if s, err := ReadSecret(p); err != nil || s != "s3cret" {
		t.Fatalf("ReadSecret = %q, %v", s, err)
	}
	if _, err := ReadSecret(writeFile(t, "\n")); err == nil {
		t.Fatal("empty secret accepted")
	}
}

// TestExampleConfigIsValid keeps the annotated example in configs/ loadable.
func TestExampleConfigIsValid(t *testing.T) {
	if _, err := Load("../../configs/scrapedefense.yaml", nil); err != nil {
		t.Fatalf("configs/scrapedefense.yaml: %v", err)
	}
}

// TestDocsDocumentEveryKey keeps the reference in docs/configuration.md in
// step with the code. Run with -update to regenerate it.
func TestDocsDocumentEveryKey(t *testing.T) {
	const path = "../../docs/configuration.md"
	const begin, end = "<!-- BEGIN REFERENCE (generated: go test ./internal/config -update) -->\n", "<!-- END REFERENCE -->"
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(doc)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the reference markers", path)
	}
	want := ReferenceTable()
	if got := s[i+len(begin) : j]; got != want {
		if *update {
			s = s[:i+len(begin)] + want + s[j:]
			if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Errorf("%s is out of date; run go test ./internal/config -update", path)
	}
	for _, k := range Keys() {
		if k.Doc == "" {
			t.Errorf("key %s has no doc tag", k.Path)
		}
	}
}

func FuzzLoad(f *testing.F) {
	for _, s := range []string{"", "edge: {listen: ':1'}", "edge:\n  rate_limit: [1,2]\n", "a: &x b\nc: *x\n", "edge: {timeouts: {idle: 1h}}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		if len(body) > 1<<16 {
			return
		}
		cfg := Default()
		_ = decodeYAML([]byte(body), &cfg)
	})
}

// TestExampleConfigHasEveryKey keeps configs/scrapedefense.yaml a complete
// annotated example.
func TestExampleConfigHasEveryKey(t *testing.T) {
	data, err := os.ReadFile("../../configs/scrapedefense.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	present := map[string]bool{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		present[prefix] = true
		if m, ok := v.(map[string]any); ok {
			for k, sub := range m {
				walk(join(prefix, k), sub)
			}
		}
	}
	walk("", doc)
	for _, k := range Keys() {
		if !present[k.Path] {
			t.Errorf("configs/scrapedefense.yaml lacks %s", k.Path)
		}
	}
}
