package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// crawlerData is what the simulator reads from the repository's crawler
// lists at run time, so that it stays independent of the defense's code.
type crawlerData struct {
	AIAgents []string                  // ai.robots.txt user-agent tokens
	Ranges   map[string][]netip.Prefix // file stem → published prefixes
}

// Bounds on the lists read, which are files from outside.
const (
	maxAgents         = 10000
	maxPrefixesInFile = 100000
)

// loadCrawlerData reads <dir>/ai-robots-txt/robots.json and
// <dir>/ip-ranges/*.txt.
func loadCrawlerData(dir string) (crawlerData, error) {
	var d crawlerData
	raw, err := os.ReadFile(filepath.Join(dir, "ai-robots-txt", "robots.json"))
	if err != nil {
		return d, fmt.Errorf("read AI agents: %w", err)
	}
	if d.AIAgents, err = parseAgents(raw); err != nil {
		return d, err
	}
	files, err := filepath.Glob(filepath.Join(dir, "ip-ranges", "*.txt"))
	if err != nil {
		return d, fmt.Errorf("list ranges: %w", err)
	}
	d.Ranges = make(map[string][]netip.Prefix, len(files))
	for _, f := range files {
		ps, err := readPrefixes(f)
		if err != nil {
			return d, err
		}
		d.Ranges[strings.TrimSuffix(filepath.Base(f), ".txt")] = ps
	}
	return d, nil
}

// parseAgents returns the keys of the ai.robots.txt JSON object, sorted.
func parseAgents(raw []byte) ([]string, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("parse AI agents: %w", err)
	}
	if len(m) > maxAgents {
		return nil, fmt.Errorf("parse AI agents: %d entries, more than %d", len(m), maxAgents)
	}
	names := make([]string, 0, len(m))
	for k := range m {
		if k = strings.TrimSpace(k); k != "" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	return names, nil
}

func readPrefixes(path string) ([]netip.Prefix, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read ranges: %w", err)
	}
	defer f.Close()
	var out []netip.Prefix
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		p, err := netip.ParsePrefix(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		if len(out) >= maxPrefixesInFile {
			return nil, fmt.Errorf("%s: more than %d prefixes", path, maxPrefixesInFile)
		}
		out = append(out, p.Masked())
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return out, nil
}

// addrPool hands out distinct client addresses. Addresses only ever appear
// in X-Forwarded-For: nothing is sent to them.
type addrPool struct {
	rng      *rand.Rand
	used     map[netip.Addr]bool
	avoid    []netip.Prefix // crawler ranges: an ordinary client is never inside one
	subnets  map[[3]byte]bool
	maxTries int
}

func newAddrPool(seed uint64, avoid []netip.Prefix) *addrPool {
	return &addrPool{
		rng:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		used:     make(map[netip.Addr]bool),
		avoid:    avoid,
		subnets:  make(map[[3]byte]bool),
		maxTries: 1000,
	}
}

// residential returns a fresh public IPv4 address in a /24 no other client
// of the run uses, outside every crawler range, so that clients do not
// share per-subnet budgets by accident.
func (p *addrPool) residential() netip.Addr {
	for range p.maxTries {
		a := [4]byte{byte(1 + p.rng.IntN(222)), byte(p.rng.IntN(256)), byte(p.rng.IntN(256)), byte(1 + p.rng.IntN(254))}
		addr := netip.AddrFrom4(a)
		sub := [3]byte{a[0], a[1], a[2]}
		if p.subnets[sub] || !publicV4(addr) || p.inAvoid(addr) {
			continue
		}
		p.subnets[sub] = true
		p.used[addr] = true
		return addr
	}
	panic("address pool exhausted") // unreachable with the client counts the flags allow
}

// subnet returns a fresh /24 for a distributed group.
func (p *addrPool) subnet() netip.Prefix {
	a := p.residential()
	return netip.PrefixFrom(a, 24).Masked()
}

// inPrefix returns a fresh address inside pfx, or false when pfx is used up.
func (p *addrPool) inPrefix(pfx netip.Prefix) (netip.Addr, bool) {
	for range 64 {
		addr := randomIn(p.rng, pfx)
		if !p.used[addr] {
			p.used[addr] = true
			return addr, true
		}
	}
	return netip.Addr{}, false
}

func (p *addrPool) inAvoid(a netip.Addr) bool {
	for _, pfx := range p.avoid {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

// randomIn picks an address inside pfx, avoiding the all-zeros host of
// IPv4 prefixes shorter than /31.
func randomIn(rng *rand.Rand, pfx netip.Prefix) netip.Addr {
	b := pfx.Addr().AsSlice()
	hostBits := len(b)*8 - pfx.Bits()
	for i := len(b) - 1; i >= 0 && hostBits > 0; i-- {
		n := min(hostBits, 8)
		mask := byte(1<<n - 1)
		b[i] = b[i]&^mask | byte(rng.IntN(256))&mask
		hostBits -= n
	}
	if len(b) == 4 && pfx.Bits() < 31 && b[3] == 0 {
		b[3] = 1
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// publicV4 excludes private, shared, loopback, link-local, documentation
// and multicast space.
func publicV4(a netip.Addr) bool {
	if !a.Is4() || a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsMulticast() || a.IsUnspecified() {
		return false
	}
	for _, p := range reservedV4 {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

var reservedV4 = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
}
