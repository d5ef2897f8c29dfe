package store

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDecisionKey(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      bool
	}{
		{"192.0.2.1", "192.0.2.1/32", false},
		{"192.0.2.1/32", "192.0.2.1/32", false},
		{"::ffff:192.0.2.1", "192.0.2.1/32", false},
		{"198.51.100.7/24", "198.51.100.0/24", false},
		{"2001:DB8::1", "2001:db8::1/128", false},
		{"", "", true},
		{"example.com", "", true},
		{"10.0.0.0/33", "", true},
	} {
		got, err := DecisionKey(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("DecisionKey(%q) = %q, %v; want %q (error %v)", tc.in, got, err, tc.want, tc.err)
		}
		if err != nil && !errors.Is(err, ErrInvalidKey) {
			t.Errorf("DecisionKey(%q) error %v does not wrap ErrInvalidKey", tc.in, err)
		}
	}
}

func FuzzDecisionKey(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		k, err := DecisionKey(s)
		if err != nil {
			return
		}
		again, err := DecisionKey(k)
		if err != nil || again != k {
			t.Fatalf("DecisionKey(%q) = %q, but DecisionKey(%q) = %q, %v", s, k, k, again, err)
		}
	})
}

func TestWindowStart(t *testing.T) {
	for _, tc := range []struct {
		now    time.Time
		window time.Duration
		want   time.Time
	}{
		{time.Unix(125, 0), time.Minute, time.Unix(120, 0)},
		{time.Unix(120, 0), time.Minute, time.Unix(120, 0)},
		{time.Unix(0, 1_500_000_000), time.Second, time.Unix(1, 0)},
		{time.Unix(-5, 0), 10 * time.Second, time.Unix(-10, 0)},
		{time.Unix(-10, 0), 10 * time.Second, time.Unix(-10, 0)},
	} {
		if got := WindowStart(tc.now, tc.window); !got.Equal(tc.want) {
			t.Errorf("WindowStart(%v, %v) = %v; want %v", tc.now.Unix(), tc.window, got.Unix(), tc.want.Unix())
		}
	}
}

func TestChecks(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"empty key", CheckKey(""), ErrInvalidKey},
		{"long key", CheckKey(strings.Repeat("k", MaxKeyLen+1)), ErrInvalidKey},
		{"max key", CheckKey(strings.Repeat("k", MaxKeyLen)), nil},
		{"big value", CheckValue(make([]byte, MaxValueLen+1)), ErrValueTooLarge},
		{"max value", CheckValue(make([]byte, MaxValueLen)), nil},
		{"zero window", CheckWindow(0), ErrInvalid},
		{"window", CheckWindow(time.Second), nil},
		{"audit without actor", CheckAuditEntry(AuditEntry{Action: "a"}), ErrInvalid},
		{"audit", CheckAuditEntry(AuditEntry{Actor: "a", Action: "b"}), nil},
	} {
		if !errors.Is(tc.err, tc.want) || (tc.want == nil && tc.err != nil) {
			t.Errorf("%s: err = %v; want %v", tc.name, tc.err, tc.want)
		}
	}
	if got := AuditLimit(0); got != MaxAuditList {
		t.Errorf("AuditLimit(0) = %d", got)
	}
	if got := AuditLimit(5); got != 5 {
		t.Errorf("AuditLimit(5) = %d", got)
	}
	if got := Op(9).String(); got != "op(9)" {
		t.Errorf("Op(9) = %q", got)
	}
}
