package tarpit

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"sync"
)

// corpusFS holds the default training text: prose from the Go
// distribution's documentation (BSD-3-Clause, see corpus/LICENSE).
//
//go:embed corpus/*.txt
var corpusFS embed.FS

// defaultModel is built once, on first use, from the embedded corpus. It is
// immutable after that.
var defaultModel = sync.OnceValues(defaultModelUncached)

func defaultModelUncached() (*Model, error) {
	var text bytes.Buffer
	files, err := fs.Glob(corpusFS, "corpus/*.txt")
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		b, err := corpusFS.ReadFile(f)
		if err != nil {
			return nil, err
		}
		text.Write(b)
		text.WriteByte('\n')
	}
	m, err := Build(&text, BuildOptions{})
	if err != nil {
		return nil, fmt.Errorf("tarpit: default corpus: %w", err)
	}
	return m, nil
}

// DefaultModel returns the model built from the embedded corpus.
func DefaultModel() (*Model, error) { return defaultModel() }
