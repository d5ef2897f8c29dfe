package hmacsig

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var (
	secret = []byte("s3cret")
	now    = time.Unix(1_700_000_000, 0)
	body   = []byte(`{"client_ip":"203.0.113.7"}`)
)

func TestSignVerifyRoundTrip(t *testing.T) {
	h := Sign(secret, now, body)
	if !strings.HasPrefix(h, "t=1700000000,v1=") || len(h) != len("t=1700000000,v1=")+64 {
		t.Fatalf("Sign = %q", h)
	}
	if err := Verify(secret, h, body, now.Add(time.Minute), 0); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestVerifyRejects(t *testing.T) {
	good := Sign(secret, now, body)
	other := Sign([]byte("other"), now, body)
	tests := []struct {
		name   string
		secret []byte
		header string
		body   []byte
		at     time.Time
		want   error
	}{
		{"missing", secret, "", body, now, ErrMissing},
		{"no secret", nil, good, body, now, ErrNoSecret},
		{"tampered body", secret, good, []byte(`{"client_ip":"203.0.113.8"}`), now, ErrMismatch},
		{"wrong secret", secret, other, body, now, ErrMismatch},
		{"too old", secret, good, body, now.Add(6 * time.Minute), ErrExpired},
		{"from the future", secret, good, body, now.Add(-6 * time.Minute), ErrExpired},
		{"garbage", secret, "hello", body, now, ErrMalformed},
		{"no ts", secret, "v1=" + strings.Repeat("a", 64), body, now, ErrMalformed},
		{"no v1", secret, "t=1700000000", body, now, ErrMalformed},
		{"short v1", secret, "t=1700000000,v1=abcd", body, now, ErrMalformed},
		{"bad ts", secret, "t=abc,v1=" + strings.Repeat("a", 64), body, now, ErrMalformed},
		{"dup ts", secret, "t=1,t=2,v1=" + strings.Repeat("a", 64), body, now, ErrMalformed},
		{"huge ts", secret, "t=9223372036854775807,v1=" + strings.Repeat("a", 64), body, now, ErrExpired},
		{"too long", secret, strings.Repeat("x", 2000), body, now, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.secret, tt.header, tt.body, tt.at, 0)
			if !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyAcceptsRotation(t *testing.T) {
	old := Sign([]byte("old"), now, body)
	cur := Sign(secret, now, body)
	_, oldSig, _ := strings.Cut(old, ",")
	h := cur + "," + oldSig + ",v2=future"
	if err := Verify([]byte("old"), h, body, now, time.Minute); err != nil {
		t.Errorf("old secret: %v", err)
	}
	if err := Verify(secret, h, body, now, time.Minute); err != nil {
		t.Errorf("new secret: %v", err)
	}
}

func FuzzVerify(f *testing.F) {
	f.Add(Sign(secret, now, body), body)
	f.Add("t=1700000000,v1=zz", []byte("x"))
	f.Add("t=,v1=", []byte{})
	f.Add(",,,", []byte{})
	f.Fuzz(func(t *testing.T, header string, b []byte) {
		err := Verify(secret, header, b, now, time.Minute)
		if err == nil && header != Sign(secret, now, b) && !strings.Contains(header, ",") {
			t.Fatalf("accepted unexpected header %q", header)
		}
	})
}

func BenchmarkSign(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Sign(secret, now, body)
	}
}

func BenchmarkVerify(b *testing.B) {
	h := Sign(secret, now, body)
	b.ReportAllocs()
	for b.Loop() {
		if err := Verify(secret, h, body, now, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func TestParse(t *testing.T) {
	hexSig := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"t=1700000000,v1=" + hexSig, true},
		{"t=1700000000, v1=" + hexSig + ",v1=" + hexSig, true},
		{"t=1700000000,v0=zz,v1=" + hexSig, true},
		{"v1=" + hexSig, false},
		{"t=1700000000", false},
		{"t=-5,v1=" + hexSig, false},
		{"t=1,t=2,v1=" + hexSig, false},
		{"t=1700000000,v1=" + hexSig[:10], false},
		{"t=1700000000,v1=" + strings.Repeat("zz", 32), false},
		{"t=1700000000;v1=" + hexSig, false},
		{"", false},
	} {
		if _, err := Parse(tc.in); (err == nil) != tc.ok {
			t.Errorf("Parse(%q) = %v, want ok %v", tc.in, err, tc.ok)
		}
	}
}
