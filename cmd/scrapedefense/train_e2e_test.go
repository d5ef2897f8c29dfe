package main

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/demosite"
	"github.com/scrapedefense/scrapedefense/internal/escalation"
	"github.com/scrapedefense/scrapedefense/internal/events"
	"github.com/scrapedefense/scrapedefense/internal/tarpit"
)

// labelledLog writes an event log: people who load assets and pass
// challenges, scrapers that fetch only pages and walk into the trap.
func labelledLog(t *testing.T) string {
	t.Helper()
	start := time.Now().Add(-time.Hour).UTC()
	var b strings.Builder
	enc := json.NewEncoder(&b)
	write := func(ev events.Event) {
		ev.Version = 1
		if ev.Method == "" {
			ev.Method = "GET"
		}
		if err := enc.Encode(ev); err != nil {
			t.Fatal(err)
		}
	}
	chrome := map[string]string{"Accept": "text/html", "Accept-Language": "en", "Sec-Ch-Ua": `"Chromium";v="131"`, "Sec-Fetch-Dest": "document", "Sec-Fetch-Mode": "navigate"}
	for i := range 20 {
		person := fmt.Sprintf("198.51.100.%d", i+1)
		bot := fmt.Sprintf("203.0.113.%d", i+1)
		for p := range 6 {
			at := start.Add(time.Duration(i*60+p*8) * time.Second)
			write(events.Event{Time: at, ClientIP: person, Path: fmt.Sprintf("/notes/%d", p), UserAgent: browserUA, Status: 200, Headers: chrome, Action: "allow", Source: "edge"})
			write(events.Event{Time: at.Add(100 * time.Millisecond), ClientIP: person, Path: "/static/site.css", UserAgent: browserUA, Status: 200,
				Headers: map[string]string{"Accept": "text/css", "Sec-Fetch-Dest": "style", "Accept-Language": "en"}, Action: "allow", Source: "edge"})
			write(events.Event{Time: at.Add(200 * time.Millisecond), ClientIP: bot, Path: fmt.Sprintf("/notes/%d-%d", i, p), UserAgent: browserUA, Status: 200, Headers: chrome, Action: "allow", Source: "edge"})
		}
		at := start.Add(time.Duration(i*60+50) * time.Second)
		write(events.Event{Time: at, ClientIP: person, Kind: events.KindChallengePass, Path: "/", UserAgent: browserUA, Source: "challenge"})
		write(events.Event{Time: at, ClientIP: bot, Kind: events.KindTrap, Path: "/.well-known/sd-archive/index.html", UserAgent: browserUA, Action: "tarpit", Source: "edge"})
	}
	b.WriteString("not json\n") // counted as skipped, not fatal
	p := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestModelTrainAndLoad: model train learns from a labelled event log, and
// serve loads the result and exports its version.
func TestModelTrainAndLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := filepath.Join(dir, "model.json")
	s := &server{t: t, env: append(os.Environ(), "SCRAPEDEFENSE_DATA_DIR="+dir)}
	text := s.cli("model", "train", "--events", labelledLog(t), "--out", out, "--version", "e2e-1")
	if !strings.Contains(text, "1 invalid lines skipped") || !strings.Contains(text, "40 labelled events (20 bot, 20 human)") {
		t.Errorf("model train said:\n%s", text)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	m, err := escalation.LoadModel(f)
	f.Close()
	if err != nil || m.Version() != "e2e-1" {
		t.Fatalf("trained model: %v, version %q", err, m.Version())
	}

	srv := startPipeline(t, "SCRAPEDEFENSE_ESCALATION_MODEL_FILE="+out)
	_, metrics, _ := get(t, "http://"+srv.escalation+"/metrics")
	if !strings.Contains(metrics, `model_version_info{model="escalation",service="escalation",version="e2e-1"} 1`) {
		t.Errorf("escalation does not export the trained model's version:\n%s", grepLines(metrics, "model_version"))
	}
}

// TestTarpitTrainFromUpstream: tarpit train crawls a site and writes a
// model the tarpit loads.
func TestTarpitTrainFromUpstream(t *testing.T) {
	t.Parallel()
	site := httptest.NewServer(demosite.Handler())
	t.Cleanup(site.Close)
	out := filepath.Join(t.TempDir(), "maze.model")
	s := &server{t: t, env: os.Environ()}
	text := s.cli("tarpit", "train", "--from-upstream", site.URL+"/", "--out", out, "--max-pages", "20", "--delay", "1ms")
	if !strings.Contains(text, "wrote "+out) {
		t.Errorf("tarpit train said:\n%s", text)
	}
	m, err := tarpit.LoadModelFile(out)
	if err != nil {
		t.Fatalf("load the trained model: %v", err)
	}
	if m.Words() < 100 {
		t.Errorf("the model knows %d words, want the site's vocabulary", m.Words())
	}
}
