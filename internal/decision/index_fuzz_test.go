package decision

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

// FuzzIndexUpsert feeds decisions as they arrive from outside (webhook,
// imports) to the index: a bad one must be refused cleanly, a good one must
// be found again by Get and Lookup and leave no trace once deleted.
func FuzzIndexUpsert(f *testing.F) {
	f.Add("ip", "192.0.2.1", uint8(ActionBlock), "scraper", "escalation", int64(0))
	f.Add("cidr", "2001:db8::/32", uint8(ActionTarpit), "", "import", int64(5))
	f.Add("cidr", "::ffff:10.0.0.0/104", uint8(ActionChallenge), "r", "s", int64(-1))
	f.Add("ip", "fe80::1%eth0", uint8(ActionAllow), "r", "s", int64(1<<62))
	f.Fuzz(func(t *testing.T, scope, value string, action uint8, reason, source string, expires int64) {
		d := Decision{Scope: Scope(scope), Value: value, Action: Action(action), Reason: reason, Source: source}
		if expires != 0 {
			d.Expires = time.Unix(0, expires)
		}
		ix := NewIndex()
		if err := ix.Upsert(d); err != nil {
			if ips, cidrs := ix.Len(); ips != 0 || cidrs != 0 {
				t.Fatalf("rejected decision left Len = %d, %d", ips, cidrs)
			}
			return
		}
		p, err := ParsePrefix(value)
		if err != nil {
			t.Fatalf("accepted %q that ParsePrefix rejects: %v", value, err)
		}
		want := Match{Prefix: p, Action: d.Action, Reason: reason, Source: source, Expires: unixNanos(d.Expires)}
		if got, ok := ix.Get(p); !ok || got != want {
			t.Fatalf("Get(%s) = %+v, %v; want %+v", p, got, ok, want)
		}
		for _, now := range []int64{0, want.Expires - 1, want.Expires} {
			got, ok := ix.Lookup(p.Addr(), now)
			if active := isActive(want.Expires, now); ok != active || ok && got != want {
				t.Fatalf("Lookup(%s, %d) = %+v, %v; want %+v, %v", p.Addr(), now, got, ok, want, active)
			}
		}
		if !ix.Delete(p) {
			t.Fatalf("Delete(%s) = false", p)
		}
		if ips, cidrs := ix.Len(); ips != 0 || cidrs != 0 || ix.st.Load().attrs.len() != 0 {
			t.Fatalf("Delete left Len = %d, %d", ips, cidrs)
		}
	})
}

// FuzzIndexOps runs operation sequences decoded from the input against the
// linear-scan model, in a small address space where prefixes nest.
func FuzzIndexOps(f *testing.F) {
	f.Add([]byte{0, 0, 24, 1, 2, 3, 0, 0, 0, 32, 1, 2, 3, 0})
	f.Add([]byte{0, 1, 120, 0, 0, 7, 1, 1, 1, 120, 0, 0, 0, 2, 5})
	f.Fuzz(func(t *testing.T, prog []byte) {
		next := func() byte {
			if len(prog) == 0 {
				return 0
			}
			b := prog[0]
			prog = prog[1:]
			return b
		}
		prefix := func() netip.Prefix {
			fam, bits, x, y := next(), next(), next(), next()
			if fam&1 == 0 {
				return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, x & 1, y, x >> 1}), int(bits%33)).Masked()
			}
			return netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 1, 0xd, 0xb8, 14: x & 3, 15: y}), int(bits%129)).Masked()
		}
		ix, ref := NewIndex(), newRefIndex()
		r := modelRand{rand.New(rand.NewPCG(uint64(len(prog)), 1))}
		now := int64(100)
		for steps := 0; len(prog) > 0 && steps < 200; steps++ {
			switch next() % 4 {
			case 0:
				p, e, reason := prefix(), next(), next()
				d := Decision{Action: ActionBlock, Reason: string('a' + rune(reason%3)), Source: "fuzz"}
				d.SetPrefix(p)
				if e != 0 {
					d.Expires = time.Unix(0, now+int64(e%16)-8)
				}
				if err := ix.Upsert(d); err != nil {
					t.Fatal(err)
				}
				ref.upsert(d)
			case 1:
				p := prefix()
				_, want := ref.m[p]
				delete(ref.m, p)
				if got := ix.Delete(p); got != want {
					t.Fatalf("Delete(%s) = %v, want %v", p, got, want)
				}
			case 2:
				if got, want := ix.Sweep(now), ref.sweep(now); !equalPrefixSets(got, want) {
					t.Fatalf("Sweep(%d) = %v, want %v", now, got, want)
				}
			default:
				now += int64(next() % 4)
			}
			checkAgainstModel(t, ix, ref, r, now, 8)
			for p := range ref.m {
				for _, a := range []netip.Addr{p.Addr(), lastAddr(p)} {
					got, gok := ix.Lookup(a, now)
					want, wok := ref.lookup(a, now)
					if gok != wok || got != want {
						t.Fatalf("Lookup(%s, %d) = %+v, %v; model says %+v, %v", a, now, got, gok, want, wok)
					}
				}
			}
		}
	})
}

func lastAddr(p netip.Prefix) netip.Addr {
	_, last := prefixRange(p)
	if p.Addr().Is4() {
		return addrFrom4(uint32(last.lo))
	}
	return last.addr6()
}
