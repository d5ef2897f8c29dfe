package tarpit

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestTrainCrawlsPolitely(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	mux := http.NewServeMux()
	mux.HandleFunc("/robots.txt", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "User-agent: *\nDisallow: /private/\n")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.URL.Path]++
		mu.Unlock()
		if r.UserAgent() != "test-trainer" {
			t.Errorf("user agent %q", r.UserAgent())
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<html><head><script>var secret = "script words";</script></head><body>
<p>Gardening in small spaces rewards patience. Tomatoes need sun and water every morning.</p>
<a href="/page%d">next</a> <a href="/private/x">hidden</a> <a href="http://elsewhere.example/">away</a></body></html>`, len(seen))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	m, st, err := Train(context.Background(), TrainOptions{Upstream: srv.URL + "/", MaxPages: 5, Delay: time.Millisecond, UserAgent: "test-trainer"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Pages != 5 || m.Words() == 0 {
		t.Errorf("stats %+v, words %d", st, m.Words())
	}
	for p := range seen {
		if strings.HasPrefix(p, "/private/") {
			t.Errorf("crawled disallowed %s", p)
		}
	}
	for id := range uint32(m.Words()) {
		if w := string(m.word(id)); w == "secret" {
			t.Errorf("script text %q in the model", w)
		}
	}
	if _, _, err := Train(context.Background(), TrainOptions{Upstream: "ftp://x"}); err == nil {
		t.Error("non-http upstream accepted")
	}
}
