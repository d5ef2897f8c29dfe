package role

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Service is a role made of one HTTP listener and background loops: the
// shape of every role but the edge. The loops stop when the listener has
// drained, so in-flight requests can still hand them work.
type Service struct {
	RoleName string
	Addr     string
	Handler  http.Handler
	// Loops run until their context ends; Run waits for them.
	Loops  []func(ctx context.Context)
	Drain  time.Duration
	Logger *slog.Logger
}

// Name implements Role.
func (s *Service) Name() string { return s.RoleName }

// Run implements Role.
func (s *Service) Run(ctx context.Context, ready func(...Endpoint)) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("%s listen: %w", s.RoleName, err)
	}
	loopCtx, stopLoops := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	for _, loop := range s.Loops {
		wg.Add(1)
		go func() { defer wg.Done(); loop(loopCtx) }()
	}
	ready(Endpoint{Role: s.RoleName, Name: "api", Addr: ln.Addr().String()})
	srv := &Server{
		Listener: ln,
		Drain:    s.Drain,
		Logger:   s.Logger,
		Server: &http.Server{
			Handler:           s.Handler,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    32 << 10,
		},
	}
	if s.Logger != nil {
		srv.Server.ErrorLog = slog.NewLogLogger(s.Logger.Handler(), slog.LevelDebug)
	}
	err = srv.Serve(ctx)
	stopLoops()
	wg.Wait()
	return err
}
