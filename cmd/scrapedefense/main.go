// Command scrapedefense is the AI scraping defense: one binary that runs the
// edge proxy and the services around it, and the CLI to operate them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `scrapedefense: AI scraping defense

Usage:
  scrapedefense serve [--config FILE] [--roles all|edge,...] [--upstream URL] [--data-dir DIR]
  scrapedefense config check FILE
  scrapedefense config keys
  scrapedefense explain --ip IP [--ua UA] [--path PATH] [--method M] [--header 'K: V']...
  scrapedefense decisions add VALUE --action ACTION [--ttl 1h] [--reason TEXT]
  scrapedefense decisions list [--json]
  scrapedefense decisions delete VALUE
  scrapedefense model train --out FILE [--data-dir DIR]
  scrapedefense tarpit train --from-upstream URL --out FILE
  scrapedefense ops probe [--config FILE] [--json] [--timeout 5s]
  scrapedefense ops budget --prometheus URL [--slo NAME] [--json] [--timeout 10s]
  scrapedefense version

Run "scrapedefense COMMAND -h" for the flags of a command.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command and returns the exit code: 0 success, 1 failure,
// 2 usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(ctx, args[1:], stdout, stderr)
	case "config":
		err = cmdConfig(args[1:], stdout)
	case "explain":
		err = cmdExplain(ctx, args[1:], stdout)
	case "decisions":
		err = cmdDecisions(ctx, args[1:], stdout)
	case "model":
		err = cmdModel(ctx, args[1:], stdout)
	case "tarpit":
		err = cmdTarpit(ctx, args[1:], stdout)
	case "ops":
		err = cmdOps(ctx, args[1:], stdout)
	case "version", "--version":
		fmt.Fprintln(stdout, versionString())
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, "scrapedefense:", err)
		return 2
	default:
		fmt.Fprintln(stderr, "scrapedefense:", err)
		return 1
	}
}

// usageError marks errors in how a command was called.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// parseFlags parses flags that may come before or after positional
// arguments ("decisions add 198.51.100.0/24 --action block").
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}
