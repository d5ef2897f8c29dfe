package tarpit

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestInjector(t *testing.T) {
	a := TrapAnchor("/.well-known/sd-archive/")
	cases := []struct {
		name, in, want string
	}{
		{"plain", "<html><body><p>x</p></body></html>", "<html><body>" + a + "<p>x</p></body></html>"},
		{"upper", "<HTML><BODY>x", "<HTML><BODY>" + a + "x"},
		{"attributes", `<body class="a>b" onload='x>y'>z`, `<body class="a>b" onload='x>y'>` + a + "z"},
		{"not body", "<bodyguard>x<body>y", "<bodyguard>x<body>" + a + "y"},
		{"no body", "<p>fragment</p>", "<p>fragment</p>"},
		{"partial at end", "text <bod", "text <bod"},
		{"empty", "", ""},
	}
	for _, c := range cases {
		// Every split point, so that "<body" and the tag cross writes.
		for split := 0; split <= len(c.in); split++ {
			var out bytes.Buffer
			in := NewInjector(&out, "/.well-known/sd-archive/")
			if _, err := io.WriteString(in, c.in[:split]); err != nil {
				t.Fatal(err)
			}
			if _, err := io.WriteString(in, c.in[split:]); err != nil {
				t.Fatal(err)
			}
			if err := in.Close(); err != nil {
				t.Fatal(err)
			}
			if out.String() != c.want {
				t.Errorf("%s split %d: got %q, want %q", c.name, split, out.String(), c.want)
				break
			}
		}
	}
}

func TestInjectorByteAtATime(t *testing.T) {
	in := "<!doctype html><html><head></head><Body\n data-x=\"1\">hi</Body></html>"
	var out bytes.Buffer
	w := NewInjector(&out, "/t/?a=1&b=2")
	for i := range len(in) {
		if _, err := w.Write([]byte{in[i]}); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	want := strings.Replace(in, `"1">`, `"1">`+TrapAnchor("/t/?a=1&b=2"), 1)
	if out.String() != want {
		t.Errorf("got %q", out.String())
	}
	if !strings.Contains(out.String(), `href="/t/?a=1&amp;b=2"`) || !strings.Contains(out.String(), `aria-hidden="true" tabindex="-1"`) {
		t.Error("anchor not escaped or not hidden")
	}
}

func TestInjectorScanLimit(t *testing.T) {
	in := strings.Repeat("x", InjectScanLimit+10) + "<body>"
	var out bytes.Buffer
	if err := InjectTrapLink(&out, strings.NewReader(in), "/t/"); err != nil {
		t.Fatal(err)
	}
	if out.String() != in {
		t.Error("injected past the scan limit")
	}
}

func BenchmarkInjector(b *testing.B) {
	page := []byte("<!DOCTYPE html><html><head><title>x</title>" + strings.Repeat("<meta name=\"a\" content=\"b\">", 40) + "</head><body class=\"home\">" + strings.Repeat("<p>Some paragraph text here.</p>", 400) + "</body></html>")
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for b.Loop() {
		in := NewInjector(io.Discard, "/.well-known/sd-archive/")
		for off := 0; off < len(page); off += 4096 {
			in.Write(page[off:min(off+4096, len(page))])
		}
		in.Close()
	}
}

// FuzzInjector checks that injection never loses or reorders input bytes:
// removing the one inserted anchor gives the input back.
func FuzzInjector(f *testing.F) {
	f.Add([]byte("<html><body>x</body></html>"), uint8(5))
	f.Fuzz(func(t *testing.T, doc []byte, split uint8) {
		var out bytes.Buffer
		in := NewInjector(&out, "/t/")
		s := min(int(split), len(doc))
		in.Write(doc[:s])
		in.Write(doc[s:])
		if err := in.Close(); err != nil {
			t.Fatal(err)
		}
		got := bytes.Replace(out.Bytes(), []byte(TrapAnchor("/t/")), nil, 1)
		if !bytes.Equal(got, doc) && !bytes.Contains(doc, []byte(TrapAnchor("/t/"))) {
			t.Errorf("input changed: %q -> %q", doc, out.Bytes())
		}
	})
}
