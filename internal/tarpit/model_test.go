package tarpit

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sampleText = `The quick brown fox jumps over the lazy dog. The lazy dog sleeps.
A quick brown cat jumps over the fence. The fox runs away. Dogs bark at night.`

func buildSample(t testing.TB) *Model {
	t.Helper()
	m, err := Build(strings.NewReader(sampleText), BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestBuildAndRoundTrip(t *testing.T) {
	m := buildSample(t)
	if m.Words() == 0 || m.States() == 0 || m.Transitions() < m.States() {
		t.Fatalf("words %d states %d transitions %d", m.Words(), m.States(), m.Transitions())
	}
	var buf bytes.Buffer
	n, err := m.WriteTo(&buf)
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("WriteTo = %d, %v (buffer %d)", n, err, buf.Len())
	}
	m2, err := LoadModel(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	if _, err := m2.WriteTo(&again); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("model changed across a write/load round trip")
	}
}

func TestBuildBounds(t *testing.T) {
	if _, err := Build(strings.NewReader("too short"), BuildOptions{}); !errors.Is(err, ErrTooLittleText) {
		t.Errorf("Build(2 words) = %v, want ErrTooLittleText", err)
	}
	m, err := Build(strings.NewReader(sampleText), BuildOptions{MaxWords: 5})
	if err != nil {
		t.Fatal(err)
	}
	if m.Words() != 5 {
		t.Errorf("MaxWords 5 gave %d words", m.Words())
	}
	long := strings.Repeat("x", MaxWordLen+1) + " a b c \x01bad d"
	m, err = Build(strings.NewReader(long), BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Words() != 4 {
		t.Errorf("over-long and control-character tokens kept: %d words", m.Words())
	}
}

func TestLoadModelRejectsCorruption(t *testing.T) {
	var buf bytes.Buffer
	if _, err := buildSample(t).WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	cases := map[string][]byte{
		"empty":     nil,
		"magic":     append([]byte("XXXX"), good[4:]...),
		"truncated": good[:len(good)-10],
		"bitflip":   flip(good, len(good)/2),
		"version":   flip(good, 4),
		"huge":      append(append([]byte{}, good[:8]...), 0xff, 0xff, 0xff, 0x7f),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := LoadModel(bytes.NewReader(b)); !errors.Is(err, ErrBadModel) {
				t.Errorf("LoadModel = %v, want ErrBadModel", err)
			}
		})
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x40
	return c
}

func TestLoadModelFile(t *testing.T) {
	if _, err := LoadModelFile(filepath.Join(t.TempDir(), "missing.model")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.model")
	if err := os.WriteFile(bad, []byte("SDMK garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadModelFile(bad); !errors.Is(err, ErrBadModel) || !strings.Contains(err.Error(), "bad.model") {
		t.Errorf("corrupt file: %v", err)
	}
	if m, err := LoadModelFile(""); err != nil || m.Words() == 0 {
		t.Errorf("default model: %v", err)
	}
}

func FuzzLoadModel(f *testing.F) {
	var buf bytes.Buffer
	if _, err := buildSample(f).WriteTo(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte("SDMK"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := LoadModel(bytes.NewReader(b))
		if err != nil {
			return
		}
		// A model that loads must generate without panicking.
		g, err := NewGenerator(m, GeneratorOptions{Prefix: "/m/", Seed: []byte("k"), Links: 3, Paragraphs: 2})
		if err != nil {
			t.Fatal(err)
		}
		_ = g.AppendPage(nil, "h", "/m/x.html")
		_ = g.AppendAsset(nil, AssetJSON, "h", "/m/x.json")
	})
}

func FuzzStripHTML(f *testing.F) {
	f.Add([]byte(`<html><head><title>t</title><script>var x="</p>";</script></head><body><p>Hello &amp; <b>world</b></p><!-- c --><a href='x'>link</a></body></html>`))
	f.Add([]byte(`<p unclosed="`))
	f.Add([]byte(`<style>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		out := StripHTML(nil, b)
		if len(out) > 2*len(b)+16 {
			t.Errorf("output %d bytes from %d", len(out), len(b))
		}
		_ = extractLinks(b)
	})
}

func TestStripHTML(t *testing.T) {
	in := `<html><head><title>T</title><style>p{}</style></head><body><p>Hello &amp; <b>bold</b> world.</p><script>alert("<p>x</p>")</script><p>Second</p></body></html>`
	got := strings.Join(strings.Fields(string(StripHTML(nil, []byte(in)))), " ")
	if got != "Hello & bold world. Second" {
		t.Errorf("StripHTML = %q", got)
	}
}
