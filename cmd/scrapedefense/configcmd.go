package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/scrapedefense/scrapedefense/internal/config"
	"github.com/scrapedefense/scrapedefense/internal/edge"
)

func cmdConfig(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usagef("config: want a subcommand: check FILE, or keys")
	}
	switch args[0] {
	case "check":
		fs := flag.NewFlagSet("config check", flag.ContinueOnError)
		pos, err := parseFlags(fs, args[1:])
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			return usagef("config check: want exactly one FILE")
		}
		return checkConfig(pos[0], stdout)
	case "keys":
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KEY\tENVIRONMENT\tTYPE\tDEFAULT")
		for _, k := range config.Keys() {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.Path, k.Env, k.Type, k.Default)
		}
		return tw.Flush()
	default:
		return usagef("config: unknown subcommand %q (want check or keys)", args[0])
	}
}

// checkConfig validates the file, and the policy file it names, and prints
// every problem at once.
func checkConfig(path string, stdout io.Writer) error {
	cfg, err := config.Load(path, os.Environ())
	var problems []error
	if err != nil {
		problems = append(problems, flatten(err)...)
	}
	if cfg.Edge.PolicyFile != "" {
		if _, statErr := os.Stat(cfg.Edge.PolicyFile); statErr == nil {
			if _, _, perr := edge.LoadPolicy(cfg.Edge.PolicyFile); perr != nil {
				for _, e := range flatten(perr) {
					problems = append(problems, fmt.Errorf("edge.policy_file (%s): %w", cfg.Edge.PolicyFile, e))
				}
			}
		}
	}
	if len(problems) == 0 {
		fmt.Fprintf(stdout, "%s: OK\n", path)
		return nil
	}
	for _, p := range problems {
		fmt.Fprintln(stdout, p)
	}
	return fmt.Errorf("%s: %d problem(s)", path, len(problems))
}

func flatten(err error) []error {
	var out []error
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		out = append(out, e)
	}
	walk(err)
	if len(out) == 0 && err != nil {
		out = append(out, errors.Unwrap(err))
	}
	return out
}
