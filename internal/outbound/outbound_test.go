package outbound

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestCheckAddr(t *testing.T) {
	tests := []struct {
		addr   string
		policy Policy
		ok     bool
	}{
		{"8.8.8.8", Policy{}, true},
		{"2606:4700:4700::1111", Policy{}, true},
		{"127.0.0.1", Policy{}, false},
		{"127.1.2.3", Policy{}, false},
		{"10.1.2.3", Policy{}, false},
		{"172.20.0.1", Policy{}, false},
		{"172.32.0.1", Policy{}, true},
		{"192.168.1.1", Policy{}, false},
		{"169.254.169.254", Policy{}, false},
		{"100.64.0.1", Policy{}, false},
		{"0.0.0.0", Policy{}, false},
		{"224.0.0.1", Policy{}, false},
		{"255.255.255.255", Policy{}, false},
		{"::1", Policy{}, false},
		{"::", Policy{}, false},
		{"::ffff:127.0.0.1", Policy{}, false},
		{"::ffff:169.254.169.254", Policy{}, false},
		{"fd00::1", Policy{}, false},
		{"fe80::1", Policy{}, false},
		{"ff02::1", Policy{}, false},
		{"64:ff9b::a00:1", Policy{}, false},
		{"127.0.0.1", Policy{AllowPrivate: true}, true},
		{"10.0.5.9", Policy{Allow: []netip.Prefix{netip.MustParsePrefix("10.0.5.0/24")}}, true},
		{"10.0.6.9", Policy{Allow: []netip.Prefix{netip.MustParsePrefix("10.0.5.0/24")}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			err := tt.policy.CheckAddr(netip.MustParseAddr(tt.addr))
			if (err == nil) != tt.ok {
				t.Errorf("CheckAddr(%s) = %v, want ok=%v", tt.addr, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrForbiddenAddress) {
				t.Errorf("error %v does not wrap ErrForbiddenAddress", err)
			}
		})
	}
}

func TestCheckURL(t *testing.T) {
	tests := []struct {
		url  string
		want error
	}{
		{"https://hooks.slack.com/services/T000/B000/XXXX", nil},
		{"http://example.com:8080/alert", nil},
		{"https://[2606:4700::1]/x", nil},
		{"ftp://example.com/", ErrBadURL},
		{"file:///etc/passwd", ErrBadURL},
		{"gopher://example.com", ErrBadURL},
		{"https://", ErrBadURL},
		{"https://user:pass@example.com/", ErrBadURL},
		{"http://%zz", ErrBadURL},
		{"http://127.0.0.1:9000/", ErrForbiddenAddress},
		{"http://169.254.169.254/latest/meta-data/", ErrForbiddenAddress},
		{"http://[::1]/", ErrForbiddenAddress},
		{"http://[fd12::1]/", ErrForbiddenAddress},
		{"http://localhost:8000/", ErrForbiddenAddress},
		{"http://api.localhost./", ErrForbiddenAddress},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			err := CheckURL(tt.url)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("CheckURL = %v, want %v", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "pass") {
				t.Errorf("error leaks the URL: %v", err)
			}
		})
	}
	if err := (Policy{AllowPrivate: true}).CheckURL("http://localhost:1/"); err != nil {
		t.Errorf("AllowPrivate CheckURL(localhost) = %v", err)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://hooks.slack.com/services/T0/B0/secret": "https://hooks.slack.com/…",
		"http://h:1/x?key=secret":                       "http://h:1/…",
		"::bad":                                         "[redacted]",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func newServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func TestClientRefusesLoopbackAfterResolution(t *testing.T) {
	var hits atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	c := NewClient(Options{})
	// "localhost" passes no literal check in the client: the dial hook
	// sees the resolved 127.0.0.1 / ::1 and refuses.
	for _, u := range []string{srv.URL, "http://localhost:" + port + "/"} {
		resp, err := c.Get(u)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("GET %s succeeded", u)
		}
		if !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("GET %s: %v, want ErrForbiddenAddress", u, err)
		}
	}
	if hits.Load() != 0 {
		t.Errorf("server was reached %d times", hits.Load())
	}
}

func TestClientAllowed(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.Header.Get("User-Agent"))
	})
	for name, opts := range map[string]Options{
		"AllowPrivate": {Policy: Policy{AllowPrivate: true}},
		"Allow":        {Policy: Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}},
	} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
			b, err := Do(context.Background(), NewClient(opts), req, 0)
			if err != nil || string(b) != DefaultUserAgent {
				t.Errorf("Do = %q, %v", b, err)
			}
		})
	}
}

func TestClientRedirects(t *testing.T) {
	var final atomic.Int32
	target := newServer(t, func(w http.ResponseWriter, r *http.Request) { final.Add(1) })
	tport := target.URL[strings.LastIndex(target.URL, ":")+1:]
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/metadata":
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
		case "/name":
			http.Redirect(w, r, "http://localhost:"+tport+"/", http.StatusFound)
		case "/scheme":
			http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		}
	})
	// Only the first server's exact address is allowed.
	c := NewClient(Options{Policy: Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}})
	for _, path := range []string{"/metadata", "/scheme", "/loop"} {
		resp, err := c.Get(srv.URL + path)
		if err == nil {
			resp.Body.Close()
			t.Errorf("%s: redirect followed", path)
		}
	}
	// localhost may resolve to ::1 first, which is not allowed; either way
	// the target must not be reached through a forbidden address.
	if resp, err := c.Get(srv.URL + "/name"); err == nil {
		resp.Body.Close()
	} else if !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("/name: %v", err)
	}
}

func TestReadBody(t *testing.T) {
	if b, err := ReadBody(strings.NewReader("12345"), 5); err != nil || string(b) != "12345" {
		t.Errorf("at limit: %q, %v", b, err)
	}
	if _, err := ReadBody(strings.NewReader("123456"), 5); !errors.Is(err, ErrBodyTooLarge) {
		t.Errorf("over limit: %v", err)
	}
}

func TestDoStatus(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/secret-path", nil)
	_, err := Do(context.Background(), NewClient(Options{Policy: Policy{AllowPrivate: true}}), req, 0)
	var se *StatusError
	if !errors.As(err, &se) || se.Code != 429 || se.RetryAfter != 7*time.Second || !se.Retryable() {
		t.Fatalf("Do = %#v", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error leaks URL: %v", err)
	}
}

func TestDoRedactsTransportErrors(t *testing.T) {
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:1/services/SECRET", nil)
	_, err := Do(context.Background(), NewClient(Options{}), req, 0)
	if err == nil || strings.Contains(err.Error(), "SECRET") || !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("Do = %v", err)
	}
}

func TestRetry(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name      string
		errs      []error
		attempts  int
		wantCalls int
		wantErr   error
	}{
		{"success first", []error{nil}, 3, 1, nil},
		{"transient then ok", []error{errBoom, &StatusError{Code: 503}, nil}, 5, 3, nil},
		{"gives up", []error{errBoom, errBoom, errBoom, errBoom}, 3, 3, errBoom},
		{"404 is final", []error{&StatusError{Code: 404}, nil}, 5, 1, &StatusError{}},
		{"429 retried", []error{&StatusError{Code: 429}, nil}, 5, 2, nil},
		{"permanent", []error{Permanent(errBoom), nil}, 5, 1, errBoom},
		{"forbidden", []error{fmt.Errorf("dial: %w", ErrForbiddenAddress), nil}, 5, 1, ErrForbiddenAddress},
		{"zero attempts still tries", []error{nil}, 0, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			err := Retry(context.Background(), tt.attempts, time.Millisecond, func(context.Context) error {
				e := tt.errs[calls]
				calls++
				return e
			})
			if calls != tt.wantCalls {
				t.Errorf("calls = %d, want %d", calls, tt.wantCalls)
			}
			var se *StatusError
			switch {
			case tt.wantErr == nil && err != nil:
				t.Errorf("err = %v", err)
			case tt.wantErr != nil && errors.As(tt.wantErr, &se):
				if !errors.As(err, &se) {
					t.Errorf("err = %v, want a StatusError", err)
				}
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestRetryStopsOnContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := Retry(ctx, 100, 20*time.Millisecond, func(context.Context) error { return errors.New("down") })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Retry took %v after the context ended", d)
	}
}

func TestBackoffBounds(t *testing.T) {
	for i := range 40 {
		d := backoff(time.Second, i)
		if d < 500*time.Millisecond || d > maxBackoff*3/2 {
			t.Fatalf("backoff(%d) = %v", i, d)
		}
	}
}

func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{"https://example.com/x", "http://127.0.0.1/", "http://[::ffff:10.0.0.1]/", "http://[fe80::1%25eth0]/", "ftp://x", "http://localhost./"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		err := CheckURL(raw)
		if err != nil && !errors.Is(err, ErrBadURL) && !errors.Is(err, ErrForbiddenAddress) {
			t.Fatalf("unexpected error kind: %v", err)
		}
		_ = RedactURL(raw)
	})
}

func BenchmarkCheckAddr(b *testing.B) {
	p := Policy{}
	a := netip.MustParseAddr("93.184.216.34")
	b.ReportAllocs()
	for b.Loop() {
		if err := p.CheckAddr(a); err != nil {
			b.Fatal(err)
		}
	}
}

func TestPostJSON(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("X-Sig") != "s1" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(srv.Close)
	client := NewClient(Options{Policy: Policy{AllowPrivate: true}})
	ctx := context.Background()
	got, err := PostJSON(ctx, client, srv.URL, []byte(`{}`), 1024, http.Header{"X-Sig": {"s1"}})
	if err != nil || string(got) != `{"ok":true}` {
		t.Fatalf("PostJSON = %q, %v", got, err)
	}
	if _, err := PostJSON(ctx, client, srv.URL, []byte(`{}`), 1024, nil); err == nil {
		t.Error("a 400 answer is not an error")
	}
	if _, err := PostJSON(ctx, client, "http://[::1", nil, 1024, nil); err == nil || Retryable(err) {
		t.Errorf("an unbuildable request = %v, want a permanent error", err)
	}
}
