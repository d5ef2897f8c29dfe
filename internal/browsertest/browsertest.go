// Package browsertest starts a real headless Chromium (Debian's chromium)
// for tests, driven over the DevTools protocol with chromedp.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/chromedp"
)

// ChromiumPath is where Debian's chromium package installs the browser.
const ChromiumPath = "/usr/bin/chromium"

// Start launches headless Chromium for one test and returns a tab whose
// context ends after timeout. Without Chromium the test is skipped, except
// under CI, where the browser must be installed and its absence fails.
func Start(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	if _, err := os.Stat(ChromiumPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("chromium missing at %s", ChromiumPath)
		}
		t.Skipf("chromium missing at %s", ChromiumPath)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(ChromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	tab, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelTab)
	if _, err := chromedp.Call(tab, dom.GetDocument, dom.GetDocumentParams{}); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return tab
}

// WaitForText polls the page's HTML until it contains want. It reads the
// DOM over the protocol, so it works with JavaScript disabled too.
func WaitForText(ctx context.Context, want string) (string, error) {
	var html string
	for {
		var err error
		html, err = pageHTML(ctx)
		if err == nil && strings.Contains(html, want) {
			return html, nil
		}
		select {
		case <-ctx.Done():
			return html, fmt.Errorf("page never showed %q (last %.300q): %w", want, html, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func pageHTML(ctx context.Context) (string, error) {
	doc, err := chromedp.Call(ctx, dom.GetDocument, dom.GetDocumentParams{})
	if err != nil {
		return "", err
	}
	out, err := chromedp.Call(ctx, dom.GetOuterHTML, dom.GetOuterHTMLParams{NodeID: doc.Root.NodeID})
	if err != nil {
		return "", err
	}
	return out.OuterHTML, nil
}
