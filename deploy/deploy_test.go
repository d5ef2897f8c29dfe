// Package deploy_test checks the operations files in deploy/: Prometheus
// configuration, rules and rule tests (with the real promtool), the
// Alertmanager configuration (with amtool), runbooks for every alert, and
// that every metric a rule or dashboard uses exists.
package deploy_test

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// runbookBase is where runbook_url annotations point; the path after it is
// docs/runbooks/<AlertName>.md in this repository.
const runbookBase = "https://github.com/scrapedefense/scrapedefense/blob/main/docs/runbooks/"

// tool returns the path of an external checker. It skips the test when the
// tool is missing, unless CI is set: CI must have it.
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not installed: apt-get install -y --no-install-recommends %s", name, pkg)
	}
	t.Skipf("%s not installed (apt-get install -y --no-install-recommends %s); CI fails instead of skipping", name, pkg)
	return ""
}

func run(t *testing.T, dir, bin string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
}

func globT(t *testing.T, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		t.Fatalf("no files match %s (%v)", pattern, err)
	}
	return files
}

func TestPromtool(t *testing.T) {
	promtool := tool(t, "promtool", "prometheus")
	dir := "prometheus"
	run(t, dir, promtool, "check", "config", "prometheus.yml")
	rules := globT(t, filepath.Join(dir, "rules", "*.yml"))
	for i := range rules {
		rules[i], _ = filepath.Rel(dir, rules[i])
	}
	run(t, dir, promtool, append([]string{"check", "rules"}, rules...)...)
	tests := globT(t, filepath.Join(dir, "tests", "*.yml"))
	for i := range tests {
		tests[i], _ = filepath.Rel(dir, tests[i])
	}
	run(t, dir, promtool, append([]string{"test", "rules"}, tests...)...)
}

func TestAmtool(t *testing.T) {
	amtool := tool(t, "amtool", "prometheus-alertmanager")
	run(t, ".", amtool, "check-config", filepath.Join("alertmanager", "alertmanager.yml"))
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Record      string            `yaml:"record"`
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func loadRules(t *testing.T) []rule {
	t.Helper()
	var all []rule
	for _, f := range globT(t, filepath.Join("prometheus", "rules", "*.yml")) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var rf ruleFile
		if err := yaml.Unmarshal(b, &rf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, g := range rf.Groups {
			all = append(all, g.Rules...)
		}
	}
	return all
}

// TestAlertsHaveRunbooks checks every alert's severity and annotations, and
// that its runbook exists and says what to check and what to do.
func TestAlertsHaveRunbooks(t *testing.T) {
	alerts := 0
	for _, r := range loadRules(t) {
		if r.Alert == "" {
			continue
		}
		alerts++
		if s := r.Labels["severity"]; s != "page" && s != "ticket" {
			t.Errorf("%s: severity %q, want page or ticket", r.Alert, s)
		}
		for _, a := range []string{"summary", "description", "runbook_url"} {
			if strings.TrimSpace(r.Annotations[a]) == "" {
				t.Errorf("%s: no %s annotation", r.Alert, a)
			}
		}
		if want := runbookBase + r.Alert + ".md"; r.Annotations["runbook_url"] != want {
			t.Errorf("%s: runbook_url %q, want %q", r.Alert, r.Annotations["runbook_url"], want)
		}
		b, err := os.ReadFile(filepath.Join("..", "docs", "runbooks", r.Alert+".md"))
		if err != nil {
			t.Errorf("%s: runbook: %v", r.Alert, err)
			continue
		}
		for _, section := range []string{"# " + r.Alert, "## What to check", "## What to do"} {
			if !strings.Contains(string(b), section) {
				t.Errorf("runbook %s.md lacks %q", r.Alert, section)
			}
		}
	}
	if alerts == 0 {
		t.Fatal("no alerts found")
	}
}

// TestRuleTestsCoverEveryAlert checks that each alert appears in a promtool
// test case that expects it to fire.
func TestRuleTestsCoverEveryAlert(t *testing.T) {
	var tested strings.Builder
	for _, f := range globT(t, filepath.Join("prometheus", "tests", "*.yml")) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		tested.Write(b)
	}
	text := tested.String()
	for _, r := range loadRules(t) {
		if r.Alert == "" {
			continue
		}
		re := regexp.MustCompile(`alertname: ` + regexp.QuoteMeta(r.Alert) + `\s+eval_time: \S+\s+exp_alerts:\s+- `)
		if !re.MatchString(text) {
			t.Errorf("%s: no rule test expects it to fire", r.Alert)
		}
	}
}

// catalogue returns the metric names documented in docs/metrics.md tables,
// listed in metrics-catalogue.txt, or recorded by a rule. Names ending in
// "*" are prefixes.
func catalogue(t *testing.T) (names map[string]bool, prefixes []string) {
	t.Helper()
	names = map[string]bool{}
	add := func(n string) {
		if p, ok := strings.CutSuffix(n, "*"); ok {
			prefixes = append(prefixes, p)
			return
		}
		names[n] = true
	}
	md, err := os.Open(filepath.Join("..", "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer md.Close()
	code := regexp.MustCompile("`([a-zA-Z_:][a-zA-Z0-9_:]*\\*?)`")
	sc := bufio.NewScanner(md)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first, _, _ := strings.Cut(line[1:], "|")
		for _, m := range code.FindAllStringSubmatch(first, -1) {
			add(m[1])
		}
	}
	b, err := os.ReadFile("metrics-catalogue.txt")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			add(line)
		}
	}
	for _, r := range loadRules(t) {
		if r.Record != "" {
			add(r.Record)
		}
	}
	return names, prefixes
}

func known(name string, names map[string]bool, prefixes []string) bool {
	if names[name] {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && names[base] {
			return true
		}
	}
	return slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(name, p) })
}

type dashboard struct {
	UID    string `json:"uid"`
	Title  string `json:"title"`
	Panels []struct {
		Title      string `json:"title"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func loadDashboards(t *testing.T) map[string]dashboard {
	t.Helper()
	out := map[string]dashboard{}
	uids := map[string]string{}
	for _, f := range globT(t, filepath.Join("grafana", "dashboards", "*.json")) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
			t.Errorf("%s: needs uid, title and panels", f)
		}
		if other, dup := uids[d.UID]; dup {
			t.Errorf("%s and %s share uid %q", f, other, d.UID)
		}
		uids[d.UID] = f
		for _, p := range d.Panels {
			if p.Datasource.UID != "prometheus" {
				t.Errorf("%s: panel %q: datasource uid %q, want the provisioned \"prometheus\"", f, p.Title, p.Datasource.UID)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", f, p.Title)
			}
		}
		out[f] = d
	}
	return out
}

// TestMetricsAreCatalogued parses every PromQL expression of the rules and
// dashboards and checks each metric it names is known.
func TestMetricsAreCatalogued(t *testing.T) {
	names, prefixes := catalogue(t)
	check := func(where, expr string) {
		ms := MetricNames(expr)
		if len(ms) == 0 && !strings.Contains(expr, "vector(") {
			t.Errorf("%s: no metric found in %q", where, expr)
		}
		for _, m := range ms {
			if !known(m, names, prefixes) {
				t.Errorf("%s: metric %q is not in docs/metrics.md, deploy/metrics-catalogue.txt or a recording rule", where, m)
			}
		}
	}
	for _, r := range loadRules(t) {
		check("rule "+r.Record+r.Alert, r.Expr)
	}
	for f, d := range loadDashboards(t) {
		for _, p := range d.Panels {
			for _, q := range p.Targets {
				check(f+": "+p.Title, q.Expr)
			}
		}
	}
}
