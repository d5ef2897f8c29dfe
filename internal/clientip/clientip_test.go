package clientip

import (
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func mustResolver(t testing.TB, trusted []string, headers ...string) *Resolver {
	t.Helper()
	prefixes, err := ParsePrefixes(trusted)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewResolver(prefixes, headers)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// hdr builds an http.Header from name/value pairs; repeated names become
// several lines of one header, in order.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func TestClientAddr(t *testing.T) {
	trusted := []string{"10.0.0.0/8", "2001:db8:ffff::/48", "192.0.2.254"}
	const (
		proxy   = "10.0.0.1"
		proxy6  = "2001:db8:ffff::1"
		outside = "198.51.100.7"
	)
	tests := []struct {
		name    string
		peer    string
		h       http.Header
		want    string
		wantErr error
	}{
		// Untrusted peers are the client, whatever they say.
		{"untrusted peer, no header", outside, nil, outside, nil},
		{"untrusted peer sends XFF", outside, hdr("X-Forwarded-For", "1.2.3.4"), outside, nil},
		{"untrusted peer sends Forwarded", outside, hdr("Forwarded", "for=1.2.3.4"), outside, nil},
		{"untrusted peer sends X-Real-IP", outside, hdr("X-Real-IP", "1.2.3.4"), outside, nil},
		{"untrusted peer sends garbage", outside, hdr("X-Forwarded-For", "!!!"), outside, nil},
		{"untrusted mapped peer is unmapped", "::ffff:198.51.100.7", nil, outside, nil},

		// Trusted peer, simple chains.
		{"trusted peer, no header", proxy, nil, proxy, nil},
		{"trusted peer, blank header", proxy, hdr("X-Forwarded-For", "  "), proxy, nil},
		{"one hop", proxy, hdr("X-Forwarded-For", "203.0.113.9"), "203.0.113.9", nil},
		{"three hops", proxy, hdr("X-Forwarded-For", "203.0.113.9, 10.1.1.1, 10.2.2.2"), "203.0.113.9", nil},
		{"no spaces", proxy, hdr("X-Forwarded-For", "203.0.113.9,10.1.1.1"), "203.0.113.9", nil},
		{"tabs and spaces", proxy, hdr("X-Forwarded-For", " \t203.0.113.9 \t, 10.1.1.1 "), "203.0.113.9", nil},
		{"all trusted: leftmost", proxy, hdr("X-Forwarded-For", "10.9.9.9, 10.1.1.1"), "10.9.9.9", nil},
		{"trusted peer, IPv6", proxy6, hdr("X-Forwarded-For", "2001:db8:1::5"), "2001:db8:1::5", nil},
		{"trusted mapped peer", "::ffff:10.0.0.1", hdr("X-Forwarded-For", "203.0.113.9"), "203.0.113.9", nil},
		{"port on IPv4", proxy, hdr("X-Forwarded-For", "203.0.113.9:4711"), "203.0.113.9", nil},
		{"bracketed IPv6 with port", proxy, hdr("X-Forwarded-For", "[2001:db8:1::5]:443"), "2001:db8:1::5", nil},
		{"bracketed IPv6", proxy, hdr("X-Forwarded-For", "[2001:db8:1::5]"), "2001:db8:1::5", nil},
		{"mapped client unmapped", proxy, hdr("X-Forwarded-For", "::ffff:203.0.113.9"), "203.0.113.9", nil},
		{"mapped trusted hop skipped", proxy, hdr("X-Forwarded-For", "203.0.113.9, ::ffff:10.1.1.1"), "203.0.113.9", nil},
		{"empty elements ignored", proxy, hdr("X-Forwarded-For", "203.0.113.9,, 10.1.1.1,"), "203.0.113.9", nil},

		// Spoofing: whatever the client wrote is left of what our proxies appended.
		{"client prepends fake address", proxy, hdr("X-Forwarded-For", "1.1.1.1, 203.0.113.9"), "203.0.113.9", nil},
		{"client prepends trusted address", proxy, hdr("X-Forwarded-For", "10.5.5.5, 203.0.113.9"), "203.0.113.9", nil},
		{"client prepends garbage", proxy, hdr("X-Forwarded-For", "<script>, 203.0.113.9"), "203.0.113.9", nil},
		{"client prepends many", proxy, hdr("X-Forwarded-For", strings.Repeat("1.1.1.1,", 500)+"203.0.113.9"), "203.0.113.9", nil},
		{"client sends own header line", proxy, hdr("X-Forwarded-For", "1.1.1.1", "X-Forwarded-For", "203.0.113.9"), "203.0.113.9", nil},
		{"lines walked right to left", proxy, hdr("X-Forwarded-For", "203.0.113.1", "X-Forwarded-For", "10.1.1.1, 10.2.2.2"), "203.0.113.1", nil},
		{"client prepends Forwarded", proxy, hdr("Forwarded", `for=1.1.1.1, for=203.0.113.9`), "203.0.113.9", nil},
		{"client unbalanced quote", proxy, hdr("Forwarded", `for="1.1.1.1, for=203.0.113.9`), "203.0.113.9", nil},
		{"client X-Real-IP list", proxy, hdr("X-Real-IP", "1.1.1.1, 203.0.113.9"), "203.0.113.9", nil},

		// Header priority: the first present header wins.
		{"Forwarded before XFF", proxy, hdr("Forwarded", "for=203.0.113.1", "X-Forwarded-For", "203.0.113.2"), "203.0.113.1", nil},
		{"XFF before X-Real-IP", proxy, hdr("X-Real-IP", "203.0.113.3", "X-Forwarded-For", "203.0.113.2"), "203.0.113.2", nil},
		{"X-Real-IP alone", proxy, hdr("X-Real-IP", "203.0.113.3"), "203.0.113.3", nil},

		// Forwarded syntax.
		{"Forwarded quoted IPv6 with port", proxy, hdr("Forwarded", `for="[2001:db8:1::5]:4711"`), "2001:db8:1::5", nil},
		{"Forwarded quoted IPv4 with port", proxy, hdr("Forwarded", `for="192.0.2.1:80"`), "192.0.2.1", nil},
		{"Forwarded unquoted port", proxy, hdr("Forwarded", `for=192.0.2.1:80`), "192.0.2.1", nil},
		{"Forwarded obfuscated port", proxy, hdr("Forwarded", `for="192.0.2.1:_abc"`), "192.0.2.1", nil},
		{"Forwarded with other params", proxy, hdr("Forwarded", `proto=https;for=192.0.2.1;by=10.0.0.1;host="a,b;c"`), "192.0.2.1", nil},
		{"Forwarded case-insensitive name", proxy, hdr("Forwarded", `For=192.0.2.1`), "192.0.2.1", nil},
		{"Forwarded spaces", proxy, hdr("Forwarded", ` for=192.0.2.1 ; proto=http , for=10.1.1.1 `), "192.0.2.1", nil},
		{"Forwarded comma in quotes", proxy, hdr("Forwarded", `for=192.0.2.1;ext="x,y", for=10.1.1.1`), "192.0.2.1", nil},
		{"Forwarded escaped quote elsewhere", proxy, hdr("Forwarded", `for=192.0.2.1;ext="a\"b,c"`), "192.0.2.1", nil},
		{"Forwarded multiple lines", proxy, hdr("Forwarded", "for=192.0.2.1", "Forwarded", "for=10.1.1.1"), "192.0.2.1", nil},
		{"Forwarded unknown stops at last good", proxy, hdr("Forwarded", "for=192.0.2.1, for=unknown, for=10.1.1.1"), "10.1.1.1", nil},
		{"Forwarded obfuscated stops", proxy, hdr("Forwarded", "for=192.0.2.1, for=_hidden"), proxy, nil},
		{"Forwarded element without for stops", proxy, hdr("Forwarded", "for=192.0.2.1, proto=https"), proxy, nil},
		{"XFF unknown stops", proxy, hdr("X-Forwarded-For", "192.0.2.1, unknown"), proxy, nil},
		{"untrusted before unknown wins", proxy, hdr("X-Forwarded-For", "unknown, 192.0.2.1"), "192.0.2.1", nil},

		// Malformed input: the peer, and an error.
		{"XFF garbage", proxy, hdr("X-Forwarded-For", "not-an-ip"), proxy, ErrMalformed},
		{"XFF hostname", proxy, hdr("X-Forwarded-For", "example.com"), proxy, ErrMalformed},
		{"XFF bad port", proxy, hdr("X-Forwarded-For", "192.0.2.1:99999"), proxy, ErrMalformed},
		{"XFF empty port", proxy, hdr("X-Forwarded-For", "192.0.2.1:"), proxy, ErrMalformed},
		{"XFF unclosed bracket", proxy, hdr("X-Forwarded-For", "[2001:db8::1"), proxy, ErrMalformed},
		{"XFF zone", proxy, hdr("X-Forwarded-For", "fe80::1%eth0"), proxy, ErrMalformed},
		{"XFF leading zeros", proxy, hdr("X-Forwarded-For", "192.000.2.1"), proxy, ErrMalformed},
		{"garbage behind trusted hop", proxy, hdr("X-Forwarded-For", "203.0.113.9, junk, 10.1.1.1"), proxy, ErrMalformed},
		{"Forwarded no value", proxy, hdr("Forwarded", "for"), proxy, ErrMalformed},
		{"Forwarded empty for", proxy, hdr("Forwarded", `for=""`), proxy, ErrMalformed},
		{"Forwarded duplicate for", proxy, hdr("Forwarded", "for=192.0.2.1;for=192.0.2.2"), proxy, ErrMalformed},
		{"Forwarded unterminated quote", proxy, hdr("Forwarded", `for="192.0.2.1`), proxy, ErrMalformed},
		{"Forwarded escaped for", proxy, hdr("Forwarded", `for="192.0.2.\1"`), proxy, ErrMalformed},
		{"Forwarded bad name", proxy, hdr("Forwarded", `f(r=192.0.2.1`), proxy, ErrMalformed},

		// Bounds.
		{"too many trusted hops", proxy, hdr("X-Forwarded-For", strings.Repeat("10.1.1.1, ", MaxHops+1)), proxy, ErrTooLong},
		{"MaxHops trusted hops is fine", proxy, hdr("X-Forwarded-For", strings.TrimSuffix(strings.Repeat("10.1.1.1, ", MaxHops), ", ")), "10.1.1.1", nil},
		{"huge element", proxy, hdr("X-Forwarded-For", "1.1.1.1, 10.1.1.1 "+strings.Repeat(" ", MaxHeaderBytes)), proxy, ErrTooLong},
		{"huge line without comma", proxy, hdr("X-Forwarded-For", strings.Repeat("1", MaxHeaderBytes+1)), proxy, ErrTooLong},
		{"huge Forwarded quote", proxy, hdr("Forwarded", `for=1.1.1.1;x="`+strings.Repeat(",", MaxHeaderBytes)+`"`), proxy, ErrTooLong},
	}
	r := mustResolver(t, trusted)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.ClientAddr(netip.MustParseAddr(tc.peer), tc.h)
			if !errors.Is(err, tc.wantErr) || (err != nil) != (tc.wantErr != nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				var pe *ParseError
				if !errors.As(err, &pe) || pe.Header == "" {
					t.Errorf("err = %#v, want *ParseError with header", err)
				}
			}
			if want := netip.MustParseAddr(tc.want); got != want {
				t.Errorf("ClientAddr = %v, want %v", got, want)
			}
		})
	}
}

func TestClientAddrHeaderChoice(t *testing.T) {
	r := mustResolver(t, []string{"10.0.0.0/8"}, "x-real-ip")
	peer := netip.MustParseAddr("10.0.0.1")
	// X-Forwarded-For is not configured, so a client-supplied one is ignored.
	got, err := r.ClientAddr(peer, hdr("X-Forwarded-For", "1.1.1.1", "X-Real-Ip", "203.0.113.5"))
	if err != nil || got != netip.MustParseAddr("203.0.113.5") {
		t.Fatalf("got %v, %v", got, err)
	}
	got, err = r.ClientAddr(peer, hdr("X-Forwarded-For", "1.1.1.1"))
	if err != nil || got != peer {
		t.Fatalf("got %v, %v; want peer", got, err)
	}
}

func TestNoTrustedProxies(t *testing.T) {
	r := mustResolver(t, nil)
	peer := netip.MustParseAddr("10.0.0.1")
	got, err := r.ClientAddr(peer, hdr("X-Forwarded-For", "1.1.1.1"))
	if err != nil || got != peer {
		t.Fatalf("got %v, %v; want peer", got, err)
	}
}

func TestNewResolverErrors(t *testing.T) {
	if _, err := NewResolver(nil, []string{"X-Forwarded-For", "X-Client-IP", "Via"}); err == nil ||
		!strings.Contains(err.Error(), "X-Client-IP") || !strings.Contains(err.Error(), "Via") {
		t.Fatalf("err = %v, want both unknown headers reported", err)
	}
	if _, err := NewResolver([]netip.Prefix{{}}, nil); err == nil {
		t.Fatal("invalid prefix accepted")
	}
	r, err := NewResolver(nil, []string{"cf-connecting-ip", "True-Client-IP", "FORWARDED", "forwarded"})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.headers) != 3 {
		t.Fatalf("headers = %v, want duplicates dropped", r.headers)
	}
}

func TestTrusted(t *testing.T) {
	r := mustResolver(t, []string{"10.0.0.0/8", "::ffff:192.168.0.0/112", "2001:db8::/32"})
	for addr, want := range map[string]bool{
		"10.1.2.3":         true,
		"::ffff:10.1.2.3":  true,
		"192.168.4.5":      true,
		"11.0.0.1":         false,
		"2001:db8::1":      true,
		"2001:db9::1":      false,
		"::ffff:11.0.0.1":  false,
		"::10.1.2.3":       false, // IPv4-compatible, not mapped
		"fe80::1":          false,
		"2001:db8::1%eth0": false, // zoned addresses never match a prefix
	} {
		if got := r.Trusted(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Trusted(%s) = %v, want %v", addr, got, want)
		}
	}
}

func TestParsePrefixes(t *testing.T) {
	got, err := ParsePrefixes([]string{"10.0.0.0/8", " 192.0.2.7 ", "2001:db8::1", "10.1.2.3/16", "::ffff:10.0.0.0/104"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.0.2.7/32", "2001:db8::1/128", "10.1.0.0/16", "10.0.0.0/8"}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("entry %d = %v, want %s", i, got[i], want[i])
		}
	}

	_, err = ParsePrefixes([]string{"10.0.0.0/8", "bogus", "", "10.0.0.0/33", "fe80::1%eth0", "1.2.3.4"})
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{"entry 1", "entry 2", "entry 3", "entry 4"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	for _, notWant := range []string{"entry 0", "entry 5"} {
		if strings.Contains(msg, notWant) {
			t.Errorf("error %q mentions good %q", msg, notWant)
		}
	}
}

func TestClientAddrAllocs(t *testing.T) {
	r := mustResolver(t, []string{"10.0.0.0/8", "2001:db8:ffff::/48"})
	peer := netip.MustParseAddr("10.0.0.1")
	cases := []http.Header{
		hdr("X-Forwarded-For", "203.0.113.9, 10.1.1.1, 10.2.2.2"),
		hdr("Forwarded", `for="[2001:db8:1::5]:4711";proto=https, for=10.1.1.1`),
		hdr("X-Real-IP", "203.0.113.9"),
	}
	for _, h := range cases {
		if n := testing.AllocsPerRun(100, func() { _, _ = r.ClientAddr(peer, h) }); n != 0 {
			t.Errorf("%v: %v allocs per run, want 0", h, n)
		}
	}
}

func BenchmarkClientAddr(b *testing.B) {
	r := mustResolver(b, []string{"10.0.0.0/8", "172.16.0.0/12", "2001:db8:ffff::/48"})
	peer := netip.MustParseAddr("10.0.0.1")
	for _, bc := range []struct {
		name string
		h    http.Header
	}{
		{"untrusted-peer", nil},
		{"xff-3hop", hdr("X-Forwarded-For", "203.0.113.9, 10.1.1.1, 172.16.0.5")},
		{"xff-ipv6", hdr("X-Forwarded-For", "2001:db8:1::5, 10.1.1.1")},
		{"forwarded-2hop", hdr("Forwarded", `for="[2001:db8:1::5]:4711";proto=https, for=10.1.1.1`)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p := peer
			if bc.h == nil {
				p = netip.MustParseAddr("198.51.100.1")
			}
			b.ReportAllocs()
			for b.Loop() {
				_, _ = r.ClientAddr(p, bc.h)
			}
		})
	}
}
