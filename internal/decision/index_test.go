package decision

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// mkDecision builds a decision for value that expires at exp (unix nanos,
// 0 = never).
func mkDecision(tb testing.TB, value string, action Action, reason string, exp int64) Decision {
	tb.Helper()
	p, err := ParsePrefix(value)
	if err != nil {
		tb.Fatalf("ParsePrefix(%q): %v", value, err)
	}
	d := Decision{Action: action, Reason: reason, Source: "test", Created: time.Unix(0, 0)}
	d.SetPrefix(p)
	if exp != 0 {
		d.Expires = time.Unix(0, exp)
	}
	return d
}

func mustUpsert(tb testing.TB, ix *Index, ds ...Decision) {
	tb.Helper()
	for _, d := range ds {
		if err := ix.Upsert(d); err != nil {
			tb.Fatalf("Upsert(%s): %v", d.Value, err)
		}
	}
}

func TestIndexLookup(t *testing.T) {
	// Each decision's reason is its value, so a lookup is checked by the
	// prefix it should land on.
	type step struct {
		upsert []string // values; "value@exp" sets an expiry
		del    []string
		want   map[string]string // address -> winning value ("" = no match)
	}
	tests := []struct {
		name  string
		now   int64
		steps []step
	}{
		{
			name: "nested IPv4",
			steps: []step{{
				upsert: []string{"10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.3"},
				want: map[string]string{
					"10.1.2.3": "10.1.2.3", "10.1.2.4": "10.1.2.0/24", "10.1.2.255": "10.1.2.0/24",
					"10.1.3.0": "10.1.0.0/16", "10.1.255.255": "10.1.0.0/16", "10.0.0.0": "10.0.0.0/8",
					"10.255.255.255": "10.0.0.0/8", "11.0.0.0": "", "9.255.255.255": "", "0.0.0.0": "",
				},
			}},
		},
		{
			name: "siblings and a shared start",
			steps: []step{{
				upsert: []string{"10.0.0.0/24", "10.0.0.0/25", "10.0.0.128/25", "10.0.0.128/26", "10.0.1.0/24"},
				want: map[string]string{
					"10.0.0.0": "10.0.0.0/25", "10.0.0.127": "10.0.0.0/25", "10.0.0.128": "10.0.0.128/26",
					"10.0.0.191": "10.0.0.128/26", "10.0.0.192": "10.0.0.128/25", "10.0.0.255": "10.0.0.128/25",
					"10.0.1.0": "10.0.1.0/24", "10.0.2.0": "",
				},
			}},
		},
		{
			name: "nested IPv6",
			steps: []step{{
				upsert: []string{"2001:db8::/32", "2001:db8:1::/48", "2001:db8:1::1", "2001:db8:1:0:8000::/65"},
				want: map[string]string{
					"2001:db8:1::1": "2001:db8:1::1", "2001:db8:1::2": "2001:db8:1::/48",
					"2001:db8:1:0:8000::1": "2001:db8:1:0:8000::/65", "2001:db8:2::": "2001:db8::/32",
					"2001:db9::": "", "2001:db7:ffff::": "", "fe80::1%eth0": "", "10.0.0.1": "",
				},
			}},
		},
		{
			name: "IPv4-mapped",
			steps: []step{{
				upsert: []string{"::ffff:192.0.2.1", "::ffff:198.51.100.0/120", "2001:db8::/32"},
				want: map[string]string{
					"192.0.2.1": "192.0.2.1", "::ffff:192.0.2.1": "192.0.2.1",
					"198.51.100.7": "198.51.100.0/24", "::ffff:198.51.100.7": "198.51.100.0/24",
					"::ffff:203.0.113.1": "",
				},
			}},
		},
		{
			name: "default routes",
			steps: []step{{
				upsert: []string{"0.0.0.0/0", "::/0", "255.255.255.255", "255.255.255.0/24", "0.0.0.0", "ffff::/16"},
				want: map[string]string{
					"1.2.3.4": "0.0.0.0/0", "0.0.0.0": "0.0.0.0", "0.0.0.1": "0.0.0.0/0",
					"255.255.255.255": "255.255.255.255", "255.255.255.254": "255.255.255.0/24",
					"2001:db8::1": "::/0", "::ffff:1.2.3.4": "0.0.0.0/0",
					"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff": "ffff::/16", "fffe::": "::/0",
				},
			}},
		},
		{
			name: "expiry falls back to the parent",
			now:  100,
			steps: []step{{
				upsert: []string{"10.0.0.0/8", "10.1.0.0/16@200", "10.1.2.0/24@100", "10.1.2.3@99", "10.1.2.4@101"},
				want: map[string]string{
					"10.1.2.3": "10.1.0.0/16", "10.1.2.4": "10.1.2.4", "10.1.2.5": "10.1.0.0/16", "10.2.0.0": "10.0.0.0/8",
				},
			}},
		},
		{
			name: "delete parent, then child",
			steps: []step{
				{
					upsert: []string{"10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.3"},
					del:    []string{"10.1.0.0/16"},
					want:   map[string]string{"10.1.2.9": "10.1.2.0/24", "10.1.3.0": "10.0.0.0/8", "10.1.2.3": "10.1.2.3"},
				},
				{
					del:  []string{"10.1.2.0/24", "10.1.2.3"},
					want: map[string]string{"10.1.2.9": "10.0.0.0/8", "10.1.2.3": "10.0.0.0/8"},
				},
				{
					del:  []string{"10.0.0.0/8"},
					want: map[string]string{"10.1.2.3": ""},
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ix := NewIndex()
			for i, s := range tt.steps {
				for _, v := range s.upsert {
					var exp int64
					if at := strings.IndexByte(v, '@'); at >= 0 {
						if _, err := fmt.Sscan(v[at+1:], &exp); err != nil {
							t.Fatal(err)
						}
						v = v[:at]
					}
					mustUpsert(t, ix, mkDecision(t, v, ActionBlock, v, exp))
				}
				for _, v := range s.del {
					p, err := ParsePrefix(v)
					if err != nil {
						t.Fatal(err)
					}
					if !ix.Delete(p) {
						t.Errorf("step %d: Delete(%s) = false", i, v)
					}
				}
				for addr, want := range s.want {
					m, ok := ix.Lookup(netip.MustParseAddr(addr), tt.now)
					switch {
					case want == "" && (ok || m != Match{}):
						t.Errorf("step %d: Lookup(%s) = %+v, %v; want no match", i, addr, m, ok)
					case want != "" && (!ok || m.Prefix != mustPrefix(t, want)):
						t.Errorf("step %d: Lookup(%s) = %+v, %v; want %s", i, addr, m, ok, want)
					}
				}
			}
		})
	}
}

func mustPrefix(tb testing.TB, s string) netip.Prefix {
	tb.Helper()
	p, err := ParsePrefix(s)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func TestIndexUpsertReplacesAndGet(t *testing.T) {
	ix := NewIndex()
	for _, v := range []string{"192.0.2.1", "2001:db8::1", "198.51.100.0/24", "2001:db8::/48"} {
		t.Run(v, func(t *testing.T) {
			mustUpsert(t, ix, mkDecision(t, v, ActionTarpit, "first", 0))
			mustUpsert(t, ix, mkDecision(t, v, ActionChallenge, "second", 500))
			p := mustPrefix(t, v)
			want := Match{Prefix: p, Action: ActionChallenge, Reason: "second", Source: "test", Expires: 500}
			if got, ok := ix.Get(p); !ok || got != want {
				t.Errorf("Get = %+v, %v; want %+v", got, ok, want)
			}
			if got, ok := ix.Lookup(p.Addr(), 499); !ok || got != want {
				t.Errorf("Lookup before expiry = %+v, %v; want %+v", got, ok, want)
			}
			// Get shows an expired decision until it is swept; Lookup does not.
			if _, ok := ix.Lookup(p.Addr(), 500); ok {
				t.Error("Lookup matched an expired decision")
			}
			if _, ok := ix.Get(p); !ok {
				t.Error("Get lost an expired, unswept decision")
			}
		})
	}
	if ips, cidrs := ix.Len(); ips != 2 || cidrs != 2 {
		t.Errorf("Len = %d, %d; want 2, 2", ips, cidrs)
	}
	if n := ix.st.Load().attrs.len(); n != 1 {
		t.Errorf("%d interned attrs, want 1", n)
	}
	if _, ok := ix.Get(mustPrefix(t, "192.0.2.2")); ok {
		t.Error("Get of an absent address matched")
	}
	if _, ok := ix.Get(netip.Prefix{}); ok {
		t.Error("Get of the zero prefix matched")
	}
	// Mapped and non-canonical forms name the same key.
	if _, ok := ix.Get(netip.MustParsePrefix("::ffff:198.51.100.7/120")); !ok {
		t.Error("Get of the mapped, unmasked form missed")
	}
}

func TestIndexUpsertInvalid(t *testing.T) {
	ix := NewIndex()
	good := mkDecision(t, "192.0.2.1", ActionBlock, "r", 0)
	tests := []struct {
		name string
		edit func(*Decision)
	}{
		{"bad value", func(d *Decision) { d.Value = "300.1.1.1" }},
		{"empty value", func(d *Decision) { d.Value = "" }},
		{"scope mismatch", func(d *Decision) { d.Scope = ScopeCIDR }},
		{"no action", func(d *Decision) { d.Action = ActionNone }},
		{"unknown action", func(d *Decision) { d.Action = ActionBlock + 1 }},
		{"no source", func(d *Decision) { d.Source = "" }},
		{"long reason", func(d *Decision) { d.Reason = strings.Repeat("x", MaxReasonLen+1) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := good
			tt.edit(&d)
			if err := ix.Upsert(d); err == nil {
				t.Fatal("Upsert accepted an invalid decision")
			}
		})
	}
	if ips, cidrs := ix.Len(); ips != 0 || cidrs != 0 {
		t.Errorf("Len = %d, %d after rejected upserts", ips, cidrs)
	}
	if n := ix.st.Load().attrs.len(); n != 0 {
		t.Errorf("%d attrs leaked", n)
	}
}

func TestIndexDeleteAbsent(t *testing.T) {
	ix := NewIndex()
	mustUpsert(t, ix, mkDecision(t, "10.0.0.0/8", ActionBlock, "r", 0))
	for _, p := range []netip.Prefix{{}, mustPrefix(t, "10.0.0.0/9"), mustPrefix(t, "10.0.0.1"), mustPrefix(t, "::/0")} {
		if ix.Delete(p) {
			t.Errorf("Delete(%s) = true for an absent prefix", p)
		}
	}
	// An unmasked prefix is deleted by its canonical form.
	if !ix.Delete(netip.MustParsePrefix("10.9.9.9/8")) {
		t.Error("Delete of the unmasked form missed")
	}
}

func TestIndexSweep(t *testing.T) {
	ix := NewIndex()
	mustUpsert(t, ix,
		mkDecision(t, "10.0.0.0/8", ActionBlock, "r", 0),
		mkDecision(t, "10.1.0.0/16", ActionBlock, "r", 100),
		mkDecision(t, "10.1.2.3", ActionBlock, "r", 50),
		mkDecision(t, "10.1.2.4", ActionBlock, "r", 150),
		mkDecision(t, "2001:db8::1", ActionBlock, "other", 100),
		mkDecision(t, "2001:db8::/64", ActionBlock, "r", 0),
	)
	got := ix.Sweep(100)
	want := []string{"10.1.0.0/16", "10.1.2.3/32", "2001:db8::1/128"}
	if !equalPrefixSets(got, want) {
		t.Errorf("Sweep(100) = %v, want %v", got, want)
	}
	if ips, cidrs := ix.Len(); ips != 1 || cidrs != 2 {
		t.Errorf("Len = %d, %d; want 1, 2", ips, cidrs)
	}
	if m, _ := ix.Lookup(netip.MustParseAddr("10.1.2.3"), 0); m.Prefix.String() != "10.0.0.0/8" {
		t.Errorf("after sweep 10.1.2.3 matched %v", m.Prefix)
	}
	if got := ix.Sweep(100); len(got) != 0 {
		t.Errorf("second Sweep(100) = %v", got)
	}
	if n := ix.st.Load().attrs.len(); n != 1 {
		t.Errorf("%d attrs after sweep, want 1", n)
	}
}

func equalPrefixSets(got []netip.Prefix, want []string) bool {
	g := make([]string, len(got))
	for i, p := range got {
		g[i] = p.String()
	}
	slices.Sort(g)
	w := slices.Clone(want)
	slices.Sort(w)
	return slices.Equal(g, w)
}

func TestIndexSweepShrinks(t *testing.T) {
	ix := NewIndex()
	for i := range 5000 {
		mustUpsert(t, ix, mkDecision(t, addrFrom4(uint32(i)).String(), ActionBlock, "r", 10))
		mustUpsert(t, ix, mkDecision(t, netip.AddrFrom16([16]byte{0x20, 1, 15: byte(i), 14: byte(i >> 8)}).String(), ActionBlock, "r", 10))
	}
	if n := len(ix.Sweep(10)); n != 10000 {
		t.Fatalf("swept %d, want 10000", n)
	}
	st := ix.st.Load()
	for i := range st.v4.shards {
		if n := len(st.v4.shards[i].slots.Load().s); n != minSlots {
			t.Fatalf("v4 shard %d kept %d slots", i, n)
		}
		if n := len(st.v6.shards[i].slots.Load().s); n != minSlots {
			t.Fatalf("v6 shard %d kept %d slots", i, n)
		}
	}
}

func TestIndexLimits(t *testing.T) {
	ix := NewIndexWithLimits(Limits{MaxIPs: 2, MaxCIDRs: 1})
	mustUpsert(t, ix,
		mkDecision(t, "192.0.2.1", ActionBlock, "r", 0),
		mkDecision(t, "2001:db8::1", ActionBlock, "r", 0),
		mkDecision(t, "10.0.0.0/8", ActionBlock, "r", 0),
	)
	for _, v := range []string{"192.0.2.2", "2001:db8::2", "11.0.0.0/8"} {
		if err := ix.Upsert(mkDecision(t, v, ActionBlock, "r", 0)); !errors.Is(err, ErrIndexFull) {
			t.Errorf("Upsert(%s) over the limit: %v, want ErrIndexFull", v, err)
		}
	}
	// Replacing an existing prefix is always allowed.
	mustUpsert(t, ix,
		mkDecision(t, "192.0.2.1", ActionTarpit, "r2", 0),
		mkDecision(t, "10.0.0.0/8", ActionTarpit, "r2", 0),
	)
	if ips, cidrs := ix.Len(); ips != 2 || cidrs != 1 {
		t.Errorf("Len = %d, %d; want 2, 1", ips, cidrs)
	}
	// Freed room can be used again.
	if !ix.Delete(mustPrefix(t, "192.0.2.1")) {
		t.Fatal("Delete failed")
	}
	mustUpsert(t, ix, mkDecision(t, "192.0.2.2", ActionBlock, "r", 0))
}

func TestIndexReplaceAll(t *testing.T) {
	ix := NewIndex()
	mustUpsert(t, ix,
		mkDecision(t, "192.0.2.1", ActionBlock, "old", 0),
		mkDecision(t, "10.0.0.0/8", ActionBlock, "old", 0),
	)
	bad := mkDecision(t, "192.0.2.9", ActionBlock, "bad", 0)
	bad.Source = ""
	err := ix.ReplaceAll([]Decision{
		mkDecision(t, "192.0.2.2", ActionBlock, "first", 0),
		bad,
		mkDecision(t, "192.0.2.2", ActionThrottle, "last", 0),
		mkDecision(t, "172.16.0.0/12", ActionBlock, "new", 0),
		mkDecision(t, "2001:db8::/32", ActionBlock, "new", 0),
	})
	if err == nil || !strings.Contains(err.Error(), "1 of 5") {
		t.Errorf("ReplaceAll error = %v, want one skipped", err)
	}
	for addr, want := range map[string]string{
		"192.0.2.1": "", "10.1.1.1": "", "192.0.2.9": "", "192.0.2.2": "last", "172.16.5.5": "new", "2001:db8::5": "new",
	} {
		if m, _ := ix.Lookup(netip.MustParseAddr(addr), 0); m.Reason != want {
			t.Errorf("Lookup(%s) reason %q, want %q", addr, m.Reason, want)
		}
	}
	if ips, cidrs := ix.Len(); ips != 1 || cidrs != 2 {
		t.Errorf("Len = %d, %d; want 1, 2", ips, cidrs)
	}
	if err := ix.ReplaceAll(nil); err != nil {
		t.Fatal(err)
	}
	if ips, cidrs := ix.Len(); ips != 0 || cidrs != 0 {
		t.Errorf("Len after ReplaceAll(nil) = %d, %d", ips, cidrs)
	}
}

func TestIndexAttrsAreShared(t *testing.T) {
	ix := NewIndex()
	reason := strings.Repeat("r", 200)
	for i := range 1000 {
		mustUpsert(t, ix, mkDecision(t, addrFrom4(uint32(i)).String(), ActionBlock, reason, 0))
	}
	st := ix.st.Load()
	if n := st.attrs.len(); n != 1 {
		t.Fatalf("%d attrs for one reason, want 1", n)
	}
	for i := range 1000 {
		ix.Delete(netip.PrefixFrom(addrFrom4(uint32(i)), 32))
	}
	if n := st.attrs.len(); n != 0 {
		t.Fatalf("%d attrs after deleting everything, want 0", n)
	}
}

func TestUnixNanos(t *testing.T) {
	tests := []struct {
		in   time.Time
		want int64
	}{
		{time.Time{}, 0},
		{time.Unix(0, 0), 1},
		{time.Unix(-5, 0), 1},
		{time.Unix(10, 5), 10_000_000_005},
		{time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), 1<<63 - 1},
	}
	for _, tt := range tests {
		if got := unixNanos(tt.in); got != tt.want {
			t.Errorf("unixNanos(%v) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// refIndex is the obviously-correct model the index is compared against.
type refIndex struct {
	m map[netip.Prefix]Match
}

func newRefIndex() *refIndex { return &refIndex{m: make(map[netip.Prefix]Match)} }

func (r *refIndex) upsert(d Decision) {
	p, err := d.Prefix()
	if err != nil {
		panic(err)
	}
	r.m[p] = Match{Prefix: p, Action: d.Action, Reason: d.Reason, Source: d.Source, Expires: unixNanos(d.Expires)}
}

func (r *refIndex) lookup(a netip.Addr, now int64) (Match, bool) {
	a = a.Unmap()
	var best Match
	found := false
	for p, m := range r.m {
		if p.Contains(a) && isActive(m.Expires, now) && (!found || p.Bits() > best.Prefix.Bits()) {
			best, found = m, true
		}
	}
	return best, found
}

func (r *refIndex) sweep(now int64) []string {
	var out []string
	for p, m := range r.m {
		if !isActive(m.Expires, now) {
			delete(r.m, p)
			out = append(out, p.String())
		}
	}
	return out
}

func (r *refIndex) counts() (ips, cidrs int) {
	for p := range r.m {
		if p.IsSingleIP() {
			ips++
		} else {
			cidrs++
		}
	}
	return ips, cidrs
}

// modelRand draws prefixes and addresses from small spaces, so that
// prefixes nest, collide and get replaced often.
type modelRand struct{ *rand.Rand }

func (r modelRand) addr() netip.Addr {
	switch r.IntN(8) {
	case 0:
		return netip.AddrFrom4([4]byte{byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
	case 1:
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(r.IntN(256)), 7: byte(r.IntN(4))})
	case 2:
		return netip.AddrFrom16([16]byte{0xff, 0xff, 10: 0xff, 11: 0xff, 12: 10, 15: byte(r.IntN(256))}) // not mapped: 0xffff prefix
	case 3:
		return netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff, 12: 10, 13: byte(r.IntN(2)), 15: byte(r.IntN(256))}) // mapped
	default:
		return netip.AddrFrom4([4]byte{10, byte(r.IntN(2)), byte(r.IntN(4)), byte(r.IntN(256))})
	}
}

func (r modelRand) prefix() netip.Prefix {
	a := r.addr().Unmap()
	var bits int
	switch {
	case a.Is4() && r.IntN(10) == 0:
		bits = r.IntN(17)
	case a.Is4():
		bits = 16 + r.IntN(17)
	case r.IntN(10) == 0:
		bits = r.IntN(129)
	default:
		bits = 100 + r.IntN(29)
	}
	return netip.PrefixFrom(a, bits).Masked()
}

func (r modelRand) decision(tb testing.TB, now int64) Decision {
	var exp int64
	if r.IntN(3) == 0 {
		exp = now + int64(r.IntN(20)) - 5
		if exp == 0 {
			exp = 1
		}
	}
	reasons := []string{"a", "b", "c", "d", ""}
	p := r.prefix()
	d := Decision{Action: Action(1 + r.IntN(5)), Reason: reasons[r.IntN(len(reasons))], Source: "s" + reasons[r.IntN(2)]}
	d.SetPrefix(p)
	if exp != 0 {
		d.Expires = time.Unix(0, exp)
	}
	return d
}

func checkAgainstModel(tb testing.TB, ix *Index, ref *refIndex, r modelRand, now int64, probes int) {
	tb.Helper()
	for range probes {
		a := r.addr()
		got, gok := ix.Lookup(a, now)
		want, wok := ref.lookup(a, now)
		if gok != wok || got != want {
			tb.Fatalf("Lookup(%s, %d) = %+v, %v; model says %+v, %v", a, now, got, gok, want, wok)
		}
	}
	for p, want := range ref.m {
		if got, ok := ix.Get(p); !ok || got != want {
			tb.Fatalf("Get(%s) = %+v, %v; model says %+v", p, got, ok, want)
		}
	}
	gi, gc := ix.Len()
	wi, wc := ref.counts()
	if gi != wi || gc != wc {
		tb.Fatalf("Len = %d, %d; model says %d, %d", gi, gc, wi, wc)
	}
}

func TestIndexAgainstModel(t *testing.T) {
	rounds := 4000
	if testing.Short() || raceEnabled {
		rounds = 1000
	}
	r := modelRand{rand.New(rand.NewPCG(1, 2))}
	ix, ref := NewIndex(), newRefIndex()
	now := int64(100)
	for round := range rounds {
		switch op := r.IntN(100); {
		case op < 60:
			d := r.decision(t, now)
			mustUpsert(t, ix, d)
			ref.upsert(d)
		case op < 80:
			p := r.prefix()
			if len(ref.m) > 0 && r.IntN(2) == 0 {
				for q := range ref.m { // delete something present
					p = q
					break
				}
			}
			_, want := ref.m[p]
			delete(ref.m, p)
			if got := ix.Delete(p); got != want {
				t.Fatalf("round %d: Delete(%s) = %v, want %v", round, p, got, want)
			}
		case op < 85:
			got := ix.Sweep(now)
			if want := ref.sweep(now); !equalPrefixSets(got, want) {
				t.Fatalf("round %d: Sweep(%d) = %v, want %v", round, now, got, want)
			}
		case op < 87:
			ds := make([]Decision, 0, len(ref.m))
			for _, m := range ref.m {
				d := Decision{Action: m.Action, Reason: m.Reason, Source: m.Source}
				d.SetPrefix(m.Prefix)
				if m.Expires != 0 {
					d.Expires = time.Unix(0, m.Expires)
				}
				ds = append(ds, d)
			}
			if err := ix.ReplaceAll(ds); err != nil {
				t.Fatal(err)
			}
		default:
			now += int64(r.IntN(3))
		}
		checkAgainstModel(t, ix, ref, r, now+int64(r.IntN(7))-3, 20)
	}
}

// TestIndexConcurrent runs readers against writers that churn exact
// addresses (so attr ids and table slots are recycled all the time), CIDRs,
// sweeps and a resync, and checks that every match readers see is a
// decision that really was stored: reasons name their own prefix.
func TestIndexConcurrent(t *testing.T) {
	ops := 40000
	if testing.Short() || raceEnabled {
		ops = 10000
	}
	ix := NewIndex()
	reasonFor := func(p netip.Prefix, gen int) string { return fmt.Sprintf("%s#%d", p, gen) }
	var stable []Decision
	for i := range 500 {
		a := netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)})
		stable = append(stable, mkDecision(t, a.String(), ActionBlock, reasonFor(netip.PrefixFrom(a, 32), 0), 0))
	}
	stable = append(stable, mkDecision(t, "198.18.0.0/15", ActionTarpit, reasonFor(mustPrefix(t, "198.18.0.0/15"), 0), 0))
	if err := ix.ReplaceAll(stable); err != nil {
		t.Fatal(err)
	}

	var done atomic.Bool
	var readers, writers sync.WaitGroup
	check := func(a netip.Addr, m Match, ok bool) error {
		if !ok {
			return nil
		}
		if !m.Prefix.Contains(a.Unmap()) {
			return fmt.Errorf("Lookup(%s) returned %s, which does not contain it", a, m.Prefix)
		}
		if !strings.HasPrefix(m.Reason, m.Prefix.String()+"#") {
			return fmt.Errorf("Lookup(%s) returned %s with reason %q from another decision", a, m.Prefix, m.Reason)
		}
		return nil
	}
	errs := make(chan error, 4)
	for w := range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for !done.Load() {
				i := r.IntN(len(stable) - 1)
				a := stable[i].Value
				m, ok := ix.Lookup(netip.MustParseAddr(a), 1)
				if !ok || m.Reason != stable[i].Reason {
					errs <- fmt.Errorf("stable %s: got %+v, %v", a, m, ok)
					return
				}
				for _, a := range []netip.Addr{
					netip.AddrFrom4([4]byte{10, 0, byte(r.IntN(8)), byte(r.IntN(256))}),
					netip.AddrFrom16([16]byte{0x20, 1, 0xd, 0xb8, 14: byte(r.IntN(8)), 15: byte(r.IntN(256))}),
					netip.AddrFrom4([4]byte{172, 16, byte(r.IntN(64)), byte(r.IntN(256))}),
				} {
					m, ok := ix.Lookup(a, 1)
					if err := check(a, m, ok); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	writer := func(seed uint64, body func(r *rand.Rand, gen int)) {
		writers.Add(1)
		go func() {
			defer writers.Done()
			r := rand.New(rand.NewPCG(seed, 9))
			for gen := 1; gen <= ops; gen++ {
				body(r, gen)
			}
		}()
	}
	upsert := func(p netip.Prefix, gen int, exp int64) {
		d := Decision{Action: ActionBlock, Reason: reasonFor(p, gen), Source: "churn"}
		d.SetPrefix(p)
		if exp != 0 {
			d.Expires = time.Unix(0, exp)
		}
		if err := ix.Upsert(d); err != nil {
			errs <- err
		}
	}
	writer(1, func(r *rand.Rand, gen int) {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(r.IntN(8)), byte(r.IntN(256))}), 32)
		if r.IntN(3) == 0 {
			ix.Delete(p)
		} else {
			upsert(p, gen, int64(r.IntN(3)))
		}
	})
	writer(2, func(r *rand.Rand, gen int) {
		p := netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 1, 0xd, 0xb8, 14: byte(r.IntN(8)), 15: byte(r.IntN(256))}), 128)
		if r.IntN(3) == 0 {
			ix.Delete(p)
		} else {
			upsert(p, gen, int64(r.IntN(3)))
		}
	})
	writer(3, func(r *rand.Rand, gen int) {
		if gen%20 != 0 {
			return
		}
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 16, byte(r.IntN(64)), 0}), 18+r.IntN(7)).Masked()
		if r.IntN(3) == 0 {
			ix.Delete(p)
		} else {
			upsert(p, gen, int64(r.IntN(3)))
		}
	})
	writer(4, func(r *rand.Rand, gen int) {
		switch {
		case gen%100 == 0:
			ix.Sweep(2)
		case gen == ops/2:
			if err := ix.ReplaceAll(stable); err != nil {
				errs <- err
			}
		}
	})
	writers.Wait()
	done.Store(true)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestIndexManyCIDRs checks the compiled CIDR snapshot with the first-level
// tables in use, probing the edges of every prefix.
func TestIndexManyCIDRs(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	ref := newRefIndex()
	var ds []Decision
	for range 800 {
		var p netip.Prefix
		if r.IntN(2) == 0 {
			// Clustered so that prefixes nest and share 16-bit buckets.
			a := netip.AddrFrom4([4]byte{byte(10 + r.IntN(3)), byte(r.IntN(4)), byte(r.IntN(256)), byte(r.IntN(256))})
			p = netip.PrefixFrom(a, 8+r.IntN(24)).Masked()
		} else {
			a := netip.AddrFrom16([16]byte{0x20, 0x01, byte(r.IntN(3)), byte(r.IntN(256)), 4: byte(r.IntN(4)), 15: byte(r.IntN(256))})
			p = netip.PrefixFrom(a, 16+r.IntN(112)).Masked()
		}
		var exp int64
		if r.IntN(4) == 0 {
			exp = int64(1 + r.IntN(10))
		}
		d := mkDecision(t, p.String(), ActionBlock, p.String(), exp)
		ds = append(ds, d)
		ref.upsert(d)
	}
	ix := NewIndex()
	if err := ix.ReplaceAll(ds); err != nil {
		t.Fatal(err)
	}
	snap := ix.st.Load().cidrs.snap.Load()
	if snap.v4.top == nil || snap.v6.top == nil {
		t.Fatal("fixture too small to use the first-level tables")
	}
	check := func(stage string) {
		t.Helper()
		for p := range ref.m {
			first, last := prefixRange(p)
			for _, u := range []u128{first, last, first.addOne(), last.addOne(), {first.hi, first.lo - 1}} {
				a := u.addr6()
				if p.Addr().Is4() {
					a = addrFrom4(uint32(u.lo))
				}
				for _, now := range []int64{0, 5} {
					got, gok := ix.Lookup(a, now)
					want, wok := ref.lookup(a, now)
					if gok != wok || got != want {
						t.Fatalf("%s: Lookup(%s, %d) = %+v, %v; model says %+v, %v", stage, a, now, got, gok, want, wok)
					}
				}
			}
		}
	}
	check("after ReplaceAll")

	// Single changes take the incremental rebuild path.
	for i := range 60 {
		d := ds[r.IntN(len(ds))]
		p := mustPrefix(t, d.Value)
		if i%2 == 0 {
			ix.Delete(p)
			delete(ref.m, p)
			continue
		}
		d.Reason = "changed"
		mustUpsert(t, ix, d)
		ref.upsert(d)
		child := netip.PrefixFrom(p.Addr(), min(p.Bits()+1+r.IntN(4), p.Addr().BitLen()))
		nd := mkDecision(t, child.String(), ActionChallenge, "added", 0)
		mustUpsert(t, ix, nd)
		ref.upsert(nd)
	}
	check("after single changes")
	ix.Sweep(5)
	ref.sweep(5)
	check("after Sweep")
}
