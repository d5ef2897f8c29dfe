package policy

import (
	"errors"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/scrapedefense/scrapedefense/internal/crawlers"
)

// FuzzLoad: arbitrary YAML never panics, every error is a *FieldError, and
// a policy that loads can be evaluated.
func FuzzLoad(f *testing.F) {
	f.Add(defaultYAML)
	seeds, _ := filepath.Glob(filepath.Join("testdata", "errors", "*.yaml"))
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	opts := LoadOptions{
		ReadFile: func(string) ([]byte, error) {
			return []byte("192.0.2.0/24\n2001:db8::/32\nevil-agent\n# comment\n"), nil
		},
		MaxListEntries: 1000,
	}
	reqs := []*Request{
		chromeRequest(), curlRequest("/feed.xml"), gptbotRequest(),
		{Addr: netip.MustParseAddr("2001:db8::1"), UserAgent: "evil-agent", Header: http.Header{},
			Crawler: crawlers.Identity{Name: "googlebot"}, Robots: pathRobots{}, Path: "/private/x"},
		{},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Load(data, opts)
		if err != nil {
			joined, ok := err.(interface{ Unwrap() []error })
			if !ok {
				t.Fatalf("error %T is not a join: %v", err, err)
			}
			for _, e := range joined.Unwrap() {
				var fe *FieldError
				if !errors.As(e, &fe) {
					t.Fatalf("%T %v is not a *FieldError", e, e)
				}
			}
			return
		}
		if p == nil {
			t.Fatal("nil policy without error")
		}
		var res Result
		for _, r := range reqs {
			p.Evaluate(r, &res)
			if res.NMatched > MaxMatched {
				t.Fatalf("NMatched %d", res.NMatched)
			}
		}
	})
}
