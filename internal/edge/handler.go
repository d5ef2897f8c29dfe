package edge

import (
	"context"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scrapedefense/scrapedefense/internal/challenge"
	"github.com/scrapedefense/scrapedefense/internal/clientip"
	"github.com/scrapedefense/scrapedefense/internal/decision"
	"github.com/scrapedefense/scrapedefense/internal/events"
	"github.com/scrapedefense/scrapedefense/internal/policy"
	"github.com/scrapedefense/scrapedefense/internal/telemetry"
)

// Error kinds counted in errors_total{service="edge",kind}.
const (
	errBadPeer      = "bad_peer_address"
	errBadForwarded = "bad_forwarded_header"
	errUpstream     = "upstream"
	errClientGone   = "client_gone"
)

// Event fields are clipped tighter than the schema allows: the edge's
// queues hold tens of thousands of events, and a client controls these
// fields. Behaviour needs no more (paths are reduced to templates).
const (
	maxEventPath   = 1 << 10
	maxEventUA     = 512
	maxEventHeader = 256
)

// eventHeaders are the request headers copied into events: enough for the
// escalation engine's consistency checks, never cookies or credentials.
var eventHeaders = []string{
	"Accept", "Accept-Language", "Accept-Encoding", "Referer",
	"Sec-Ch-Ua", "Sec-Ch-Ua-Mobile", "Sec-Ch-Ua-Platform",
	"Sec-Fetch-Site", "Sec-Fetch-Mode", "Sec-Fetch-Dest", "Sec-Fetch-User",
	"Upgrade-Insecure-Requests", "Connection",
}

// Handler is the public edge handler: it decides and then proxies, blocks
// or throttles.
type Handler struct {
	fp          *FastPath
	resolver    *clientip.Resolver
	proxy       *httputil.ReverseProxy
	queue       *events.Queue
	tel         *telemetry.Telemetry
	verdicts    *verdictCounter
	blockStatus int
	blockBody   []byte
	robotsTxt   func() []byte // nil: pass /robots.txt to the upstream
	// tarpit serves the maze (nil: tarpit verdicts are enforced as
	// blocks); trapPrefix is the maze entrance hidden in pages.
	tarpit     func(w http.ResponseWriter, r *http.Request, client netip.Addr)
	trapPrefix string
	// trapLinks, when set, injects a hidden link to trapHref into proxied
	// HTML pages.
	trapLinks func(w io.Writer, href string) io.WriteCloser
	trapHref  string
	// emitAll sends every request to analysis, not only those with a
	// rule or weight: behaviour (pages vs assets, rate, paths) needs them.
	emitAll bool
	chal    *challenge.Service
	// decisionChallengeWeight selects the challenge for decisions with the
	// challenge action, which carry no policy weight.
	decisionChallengeWeight int
	logger                  *slog.Logger
	now                     func() time.Time
}

// verdictCounter caches edge_verdicts_total children: the label set is
// bounded by the policy's rule names, and resolving a child per request
// would allocate.
type verdictCounter struct {
	vec   *prometheus.CounterVec
	cache sync.Map // verdictKey → prometheus.Counter
}

type verdictKey struct {
	action decision.Action
	rule   string
}

func newVerdictCounter(reg prometheus.Registerer) *verdictCounter {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edge_verdicts_total",
		Help: "Verdicts of the edge fast path by action and by the rule or stage that decided.",
	}, []string{"action", "rule"})
	reg.MustRegister(vec)
	return &verdictCounter{vec: vec}
}

func (c *verdictCounter) inc(a decision.Action, rule string) {
	k := verdictKey{a, rule}
	if ctr, ok := c.cache.Load(k); ok {
		ctr.(prometheus.Counter).Inc()
		return
	}
	ctr := c.vec.WithLabelValues(a.String(), rule)
	c.cache.Store(k, ctr)
	ctr.Inc()
}

// reset drops cached children, e.g. after a policy reload renamed rules.
func (c *verdictCounter) reset() {
	c.cache.Clear()
}

var reqPool = sync.Pool{New: func() any { return new(requestState) }}

// requestState is the per-request scratch space, pooled so that deciding
// does not allocate.
type requestState struct {
	req     policy.Request
	verdict Verdict
	info    clientInfo
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := h.now()
	st := reqPool.Get().(*requestState)
	defer reqPool.Put(st)

	peerAP, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		h.tel.Error(errBadPeer)
		h.finish(w, r, start, "bad_request", http.StatusBadRequest, "bad peer address")
		return
	}
	peer := peerAP.Addr().Unmap()
	client, err := h.resolver.ClientAddr(peer, r.Header)
	if err != nil {
		h.tel.Error(errBadForwarded)
		h.finish(w, r, start, "bad_request", http.StatusBadRequest, "malformed forwarding header")
		return
	}

	if strings.HasPrefix(r.URL.Path, challenge.Prefix) {
		h.serveChallengeEndpoint(w, r, client, start)
		return
	}

	st.req = policy.Request{
		Addr:      client,
		Method:    r.Method,
		Host:      r.Host,
		Path:      r.URL.Path,
		UserAgent: r.Header.Get("User-Agent"),
		Header:    r.Header,
	}
	v := &st.verdict
	h.fp.Decide(&st.req, start, true, v)
	h.settleChallenge(r, client, v)
	h.verdicts.inc(v.Action, v.Rule)

	var code int
	switch {
	case h.tarpit != nil && h.trapPrefix != "" && strings.HasPrefix(r.URL.Path, h.trapPrefix) &&
		!v.Crawler.Verified && v.Action != decision.ActionBlock:
		// Only a client that ignored robots.txt and followed a link no
		// person can see arrives here: it enters the maze whatever its
		// score, until the maze's hop limit has it blocked.
		v.Action, v.Stage, v.Rule = decision.ActionTarpit, StageTrap, StageTrap.String()
		code = h.serveObserved(w, r, start, "tarpit", func(w http.ResponseWriter, r *http.Request) { h.tarpit(w, r, client) })
	case v.Action == decision.ActionAllow:
		if h.robotsTxt != nil && r.URL.Path == "/robots.txt" {
			code = h.serveRobots(w, r, start)
			break
		}
		st.info = clientInfo{addr: client.String(), peer: peer.String(), peerTrusted: h.resolver.Trusted(peer)}
		r = r.WithContext(context.WithValue(r.Context(), clientKey{}, &st.info))
		serve := h.proxy.ServeHTTP
		if h.trapLinks != nil {
			serve = h.proxyWithTrapLink
		}
		code = h.serveObserved(w, r, start, "proxy", serve)
	case v.Action == decision.ActionThrottle:
		w.Header().Set("Retry-After", retryAfter(v))
		code = h.finish(w, r, start, "throttle", http.StatusTooManyRequests, "Too many requests. Please slow down.")
	case v.Action == decision.ActionChallenge:
		weight := h.challengeWeight(v)
		code = h.serveObserved(w, r, start, "challenge", func(w http.ResponseWriter, r *http.Request) {
			h.chal.Serve(w, r, client, weight)
		})
	case v.Action == decision.ActionTarpit && h.tarpit != nil:
		code = h.serveObserved(w, r, start, "tarpit", func(w http.ResponseWriter, r *http.Request) { h.tarpit(w, r, client) })
	default:
		// Block, and tarpit when no tarpit is wired: nothing marked as a
		// bot reaches the site.
		code = h.block(w, r, start)
	}
	if h.emitAll || !v.Trivial() {
		h.emit(r, &st.req, v, start, code)
	}
}

// settleChallenge turns a challenge verdict into an allow when the request
// must never be challenged or the client holds a valid pass.
func (h *Handler) settleChallenge(r *http.Request, client netip.Addr, v *Verdict) {
	if v.Action != decision.ActionChallenge {
		return
	}
	switch {
	case h.chal.Exempt(r):
		v.Action, v.Stage, v.Rule = decision.ActionAllow, StageChallengeExempt, StageChallengeExempt.String()
	case h.chal.CheckPass(r, client):
		v.Action, v.Stage, v.Rule = decision.ActionAllow, StageChallengePass, StageChallengePass.String()
	}
}

func (h *Handler) challengeWeight(v *Verdict) int {
	if v.Stage == StageDecision {
		return h.decisionChallengeWeight
	}
	return v.Policy.Weight
}

// serveChallengeEndpoint serves the challenge's own assets and answers
// (verify, no-JS check) for the resolved client.
func (h *Handler) serveChallengeEndpoint(w http.ResponseWriter, r *http.Request, client netip.Addr, start time.Time) {
	h.serveObserved(w, r, start, challenge.Prefix, func(w http.ResponseWriter, r *http.Request) {
		h.chal.ServeEndpoint(w, r, client)
	})
}

// serveObserved runs serve with a status-recording writer and observes the
// request under route with the status serve wrote.
func (h *Handler) serveObserved(w http.ResponseWriter, r *http.Request, start time.Time, route string, serve func(http.ResponseWriter, *http.Request)) int {
	sw := statusWriterPool.Get().(*statusWriter)
	sw.reset(w)
	serve(sw, r)
	code := sw.code
	sw.reset(nil)
	statusWriterPool.Put(sw)
	h.tel.ObserveHTTP(route, r.Method, code, h.now().Sub(start))
	return code
}

// challengeEvent forwards the challenge's outcomes to the analysis queue:
// passes are human labels, failures and no-shows bot signals.
func (h *Handler) challengeEvent(e challenge.Event) {
	if e.Kind == challenge.EventIssued {
		return // the request that got the challenge is an event already
	}
	h.queue.TryPush(events.Event{
		Version:   events.SchemaVersion,
		Time:      e.Time.UTC(),
		ClientIP:  e.ClientIP,
		Method:    events.Clip(e.Method, events.MaxMethodLen),
		Path:      events.Clip(e.Path, maxEventPath),
		UserAgent: events.Clip(e.UserAgent, maxEventUA),
		Kind:      challengeKind(e.Kind),
		Action:    decision.ActionChallenge.String(),
		Stage:     "challenge-" + e.Kind,
		Rule:      e.Reason,
		Source:    "challenge",
	})
}

// challengeKind maps the challenge's outcome to an event kind: a pass is
// evidence of a person, anything else of a bot.
func challengeKind(outcome string) events.Kind {
	if outcome == challenge.EventPassed {
		return events.KindChallengePass
	}
	return events.KindChallengeFail
}

func (h *Handler) block(w http.ResponseWriter, r *http.Request, start time.Time) int {
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	hd.Set("Content-Length", strconv.Itoa(len(h.blockBody)))
	w.WriteHeader(h.blockStatus)
	if r.Method != http.MethodHead {
		_, _ = w.Write(h.blockBody)
	}
	h.tel.ObserveHTTP("block", r.Method, h.blockStatus, h.now().Sub(start))
	return h.blockStatus
}

func (h *Handler) serveRobots(w http.ResponseWriter, r *http.Request, start time.Time) int {
	body := h.robotsTxt()
	hd := w.Header()
	hd.Set("Content-Type", "text/plain; charset=utf-8")
	hd.Set("Cache-Control", "public, max-age=300")
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
	h.tel.ObserveHTTP("/robots.txt", r.Method, http.StatusOK, h.now().Sub(start))
	return http.StatusOK
}

func (h *Handler) finish(w http.ResponseWriter, r *http.Request, start time.Time, route string, code int, msg string) int {
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, msg, code)
	h.tel.ObserveHTTP(route, r.Method, code, h.now().Sub(start))
	return code
}

// emit queues an event for analysis without ever blocking the request.
func (h *Handler) emit(r *http.Request, req *policy.Request, v *Verdict, now time.Time, status int) {
	ev := newEvent(r.Header, req, v, now, "edge")
	ev.Status = status
	ev.HeaderOrder = headerOrder(r.Context())
	switch {
	case v.Stage == StageTrap:
		ev.Kind = events.KindTrap
	case v.Action == decision.ActionTarpit && h.tarpit != nil:
		ev.Kind = events.KindTarpit // served by the maze, not blocked
	}
	h.queue.TryPush(ev)
}

func newEvent(hdr http.Header, req *policy.Request, v *Verdict, now time.Time, source string) events.Event {
	ev := events.Event{
		Version:   events.SchemaVersion,
		Kind:      events.KindRequest,
		Time:      now.UTC(),
		ClientIP:  req.Addr.String(),
		Method:    events.Clip(req.Method, events.MaxMethodLen),
		Host:      events.Clip(req.Host, events.MaxHostLen),
		Path:      events.Clip(req.Path, maxEventPath),
		UserAgent: events.Clip(req.UserAgent, maxEventUA),
		Action:    v.Action.String(),
		Stage:     v.Stage.String(),
		Rule:      v.Rule,
		Weight:    v.Policy.Weight,
		Crawler:   v.Crawler.Name,
		Source:    source,
		// Verified only means something for a claimed crawler.
		CrawlerVerified:  v.Crawler.Claimed() && v.Crawler.Verified,
		RobotsDisallowed: req.Robots != nil && req.Robots.Disallowed(req.UserAgent, req.Path),
		Headers:          make(map[string]string, 4),
	}
	for _, k := range eventHeaders {
		if val := hdr.Get(k); val != "" {
			ev.Headers[k] = events.Clip(val, maxEventHeader)
		}
	}
	for i := 0; i < v.Policy.NMatched && i < len(v.Policy.Matched); i++ {
		ev.Rules = append(ev.Rules, v.Policy.Matched[i].Rule)
	}
	return ev
}

// statusWriter records the status code the proxy wrote. It forwards
// Flush and Unwrap so streaming and WebSocket upgrades keep working.
type statusWriter struct {
	http.ResponseWriter
	code int
}

var statusWriterPool = sync.Pool{New: func() any { return new(statusWriter) }}

func (s *statusWriter) reset(w http.ResponseWriter) { s.ResponseWriter, s.code = w, http.StatusOK }

func (s *statusWriter) WriteHeader(code int) {
	if code >= 200 || code == http.StatusSwitchingProtocols {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// retryAfter is the Retry-After value, in whole seconds, for a throttled
// verdict.
func retryAfter(v *Verdict) string {
	secs := int(math.Ceil(v.Limit.RetryAfter.Seconds()))
	if secs < 1 {
		secs = 1
	}
	return strconv.Itoa(secs)
}
