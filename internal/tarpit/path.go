package tarpit

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// Limits on maze paths. Generated links never come near them; anything
// beyond is a client making paths up.
const (
	MaxPathLen   = 1024
	MaxPathDepth = 32
)

// Path errors, wrapped by DecodePath.
var (
	ErrPathTooLong   = errors.New("tarpit: path too long")
	ErrPathTooDeep   = errors.New("tarpit: path too deep")
	ErrPathInvalid   = errors.New("tarpit: path is not valid UTF-8 text")
	ErrPathTraversal = errors.New("tarpit: path has . or .. segments")
)

// MazePath is a validated, normalised request path.
type MazePath struct {
	// Path is the normalised path: absolute, no empty, "." or ".." segments.
	Path string
	// Kind says whether the path names a decoy asset or a page.
	Kind AssetKind
	// InMaze is true for paths below the maze prefix (links the maze made).
	InMaze bool
}

// DecodePath validates and normalises the (already percent-decoded) path
// of a request for the maze under prefix.
func DecodePath(prefix, p string) (MazePath, error) {
	if p == "" {
		p = "/"
	}
	if len(p) > MaxPathLen {
		return MazePath{}, ErrPathTooLong
	}
	if !utf8.ValidString(p) {
		return MazePath{}, ErrPathInvalid
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return MazePath{}, ErrPathInvalid
		}
	}
	if p[0] != '/' {
		return MazePath{}, ErrPathInvalid
	}
	if strings.Contains(p, "//") {
		var b strings.Builder
		b.Grow(len(p))
		for i := 0; i < len(p); i++ {
			if p[i] == '/' && i > 0 && p[i-1] == '/' {
				continue
			}
			b.WriteByte(p[i])
		}
		p = b.String()
	}
	depth := 0
	for seg := range strings.SplitSeq(p[1:], "/") {
		if seg == "." || seg == ".." {
			return MazePath{}, ErrPathTraversal
		}
		if depth++; depth > MaxPathDepth {
			return MazePath{}, ErrPathTooDeep
		}
	}
	mp := MazePath{Path: p, InMaze: strings.HasPrefix(p, prefix) && len(p) > len(prefix)}
	last := p[strings.LastIndexByte(p, '/')+1:]
	switch {
	case strings.HasSuffix(last, ".js"):
		mp.Kind = AssetJS
	case strings.HasSuffix(last, ".json"):
		mp.Kind = AssetJSON
	case strings.HasSuffix(last, ".csv"):
		mp.Kind = AssetCSV
	}
	return mp, nil
}
