package edge

import (
	"io"
	"net/http"
	"strings"
	"sync"
)

// trapLinker wraps the proxy's response writer so that a hidden link to the
// maze is injected into HTML pages. Only uncompressed 200 responses to GET
// are touched: re-compressing a page would cost more than the trap is worth.
type trapLinker struct {
	http.ResponseWriter
	inject func(w io.Writer, href string) io.WriteCloser
	href   string
	method string
	inj    io.WriteCloser // nil until WriteHeader chose to inject
}

var trapLinkerPool = sync.Pool{New: func() any { return new(trapLinker) }}

func (t *trapLinker) WriteHeader(code int) {
	h := t.ResponseWriter.Header()
	if code == http.StatusOK && t.method == http.MethodGet && t.inj == nil &&
		strings.HasPrefix(h.Get("Content-Type"), "text/html") &&
		(h.Get("Content-Encoding") == "" || strings.EqualFold(h.Get("Content-Encoding"), "identity")) {
		h.Del("Content-Length") // the page grows by the link
		t.inj = t.inject(t.ResponseWriter, t.href)
	}
	t.ResponseWriter.WriteHeader(code)
}

func (t *trapLinker) Write(p []byte) (int, error) {
	if t.inj != nil {
		return t.inj.Write(p)
	}
	return t.ResponseWriter.Write(p)
}

// Flush is a no-op while an injection is pending: the injector holds back
// bytes until it has seen the <body> tag.
func (t *trapLinker) Flush() {
	if f, ok := t.ResponseWriter.(http.Flusher); ok && t.inj == nil {
		f.Flush()
	}
}

func (t *trapLinker) Unwrap() http.ResponseWriter { return t.ResponseWriter }

// finish writes what the injector still holds.
func (t *trapLinker) finish() {
	if t.inj != nil {
		_ = t.inj.Close()
	}
	*t = trapLinker{}
}

// proxyWithTrapLink serves r through the proxy, injecting the trap link.
func (h *Handler) proxyWithTrapLink(w http.ResponseWriter, r *http.Request) {
	t := trapLinkerPool.Get().(*trapLinker)
	*t = trapLinker{ResponseWriter: w, inject: h.trapLinks, href: h.trapHref, method: r.Method}
	h.proxy.ServeHTTP(t, r)
	t.finish()
	trapLinkerPool.Put(t)
}
