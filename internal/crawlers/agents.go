package crawlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Agent is one entry of the ai.robots.txt list.
type Agent struct {
	// Name is the user-agent token as the list spells it.
	Name string
	// Operator, Function and Respect are the list's free-text fields
	// (Respect says whether the agent honours robots.txt); they may hold
	// Markdown links.
	Operator string
	Function string
	Respect  string
}

// Bounds on the ai.robots.txt list (166 entries in 2026).
const maxAgents = 5000

// agentRecord is the part of a robots.json entry that is kept. Fields are
// decoded as any so that a type change upstream in one field does not make
// the whole list unusable.
type agentRecord struct {
	Operator any `json:"operator"`
	Function any `json:"function"`
	Respect  any `json:"respect"`
}

// parseAgents reads ai.robots.txt's robots.json, an object keyed by agent
// name, keeping the file's order. Names that cannot be matched in a user
// agent (empty, too long, control or non-ASCII bytes) are skipped and
// counted, as are exact duplicates.
func parseAgents(data []byte) (agents []Agent, skipped int, err error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := expectDelim(dec, '{'); err != nil {
		return nil, 0, fmt.Errorf("ai agents JSON: %w", err)
	}
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, 0, fmt.Errorf("ai agents JSON: %w", err)
		}
		name, _ := tok.(string) // object keys are always strings
		var rec agentRecord
		if err := dec.Decode(&rec); err != nil {
			return nil, 0, fmt.Errorf("ai agents JSON: entry %q: %w", name, err)
		}
		name = strings.TrimSpace(name)
		if !validAgentName(name) || seen[name] {
			skipped++
			continue
		}
		if len(agents) == maxAgents {
			return nil, 0, fmt.Errorf("ai agents JSON: more than %d agents", maxAgents)
		}
		seen[name] = true
		agents = append(agents, Agent{
			Name:     name,
			Operator: textField(rec.Operator),
			Function: textField(rec.Function),
			Respect:  textField(rec.Respect),
		})
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, 0, fmt.Errorf("ai agents JSON: %w", err)
	}
	if len(bytes.TrimSpace(data[dec.InputOffset():])) != 0 {
		return nil, 0, errors.New("ai agents JSON: data after the top-level object")
	}
	if len(agents) == 0 {
		return nil, skipped, errors.New("ai agents JSON: no usable agents")
	}
	return agents, skipped, nil
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("expected %q, found %v", want, tok)
	}
	return nil
}

// validAgentName accepts the printable ASCII names that a user agent can
// carry and the matcher can hold.
func validAgentName(name string) bool {
	if !validPattern(name) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if name[i] < 0x20 || name[i] > 0x7e {
			return false
		}
	}
	return true
}

func textField(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return ""
}
