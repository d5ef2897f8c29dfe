package aiservice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/decision"
	"github.com/scrapedefense/scrapedefense/internal/store"
)

// Command actions.
const (
	ActionBlock  = "block"
	ActionAllow  = "allow"
	ActionFlag   = "flag"
	ActionUnflag = "unflag"
)

var commandActions = [...]string{ActionBlock, ActionAllow, ActionFlag, ActionUnflag}

// Prefixes broader than these are refused: one webhook call should not be
// able to block a continent.
const (
	MinIPv4Bits = 8
	MinIPv6Bits = 32
)

// Command is an operator-level instruction sent through the webhook.
type Command struct {
	Action string `json:"action"`
	// Target is an address or CIDR; normalize makes it canonical.
	Target string `json:"target"`
	// TTL is a Go duration ("90m", "24h"); empty means the default.
	TTL    string `json:"ttl,omitempty"`
	Reason string `json:"reason,omitempty"`

	// Set by the service, never from the body.
	Sender   string        `json:"-"`
	Prefix   netip.Prefix  `json:"-"`
	Duration time.Duration `json:"-"`
}

// Result is what a command did; it is the 200 response body.
type Result struct {
	Action  string    `json:"action"`
	Target  string    `json:"target"`
	Expires time.Time `json:"expires,omitzero"`
	// Decision is the stored decision for block and allow.
	Decision *decision.Decision `json:"decision,omitempty"`
}

// Commands applies webhook commands.
type Commands interface {
	Apply(ctx context.Context, c Command) (Result, error)
}

type commandLimits struct {
	defaultTTL, maxTTL time.Duration
}

// normalize validates c and fills Prefix, Duration and the canonical Target.
func (c *Command) normalize(lim commandLimits) *Error {
	switch c.Action {
	case ActionBlock, ActionAllow, ActionFlag, ActionUnflag:
	default:
		return badRequest(CodeInvalidCommand, "command.action %q is unknown (want block, allow, flag or unflag)", truncateForMessage(c.Action))
	}
	p, err := decision.ParsePrefix(c.Target)
	if err != nil {
		return badRequest(CodeInvalidCommand, "command.target: %v", err)
	}
	if p.Addr().Zone() != "" {
		return badRequest(CodeInvalidCommand, "command.target must not carry a zone")
	}
	if min := minBits(p.Addr()); p.Bits() < min {
		return badRequest(CodeInvalidCommand, "command.target /%d is broader than /%d", p.Bits(), min)
	}
	c.Prefix, c.Target = p, p.String()
	if p.IsSingleIP() {
		c.Target = p.Addr().String()
	}
	if e := checkText("command.reason", c.Reason, decision.MaxReasonLen); e != nil {
		return badRequest(CodeInvalidCommand, "%s", e.Message)
	}
	c.Duration = lim.defaultTTL
	if c.TTL != "" {
		d, err := time.ParseDuration(c.TTL)
		if err != nil {
			return badRequest(CodeInvalidCommand, "command.ttl %q is not a duration like \"90m\" or \"24h\"", truncateForMessage(c.TTL))
		}
		c.Duration = d
	}
	if c.Action != ActionUnflag && (c.Duration <= 0 || c.Duration > lim.maxTTL) {
		return badRequest(CodeInvalidCommand, "command.ttl must be positive and at most %s", lim.maxTTL)
	}
	return nil
}

func minBits(a netip.Addr) int {
	if a.Is4() {
		return MinIPv4Bits
	}
	return MinIPv6Bits
}

// CommandStore is what the default Commands needs from the store.
type CommandStore interface {
	store.Decisions
	store.KV
	store.Audit
}

// StoreCommands is the default Commands: block and allow become decisions,
// flags live in the KV store, and every command is audited.
type StoreCommands struct {
	Store CommandStore
	// Now defaults to time.Now.
	Now func() time.Time
}

// Flag is the record kept under FlagKey: a client to watch closely. The
// escalation engine reads it with Flagged.
type Flag struct {
	Prefix  string    `json:"prefix"`
	Reason  string    `json:"reason,omitempty"`
	Source  string    `json:"source"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

// FlagKey is the KV key of the flag on prefix (canonicalised).
func FlagKey(p netip.Prefix) string {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return "flag/" + p.Masked().String()
}

// Flagged reports the most specific live flag covering addr. It looks up
// one key per prefix length down to MinIPv4Bits / MinIPv6Bits (at most 25
// lookups for IPv4, 97 for IPv6), so callers on a hot path should cache.
func Flagged(ctx context.Context, kv store.KV, addr netip.Addr) (Flag, bool, error) {
	addr = addr.Unmap().WithZone("")
	if !addr.IsValid() {
		return Flag{}, false, errors.New("flagged: invalid address")
	}
	for bits := addr.BitLen(); bits >= minBits(addr); bits-- {
		p := netip.PrefixFrom(addr, bits).Masked()
		v, ok, err := kv.Get(ctx, FlagKey(p))
		if err != nil {
			return Flag{}, false, fmt.Errorf("flagged %s: %w", addr, err)
		}
		if !ok {
			continue
		}
		var f Flag
		if err := json.Unmarshal(v, &f); err != nil {
			// A flag we cannot read is still a flag.
			f = Flag{Prefix: p.String()}
		}
		return f, true, nil
	}
	return Flag{}, false, nil
}

// Apply implements Commands.
func (sc *StoreCommands) Apply(ctx context.Context, c Command) (Result, error) {
	now := time.Now()
	if sc.Now != nil {
		now = sc.Now()
	}
	if !c.Prefix.IsValid() {
		p, err := decision.ParsePrefix(c.Target)
		if err != nil {
			return Result{}, fmt.Errorf("%w: %w", store.ErrInvalid, err)
		}
		c.Prefix = p
	}
	actor := "webhook:" + c.Sender
	res := Result{Action: c.Action, Target: c.Target}
	audit := store.AuditEntry{Time: now, Actor: actor, Target: c.Target}
	switch c.Action {
	case ActionBlock, ActionAllow:
		act := decision.ActionBlock
		if c.Action == ActionAllow {
			act = decision.ActionAllow
		}
		d, err := decision.New(c.Target, act, c.Reason, actor, c.Duration, now)
		if err != nil {
			return Result{}, fmt.Errorf("%w: %w", store.ErrInvalid, err)
		}
		if err := sc.Store.PutDecision(ctx, d); err != nil {
			return Result{}, fmt.Errorf("put decision: %w", err)
		}
		res.Target, res.Expires, res.Decision = d.Value, d.Expires, &d
		audit.Action, audit.Target = "decision.put", d.Value
		audit.Detail = fmt.Sprintf("action=%s ttl=%s reason=%q", act, c.Duration, c.Reason)
	case ActionFlag:
		f := Flag{Prefix: c.Prefix.String(), Reason: c.Reason, Source: actor, Created: now.UTC(), Expires: now.Add(c.Duration).UTC()}
		v, err := json.Marshal(f)
		if err != nil {
			return Result{}, fmt.Errorf("encode flag: %w", err)
		}
		if err := sc.Store.Set(ctx, FlagKey(c.Prefix), v, c.Duration); err != nil {
			return Result{}, fmt.Errorf("set flag: %w", err)
		}
		res.Expires = f.Expires
		audit.Action = "flag.put"
		audit.Detail = fmt.Sprintf("ttl=%s reason=%q", c.Duration, c.Reason)
	case ActionUnflag:
		if err := sc.Store.Delete(ctx, FlagKey(c.Prefix)); err != nil {
			return Result{}, fmt.Errorf("delete flag: %w", err)
		}
		audit.Action = "flag.delete"
		if c.Reason != "" {
			audit.Detail = fmt.Sprintf("reason=%q", c.Reason)
		}
	default:
		return Result{}, fmt.Errorf("%w: unknown command action %q", store.ErrInvalid, c.Action)
	}
	if len(audit.Detail) > store.MaxAuditDetailLen {
		audit.Detail = strings.ToValidUTF8(audit.Detail[:store.MaxAuditDetailLen], "")
	}
	if err := sc.Store.AppendAudit(ctx, audit); err != nil {
		// The change is made; losing its audit line is an error the
		// caller must see, but retrying the command is harmless.
		return res, fmt.Errorf("append audit: %w", err)
	}
	return res, nil
}

// commandError maps an Apply error to a response.
func commandError(err error) *Error {
	switch {
	case errors.Is(err, store.ErrInvalid), errors.Is(err, store.ErrInvalidKey):
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalidCommand, Message: "command rejected by the store", Err: err}
	case errors.Is(err, store.ErrFull):
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "decision store is full", RetryAfter: queueFullRetryAfter, Err: err}
	}
	return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "store unavailable", RetryAfter: queueFullRetryAfter, Err: err}
}
