package edge

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"
)

// TransportOptions tunes the upstream connection pool.
type TransportOptions struct {
	MaxIdleConnsPerHost int
	MaxConnsPerHost     int
	DialTimeout         time.Duration
	ResponseTimeout     time.Duration
}

// newTransport returns a keep-alive pool sized for proxy load: the stock
// transport keeps only two idle connections per host, which makes a busy
// proxy open and close connections all the time.
func newTransport(o TransportOptions) *http.Transport {
	dialer := &net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 nil, // never send site traffic through an environment proxy
		DialContext:           dialer.DialContext,
		MaxIdleConns:          o.MaxIdleConnsPerHost,
		MaxIdleConnsPerHost:   o.MaxIdleConnsPerHost,
		MaxConnsPerHost:       o.MaxConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: o.ResponseTimeout,
		ExpectContinueTimeout: time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ForceAttemptHTTP2:     true,
		WriteBufferSize:       32 << 10,
		ReadBufferSize:        32 << 10,
	}
}

// bufferPool recycles the copy buffers of the reverse proxy.
type bufferPool struct{ pool sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{pool: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
}

func (p *bufferPool) Get() []byte  { return *(p.pool.Get().(*[]byte)) }
func (p *bufferPool) Put(b []byte) { p.pool.Put(&b) }

// clientKey carries the resolved client address to the proxy's Rewrite.
type clientKey struct{}

type clientInfo struct {
	addr        string
	peer        string
	peerTrusted bool
}

// newReverseProxy builds the proxy to upstream. X-Forwarded-For carries the
// chain as seen from trusted proxies plus the peer; untrusted peers cannot
// inject addresses into it.
func newReverseProxy(upstream *url.URL, transport http.RoundTripper, logger *slog.Logger, onError func(kind string)) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			info, _ := pr.In.Context().Value(clientKey{}).(*clientInfo)
			h := pr.Out.Header
			if info != nil {
				xff := info.peer
				if info.peerTrusted {
					if prior := strings.Join(pr.In.Header.Values("X-Forwarded-For"), ", "); prior != "" {
						xff = prior + ", " + info.peer
					}
				}
				h.Set("X-Forwarded-For", xff)
				h.Set("X-Real-Ip", info.addr)
			}
			h.Set("X-Forwarded-Host", pr.In.Host)
			if pr.In.TLS != nil {
				h.Set("X-Forwarded-Proto", "https")
			} else {
				h.Set("X-Forwarded-Proto", "http")
			}
		},
		Transport:  transport,
		BufferPool: newBufferPool(),
		// 0: responses with a known length are written in one go (flushing
		// after every write costs a syscall each); ReverseProxy still flushes
		// at once for streams (no Content-Length, or text/event-stream).
		FlushInterval: 0,
		ErrorLog:      slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) {
				onError("client_gone")
				return
			}
			onError("upstream")
			logger.Warn("upstream request failed", "path", r.URL.Path, "err", err)
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, "upstream unavailable", http.StatusBadGateway)
		},
	}
}
