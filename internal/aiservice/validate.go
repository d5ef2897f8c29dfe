package aiservice

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/textproto"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/scrapedefense/scrapedefense/internal/events"
)

// Limits on one event. Events come from outside and are held in queues and
// windows, so every field is bounded.
// The field limits are the schema's, in package events.
const (
	MaxHeaders        = events.MaxHeaders
	MaxHeaderNameLen  = events.MaxHeaderNameLen
	MaxHeaderValueLen = events.MaxHeaderValueLen
	MaxHeaderOrder    = events.MaxHeaderOrder
	MaxIDLen          = events.MaxIDLen
	MaxMethodLen      = events.MaxMethodLen
	MaxHostLen        = events.MaxHostLen
	MaxPathLen        = events.MaxPathLen
	MaxUserAgentLen   = events.MaxUserAgentLen
	MaxFingerprintLen = events.MaxFingerprintLen
	MaxLabelLen       = events.MaxLabelLen
	MaxRules          = events.MaxRules
	MaxWeight         = 1_000_000
	// MaxFutureSkew is how far an event's time may lie ahead of ours:
	// senders' clocks drift, but a time in the far future would sit in
	// every behaviour window forever.
	MaxFutureSkew = 10 * time.Minute
)

// minEventTime rejects zero and absurdly old times (a missing field decodes
// as year 1).
var minEventTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Message types.
const (
	TypeEvents  = "events"
	TypeCommand = "command"
)

// message is the body of POST /webhook.
type message struct {
	V       int            `json:"v"`
	Type    string         `json:"type"`
	Events  []events.Event `json:"events"`
	Command *Command       `json:"command"`
}

// escalation is the body of POST /escalate.
type escalation struct {
	V     int           `json:"v"`
	Event *events.Event `json:"event"`
}

// decodeStrict decodes exactly one JSON value into v, rejecting unknown
// fields and trailing data.
func decodeStrict(body []byte, v any) *Error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest(CodeMalformedJSON, "trailing data after the JSON message")
	}
	return nil
}

func jsonError(err error) *Error {
	var typeErr *json.UnmarshalTypeError
	var timeErr *time.ParseError
	switch {
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no typed error for this case.
		return badRequest(CodeUnknownField, "%s", strings.TrimPrefix(err.Error(), "json: "))
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "message"
		}
		return badRequest(CodeSchemaViolation, "%s: expected %s, got JSON %s", field, typeErr.Type, typeErr.Value)
	case errors.As(err, &timeErr):
		return badRequest(CodeInvalidTime, "time is not RFC 3339: %q", timeErr.Value)
	case errors.Is(err, io.EOF):
		return badRequest(CodeMalformedJSON, "empty body")
	}
	return badRequest(CodeMalformedJSON, "%s", strings.TrimPrefix(err.Error(), "json: "))
}

// decodeWebhook parses and validates a POST /webhook body. Events are
// canonicalised in place and their Source set to sender.
func decodeWebhook(body []byte, sender string, now time.Time, maxEvents int, cmdLimits commandLimits) (*message, *Error) {
	var m message
	if e := decodeStrict(body, &m); e != nil {
		return nil, e
	}
	if m.V != events.SchemaVersion {
		return nil, badRequest(CodeUnsupportedVersion, "v is %d, this server speaks v %d", m.V, events.SchemaVersion)
	}
	switch m.Type {
	case TypeEvents:
		if m.Command != nil {
			return nil, badRequest(CodeSchemaViolation, "an events message has no command")
		}
		if e := validateBatch(m.Events, sender, now, maxEvents); e != nil {
			return nil, e
		}
	case TypeCommand:
		if m.Events != nil {
			return nil, badRequest(CodeSchemaViolation, "a command message has no events")
		}
		if m.Command == nil {
			return nil, badRequest(CodeSchemaViolation, "command is required")
		}
		if e := m.Command.normalize(cmdLimits); e != nil {
			return nil, e
		}
	case "":
		return nil, badRequest(CodeSchemaViolation, "type is required (events or command)")
	default:
		return nil, badRequest(CodeSchemaViolation, "unknown type %q (want events or command)", truncateForMessage(m.Type))
	}
	return &m, nil
}

// decodeEscalate parses and validates a POST /escalate body.
func decodeEscalate(body []byte, sender string, now time.Time) (*events.Event, *Error) {
	var m escalation
	if e := decodeStrict(body, &m); e != nil {
		return nil, e
	}
	if m.V != events.SchemaVersion {
		return nil, badRequest(CodeUnsupportedVersion, "v is %d, this server speaks v %d", m.V, events.SchemaVersion)
	}
	if m.Event == nil {
		return nil, badRequest(CodeSchemaViolation, "event is required")
	}
	if e := validateEvent(m.Event, now); e != nil {
		e.Message = "event." + e.Message
		return nil, e
	}
	m.Event.Source = sender
	return m.Event, nil
}

func validateBatch(evs []events.Event, sender string, now time.Time, maxEvents int) *Error {
	switch {
	case len(evs) == 0:
		return badRequest(CodeSchemaViolation, "events must hold at least one event")
	case len(evs) > maxEvents:
		return reject(http.StatusBadRequest, CodeTooManyEvents, "%d events in one message, limit %d", len(evs), maxEvents)
	}
	for i := range evs {
		if e := validateEvent(&evs[i], now); e != nil {
			e.Message = fmt.Sprintf("events[%d].%s", i, e.Message)
			return e
		}
		if sender != "" {
			evs[i].Source = sender
		}
	}
	return nil
}

// ValidateEvent checks ev against the v1 schema rules that the webhook
// enforces and canonicalises it in place: ClientIP in netip's canonical
// form, Time in UTC, header names canonical, header_order lower case. The
// returned error is an *Error.
func ValidateEvent(ev *events.Event, now time.Time) error {
	if e := validateEvent(ev, now); e != nil {
		return e
	}
	return nil
}

func validateEvent(ev *events.Event, now time.Time) *Error {
	if ev.Version != events.SchemaVersion {
		return badRequest(CodeUnsupportedVersion, "v is %d, want %d", ev.Version, events.SchemaVersion)
	}
	if !ev.Kind.Valid() {
		return badRequest(CodeSchemaViolation, "kind %q is unknown", truncateForMessage(string(ev.Kind)))
	}
	if ev.Time.Before(minEventTime) {
		return badRequest(CodeInvalidTime, "time is missing or before %d", minEventTime.Year())
	}
	if ev.Time.After(now.Add(MaxFutureSkew)) {
		return badRequest(CodeInvalidTime, "time %s is more than %s in the future", ev.Time.UTC().Format(time.RFC3339), MaxFutureSkew)
	}
	ev.Time = ev.Time.UTC()
	if ev.ClientIP == "" {
		return badRequest(CodeInvalidIP, "client_ip is required")
	}
	addr, err := netip.ParseAddr(ev.ClientIP)
	if err != nil || addr.Zone() != "" {
		return badRequest(CodeInvalidIP, "client_ip %q is not an IP address", truncateForMessage(ev.ClientIP))
	}
	if s := addr.Unmap().String(); s != ev.ClientIP {
		ev.ClientIP = s
	}
	if e := checkText("id", ev.ID, MaxIDLen); e != nil {
		return e
	}
	if ev.ID != "" && !isVisibleASCII(ev.ID) {
		return badRequest(CodeSchemaViolation, "id must be printable ASCII without spaces")
	}
	if ev.Method != "" && (len(ev.Method) > MaxMethodLen || !isToken(ev.Method)) {
		return badRequest(CodeSchemaViolation, "method %q is not an HTTP method token", truncateForMessage(ev.Method))
	}
	if ev.Path == "" && (ev.Kind == "" || ev.Kind == events.KindRequest) {
		return badRequest(CodeSchemaViolation, "path is required for a request event")
	}
	if ev.Path != "" && ev.Path[0] != '/' {
		return badRequest(CodeSchemaViolation, "path must start with \"/\"")
	}
	if ev.Status != 0 && (ev.Status < 100 || ev.Status > 999) {
		return badRequest(CodeSchemaViolation, "status %d is not an HTTP status", ev.Status)
	}
	if ev.Weight < -MaxWeight || ev.Weight > MaxWeight {
		return badRequest(CodeSchemaViolation, "weight %d is outside ±%d", ev.Weight, MaxWeight)
	}
	for _, f := range [...]struct {
		name, v string
		max     int
	}{
		{"host", ev.Host, MaxHostLen},
		{"path", ev.Path, MaxPathLen},
		{"user_agent", ev.UserAgent, MaxUserAgentLen},
		{"tls_fingerprint", ev.TLSFingerprint, MaxFingerprintLen},
		{"action", ev.Action, MaxLabelLen},
		{"stage", ev.Stage, MaxLabelLen},
		{"rule", ev.Rule, MaxLabelLen},
		{"crawler", ev.Crawler, MaxLabelLen},
		{"source", ev.Source, MaxLabelLen},
	} {
		if e := checkText(f.name, f.v, f.max); e != nil {
			return e
		}
	}
	if len(ev.Rules) > MaxRules {
		return badRequest(CodeSchemaViolation, "rules has %d entries, limit %d", len(ev.Rules), MaxRules)
	}
	for i, r := range ev.Rules {
		if e := checkText(fmt.Sprintf("rules[%d]", i), r, MaxLabelLen); e != nil {
			return e
		}
	}
	if e := validateHeaders(ev); e != nil {
		return e
	}
	return nil
}

func validateHeaders(ev *events.Event) *Error {
	if len(ev.Headers) > MaxHeaders {
		return badRequest(CodeSchemaViolation, "headers has %d entries, limit %d", len(ev.Headers), MaxHeaders)
	}
	var canon map[string]string // allocated only when a name is not canonical
	for name, value := range ev.Headers {
		if len(name) > MaxHeaderNameLen || !isToken(name) {
			return badRequest(CodeSchemaViolation, "headers: %q is not a header name of at most %d bytes", truncateForMessage(name), MaxHeaderNameLen)
		}
		if len(value) > MaxHeaderValueLen {
			return badRequest(CodeSchemaViolation, "headers[%q]: value longer than %d bytes", name, MaxHeaderValueLen)
		}
		if hasControl(value) {
			return badRequest(CodeSchemaViolation, "headers[%q]: value holds control characters", name)
		}
		if canon == nil && textproto.CanonicalMIMEHeaderKey(name) != name {
			canon = make(map[string]string, len(ev.Headers))
		}
	}
	if canon != nil {
		for name, value := range ev.Headers {
			c := textproto.CanonicalMIMEHeaderKey(name)
			if _, dup := canon[c]; dup {
				return badRequest(CodeSchemaViolation, "headers: %q appears twice", c)
			}
			canon[c] = value
		}
		ev.Headers = canon
	}
	if len(ev.HeaderOrder) > MaxHeaderOrder {
		return badRequest(CodeSchemaViolation, "header_order has %d entries, limit %d", len(ev.HeaderOrder), MaxHeaderOrder)
	}
	for i, name := range ev.HeaderOrder {
		if len(name) > MaxHeaderNameLen || !isToken(name) {
			return badRequest(CodeSchemaViolation, "header_order[%d]: %q is not a header name of at most %d bytes", i, truncateForMessage(name), MaxHeaderNameLen)
		}
		ev.HeaderOrder[i] = strings.ToLower(name)
	}
	return nil
}

// checkText bounds a free-text field and rejects control characters, which
// have no business in a label and would garble logs.
func checkText(field, v string, max int) *Error {
	if len(v) > max {
		return badRequest(CodeSchemaViolation, "%s is %d bytes, limit %d", field, len(v), max)
	}
	if hasControl(v) {
		return badRequest(CodeSchemaViolation, "%s holds control characters", field)
	}
	return nil
}

// hasControl reports ASCII control characters (tab excepted) and DEL.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return true
		}
	}
	return false
}

// isToken reports whether s is an RFC 9110 token (method, header name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenChars[s[i]] {
			return false
		}
	}
	return true
}

var tokenChars = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// isVisibleASCII reports whether s is printable ASCII without spaces, the
// alphabet of idempotency keys and event ids (they become store keys).
func isVisibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// truncateForMessage keeps error messages short when they quote input.
func truncateForMessage(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
