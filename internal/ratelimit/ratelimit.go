// Package ratelimit limits request rates per client IP and per subnet in
// memory that does not grow with the number of clients.
//
// Each limit is a table of fixed size, allocated once: 4-way set-associative
// buckets of 16-byte entries, indexed by a hash of the address (or subnet)
// keyed with a secret drawn at random for each table, so that attackers
// cannot aim their addresses at one bucket. An entry holds a 64-bit key
// hash and the state of a GCRA limiter (the "theoretical arrival time"),
// which is equivalent to a token bucket and needs no other field. IPv6
// clients are counted per /64 by default (Config.IPv6HostBits).
//
// # Table pressure
//
// When a new key finds its bucket full it takes the slot of the entry with
// the least remaining debt. An entry whose debt has been paid off (its
// theoretical arrival time has passed) is indistinguishable from an absent
// one, so that costs nothing; only when every entry in the bucket is still
// limiting someone is state lost, and that is counted as an eviction.
// Evictions fail open: the evicted client starts again with a full burst.
// So a client is never denied because of someone else's traffic (apart from
// the subnet limit, which is shared by design, and 64-bit hash collisions);
// under extreme pressure, with more live flooders than slots, flooders get
// some extra requests through instead. A flooder has large debt and is the
// last to be evicted, so a flood of many one-off addresses does not free it.
package ratelimit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"time"
)

// Scope names a limit in a Result.
const (
	ScopeIP     = "ip"
	ScopeSubnet = "subnet"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultIPv4SubnetBits = 24
	DefaultIPv6SubnetBits = 48
	DefaultIPv6HostBits   = 64
	DefaultSlots          = 1 << 16
)

// maxSlots bounds a table at 64 Mi entries (1 GiB); anything near it is a
// configuration mistake.
const maxSlots = 1 << 26

// Rate allows Requests per Per on average, and up to Burst at once. A zero
// Rate (Requests == 0) disables the limit. Burst 0 means Requests.
type Rate struct {
	Requests int
	Per      time.Duration
	Burst    int
}

// Config configures a Limiter.
type Config struct {
	PerIP, PerSubnet Rate
	// Subnet sizes for PerSubnet; 0 means 24 and 48.
	IPv4SubnetBits, IPv6SubnetBits int
	// IPv6HostBits is the prefix that PerIP treats as one IPv6 client; 0
	// means 64. A host is usually given a whole /64 and can rotate through
	// it freely, so counting single IPv6 addresses would let it dodge the
	// limit (and churn the table). 128 counts single addresses.
	IPv6HostBits int
	// Slots is the number of entries per table, a power of two; 0 means
	// 65536. Each slot takes 16 bytes.
	Slots int
}

// Result is the outcome of Allow or Peek.
type Result struct {
	Allowed bool
	// Scope is ScopeIP or ScopeSubnet when denied: the first limit that
	// denied. Empty when allowed.
	Scope string
	// RetryAfter is how long until a request would be allowed by every
	// limit. Zero when allowed.
	RetryAfter time.Duration
	// Count is how many requests are counted against the deciding limit's
	// burst (the denying one, else the per-IP one, else the per-subnet
	// one), including this request if it was counted.
	Count int
}

// Stats describes table occupancy, for metrics.
type Stats struct {
	Slots      int // entries per table
	IP, Subnet TableStats
}

// TableStats describes one table. Counters only grow.
type TableStats struct {
	Used       int    // slots holding an entry, live or paid off
	Collisions uint64 // new keys that found their bucket full and took a slot
	Evictions  uint64 // of those, slots whose previous key was still limited
}

// Limiter enforces per-IP and per-subnet rates. It is safe for concurrent
// use.
type Limiter struct {
	ip, subnet *table // nil when the limit is disabled
	slots      int
	hostMask   mask // what PerIP counts as one client
	subnetMask mask
}

// mask reduces an address to the prefix a limit counts it under.
type mask struct {
	v4         uint32
	v6hi, v6lo uint64
}

func newMask(bits4, bits6 int) mask {
	m := mask{v4: ^uint32(0) << (32 - bits4)}
	if bits6 <= 64 {
		m.v6hi = ^uint64(0) << (64 - bits6)
	} else {
		m.v6hi, m.v6lo = ^uint64(0), ^uint64(0)<<(128-bits6)
	}
	return m
}

// key masks addr and returns it as two words. IPv4 addresses are keyed in
// their IPv4-mapped form, which no masked IPv6 address can equal: that
// would take an IPv4-mapped IPv6 address, and those are unmapped before
// they get here.
func (m mask) key(addr netip.Addr) (hi, lo uint64) {
	if addr.Is4() {
		a := addr.As4()
		return 0, 0xffff<<32 | uint64(binary.BigEndian.Uint32(a[:])&m.v4)
	}
	a := addr.As16()
	return binary.BigEndian.Uint64(a[:8]) & m.v6hi, binary.BigEndian.Uint64(a[8:]) & m.v6lo
}

// New returns a Limiter with all its memory allocated.
func New(cfg Config) (*Limiter, error) {
	if cfg.IPv4SubnetBits == 0 {
		cfg.IPv4SubnetBits = DefaultIPv4SubnetBits
	}
	if cfg.IPv6SubnetBits == 0 {
		cfg.IPv6SubnetBits = DefaultIPv6SubnetBits
	}
	if cfg.IPv6HostBits == 0 {
		cfg.IPv6HostBits = DefaultIPv6HostBits
	}
	if cfg.Slots == 0 {
		cfg.Slots = DefaultSlots
	}
	var errs []error
	if b := cfg.IPv4SubnetBits; b < 1 || b > 32 {
		errs = append(errs, fmt.Errorf("ipv4 subnet bits %d: want 1 to 32", b))
	}
	if b := cfg.IPv6SubnetBits; b < 1 || b > 128 {
		errs = append(errs, fmt.Errorf("ipv6 subnet bits %d: want 1 to 128", b))
	}
	if b := cfg.IPv6HostBits; b < 1 || b > 128 {
		errs = append(errs, fmt.Errorf("ipv6 host bits %d: want 1 to 128", b))
	}
	if s := cfg.Slots; s < ways || s > maxSlots || s&(s-1) != 0 {
		errs = append(errs, fmt.Errorf("slots %d: want a power of two from %d to %d", s, ways, maxSlots))
	}
	ipRate, err := cfg.PerIP.compile()
	if err != nil {
		errs = append(errs, fmt.Errorf("per-ip rate: %w", err))
	}
	subRate, err := cfg.PerSubnet.compile()
	if err != nil {
		errs = append(errs, fmt.Errorf("per-subnet rate: %w", err))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("ratelimit: %w", errors.Join(errs...))
	}

	l := &Limiter{
		slots:      cfg.Slots,
		hostMask:   newMask(32, cfg.IPv6HostBits),
		subnetMask: newMask(cfg.IPv4SubnetBits, cfg.IPv6SubnetBits),
	}
	if ipRate.interval > 0 {
		l.ip = newTable(cfg.Slots, ipRate)
	}
	if subRate.interval > 0 {
		l.subnet = newTable(cfg.Slots, subRate)
	}
	return l, nil
}

// gcra is a compiled Rate: one request costs interval nanoseconds of debt,
// and up to limit nanoseconds of debt are allowed.
type gcra struct {
	interval int64
	limit    int64
}

func (r Rate) compile() (gcra, error) {
	switch {
	case r.Requests == 0 && r.Burst == 0:
		return gcra{}, nil
	case r.Requests <= 0:
		return gcra{}, fmt.Errorf("requests %d: must be positive", r.Requests)
	case r.Per <= 0:
		return gcra{}, fmt.Errorf("per %v: must be positive", r.Per)
	case r.Burst < 0:
		return gcra{}, fmt.Errorf("burst %d: must not be negative", r.Burst)
	}
	interval := int64(r.Per) / int64(r.Requests)
	if interval == 0 {
		return gcra{}, fmt.Errorf("%d requests per %v is more than one per nanosecond", r.Requests, r.Per)
	}
	burst := int64(r.Burst)
	if burst == 0 {
		burst = int64(r.Requests)
	}
	if hi, lo := bits.Mul64(uint64(burst), uint64(interval)); hi != 0 || lo > 1<<62 {
		return gcra{}, fmt.Errorf("burst %d over %v is too long", burst, r.Per)
	}
	return gcra{interval: interval, limit: burst * interval}, nil
}

// Allow counts one request from addr at now (Unix nanoseconds) and reports
// whether it is within both limits. A denied request is not counted. An
// invalid addr is allowed and not counted.
func (l *Limiter) Allow(addr netip.Addr, nowUnixNano int64) Result {
	return l.check(addr, nowUnixNano, true)
}

// Peek reports what Allow would answer, without counting the request.
func (l *Limiter) Peek(addr netip.Addr, nowUnixNano int64) Result {
	return l.check(addr, nowUnixNano, false)
}

func (l *Limiter) check(addr netip.Addr, now int64, commit bool) Result {
	addr = addr.Unmap()
	if !addr.IsValid() {
		return Result{Allowed: true}
	}
	var ip, sub probe
	if l.ip != nil {
		ip = l.ip.lookup(l.ip.hash(l.hostMask.key(addr)), now)
		defer ip.stripe.mu.Unlock()
	}
	if l.subnet != nil {
		sub = l.subnet.lookup(l.subnet.hash(l.subnetMask.key(addr)), now)
		defer sub.stripe.mu.Unlock()
	}

	res := Result{Allowed: ip.allowed() && sub.allowed()}
	if res.Allowed && commit {
		if l.ip != nil {
			l.ip.store(&ip)
		}
		if l.subnet != nil {
			l.subnet.store(&sub)
		}
	}
	switch {
	case !ip.allowed():
		res.Scope, res.Count = ScopeIP, ip.count(false)
	case !sub.allowed():
		res.Scope, res.Count = ScopeSubnet, sub.count(false)
	case l.ip != nil:
		res.Count = ip.count(commit)
	case l.subnet != nil:
		res.Count = sub.count(commit)
	}
	if !res.Allowed {
		res.RetryAfter = time.Duration(max(ip.retryAfter(), sub.retryAfter()))
	}
	return res
}

// Stats returns occupancy and eviction counters summed over both tables.
func (l *Limiter) Stats() Stats {
	s := Stats{Slots: l.slots}
	if l.ip != nil {
		s.IP = l.ip.stats()
	}
	if l.subnet != nil {
		s.Subnet = l.subnet.stats()
	}
	return s
}
