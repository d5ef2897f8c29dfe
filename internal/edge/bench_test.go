package edge

import (
	"fmt"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/clientip"
	"github.com/scrapedefense/scrapedefense/internal/config"
	"github.com/scrapedefense/scrapedefense/internal/decision"
	"github.com/scrapedefense/scrapedefense/internal/policy"
)

// Sizes of the decision index in the fast-path benchmark: a busy
// deployment's worth of blocked addresses and networks.
const (
	benchIPDecisions   = 100_000
	benchCIDRDecisions = 10_000
	benchClients       = 4096 // distinct client addresses a benchmark cycles through
)

// fastPathBench is the fast path as the edge builds it from the default
// configuration, behind a load balancer at 10.0.0.1 that the edge trusts.
type fastPathBench struct {
	fp       *FastPath
	resolver *clientip.Resolver
	header   http.Header // browser headers; X-Forwarded-For is rewritten per request
	xff      []string    // one X-Forwarded-For value per client
	ua       string
	want     decision.Action
	wantBy   Stage
}

// fastPathScenario names the kinds of request the benchmark measures.
type fastPathScenario int

const (
	scenarioBrowser  fastPathScenario = iota // allowed, nothing matched
	scenarioGPTBot                           // verified GPTBot, blocked by the policy
	scenarioDecision                         // browser whose address has a block decision
)

var scenarioNames = [...]string{"browser", "gptbot", "decision-hit"}

// newFastPathIndex fills a decision index: IPv4 addresses from 100.64.0.0/10
// and /24 networks from 11.0.0.0/8.
func newFastPathIndex(tb testing.TB) *decision.Index {
	tb.Helper()
	now := time.Now()
	ds := make([]decision.Decision, 0, benchIPDecisions+benchCIDRDecisions)
	base := netip.MustParseAddr("100.64.0.0").As4()
	for i := range benchIPDecisions {
		a := base
		n := uint32(i) * 7 // spread over the /10
		a[1] += byte(n >> 16)
		a[2], a[3] = byte(n>>8), byte(n)
		ds = append(ds, decision.Decision{Scope: decision.ScopeIP, Value: netip.AddrFrom4(a).String(),
			Action: decision.ActionBlock, Reason: "scraper", Source: "escalation", Created: now})
	}
	for i := range benchCIDRDecisions {
		ds = append(ds, decision.Decision{Scope: decision.ScopeCIDR, Value: fmt.Sprintf("11.%d.%d.0/24", i>>8, i&255),
			Action: decision.ActionBlock, Reason: "hosting network", Source: "import", Created: now})
	}
	ix := decision.NewIndex()
	if err := ix.ReplaceAll(ds); err != nil {
		tb.Fatalf("fill index: %v", err)
	}
	if ips, cidrs := ix.Len(); ips != benchIPDecisions || cidrs != benchCIDRDecisions {
		tb.Fatalf("index holds %d IPs and %d CIDRs", ips, cidrs)
	}
	return ix
}

func newFastPathBench(tb testing.TB, ix *decision.Index, sc fastPathScenario) *fastPathBench {
	tb.Helper()
	cfg := config.Default().Edge
	fp, _, err := NewFastPathFromConfig(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	fp.index = ix
	resolver, err := clientip.NewResolver([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, cfg.ClientIPHeaders)
	if err != nil {
		tb.Fatal(err)
	}
	fb := &fastPathBench{fp: fp, resolver: resolver, header: browserHeader(), ua: browserUA}
	fb.xff = make([]string, benchClients)
	for i := range fb.xff {
		var a netip.Addr
		switch sc {
		case scenarioBrowser: // 64 clients in each of 64 /24s of 198.18.0.0/15
			a = netip.AddrFrom4([4]byte{198, 18, byte(i % 64), byte(1 + i/64)})
		case scenarioGPTBot: // OpenAI's published 20.171.206.0/24
			a = netip.AddrFrom4([4]byte{20, 171, 206, byte(i)})
		case scenarioDecision: // the exact-address decisions
			n := uint32(i) * 7 * 13
			a = netip.AddrFrom4([4]byte{100, 64 + byte(n>>16), byte(n >> 8), byte(n)})
		}
		fb.xff[i] = a.String()
	}
	switch sc {
	case scenarioBrowser:
		fb.want, fb.wantBy = decision.ActionAllow, StageNone
	case scenarioGPTBot:
		fb.ua = gptbotUA
		fb.want, fb.wantBy = decision.ActionBlock, StagePolicy
	case scenarioDecision:
		fb.want, fb.wantBy = decision.ActionBlock, StageDecision
	}
	fb.header.Set("User-Agent", fb.ua)
	fb.header.Set("X-Forwarded-For", fb.xff[0])
	return fb
}

// benchStart is the benchmark clock's origin. It advances 1ms per request:
// with 4096 clients in 64 /24s, each client and each subnet stays well
// inside the default rate limits, so the browser scenario measures the
// allowed path in steady state.
var benchStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// decide runs what Handler.ServeHTTP runs before it proxies: peer address,
// client address, request description, fast path. i selects the client.
func (fb *fastPathBench) decide(st *requestState, i int) error {
	fb.header["X-Forwarded-For"][0] = fb.xff[i%benchClients]
	now := benchStart.Add(time.Duration(i) * time.Millisecond)
	peerAP, err := netip.ParseAddrPort("10.0.0.1:41234")
	if err != nil {
		return err
	}
	client, err := fb.resolver.ClientAddr(peerAP.Addr().Unmap(), fb.header)
	if err != nil {
		return err
	}
	st.req = policy.Request{
		Addr:      client,
		Method:    http.MethodGet,
		Host:      "www.example.test",
		Path:      "/articles/2026/03/some-article",
		UserAgent: fb.header.Get("User-Agent"),
		Header:    fb.header,
	}
	fb.fp.Decide(&st.req, now, true, &st.verdict)
	return nil
}

func (fb *fastPathBench) check(tb testing.TB, st *requestState) {
	tb.Helper()
	if v := &st.verdict; v.Action != fb.want || v.Stage != fb.wantBy {
		tb.Fatalf("verdict %s by %s (%s) for %s, want %s by %s", v.Action, v.Stage, v.Rule, st.req.Addr, fb.want, fb.wantBy)
	}
}

// BenchmarkFastPath measures the whole per-request decision of the edge
// for a request arriving through a trusted load balancer.
func BenchmarkFastPath(b *testing.B) {
	ix := newFastPathIndex(b)
	for sc, name := range scenarioNames {
		b.Run(name, func(b *testing.B) {
			fb := newFastPathBench(b, ix, fastPathScenario(sc))
			st := new(requestState)
			b.ReportAllocs()
			i, wrong := 0, 0
			for b.Loop() {
				if err := fb.decide(st, i); err != nil {
					b.Fatal(err)
				}
				if st.verdict.Action != fb.want {
					wrong++
				}
				i++
			}
			if wrong > 0 {
				b.Errorf("%d of %d verdicts were not %s", wrong, i, fb.want)
			}
			fb.check(b, st)
		})
	}
}

// TestFastPathAllocs holds the fast path to its allocation budget: the edge
// decides on every request, so an allocation there is paid at full load.
func TestFastPathAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	if testing.Short() {
		t.Skip("builds a 110k-entry decision index")
	}
	const budget = 2
	ix := newFastPathIndex(t)
	for sc, name := range scenarioNames {
		t.Run(name, func(t *testing.T) {
			fb := newFastPathBench(t, ix, fastPathScenario(sc))
			st := new(requestState)
			i := 0
			var err error
			allocs := testing.AllocsPerRun(2000, func() {
				if e := fb.decide(st, i); e != nil {
					err = e
				}
				i++
			})
			if err != nil {
				t.Fatal(err)
			}
			fb.check(t, st)
			if allocs > budget {
				t.Errorf("%v allocations per request, budget %d", allocs, budget)
			}
		})
	}
}
