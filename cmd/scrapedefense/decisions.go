package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/app"
	"github.com/scrapedefense/scrapedefense/internal/config"
	"github.com/scrapedefense/scrapedefense/internal/decision"
	"github.com/scrapedefense/scrapedefense/internal/edge"
	"github.com/scrapedefense/scrapedefense/internal/store"
)

// decisionBackend is either the store itself (no server running) or the
// running server's API (it holds the store's lock).
type decisionBackend interface {
	add(ctx context.Context, req edge.AddDecisionRequest) (decision.Decision, error)
	list(ctx context.Context) ([]decision.Decision, error)
	remove(ctx context.Context, value string) error
}

type storeBackend struct{ st store.Store }

func (b storeBackend) add(ctx context.Context, req edge.AddDecisionRequest) (decision.Decision, error) {
	d, err := edge.DecisionFromRequest(req, "cli", time.Now())
	if err != nil {
		return d, err
	}
	return d, b.st.PutDecision(ctx, d)
}

func (b storeBackend) list(ctx context.Context) ([]decision.Decision, error) {
	return b.st.ListDecisions(ctx)
}

func (b storeBackend) remove(ctx context.Context, value string) error {
	p, err := decision.ParsePrefix(value)
	if err != nil {
		return err
	}
	found, err := b.st.DeleteDecision(ctx, p.String())
	if err == nil && !found {
		err = fmt.Errorf("no decision for %s", p)
	}
	return err
}

type apiBackend struct{ c *app.Client }

func (b apiBackend) add(ctx context.Context, req edge.AddDecisionRequest) (decision.Decision, error) {
	if req.Source == "" {
		req.Source = "cli"
	}
	return b.c.AddDecision(ctx, req)
}

func (b apiBackend) list(ctx context.Context) ([]decision.Decision, error) {
	return b.c.ListDecisions(ctx)
}

func (b apiBackend) remove(ctx context.Context, value string) error {
	return b.c.DeleteDecision(ctx, value)
}

func openDecisions(ctx context.Context, cfg config.Config) (decisionBackend, func(), error) {
	st, err := app.OpenStore(ctx, cfg)
	if err == nil {
		return storeBackend{st}, func() { st.Close() }, nil
	}
	if !errors.Is(err, store.ErrLocked) {
		return nil, nil, err
	}
	token, err := app.APIToken(cfg, false)
	if err != nil {
		return nil, nil, fmt.Errorf("a server is running but its API token is unreadable: %w", err)
	}
	return apiBackend{app.NewClient(cfg.Edge.AdminListen, token)}, func() {}, nil
}

func cmdDecisions(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usagef("decisions: want a subcommand: add, list or delete")
	}
	fs := flag.NewFlagSet("decisions "+args[0], flag.ContinueOnError)
	var common commonFlags
	common.register(fs)
	var req edge.AddDecisionRequest
	var asJSON bool
	switch args[0] {
	case "add":
		fs.StringVar(&req.Action, "action", "block", "allow, throttle, challenge, tarpit or block")
		fs.StringVar(&req.TTL, "ttl", "", "lifetime such as 1h or 30m (default: never expires)")
		fs.StringVar(&req.Reason, "reason", "", "why, shown in explain and the UI")
	case "list":
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	case "delete":
	default:
		return usagef("decisions: unknown subcommand %q (want add, list or delete)", args[0])
	}
	pos, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	cfg, err := common.load()
	if err != nil {
		return err
	}
	be, closeFn, err := openDecisions(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeFn()

	switch args[0] {
	case "add":
		if len(pos) != 1 {
			return usagef("decisions add: want exactly one IP or CIDR")
		}
		req.Value = pos[0]
		d, err := be.add(ctx, req)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "added: %s %s %s\n", d.Value, d.Action, expiry(d))
	case "delete":
		if len(pos) != 1 {
			return usagef("decisions delete: want exactly one IP or CIDR")
		}
		if err := be.remove(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted: %s\n", pos[0])
	case "list":
		ds, err := be.list(ctx)
		if err != nil {
			return err
		}
		if asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(ds)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VALUE\tACTION\tEXPIRES\tSOURCE\tREASON")
		for _, d := range ds {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.Value, d.Action, expiry(d), d.Source, d.Reason)
		}
		return tw.Flush()
	}
	return nil
}

func expiry(d decision.Decision) string {
	if d.Expires.IsZero() {
		return "never"
	}
	return d.Expires.Format(time.RFC3339)
}
