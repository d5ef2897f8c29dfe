package demosite

import (
	"bytes"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzHandler sends arbitrary paths, queries and host headers: the site must
// answer every one with a known status and, for the documents that echo the
// host, still produce well-formed XML and a URL with a harmless authority.
func FuzzHandler(f *testing.F) {
	f.Add("/", "", "demo.test", "", "")
	f.Add("/feed.xml", "", "demo.test", "evil.example", "https")
	f.Add("/search", "q=heron", "127.0.0.1:8080", "", "")
	f.Add("/search", "q=%3Cscript%3E&q=2", "[::1]:80", "", "HTTP")
	f.Add("/sitemap.xml", "", `a"b<c>&`, "x/y@z", "ftp")
	f.Add("/private", "", "", "", "")
	h := Handler()

	f.Fuzz(func(t *testing.T, path, rawQuery, host, fwdHost, fwdProto string) {
		req := &http.Request{
			Method:     http.MethodGet,
			URL:        &url.URL{Path: path, RawQuery: rawQuery},
			Host:       host,
			Header:     http.Header{},
			Proto:      "HTTP/1.1",
			ProtoMajor: 1,
			ProtoMinor: 1,
		}
		if fwdHost != "" {
			req.Header.Set("X-Forwarded-Host", fwdHost)
		}
		if fwdProto != "" {
			req.Header.Set("X-Forwarded-Proto", fwdProto)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		switch rec.Code {
		case http.StatusOK, http.StatusMovedPermanently, http.StatusNotFound:
		default:
			t.Fatalf("GET %q ?%q: status %d", path, rawQuery, rec.Code)
		}
		base := baseURL(req)
		if !validHost(strings.TrimPrefix(strings.TrimPrefix(base, "https://"), "http://")) {
			t.Fatalf("baseURL %q has an unsafe host", base)
		}
		if rec.Code == http.StatusOK && strings.HasSuffix(path, ".xml") {
			dec := xml.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
			for {
				if _, err := dec.Token(); err == io.EOF {
					break
				} else if err != nil {
					t.Fatalf("%s with host %q: bad XML: %v", path, host, err)
				}
			}
		}
	})
}

// FuzzCleanQuery checks that any query is cut to a bounded, valid string and
// that searching it never fails.
func FuzzCleanQuery(f *testing.F) {
	for _, seed := range []string{"", "heron", "  birds river ", "a\xffb", strings.Repeat("é", 80), "a b c d e f g h i j k"} {
		f.Add(seed)
	}
	s := Handler().(*site)
	f.Fuzz(func(t *testing.T, q string) {
		got := cleanQuery(q)
		if len(got) > maxQueryBytes || !utf8.ValidString(got) || got != strings.TrimSpace(got) {
			t.Fatalf("cleanQuery(%q) = %q", q, got)
		}
		if res := s.search(got); len(res) > len(s.articles) {
			t.Fatalf("search(%q) returned %d results", got, len(res))
		}
	})
}
