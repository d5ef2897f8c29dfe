package main

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// catalogueEntry is one row of a table in docs/metrics.md.
type catalogueEntry struct {
	names []string // a name ending in "*" is a prefix (go_*)
	typ   string   // "" when the row covers several types
	// optional rows (marked "(lazy)" or "(optional)") need not be exported.
	optional bool
}

// metricsCatalogue is docs/metrics.md read as data: the standard table,
// which applies to every role, and one section per service label.
type metricsCatalogue struct {
	standard []catalogueEntry
	roles    map[string][]catalogueEntry
}

var (
	codeSpan       = regexp.MustCompile("`([a-zA-Z_:][a-zA-Z0-9_:]*\\*?)`")
	serviceHeading = regexp.MustCompile("^## .*`service=\"([a-z_-]+)\"`")
	typeLine       = regexp.MustCompile(`(?m)^# TYPE (\S+) (\S+)$`)
)

func readMetricsCatalogue(t *testing.T) metricsCatalogue {
	t.Helper()
	f, err := os.Open("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cat := metricsCatalogue{roles: map[string][]catalogueEntry{}}
	// section is the service label of the current role section, "" outside
	// any table the test reads.
	const standard = "*"
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			section = ""
			if strings.HasPrefix(line, "## Standard metrics") {
				section = standard
			} else if m := serviceHeading.FindStringSubmatch(line); m != nil {
				section = m[1]
				if _, seen := cat.roles[section]; !seen {
					cat.roles[section] = nil // the section exists even before its first row
				}
			}
			continue
		}
		if section == "" || !strings.HasPrefix(line, "| `") {
			continue
		}
		cols := strings.Split(strings.Trim(line, "|"), "|")
		if len(cols) < 4 {
			t.Fatalf("docs/metrics.md: table row with %d columns: %s", len(cols), line)
		}
		var e catalogueEntry
		for _, m := range codeSpan.FindAllStringSubmatch(cols[0], -1) {
			e.names = append(e.names, m[1])
		}
		if typ := strings.TrimSpace(cols[1]); len(e.names) == 1 && !strings.ContainsAny(typ, ", ") {
			e.typ = typ
		}
		meaning := cols[len(cols)-1]
		e.optional = strings.Contains(meaning, "(lazy)") || strings.Contains(meaning, "(optional)")
		if section == standard {
			cat.standard = append(cat.standard, e)
		} else {
			cat.roles[section] = append(cat.roles[section], e)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(cat.standard) == 0 {
		t.Fatal("docs/metrics.md: no standard metrics table")
	}
	return cat
}

// families returns the metric families of a scrape with their types.
func families(scrape string) map[string]string {
	out := map[string]string{}
	for _, m := range typeLine.FindAllStringSubmatch(scrape, -1) {
		out[m[1]] = m[2]
	}
	return out
}

// checkRoleMetrics compares one role's scrape with its catalogue entries in
// both directions.
func checkRoleMetrics(t *testing.T, service string, entries []catalogueEntry, scrape string) {
	t.Helper()
	exported := families(scrape)
	if len(exported) == 0 {
		t.Errorf("%s: the scrape has no metric families:\n%.500s", service, scrape)
		return
	}
	documented := func(family string) (catalogueEntry, bool) {
		for _, e := range entries {
			for _, n := range e.names {
				if p, ok := strings.CutSuffix(n, "*"); (ok && strings.HasPrefix(family, p)) || n == family {
					return e, true
				}
			}
		}
		return catalogueEntry{}, false
	}
	for family, typ := range exported {
		e, ok := documented(family)
		switch {
		case !ok:
			t.Errorf("%s exports %s (%s), which docs/metrics.md does not list in the standard table or the %s section", service, family, typ, service)
		case e.typ != "" && e.typ != typ:
			t.Errorf("%s: %s is a %s, docs/metrics.md says %s", service, family, typ, e.typ)
		}
	}
	for _, e := range entries {
		if e.optional {
			continue
		}
		for _, n := range e.names {
			p, prefix := strings.CutSuffix(n, "*")
			found := exported[n] != ""
			if prefix {
				for family := range exported {
					found = found || strings.HasPrefix(family, p)
				}
			}
			if !found {
				t.Errorf("docs/metrics.md lists %s for %s, which does not export it (mark the row (lazy) or (optional) if it appears later)", n, service)
			}
		}
	}
}

// TestMetricsCatalogueMatchesEveryRole runs every role, with the optional
// features that bring their own metrics (alerts, the grey-zone classifier)
// configured, drives a little traffic through them, and checks each role's
// /metrics against docs/metrics.md.
func TestMetricsCatalogueMatchesEveryRole(t *testing.T) {
	t.Parallel()
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(receiver.Close)
	classifier := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no model loaded", http.StatusServiceUnavailable)
	}))
	t.Cleanup(classifier.Close)
	s := startServer(t, t.TempDir(), []string{
		"SCRAPEDEFENSE_EDGE_TRUSTED_PROXIES=127.0.0.1",
		"SCRAPEDEFENSE_TARPIT_DRIP_BYTES_PER_SECOND=1000000",
		"SCRAPEDEFENSE_TARPIT_MAX_SESSION=1s",
		"SCRAPEDEFENSE_ALERTS_ALLOW_PRIVATE_DESTINATIONS=true",
		"SCRAPEDEFENSE_ALERTS_WEBHOOK_URL=" + receiver.URL + "/alerts",
		"SCRAPEDEFENSE_ALERTS_WEBHOOK_SECRET_FILE=" + writeSecret(t, "hook", "alert-webhook-secret-0123456789"),
		"SCRAPEDEFENSE_ESCALATION_CLASSIFIER_KIND=openai",
		"SCRAPEDEFENSE_ESCALATION_CLASSIFIER_URL=" + classifier.URL,
		"SCRAPEDEFENSE_ESCALATION_CLASSIFIER_MODEL=test",
		"SCRAPEDEFENSE_ESCALATION_CLASSIFIER_ALLOW_PRIVATE=true",
	})
	base := "http://" + s.public
	from := func(ip string) reqOpt { return hdr("X-Forwarded-For", ip) }
	if code, _, _ := get(t, base+"/", browser(), from("192.0.2.10")); code != http.StatusOK {
		t.Errorf("browser page: %d", code)
	}
	if code, _, _ := get(t, base+"/", ua("curl/8.5.0"), from("198.51.100.11")); code != http.StatusForbidden {
		t.Errorf("curl: %d, want 403", code)
	}
	if code, _, _ := get(t, base+"/.well-known/sd-archive/index.html", browser(), from("203.0.113.12")); code != http.StatusOK {
		t.Errorf("maze page: %d", code)
	}
	// An unsigned webhook is refused, and counted on the AI service's routes.
	resp, err := testClient.Post("http://"+s.ai+"/webhook", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	cat := readMetricsCatalogue(t)
	for _, r := range []struct{ service, addr string }{
		{"edge", s.admin},
		{"ai_service", s.ai},
		{"escalation", s.escalation},
		{"tarpit", s.tarpitAdmin},
	} {
		own, ok := cat.roles[r.service]
		if !ok {
			t.Errorf("docs/metrics.md has no section for service=%q", r.service)
		}
		code, scrape, _ := get(t, "http://"+r.addr+"/metrics")
		if code != http.StatusOK {
			t.Errorf("%s /metrics: %d", r.service, code)
			continue
		}
		if !strings.Contains(scrape, `service="`+r.service+`"`) {
			t.Errorf("%s: series do not carry service=%q", r.service, r.service)
		}
		checkRoleMetrics(t, r.service, slices.Concat(cat.standard, own), scrape)
	}
}
