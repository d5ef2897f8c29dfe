package decision

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"
)

// The benchmark fixture is what the edge holds on a busy day: one million
// blocked IPv4 addresses with the same reason and source (an escalation
// wave) and 100,000 CIDRs (90,000 IPv4 of mostly /24, 10,000 IPv6).
const (
	fixtureIPs    = 1_000_000
	fixtureCIDRs4 = 90_000
	fixtureCIDRs6 = 10_000
	// Addresses each lookup benchmark cycles through: a large, randomly
	// spread set of clients rather than one hot address.
	fixtureProbes = 1 << 16
)

type indexFixture struct {
	ix            *Index
	bytesPerEntry float64
	buildTime     time.Duration // making the decisions
	loadTime      time.Duration // ReplaceAll
	exactHits     []netip.Addr  // exact IPv4 entries
	allExactHits  []netip.Addr  // every exact entry, shuffled: nothing stays cached
	cidrHits      []netip.Addr  // IPv4 addresses matched by a CIDR only
	cidrHits6     []netip.Addr
	misses        []netip.Addr
}

// loadIndexFixture builds the fixture once per test binary; it takes a
// couple of seconds.
var loadIndexFixture = sync.OnceValue(buildIndexFixture)

func buildIndexFixture() *indexFixture {
	r := rand.New(rand.NewPCG(11, 12))
	exact := make(map[uint32]struct{}, fixtureIPs)
	for len(exact) < fixtureIPs {
		exact[r.Uint32()] = struct{}{}
	}
	keys := make([]uint32, 0, fixtureIPs)
	for k := range exact {
		keys = append(keys, k)
	}
	exact = nil
	r.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })

	// Measure from here: the decisions below are garbage once loaded.
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	ds := make([]Decision, 0, fixtureIPs+fixtureCIDRs4+fixtureCIDRs6)
	created := time.Unix(1_700_000_000, 0)
	for _, k := range keys {
		ds = append(ds, Decision{Scope: ScopeIP, Value: addrFrom4(k).String(), Action: ActionBlock,
			Reason: "escalation score 0.97 over threshold 0.9", Source: "escalation", Created: created})
	}
	for i := range fixtureCIDRs4 + fixtureCIDRs6 {
		var p netip.Prefix
		if i < fixtureCIDRs4 {
			bits := 24
			switch n := r.IntN(10); {
			case n < 2:
				bits = 16 + r.IntN(8)
			case n < 4:
				bits = 25 + r.IntN(6)
			}
			p = netip.PrefixFrom(addrFrom4(r.Uint32()), bits).Masked()
		} else {
			a := u128{0x2000_0000_0000_0000 | r.Uint64()>>4, r.Uint64()}
			p = netip.PrefixFrom(a.addr6(), 32+r.IntN(33)).Masked()
		}
		d := Decision{Action: ActionTarpit, Reason: "hosting provider range", Source: "import:asn-list", Created: created}
		d.SetPrefix(p)
		ds = append(ds, d)
	}

	built := time.Now()
	ix := NewIndex()
	if err := ix.ReplaceAll(ds); err != nil {
		panic(err) // a bug in the fixture: nothing to recover
	}
	loaded := time.Now()
	ds = nil
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	ips, cidrs := ix.Len()

	f := &indexFixture{
		ix:            ix,
		bytesPerEntry: (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(ips+cidrs),
		buildTime:     built.Sub(start),
		loadTime:      loaded.Sub(built),
	}
	for _, k := range keys {
		f.allExactHits = append(f.allExactHits, addrFrom4(k))
	}
	f.exactHits = f.allExactHits[:fixtureProbes]
	for len(f.cidrHits) < fixtureProbes || len(f.misses) < fixtureProbes || len(f.cidrHits6) < fixtureProbes {
		var a netip.Addr
		if len(f.cidrHits6) < fixtureProbes && r.IntN(4) == 0 {
			a = u128{0x2000_0000_0000_0000 | r.Uint64()>>4, r.Uint64()}.addr6()
		} else {
			a = addrFrom4(r.Uint32())
		}
		m, ok := ix.Lookup(a, 0)
		switch {
		case !ok && a.Is4() && len(f.misses) < fixtureProbes:
			f.misses = append(f.misses, a)
		case ok && a.Is6() && len(f.cidrHits6) < fixtureProbes:
			f.cidrHits6 = append(f.cidrHits6, a)
		case ok && a.Is4() && !m.Prefix.IsSingleIP() && len(f.cidrHits) < fixtureProbes:
			f.cidrHits = append(f.cidrHits, a)
		case !ok && a.Is6():
			// Random IPv6 addresses almost never fall in a CIDR: aim
			// inside one of them instead.
			if e := ix.st.Load().cidrs.snap.Load(); len(e.entries) > 0 {
				ce := e.entries[r.IntN(len(e.entries))]
				if ce.prefix.Addr().Is6() && len(f.cidrHits6) < fixtureProbes {
					first, _ := prefixRange(ce.prefix)
					f.cidrHits6 = append(f.cidrHits6, u128{first.hi, first.lo | r.Uint64()&1}.addr6())
				}
			}
		}
	}
	return f
}

// reportCPU adds a cpu-ns/op metric: the process's CPU time per operation,
// which, unlike ns/op, does not grow while other processes hold the cores.
// Call it before the loop and defer the function it returns.
func reportCPU(b *testing.B) func() {
	start, ok := processCPU()
	return func() {
		end, _ := processCPU()
		if ok && b.N > 0 {
			b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

func skipLargeFixture(tb testing.TB) {
	tb.Helper()
	if testing.Short() || raceEnabled {
		tb.Skip("1.1M-entry fixture: skipped in -short and under the race detector")
	}
}

func BenchmarkIndexLookup(b *testing.B) {
	skipLargeFixture(b)
	f := loadIndexFixture()
	now := time.Now().UnixNano()
	for _, bc := range []struct {
		name  string
		addrs []netip.Addr
		want  bool
	}{
		// 1024 clients: the table lines they touch stay in cache, so this
		// is the cost of the code itself.
		{"exact-hit-hot", f.exactHits[:1024], true},
		{"cidr-hit-hot", f.cidrHits[:1024], true},
		{"miss-hot", f.misses[:1024], false},
		// 65,536 clients spread over the whole index: mostly cache misses.
		{"exact-hit", f.exactHits, true},
		{"cidr-hit", f.cidrHits, true},
		{"miss", f.misses, false},
		{"cidr-hit-v6", f.cidrHits6, true},
		{"exact-hit-all-1M", f.allExactHits, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			mask := len(bc.addrs) - 1
			if bc.name == "exact-hit-all-1M" {
				mask = 1<<19 - 1 // a power of two just above half the entries
			}
			i := 0
			defer reportCPU(b)()
			for b.Loop() {
				if _, ok := f.ix.Lookup(bc.addrs[i&mask], now); ok != bc.want {
					b.Fatalf("Lookup(%s) = %v", bc.addrs[i&mask], ok)
				}
				i++
			}
		})
	}
	b.Run("parallel-mix", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := rand.IntN(fixtureProbes)
			for pb.Next() {
				m := i & (fixtureProbes - 1)
				switch i % 3 {
				case 0:
					f.ix.Lookup(f.exactHits[m], now)
				case 1:
					f.ix.Lookup(f.cidrHits[m], now)
				default:
					f.ix.Lookup(f.misses[m], now)
				}
				i++
			}
		})
	})
}

// BenchmarkIndexMemory reports the heap the 1.1M-entry fixture occupies.
func BenchmarkIndexMemory(b *testing.B) {
	skipLargeFixture(b)
	f := loadIndexFixture()
	for b.Loop() {
	}
	b.ReportMetric(f.bytesPerEntry, "B/entry")
}

func TestIndexMemory(t *testing.T) {
	skipLargeFixture(t)
	f := loadIndexFixture()
	t.Logf("fixture: %v to make the decisions, %v to load them", f.buildTime, f.loadTime)
	t.Logf("%.1f bytes per entry with %d exact IPv4 addresses and %d CIDRs", f.bytesPerEntry, fixtureIPs, fixtureCIDRs4+fixtureCIDRs6)
	if f.bytesPerEntry > 64 {
		t.Errorf("%.1f bytes per entry, budget is 64", f.bytesPerEntry)
	}
}

// BenchmarkIndexUpsertIP measures the escalation engine's write path:
// single addresses arriving into a large index, with a matching delete so
// that the size stays put.
func BenchmarkIndexUpsertIP(b *testing.B) {
	skipLargeFixture(b)
	f := loadIndexFixture()
	ds := make([]Decision, 4096)
	for i := range ds {
		ds[i] = mkDecision(b, addrFrom4(uint32(0xC6336400+i)).String(), ActionBlock, "escalation score 0.97 over threshold 0.9", 0)
		ds[i].Source = "escalation"
	}
	b.ReportAllocs()
	defer reportCPU(b)()
	i := 0
	for b.Loop() {
		d := ds[i&(len(ds)-1)]
		if err := f.ix.Upsert(d); err != nil {
			b.Fatal(err)
		}
		p, _ := d.Prefix()
		f.ix.Delete(p)
		i++
	}
}

// BenchmarkIndexCIDRRebuild measures publishing one CIDR change with the
// fixture's 100,000 CIDRs in place.
func BenchmarkIndexCIDRRebuild(b *testing.B) {
	skipLargeFixture(b)
	f := loadIndexFixture()
	d := mkDecision(b, "203.0.113.0/24", ActionBlock, "r", 0)
	p, _ := d.Prefix()
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		if err := f.ix.Upsert(d); err != nil {
			b.Fatal(err)
		}
		f.ix.Delete(p)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N)/1e6, "ms/rebuild")
}

// BenchmarkBuildSnap measures compiling 100,000 CIDRs from scratch.
func BenchmarkBuildSnap(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	a := &attr{action: ActionBlock, reason: "r", source: "s"}
	entries := make([]cidrEntry, 0, 100_000)
	for i := range cap(entries) {
		var p netip.Prefix
		if i%10 != 0 {
			p = netip.PrefixFrom(addrFrom4(r.Uint32()), 16+r.IntN(15)).Masked()
		} else {
			p = netip.PrefixFrom(u128{0x2000_0000_0000_0000 | r.Uint64()>>4, r.Uint64()}.addr6(), 32+r.IntN(33)).Masked()
		}
		entries = append(entries, cidrEntry{prefix: p, attr: a})
	}
	work := make([]cidrEntry, len(entries))
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		copy(work, entries)
		buildSnap(work)
	}
}
