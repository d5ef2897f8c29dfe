// Package aiservice is the AI service's HTTP intake: POST /webhook takes
// signed batches of events (queued for the escalation engine) and operator
// commands (block, allow, flag, unflag); POST /escalate scores one event
// synchronously. docs/webhook.md is the reference for senders.
package aiservice

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/events"
	"github.com/scrapedefense/scrapedefense/internal/hmacsig"
	"github.com/scrapedefense/scrapedefense/internal/store"
	"github.com/scrapedefense/scrapedefense/internal/telemetry"
)

// Enqueuer takes accepted events. It returns an error wrapping
// store.ErrFull when the queue is full, which the caller sees as 503 with
// Retry-After.
type Enqueuer interface {
	Enqueue(ctx context.Context, evs []events.Event) error
}

// Scorer scores one event for POST /escalate.
type Scorer interface {
	Score(ctx context.Context, ev events.Event) events.Verdict
}

// Routes, also the route labels of the latency histogram.
const (
	RouteWebhook  = "/webhook"
	RouteEscalate = "/escalate"
)

// Defaults for Options.
const (
	DefaultReplayWindow       = 5 * time.Minute
	DefaultMaxBodyBytes       = 1 << 20
	DefaultMaxEvents          = 500
	DefaultRatePerSecond      = 20
	DefaultRateBurst          = 100
	DefaultIdempotencyTTL     = 24 * time.Hour
	DefaultCommandTTL         = 24 * time.Hour
	DefaultMaxCommandTTL      = 90 * 24 * time.Hour
	MaxIdempotencyKeyLen      = 128
	MaxSenderLen              = 48
	MinSecretLen              = 16
	queueFullRetryAfter       = 5 * time.Second
	idempotencyPendingTTL     = 2 * time.Minute
	idempotencyPending        = "pending"
	dedupeWorkers             = 16
	maxPooledBodyBuffer       = 256 << 10
	storeKeySignaturePrefix   = "webhook/sig/"
	storeKeyIdempotencyPrefix = "webhook/idem/"
	storeKeyEventPrefix       = "webhook/event/"
)

// Options configure a Service. Senders, Store and Enqueuer are required.
type Options struct {
	// Senders maps a sender id (the X-Scrapedefense-Sender header) to its
	// HMAC secret. Ids are 1–48 bytes of [A-Za-z0-9._-]; secrets at least
	// 16 bytes.
	Senders map[string][]byte
	// Store keeps seen signatures, idempotency keys and event ids, and backs
	// the default Commands.
	Store    CommandStore
	Enqueuer Enqueuer
	// Scorer serves POST /escalate; nil answers 501 not_enabled.
	Scorer Scorer
	// Commands applies command messages; nil means StoreCommands over Store.
	Commands Commands
	// Telemetry receives the metrics and request latency; nil makes a
	// private one (service "ai_service").
	Telemetry *telemetry.Telemetry
	Logger    *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time

	ReplayWindow      time.Duration // default 5 min: accepted signature age and skew
	MaxBodyBytes      int64         // default 1 MiB
	MaxEvents         int           // default 500 per message
	RatePerSecond     float64       // requests per second per sender, default 20
	RateBurst         int           // default 100
	IdempotencyTTL    time.Duration // default 24 h (Idempotency-Key and event ids)
	DefaultCommandTTL time.Duration // when a command has no ttl, default 24 h
	MaxCommandTTL     time.Duration // default 90 days
}

// Service serves the intake endpoints.
type Service struct {
	opts     Options
	store    CommandStore
	enqueue  Enqueuer
	scorer   Scorer
	commands Commands
	tel      *telemetry.Telemetry
	log      *slog.Logger
	now      func() time.Time
	verifier *verifier
	limiter  *senderLimiter
	metrics  *metrics
	cmdLim   commandLimits
	bufs     sync.Pool
}

// New validates opts and builds the service.
func New(opts Options) (*Service, error) {
	if opts.Store == nil {
		return nil, errors.New("aiservice: Store is required")
	}
	if opts.Enqueuer == nil {
		return nil, errors.New("aiservice: Enqueuer is required")
	}
	names := make([]string, 0, len(opts.Senders))
	for name, secret := range opts.Senders {
		if !validSender(name) {
			return nil, fmt.Errorf("aiservice: sender %q: want 1-%d bytes of letters, digits, '.', '_' or '-'", name, MaxSenderLen)
		}
		if name == localSender {
			return nil, fmt.Errorf("aiservice: sender name %q is reserved for in-process events", localSender)
		}
		if len(secret) < MinSecretLen {
			return nil, fmt.Errorf("aiservice: sender %q: secret must be at least %d bytes", name, MinSecretLen)
		}
		names = append(names, name)
	}
	setDefault(&opts.ReplayWindow, DefaultReplayWindow)
	setDefault(&opts.MaxBodyBytes, DefaultMaxBodyBytes)
	setDefault(&opts.MaxEvents, DefaultMaxEvents)
	setDefault(&opts.RatePerSecond, DefaultRatePerSecond)
	setDefault(&opts.RateBurst, DefaultRateBurst)
	setDefault(&opts.IdempotencyTTL, DefaultIdempotencyTTL)
	setDefault(&opts.DefaultCommandTTL, DefaultCommandTTL)
	setDefault(&opts.MaxCommandTTL, DefaultMaxCommandTTL)
	if opts.DefaultCommandTTL > opts.MaxCommandTTL {
		return nil, fmt.Errorf("aiservice: default command TTL %s exceeds the maximum %s", opts.DefaultCommandTTL, opts.MaxCommandTTL)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Telemetry == nil {
		opts.Telemetry = telemetry.New("ai_service", telemetry.BuildInfo{})
	}
	if opts.Commands == nil {
		opts.Commands = &StoreCommands{Store: opts.Store, Now: opts.Now}
	}
	m, err := newMetrics(opts.Telemetry.Registerer(), names)
	if err != nil {
		return nil, err
	}
	dummy := make([]byte, 32)
	_, _ = rand.Read(dummy)
	return &Service{
		opts:     opts,
		store:    opts.Store,
		enqueue:  opts.Enqueuer,
		scorer:   opts.Scorer,
		commands: opts.Commands,
		tel:      opts.Telemetry,
		log:      opts.Logger,
		now:      opts.Now,
		verifier: newVerifier(opts.Senders, dummy),
		limiter:  newSenderLimiter(names, opts.RatePerSecond, opts.RateBurst),
		metrics:  m,
		cmdLim:   commandLimits{defaultTTL: opts.DefaultCommandTTL, maxTTL: opts.MaxCommandTTL},
		bufs:     sync.Pool{New: func() any { return new(bytes.Buffer) }},
	}, nil
}

func setDefault[T int | int64 | float64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

func validSender(s string) bool {
	if s == "" || len(s) > MaxSenderLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Handler serves POST /webhook and POST /escalate, each instrumented under
// its route template. Anything else is a JSON 404.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle(RouteWebhook, s.tel.Instrument(RouteWebhook, http.HandlerFunc(s.serveWebhook)))
	mux.Handle(RouteEscalate, s.tel.Instrument(RouteEscalate, http.HandlerFunc(s.serveEscalate)))
	mux.Handle("/", s.tel.Instrument("other", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, "", reject(http.StatusNotFound, CodeNotFound, "no such endpoint; use POST %s or POST %s", RouteWebhook, RouteEscalate))
	})))
	return mux
}

// Ingest validates events from an in-process sender (the edge in the same
// process) with the webhook's rules and enqueues the valid ones. Unlike a
// webhook message, one invalid event (a request path with a control
// character, say) does not reject the batch: it is dropped and counted, so
// that one client cannot make others' events disappear. No authentication
// applies; events without a Source get "local". evs is not modified. The
// error is an *Error when nothing could be enqueued.
func (s *Service) Ingest(ctx context.Context, evs []events.Event) error {
	batch := make([]events.Event, 0, len(evs))
	now := s.now()
	for i := range evs {
		ev := evs[i]
		if ev.Source == "" {
			ev.Source = localSender
		}
		if len(ev.Headers) > 0 && len(ev.Headers) <= MaxHeaders {
			// Validation may canonicalise in place: do not touch the caller's map.
			ev.Headers = cloneHeaders(ev.Headers)
		}
		ev.HeaderOrder = append([]string(nil), ev.HeaderOrder...)
		if e := validateEvent(&ev, now); e != nil {
			s.metrics.reject(e.Code)
			continue
		}
		batch = append(batch, ev)
	}
	for len(batch) > 0 {
		n := min(len(batch), s.opts.MaxEvents)
		if _, e := s.accept(ctx, localSender, batch[:n]); e != nil {
			s.metrics.reject(e.Code)
			return e
		}
		batch = batch[n:]
	}
	return nil
}

func cloneHeaders(h map[string]string) map[string]string {
	c := make(map[string]string, len(h))
	for k, v := range h {
		c[k] = v
	}
	return c
}

func (s *Service) serveWebhook(w http.ResponseWriter, r *http.Request) {
	sender, body, release, e := s.authenticate(r)
	if e != nil {
		s.fail(w, r, sender, e)
		return
	}
	defer release()
	idem := r.Header.Get(HeaderIdempotency)
	if len(idem) > MaxIdempotencyKeyLen || !isVisibleASCII(idem) {
		s.fail(w, r, sender, badRequest(CodeInvalidIdempotencyKey, "%s must be 1-%d printable ASCII bytes without spaces", HeaderIdempotency, MaxIdempotencyKeyLen))
		return
	}
	m, e := decodeWebhook(body, sender, s.now(), s.opts.MaxEvents, s.cmdLim)
	if e != nil {
		s.fail(w, r, sender, e)
		return
	}
	ctx := r.Context()
	var idemKey string
	if idem != "" {
		idemKey = storeKeyIdempotencyPrefix + sender + "/" + idem
		if done, e := s.claimIdempotency(ctx, w, idemKey); e != nil || done {
			if e != nil {
				s.fail(w, r, sender, e)
			}
			return
		}
	}
	var status int
	var resp []byte
	switch m.Type {
	case TypeEvents:
		var accepted, dups int
		if accepted, e = s.accept(ctx, sender, m.Events); e == nil {
			dups = len(m.Events) - accepted
			status, resp = http.StatusAccepted, acceptedBody(accepted, dups)
		}
	case TypeCommand:
		status, resp, e = s.applyCommand(ctx, sender, m.Command)
	}
	if idemKey != "" {
		s.settleIdempotency(ctx, idemKey, status, e)
	}
	if e != nil {
		s.fail(w, r, sender, e)
		return
	}
	writeJSON(w, status, resp)
}

func (s *Service) serveEscalate(w http.ResponseWriter, r *http.Request) {
	sender, body, release, e := s.authenticate(r)
	if e != nil {
		s.fail(w, r, sender, e)
		return
	}
	defer release()
	if s.scorer == nil {
		s.fail(w, r, sender, reject(http.StatusNotImplemented, CodeNotEnabled, "escalation is not enabled on this server"))
		return
	}
	ev, e := decodeEscalate(body, sender, s.now())
	if e != nil {
		s.fail(w, r, sender, e)
		return
	}
	v := s.scorer.Score(r.Context(), *ev)
	resp, err := json.Marshal(v)
	if err != nil {
		s.fail(w, r, sender, &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "encoding the verdict failed", Err: err})
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// authenticate runs every check that precedes parsing: method, media type,
// body size, signature, timestamp window, rate limit and replay. It returns
// the sender (only once authenticated) and the body, valid until release.
func (s *Service) authenticate(r *http.Request) (sender string, body []byte, release func(), e *Error) {
	if r.Method != http.MethodPost {
		return "", nil, nil, reject(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "use POST")
	}
	if ct := r.Header.Get("Content-Type"); !isJSONMediaType(ct) {
		return "", nil, nil, reject(http.StatusUnsupportedMediaType, CodeUnsupportedMediaType, "Content-Type must be application/json")
	}
	claimed := r.Header.Get(HeaderSender)
	sig, sigErr := hmacsig.Parse(r.Header.Get(HeaderSignature))
	if claimed == "" || sigErr != nil {
		return "", nil, nil, reject(http.StatusUnauthorized, CodeUnauthenticated, "missing or malformed %s or %s header", HeaderSender, HeaderSignature)
	}
	if r.ContentLength > s.opts.MaxBodyBytes {
		return "", nil, nil, reject(http.StatusRequestEntityTooLarge, CodeBodyTooLarge, "body is larger than %d bytes", s.opts.MaxBodyBytes)
	}
	buf := s.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	release = func() {
		if buf.Cap() <= maxPooledBodyBuffer {
			s.bufs.Put(buf)
		}
	}
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + 1)
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(nil, r.Body, s.opts.MaxBodyBytes))
	if err != nil {
		release()
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return "", nil, nil, reject(http.StatusRequestEntityTooLarge, CodeBodyTooLarge, "body is larger than %d bytes", s.opts.MaxBodyBytes)
		}
		return "", nil, nil, &Error{Status: http.StatusBadRequest, Code: CodeMalformedJSON, Message: "reading the body failed", Err: err}
	}
	body = buf.Bytes()
	sum, ok := s.verifier.verify(claimed, &sig, body)
	if !ok {
		release()
		return "", nil, nil, reject(http.StatusUnauthorized, CodeUnauthenticated, "unknown sender or bad signature")
	}
	sender = claimed
	now := s.now()
	if !sig.Fresh(now, s.opts.ReplayWindow) {
		skew := now.Sub(time.Unix(sig.Time, 0))
		release()
		return sender, nil, nil, reject(http.StatusUnauthorized, CodeStaleSignature, "signature time is %s away from the server's clock, limit %s", skew.Round(time.Second), s.opts.ReplayWindow)
	}
	if ok, wait := s.limiter.allow(sender, now); !ok {
		release()
		e := reject(http.StatusTooManyRequests, CodeRateLimited, "sender %s is over its rate limit", sender)
		e.RetryAfter = wait
		return sender, nil, nil, e
	}
	var keyBuf [len(storeKeySignaturePrefix) + MaxSenderLen + 1 + sigHexLen]byte
	key := append(keyBuf[:0], storeKeySignaturePrefix...)
	key = append(key, sender...)
	key = append(key, '/')
	key = appendHex(key, sum[:])
	fresh, err := s.store.SetNX(r.Context(), string(key), []byte{1}, 2*s.opts.ReplayWindow)
	if err != nil {
		release()
		s.tel.Error("webhook_store")
		return sender, nil, nil, &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "replay check unavailable", RetryAfter: time.Second, Err: err}
	}
	if !fresh {
		release()
		return sender, nil, nil, reject(http.StatusUnauthorized, CodeReplayedSignature, "this signature was already used; sign every attempt anew")
	}
	return sender, body, release, nil
}

func appendHex(dst, src []byte) []byte {
	const digits = "0123456789abcdef"
	for _, b := range src {
		dst = append(dst, digits[b>>4], digits[b&0x0f])
	}
	return dst
}

func isJSONMediaType(ct string) bool {
	if ct == "application/json" {
		return true
	}
	// Allow parameters ("; charset=utf-8") and case differences without
	// paying for mime.ParseMediaType on the common path.
	base, params, _ := cutByte(ct, ';')
	if !equalFoldTrim(base, "application/json") {
		return false
	}
	for p := range splitByte(params, ';') {
		k, v, _ := cutByte(p, '=')
		if equalFoldTrim(k, "charset") && !equalFoldTrim(trimQuotes(v), "utf-8") {
			return false
		}
	}
	return true
}

// claimIdempotency reserves key. When the key was seen before it writes the
// duplicate response and reports done.
func (s *Service) claimIdempotency(ctx context.Context, w http.ResponseWriter, key string) (done bool, e *Error) {
	fresh, err := s.store.SetNX(ctx, key, []byte(idempotencyPending), idempotencyPendingTTL)
	if err != nil {
		s.tel.Error("webhook_store")
		return false, &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "idempotency check unavailable", RetryAfter: time.Second, Err: err}
	}
	if fresh {
		return false, nil
	}
	v, ok, err := s.store.Get(ctx, key)
	if err != nil {
		s.tel.Error("webhook_store")
		return false, &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "idempotency check unavailable", RetryAfter: time.Second, Err: err}
	}
	status, perr := strconv.Atoi(string(v))
	if !ok || perr != nil || status < 100 || status > 599 {
		return false, &Error{Status: http.StatusConflict, Code: CodeIdempotencyInProgress, Message: "a request with this Idempotency-Key is still being processed", RetryAfter: time.Second}
	}
	writeJSON(w, status, []byte(`{"duplicate":true}`))
	return true, nil
}

// settleIdempotency records the outcome under key. Server-side failures
// release the key so that the sender's retry is processed.
func (s *Service) settleIdempotency(ctx context.Context, key string, status int, e *Error) {
	ctx = context.WithoutCancel(ctx)
	var err error
	switch {
	case e != nil && e.Status >= 500:
		err = s.store.Delete(ctx, key)
	case e != nil:
		err = s.store.Set(ctx, key, strconv.AppendInt(nil, int64(e.Status), 10), s.opts.IdempotencyTTL)
	default:
		err = s.store.Set(ctx, key, strconv.AppendInt(nil, int64(status), 10), s.opts.IdempotencyTTL)
	}
	if err != nil {
		s.tel.Error("webhook_store")
		s.log.WarnContext(ctx, "webhook: recording idempotency key failed", "err", err)
	}
}

// accept drops events whose id was seen before, enqueues the rest and
// returns how many were enqueued.
func (s *Service) accept(ctx context.Context, sender string, evs []events.Event) (int, *Error) {
	fresh, claimed, err := s.dedupe(ctx, sender, evs)
	if err != nil {
		s.tel.Error("webhook_store")
		return 0, &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "event id check unavailable", RetryAfter: time.Second, Err: err}
	}
	if len(fresh) > 0 {
		if err := s.enqueue.Enqueue(ctx, fresh); err != nil {
			s.unclaim(ctx, claimed)
			if errors.Is(err, store.ErrFull) {
				return 0, &Error{Status: http.StatusServiceUnavailable, Code: CodeQueueFull, Message: "the event queue is full; retry later", RetryAfter: queueFullRetryAfter, Err: err}
			}
			s.tel.Error("webhook_enqueue")
			return 0, &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "the event queue is unavailable", RetryAfter: time.Second, Err: err}
		}
	}
	s.metrics.accept(sender, len(fresh))
	return len(fresh), nil
}

// dedupe claims the id of every event that has one and returns the events
// not seen before plus the keys claimed (to release if enqueueing fails).
// Claims run in parallel so that a store with group commit writes them
// together.
func (s *Service) dedupe(ctx context.Context, sender string, evs []events.Event) (fresh []events.Event, claimed []string, err error) {
	var withID []int
	for i := range evs {
		if evs[i].ID != "" {
			withID = append(withID, i)
		}
	}
	if len(withID) == 0 {
		return evs, nil, nil
	}
	keys := make([]string, len(evs))
	ok := make([]bool, len(evs))
	errs := make([]error, len(evs))
	seen := make(map[string]bool, len(withID)) // duplicates inside one batch
	for _, i := range withID {
		k := storeKeyEventPrefix + sender + "/" + evs[i].ID
		if seen[k] {
			continue
		}
		seen[k] = true
		keys[i] = k
	}
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(dedupeWorkers, len(withID)) {
		wg.Go(func() {
			for i := range next {
				ok[i], errs[i] = s.store.SetNX(ctx, keys[i], []byte{1}, s.opts.IdempotencyTTL)
			}
		})
	}
	for _, i := range withID {
		if keys[i] != "" {
			next <- i
		}
	}
	close(next)
	wg.Wait()
	fresh = make([]events.Event, 0, len(evs))
	for i := range evs {
		switch {
		case errs[i] != nil:
			if err == nil {
				err = errs[i]
			}
		case evs[i].ID == "":
			fresh = append(fresh, evs[i])
		case ok[i]:
			fresh = append(fresh, evs[i])
			claimed = append(claimed, keys[i])
		}
	}
	if err != nil {
		s.unclaim(ctx, claimed)
		return nil, nil, fmt.Errorf("claim event id: %w", err)
	}
	return fresh, claimed, nil
}

func (s *Service) unclaim(ctx context.Context, keys []string) {
	ctx = context.WithoutCancel(ctx)
	for _, k := range keys {
		if err := s.store.Delete(ctx, k); err != nil {
			s.log.WarnContext(ctx, "webhook: releasing event id failed", "key", k, "err", err)
			return
		}
	}
}

func (s *Service) applyCommand(ctx context.Context, sender string, c *Command) (int, []byte, *Error) {
	c.Sender = sender
	res, err := s.commands.Apply(ctx, *c)
	if err != nil {
		e := commandError(err)
		if e.Status >= 500 {
			s.tel.Error("webhook_command")
		}
		return 0, nil, e
	}
	s.metrics.command(c.Action)
	s.log.InfoContext(ctx, "webhook command applied", "sender", sender, "action", c.Action, "target", res.Target, "reason", c.Reason)
	body, err := json.Marshal(res)
	if err != nil {
		return 0, nil, &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "encoding the result failed", Err: err}
	}
	return http.StatusOK, body, nil
}

func acceptedBody(accepted, dups int) []byte {
	b := make([]byte, 0, 48)
	b = append(b, `{"accepted":`...)
	b = strconv.AppendInt(b, int64(accepted), 10)
	if dups > 0 {
		b = append(b, `,"duplicates":`...)
		b = strconv.AppendInt(b, int64(dups), 10)
	}
	return append(b, '}')
}

type errorBody struct {
	Error struct {
		Code    Code   `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// fail writes e as JSON and counts it.
func (s *Service) fail(w http.ResponseWriter, r *http.Request, sender string, e *Error) {
	s.metrics.reject(e.Code)
	if e.Status >= 500 {
		s.log.WarnContext(r.Context(), "webhook request failed", "code", e.Code, "sender", sender, "err", e)
	} else {
		s.log.DebugContext(r.Context(), "webhook request rejected", "code", e.Code, "sender", sender, "msg", e.Message)
	}
	if e.Code == CodeMethodNotAllowed {
		w.Header().Set("Allow", http.MethodPost)
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", retryAfterSeconds(e.RetryAfter))
	}
	var b errorBody
	b.Error.Code, b.Error.Message = e.Code, e.Message
	body, err := json.Marshal(b)
	if err != nil {
		body = []byte(`{"error":{"code":"internal","message":"encoding failed"}}`)
	}
	writeJSON(w, e.Status, body)
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
	_, _ = io.WriteString(w, "\n")
}
