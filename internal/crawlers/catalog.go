package crawlers

import (
	"embed"
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strings"
)

//go:embed data/ai-robots-txt/robots.json data/ip-ranges/*.txt
var embeddedData embed.FS

const embeddedAgentsFile = "data/ai-robots-txt/robots.json"

// MaxUserAgentScan is how many leading bytes of a user agent Identify
// looks at. Real user agents are far shorter; the bound caps the work an
// absurd header can cause.
const MaxUserAgentScan = 2048

// Catalog knows the ai.robots.txt agents and the verifiable crawlers with
// their published address ranges. It is immutable once built, so one
// catalog can serve any number of goroutines; its owner replaces it as a
// whole (for example with atomic.Pointer) when a refresh yields a new one.
type Catalog struct {
	agents   []Agent
	skipped  int
	crawlers []crawler
	matcher  *tokenMatcher
}

type crawler struct {
	spec     *crawlerSpec
	prefixes []netip.Prefix
	set      prefixSet
}

// CrawlerInfo describes a verifiable crawler, for documentation and the UI.
type CrawlerInfo struct {
	// Name is the value Identity.Name takes for this crawler.
	Name     string
	Operator string
	// Tokens are the user-agent tokens that claim this crawler.
	Tokens []string
	// Ranges is the number of published prefixes.
	Ranges int
	// Source is the operator's list the ranges are refreshed from, or ""
	// when the operator publishes none.
	Source string
}

// CatalogStats sums up a catalog.
type CatalogStats struct {
	AIAgents int
	// SkippedAgents counts ai.robots.txt names that could not be used
	// (empty, too long, non-printable, duplicated).
	SkippedAgents int
	Crawlers      int
	Prefixes      int
	// MatcherStates is the size of the user-agent automaton.
	MatcherStates int
}

// Embedded returns the catalog built from the snapshot shipped in the
// binary. It fails only if the shipped data is broken, which the tests
// rule out.
func Embedded() (*Catalog, error) {
	agents, err := embeddedData.ReadFile(embeddedAgentsFile)
	if err != nil {
		return nil, fmt.Errorf("embedded ai agents: %w", err)
	}
	ranges := make(map[string][]byte, len(verifiedCrawlers))
	for _, spec := range verifiedCrawlers {
		b, err := embeddedData.ReadFile(path.Join("data/ip-ranges", spec.file))
		if err != nil {
			return nil, fmt.Errorf("embedded ranges for %s: %w", spec.name, err)
		}
		ranges[spec.name] = b
	}
	return Parse(agents, ranges)
}

// Parse builds a catalog from ai.robots.txt's robots.json and the address
// lists of the verifiable crawlers, keyed by crawler name (see Crawlers).
// Each list may be the operator's JSON or plain text, one prefix a line.
// A crawler missing from ranges is left out of the catalog: its user-agent
// tokens then claim nothing, so no request is called an impostor of it.
func Parse(agentsJSON []byte, ranges map[string][]byte) (*Catalog, error) {
	agents, skipped, err := parseAgents(agentsJSON)
	if err != nil {
		return nil, err
	}
	prefixes := make(map[string][]netip.Prefix, len(ranges))
	for name, data := range ranges {
		if specByName(name) == nil {
			return nil, fmt.Errorf("ranges for unknown crawler %q", name)
		}
		p, _, err := parseRanges(data)
		if err != nil {
			return nil, fmt.Errorf("ranges for %s: %w", name, err)
		}
		prefixes[name] = p
	}
	return build(agents, skipped, prefixes)
}

func specByName(name string) *crawlerSpec {
	for i := range verifiedCrawlers {
		if verifiedCrawlers[i].name == name {
			return &verifiedCrawlers[i]
		}
	}
	return nil
}

// build compiles parsed lists into a catalog. It keeps the slices it is
// given; callers must not modify them afterwards.
func build(agents []Agent, skipped int, prefixes map[string][]netip.Prefix) (*Catalog, error) {
	c := &Catalog{agents: agents, skipped: skipped}
	for i := range verifiedCrawlers {
		spec := &verifiedCrawlers[i]
		p, ok := prefixes[spec.name]
		if !ok {
			continue
		}
		c.crawlers = append(c.crawlers, crawler{spec: spec, prefixes: p, set: newPrefixSet(p)})
	}

	// One pattern per distinct lower-cased token. ai.robots.txt lists some
	// names twice in different case; the first spelling is the one
	// reported. A token can stand for an agent and a crawler at once
	// (GPTBot is both).
	var (
		patterns []string
		meta     []matchPattern
		index    = make(map[string]int)
	)
	for i, a := range agents {
		low := strings.ToLower(a.Name)
		if _, dup := index[low]; dup {
			continue
		}
		index[low] = len(patterns)
		patterns = append(patterns, low)
		meta = append(meta, matchPattern{agent: int32(i), crawler: -1})
	}
	for ci, cr := range c.crawlers {
		for _, tok := range cr.spec.tokens {
			low := strings.ToLower(tok)
			if j, ok := index[low]; ok {
				if meta[j].crawler >= 0 && meta[j].crawler != int32(ci) {
					return nil, fmt.Errorf("token %q claims two crawlers", tok)
				}
				meta[j].crawler = int32(ci)
				continue
			}
			index[low] = len(patterns)
			patterns = append(patterns, low)
			meta = append(meta, matchPattern{agent: -1, crawler: int32(ci)})
		}
	}
	m, err := newTokenMatcher(patterns, meta)
	if err != nil {
		return nil, fmt.Errorf("compiling user-agent tokens: %w", err)
	}
	c.matcher = m
	return c, nil
}

// Identify says which verifiable crawler the user agent claims to be,
// whether addr lies in that crawler's published ranges, and which
// ai.robots.txt agent the user agent names. Tokens match
// case-insensitively as whole words; when several agent names match, the
// longest (most specific) wins, and when several crawlers are claimed, the
// first in the user agent wins. It does not allocate.
func (c *Catalog) Identify(userAgent string, addr netip.Addr) Identity {
	var id Identity
	if c == nil || userAgent == "" {
		return id
	}
	agent, cr := c.matcher.scan(userAgent, MaxUserAgentScan)
	if agent >= 0 {
		id.AIAgent = c.agents[agent].Name
	}
	if cr >= 0 {
		w := &c.crawlers[cr]
		id.Name = w.spec.name
		id.Verified = w.set.contains(addr)
	}
	return id
}

// Verify reports whether addr lies in the published ranges of the named
// crawler; false for a crawler the catalog does not know.
func (c *Catalog) Verify(name string, addr netip.Addr) bool {
	for i := range c.crawlers {
		if c.crawlers[i].spec.name == name {
			return c.crawlers[i].set.contains(addr)
		}
	}
	return false
}

// AIAgents returns the ai.robots.txt agents in the list's order. The slice
// is a copy.
func (c *Catalog) AIAgents() []Agent { return slices.Clone(c.agents) }

// Crawlers describes the verifiable crawlers in the catalog.
func (c *Catalog) Crawlers() []CrawlerInfo {
	out := make([]CrawlerInfo, len(c.crawlers))
	for i, w := range c.crawlers {
		out[i] = CrawlerInfo{
			Name:     w.spec.name,
			Operator: w.spec.operator,
			Tokens:   slices.Clone(w.spec.tokens),
			Ranges:   len(w.prefixes),
			Source:   w.spec.source,
		}
	}
	return out
}

// Prefixes returns a copy of the named crawler's published prefixes, or nil.
func (c *Catalog) Prefixes(name string) []netip.Prefix {
	for _, w := range c.crawlers {
		if w.spec.name == name {
			return slices.Clone(w.prefixes)
		}
	}
	return nil
}

// Stats sums up the catalog.
func (c *Catalog) Stats() CatalogStats {
	s := CatalogStats{
		AIAgents:      len(c.agents),
		SkippedAgents: c.skipped,
		Crawlers:      len(c.crawlers),
		MatcherStates: c.matcher.states(),
	}
	for _, w := range c.crawlers {
		s.Prefixes += len(w.prefixes)
	}
	return s
}
