package challenge

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/scrapedefense/scrapedefense/internal/browsertest"
)

// favicon is a 1×1 ICO-compatible PNG, so that Chromium logs no 404.
var favicon = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")

// siteHandler stands in for the edge: endpoints under Prefix go to the
// service, exempt requests and requests with a pass reach the site, all
// others are challenged. Paths under /low/ weigh little (no-JS check),
// everything else enough for proof of work.
func siteHandler(s *Service) http.Handler {
	site := http.NewServeMux()
	site.HandleFunc("/favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(favicon)
	})
	site.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><html lang=\"en\"><head><title>site</title></head><body><h1 id=\"content\">content of %s</h1></body></html>", r.URL.Path)
	})
	endpoints := s.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, Prefix) {
			endpoints.ServeHTTP(w, r)
			return
		}
		client := clientFrom(r)
		if s.Exempt(r) || s.CheckPass(r, client) {
			site.ServeHTTP(w, r)
			return
		}
		weight := 40
		if strings.HasPrefix(r.URL.Path, "/low/") {
			weight = 0
		}
		s.Serve(w, r, client, weight)
	})
}

// startSite serves siteHandler on a loopback port.
func startSite(t *testing.T, s *Service) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: siteHandler(s), ReadHeaderTimeout: 5 * time.Second}}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestPlainClientKeepsGettingChallenge: an HTTP library, even one with a
// cookie jar, never gets past the challenge (it does not run scripts or
// follow meta refreshes).
func TestPlainClientKeepsGettingChallenge(t *testing.T) {
	s := newTestService(t, Config{}, nil)
	base := startSite(t, s.Service)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 5 * time.Second}
	for _, path := range []string{"/page1", "/page1", "/low/page", "/low/page", "/page2"} {
		res, err := client.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden || strings.Contains(string(body), "content of") {
			t.Fatalf("%s: status %d, reached the site", path, res.StatusCode)
		}
	}
	res, err := client.Get(base + "/robots.txt")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("robots.txt challenged: %d", res.StatusCode)
	}
}

// browser starts headless Chromium for one test and returns a tab context
// with a console listener.
func browser(t *testing.T) (context.Context, *consoleLog) {
	t.Helper()
	// The timeout bounds the whole browser: a hung test fails instead of
	// stalling the package.
	tab := browsertest.Start(t, 30*time.Second)
	console := &consoleLog{}
	if err := chromedp.Listen(tab, console.listen); err != nil {
		t.Fatalf("listen to chromium: %v", err)
	}
	return tab, console
}

// consoleLog collects console errors and uncaught exceptions.
type consoleLog struct {
	mu     sync.Mutex
	errors []string
}

func (c *consoleLog) listen(ev any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch e := ev.(type) {
	case *runtime.EventExceptionThrown:
		c.errors = append(c.errors, "exception: "+e.ExceptionDetails.Text)
	case *runtime.EventConsoleAPICalled:
		if e.Type == runtime.ConsoleAPICalledTypeError {
			c.errors = append(c.errors, "console.error")
		}
	case *cdplog.EventEntryAdded:
		// The challenge page itself answers 403 by design; anything else
		// (CSP violations, 404s, script errors) is a bug.
		if e.Entry.Level == cdplog.EntryLevelError && !(e.Entry.Source == cdplog.EntrySourceNetwork && strings.Contains(e.Entry.Text, "403")) {
			c.errors = append(c.errors, string(e.Entry.Source)+": "+e.Entry.Text+" "+e.Entry.URL)
		}
	}
}

func (c *consoleLog) check(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.errors {
		t.Errorf("browser console: %s", e)
	}
}

// waitForContent polls the DOM (through the DOM domain, so that it works
// with JavaScript disabled) until the site's page for path is shown. The
// challenge is served at the original URL, so the URL alone proves nothing.
func waitForContent(ctx context.Context, path string) error {
	var last string
	var err error
	for {
		last, err = pageText(ctx)
		if err == nil && strings.Contains(last, "content of "+path+"<") {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no content of %s (last %q, %v): %w", path, last, err, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// pageText returns the outer HTML of #content, read through the DOM
// domain so that it works with JavaScript disabled.
func pageText(ctx context.Context) (string, error) {
	doc, err := chromedp.Call(ctx, dom.GetDocument, dom.GetDocumentParams{})
	if err != nil {
		return "", err
	}
	n, err := chromedp.Call(ctx, dom.QuerySelector, dom.QuerySelectorParams{NodeID: doc.Root.NodeID, Selector: "#content"})
	if err != nil {
		return "", err
	}
	if n.NodeID == 0 {
		return "", fmt.Errorf("no #content")
	}
	html, err := chromedp.Call(ctx, dom.GetOuterHTML, dom.GetOuterHTMLParams{NodeID: n.NodeID})
	return html.OuterHTML, err
}

func chromiumService(t *testing.T) *testService {
	t.Helper()
	s := newTestService(t, Config{MinDifficulty: 12, MaxDifficulty: 12, NoJSFallbackWait: time.Second}, nil)
	s.now = time.Now // a browser waits in real time
	return s
}

// TestChromiumProofOfWork: the proof-of-work page solves itself in real
// Chromium, lands on the original page, and the next pages are not
// challenged again.
func TestChromiumProofOfWork(t *testing.T) {
	s := chromiumService(t)
	base := startSite(t, s.Service)
	tab, console := browser(t)

	if err := chromedp.Do(tab, chromedp.Navigate(base+"/page1?x=1")); err != nil {
		t.Fatal(err)
	}
	if err := waitForContent(tab, "/page1"); err != nil {
		t.Fatal(err)
	}
	if got := s.passes(methodPoW); got != 1 {
		t.Fatalf("passed{pow} = %v", got)
	}
	issued := s.events.count(EventIssued, "")

	for _, path := range []string{"/page2", "/page3"} {
		if err := chromedp.Do(tab, chromedp.Navigate(base+path)); err != nil {
			t.Fatal(err)
		}
		if err := waitForContent(tab, path); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.events.count(EventIssued, ""); got != issued {
		t.Errorf("challenged again after passing: %d challenges, want %d", got, issued)
	}
	if got := s.events.count(EventFailed, ""); got != 0 {
		t.Errorf("%d failures: %+v", got, s.events.all)
	}
	checkPassCookie(t, tab, s, base)
	console.check(t)
}

// TestChromiumNoJavaScript: with scripts disabled, the proof-of-work page's
// <noscript> fallback and the plain no-JS check still get a person through.
func TestChromiumNoJavaScript(t *testing.T) {
	s := chromiumService(t)
	base := startSite(t, s.Service)
	tab, console := browser(t)
	if _, err := chromedp.Call(tab, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	if err := chromedp.Do(tab, chromedp.Navigate(base+"/page1")); err != nil {
		t.Fatal(err)
	}
	if err := waitForContent(tab, "/page1"); err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed < time.Second {
		t.Errorf("fallback passed after %v, before its wait", elapsed)
	}
	if got := s.passes(methodFallback); got != 1 {
		t.Errorf("passed{fallback} = %v", got)
	}

	// A fresh browser state on a low-weight page: the plain no-JS check.
	if _, err := chromedp.Call(tab, network.ClearBrowserCookies, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(tab, chromedp.Navigate(base+"/low/page")); err != nil {
		t.Fatal(err)
	}
	if err := waitForContent(tab, "/low/page"); err != nil {
		t.Fatal(err)
	}
	if got := s.passes(methodNoJS); got != 1 {
		t.Errorf("passed{nojs} = %v", got)
	}
	if got := s.events.count(EventFailed, ""); got != 0 {
		t.Errorf("%d failures: %+v", got, s.events.all)
	}
	console.check(t)
}

// checkPassCookie asserts the browser holds an HttpOnly pass for the site,
// bound to its user agent.
func checkPassCookie(t *testing.T, tab context.Context, s *testService, base string) {
	t.Helper()
	res, err := chromedp.Call(tab, network.GetCookies, network.GetCookiesParams{URLs: []string{base + "/"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Cookies {
		if c.Name == s.cfg.CookieName {
			if !c.HTTPOnly || c.SameSite != network.CookieSameSiteLax || c.Path != "/" {
				t.Errorf("pass cookie attributes: %+v", c)
			}
			if _, why := s.verifyPass(c.Value, netip.MustParseAddr("127.0.0.1"), "", time.Now()); why != reasonWrongUA {
				t.Errorf("pass not bound to the user agent: %q", why)
			}
			return
		}
	}
	t.Error("no pass cookie in the browser")
}
