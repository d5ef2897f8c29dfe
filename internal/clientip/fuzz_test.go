package clientip

import (
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

// Seeds live in testdata/fuzz/Fuzz*/; these add a few more in code.
var fuzzTrusted = []string{"10.0.0.0/8", "2001:db8:ffff::/48"}

// checkResult asserts the invariants every ClientAddr answer must keep.
func checkResult(t *testing.T, peer, got netip.Addr, err error) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLong) {
			t.Fatalf("unexpected error type %T: %v", err, err)
		}
		if got != peer {
			t.Fatalf("error %v but result %v is not the peer %v", err, got, peer)
		}
		return
	}
	if !got.IsValid() || got.Zone() != "" || got.Is4In6() {
		t.Fatalf("bad result %v", got)
	}
}

func FuzzXFF(f *testing.F) {
	f.Add("203.0.113.9, 10.1.1.1", "")
	f.Add("[2001:db8::1]:80,2001:db8:ffff::2", "10.0.0.3")
	r := mustResolver(f, fuzzTrusted, "X-Forwarded-For")
	peer := netip.MustParseAddr("10.0.0.1")
	f.Fuzz(func(t *testing.T, line1, line2 string) {
		h := http.Header{"X-Forwarded-For": {line1, line2}}
		got, err := r.ClientAddr(peer, h)
		checkResult(t, peer, got, err)

		// Compare with a straightforward reference walk over strings.Split,
		// for inputs within the bounds.
		if len(line1)+len(line2)+2 > MaxHeaderBytes {
			return
		}
		want, wantErr := referenceXFF(r, peer, []string{line1, line2})
		if (err == nil) != (wantErr == nil) || got != want {
			t.Fatalf("ClientAddr = %v, %v; reference = %v, %v", got, err, want, wantErr)
		}
	})
}

// referenceXFF is the obvious, allocating implementation of the XFF walk.
func referenceXFF(r *Resolver, peer netip.Addr, lines []string) (netip.Addr, error) {
	if !hasContent(lines) {
		return peer, nil
	}
	var elems []string
	for _, l := range lines {
		elems = append(elems, strings.Split(l, ",")...)
	}
	last, hops := peer, 0
	for i := len(elems) - 1; i >= 0; i-- {
		a, st, _ := parseNode(strings.Trim(elems[i], " \t"))
		switch st {
		case nodeEmpty:
			continue
		case nodeUnknown:
			return last, nil
		case nodeMalformed:
			return peer, ErrMalformed
		}
		if hops++; hops > MaxHops {
			return peer, ErrTooLong
		}
		if !r.Trusted(a) {
			return a, nil
		}
		last = a
	}
	return last, nil
}

func FuzzForwarded(f *testing.F) {
	f.Add(`for=192.0.2.1;proto=https, for="[2001:db8::1]:4711"`, "for=10.0.0.2")
	f.Add(`for="_hidden", for=unknown;by=x`, `ext="a\"b,c";for=10.1.1.1`)
	r := mustResolver(f, fuzzTrusted, "Forwarded")
	peer := netip.MustParseAddr("10.0.0.1")
	f.Fuzz(func(t *testing.T, line1, line2 string) {
		h := http.Header{"Forwarded": {line1, line2}}
		got, err := r.ClientAddr(peer, h)
		checkResult(t, peer, got, err)

		// A client can only prepend: whatever it wrote, an address appended
		// by a trusted proxy in its own line decides.
		h = http.Header{"Forwarded": {line1, line2, "for=203.0.113.77, for=10.9.9.9"}}
		got, err = r.ClientAddr(peer, h)
		if err != nil || got != netip.MustParseAddr("203.0.113.77") {
			t.Fatalf("appended hop ignored: %v, %v", got, err)
		}
	})
}

// FuzzParseIPv4 checks the IPv4 fast path against netip.ParseAddr.
func FuzzParseIPv4(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseIPv4(s)
		want, err := netip.ParseAddr(s)
		wantOK := err == nil && want.Is4()
		if ok != wantOK || ok && got != want {
			t.Fatalf("parseIPv4(%q) = %v, %v; netip says %v, %v", s, got, ok, want, err)
		}
	})
}
