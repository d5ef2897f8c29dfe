package upstream

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
)

// newProxy serves a ReverseProxy to target over tr, the way the edge does.
func newProxy(t *testing.T, target string, tr http.RoundTripper) *httptest.Server {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.SetXForwarded()
		},
		Transport: tr,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, "upstream unavailable: "+err.Error(), http.StatusBadGateway)
		},
	}
	s := httptest.NewServer(rp)
	t.Cleanup(s.Close)
	return s
}

func TestReverseProxy(t *testing.T) {
	checkGoroutines(t)
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// What the origin received, for the client to check.
		h.Set("X-Seen-Host", r.Host)
		h.Set("X-Seen-Forwarded-For", r.Header.Get("X-Forwarded-For"))
		h.Set("X-Seen-Hop", r.Header.Get("X-Hop"))
		h.Set("X-Seen-Connection", r.Header.Get("Connection"))
		h.Set("X-Seen-Accept-Encoding", r.Header.Get("Accept-Encoding"))
		switch r.URL.Path {
		case "/trailers":
			h.Set("Trailer", "X-Checksum")
			h.Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, "chunk one|")
			w.(http.Flusher).Flush()
			io.WriteString(w, "chunk two")
			h.Set("X-Checksum", "abc123")
		case "/not-modified":
			w.WriteHeader(http.StatusNotModified)
		case "/cookie":
			http.SetCookie(w, &http.Cookie{Name: "a", Value: "1"})
			http.SetCookie(w, &http.Cookie{Name: "b", Value: "2"})
			io.WriteString(w, "cookies")
		default:
			http.NotFound(w, r)
		}
	})
	tr := newTestTransport(t, Options{}, nil)
	proxy := newProxy(t, o.URL, tr)
	client := proxy.Client()

	do := func(method, path string, hdr http.Header) (*http.Response, string) {
		t.Helper()
		req := newRequest(t, context.Background(), method, proxy.URL+path)
		for k, v := range hdr {
			req.Header[k] = v
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp, string(b)
	}

	resp, body := do(http.MethodGet, "/trailers", http.Header{
		"Connection":      {"X-Hop"},
		"X-Hop":           {"drop me"},
		"Accept-Encoding": {"br"},
	})
	checks := []struct{ what, got, want string }{
		{"status", resp.Status, "201 Created"},
		{"body", body, "chunk one|chunk two"},
		{"trailer", resp.Trailer.Get("X-Checksum"), "abc123"},
		{"content type", resp.Header.Get("Content-Type"), "text/plain"},
		{"host at origin", resp.Header.Get("X-Seen-Host"), strings.TrimPrefix(o.URL, "http://")},
		{"forwarded for", resp.Header.Get("X-Seen-Forwarded-For"), "127.0.0.1"},
		{"hop-by-hop header", resp.Header.Get("X-Seen-Hop"), ""},
		{"connection header", resp.Header.Get("X-Seen-Connection"), ""},
		{"accept-encoding passed through", resp.Header.Get("X-Seen-Accept-Encoding"), "br"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
		}
	}

	if resp, _ := do(http.MethodGet, "/not-modified", nil); resp.StatusCode != http.StatusNotModified {
		t.Errorf("status %d, want 304", resp.StatusCode)
	}
	if resp, body := do(http.MethodHead, "/cookie", nil); resp.StatusCode != 200 || body != "" {
		t.Errorf("HEAD: %d %q", resp.StatusCode, body)
	}
	resp, body = do(http.MethodGet, "/cookie", nil)
	if got := resp.Header.Values("Set-Cookie"); body != "cookies" || len(got) != 2 {
		t.Errorf("cookies: %q, body %q", got, body)
	}
	if resp, _ := do(http.MethodGet, "/missing", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("status %d, want 404", resp.StatusCode)
	}
	if n := o.accepted.Load(); n != 1 {
		t.Errorf("origin accepted %d connections for sequential proxied requests, want 1", n)
	}
	wantStats(t, tr, Stats{Idle: 1, Open: 1, Dials: 1, Reuses: 4})
}

// POST bodies go through the fallback, and an unreachable origin is a 502.
func TestReverseProxyFallbackAndErrors(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.Method+" "+string(b))
	})
	fb := &http.Transport{}
	t.Cleanup(fb.CloseIdleConnections)
	tr := newTestTransport(t, Options{}, fb)
	proxy := newProxy(t, o.URL, tr)

	resp, err := proxy.Client().Post(proxy.URL+"/form", "text/plain", strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "POST payload" {
		t.Errorf("POST through the fallback: %q", b)
	}
	if s := tr.Stats(); s.Fallbacks != 1 || s.Dials != 0 {
		t.Errorf("stats %+v", s)
	}

	o.Close()
	tr.CloseIdleConnections()
	resp, err = proxy.Client().Get(proxy.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("origin down: status %d, want 502", resp.StatusCode)
	}
}
