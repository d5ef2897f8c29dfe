package aiservice

import (
	"encoding/json"
	"net/netip"
	"net/textproto"
	"strings"
	"testing"

	"github.com/scrapedefense/scrapedefense/internal/events"
)

var fuzzLimits = commandLimits{defaultTTL: DefaultCommandTTL, maxTTL: DefaultMaxCommandTTL}

// FuzzWebhookBody feeds raw bodies through the webhook decoder: it must
// never panic, every rejection must carry a known code, and whatever is
// accepted must satisfy the schema invariants.
func FuzzWebhookBody(f *testing.F) {
	f.Add([]byte(`{"v":1,"type":"events","events":[{"v":1,"time":"2026-01-01T00:00:00Z","client_ip":"203.0.113.7","method":"GET","path":"/"}]}`))
	f.Add([]byte(`{"v":1,"type":"command","command":{"action":"block","target":"203.0.113.0/24","ttl":"1h","reason":"r"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		m, e := decodeWebhook(body, "fuzz", testNow, DefaultMaxEvents, fuzzLimits)
		if e != nil {
			checkRejection(t, e)
			return
		}
		switch m.Type {
		case TypeEvents:
			if len(m.Events) == 0 || len(m.Events) > DefaultMaxEvents {
				t.Fatalf("accepted %d events", len(m.Events))
			}
			for i := range m.Events {
				checkEvent(t, &m.Events[i], "fuzz")
			}
		case TypeCommand:
			checkCommand(t, m.Command)
		default:
			t.Fatalf("accepted type %q", m.Type)
		}
	})
}

// FuzzEscalateBody does the same for POST /escalate bodies.
func FuzzEscalateBody(f *testing.F) {
	f.Add([]byte(`{"v":1,"event":{"v":1,"time":"2026-01-01T00:00:00Z","client_ip":"2001:db8::1","method":"GET","path":"/x","headers":{"accept":"*/*"}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, e := decodeEscalate(body, "fuzz", testNow)
		if e != nil {
			checkRejection(t, e)
			return
		}
		checkEvent(t, ev, "fuzz")
	})
}

func checkRejection(t *testing.T, e *Error) {
	t.Helper()
	known := false
	for _, c := range allCodes {
		known = known || c == e.Code
	}
	if !known || e.Status < 400 || e.Status > 599 || e.Message == "" {
		t.Fatalf("rejection %+v", e)
	}
}

func checkEvent(t *testing.T, ev *events.Event, sender string) {
	t.Helper()
	if ev.Version != events.SchemaVersion || !ev.Kind.Valid() || ev.Source != sender {
		t.Fatalf("accepted version %d kind %q source %q", ev.Version, ev.Kind, ev.Source)
	}
	a, err := netip.ParseAddr(ev.ClientIP)
	if err != nil || a.Unmap().String() != ev.ClientIP {
		t.Fatalf("accepted client_ip %q", ev.ClientIP)
	}
	if ev.Time.Before(minEventTime) || ev.Time.After(testNow.Add(MaxFutureSkew)) {
		t.Fatalf("accepted time %v", ev.Time)
	}
	if ev.Path != "" && ev.Path[0] != '/' || len(ev.Path) > MaxPathLen {
		t.Fatalf("accepted path %q", ev.Path)
	}
	if (ev.Kind == "" || ev.Kind == events.KindRequest) && ev.Path == "" {
		t.Fatal("accepted a request without path")
	}
	if len(ev.Headers) > MaxHeaders || len(ev.HeaderOrder) > MaxHeaderOrder || len(ev.Rules) > MaxRules {
		t.Fatalf("accepted %d headers, %d header_order, %d rules", len(ev.Headers), len(ev.HeaderOrder), len(ev.Rules))
	}
	for k, v := range ev.Headers {
		if len(k) > MaxHeaderNameLen || textproto.CanonicalMIMEHeaderKey(k) != k || len(v) > MaxHeaderValueLen || strings.ContainsAny(v, "\r\n\x00") {
			t.Fatalf("accepted header %q: %q", k, v)
		}
	}
	for _, n := range ev.HeaderOrder {
		if n != strings.ToLower(n) || !isToken(n) {
			t.Fatalf("accepted header_order entry %q", n)
		}
	}
	if ev.Method != "" && !isToken(ev.Method) || len(ev.UserAgent) > MaxUserAgentLen || len(ev.ID) > MaxIDLen {
		t.Fatalf("accepted method %q, user agent of %d bytes, id of %d bytes", ev.Method, len(ev.UserAgent), len(ev.ID))
	}
	// What we accepted and re-serialise must be accepted again unchanged.
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatalf("marshal accepted event: %v", err)
	}
	var again events.Event
	if e := decodeStrict(b, &again); e != nil {
		t.Fatalf("re-decoding %s: %v", b, e)
	}
	if e := validateEvent(&again, testNow); e != nil {
		t.Fatalf("re-validating %s: %v", b, e)
	}
	if b2, _ := json.Marshal(&again); string(b2) != string(b) {
		t.Fatalf("validation is not idempotent:\n%s\n%s", b, b2)
	}
}

func checkCommand(t *testing.T, c *Command) {
	t.Helper()
	switch c.Action {
	case ActionBlock, ActionAllow, ActionFlag:
		if c.Duration <= 0 || c.Duration > fuzzLimits.maxTTL {
			t.Fatalf("accepted ttl %v", c.Duration)
		}
	case ActionUnflag:
	default:
		t.Fatalf("accepted action %q", c.Action)
	}
	if !c.Prefix.IsValid() || c.Prefix != c.Prefix.Masked() || c.Prefix.Bits() < minBits(c.Prefix.Addr()) || c.Prefix.Addr().Is4In6() {
		t.Fatalf("accepted prefix %v", c.Prefix)
	}
	if want := c.Prefix.String(); c.Prefix.IsSingleIP() && c.Target != c.Prefix.Addr().String() || !c.Prefix.IsSingleIP() && c.Target != want {
		t.Fatalf("target %q for prefix %v", c.Target, c.Prefix)
	}
	if len(c.Reason) > 256 {
		t.Fatalf("accepted reason of %d bytes", len(c.Reason))
	}
}
