package proxyproto_test

import (
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/proxyproto"
)

func ExampleNewListener() {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	ln := proxyproto.NewListener(inner, proxyproto.Options{
		Trusted:  []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, // the load balancers
		Required: true,
		OnError:  func(err error) { slog.Warn("PROXY header", "err", err) },
	})
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// r.RemoteAddr is the client named in the PROXY header.
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go srv.Serve(ln)
	srv.Close()
}
