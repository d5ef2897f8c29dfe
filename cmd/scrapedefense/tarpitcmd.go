package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/scrapedefense/scrapedefense/internal/tarpit"
)

func cmdTarpit(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "train" {
		return usagef("tarpit: want the subcommand train")
	}
	fs := flag.NewFlagSet("tarpit train", flag.ContinueOnError)
	var o tarpit.TrainOptions
	fs.StringVar(&o.Upstream, "from-upstream", "", "URL of the site to learn from (only its host is crawled, robots.txt is obeyed)")
	out := fs.String("out", "", "where to write the model; point tarpit.model_file at it")
	fs.IntVar(&o.MaxPages, "max-pages", 200, "most pages fetched")
	fs.DurationVar(&o.Delay, "delay", 0, "pause between requests (0: the default, 500ms)")
	if _, err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if o.Upstream == "" || *out == "" {
		return usagef("tarpit train: --from-upstream and --out are required")
	}
	m, stats, err := tarpit.Train(ctx, o)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := m.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("write model: %w", err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "crawled %d pages (%d skipped), %d bytes, %d bytes of text\nmodel: %d words, %d states\nwrote %s\n",
		stats.Pages, stats.Skipped, stats.Bytes, stats.Text, m.Words(), m.States(), *out)
	return nil
}
