// Command pipeline is an open-loop load generator for the AI service's
// signed webhook: it sends events at a constant rate, measures the latency of
// each request from the moment it was scheduled (so that a slow server cannot
// hide its slowness by slowing the sender down: no coordinated omission),
// samples the server's CPU and RSS from /proc, and at the end reads the
// escalation role's histograms to report how long events took from the
// intake to an enforced verdict.
//
//	pipeline -url http://127.0.0.1:8000/webhook -sender bench -secret-file s \
//	  -rate 2000 -batch 20 -duration 30s -metrics http://127.0.0.1:8003/metrics -pid 1234
//
// With -stub-llm ADDR it instead serves a fake OpenAI-compatible chat
// completions endpoint that answers after -stub-delay, for the grey-zone
// scenario.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	var cfg config
	flag.StringVar(&cfg.url, "url", "http://127.0.0.1:8000/webhook", "webhook URL")
	flag.StringVar(&cfg.sender, "sender", "bench", "sender id")
	flag.StringVar(&cfg.secretFile, "secret-file", "", "file holding the sender's secret")
	flag.IntVar(&cfg.rate, "rate", 2000, "events per second")
	flag.IntVar(&cfg.batch, "batch", 1, "events per request")
	flag.DurationVar(&cfg.duration, "duration", 30*time.Second, "how long to send")
	flag.IntVar(&cfg.clients, "clients", 20000, "distinct client addresses in the events")
	flag.StringVar(&cfg.metrics, "metrics", "", "escalation /metrics URL (queue-to-verdict report)")
	flag.IntVar(&cfg.pid, "pid", 0, "server process to sample CPU and RSS of")
	flag.DurationVar(&cfg.drain, "drain", 30*time.Second, "how long to wait for the queue to drain")
	flag.IntVar(&cfg.maxInFlight, "max-in-flight", 2000, "requests in flight at most (later ones wait, their wait counted as latency)")
	stubAddr := flag.String("stub-llm", "", "serve a stub OpenAI-compatible endpoint on this address instead of sending load")
	stubDelay := flag.Duration("stub-delay", time.Second, "stub endpoint's answer delay")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if *stubAddr != "" {
		err = serveStub(ctx, *stubAddr, *stubDelay)
	} else {
		err = runLoad(ctx, cfg, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pipeline:", err)
		os.Exit(1)
	}
}

type config struct {
	url, sender, secretFile, metrics string
	rate, batch, clients, pid        int
	maxInFlight                      int
	duration, drain                  time.Duration
}

// result is one request's outcome.
type result struct {
	latency  time.Duration // from the scheduled send time to the response
	service  time.Duration // from the actual send to the response
	status   int           // 0: transport error
	accepted int
}

func runLoad(ctx context.Context, cfg config, out io.Writer) error {
	secret, err := os.ReadFile(cfg.secretFile)
	if err != nil {
		return fmt.Errorf("read secret: %w", err)
	}
	secret = bytes.TrimSpace(secret)
	if cfg.rate <= 0 || cfg.batch <= 0 || cfg.batch > 500 {
		return errors.New("-rate must be > 0 and -batch 1..500")
	}
	var before histograms
	if cfg.metrics != "" {
		if before, err = scrape(ctx, cfg.metrics); err != nil {
			return fmt.Errorf("scrape before: %w", err)
		}
	}

	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        cfg.maxInFlight,
			MaxIdleConnsPerHost: cfg.maxInFlight,
			IdleConnTimeout:     30 * time.Second,
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		},
	}
	gen := newGenerator(cfg.clients, cfg.sender)
	sampler := startSampler(ctx, cfg.pid)

	reqRate := float64(cfg.rate) / float64(cfg.batch)
	interval := time.Duration(float64(time.Second) / reqRate)
	total := int(cfg.duration / interval)
	results := make([]result, total)
	slots := make(chan struct{}, cfg.maxInFlight)
	var wg sync.WaitGroup
	var sent atomic.Int64

	fmt.Fprintf(out, "sending %d events/s as %.0f requests/s of %d event(s) for %s (%d requests, %d client addresses)\n",
		cfg.rate, reqRate, cfg.batch, cfg.duration, total, cfg.clients)
	start := time.Now()
	// The schedule is fixed in advance: request i is due at start+i*interval
	// whatever happened to the earlier ones (open loop).
	for i := range total {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(d):
			}
		}
		if ctx.Err() != nil {
			results = results[:i]
			break
		}
		body := gen.body(cfg.batch, due)
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			sent.Add(1)
			results[i] = send(ctx, client, cfg, secret, body, due)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := sampler.stop()

	report(out, results, elapsed, cfg)
	fmt.Fprintf(out, "server: cpu mean %.0f%% / max %.0f%% of one core, rss peak %.0f MB (samples %d); load generator cpu mean %.0f%%\n",
		cpu.meanCPU, cpu.maxCPU, cpu.peakRSS/1024/1024, cpu.samples, cpu.selfCPU)

	if cfg.metrics == "" {
		return nil
	}
	var accepted float64
	for _, r := range results {
		accepted += float64(r.accepted)
	}
	after, err := waitDrained(ctx, cfg.metrics, before, accepted, cfg.drain, out)
	if err != nil {
		return err
	}
	reportHistograms(out, before, after)
	return nil
}

func send(ctx context.Context, client *http.Client, cfg config, secret, body []byte, due time.Time) result {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.url, bytes.NewReader(body))
	if err != nil {
		return result{latency: time.Since(due)}
	}
	now := time.Now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Scrapedefense-Sender", cfg.sender)
	req.Header.Set("X-Scrapedefense-Signature", sign(secret, now, body))
	resp, err := client.Do(req)
	if err != nil {
		return result{latency: time.Since(due), service: time.Since(now)}
	}
	var ack struct {
		Accepted int `json:"accepted"`
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	r := result{latency: time.Since(due), service: time.Since(now), status: resp.StatusCode}
	if resp.StatusCode/100 == 2 && json.Unmarshal(data, &ack) == nil {
		r.accepted = ack.Accepted
	}
	return r
}

// sign is the scheme of docs/webhook.md, written out here so that the load
// generator does not depend on the server's packages.
func sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

func report(out io.Writer, results []result, elapsed time.Duration, cfg config) {
	lat := make([]time.Duration, 0, len(results))
	svc := make([]time.Duration, 0, len(results))
	codes := map[int]int{}
	non2xx := 0
	accepted := 0
	for _, r := range results {
		lat = append(lat, r.latency)
		svc = append(svc, r.service)
		codes[r.status]++
		if r.status/100 != 2 {
			non2xx++
		}
		accepted += r.accepted
	}
	slices.Sort(lat)
	slices.Sort(svc)
	fmt.Fprintf(out, "requests %d in %s (%.0f req/s, %.0f events/s accepted), non-2xx %d (%.3f%%), status %v\n",
		len(results), elapsed.Round(time.Millisecond), float64(len(results))/elapsed.Seconds(),
		float64(accepted)/elapsed.Seconds(), non2xx, 100*float64(non2xx)/float64(max(len(results), 1)), codes)
	fmt.Fprintf(out, "latency from schedule: p50 %s p99 %s p99.5 %s p99.9 %s max %s\n",
		pct(lat, 50), pct(lat, 99), pct(lat, 99.5), pct(lat, 99.9), pct(lat, 100))
	fmt.Fprintf(out, "latency from send:     p50 %s p99 %s p99.5 %s p99.9 %s max %s\n",
		pct(svc, 50), pct(svc, 99), pct(svc, 99.5), pct(svc, 99.9), pct(svc, 100))
}

// pct is the nearest-rank percentile of sorted.
func pct(sorted []time.Duration, p float64) string {
	if len(sorted) == 0 {
		return "-"
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	i = min(max(i, 0), len(sorted)-1)
	d := sorted[i]
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}

// ---- events ----

type profile int

const (
	browser profile = iota
	library
	stealth
	aiCrawler
)

// generator hands out the next event of each simulated client, so that a
// browser's page is followed by its assets and a scraper walks pages.
type generator struct {
	mu      sync.Mutex
	rng     *rand.Rand
	ips     []string
	profile []profile
	step    []int
	seq     uint64
	prefix  string
}

func newGenerator(n int, sender string) *generator {
	g := &generator{rng: rand.New(rand.NewPCG(1, 2)), prefix: sender + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)}
	for i := range n {
		var ip string
		if i%10 == 9 {
			ip = fmt.Sprintf("2001:db8:%x:%x::%x", i>>16&0xffff, i>>8&0xff, i&0xff+1)
		} else {
			// 198.18.0.0/15 is set aside for benchmarks (RFC 2544).
			ip = fmt.Sprintf("198.%d.%d.%d", 18+(i>>16)&1, i>>8&0xff, i&0xff)
		}
		g.ips = append(g.ips, ip)
		var p profile
		switch r := g.rng.IntN(100); {
		case r < 60:
			p = browser
		case r < 80:
			p = library
		case r < 95:
			p = stealth
		default:
			p = aiCrawler
		}
		g.profile = append(g.profile, p)
		g.step = append(g.step, 0)
	}
	return g
}

type event struct {
	V                int               `json:"v"`
	ID               string            `json:"id"`
	Kind             string            `json:"kind"`
	Time             string            `json:"time"`
	ClientIP         string            `json:"client_ip"`
	Method           string            `json:"method"`
	Host             string            `json:"host"`
	Path             string            `json:"path"`
	UserAgent        string            `json:"user_agent,omitempty"`
	Status           int               `json:"status"`
	Headers          map[string]string `json:"headers,omitempty"`
	HeaderOrder      []string          `json:"header_order,omitempty"`
	TLSFingerprint   string            `json:"tls_fingerprint,omitempty"`
	RobotsDisallowed bool              `json:"robots_disallowed,omitempty"`
}

const (
	chromeUA  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	firefoxUA = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
	chromeJA4 = "t13d1516h2_8daaf6152771_02713d6af862"
)

var libraryUAs = []string{"python-requests/2.32.3", "curl/8.5.0", "Go-http-client/1.1", "Scrapy/2.11.2 (+https://scrapy.org)", "axios/1.7.7", "node-fetch/1.0"}
var aiUAs = []string{
	"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
	"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)",
	"CCBot/2.0 (https://commoncrawl.org/faq/)",
	"Bytespider",
}
var assets = []struct{ path, dest, accept string }{
	{"/static/app.css", "style", "text/css,*/*;q=0.1"},
	{"/static/app.js", "script", "*/*"},
	{"/static/vendor.js", "script", "*/*"},
	{"/img/hero.webp", "image", "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"},
	{"/fonts/inter.woff2", "font", "*/*"},
	{"/favicon.ico", "image", "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"},
}

func (g *generator) body(n int, at time.Time) []byte {
	g.mu.Lock()
	evs := make([]event, n)
	for i := range evs {
		evs[i] = g.next(at)
	}
	g.mu.Unlock()
	b, _ := json.Marshal(struct {
		V      int     `json:"v"`
		Type   string  `json:"type"`
		Events []event `json:"events"`
	}{1, "events", evs})
	return b
}

func (g *generator) next(at time.Time) event {
	c := g.rng.IntN(len(g.ips))
	g.seq++
	step := g.step[c]
	g.step[c]++
	e := event{
		V: 1, ID: g.prefix + "-" + strconv.FormatUint(g.seq, 36), Kind: "request",
		Time: at.UTC().Format(time.RFC3339Nano), ClientIP: g.ips[c], Method: "GET",
		Host: "www.example.org", Status: 200,
	}
	article := "/articles/" + strconv.Itoa(g.rng.IntN(5000))
	switch g.profile[c] {
	case browser:
		ua := chromeUA
		if c%3 == 0 {
			ua = firefoxUA
		}
		e.UserAgent, e.TLSFingerprint = ua, chromeJA4
		if step%6 == 0 { // a page, then five assets
			e.Path = article
			e.Headers = map[string]string{
				"Accept":          "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
				"Accept-Language": "en-GB,en;q=0.9", "Accept-Encoding": "gzip, deflate, br, zstd",
				"Sec-Fetch-Dest": "document", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "same-origin",
				"Sec-Ch-Ua": `"Chromium";v="131", "Not_A Brand";v="24"`, "Upgrade-Insecure-Requests": "1",
				"Referer": "https://www.example.org/",
			}
			e.HeaderOrder = []string{"host", "sec-ch-ua", "upgrade-insecure-requests", "user-agent", "accept", "sec-fetch-site", "sec-fetch-mode", "sec-fetch-dest", "referer", "accept-encoding", "accept-language"}
		} else {
			a := assets[step%len(assets)]
			e.Path = a.path
			e.Headers = map[string]string{
				"Accept": a.accept, "Accept-Language": "en-GB,en;q=0.9", "Accept-Encoding": "gzip, deflate, br, zstd",
				"Sec-Fetch-Dest": a.dest, "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Site": "same-origin",
				"Referer": "https://www.example.org" + article,
			}
			e.HeaderOrder = []string{"host", "sec-ch-ua", "user-agent", "accept", "sec-fetch-site", "sec-fetch-mode", "sec-fetch-dest", "referer", "accept-encoding", "accept-language"}
		}
	case library:
		e.UserAgent = libraryUAs[c%len(libraryUAs)]
		e.Path = "/articles/" + strconv.Itoa(step)
		e.Headers = map[string]string{"Accept": "*/*", "Accept-Encoding": "gzip, deflate"}
		e.HeaderOrder = []string{"host", "user-agent", "accept-encoding", "accept", "connection"}
		e.TLSFingerprint = "t13d1812h1_85036bcba153_b26ce05bbdd6"
	case stealth:
		// A browser's user agent with a library's habits: pages only, in
		// order, no Sec-Fetch-*, header order of an HTTP library.
		e.UserAgent = chromeUA
		e.Path = "/articles/" + strconv.Itoa(step) + "?page=" + strconv.Itoa(step%7)
		e.Headers = map[string]string{"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "Accept-Language": "en-US,en;q=0.5"}
		e.HeaderOrder = []string{"host", "user-agent", "accept-encoding", "accept", "connection", "accept-language"}
		e.TLSFingerprint = "t13d1812h1_85036bcba153_b26ce05bbdd6"
		e.RobotsDisallowed = step%4 == 0
	case aiCrawler:
		e.UserAgent = aiUAs[c%len(aiUAs)]
		e.Path = "/articles/" + strconv.Itoa(step)
		e.Headers = map[string]string{"Accept": "*/*"}
		e.HeaderOrder = []string{"host", "user-agent", "accept"}
		e.RobotsDisallowed = true
	}
	return e
}

// ---- /proc sampling ----

type usage struct {
	meanCPU, maxCPU, selfCPU, peakRSS float64
	samples                           int
}

type sampler struct {
	stopc chan struct{}
	done  chan usage
}

func startSampler(ctx context.Context, pid int) *sampler {
	s := &sampler{stopc: make(chan struct{}), done: make(chan usage, 1)}
	go func() {
		var u usage
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		start := time.Now()
		selfStart := cpuTicks(os.Getpid())
		first := cpuTicks(pid)
		prev, prevT := first, start
		for {
			select {
			case <-ctx.Done():
			case <-s.stopc:
			case now := <-tick.C:
				if pid > 0 {
					cur := cpuTicks(pid)
					pctNow := 100 * (cur - prev) / clockTicks / now.Sub(prevT).Seconds()
					u.maxCPU = max(u.maxCPU, pctNow)
					prev, prevT = cur, now
					u.peakRSS = max(u.peakRSS, rss(pid))
					u.samples++
				}
				continue
			}
			el := time.Since(start).Seconds()
			if pid > 0 {
				u.meanCPU = 100 * (cpuTicks(pid) - first) / clockTicks / el
			}
			u.selfCPU = 100 * (cpuTicks(os.Getpid()) - selfStart) / clockTicks / el
			s.done <- u
			return
		}
	}()
	return s
}

func (s *sampler) stop() usage { close(s.stopc); return <-s.done }

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

// cpuTicks is utime+stime of pid from /proc/<pid>/stat.
func cpuTicks(pid int) float64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name may hold spaces; fields start after the last ')'.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return ut + st
}

func rss(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.Fields(rest)[0], 64)
			return kb * 1024
		}
	}
	return 0
}

// ---- Prometheus histograms ----

// histograms holds, per metric name, the cumulative bucket counts by upper
// bound, plus plain counters/gauges by full series text.
type histograms struct {
	buckets map[string]map[float64]float64
	series  map[string]float64
}

var wanted = []string{"escalation_queue_to_verdict_seconds", "escalation_decision_seconds"}

func scrape(ctx context.Context, url string) (histograms, error) {
	h := histograms{buckets: map[string]map[float64]float64{}, series: map[string]float64{}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return h, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return h, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			continue
		}
		name := line[:sp]
		h.series[name] = v
		for _, w := range wanted {
			if !strings.HasPrefix(name, w+"_bucket{") {
				continue
			}
			i := strings.Index(name, `le="`)
			if i < 0 {
				continue
			}
			le := name[i+4:]
			le = le[:strings.IndexByte(le, '"')]
			bound := math.Inf(1)
			if le != "+Inf" {
				bound, _ = strconv.ParseFloat(le, 64)
			}
			if h.buckets[w] == nil {
				h.buckets[w] = map[float64]float64{}
			}
			h.buckets[w][bound] += v
		}
	}
	return h, sc.Err()
}

// sum adds the series whose name starts with prefix.
func (h histograms) sum(prefix string) float64 {
	var s float64
	for k, v := range h.series {
		if strings.HasPrefix(k, prefix) {
			s += v
		}
	}
	return s
}

// waitDrained polls until the escalation engine has scored as many events
// as were accepted during the run (or the counter stops moving).
func waitDrained(ctx context.Context, url string, before histograms, accepted float64, limit time.Duration, out io.Writer) (histograms, error) {
	deadline := time.Now().Add(limit)
	var last float64 = -1
	stable := 0
	for {
		h, err := scrape(ctx, url)
		if err != nil {
			return h, fmt.Errorf("scrape after: %w", err)
		}
		scored := h.sum("escalation_events_scored_total") - before.sum("escalation_events_scored_total")
		if scored >= accepted || time.Now().After(deadline) || stable >= 5 {
			fmt.Fprintf(out, "escalation scored %.0f of %.0f accepted events\n", scored, accepted)
			return h, nil
		}
		if scored == last {
			stable++
		} else {
			stable = 0
		}
		last = scored
		select {
		case <-ctx.Done():
			return h, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func reportHistograms(out io.Writer, before, after histograms) {
	for _, name := range wanted {
		delta := map[float64]float64{}
		for b, v := range after.buckets[name] {
			delta[b] = v - before.buckets[name][b]
		}
		bounds := make([]float64, 0, len(delta))
		for b := range delta {
			bounds = append(bounds, b)
		}
		slices.Sort(bounds)
		count := delta[math.Inf(1)]
		fmt.Fprintf(out, "%s: %.0f observations\n", name, count)
		if count == 0 {
			continue
		}
		for _, q := range []float64{50, 99, 99.9} {
			fmt.Fprintf(out, "  p%-5g %s\n", q, quantile(bounds, delta, count, q/100))
		}
	}
	for _, p := range []string{"escalation_greyzone_total", "classifier_requests_total", "escalation_verdicts_total"} {
		var parts []string
		for k, v := range after.series {
			if strings.HasPrefix(k, p+"{") {
				if d := v - before.series[k]; d > 0 {
					parts = append(parts, fmt.Sprintf("%s=%.0f", labels(k), d))
				}
			}
		}
		slices.Sort(parts)
		fmt.Fprintf(out, "%s: %s\n", p, strings.Join(parts, " "))
	}
}

// labels returns the interesting label of a series: the last one, without
// the service label the telemetry package adds.
func labels(series string) string {
	in := series[strings.IndexByte(series, '{')+1 : len(series)-1]
	var keep []string
	for kv := range strings.SplitSeq(in, ",") {
		if !strings.HasPrefix(kv, "service=") {
			keep = append(keep, strings.ReplaceAll(kv, `"`, ""))
		}
	}
	return strings.Join(keep, ",")
}

// quantile estimates the q-quantile from cumulative bucket counts by linear
// interpolation inside the bucket that holds it, and names that bucket: the
// true value lies within its bounds, the interpolation is only a guess.
func quantile(bounds []float64, cum map[float64]float64, count, q float64) string {
	rank := q * count
	lower, lowerCount := 0.0, 0.0
	for _, b := range bounds {
		c := cum[b]
		if c >= rank {
			if math.IsInf(b, 1) {
				return fmt.Sprintf("> %gs (above the last finite bucket)", lower)
			}
			est := lower
			if c > lowerCount {
				est += (b - lower) * (rank - lowerCount) / (c - lowerCount)
			}
			return fmt.Sprintf("≈ %.1fms (in bucket %g–%g s, so ≤ %g ms)", est*1000, lower, b, b*1000)
		}
		lower, lowerCount = b, c
	}
	return "-"
}

// ---- stub LLM ----

// serveStub answers every chat completion with the same bot verdict after
// delay, like a slow hosted model.
func serveStub(ctx context.Context, addr string, delay time.Duration) error {
	var calls atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		calls.Add(1)
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"stub","object":"chat.completion","model":"stub","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"{\"bot\":0.9,\"reason\":\"stub\"}"}}],"usage":{"prompt_tokens":200,"completion_tokens":12,"total_tokens":212}}`)
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		fmt.Fprintf(os.Stderr, "stub llm: %d calls\n", calls.Load())
		_ = srv.Close()
	}()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
