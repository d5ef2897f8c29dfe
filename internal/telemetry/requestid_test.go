package telemetry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRequestID(t *testing.T) {
	tests := []struct {
		name, header string
		reuse        bool
	}{
		{"uuid", "3f2b7c1e-8d4a-4f6b-9c2e-1a5d7e9b0c3f", true},
		{"base64", "q83vEjRWeJA+/w==", true},
		{"traceparent-ish", "00-abc.def:1@x", true},
		{"max length", strings.Repeat("a", MaxRequestIDLength), true},
		{"too long", strings.Repeat("a", MaxRequestIDLength+1), false},
		{"empty", "", false},
		{"space", "abc def", false},
		{"newline", "abc\ndef", false},
		{"quote", `abc"def`, false},
		{"non-ascii", "abcé", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.header != "" {
				r.Header[RequestIDHeader] = []string{tt.header}
			}
			id := RequestID(r)
			if got := id == tt.header; got != tt.reuse {
				t.Errorf("RequestID reused=%v (%q), want %v", got, id, tt.reuse)
			}
			if !ValidRequestID(id) {
				t.Errorf("RequestID returned invalid id %q", id)
			}
		})
	}
}

func TestNewRequestIDUnique(t *testing.T) {
	seen := make(map[string]bool)
	for range 10000 {
		id := NewRequestID()
		if len(id) != 32 || !ValidRequestID(id) {
			t.Fatalf("bad id %q", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
	}
}

func TestRequestIDContext(t *testing.T) {
	if got := RequestIDFrom(context.Background()); got != "" {
		t.Errorf("empty context: %q", got)
	}
	if got := RequestIDFrom(WithRequestID(context.Background(), "x1")); got != "x1" {
		t.Errorf("got %q, want x1", got)
	}
}

func FuzzRequestID(f *testing.F) {
	for _, s := range []string{"3f2b7c1e-8d4a-4f6b-9c2e-1a5d7e9b0c3f", "", "a b", "\x00", strings.Repeat("z", 65)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header[RequestIDHeader] = []string{header}
		id := RequestID(r)
		if !ValidRequestID(id) {
			t.Fatalf("RequestID(%q) = %q, not valid", header, id)
		}
		if len(id) > MaxRequestIDLength || strings.ContainsAny(id, " \t\r\n\"\\<>") {
			t.Fatalf("unsafe id %q", id)
		}
	})
}

func BenchmarkRequestIDReuse(b *testing.B) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set(RequestIDHeader, "3f2b7c1e-8d4a-4f6b-9c2e-1a5d7e9b0c3f")
	b.ReportAllocs()
	for b.Loop() {
		_ = RequestID(r)
	}
}

func BenchmarkNewRequestID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = NewRequestID()
	}
}
