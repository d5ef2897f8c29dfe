package upstream

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// parsedRequest is what an upstream sees of a written request.
type parsedRequest struct {
	Method, RequestURI, Host string
	Header                   http.Header
}

func parseWritten(t testing.TB, raw []byte) (parsedRequest, bool) {
	t.Helper()
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return parsedRequest{}, false
	}
	return parsedRequest{req.Method, req.RequestURI, req.Host, req.Header}, true
}

// writeBoth writes req with writeRequest and with req.Write.
func writeBoth(t testing.TB, req *http.Request) (ours, std []byte, oursErr error) {
	t.Helper()
	var a, b bytes.Buffer
	wa := bufio.NewWriter(&a)
	oursErr = writeRequest(wa, req)
	wa.Flush()
	wb := bufio.NewWriter(&b)
	if err := req.Write(wb); err != nil {
		return a.Bytes(), nil, oursErr
	}
	wb.Flush()
	return a.Bytes(), b.Bytes(), oursErr
}

func TestWriteRequestMatchesStdlib(t *testing.T) {
	tests := []struct {
		name   string
		method string
		url    string
		host   string
		header http.Header
		close  bool
	}{
		{name: "plain", method: "GET", url: "http://127.0.0.1:8080/"},
		{name: "empty method and path", url: "http://example.com"},
		{name: "query and escaping", method: "GET", url: "http://example.com/a%20b/c%2Fd?x=1&y=%20#frag"},
		{name: "force query", method: "GET", url: "http://example.com/p?"},
		{name: "options star", method: "OPTIONS", url: "http://example.com", header: http.Header{}},
		{name: "host override", method: "HEAD", url: "http://10.0.0.1:81/x", host: "site.example"},
		{name: "browser headers", method: "GET", url: "http://example.com/page", header: http.Header{
			"User-Agent":      {"Mozilla/5.0 (X11; Linux x86_64)"},
			"Accept":          {"text/html", "application/xhtml+xml"},
			"Accept-Encoding": {"gzip, deflate, br"},
			"Cookie":          {"a=1; b=2"},
			"X-Forwarded-For": {"10.0.0.1, 127.0.0.1"},
			"X-Empty":         {""},
			"X-Spaces":        {"  padded\t"},
			"X-Obs-Text":      {"caf\xc3\xa9"},
		}},
		{name: "empty user agent", method: "GET", url: "http://example.com/", header: http.Header{"User-Agent": {""}}},
		{name: "excluded fields", method: "DELETE", url: "http://example.com/r", header: http.Header{
			"Host": {"evil"}, "Content-Length": {"5"}, "Transfer-Encoding": {"chunked"}, "Trailer": {"X"},
		}},
		{name: "close", method: "GET", url: "http://example.com/", close: true},
		{name: "close already in header", method: "GET", url: "http://example.com/", close: true, header: http.Header{"Connection": {"close"}}},
		{name: "ipv6", method: "GET", url: "http://[::1]:8080/"},
		{name: "zone goes to req.Write", method: "GET", url: "http://[fe80::1%25eth0]:8080/"},
		{name: "idn goes to req.Write", method: "GET", url: "http://bücher.example/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, tc.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = tc.host
			if tc.header != nil {
				req.Header = tc.header
			}
			req.Close = tc.close
			ours, std, err := writeBoth(t, req)
			if err != nil {
				t.Fatal(err)
			}
			a, okA := parseWritten(t, ours)
			b, okB := parseWritten(t, std)
			if !okA || !okB || !reflect.DeepEqual(a, b) {
				t.Errorf("writeRequest:\n%s\nreq.Write:\n%s", ours, std)
			}
		})
	}
}

func TestWriteRequestRejects(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*http.Request)
	}{
		{"newline in value", func(r *http.Request) { r.Header.Set("X-A", "a\r\nInjected: 1") }},
		{"NUL in value", func(r *http.Request) { r.Header.Set("X-A", "a\x00b") }},
		{"bad user agent", func(r *http.Request) { r.Header.Set("User-Agent", "a\nb") }},
		{"space in name", func(r *http.Request) { r.Header["X A"] = []string{"1"} }},
		{"colon in name", func(r *http.Request) { r.Header["X:A"] = []string{"1"} }},
		{"control character in query", func(r *http.Request) { r.URL.RawQuery = "a=\x7f" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, "http://example.com/", nil)
			tc.mutate(req)
			if err := writeRequest(bufio.NewWriter(&bytes.Buffer{}), req); err == nil {
				t.Error("writeRequest accepted it")
			}
		})
	}
}

func TestWriteRequestTraceUsesStdlib(t *testing.T) {
	var fields []string
	trace := &httptrace.ClientTrace{WroteHeaderField: func(k string, _ []string) { fields = append(fields, k) }}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, "http://example.com/", nil)
	if err := writeRequest(bufio.NewWriter(&bytes.Buffer{}), req); err != nil {
		t.Fatal(err)
	}
	if len(fields) == 0 || fields[0] != "Host" {
		t.Errorf("WroteHeaderField saw %q", fields)
	}
}

func BenchmarkWriteRequest(b *testing.B) {
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:18000/some/page?q=1", nil)
	for k, v := range map[string]string{
		"User-Agent":        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		"Accept":            "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
		"Accept-Language":   "en-GB,en;q=0.9",
		"Accept-Encoding":   "gzip, deflate, br",
		"Sec-Fetch-Site":    "same-origin",
		"Sec-Fetch-Mode":    "navigate",
		"X-Forwarded-For":   "10.1.2.3, 127.0.0.1",
		"X-Real-Ip":         "10.1.2.3",
		"X-Forwarded-Host":  "127.0.0.1:18002",
		"X-Forwarded-Proto": "http",
	} {
		req.Header.Set(k, v)
	}
	w := bufio.NewWriterSize(nil, 4096)
	for _, bc := range []struct {
		name  string
		write func(*bufio.Writer, *http.Request) error
	}{
		{"writeRequest", writeRequest},
		{"req.Write", func(w *bufio.Writer, r *http.Request) error { return r.Write(w) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				w.Reset(discard{})
				if err := bc.write(w, req); err != nil {
					b.Fatal(err)
				}
				w.Flush()
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// FuzzWriteRequest checks that whatever writeRequest accepts, an upstream
// parses exactly as it parses req.Write's output.
func FuzzWriteRequest(f *testing.F) {
	f.Add("GET", "/a%20b", "x=1", "example.com:80", "Accept", "text/html", "Mozilla/5.0")
	f.Add("DELETE", "/", "", "[::1]:8080", "X-Empty", "", "")
	f.Add("OPTIONS", "*", "", "h", "Cookie", " a=1 ", "\t")
	f.Add("HEAD", "/é", "q=é", "bücher.example", "X-Obs", "caf\xc3\xa9", "ua")
	f.Fuzz(func(t *testing.T, method, path, query, host, name, value, ua string) {
		switch method {
		case "", "GET", "HEAD", "OPTIONS", "DELETE":
		default:
			method = "GET"
		}
		req := &http.Request{
			Method: method,
			URL:    &url.URL{Scheme: "http", Host: "upstream.test", Path: path, RawQuery: query},
			Host:   host,
			Header: http.Header{"User-Agent": {ua}},
			Proto:  "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		}
		req = req.WithContext(context.Background())
		req.Header[name] = []string{value, strings.ToUpper(value)}
		ours, std, err := writeBoth(t, req)
		if err != nil || std == nil {
			return
		}
		a, okA := parseWritten(t, ours)
		b, okB := parseWritten(t, std)
		if okA != okB || (okA && !reflect.DeepEqual(a, b)) {
			t.Fatalf("writeRequest:\n%q\nreq.Write:\n%q", ours, std)
		}
	})
}
