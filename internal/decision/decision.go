// Package decision defines the one decision contract shared by every writer
// (admin UI, webhook, escalation, tarpit hop limit, imports) and the edge that
// enforces it: a scope (ip or cidr), an action, a reason, a source and an
// expiry.
package decision

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Action is what the edge does with a request. The zero value, ActionNone,
// means "no opinion" and lets later stages decide.
type Action uint8

// Actions ordered by severity: when two sources disagree the more severe
// action wins, except that an explicit allow decision short-cuts evaluation.
const (
	ActionNone Action = iota
	ActionAllow
	ActionThrottle
	ActionChallenge
	ActionTarpit
	ActionBlock
)

var actionNames = [...]string{
	ActionNone:      "none",
	ActionAllow:     "allow",
	ActionThrottle:  "throttle",
	ActionChallenge: "challenge",
	ActionTarpit:    "tarpit",
	ActionBlock:     "block",
}

// String returns the lower-case name used in config, JSON and metrics.
func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// ParseAction parses an action name. "none" is not accepted: a decision or
// rule must say what to do.
func ParseAction(s string) (Action, error) {
	for i, n := range actionNames {
		if i != int(ActionNone) && strings.EqualFold(s, n) {
			return Action(i), nil
		}
	}
	return ActionNone, fmt.Errorf("unknown action %q (want allow, throttle, challenge, tarpit or block)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (a Action) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (a *Action) UnmarshalText(b []byte) error {
	v, err := ParseAction(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// Scope says whether a decision covers one address or a network.
type Scope string

// Scopes.
const (
	ScopeIP   Scope = "ip"
	ScopeCIDR Scope = "cidr"
)

// Decision is the record every component writes and the edge enforces.
type Decision struct {
	Scope   Scope     `json:"scope"`
	Value   string    `json:"value"` // canonical address or prefix, e.g. "192.0.2.1" or "198.51.100.0/24"
	Action  Action    `json:"action"`
	Reason  string    `json:"reason"`
	Source  string    `json:"source"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires,omitzero"` // zero: never expires
}

// Limits on free-text fields: decisions come from outside (webhook, imports)
// and are kept in memory, so their size must be bounded.
const (
	MaxReasonLen = 256
	MaxSourceLen = 64
)

// ParsePrefix parses an address or CIDR into its canonical prefix. A bare
// address becomes a full-length prefix (/32 or /128); IPv4-mapped IPv6 is
// unmapped so that one client has one key.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Prefix{}, errors.New("empty address")
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid CIDR %q: %w", s, err)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid IP address %q: %w", s, err)
	}
	a = a.Unmap().WithZone("")
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// New builds a validated decision. ttl <= 0 means it never expires.
func New(value string, action Action, reason, source string, ttl time.Duration, now time.Time) (Decision, error) {
	p, err := ParsePrefix(value)
	if err != nil {
		return Decision{}, err
	}
	d := Decision{Action: action, Reason: reason, Source: source, Created: now.UTC()}
	d.SetPrefix(p)
	if ttl > 0 {
		d.Expires = now.Add(ttl).UTC()
	}
	return d, d.Validate()
}

// SetPrefix sets Scope and Value from a prefix.
func (d *Decision) SetPrefix(p netip.Prefix) {
	if p.IsSingleIP() {
		d.Scope, d.Value = ScopeIP, p.Addr().String()
	} else {
		d.Scope, d.Value = ScopeCIDR, p.String()
	}
}

// Prefix returns the canonical prefix the decision covers.
func (d Decision) Prefix() (netip.Prefix, error) { return ParsePrefix(d.Value) }

// Key is the decision's identity: there is at most one decision per prefix.
func (d Decision) Key() string {
	p, err := d.Prefix()
	if err != nil {
		return d.Value
	}
	return p.String()
}

// Expired reports whether the decision no longer applies at now.
func (d Decision) Expired(now time.Time) bool {
	return !d.Expires.IsZero() && !now.Before(d.Expires)
}

// Validate checks every field and reports all problems at once.
func (d Decision) Validate() error {
	var errs []error
	p, err := d.Prefix()
	if err != nil {
		errs = append(errs, err)
	} else {
		want := ScopeCIDR
		if p.IsSingleIP() {
			want = ScopeIP
		}
		if d.Scope != want {
			errs = append(errs, fmt.Errorf("scope %q does not match value %q (want %q)", d.Scope, d.Value, want))
		}
	}
	if d.Action == ActionNone || d.Action > ActionBlock {
		errs = append(errs, fmt.Errorf("invalid action %v", d.Action))
	}
	if len(d.Reason) > MaxReasonLen {
		errs = append(errs, fmt.Errorf("reason longer than %d bytes", MaxReasonLen))
	}
	if d.Source == "" {
		errs = append(errs, errors.New("source is required"))
	} else if len(d.Source) > MaxSourceLen {
		errs = append(errs, fmt.Errorf("source longer than %d bytes", MaxSourceLen))
	}
	return errors.Join(errs...)
}

// UnmarshalJSON validates the value so that a stored or received decision
// is always canonical.
func (d *Decision) UnmarshalJSON(b []byte) error {
	type plain Decision
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	pre, err := ParsePrefix(p.Value)
	if err != nil {
		return err
	}
	*d = Decision(p)
	d.SetPrefix(pre)
	return nil
}
