// Package app wires the roles, the store and the configuration into the
// binary's commands. cmd/scrapedefense stays a thin layer of flags over it.
package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/scrapedefense/scrapedefense/internal/config"
	"github.com/scrapedefense/scrapedefense/internal/edge"
	"github.com/scrapedefense/scrapedefense/internal/role"
	"github.com/scrapedefense/scrapedefense/internal/store"
	"github.com/scrapedefense/scrapedefense/internal/store/embedded"
	"github.com/scrapedefense/scrapedefense/internal/tarpit"
	"github.com/scrapedefense/scrapedefense/internal/telemetry"
)

// StoreFile is the embedded store's file name inside the data directory.
const StoreFile = "scrapedefense.db"

// Deps are the process-wide things roles are built from.
type Deps struct {
	Config config.Config
	Store  store.Store
	Logger *slog.Logger
	Build  telemetry.BuildInfo
	Token  string
}

// Registry lists every role of the binary. The roles built from one
// registry share a wiring, so that roles running in the same process talk
// in-process (the edge hands events to the AI service's intake).
func Registry(ctx context.Context, d Deps) *role.Registry {
	reg, _ := newRegistry(ctx, d)
	return reg
}

func newRegistry(ctx context.Context, d Deps) (*role.Registry, *wiring) {
	w := &wiring{ctx: ctx, d: d, selected: map[string]bool{}}
	reg := role.NewRegistry()
	reg.Register(edge.Name, func() (role.Role, error) {
		sink, err := w.edgeSink()
		if err != nil {
			return nil, err
		}
		tp, prefix, err := w.edgeTarpit()
		if err != nil {
			return nil, err
		}
		return edge.New(ctx, edge.Options{Config: d.Config, Store: d.Store, Logger: d.Logger, Build: d.Build, APIToken: d.Token,
			Sink: sink, Tarpit: tp, TrapPrefix: prefix,
			TrapLinks: func(w io.Writer, href string) io.WriteCloser { return tarpit.NewInjector(w, href) }})
	})
	reg.Register(RoleAI, w.aiRole)
	reg.Register(RoleEscalation, w.escalationRole)
	reg.Register(tarpit.Name, func() (role.Role, error) { return w.tarpitRole() })
	return reg, w
}

// Build parses a --roles value and builds those roles.
func Build(ctx context.Context, d Deps, spec string) ([]role.Role, error) {
	reg, w := newRegistry(ctx, d)
	names, err := reg.Parse(spec)
	if err != nil {
		return nil, &UsageError{Err: err}
	}
	for _, n := range names {
		w.selected[n] = true
	}
	return reg.Build(names)
}

// UsageError is a bad --roles value.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return "--roles: " + e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// DataDir returns the configured data directory, creating it (0700).
func DataDir(cfg config.Config) (string, error) {
	dir := cfg.DataDir
	if dir == "" {
		dir = config.DefaultDataDir()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("data dir: %w", err)
	}
	return dir, nil
}

// OpenStore opens the embedded store in the data directory.
func OpenStore(ctx context.Context, cfg config.Config) (store.Store, error) {
	dir, err := DataDir(cfg)
	if err != nil {
		return nil, err
	}
	return embedded.Open(ctx, filepath.Join(dir, StoreFile), embedded.Options{QueueCapacity: cfg.AI.QueueCapacity})
}

// APIToken returns the decisions API token: from api.token_file, or
// generated once into <data_dir>/api.token (mode 0600).
func APIToken(cfg config.Config, create bool) (string, error) {
	if cfg.API.TokenFile != "" {
		return config.ReadSecret(cfg.API.TokenFile)
	}
	dir, err := DataDir(cfg)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "api.token")
	if tok, err := config.ReadSecret(path); err == nil || !create || !errors.Is(err, os.ErrNotExist) {
		return tok, err
	}
	buf := make([]byte, 32)
	_, _ = rand.Read(buf)
	tok := hex.EncodeToString(buf)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return config.ReadSecret(path)
		}
		return "", fmt.Errorf("create api token: %w", err)
	}
	defer f.Close()
	if _, err := io.WriteString(f, tok+"\n"); err != nil {
		return "", fmt.Errorf("write api token: %w", err)
	}
	return tok, nil
}

// PrintEndpoints tells the operator where everything listens.
func PrintEndpoints(w io.Writer, eps []role.Endpoint, dataDir string, demo bool) {
	fmt.Fprintln(w, "scrapedefense is running:")
	for _, ep := range eps {
		u := "http://" + displayAddr(ep.Addr)
		note := ""
		switch ep.Role + "/" + ep.Name {
		case "edge/public":
			note = "  ← the protected site: open this in a browser"
		case "edge/admin":
			note = "  (/health, /metrics, /forward-auth, /api/v1)"
		case "edge/demo-upstream":
			note = "  (built-in demo site, the upstream)"
		case "ai-service/api":
			note = "  (POST /webhook, POST /escalate, /health, /metrics)"
		case "escalation/api":
			note = "  (POST /escalate, /health, /metrics)"
		case "tarpit/admin":
			note = "  (/health, /metrics)"
		case "tarpit/public":
			note = "  (the maze, when the tarpit runs apart from the edge)"
		}
		fmt.Fprintf(w, "  %-10s %-14s %s%s\n", ep.Role, ep.Name, u, note)
	}
	fmt.Fprintf(w, "  data dir: %s\n", dataDir)
	if demo {
		fmt.Fprintln(w, "  protecting the built-in demo site; use --upstream URL to protect your own site")
	}
}

// displayAddr turns a wildcard listen address into one a person can click.
func displayAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return host + ":" + port
}
