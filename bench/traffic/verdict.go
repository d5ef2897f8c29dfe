package main

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// verdict is what one response says the edge decided, read from the
// response alone.
type verdict uint8

const (
	verdictAllow verdict = iota
	verdictThrottle
	verdictChallenge
	verdictTarpit // a response that did not finish in time; also from decisions
	verdictBlock
	verdictError // no response at all (connection refused, reset)
	numVerdicts
)

var verdictNames = [numVerdicts]string{"allow", "throttle", "challenge", "tarpit", "block", "error"}

// MarshalText writes verdicts by name in the JSON records.
func (v verdict) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// verdictCounts counts requests by verdict.
type verdictCounts [numVerdicts]int

// MarshalJSON writes the counts as an object keyed by verdict name.
func (c verdictCounts) MarshalJSON() ([]byte, error) {
	m := make(map[string]int, numVerdicts)
	for v, n := range c {
		if n > 0 {
			m[verdict(v).String()] = n
		}
	}
	return json.Marshal(m)
}

func (v verdict) String() string {
	if v < numVerdicts {
		return verdictNames[v]
	}
	return "unknown"
}

// classifier reads verdicts from responses.
type classifier struct {
	BlockStatus     int    // edge.block.status
	ChallengeMarker []byte // present in every challenge page
	BlockMarker     []byte // present in the block page; empty: status alone decides
}

// defaultChallengeMarker is the path prefix every challenge page loads its
// stylesheet, script and verify form from.
const defaultChallengeMarker = "/.scrapedefense/challenge/"

func (c classifier) classify(r response) verdict {
	switch {
	case r.TimedOut:
		return verdictTarpit
	case r.Status == http.StatusTooManyRequests:
		return verdictThrottle
	case len(c.ChallengeMarker) > 0 && bytes.Contains(r.Body, c.ChallengeMarker):
		return verdictChallenge
	case r.Status == c.BlockStatus && (len(c.BlockMarker) == 0 || bytes.Contains(r.Body, c.BlockMarker)):
		return verdictBlock
	}
	return verdictAllow
}
