package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/app"
	"github.com/scrapedefense/scrapedefense/internal/config"
	"github.com/scrapedefense/scrapedefense/internal/probe"
	"github.com/scrapedefense/scrapedefense/internal/slo"
)

// sloNames are the SLOs recorded by deploy/prometheus/rules/slo.yml, in its
// order; TestOpsSLONamesMatchRules keeps the two in step.
var sloNames = []string{
	"edge-latency",
	"edge-availability",
	"ai-webhook-latency",
	"escalation-latency",
	"escalation-decision",
	"tarpit-errors",
	"admin-ui-availability",
	"dashboard-fanout",
}

// cmdOps is the operations command group (probe, budget).
func cmdOps(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usagef("ops: want a subcommand: probe or budget")
	}
	switch args[0] {
	case "probe":
		return cmdOpsProbe(ctx, args[1:], stdout)
	case "budget":
		return cmdOpsBudget(ctx, args[1:], stdout)
	default:
		return usagef("ops: unknown subcommand %q (want probe or budget)", args[0])
	}
}

func cmdOpsProbe(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("ops probe", flag.ContinueOnError)
	var common commonFlags
	common.register(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	timeout := fs.Duration("timeout", probe.DefaultTimeout, "time allowed for each target")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("ops probe: unexpected argument %q", pos[0])
	}
	if *timeout <= 0 {
		return usagef("ops probe: --timeout must be positive")
	}
	cfg, err := common.load()
	if err != nil {
		return err
	}
	targets, notes := probeTargets(cfg, *timeout)
	client := userAgentDoer{c: &http.Client{
		// A redirect is an answer; the probe judges the first response.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, ua: "scrapedefense-probe/" + version}
	results := probe.Run(ctx, targets, client)
	for i := range results {
		explainNotRunning(&results[i])
	}
	if *asJSON {
		if err := writeProbeJSON(stdout, results, notes); err != nil {
			return err
		}
	} else {
		if err := writeProbeTable(stdout, results, notes); err != nil {
			return err
		}
	}
	failed := 0
	for _, r := range results {
		if r.Status != probe.StatusOK {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d targets not ok", failed, len(results))
	}
	return nil
}

// probeTargets derives what to probe from the configuration: the public
// listener in front of the site and every role's /health. The notes say
// what was left out and why.
func probeTargets(cfg config.Config, timeout time.Duration) (targets []probe.Target, notes []string) {
	if cfg.Edge.ProxyProtocol.Required {
		// A plain HTTP request would be refused for its missing PROXY header.
		notes = append(notes, "edge-public not probed: edge.proxy_protocol.required is set")
	} else {
		targets = append(targets, probe.Target{Name: "edge-public", URL: "http://" + dialAddr(cfg.Edge.Listen) + "/", Timeout: timeout})
	}
	for _, h := range []struct{ name, addr string }{
		{"edge", cfg.Edge.AdminListen},
		{app.RoleAI, cfg.AI.Listen},
		{app.RoleEscalation, cfg.Escalation.Listen},
		{"tarpit", cfg.Tarpit.AdminListen},
	} {
		targets = append(targets, probe.Target{Name: h.name, URL: "http://" + dialAddr(h.addr) + "/health", Health: true, Timeout: timeout})
	}
	return targets, notes
}

// dialAddr turns a listen address into one to connect to: a missing or
// unspecified host (":8080", "0.0.0.0:8080", "[::]:8080") means loopback.
func dialAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	ip := net.ParseIP(host)
	switch {
	case host == "" || (ip != nil && ip.IsUnspecified() && ip.To4() != nil):
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified():
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

// explainNotRunning points at the likely cause when nothing listens: the
// role is not running (serve --roles leaves it out, or the server is down).
func explainNotRunning(r *probe.Result) {
	if r.Status == probe.StatusFail && strings.Contains(r.Reason, "connection refused") {
		r.Reason = "not running (nothing listens on " + hostOf(r.Target.URL) + "): " + r.Reason
	}
}

func hostOf(rawURL string) string {
	rest, _ := strings.CutPrefix(rawURL, "http://")
	host, _, _ := strings.Cut(rest, "/")
	return host
}

// userAgentDoer names the probe in the requests it sends, so its hits are
// recognisable in logs and verdicts.
type userAgentDoer struct {
	c  *http.Client
	ua string
}

func (d userAgentDoer) Do(req *http.Request) (*http.Response, error) {
	req.Header.Set("User-Agent", d.ua)
	return d.c.Do(req)
}

func writeProbeTable(w io.Writer, results []probe.Result, notes []string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tURL\tSTATUS\tDURATION\tREASON")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Target.Name, r.Target.URL, r.Status,
			r.Duration.Round(100*time.Microsecond), oneLine(r.Reason))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range notes {
		fmt.Fprintln(w, "note:", n)
	}
	return nil
}

type probeJSON struct {
	Target     string  `json:"target"`
	URL        string  `json:"url"`
	Status     string  `json:"status"`
	DurationMS float64 `json:"duration_ms"`
	Health     string  `json:"health,omitempty"`
	Reason     string  `json:"reason,omitempty"`
}

func writeProbeJSON(w io.Writer, results []probe.Result, notes []string) error {
	out := struct {
		Targets []probeJSON `json:"targets"`
		Notes   []string    `json:"notes,omitempty"`
	}{Targets: make([]probeJSON, 0, len(results)), Notes: notes}
	for _, r := range results {
		out.Targets = append(out.Targets, probeJSON{
			Target: r.Target.Name, URL: r.Target.URL, Status: string(r.Status),
			DurationMS: float64(r.Duration.Microseconds()) / 1000, Health: string(r.Health), Reason: r.Reason,
		})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// oneLine keeps a reason on its table row.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func cmdOpsBudget(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("ops budget", flag.ContinueOnError)
	promURL := fs.String("prometheus", "", "base URL of the Prometheus server that loads deploy/prometheus/rules/slo.yml (required)")
	name := fs.String("slo", "", "one SLO (default: all): "+strings.Join(sloNames, ", "))
	asJSON := fs.Bool("json", false, "print JSON")
	timeout := fs.Duration("timeout", 10*time.Second, "time allowed for all queries")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("ops budget: unexpected argument %q", pos[0])
	}
	if *promURL == "" {
		return usagef("ops budget: --prometheus URL is required")
	}
	if *timeout <= 0 {
		return usagef("ops budget: --timeout must be positive")
	}
	names := sloNames
	if *name != "" {
		// An SLO added to the rules but not yet to sloNames is still
		// readable by name; Budget validates its form.
		names = []string{*name}
	}
	client, err := slo.NewClient(*promURL, &http.Client{Timeout: *timeout})
	if err != nil {
		return usagef("ops budget: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	budgets := make([]slo.Budget, 0, len(names))
	for _, n := range names {
		b, err := client.Budget(ctx, n)
		if err != nil {
			return usagef("ops budget: %v", err)
		}
		budgets = append(budgets, b)
	}
	if *asJSON {
		err = writeBudgetJSON(stdout, budgets)
	} else {
		err = writeBudgetTable(stdout, budgets)
	}
	if err != nil {
		return err
	}
	// Scripts read the exit status: success only when every SLO was
	// measured and none has spent its budget.
	var unknown, spent []string
	for _, b := range budgets {
		switch {
		case budgetUnknown(b):
			unknown = append(unknown, b.SLO)
		case b.Remaining.Value < 0:
			spent = append(spent, b.SLO)
		}
	}
	var problems []string
	if len(unknown) > 0 {
		problems = append(problems, "unknown: "+strings.Join(unknown, ", "))
	}
	if len(spent) > 0 {
		problems = append(problems, "error budget spent: "+strings.Join(spent, ", "))
	}
	if len(problems) > 0 {
		return fmt.Errorf("SLOs not healthy (%s)", strings.Join(problems, "; "))
	}
	return nil
}

func budgetValues(b slo.Budget) []slo.Value {
	return []slo.Value{b.Objective, b.SLI, b.Remaining, b.BurnRate}
}

func budgetUnknown(b slo.Budget) bool {
	for _, v := range budgetValues(b) {
		if v.Status != slo.StatusOK {
			return true
		}
	}
	return false
}

func writeBudgetTable(w io.Writer, budgets []slo.Budget) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SLO\tOBJECTIVE\tSLI (30d)\tBUDGET LEFT\tBURN RATE (1h)\tREASON")
	for _, b := range budgets {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", b.SLO,
			percent(b.Objective), percent(b.SLI), percent(b.Remaining), ratio(b.BurnRate), budgetReason(b))
	}
	return tw.Flush()
}

// budgetReason joins the distinct reasons of a budget's unknown values;
// usually they share one (Prometheus unreachable).
func budgetReason(b slo.Budget) string {
	var reasons []string
	for _, v := range budgetValues(b) {
		if v.Status == slo.StatusOK {
			continue
		}
		r := oneLine(v.Reason)
		if r == "" {
			r = "no value"
		}
		if !slices.Contains(reasons, r) {
			reasons = append(reasons, r)
		}
	}
	return strings.Join(reasons, "; ")
}

func percent(v slo.Value) string {
	if v.Status != slo.StatusOK {
		return "unknown"
	}
	return fmt.Sprintf("%.2f%%", v.Value*100)
}

func ratio(v slo.Value) string {
	if v.Status != slo.StatusOK {
		return "unknown"
	}
	return fmt.Sprintf("%.2f", v.Value)
}

// valueJSON is a slo.Value for JSON, which has no NaN: an unknown value is
// null with its reason.
type valueJSON struct {
	Value  *float64 `json:"value"`
	Status string   `json:"status"`
	Reason string   `json:"reason,omitempty"`
}

func toValueJSON(v slo.Value) valueJSON {
	out := valueJSON{Status: string(v.Status), Reason: v.Reason}
	if v.Status == slo.StatusOK && !math.IsNaN(v.Value) && !math.IsInf(v.Value, 0) {
		x := v.Value
		out.Value = &x
	} else {
		out.Status = string(slo.StatusUnknown)
	}
	return out
}

type budgetJSON struct {
	SLO       string    `json:"slo"`
	Objective valueJSON `json:"objective"`
	SLI       valueJSON `json:"sli"`
	Remaining valueJSON `json:"error_budget_remaining"`
	BurnRate  valueJSON `json:"burn_rate_1h"`
}

func writeBudgetJSON(w io.Writer, budgets []slo.Budget) error {
	out := make([]budgetJSON, 0, len(budgets))
	for _, b := range budgets {
		out = append(out, budgetJSON{SLO: b.SLO, Objective: toValueJSON(b.Objective), SLI: toValueJSON(b.SLI),
			Remaining: toValueJSON(b.Remaining), BurnRate: toValueJSON(b.BurnRate)})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
