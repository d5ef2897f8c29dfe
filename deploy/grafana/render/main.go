// Command render draws a Grafana dashboard as a PNG from a Prometheus
// server's data, without Grafana: each panel's queries go to
// /api/v1/query_range and come back as line charts, big numbers, bars or
// tables laid out on the dashboard's grid. deploy/grafana/render/run.sh uses
// it to make the pictures in docs/observability.md.
//
//	go run ./deploy/grafana/render -prometheus http://127.0.0.1:9090 \
//	    -window 4m -out-dir docs/images deploy/grafana/dashboards/*.json
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "render:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	fs.SetOutput(stderr)
	prom := fs.String("prometheus", "http://127.0.0.1:9090", "base URL of the Prometheus server")
	window := fs.Duration("window", time.Hour, "time range to show, ending at -end")
	endFlag := fs.String("end", "", "end of the range, RFC 3339 (default: now)")
	step := fs.Duration("step", 0, "query resolution (default: window/240, at least 1s)")
	outDir := fs.String("out-dir", ".", "directory for dashboard-<name>.png")
	width := fs.Int("width", 1600, "image width in pixels")
	rowHeight := fs.Int("row-height", 30, "pixels per Grafana grid row")
	ranges := fs.String("ranges", "", "rewrite range selectors in the queries, e.g. 5m=20s,1h=60s (for a short recording)")
	timeout := fs.Duration("timeout", 30*time.Second, "per query")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: render [flags] dashboard.json...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("no dashboard given")
	}
	end := time.Now()
	if *endFlag != "" {
		t, err := time.Parse(time.RFC3339, *endFlag)
		if err != nil {
			return fmt.Errorf("-end: %w", err)
		}
		end = t
	}
	if *step <= 0 {
		*step = max(*window/240, time.Second).Truncate(time.Second)
	}
	rewrite, err := parseRanges(*ranges)
	if err != nil {
		return fmt.Errorf("-ranges: %w", err)
	}

	query := PrometheusQuerier(&http.Client{Timeout: *timeout}, *prom)
	if rewrite != nil {
		query = rewriteRanges(query, rewrite)
	}
	for _, path := range fs.Args() {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		d, err := ParseDashboard(b)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		opts := Options{
			Query: query, Start: end.Add(-*window), End: end, Step: *step,
			Vars: d.Variables(*window, *step), Width: *width, RowHeight: *rowHeight,
		}
		img, err := Render(ctx, d, opts)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
		out := filepath.Join(*outDir, "dashboard-"+name+".png")
		if err := writePNG(out, img); err != nil {
			return err
		}
		slog.Info("rendered", "dashboard", d.Title, "file", out)
	}
	return nil
}

// writePNG writes through a temporary file so a failed run never leaves a
// half-written picture in the docs.
func writePNG(path string, img image.Image) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".render-*.png")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := png.Encode(tmp, img); err != nil {
		tmp.Close()
		return fmt.Errorf("encode %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// rangeSelector matches a PromQL range like [5m] or [30m:1m].
var rangeSelector = regexp.MustCompile(`\[(\d+[smhdwy])(:[^\]]*)?\]`)

// parseRanges reads "5m=20s,1h=60s".
func parseRanges(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	m := map[string]string{}
	for _, pair := range strings.Split(s, ",") {
		from, to, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok {
			return nil, fmt.Errorf("%q is not from=to", pair)
		}
		for _, d := range []string{from, to} {
			if _, err := time.ParseDuration(d); err != nil && !strings.HasSuffix(d, "d") && !strings.HasSuffix(d, "w") {
				return nil, fmt.Errorf("%q: %w", d, err)
			}
		}
		m[from] = to
	}
	return m, nil
}

// rewriteRanges shortens range selectors before querying, so that a
// dashboard's [5m] or [1h] windows make sense over a few minutes of data.
func rewriteRanges(q QueryRange, m map[string]string) QueryRange {
	return func(ctx context.Context, expr string, start, end time.Time, step time.Duration) ([]Series, error) {
		expr = rangeSelector.ReplaceAllStringFunc(expr, func(sel string) string {
			sub := rangeSelector.FindStringSubmatch(sel)
			if to, ok := m[sub[1]]; ok {
				return "[" + to + sub[2] + "]"
			}
			return sel
		})
		return q(ctx, expr, start, end, step)
	}
}
