package tarpit

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func testGenerator(t testing.TB, seed string, layout *Layout) *Generator {
	t.Helper()
	m, err := DefaultModel()
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGenerator(m, GeneratorOptions{Prefix: "/.well-known/sd-archive/", Seed: []byte(seed), Links: 12, Paragraphs: 8, Layout: layout})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestPageDeterministic(t *testing.T) {
	g1, g2, g3 := testGenerator(t, "seed-a", nil), testGenerator(t, "seed-a", nil), testGenerator(t, "seed-b", nil)
	p := "/.well-known/sd-archive/memory-model/go-channel-send.html"
	a := g1.AppendPage(nil, "Example.com", p)
	if b := g2.AppendPage(nil, "example.com", p); !bytes.Equal(a, b) {
		t.Error("same seed and URL gave different pages")
	}
	if b := g1.AppendPage(nil, "example.com", p+"x"); bytes.Equal(a, b) {
		t.Error("different URLs gave the same page")
	}
	if b := g3.AppendPage(nil, "example.com", p); bytes.Equal(a, b) {
		t.Error("different seeds gave the same page")
	}
	s := string(a)
	for _, want := range []string{"<!DOCTYPE html>", "<title>", "<h1>", "<p>", "<nav>", `href="/.well-known/sd-archive/memory-model/`, ".csv\"", ".js\"", "</html>\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if n := strings.Count(s, `<a href="/.well-known/sd-archive/`); n < 12 {
		t.Errorf("page has %d maze links, want >= 12", n)
	}
	if strings.Count(s, "<title>") != 1 || strings.Count(s, "</body>") != 1 {
		t.Error("page structure broken")
	}
}

func TestAssetsDeterministic(t *testing.T) {
	g := testGenerator(t, "seed", nil)
	for _, k := range []AssetKind{AssetJS, AssetJSON, AssetCSV} {
		a := g.AppendAsset(nil, k, "h", "/.well-known/sd-archive/x/data.bin")
		b := g.AppendAsset(nil, k, "h", "/.well-known/sd-archive/x/data.bin")
		if !bytes.Equal(a, b) || len(a) < 200 {
			t.Errorf("kind %d: not deterministic or too short (%d bytes)", k, len(a))
		}
	}
}

func TestLayout(t *testing.T) {
	l, err := ParseLayout(`<!DOCTYPE html><html><head><title>{{.Title}} | My Site</title></head><body class="x">{{.Content}}</body></html>`)
	if err != nil {
		t.Fatal(err)
	}
	page := string(testGenerator(t, "s", l).AppendPage(nil, "h", "/a"))
	if !strings.HasPrefix(page, "<!DOCTYPE html><html><head><title>") || !strings.Contains(page, " | My Site</title>") || !strings.HasSuffix(page, "</body></html>") || !strings.Contains(page, "<nav>") {
		t.Errorf("layout not applied: %.300s", page)
	}
	if _, err := ParseLayout(`<p>no content</p>`); err == nil {
		t.Error("layout without {{.Content}} accepted")
	}
	if _, err := ParseLayout(`{{.Nope`); err == nil {
		t.Error("bad template accepted")
	}
}

func TestDecodePath(t *testing.T) {
	const prefix = "/m/"
	long := "/" + strings.Repeat("a", MaxPathLen)
	deep := strings.Repeat("/a", MaxPathDepth+1)
	cases := []struct {
		in     string
		want   string
		kind   AssetKind
		inMaze bool
		err    error
	}{
		{in: "", want: "/"},
		{in: "/m/", want: "/m/"},
		{in: "/m/a/b.html", want: "/m/a/b.html", inMaze: true},
		{in: "//m///a.js", want: "/m/a.js", kind: AssetJS, inMaze: true},
		{in: "/m/d.json", want: "/m/d.json", kind: AssetJSON, inMaze: true},
		{in: "/m/d.csv", want: "/m/d.csv", kind: AssetCSV, inMaze: true},
		{in: "/m/../etc/passwd", err: ErrPathTraversal},
		{in: "/m/./x", err: ErrPathTraversal},
		{in: "/m/a\\..\\b", err: ErrPathInvalid},
		{in: "/m/\x00", err: ErrPathInvalid},
		{in: "/m/\xff\xfe", err: ErrPathInvalid},
		{in: "relative", err: ErrPathInvalid},
		{in: long, err: ErrPathTooLong},
		{in: deep, err: ErrPathTooDeep},
	}
	for _, c := range cases {
		got, err := DecodePath(prefix, c.in)
		if !errors.Is(err, c.err) {
			t.Errorf("DecodePath(%.40q) error = %v, want %v", c.in, err, c.err)
			continue
		}
		if err == nil && (got.Path != c.want || got.Kind != c.kind || got.InMaze != c.inMaze) {
			t.Errorf("DecodePath(%q) = %+v, want %q kind %d inMaze %v", c.in, got, c.want, c.kind, c.inMaze)
		}
	}
}

func FuzzDecodePath(f *testing.F) {
	for _, s := range []string{"/", "/m/a/b.html", "//x//../y", "/m/\x00", "/m/a.json", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		mp, err := DecodePath("/m/", p)
		if err != nil {
			return
		}
		if !strings.HasPrefix(mp.Path, "/") || strings.Contains(mp.Path, "//") || strings.Contains(mp.Path, "/../") || strings.HasSuffix(mp.Path, "/..") || len(mp.Path) > MaxPathLen {
			t.Errorf("DecodePath(%q) = %q", p, mp.Path)
		}
		again, err := DecodePath("/m/", mp.Path)
		if err != nil || again != mp {
			t.Errorf("not idempotent: %q -> %+v -> %+v, %v", p, mp, again, err)
		}
	})
}

func BenchmarkGenerate(b *testing.B) {
	g := testGenerator(b, "bench", nil)
	buf := g.AppendPage(nil, "example.com", "/.well-known/sd-archive/a/b.html")
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	paths := []string{"/.well-known/sd-archive/a/b.html", "/.well-known/sd-archive/c/d.html", "/blog/post", "/.well-known/sd-archive/x/y/z.html"}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		buf = g.AppendPage(buf[:0], "example.com", paths[i%len(paths)])
	}
}

func BenchmarkGenerateAsset(b *testing.B) {
	g := testGenerator(b, "bench", nil)
	buf := g.AppendAsset(nil, AssetJSON, "example.com", "/.well-known/sd-archive/a/b.json")
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = g.AppendAsset(buf[:0], AssetJSON, "example.com", "/.well-known/sd-archive/a/b.json")
	}
}
