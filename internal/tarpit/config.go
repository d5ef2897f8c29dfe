package tarpit

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Config is the tarpit role's configuration. DefaultConfig documents every
// default; zero fields passed to New take the default.
type Config struct {
	// Listen is the public (maze) listener. Default 127.0.0.1:8001.
	Listen string
	// AdminListen serves /health and /metrics. Default 127.0.0.1:9081. The
	// maze answers every path, so the admin endpoints need their own port.
	AdminListen string
	// Prefix is the URL prefix of the maze and of trap links, with leading
	// and trailing slashes. Default "/.well-known/sd-archive/"; add it to
	// robots.txt Disallow so that polite crawlers never enter.
	Prefix string
	// Seed keys the per-URL page hash: every instance with the same seed
	// serves the same page for the same URL. Empty: a random seed is
	// created once and kept in the store (key "tarpit/seed").
	Seed []byte
	// LinksPerPage is how many links deeper into the maze a page holds. Default 12.
	LinksPerPage int
	// ParagraphsPerPage is the number of paragraphs per page. Default 8.
	ParagraphsPerPage int
	// DripBytesPerSecond is the send rate of one connection. Default 48.
	DripBytesPerSecond int
	// ChunkSize is the bytes written per step. Default 48 (one write a second).
	ChunkSize int
	// MaxSession is the longest a connection is held. Default 3 min.
	MaxSession time.Duration
	// WriteTimeout bounds one chunk write; a client that stops reading is
	// dropped after it. Default 10 s.
	WriteTimeout time.Duration
	// MaxConns caps concurrent drip connections. Default 10 000.
	MaxConns int
	// MaxConnsPerSubnet caps concurrent drip connections per /24 (IPv4) or
	// /64 (IPv6). Default 64.
	MaxConnsPerSubnet int
	// MaxBytesPerSecond caps the bytes/s sent across all drip connections.
	// Default 1 MiB/s.
	MaxBytesPerSecond int
	// MaxGenerations caps concurrent page generations (CPU). Default 4.
	MaxGenerations int
	// HopLimit is the number of maze requests per IP within HopWindow
	// after which a block decision is written. Default 10.
	HopLimit int
	// HopWindow is the counting window for HopLimit. Default 1 h.
	HopWindow time.Duration
	// BlockTTL is the lifetime of the block decision. Default 24 h.
	BlockTTL time.Duration
	// GzipBomb enables the compressed-response trap (see docs/tarpit.md).
	// Default off.
	GzipBomb bool
	// GzipBombSize is the inflated size of the gzip trap. Default 1 GiB.
	GzipBombSize int64
	// ModelFile is a model written by "tarpit train"; empty uses the
	// built-in model.
	ModelFile string
	// TemplateFile is an html/template layout with {{.Title}} and
	// {{.Content}}; empty uses the built-in page.
	TemplateFile string
	// ShutdownTimeout bounds draining of the listeners. Default 5 s.
	ShutdownTimeout time.Duration
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Listen:             "127.0.0.1:8001",
		AdminListen:        "127.0.0.1:9081",
		Prefix:             "/.well-known/sd-archive/",
		LinksPerPage:       12,
		ParagraphsPerPage:  8,
		DripBytesPerSecond: 48,
		ChunkSize:          48,
		MaxSession:         3 * time.Minute,
		WriteTimeout:       10 * time.Second,
		MaxConns:           10_000,
		MaxConnsPerSubnet:  64,
		MaxBytesPerSecond:  1 << 20,
		MaxGenerations:     4,
		HopLimit:           10,
		HopWindow:          time.Hour,
		BlockTTL:           24 * time.Hour,
		GzipBombSize:       1 << 30,
		ShutdownTimeout:    5 * time.Second,
	}
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	setS := func(v *string, def string) {
		if *v == "" {
			*v = def
		}
	}
	setI := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setD := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	setS(&c.Listen, d.Listen)
	setS(&c.AdminListen, d.AdminListen)
	setS(&c.Prefix, d.Prefix)
	setI(&c.LinksPerPage, d.LinksPerPage)
	setI(&c.ParagraphsPerPage, d.ParagraphsPerPage)
	setI(&c.DripBytesPerSecond, d.DripBytesPerSecond)
	setI(&c.ChunkSize, d.ChunkSize)
	setD(&c.MaxSession, d.MaxSession)
	setD(&c.WriteTimeout, d.WriteTimeout)
	setI(&c.MaxConns, d.MaxConns)
	setI(&c.MaxConnsPerSubnet, d.MaxConnsPerSubnet)
	setI(&c.MaxBytesPerSecond, d.MaxBytesPerSecond)
	setI(&c.MaxGenerations, d.MaxGenerations)
	setI(&c.HopLimit, d.HopLimit)
	setD(&c.HopWindow, d.HopWindow)
	setD(&c.BlockTTL, d.BlockTTL)
	setD(&c.ShutdownTimeout, d.ShutdownTimeout)
	if c.GzipBombSize == 0 {
		c.GzipBombSize = d.GzipBombSize
	}
	return c
}

// Validate reports every invalid field at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if !strings.HasPrefix(c.Prefix, "/") || !strings.HasSuffix(c.Prefix, "/") || len(c.Prefix) < 3 {
		bad("prefix %q must start and end with / and not be the site root", c.Prefix)
	}
	if _, err := DecodePath("/", c.Prefix); err != nil {
		bad("prefix %q: %w", c.Prefix, err)
	}
	positive := map[string]int{
		"links_per_page": c.LinksPerPage, "paragraphs_per_page": c.ParagraphsPerPage,
		"drip_bytes_per_second": c.DripBytesPerSecond, "chunk_size": c.ChunkSize,
		"max_conns": c.MaxConns, "max_conns_per_subnet": c.MaxConnsPerSubnet,
		"max_bytes_per_second": c.MaxBytesPerSecond, "max_generations": c.MaxGenerations,
		"hop_limit": c.HopLimit,
	}
	for _, k := range []string{"links_per_page", "paragraphs_per_page", "drip_bytes_per_second", "chunk_size", "max_conns", "max_conns_per_subnet", "max_bytes_per_second", "max_generations", "hop_limit"} {
		if positive[k] < 0 {
			bad("%s must not be negative (got %d)", k, positive[k])
		}
	}
	if c.LinksPerPage > 200 || c.ParagraphsPerPage > 2000 {
		bad("links_per_page (max 200) or paragraphs_per_page (max 2000) too large")
	}
	for k, v := range map[string]time.Duration{"max_session": c.MaxSession, "write_timeout": c.WriteTimeout, "hop_window": c.HopWindow, "block_ttl": c.BlockTTL} {
		if v < 0 {
			bad("%s must not be negative (got %v)", k, v)
		}
	}
	if c.GzipBombSize < 0 || c.GzipBombSize > 16<<30 {
		bad("gzip_bomb_size must be between 0 and 16 GiB")
	}
	return errors.Join(errs...)
}
