package crawlers

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func prefixes(tb testing.TB, ss ...string) []netip.Prefix {
	tb.Helper()
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

func TestParseRanges(t *testing.T) {
	cases := []struct {
		name   string
		in     string
		want   []netip.Prefix
		source string
	}{
		{
			name:   "text",
			in:     "\ufeff# googlebot\n# source: https://example.com/g.json\n\n192.0.2.0/24\r\n  2001:db8::/32  # trailing comment\n198.51.100.7\n2001:db8::1\n",
			want:   prefixes(t, "192.0.2.0/24", "2001:db8::/32", "198.51.100.7/32", "2001:db8::1/128"),
			source: "https://example.com/g.json",
		},
		{
			name: "text unmasked and mapped",
			in:   "192.0.2.9/24\n::ffff:198.51.100.0/120\n",
			want: prefixes(t, "192.0.2.0/24", "198.51.100.0/24"),
		},
		{
			name: "google json",
			in: `{"creationTime": "2026-08-01T00:00:00.000000", "prefixes": [
				{"ipv6Prefix": "2001:4860:4801:10::/64"}, {"ipv4Prefix": "66.249.64.0/27"}]}`,
			want: prefixes(t, "2001:4860:4801:10::/64", "66.249.64.0/27"),
		},
		{
			name: "json with extra fields",
			in:   ` {"syncToken":"1","prefixes":[{"ipv4Prefix":"192.0.2.0/24","service":"x"}],"other":[1,2]}`,
			want: prefixes(t, "192.0.2.0/24"),
		},
		{
			name: "json array",
			in:   `["192.0.2.0/24", " 2001:db8::/48 "]`,
			want: prefixes(t, "192.0.2.0/24", "2001:db8::/48"),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, src, err := parseRanges([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) || src != tc.source {
				t.Errorf("got %v %q, want %v %q", got, src, tc.want, tc.source)
			}
		})
	}
}

func TestParseRangesErrors(t *testing.T) {
	for name, in := range map[string]string{
		"empty":            "",
		"only comments":    "# a\n# b\n",
		"garbage line":     "192.0.2.0/24\nhello\n",
		"bad prefix len":   "192.0.2.0/33",
		"too broad v4":     "10.0.0.0/7",
		"too broad v6":     "2000::/3",
		"zone":             "fe80::1%eth0",
		"bad json":         `{"prefixes": [`,
		"json wrong type":  `{"prefixes": "192.0.2.0/24"}`,
		"json empty entry": `{"prefixes": [{"ipv4Prefix": "192.0.2.0/24"}, {}]}`,
		"json both":        `{"prefixes": [{"ipv4Prefix": "192.0.2.0/24", "ipv6Prefix": "2001:db8::/32"}]}`,
		"json bad prefix":  `{"prefixes": [{"ipv4Prefix": "192.0.2.0/24x"}]}`,
		"json no prefixes": `{"creationTime": "x"}`,
		"json empty array": `[]`,
		"json array bad":   `[1, 2]`,
		"too long line":    strings.Repeat("1", 70<<10),
	} {
		if p, _, err := parseRanges([]byte(in)); err == nil {
			t.Errorf("%s: no error, got %v", name, p)
		}
	}
	if _, _, err := parseRanges([]byte("# x\n")); !errors.Is(err, errNoPrefixes) {
		t.Errorf("empty list: err = %v, want errNoPrefixes", err)
	}
}

func TestParseRangesLimit(t *testing.T) {
	var b strings.Builder
	for i := range maxPrefixes + 1 {
		b.WriteString(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String())
		b.WriteByte('\n')
	}
	if _, _, err := parseRanges([]byte(b.String())); err == nil {
		t.Error("no error past maxPrefixes")
	}
}

func TestPrefixSet(t *testing.T) {
	set := newPrefixSet(prefixes(t,
		"192.0.2.0/25", "192.0.2.128/25", // adjacent: merged
		"198.51.100.0/24", "198.51.100.64/26", // nested
		"203.0.113.255/32",
		"255.255.255.0/24",               // top of the space
		"2001:db8::/64", "2001:db8::/48", // nested v6
		"2001:db8:ffff:ffff::/64",
		"ffff:ffff:ffff:ffff::/64", // top of the space
	))
	if len(set.v4) != 4 || len(set.v6) != 3 {
		t.Errorf("merged to %d v4 and %d v6 spans: %+v", len(set.v4), len(set.v6), set)
	}
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"192.0.1.255", false},
		{"192.0.2.0", true},
		{"192.0.2.127", true},
		{"192.0.2.128", true},
		{"192.0.2.255", true},
		{"192.0.3.0", false},
		{"198.51.100.200", true},
		{"203.0.113.254", false},
		{"203.0.113.255", true},
		{"204.0.0.0", false},
		{"255.255.255.255", true},
		{"0.0.0.0", false},
		{"::ffff:192.0.2.1", true},
		{"2001:db8::1", true},
		{"2001:db8:0:ffff:ffff:ffff:ffff:ffff", true},
		{"2001:db8:1::", false},
		{"2001:db8:ffff:ffff::1", true},
		{"2001:db8:ffff:fffe::1", false},
		{"2001:db7:ffff::1", false},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true},
		{"::", false},
		{"::c000:201", false}, // IPv4-compatible, not mapped
	} {
		if got := set.contains(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("contains(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
	if set.contains(netip.Addr{}) {
		t.Error("contains(invalid) = true")
	}
	var empty prefixSet
	if empty.contains(netip.MustParseAddr("192.0.2.1")) || empty.contains(netip.MustParseAddr("2001:db8::1")) {
		t.Error("empty set contains an address")
	}
}

func BenchmarkPrefixSetContains(b *testing.B) {
	c := mustEmbedded(b)
	set := newPrefixSet(c.Prefixes("googlebot"))
	for _, a := range []string{"66.249.66.1", "203.0.113.7", "2001:4860:4801:10::1"} {
		addr := netip.MustParseAddr(a)
		b.Run(a, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = set.contains(addr)
			}
		})
	}
}
