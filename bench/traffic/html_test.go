package main

import (
	"os"
	"slices"
	"testing"
)

func TestParsePageDemoSite(t *testing.T) {
	body, err := os.ReadFile("testdata/home.html")
	if err != nil {
		t.Fatal(err)
	}
	p := parsePage(body, "/")
	var paths []string
	for _, l := range p.Links {
		if l.Hidden {
			t.Errorf("home page link %s reported hidden", l.Path)
		}
		paths = append(paths, l.Path)
	}
	for _, want := range []string{"/", "/about", "/archive", "/notes/heron-office-hours", "/feed.xml"} {
		if !slices.Contains(paths, want) {
			t.Errorf("links lack %s: %v", want, paths)
		}
	}
	if slices.ContainsFunc(paths, func(p string) bool { return p == "/archive#tag-birds" }) {
		t.Error("fragment not stripped")
	}
	kinds := map[string]assetKind{}
	for _, a := range p.Assets {
		kinds[a.Path] = a.Kind
	}
	for path, kind := range map[string]assetKind{"/static/site.css": assetStyle, "/static/site.js": assetScript, "/static/img/logo.svg": assetImage, "/favicon.ico": assetImage} {
		if got, ok := kinds[path]; !ok || got != kind {
			t.Errorf("asset %s: got %v, %v; want kind %v", path, got, ok, kind)
		}
	}
	if !slices.Equal(p.Feeds, []string{"/feed.xml", "/atom.xml"}) {
		t.Errorf("feeds: %v", p.Feeds)
	}
	if len(p.Words) == 0 {
		t.Error("no words")
	}
}

func TestParsePageNofollow(t *testing.T) {
	body, err := os.ReadFile("testdata/about.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range parsePage(body, "/about").Links {
		if l.Path == "/private/" {
			if !l.Nofollow || l.Hidden {
				t.Errorf("/private/: %+v, want nofollow, visible", l)
			}
			return
		}
	}
	t.Error("no /private/ link")
}

func TestParsePageHidden(t *testing.T) {
	tests := []struct {
		name, html string
		hidden     bool
	}{
		{"plain", `<a href="/a">a</a>`, false},
		{"aria-hidden", `<a href="/a" aria-hidden="true">a</a>`, true},
		{"hidden attribute", `<a hidden href=/a>a</a>`, true},
		{"display none", `<a style="display: none" href="/a">a</a>`, true},
		{"off screen", `<a style="position:absolute;left:-9999px" href="/a">a</a>`, true},
		{"inside hidden div", `<div style="display:none"><p><a href="/a">a</a></p></div>`, true},
		{"after hidden div", `<div hidden><span>x</span></div><a href="/a">a</a>`, false},
		{"hidden img is void", `<img hidden src="/x.png"><a href="/a">a</a>`, false},
		{"in script", `<script>var s = '<a href="/b">'</script><a href="/a">a</a>`, false},
		{"in comment", `<!-- <a href="/b" hidden> --><a href="/a">a</a>`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			links := parsePage([]byte(tc.html), "/").Links
			if len(links) != 1 || links[0].Path != "/a" {
				t.Fatalf("links: %+v", links)
			}
			if links[0].Hidden != tc.hidden {
				t.Errorf("hidden = %v, want %v", links[0].Hidden, tc.hidden)
			}
		})
	}
}

func TestParsePageResolve(t *testing.T) {
	html := `<a href="other">x</a><a href="https://elsewhere.example/a">x</a><a href="mailto:a@b">x</a>
<a href="#top">x</a><a href="../up?q=1#f">x</a><a href='//elsewhere.example/b'>x</a><a href="/abs">x</a>`
	var got []string
	for _, l := range parsePage([]byte(html), "/notes/page").Links {
		got = append(got, l.Path)
	}
	want := []string{"/notes/other", "/up?q=1", "/abs"}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func FuzzParsePage(f *testing.F) {
	for _, name := range []string{"testdata/home.html", "testdata/about.html"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "/")
	}
	f.Add([]byte(`<div hidden><a href="/x" rel="nofollow noopener">`), "/a/b")
	f.Add([]byte(`<a href='unterminated`), "")
	f.Fuzz(func(t *testing.T, body []byte, base string) {
		p := parsePage(body, base)
		if len(p.Links) > maxLinksPerPage || len(p.Assets) > maxAssetsPerPage || len(p.Words) > maxWordsPerPage {
			t.Fatalf("bounds exceeded: %d links, %d assets, %d words", len(p.Links), len(p.Assets), len(p.Words))
		}
		for _, l := range p.Links {
			if l.Path == "" || l.Path[0] != '/' {
				t.Fatalf("link %q is not a site path", l.Path)
			}
		}
	})
}

func BenchmarkParsePage(b *testing.B) {
	body, err := os.ReadFile("testdata/home.html")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		parsePage(body, "/")
	}
}
