package telemetry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// NewLogger returns a JSON logger writing to w at level and above. Records
// logged with a context that carries a request id (WithRequestID) get a
// "request_id" attribute.
func NewLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(requestIDHandler{slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})})
}

// maxLevelLength bounds the input ParseLevel looks at; real levels are short.
const maxLevelLength = 32

// ParseLevel parses a log level as written in config or on the command line:
// debug, info, warn (or warning), error, case-insensitive, optionally with
// an offset as slog writes them ("info+2", "error-4").
func ParseLevel(s string) (slog.Level, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty log level (want debug, info, warn or error)")
	}
	if len(s) > maxLevelLength {
		return 0, fmt.Errorf("log level too long (%d bytes)", len(s))
	}
	if strings.EqualFold(s, "warning") {
		return slog.LevelWarn, nil
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("invalid log level %q (want debug, info, warn or error): %w", s, err)
	}
	return l, nil
}

// requestIDHandler adds the context's request id to each record.
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestIDFrom(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}
