package decision

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
)

// TestAddrFilterRebuilds grows an index from empty and churns it, so the
// filter in front of the exact tables is rebuilt many times, and checks
// that no stored address is ever filtered out.
func TestAddrFilterRebuilds(t *testing.T) {
	ix := NewIndex()
	addr := func(i int) netip.Addr {
		if i%2 == 0 {
			return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		}
		return netip.AddrFrom16([16]byte{0x20, 1, 0xd, 0xb8, 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)})
	}
	const n = 20000
	for i := range n {
		mustUpsert(t, ix, mkDecision(t, addr(i).String(), ActionBlock, "r", 0))
	}
	// Delete and re-add half, then let a third of what is left expire.
	for i := 0; i < n; i += 2 {
		ix.Delete(netip.PrefixFrom(addr(i), addr(i).BitLen()))
	}
	for i := 0; i < n; i += 4 {
		mustUpsert(t, ix, mkDecision(t, addr(i).String(), ActionBlock, "r", 0))
	}
	for i := 1; i < n; i += 6 {
		mustUpsert(t, ix, mkDecision(t, addr(i).String(), ActionBlock, "r", 5))
	}
	ix.Sweep(10)
	for i := range n {
		want := (i%2 == 1 && i%6 != 1) || i%4 == 0
		if _, got := ix.Lookup(addr(i), 0); got != want {
			t.Fatalf("Lookup(%s) = %v, want %v", addr(i), got, want)
		}
	}
	st := ix.st.Load()
	for _, f := range []*addrFilter{st.v4.filter.Load(), st.v6.filter.Load()} {
		if f.full() {
			t.Errorf("filter with %d words has %d adds, over its limit %d", len(f.words), f.adds.Load(), f.limit)
		}
	}
}

// TestAddrFilterConcurrent checks that an address is found as soon as its
// Upsert returns, while other writers force filter rebuilds.
func TestAddrFilterConcurrent(t *testing.T) {
	ix := NewIndex()
	var (
		wg   sync.WaitGroup
		done atomic.Bool
	)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !done.Load(); i++ {
				a := netip.AddrFrom4([4]byte{172, byte(16 + w), byte(i >> 8), byte(i)})
				if i%3 == 0 {
					a = netip.AddrFrom16([16]byte{0x20, 1, 0xd, 0xb8, 12: byte(w), 14: byte(i >> 8), 15: byte(i)})
				}
				if err := ix.Upsert(mkDecision(t, a.String(), ActionBlock, "churn", 0)); err != nil {
					t.Error(err)
					return
				}
				ix.Delete(netip.PrefixFrom(a, a.BitLen()))
			}
		}()
	}
	rounds := 20000
	if testing.Short() || raceEnabled {
		rounds = 5000
	}
	for i := range rounds {
		a := netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})
		if i%3 == 0 {
			a = netip.MustParseAddr(fmt.Sprintf("2001:db8:1::%x", i))
		}
		mustUpsert(t, ix, mkDecision(t, a.String(), ActionBlock, "fresh", 0))
		if _, ok := ix.Lookup(a, 0); !ok {
			t.Errorf("Lookup(%s) missed right after Upsert", a)
			break
		}
		if i%1000 == 0 {
			ix.Sweep(0)
		}
	}
	done.Store(true)
	wg.Wait()
}
