// Package role is the framework every service of the binary plugs into: a
// registry of named roles, a runner that starts a set of them together and
// stops them all when one fails, and an HTTP server helper with graceful,
// draining shutdown.
package role

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Endpoint is one listener of a role, printed at start so that operators
// know where everything listens.
type Endpoint struct {
	Role string // "edge"
	Name string // "public", "admin"
	Addr string // the bound address
}

// Role is one service of the binary.
type Role interface {
	Name() string
	// Run serves until ctx ends, then drains in-flight work and returns.
	// It calls ready once with its bound endpoints, before serving.
	Run(ctx context.Context, ready func(...Endpoint)) error
}

// Factory builds a role; it is called only for the roles being started.
type Factory func() (Role, error)

// Registry maps role names to factories, in registration order.
type Registry struct {
	names     []string
	factories map[string]Factory
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{factories: map[string]Factory{}} }

// Register adds a role. Registering a name twice is a programming error.
func (r *Registry) Register(name string, f Factory) {
	if _, dup := r.factories[name]; dup {
		panic("role: duplicate registration of " + name)
	}
	r.names = append(r.names, name)
	r.factories[name] = f
}

// Names lists the registered roles in registration order.
func (r *Registry) Names() []string { return slices.Clone(r.names) }

// Parse turns a --roles value ("all", or a comma-separated list) into role
// names, rejecting unknown ones with the list of known roles.
func (r *Registry) Parse(spec string) ([]string, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" || spec == "all" {
		return r.Names(), nil
	}
	var out, unknown []string
	for _, n := range strings.Split(spec, ",") {
		n = strings.TrimSpace(n)
		if n == "" || slices.Contains(out, n) {
			continue
		}
		if _, ok := r.factories[n]; !ok {
			unknown = append(unknown, n)
			continue
		}
		out = append(out, n)
	}
	if len(unknown) > 0 {
		known := r.Names()
		sort.Strings(known)
		return nil, fmt.Errorf("unknown role(s) %s (available: %s)", strings.Join(unknown, ", "), strings.Join(known, ", "))
	}
	if len(out) == 0 {
		return nil, errors.New("no role selected")
	}
	return out, nil
}

// Build creates the named roles.
func (r *Registry) Build(names []string) ([]Role, error) {
	roles := make([]Role, 0, len(names))
	for _, n := range names {
		f, ok := r.factories[n]
		if !ok {
			return nil, fmt.Errorf("unknown role %q", n)
		}
		role, err := f()
		if err != nil {
			return nil, fmt.Errorf("role %s: %w", n, err)
		}
		roles = append(roles, role)
	}
	return roles, nil
}

// RunAll runs the roles until ctx ends or one of them fails; then it cancels
// the others and waits for all of them to drain. ready is called once with
// every endpoint after all roles are listening.
func RunAll(ctx context.Context, roles []Role, ready func([]Endpoint)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu        sync.Mutex
		endpoints []Endpoint
		pending   sync.WaitGroup
		wg        sync.WaitGroup
		errs      = make([]error, len(roles))
	)
	pending.Add(len(roles))
	for i, r := range roles {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var once sync.Once
			markReady := func(eps ...Endpoint) {
				once.Do(func() {
					mu.Lock()
					endpoints = append(endpoints, eps...)
					mu.Unlock()
					pending.Done()
				})
			}
			err := r.Run(ctx, markReady)
			markReady() // a role that failed before ready must not block the others
			if err != nil && !errors.Is(err, context.Canceled) {
				errs[i] = fmt.Errorf("%s: %w", r.Name(), err)
				cancel()
			}
		}()
	}
	go func() {
		pending.Wait()
		if ctx.Err() == nil && ready != nil {
			mu.Lock()
			eps := slices.Clone(endpoints)
			mu.Unlock()
			ready(eps)
		}
	}()
	wg.Wait()
	return errors.Join(errs...)
}

// Server is an HTTP server on an already bound listener.
type Server struct {
	Server   *http.Server
	Listener net.Listener
	// Drain is how long in-flight requests get to finish at shutdown.
	Drain  time.Duration
	Logger *slog.Logger
}

// Serve serves until ctx ends, then stops accepting, waits up to Drain for
// in-flight requests and closes what is left.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.Server.Serve(s.Listener) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
	}
	drain := s.Drain
	if drain <= 0 {
		drain = 30 * time.Second
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drain)
	defer cancel()
	err := s.Server.Shutdown(sctx)
	if err != nil {
		if s.Logger != nil {
			s.Logger.Warn("drain timed out; closing remaining connections", "addr", s.Listener.Addr().String(), "err", err)
		}
		_ = s.Server.Close()
	}
	<-errc
	return nil
}

// ServeAll serves several servers and returns when all have stopped.
func ServeAll(ctx context.Context, servers ...*Server) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Serve(ctx); err != nil {
				errs[i] = err
				cancel()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
