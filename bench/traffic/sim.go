package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// family is a simulator ground-truth label.
type family string

const (
	famPeople      family = "people"
	famFeeds       family = "feed-readers"
	famPreviews    family = "link-previews"
	famVerified    family = "verified-crawlers"
	famImpostors   family = "impostor-crawlers"
	famAI          family = "ai-crawlers"
	famLibraries   family = "http-library-scrapers"
	famStealth     family = "stealth-scrapers"
	famDistributed family = "distributed-stealth"
	famTrap        family = "trap-followers"
)

// families in report order.
var families = []family{famPeople, famFeeds, famPreviews, famVerified, famImpostors, famAI, famLibraries, famStealth, famDistributed, famTrap}

// counts is how many clients of each family a run simulates.
type counts map[family]int

// config is one simulator run.
type config struct {
	Target        string        // host:port of the edge's public listener
	HostHeader    string        // Host header clients send
	TimeScale     float64       // real-world waits are multiplied by this
	Duration      time.Duration // wall-clock bound of the run
	Seed          uint64
	Counts        counts
	Concurrency   int           // clients in flight at once
	Timeout       time.Duration // per request; slower answers count as tarpit
	Classifier    classifier
	Data          crawlerData
	GroupLimit    int           // distributed group stops after this many requests
	GroupSubnets  int           // the group's /24s
	GroupInterval time.Duration // median pause of each group address, wall clock (not scaled)
}

// clientRec is one simulated client's ground truth and what happened to it.
type clientRec struct {
	Family   family        `json:"family"`
	Kind     string        `json:"kind"`
	Addr     netip.Addr    `json:"addr"`
	Requests int           `json:"requests"`
	Counts   verdictCounts `json:"counts"`
	Stopped  bool          `json:"stopped"`
	Stop     verdict       `json:"stop_verdict"`
	// Through counts the content requests (robots.txt excluded) the edge
	// allowed before the stop; for clients never stopped, all of them.
	Through int `json:"through"`
	// GroupSeq is the distributed group's request count when this address
	// was stopped.
	GroupSeq       int    `json:"group_seq,omitempty"`
	HiddenLinks    int    `json:"hidden_links,omitempty"`
	Decision       string `json:"decision,omitempty"` // action of a stored decision covering Addr
	StopByDecision bool   `json:"stop_by_decision,omitempty"`
	Errors         int    `json:"errors,omitempty"`
}

func (r *clientRec) ever(v verdict) bool { return r.Counts[v] > 0 }

// sim runs clients against the edge.
type sim struct {
	cfg     config
	seeds   seedPages
	mu      sync.Mutex
	clients []*clientRec
}

// seedPages is what the simulator knows of the site before clients start:
// entry pages and feeds, found by parsing the home page.
type seedPages struct {
	Pages []string
	Feeds []string
}

func (s *sim) add(r *clientRec) *clientRec {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients = append(s.clients, r)
	return r
}

// scaleFloor is the shortest wait the time scale produces. Waits up to it
// (a scraper's pacing between requests) stay real, so that rate-based
// defenses see real request rates; longer ones (think time, polling) are
// compressed, but not below it. The mapping keeps the order of waits.
const scaleFloor = time.Second

// scaled maps a real-world wait to the run's.
func (s *sim) scaled(realWorld time.Duration) time.Duration {
	if realWorld <= scaleFloor {
		return realWorld
	}
	return max(scaleFloor, time.Duration(float64(realWorld)*s.cfg.TimeScale))
}

// wait sleeps a real-world duration scaled to the run.
func (s *sim) wait(ctx context.Context, realWorld time.Duration) bool {
	return s.sleep(ctx, s.scaled(realWorld))
}

// sleep waits d of wall-clock time, or until ctx ends.
func (s *sim) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// visitor is one client's connection and state.
type visitor struct {
	s       *sim
	rec     *clientRec
	conn    *rawConn
	rng     *rand.Rand
	cookies map[string]string
	xff     string
	group   *group
}

const maxCookies = 32

func (s *sim) newVisitor(rec *clientRec, seed uint64) *visitor {
	return &visitor{
		s:       s,
		rec:     rec,
		conn:    newRawConn(s.cfg.Target, s.cfg.Timeout),
		rng:     rand.New(rand.NewPCG(s.cfg.Seed, seed)),
		cookies: make(map[string]string),
		xff:     rec.Addr.String(),
	}
}

func (v *visitor) close() { v.conn.Close() }

func (v *visitor) cookieHeader() string {
	if len(v.cookies) == 0 {
		return ""
	}
	parts := make([]string, 0, len(v.cookies))
	for k, val := range v.cookies {
		parts = append(parts, k+"="+val)
	}
	return strings.Join(parts, "; ")
}

// get sends one request and books its verdict. It reports the response and
// whether the client may go on by the given stop rule.
func (v *visitor) get(ctx context.Context, path string, hs []header) (response, verdict) {
	// The edge's trusted proxy appends the client address last.
	hs = append(hs, header{"X-Forwarded-For", v.xff})
	resp, err := v.conn.Do(ctx, request{Method: http.MethodGet, Path: path, Headers: hs})
	if ctx.Err() != nil {
		return resp, verdictError
	}
	rec := v.rec
	rec.Requests++
	vd := verdictError
	if err == nil {
		vd = v.s.cfg.Classifier.classify(resp)
		if resp.Header != nil {
			for _, c := range (&http.Response{Header: resp.Header}).Cookies() {
				if len(v.cookies) < maxCookies || v.cookies[c.Name] != "" {
					v.cookies[c.Name] = c.Value
				}
			}
		}
	} else {
		rec.Errors++
	}
	rec.Counts[vd]++
	seq := 0
	if v.group != nil {
		seq = int(v.group.seq.Add(1))
	}
	switch {
	case vd == verdictAllow && !rec.Stopped && path != "/robots.txt":
		rec.Through++
	case vd != verdictAllow && vd != verdictError && !rec.Stopped:
		rec.Stopped, rec.Stop, rec.GroupSeq = true, vd, seq
	}
	return resp, vd
}

// retryAfter reads Retry-After seconds, defaulting to a minute.
func retryAfter(r response) time.Duration {
	if r.Header != nil {
		if n, err := strconv.Atoi(r.Header.Get("Retry-After")); err == nil && n >= 0 {
			return time.Duration(min(n, 3600)) * time.Second
		}
	}
	return time.Minute
}

// group is a distributed scraper's shared state.
type group struct {
	seq      atomic.Int64
	frontier *frontier
}

// lognormal draws a duration with the given median and spread (sigma),
// clamped to [lo, hi]: think times are heavy-tailed.
func lognormal(rng *rand.Rand, median time.Duration, sigma float64, lo, hi time.Duration) time.Duration {
	d := time.Duration(float64(median) * math.Exp(sigma*rng.NormFloat64()))
	return max(lo, min(hi, d))
}

// run starts every client and waits for them, or for the deadline.
func (s *sim) run(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Duration)
	defer cancel()
	if err := s.discover(ctx); err != nil {
		return err
	}
	var avoid []netip.Prefix
	for _, ps := range s.cfg.Data.Ranges {
		avoid = append(avoid, ps...)
	}
	pool := newAddrPool(s.cfg.Seed, avoid)
	sem := make(chan struct{}, max(1, s.cfg.Concurrency))
	var wg sync.WaitGroup
	launch := func(startWithin float64, rec *clientRec, seed uint64, fn func(context.Context, *visitor)) {
		s.launch(ctx, &wg, sem, startWithin, rec, seed, fn)
	}
	var seed uint64
	next := func() uint64 { seed++; return seed }
	for _, f := range families {
		n := s.cfg.Counts[f]
		switch f {
		case famDistributed:
			s.launchGroup(ctx, &wg, pool, n, next)
			continue
		case famVerified:
			for i := range n {
				c := verifiedCrawlers[i%len(verifiedCrawlers)]
				addr, ok := s.crawlerAddr(pool, c.RangeFile, i)
				if !ok {
					return fmt.Errorf("no published ranges for %s in the crawler data", c.RangeFile)
				}
				rec := &clientRec{Family: f, Kind: c.Name, Addr: addr}
				launch(0.3, rec, next(), func(ctx context.Context, v *visitor) { s.runCrawler(ctx, v, c.UA, true) })
			}
			continue
		}
		for range n {
			rec := &clientRec{Family: f, Addr: pool.residential()}
			sd := next()
			switch f {
			case famPeople:
				launch(0.6, rec, sd, s.runPerson)
			case famFeeds:
				launch(0.3, rec, sd, s.runFeedReader)
			case famPreviews:
				launch(0.6, rec, sd, s.runPreview)
			case famImpostors:
				c := verifiedCrawlers[int(sd)%len(verifiedCrawlers)]
				rec.Kind = c.Name
				launch(0.3, rec, sd, func(ctx context.Context, v *visitor) { s.runCrawler(ctx, v, c.UA, false) })
			case famAI:
				launch(0.3, rec, sd, s.runAICrawler)
			case famLibraries:
				launch(0.3, rec, sd, s.runLibrary)
			case famStealth:
				launch(0.3, rec, sd, s.runStealth)
			case famTrap:
				launch(0.3, rec, sd, s.runTrapFollower)
			}
		}
	}
	wg.Wait()
	return nil
}

// crawlerAddr picks an address inside the crawler's published ranges,
// preferring IPv4, spread over the prefixes.
func (s *sim) crawlerAddr(pool *addrPool, file string, i int) (netip.Addr, bool) {
	ps := s.cfg.Data.Ranges[file]
	var v4 []netip.Prefix
	for _, p := range ps {
		if p.Addr().Is4() {
			v4 = append(v4, p)
		}
	}
	if len(v4) > 0 {
		ps = v4
	}
	for j := range len(ps) {
		if a, ok := pool.inPrefix(ps[(i*7+j)%len(ps)]); ok {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// discover fetches the home page once, as a setup step outside the scored
// clients, to learn entry pages and feeds from its HTML.
func (s *sim) discover(ctx context.Context) error {
	c := newRawConn(s.cfg.Target, s.cfg.Timeout)
	defer c.Close()
	b := browsers[0].b
	hs := append(b.navigate(navigation{Host: s.cfg.HostHeader, Path: "/", Site: "none", User: true}), header{"X-Forwarded-For", "192.0.2.1"})
	resp, err := c.Do(ctx, request{Path: "/", Headers: hs})
	if err != nil {
		return fmt.Errorf("discover the site: %w", err)
	}
	if resp.Status != http.StatusOK {
		return fmt.Errorf("discover the site: GET / answered %d", resp.Status)
	}
	p := parsePage(resp.Body, "/")
	seen := map[string]bool{}
	for _, l := range p.Links {
		if !l.Hidden && !seen[l.Path] && !strings.Contains(l.Path, ".xml") && !strings.Contains(l.Path, ".txt") {
			seen[l.Path] = true
			s.seeds.Pages = append(s.seeds.Pages, l.Path)
		}
	}
	s.seeds.Feeds = p.Feeds
	if len(s.seeds.Pages) == 0 {
		s.seeds.Pages = []string{"/"}
	}
	return nil
}

// launch runs fn for rec after a random delay within the first startWithin
// share of the run. With a semaphore, at most its capacity run at once.
func (s *sim) launch(ctx context.Context, wg *sync.WaitGroup, sem chan struct{}, startWithin float64, rec *clientRec, seed uint64, fn func(context.Context, *visitor)) {
	rng := rand.New(rand.NewPCG(s.cfg.Seed, seed^0xa5a5))
	delay := time.Duration(rng.Float64() * startWithin * float64(s.cfg.Duration))
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if sem != nil {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
		}
		v := s.newVisitor(s.add(rec), seed)
		defer v.close()
		fn(ctx, v)
	}()
}
