package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/app"
	"github.com/scrapedefense/scrapedefense/internal/edge"
	"github.com/scrapedefense/scrapedefense/internal/pipeline"
	"github.com/scrapedefense/scrapedefense/internal/store"
)

// headerFlags collects repeated --header 'Name: value' flags.
type headerFlags map[string]string

func (h headerFlags) String() string { return "" }

func (h headerFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, ":")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("want 'Name: value', got %q", s)
	}
	h[strings.TrimSpace(k)] = strings.TrimSpace(v)
	return nil
}

func cmdExplain(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	var common commonFlags
	common.register(fs)
	req := edge.ExplainRequest{Headers: headerFlags{}}
	fs.StringVar(&req.IP, "ip", "", "client address (required)")
	fs.StringVar(&req.UserAgent, "ua", "", "User-Agent header")
	fs.StringVar(&req.Path, "path", "/", "request path")
	fs.StringVar(&req.Method, "method", "GET", "request method")
	fs.StringVar(&req.Host, "host", "", "Host header")
	fs.Var(headerFlags(req.Headers), "header", "request header 'Name: value' (repeatable)")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	if req.IP == "" {
		return usagef("explain: --ip is required")
	}
	cfg, err := common.load()
	if err != nil {
		return err
	}
	// The running server's answer includes its live rate-limit state; when
	// no server holds the store, build the same fast path here.
	st, err := app.OpenStore(ctx, cfg)
	if errors.Is(err, store.ErrLocked) {
		token, terr := app.APIToken(cfg, false)
		if terr != nil {
			return fmt.Errorf("a server is running but its API token is unreadable: %w", terr)
		}
		client := app.NewClient(cfg.Edge.AdminListen, token)
		text, err := client.Explain(ctx, req)
		if err != nil {
			return err
		}
		recs, err := client.History(ctx, req.IP)
		if err != nil {
			return err
		}
		if _, err = io.WriteString(stdout, text); err == nil {
			pipeline.WriteHistory(stdout, recs)
		}
		return err
	}
	if err != nil {
		return err
	}
	defer st.Close()
	fp, _, err := edge.NewFastPathFromConfig(cfg.Edge)
	if err != nil {
		return err
	}
	ds, err := st.ListDecisions(ctx)
	if err != nil {
		return err
	}
	if err := fp.Index().ReplaceAll(ds); err != nil {
		return err
	}
	text, err := edge.Explain(fp, req, time.Now())
	if err != nil {
		return usagef("explain: %v", err)
	}
	recs, err := pipeline.History(ctx, st, req.IP, 0)
	if err != nil {
		return err
	}
	if _, err = io.WriteString(stdout, text); err == nil {
		pipeline.WriteHistory(stdout, recs)
	}
	return err
}
