// Package demosite is the small website that scrapedefense protects out of
// the box, so that `scrapedefense serve` with no upstream configured shows
// the product working: "Lindenbrook Field Notes", a fictional naturalist's
// notebook with articles, an archive, feeds, a sitemap, robots.txt, images,
// a stylesheet and a script.
//
// The site is shaped for the defense's behaviour tests: every HTML page pulls
// its stylesheet, script, favicon and images (a browser fetches them, a
// scraper usually does not), robots.txt disallows /private/ and /search
// (both exist, so a crawler that ignores robots.txt is visible), and a
// strict Content-Security-Policy forbids inline script and style.
//
// Everything is embedded and rendered once when the handler is built. The
// feeds, the sitemap, robots.txt and security.txt carry absolute URLs, made
// from the request's host (or X-Forwarded-Host and X-Forwarded-Proto, as
// set by a reverse proxy such as the edge).
package demosite

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// shutdownGrace is how long Start lets in-flight requests finish once its
// context ends.
const shutdownGrace = 5 * time.Second

// Handler serves the demo site from embedded files. It answers GET and HEAD
// only, and is safe for concurrent use.
func Handler() http.Handler {
	s, err := newSite(time.Now())
	if err != nil {
		// The content is compiled in and covered by the tests, so this is a
		// build defect, not a run-time condition.
		panic("demosite: embedded site is broken: " + err.Error())
	}
	return s
}

// Start listens on addr (for example "127.0.0.1:0"), serves Handler until ctx
// ends, and returns the base URL ("http://127.0.0.1:PORT"). wait blocks until
// the server has stopped, which happens only after ctx ends or the listener
// fails, and returns the first error other than a clean shutdown; it may be
// called more than once.
func Start(ctx context.Context, addr string) (url string, wait func() error, err error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("demosite: listen on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	stopped := make(chan error, 1)
	go func() {
		var err error
		select {
		case err = <-served:
			err = fmt.Errorf("demosite: serve: %w", err)
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
			if err = srv.Shutdown(sctx); err != nil {
				_ = srv.Close() // grace period over: drop the stragglers
				err = fmt.Errorf("demosite: shutdown: %w", err)
			}
			cancel()
			if serr := <-served; err == nil && !errors.Is(serr, http.ErrServerClosed) {
				err = fmt.Errorf("demosite: serve: %w", serr)
			}
		}
		stopped <- err
	}()

	var once sync.Once
	var result error
	wait = func() error {
		once.Do(func() { result = <-stopped })
		return result
	}
	return "http://" + ln.Addr().String(), wait, nil
}
