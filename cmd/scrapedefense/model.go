package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/aiservice"
	"github.com/scrapedefense/scrapedefense/internal/config"
	"github.com/scrapedefense/scrapedefense/internal/decision"
	"github.com/scrapedefense/scrapedefense/internal/escalation"
	"github.com/scrapedefense/scrapedefense/internal/events"
)

// Limits on the event logs model train reads: they are outside input.
const (
	maxTrainEvents    = 2_000_000
	maxTrainLineBytes = 64 << 10
)

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

func cmdModel(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "train" {
		return usagef("model: want the subcommand train")
	}
	fs := flag.NewFlagSet("model train", flag.ContinueOnError)
	var common commonFlags
	common.register(fs)
	var files multiFlag
	fs.Var(&files, "events", "event log: JSON lines in the webhook's event schema (repeatable)")
	out := fs.String("out", "", "where to write the model (JSON); point escalation.model_file at it")
	version := fs.String("version", time.Now().UTC().Format("2006-01-02T15:04:05Z"), "version of the new model")
	epochs := fs.Int("epochs", 0, "training passes (0: the default)")
	operator := fs.Bool("operator-labels", true, "label clients with the operator's allow and block decisions (source cli or api)")
	if _, err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if len(files) == 0 || *out == "" {
		return usagef("model train: --events and --out are required")
	}
	cfg, err := common.load()
	if err != nil {
		return err
	}

	var evs []events.Event
	skipped := 0
	for _, f := range files {
		n, err := readEventLog(f, &evs)
		if err != nil {
			return err
		}
		skipped += n
	}
	// Behaviour is replayed in time order, whatever order the logs came in.
	slices.SortStableFunc(evs, func(a, b events.Event) int { return a.Time.Compare(b.Time) })

	var label escalation.OperatorLabel
	if *operator {
		if label, err = operatorLabels(ctx, cfg); err != nil {
			return err
		}
	}
	examples, err := escalation.Examples(ctx, escalation.Options{}, evs, label)
	if err != nil {
		return err
	}
	bots := 0
	for _, ex := range examples {
		if ex.Label {
			bots++
		}
	}
	if bots == 0 || bots == len(examples) {
		return fmt.Errorf("model train: %d labelled events (%d bot, %d human): both kinds are needed (labels come from challenge passes, trap and tarpit hits and operator decisions)",
			len(examples), bots, len(examples)-bots)
	}
	m, err := escalation.Train(examples, escalation.TrainOptions{Version: *version, Epochs: *epochs})
	if err != nil {
		return err
	}
	correct := 0
	for _, ex := range examples {
		if p, err := m.Predict(ex.Features); err == nil && (p >= 0.5) == ex.Label {
			correct++
		}
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write model: %w", err)
	}
	fmt.Fprintf(stdout, "read %d events (%d invalid lines skipped)\ntrained model %s on %d labelled events (%d bot, %d human): %.1f%% right on its training set\nwrote %s\n",
		len(evs), skipped, *version, len(examples), bots, len(examples)-bots, 100*float64(correct)/float64(len(examples)), *out)
	return nil
}

// readEventLog appends the valid events of one JSON-lines file to evs and
// returns how many lines it skipped.
func readEventLog(path string, evs *[]events.Event) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), maxTrainLineBytes)
	skipped := 0
	now := time.Now()
	for sc.Scan() {
		line := sc.Bytes()
		if len(strings.TrimSpace(string(line))) == 0 {
			continue
		}
		var ev events.Event
		if json.Unmarshal(line, &ev) != nil || aiservice.ValidateEvent(&ev, now) != nil {
			skipped++
			continue
		}
		if len(*evs) == maxTrainEvents {
			return skipped, fmt.Errorf("%s: more than %d events; train on a sample", path, maxTrainEvents)
		}
		*evs = append(*evs, ev)
	}
	if err := sc.Err(); err != nil {
		return skipped, fmt.Errorf("%s: %w", path, err)
	}
	return skipped, nil
}

// operatorLabels labels events by the operator's own decisions: a client
// the operator allowed is human, one the operator blocked is a bot.
// Decisions written by the engine or the tarpit are not labels: training
// on them would teach the model its own mistakes.
func operatorLabels(ctx context.Context, cfg config.Config) (escalation.OperatorLabel, error) {
	backend, done, err := openDecisions(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer done()
	ds, err := backend.list(ctx)
	if err != nil {
		return nil, err
	}
	type label struct {
		p   netip.Prefix
		bot bool
	}
	var labels []label
	for _, d := range ds {
		if d.Source != "cli" && d.Source != "api" {
			continue
		}
		p, err := d.Prefix()
		if err != nil {
			continue
		}
		switch d.Action {
		case decision.ActionAllow:
			labels = append(labels, label{p, false})
		case decision.ActionBlock:
			labels = append(labels, label{p, true})
		}
	}
	if len(labels) == 0 {
		return nil, nil
	}
	return func(ev events.Event) (bool, bool) {
		addr, err := netip.ParseAddr(ev.ClientIP)
		if err != nil {
			return false, false
		}
		for _, l := range labels {
			if l.p.Contains(addr.Unmap()) {
				return l.bot, true
			}
		}
		return false, false
	}, nil
}
