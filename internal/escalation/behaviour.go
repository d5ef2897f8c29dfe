package escalation

import (
	"math"
	"net/netip"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/events"
)

// observation is what one event told the stages.
type observation struct {
	features featureVec
	certain  bool // heuristics alone decided
	addr     netip.Addr
	// Navigation learning: the transition this event made, if any, and
	// whether the client loads assets like a browser.
	from, to   uint32
	loadsAsset bool
}

// observe runs heuristics, updates the behaviour windows and the client's
// navigation state, and returns the features. Every event is observed,
// certain or not.
func (e *Engine) observe(ev *events.Event) observation {
	var o observation
	class := classify(ev)
	o.certain = heuristics(ev, class, &o.features)
	addr, err := netip.ParseAddr(ev.ClientIP)
	if err != nil {
		return o // no client to keep windows for; heuristics only
	}
	o.addr = addr.Unmap()
	now := e.eventTime(ev).UnixNano()
	e.observeIP(ev, class, now, &o)
	e.observeSubnet(class, now, &o)
	e.observeFingerprint(ev, class, now, &o)
	return o
}

// eventTime trusts the sender's timestamp when it is plausible, so that
// queueing delay does not distort the pace.
func (e *Engine) eventTime(ev *events.Event) time.Time {
	now := e.opts.Now()
	if t := ev.Time; !t.IsZero() && t.Before(now.Add(time.Minute)) && t.After(now.Add(-time.Hour)) {
		return t
	}
	return now
}

// minPages is how many (decayed) pages make ratio features count fully.
const minPages = 10

func (e *Engine) observeIP(ev *events.Event, class requestClass, now int64, o *observation) {
	k := windowKey(o.addr.As16())
	sh, s := e.ips.acquire(&k)
	defer sh.release()
	s.decay(now, e.tau, e.historyTau)

	// History features first, so that the current event's own kind is not
	// counted twice (and training examples do not see their label).
	fv := &o.features
	fv[fTrapHistory] = clamp01(float64(s.traps))
	fv[fFailHistory] = clamp01(float64(s.fails) / 2)
	fv[fPassHistory] = clamp01(float64(s.passes))

	switch ev.Kind {
	case events.KindTrap, events.KindTarpit:
		s.traps++
	case events.KindChallengeFail:
		s.fails++
	case events.KindChallengePass:
		s.passes++
	}
	switch class {
	case classPage:
		s.pages++
		if s.remember(fnvString64(fnvOffset64, ev.Path)) {
			s.distinct++
		}
		if ev.RobotsDisallowed {
			s.robots++
		}
		s.observeGap(now)
		to := templateHash(ev.Path)
		if from := s.lastTemplate; from != 0 {
			o.from, o.to = from, to
			if e.nav.ready(e.opts.NavMinObservations) {
				const alpha = 0.2
				nll := float32(e.nav.surprise(from, to))
				if s.navN == 0 {
					s.navNLL = nll
				} else {
					s.navNLL += alpha * (nll - s.navNLL)
				}
				if s.navN < math.MaxUint16 {
					s.navN++
				}
			}
		}
		s.lastTemplate = to
	case classAsset:
		s.assets++
	}
	if ev.Status == 404 && class != classOther {
		s.notFound++
	}

	pages := float64(s.pages)
	conf := clamp01(pages / minPages)
	rate := s.pageRate()
	fv[fPageRate] = clamp01((rate - 0.5) / 2.5)
	if s.gapN >= 4 {
		cv := math.Sqrt(float64(s.gapVar)) / math.Max(float64(s.gapMean), 0.01)
		fv[fRegularity] = clamp01(1-cv/0.6) * clamp01(rate)
	}
	if pages > 0 {
		fv[fDistinctPaths] = clamp01(float64(s.distinct)/pages) * conf
		fv[fRobotsDisallowed] = clamp01(2.5*float64(s.robots)/pages) * conf
	}
	fv[fNoAssets] = s.noAssets(minPages)
	if total := pages + float64(s.assets); total > 0 {
		fv[fNotFound] = clamp01((float64(s.notFound)/total-0.1)/0.5) * clamp01(total/minPages)
	}
	if s.navN > 0 {
		excess := float64(s.navNLL) - e.nav.baseline()
		fv[fImprobableNavigation] = clamp01(excess/2.5) * clamp01(float64(s.navN)/5)
	}
	o.loadsAsset = s.assets >= 0.5
}

// observeSubnet tracks the /24 (IPv4) or /64 (IPv6): pages fast and
// without assets across the subnet is one client spread over addresses.
func (e *Engine) observeSubnet(class requestClass, now int64, o *observation) {
	bitsLen := 64
	if o.addr.Is4() {
		bitsLen = 24
	}
	p, err := o.addr.Prefix(bitsLen)
	if err != nil {
		return
	}
	k := windowKey(p.Addr().As16())
	k[15] ^= byte(bitsLen) // keep a /24's key apart from a host's
	sh, s := e.subnets.acquire(&k)
	defer sh.release()
	s.decay(now, e.tau, e.historyTau)
	switch class {
	case classPage:
		s.pages++
		s.observeGap(now)
	case classAsset:
		s.assets++
	}
	rate := s.pageRate()
	o.features[fSubnetPressure] = clamp01((rate-2)/8) * s.noAssets(3*minPages)
}

// observeFingerprint tracks one client build (user agent, header order,
// Accept-Language, TLS fingerprint) across addresses.
func (e *Engine) observeFingerprint(ev *events.Event, class requestClass, now int64, o *observation) {
	h := fnvString64(fnvOffset64, ev.UserAgent)
	for _, name := range ev.HeaderOrder {
		h = fnvString64(h, name)
		h = (h ^ ',') * fnvPrime64
	}
	h = fnvString64((h^0xff)*fnvPrime64, ev.Headers["Accept-Language"])
	h = fnvString64((h^0xff)*fnvPrime64, ev.TLSFingerprint)
	var k windowKey
	for i := range 8 {
		k[i] = byte(h >> (8 * i))
	}
	sh, s := e.fingerprints.acquire(&k)
	defer sh.release()
	s.decay(now, e.tau, e.historyTau)
	switch class {
	case classPage:
		s.pages++
	case classAsset:
		s.assets++
	}
	ah := uint64(fnvOffset64)
	for _, b := range o.addr.As16() {
		ah = (ah ^ uint64(b)) * fnvPrime64
	}
	if s.remember(ah) {
		s.newAddrs++
	}
	o.features[fSharedFingerprint] = clamp01((float64(s.newAddrs)-3)/10) * s.noAssets(3*minPages)
}
