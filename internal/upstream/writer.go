package upstream

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptrace"
)

// defaultUserAgent is what req.Write sends when the request sets none; the
// same here, so an upstream sees no difference between the transports.
const defaultUserAgent = "Go-http-client/1.1"

var errCTLInURL = errors.New("upstream: control character in request URL")

// writeRequest writes the request line and header of req, which has no
// body, as req.Write does, with http.Transport's validation of header fields
// (an invalid one is an error rather than sent). Unlike req.Write it does
// not sort the header fields, which is most of req.Write's cost. Requests
// outside the common case (non-ASCII or zoned hosts, opaque URLs, a trace
// of written headers) go to req.Write.
func writeRequest(w *bufio.Writer, req *http.Request) error {
	u := req.URL
	host := req.Host
	if host == "" {
		host = u.Host
	}
	if u.Opaque != "" || !plainHost(host) || tracesWrites(req) {
		return req.Write(w)
	}
	path := u.EscapedPath()
	if hasCTL(path) || hasCTL(u.RawQuery) {
		return errCTLInURL
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	w.WriteString(method)
	w.WriteByte(' ')
	if path == "" {
		path = "/"
	}
	w.WriteString(path)
	if u.ForceQuery || u.RawQuery != "" {
		w.WriteByte('?')
		w.WriteString(u.RawQuery)
	}
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(host)
	w.WriteString("\r\n")

	ua := defaultUserAgent
	if v, ok := req.Header["User-Agent"]; ok {
		ua = "" // present but empty: send none (ReverseProxy does this)
		if len(v) != 0 {
			ua = v[0]
		}
	}
	if ua != "" {
		if !validHeaderValue(ua) {
			return fmt.Errorf("upstream: invalid header field value for %q", "User-Agent")
		}
		writeField(w, "User-Agent", ua)
	}
	if req.Close && !headerHasToken(req.Header["Connection"], "close") {
		w.WriteString("Connection: close\r\n")
	}
	for k, vs := range req.Header {
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue // written above, or meaningless without a body
		}
		if !validHeaderName(k) {
			return fmt.Errorf("upstream: invalid header field name %q", k)
		}
		for _, v := range vs {
			if !validHeaderValue(v) {
				return fmt.Errorf("upstream: invalid header field value for %q", k)
			}
			writeField(w, k, v)
		}
	}
	_, err := w.WriteString("\r\n")
	return err // bufio.Writer errors are sticky: this is the first one
}

func writeField(w *bufio.Writer, name, value string) {
	w.WriteString(name)
	w.WriteString(": ")
	w.WriteString(trimOWS(value))
	w.WriteString("\r\n")
}

// tracesWrites reports whether the request's trace wants to see the
// written fields, which only req.Write reports.
func tracesWrites(req *http.Request) bool {
	trace := httptrace.ContextClientTrace(req.Context())
	return trace != nil && (trace.WroteHeaderField != nil || trace.WroteHeaders != nil || trace.WroteRequest != nil)
}

// plainHost reports whether host is an ASCII host[:port] that req.Write
// would send unchanged: no IDN to convert, no IPv6 zone to remove.
func plainHost(host string) bool {
	if host == "" {
		return false
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '-', c == ':', c == '[', c == ']', c == '_':
		default:
			return false
		}
	}
	return true
}

func hasCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// validHeaderName reports whether name is an RFC 9110 token.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '!', c == '#', c == '$', c == '%', c == '&', c == '\'', c == '*',
			c == '+', c == '-', c == '.', c == '^', c == '_', c == '`', c == '|', c == '~':
		default:
			return false
		}
	}
	return true
}

// validHeaderValue reports whether v has no control characters other than
// horizontal tab (RFC 9110 field-value, with obs-text allowed).
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
