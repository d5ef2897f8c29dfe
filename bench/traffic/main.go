// Command traffic simulates a realistic mix of people, good bots and
// scrapers against a running scrapedefense edge, from outside and over HTTP
// only, and scores the edge's detection against the simulator's own
// ground-truth labels.
//
//	go run ./bench/traffic -bin /tmp/scrapedefense            # starts the edge itself
//	go run ./bench/traffic -target 127.0.0.1:8080 -admin 127.0.0.1:9080 -token-file DATA/api.token
//
// See bench/traffic/run.sh and docs/detection.md.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// options are the command line.
type options struct {
	Bin, Upstream                     string
	Target, Admin, TokenFile, HostHdr string
	DataDir                           string // crawler lists
	Report, Header, JSON              string
	Command, Label                    string
	Quick                             bool
	cfg                               config
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "traffic:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "traffic:", err)
		os.Exit(1)
	}
	for _, t := range res.Targets {
		fmt.Printf("%-8s %s: %s\n", result(t), t.Name, t.Measured)
	}
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("traffic", flag.ContinueOnError)
	fs.StringVar(&o.Bin, "bin", "", "scrapedefense binary to start (all roles, free ports, temp data dir); empty: use -target")
	fs.StringVar(&o.Upstream, "upstream", "", "with -bin: site to protect (default: the built-in demo site)")
	fs.StringVar(&o.Target, "target", "", "host:port of a running edge's public listener")
	fs.StringVar(&o.Admin, "admin", "", "host:port of that edge's admin listener, for the decisions API")
	fs.StringVar(&o.TokenFile, "token-file", "", "that edge's API token file (<data_dir>/api.token)")
	fs.StringVar(&o.HostHdr, "host", "", "Host header to send (default: the target)")
	fs.StringVar(&o.DataDir, "crawler-data", "internal/crawlers/data", "directory with ai-robots-txt/robots.json and ip-ranges/*.txt")
	fs.StringVar(&o.Report, "report", "", "write the Markdown report here (keeps its History section)")
	fs.StringVar(&o.Header, "report-header", "bench/traffic/header.md", "hand-written top of the report")
	fs.StringVar(&o.JSON, "json", "", "write every client's record here as JSON")
	fs.StringVar(&o.Command, "command", "go run ./bench/traffic", "command line to print in the report")
	fs.StringVar(&o.Label, "label", "", "what was measured, e.g. the commit")
	fs.BoolVar(&o.Quick, "quick", false, "a run of about 20 s with few clients, for tests")
	c := &o.cfg
	fs.Float64Var(&c.TimeScale, "time-scale", 0.05, "multiply every real-world wait by this")
	fs.DurationVar(&c.Duration, "duration", 3*time.Minute, "bound on the run's wall-clock time")
	fs.Uint64Var(&c.Seed, "seed", 1, "random seed; the same seed gives the same population")
	fs.IntVar(&c.Concurrency, "concurrency", 150, "clients in flight at once (the distributed group is extra)")
	fs.DurationVar(&c.Timeout, "timeout", 10*time.Second, "per request; a slower answer counts as a tarpit")
	fs.IntVar(&c.Classifier.BlockStatus, "block-status", 403, "the edge's edge.block.status")
	blockMarker := fs.String("block-marker", "Access denied", "text in the edge's block page (empty: status alone)")
	challengeMarker := fs.String("challenge-marker", defaultChallengeMarker, "text in every challenge page")
	fs.IntVar(&c.GroupLimit, "group-limit", 2000, "the distributed group stops after this many requests")
	fs.IntVar(&c.GroupSubnets, "group-subnets", 4, "the distributed group's /24 subnets")
	fs.DurationVar(&c.GroupInterval, "group-interval", 15*time.Second, "median pause of each distributed address between requests, wall clock, not scaled")
	c.Counts = counts{}
	defaults := map[family]int{famPeople: 300, famFeeds: 20, famPreviews: 30, famVerified: 20, famImpostors: 20,
		famAI: 40, famLibraries: 40, famStealth: 40, famDistributed: 256, famTrap: 10}
	quick := map[family]int{famPeople: 40, famFeeds: 4, famPreviews: 6, famVerified: 5, famImpostors: 5,
		famAI: 6, famLibraries: 6, famStealth: 6, famDistributed: 48, famTrap: 3}
	vals := map[family]*int{}
	for _, f := range families {
		vals[f] = fs.Int(string(f), defaults[f], "number of "+string(f)+" clients (distributed: addresses)")
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, f := range families {
		c.Counts[f] = *vals[f]
		if o.Quick && !set[string(f)] {
			c.Counts[f] = quick[f]
		}
		if c.Counts[f] < 0 || c.Counts[f] > 5000 {
			return o, fmt.Errorf("-%s: %d out of range 0…5000", f, c.Counts[f])
		}
	}
	if o.Quick {
		if !set["time-scale"] {
			c.TimeScale = 0.01
		}
		if !set["duration"] {
			c.Duration = 20 * time.Second
		}
		if !set["group-limit"] {
			c.GroupLimit = 500
		}
		if !set["group-interval"] {
			c.GroupInterval = time.Second
		}
	}
	c.Classifier.BlockMarker = []byte(*blockMarker)
	c.Classifier.ChallengeMarker = []byte(*challengeMarker)
	switch {
	case c.TimeScale <= 0 || c.TimeScale > 1:
		return o, fmt.Errorf("-time-scale %g: want 0 < scale ≤ 1", c.TimeScale)
	case c.Duration <= 0:
		return o, fmt.Errorf("-duration must be positive")
	case o.Bin == "" && o.Target == "":
		return o, fmt.Errorf("give -bin to start an edge or -target to use a running one")
	case c.GroupLimit <= 0:
		return o, fmt.Errorf("-group-limit must be positive")
	case c.GroupInterval <= 0:
		return o, fmt.Errorf("-group-interval must be positive")
	}
	return o, nil
}

// results is what a run produced.
type results struct {
	Clients   []*clientRec
	Scores    map[family]*familyScore
	Targets   []target
	Decisions []storedDecision
	DecErr    error
}

func run(ctx context.Context, o options) (results, error) {
	var res results
	data, err := loadCrawlerData(o.DataDir)
	if err != nil {
		return res, err
	}
	cfg := o.cfg
	cfg.Data = data
	tokenFile := o.TokenFile
	if o.Bin != "" {
		dir, err := os.MkdirTemp("", "traffic-edge-")
		if err != nil {
			return res, fmt.Errorf("data dir: %w", err)
		}
		defer os.RemoveAll(dir)
		edge, err := startEdge(ctx, o.Bin, o.Upstream, dir, nil)
		if err != nil {
			return res, err
		}
		defer edge.Stop()
		o.Target, o.Admin, tokenFile = edge.Public, edge.Admin, tokenPath(dir)
	}
	cfg.Target = o.Target
	cfg.HostHeader = o.HostHdr
	if cfg.HostHeader == "" {
		cfg.HostHeader = o.Target
	}
	s := &sim{cfg: cfg}
	start := time.Now()
	slog.Info("simulating", "target", cfg.Target, "scale", cfg.TimeScale, "duration", cfg.Duration)
	if err := s.run(ctx); err != nil {
		return res, err
	}
	wall := time.Since(start)
	res.Clients = s.clients
	if o.Admin != "" && tokenFile != "" {
		res.Decisions, res.DecErr = fetchDecisions(ctx, o.Admin, tokenFile)
	} else {
		res.DecErr = fmt.Errorf("no -admin and -token-file")
	}
	applyDecisions(res.Clients, res.Decisions)
	res.Scores = scoreFamilies(res.Clients)
	res.Targets = evaluateTargets(res.Clients, cfg.GroupLimit)

	if o.JSON != "" {
		b, err := json.MarshalIndent(res.Clients, "", " ")
		if err != nil {
			return res, fmt.Errorf("encode clients: %w", err)
		}
		if err := os.WriteFile(o.JSON, b, 0o644); err != nil {
			return res, fmt.Errorf("write %s: %w", o.JSON, err)
		}
	}
	if o.Report != "" {
		header, err := os.ReadFile(o.Header)
		if err != nil {
			return res, fmt.Errorf("read report header: %w", err)
		}
		info := runInfo{Date: time.Now(), Command: o.Command, Label: o.Label, TimeScale: cfg.TimeScale, Wall: wall, Seed: cfg.Seed, GroupInterval: cfg.GroupInterval, Decisions: len(res.Decisions)}
		if res.DecErr != nil {
			info.DecErr = res.DecErr.Error()
		}
		var b strings.Builder
		writeReport(&b, string(header), previousHistory(o.Report), info, res.Scores, res.Targets)
		tmp := o.Report + ".tmp"
		if err := os.MkdirAll(filepath.Dir(o.Report), 0o755); err != nil {
			return res, fmt.Errorf("report dir: %w", err)
		}
		if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
			return res, fmt.Errorf("write report: %w", err)
		}
		if err := os.Rename(tmp, o.Report); err != nil {
			return res, fmt.Errorf("write report: %w", err)
		}
	}
	return res, nil
}
