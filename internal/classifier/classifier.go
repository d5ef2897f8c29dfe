// Package classifier asks an outside opinion (an LLM or any HTTP service)
// about clients whose score sits in the grey zone. Outside opinions are
// slow and unreliable, so every call goes through Guard: a time budget, a
// concurrency cap and a circuit breaker keep the escalation engine within
// its latency SLO whatever the classifier does.
package classifier

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/scrapedefense/scrapedefense/internal/events"
)

// Query is what the classifier is asked about.
type Query struct {
	Event   events.Event    `json:"event"`
	Score   float64         `json:"score"`
	Reasons []events.Reason `json:"reasons,omitempty"`
}

// Opinion is the classifier's answer.
type Opinion struct {
	// Bot is the probability, 0..1, that the client is a bot.
	Bot    float64 `json:"bot"`
	Reason string  `json:"reason,omitempty"`
	// Cost is what the call cost in the configured currency (0 if free or
	// unknown).
	Cost float64 `json:"cost,omitempty"`
}

// Classifier gives an opinion about one query.
type Classifier interface {
	Classify(ctx context.Context, q Query) (Opinion, error)
}

// ErrBadAnswer is wrapped by every error about an unusable answer.
var ErrBadAnswer = errors.New("classifier: unusable answer")

// maxReasonRunes bounds the reason kept from an answer: it is shown in the
// admin UI and stored with the verdict.
const maxReasonRunes = 280

// maxAnswerBytes bounds the answer text that ParseOpinion accepts.
const maxAnswerBytes = 16 << 10

// ParseOpinion parses a classifier's answer: one JSON object
// {"bot": <number 0..1>, "reason": "<text>"}, optionally wrapped in a
// Markdown code fence and surrounded by white space. Anything else (other
// keys, trailing text, a bot value out of range or missing) is rejected:
// the answer comes from outside and may have been steered by the client
// being judged.
func ParseOpinion(answer string) (Opinion, error) {
	if len(answer) > maxAnswerBytes {
		return Opinion{}, fmt.Errorf("%w: answer longer than %d bytes", ErrBadAnswer, maxAnswerBytes)
	}
	s := stripFence(strings.TrimSpace(answer))
	var raw struct {
		Bot    *float64 `json:"bot"`
		Reason *string  `json:"reason"`
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return Opinion{}, fmt.Errorf("%w: %v", ErrBadAnswer, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Opinion{}, fmt.Errorf("%w: trailing data after the JSON object", ErrBadAnswer)
	}
	if raw.Bot == nil {
		return Opinion{}, fmt.Errorf("%w: no \"bot\" value", ErrBadAnswer)
	}
	if b := *raw.Bot; math.IsNaN(b) || b < 0 || b > 1 {
		return Opinion{}, fmt.Errorf("%w: \"bot\" = %v is outside 0..1", ErrBadAnswer, b)
	}
	op := Opinion{Bot: *raw.Bot}
	if raw.Reason != nil {
		op.Reason = cleanReason(*raw.Reason)
	}
	return op, nil
}

// stripFence removes a ``` or ```json fence around the whole answer.
func stripFence(s string) string {
	if !strings.HasPrefix(s, "```") || !strings.HasSuffix(s, "```") || len(s) < 6 {
		return s
	}
	inner := s[3 : len(s)-3]
	// Drop the info string ("json") up to the first newline.
	if i := strings.IndexByte(inner, '\n'); i >= 0 {
		if tag := strings.TrimSpace(inner[:i]); tag == "" || strings.EqualFold(tag, "json") {
			inner = inner[i+1:]
		}
	}
	return strings.TrimSpace(inner)
}

// cleanReason keeps printable text only, on one line, and bounds it.
func cleanReason(s string) string {
	var b strings.Builder
	n := 0
	space := false
	for _, r := range s {
		if n >= maxReasonRunes {
			b.WriteString("…")
			break
		}
		switch {
		case r == utf8.RuneError:
			continue
		case unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		case !unicode.IsPrint(r):
			continue
		}
		if space {
			b.WriteByte(' ')
			n++
			space = false
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// encodeJSON marshals without HTML escaping (the far side is not a
// browser, and escaped paths are harder to read in prompts).
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
