package tarpit

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var updateCorpus = flag.Bool("update-corpus", false, "regenerate corpus/*.txt from the Go distribution's doc directory")

// TestUpdateCorpus regenerates the embedded corpus:
//
//	go test ./internal/tarpit -run TestUpdateCorpus -update-corpus
func TestUpdateCorpus(t *testing.T) {
	if !*updateCorpus {
		t.Skip("run with -update-corpus to regenerate corpus/")
	}
	goroot := os.Getenv("GOROOT")
	if goroot == "" {
		goroot = "/usr/local/go"
	}
	for _, name := range []string{"go_spec.html", "go_mem.html", "asm.html", "godebug.md"} {
		src, err := os.ReadFile(filepath.Join(goroot, "doc", name))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(name, ".md") {
			src = []byte(markdownToHTMLish(string(src)))
		}
		text := normalizeProse(StripHTML(nil, src))
		out := filepath.Join("corpus", strings.TrimSuffix(name, filepath.Ext(name))+".txt")
		if err := os.WriteFile(out, text, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d bytes", out, len(text))
	}
}

// markdownToHTMLish drops fenced code and turns blank-line separated
// paragraphs into <p> blocks, enough for StripHTML to find the prose.
func markdownToHTMLish(md string) string {
	var out strings.Builder
	inCode := false
	for line := range strings.SplitSeq(md, "\n") {
		trim := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trim, "```"):
			inCode = !inCode
		case inCode || strings.HasPrefix(line, "    ") || strings.HasPrefix(line, "\t"):
		case trim == "" || strings.HasPrefix(trim, "#"):
			out.WriteString("<p>")
		default:
			out.WriteString(strings.NewReplacer("`", "", "*", "", "[", "", "]", "").Replace(line))
			out.WriteString("\n")
		}
	}
	return out.String()
}

// normalizeProse keeps paragraphs that read like prose (at least four
// words), one per line.
func normalizeProse(b []byte) []byte {
	var out strings.Builder
	for para := range strings.SplitSeq(string(b), "\n\n") {
		f := strings.Fields(para)
		if len(f) < 4 {
			continue
		}
		out.WriteString(strings.Join(f, " "))
		out.WriteString("\n")
	}
	return []byte(out.String())
}

func TestDefaultModelFast(t *testing.T) {
	start := time.Now()
	m, err := defaultModelUncached()
	if err != nil {
		t.Fatal(err)
	}
	d := time.Since(start)
	t.Logf("default model: %d words, %d states, %d transitions, built in %v", m.Words(), m.States(), m.Transitions(), d)
	if d > 2*time.Second { // the target is < 200 ms; leave room for -race and shared CPUs
		t.Errorf("building the default model took %v", d)
	}
	var size int
	files, _ := corpusFS.ReadDir("corpus")
	for _, f := range files {
		info, _ := f.Info()
		size += int(info.Size())
	}
	if size < 200<<10 {
		t.Errorf("corpus is %d bytes, want at least 200 KiB", size)
	}
}
