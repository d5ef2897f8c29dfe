package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in      string
		want    slog.Level
		wantErr bool
	}{
		{"debug", slog.LevelDebug, false},
		{"INFO", slog.LevelInfo, false},
		{" warn ", slog.LevelWarn, false},
		{"Warning", slog.LevelWarn, false},
		{"error", slog.LevelError, false},
		{"info+2", slog.LevelInfo + 2, false},
		{"", 0, true},
		{"verbose", 0, true},
		{"info+", 0, true},
		{strings.Repeat("x", 100), 0, true},
	}
	for _, tt := range tests {
		got, err := ParseLevel(tt.in)
		if (err != nil) != tt.wantErr || (err == nil && got != tt.want) {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func FuzzParseLevel(f *testing.F) {
	for _, s := range []string{"debug", "info", "WARN", "warning", "error-4", "", "info+999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLevel(s)
		if err != nil {
			return
		}
		// Whatever parses must survive slog's own round trip.
		var back slog.Level
		if err := back.UnmarshalText([]byte(l.String())); err != nil || back != l {
			t.Fatalf("ParseLevel(%q) = %v, which does not round-trip: %v, %v", s, l, back, err)
		}
	})
}

func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger(&buf, slog.LevelInfo).With("service", "edge").WithGroup("req")
	log.Debug("hidden")
	ctx := WithRequestID(context.Background(), "abc-123")
	log.InfoContext(ctx, "served", "status", 200)
	log.Info("no id")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2:\n%s", len(lines), buf.String())
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	group, _ := rec["req"].(map[string]any)
	if rec["msg"] != "served" || rec["service"] != "edge" || group["request_id"] != "abc-123" {
		t.Errorf("record %v", rec)
	}
	if strings.Contains(lines[1], "request_id") {
		t.Errorf("record without id has one: %s", lines[1])
	}
}
