package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/scrapedefense/scrapedefense/internal/app"
	"github.com/scrapedefense/scrapedefense/internal/config"
	"github.com/scrapedefense/scrapedefense/internal/role"
	"github.com/scrapedefense/scrapedefense/internal/telemetry"
)

// commonFlags are the flags every command that reads the configuration has.
type commonFlags struct {
	configFile string
	dataDir    string
}

func (c *commonFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.configFile, "config", os.Getenv(config.EnvConfigFile), "configuration file (YAML)")
	fs.StringVar(&c.dataDir, "data-dir", "", "data directory (default: data_dir from the config, else under the user's state dir)")
}

func (c *commonFlags) load() (config.Config, error) {
	cfg, err := config.Load(c.configFile, os.Environ())
	if err != nil {
		return cfg, fmt.Errorf("invalid configuration:\n%w", err)
	}
	if c.dataDir != "" {
		cfg.DataDir = c.dataDir
	}
	return cfg, nil
}

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var common commonFlags
	common.register(fs)
	roles := fs.String("roles", "all", "roles to run: all, or a comma-separated list")
	upstream := fs.String("upstream", "", "URL of the site to protect (default: the built-in demo site)")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := common.load()
	if err != nil {
		return err
	}
	if *upstream != "" {
		cfg.Edge.Upstream = *upstream
		if err := cfg.Validate(); err != nil {
			return fmt.Errorf("invalid configuration:\n%w", err)
		}
	}
	level, err := telemetry.ParseLevel(cfg.Log.Level)
	if err != nil {
		return err
	}
	logger := telemetry.NewLogger(stderr, level)

	dataDir, err := app.DataDir(cfg)
	if err != nil {
		return err
	}
	cfg.DataDir = dataDir
	st, err := app.OpenStore(ctx, cfg)
	if err != nil {
		return fmt.Errorf("open store in %s: %w", dataDir, err)
	}
	defer st.Close()
	token, err := app.APIToken(cfg, true)
	if err != nil {
		return err
	}

	rs, err := app.Build(ctx, app.Deps{Config: cfg, Store: st, Logger: logger, Build: buildInfo(), Token: token}, *roles)
	var ue *app.UsageError
	if errors.As(err, &ue) {
		return usagef("%v", ue)
	}
	if err != nil {
		return err
	}

	// SIGHUP reloads every role that can reload.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			for _, r := range rs {
				if rl, ok := r.(interface{ Reload() error }); ok {
					_ = rl.Reload()
				}
			}
		}
	}()

	return role.RunAll(ctx, rs, func(eps []role.Endpoint) {
		app.PrintEndpoints(stdout, eps, dataDir, cfg.Edge.Upstream == "")
	})
}

func buildInfo() telemetry.BuildInfo {
	bi := telemetry.BuildInfo{Version: version, GoVersion: runtime.Version()}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				bi.Commit = s.Value
			}
		}
		if bi.Version == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			bi.Version = info.Main.Version
		}
	}
	return bi
}

func versionString() string {
	bi := buildInfo()
	s := "scrapedefense " + bi.Version + " (" + bi.GoVersion
	if bi.Commit != "" {
		s += ", commit " + bi.Commit
	}
	return s + ")"
}
