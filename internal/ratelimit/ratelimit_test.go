package ratelimit

import (
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const sec = int64(time.Second)

func mustNew(t testing.TB, cfg Config) *Limiter {
	t.Helper()
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// v4 returns the i-th address in 10.0.0.0/8, 256 per /24.
func v4(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}

func TestFloodFromOneIP(t *testing.T) {
	l := mustNew(t, Config{PerIP: Rate{Requests: 10, Per: time.Second, Burst: 5}})
	ip := netip.MustParseAddr("203.0.113.9")
	t0 := 1000 * sec

	for i := range 5 {
		if r := l.Allow(ip, t0); !r.Allowed || r.Count != i+1 {
			t.Fatalf("request %d: %+v, want allowed with count %d", i+1, r, i+1)
		}
	}
	for range 100 {
		r := l.Allow(ip, t0)
		if r.Allowed || r.Scope != ScopeIP || r.RetryAfter != 100*time.Millisecond || r.Count != 5 {
			t.Fatalf("flood: %+v, want denied by ip, retry in 100ms, count 5", r)
		}
	}
	// One request's worth of allowance comes back every 100ms.
	if r := l.Allow(ip, t0+99*int64(time.Millisecond)); r.Allowed || r.RetryAfter != time.Millisecond {
		t.Fatalf("at 99ms: %+v", r)
	}
	if r := l.Allow(ip, t0+100*int64(time.Millisecond)); !r.Allowed {
		t.Fatalf("at 100ms: %+v", r)
	}
	if r := l.Allow(ip, t0+100*int64(time.Millisecond)); r.Allowed {
		t.Fatalf("second at 100ms: %+v", r)
	}
	// After a quiet window the full burst is back.
	t1 := t0 + 2*sec
	for i := range 5 {
		if r := l.Allow(ip, t1); !r.Allowed {
			t.Fatalf("after window, request %d: %+v", i+1, r)
		}
	}
	if r := l.Allow(ip, t1); r.Allowed {
		t.Fatalf("burst not enforced after recovery: %+v", r)
	}
	// Another client is unaffected.
	if r := l.Allow(netip.MustParseAddr("203.0.113.10"), t1); !r.Allowed {
		t.Fatalf("neighbour denied: %+v", r)
	}
}

func TestSteadyRateIsAllowed(t *testing.T) {
	l := mustNew(t, Config{PerIP: Rate{Requests: 10, Per: time.Second}})
	ip := netip.MustParseAddr("192.0.2.1")
	// Exactly the configured rate, forever, is fine; a little faster is not.
	for i := range int64(1000) {
		if r := l.Allow(ip, i*sec/10); !r.Allowed {
			t.Fatalf("request %d at the limit rate denied: %+v", i, r)
		}
	}
	denied := 0
	for i := range int64(1000) {
		if !l.Allow(ip, 100*sec+i*sec/11).Allowed {
			denied++
		}
	}
	if denied == 0 {
		t.Fatal("11/s never denied at 10/s")
	}
}

func TestSubnetLimit(t *testing.T) {
	tests := []struct {
		name   string
		addr   func(i int) netip.Addr // i-th address in one subnet
		other  netip.Addr             // in another subnet
		config Config
	}{
		{
			name:   "ipv4 /24",
			addr:   func(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}) },
			other:  netip.MustParseAddr("198.51.101.1"),
			config: Config{},
		},
		{
			name: "ipv6 /48",
			addr: func(i int) netip.Addr {
				return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, byte(i >> 8), byte(i), 15: 1})
			},
			other:  netip.MustParseAddr("2001:db8:2::1"),
			config: Config{},
		},
		{
			name:   "ipv4 /16",
			addr:   func(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 51, byte(i), byte(i)}) },
			other:  netip.MustParseAddr("198.52.0.1"),
			config: Config{IPv4SubnetBits: 16},
		},
		{
			name: "ipv6 /64",
			addr: func(i int) netip.Addr {
				return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 1, 14: byte(i >> 8), 15: byte(i)})
			},
			other:  netip.MustParseAddr("2001:db8:1:2::1"),
			config: Config{IPv6SubnetBits: 64, IPv6HostBits: 128},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.config
			cfg.PerIP = Rate{Requests: 100, Per: time.Second}
			cfg.PerSubnet = Rate{Requests: 50, Per: time.Second}
			l := mustNew(t, cfg)
			now := 5 * sec
			allowed := 0
			for i := range 200 { // 200 distinct addresses, one request each
				r := l.Allow(tc.addr(i), now)
				if r.Allowed {
					allowed++
					continue
				}
				if r.Scope != ScopeSubnet || r.RetryAfter != 20*time.Millisecond || r.Count != 50 {
					t.Fatalf("address %d: %+v, want denied by subnet", i, r)
				}
			}
			if allowed != 50 {
				t.Fatalf("%d allowed, want 50", allowed)
			}
			if r := l.Allow(tc.other, now); !r.Allowed {
				t.Fatalf("other subnet denied: %+v", r)
			}
		})
	}
}

// TestDeniedNotCounted checks that a request denied by one limit does not
// use up the other.
func TestDeniedNotCounted(t *testing.T) {
	l := mustNew(t, Config{
		PerIP:     Rate{Requests: 2, Per: time.Second},
		PerSubnet: Rate{Requests: 1, Per: time.Second},
	})
	a, b := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")
	now := 7 * sec
	if !l.Allow(a, now).Allowed {
		t.Fatal("first request denied")
	}
	for range 10 {
		if r := l.Allow(b, now); r.Allowed || r.Scope != ScopeSubnet {
			t.Fatalf("b: %+v, want denied by subnet", r)
		}
	}
	// b's denied requests were not counted against b's own limit, and did
	// not take a slot.
	if r := l.Peek(b, now+sec); !r.Allowed || r.Count != 0 {
		t.Fatalf("b after a second: %+v", r)
	}
	if s := l.Stats(); s.IP.Used != 1 || s.Subnet.Used != 1 {
		t.Fatalf("stats %+v, want one entry per table", s)
	}
}

func TestBothDenyRetryAfter(t *testing.T) {
	l := mustNew(t, Config{
		PerIP:     Rate{Requests: 1, Per: time.Second},
		PerSubnet: Rate{Requests: 1, Per: 3 * time.Second},
	})
	a := netip.MustParseAddr("198.51.100.1")
	l.Allow(a, 0)
	r := l.Allow(a, 0)
	if r.Allowed || r.Scope != ScopeIP || r.RetryAfter != 3*time.Second {
		t.Fatalf("%+v, want denied by ip, retry after the longer subnet wait", r)
	}
}

func TestPeek(t *testing.T) {
	l := mustNew(t, Config{PerIP: Rate{Requests: 3, Per: time.Second}})
	ip := netip.MustParseAddr("2001:db8::1")
	for range 10 {
		if r := l.Peek(ip, 0); !r.Allowed || r.Count != 0 {
			t.Fatalf("peek on fresh client: %+v", r)
		}
	}
	l.Allow(ip, 0)
	l.Allow(ip, 0)
	if r := l.Peek(ip, 0); !r.Allowed || r.Count != 2 {
		t.Fatalf("peek after 2: %+v", r)
	}
	l.Allow(ip, 0)
	if r := l.Peek(ip, 0); r.Allowed || r.Scope != ScopeIP || r.Count != 3 {
		t.Fatalf("peek after 3: %+v", r)
	}
	if s := l.Stats(); s.IP.Used != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestIPv6HostBits(t *testing.T) {
	a, b := netip.MustParseAddr("2001:db8:1:2::1"), netip.MustParseAddr("2001:db8:1:2:ffff::2")
	other := netip.MustParseAddr("2001:db8:1:3::1")

	// By default a /64 is one client: rotating addresses inside it does
	// not help.
	l := mustNew(t, Config{PerIP: Rate{Requests: 1, Per: time.Hour}})
	l.Allow(a, 0)
	if r := l.Allow(b, 0); r.Allowed || r.Scope != ScopeIP {
		t.Fatalf("same /64: %+v, want denied by ip", r)
	}
	if r := l.Allow(other, 0); !r.Allowed {
		t.Fatalf("other /64: %+v", r)
	}

	l = mustNew(t, Config{PerIP: Rate{Requests: 1, Per: time.Hour}, IPv6HostBits: 128})
	l.Allow(a, 0)
	if r := l.Allow(b, 0); !r.Allowed {
		t.Fatalf("host bits 128: %+v, want separate clients", r)
	}
}

func TestMappedAndZonedAddresses(t *testing.T) {
	l := mustNew(t, Config{PerIP: Rate{Requests: 1, Per: time.Hour}})
	l.Allow(netip.MustParseAddr("192.0.2.1"), 0)
	if r := l.Allow(netip.MustParseAddr("::ffff:192.0.2.1"), 0); r.Allowed {
		t.Fatal("IPv4-mapped form counted separately")
	}
	l.Allow(netip.MustParseAddr("fe80::1"), 0)
	if r := l.Allow(netip.MustParseAddr("fe80::1%eth0"), 0); r.Allowed {
		t.Fatal("zoned form counted separately")
	}
	if r := l.Allow(netip.Addr{}, 0); !r.Allowed {
		t.Fatal("invalid address denied")
	}
}

func TestDisabled(t *testing.T) {
	l := mustNew(t, Config{})
	for i := range 1000 {
		if r := l.Allow(v4(0), int64(i)); !r.Allowed {
			t.Fatalf("no limits configured, but denied: %+v", r)
		}
	}
	if s := l.Stats(); s != (Stats{Slots: DefaultSlots}) {
		t.Fatalf("stats %+v", s)
	}

	l = mustNew(t, Config{PerSubnet: Rate{Requests: 1, Per: time.Second}})
	if r := l.Allow(v4(0), 0); !r.Allowed || r.Count != 1 {
		t.Fatalf("%+v", r)
	}
	if r := l.Allow(v4(1), 0); r.Allowed || r.Scope != ScopeSubnet {
		t.Fatalf("%+v", r)
	}
}

func TestClockStepsBack(t *testing.T) {
	l := mustNew(t, Config{PerIP: Rate{Requests: 1, Per: time.Second, Burst: 2}})
	ip := v4(1)
	l.Allow(ip, 100*sec)
	l.Allow(ip, 100*sec)
	// The wall clock jumps back an hour: the client waits at most one
	// interval, not an hour.
	r := l.Allow(ip, 100*sec-3600*sec)
	if r.Allowed || r.RetryAfter != time.Second {
		t.Fatalf("%+v", r)
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{Slots: 1000}, "slots 1000"},
		{Config{Slots: 2}, "slots 2"},
		{Config{Slots: -4}, "slots -4"},
		{Config{IPv4SubnetBits: 33}, "ipv4 subnet bits 33"},
		{Config{IPv6SubnetBits: -1}, "ipv6 subnet bits -1"},
		{Config{IPv6HostBits: 129}, "ipv6 host bits 129"},
		{Config{PerIP: Rate{Requests: -1, Per: time.Second}}, "per-ip rate: requests -1"},
		{Config{PerIP: Rate{Requests: 1}}, "per-ip rate: per 0s"},
		{Config{PerSubnet: Rate{Requests: 1, Per: time.Second, Burst: -1}}, "per-subnet rate: burst -1"},
		{Config{PerSubnet: Rate{Burst: 5}}, "per-subnet rate: requests 0"},
		{Config{PerIP: Rate{Requests: 2, Per: 1}}, "more than one per nanosecond"},
		{Config{PerIP: Rate{Requests: 1, Per: time.Hour, Burst: 1 << 40}}, "too long"},
	}
	for _, tc := range tests {
		_, err := New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want error containing %q", tc.cfg, err, tc.want)
		}
	}
	// All problems at once.
	_, err := New(Config{Slots: 3, IPv4SubnetBits: 40, PerIP: Rate{Requests: -1}})
	if err == nil || strings.Count(err.Error(), "\n") < 2 {
		t.Errorf("want every error reported, got %v", err)
	}
}

// TestManyAddressesFlatMemory sends one request each from a million
// distinct addresses while a steady client keeps within its limit: memory
// must not grow and the steady client must never be denied.
func TestManyAddressesFlatMemory(t *testing.T) {
	n := 1_000_000
	if testing.Short() || raceEnabled {
		n = 100_000
	}
	l := mustNew(t, Config{
		PerIP:     Rate{Requests: 10, Per: time.Second},
		PerSubnet: Rate{Requests: 100, Per: time.Second},
	})
	steady := netip.MustParseAddr("192.0.2.1")

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	const step = 10 * int64(time.Microsecond) // the flood: 100k requests/s
	now := 1000 * sec
	const steadyEvery = 50_000 // every 0.5 s: 2/s, within its 10/s
	for i := range n {
		now += step
		l.Allow(v4(i*7919%(1<<24)), now) // spread over 16M addresses, 65k /24s
		if i%steadyEvery == 0 {
			if r := l.Allow(steady, now); !r.Allowed {
				t.Fatalf("steady client denied after %d flood requests: %+v", i, r)
			}
		}
	}

	runtime.GC()
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 256<<10 {
		t.Errorf("heap grew by %d bytes over %d addresses", grew, n)
	}
	s := l.Stats()
	if s.IP.Used > s.Slots || s.Subnet.Used > s.Slots {
		t.Errorf("more entries than slots: %+v", s)
	}
	if s.IP.Collisions == 0 {
		t.Errorf("no collisions with %d addresses in %d slots: %+v", n, s.Slots, s)
	}
	t.Logf("stats after %d addresses: %+v", n, s)
}

// TestFlooderSurvivesPressure checks that a flooding client stays limited
// while a stream of one-off addresses churns the table.
func TestFlooderSurvivesPressure(t *testing.T) {
	l := mustNew(t, Config{PerIP: Rate{Requests: 10, Per: time.Second}, Slots: 1024})
	flooder := netip.MustParseAddr("203.0.113.66")
	now := int64(0)
	allowed := 0
	for i := range 200_000 { // 2 s of a 100k/s churn, flooder sends 10%
		now += 10 * int64(time.Microsecond)
		l.Allow(v4(i), now)
		if i%10 == 0 && l.Allow(flooder, now).Allowed {
			allowed++
		}
	}
	// 10/s over 2 s plus the burst of 10.
	if allowed > 30 {
		t.Fatalf("flooder got %d requests through, want about 30", allowed)
	}
}

// TestConcurrentExactCount hammers one address from many goroutines: the
// limit must hold exactly.
func TestConcurrentExactCount(t *testing.T) {
	l := mustNew(t, Config{
		PerIP:     Rate{Requests: 500, Per: time.Hour},
		PerSubnet: Rate{Requests: 1000, Per: time.Hour},
	})
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				// Everyone hits 10.0.0.1; the others share its /24.
				if l.Allow(v4(1), 0).Allowed {
					allowed.Add(1)
				}
				l.Allow(v4(2+g*2000+i), 0)
				l.Peek(v4(1), 0)
				if i%500 == 0 {
					l.Stats()
				}
			}
		})
	}
	wg.Wait()
	if got := allowed.Load(); got != 500 {
		t.Fatalf("%d requests allowed for 10.0.0.1, want exactly 500", got)
	}
}

func TestAllowAllocs(t *testing.T) {
	l := mustNew(t, Config{PerIP: Rate{Requests: 10, Per: time.Second}, PerSubnet: Rate{Requests: 100, Per: time.Second}})
	addrs := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")}
	if n := testing.AllocsPerRun(1000, func() {
		for _, a := range addrs {
			l.Allow(a, 0)
			l.Peek(a, 0)
		}
	}); n != 0 {
		t.Fatalf("%v allocs per run", n)
	}
}

func BenchmarkAllow(b *testing.B) {
	cfg := Config{PerIP: Rate{Requests: 10, Per: time.Second}, PerSubnet: Rate{Requests: 100, Per: time.Second}}
	for _, bc := range []struct {
		name string
		addr func(i int) netip.Addr
	}{
		{"same-ip", func(int) netip.Addr { return v4(1) }},
		{"distinct-ipv4", func(i int) netip.Addr { return v4(i * 7919 % (1 << 24)) }},
		{"distinct-ipv6", func(i int) netip.Addr {
			return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i >> 16), byte(i >> 8), 15: byte(i)})
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l := mustNew(b, cfg)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				l.Allow(bc.addr(i), int64(i)*1000)
			}
		})
		b.Run(bc.name+"-parallel", func(b *testing.B) {
			l := mustNew(b, cfg)
			var seq atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := int(seq.Add(1)) << 20
				for pb.Next() {
					i++
					l.Allow(bc.addr(i), int64(i)*1000)
				}
			})
		})
	}
}

func ExampleLimiter_Allow() {
	l, err := New(Config{PerIP: Rate{Requests: 2, Per: time.Second}})
	if err != nil {
		panic(err)
	}
	client := netip.MustParseAddr("203.0.113.9")
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	for range 3 {
		r := l.Allow(client, now)
		fmt.Println(r.Allowed, r.Scope, r.RetryAfter, r.Count)
	}
	// Output:
	// true  0s 1
	// true  0s 2
	// false ip 500ms 2
}
