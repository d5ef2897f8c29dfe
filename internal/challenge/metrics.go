package challenge

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// reason is why a pass or a solution was refused. The set is fixed, so the
// reason label of challenges_failed_total stays bounded.
type reason string

const (
	// Pass cookie (method label "pass"); tampered, expired, foreign_prefix,
	// wrong_ua and unknown_key also apply to sealed challenge records.
	reasonTampered      reason = "tampered"       // bad signature, seal, version or field
	reasonTruncated     reason = "truncated"      // shorter than a token
	reasonOversized     reason = "oversized"      // longer than a token
	reasonBadBase64     reason = "bad_base64"     // not unpadded URL-safe base64
	reasonExpired       reason = "expired"        // past its expiry
	reasonForeignPrefix reason = "foreign_prefix" // issued to another network
	reasonWrongUA       reason = "wrong_ua"       // issued to another user agent
	reasonUnknownKey    reason = "unknown_key"    // signed by a key not in the keyring

	// Solutions (method label "pow", "nojs" or "fallback").
	reasonBadForm          reason = "bad_form"          // missing, repeated or malformed field
	reasonReplayed         reason = "replayed"          // already solved once
	reasonWrongDifficulty  reason = "wrong_difficulty"  // difficulty differs from the one issued
	reasonBadNonce         reason = "bad_nonce"         // nonce is not a decimal number
	reasonInsufficientWork reason = "insufficient_work" // hash lacks the leading zero bits
	reasonTooFast          reason = "too_fast"          // no-JS path came back before its wait
	reasonWrongMethod      reason = "wrong_method"      // solution for another kind of challenge
	reasonNoCookie         reason = "no_cookie"         // no-JS path without the challenge cookie
	reasonStoreError       reason = "store_error"       // the store failed; not the client's fault
)

// passMethod is the method label for pass cookie failures.
const passMethod = "pass"

// solveBuckets include the SLO thresholds used across the project (0.5, 1,
// 1.5, 2, 5 s) plus the slow tail of the no-JS fallback.
var solveBuckets = []float64{0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 20, 30, 60}

type metrics struct {
	issued *prometheus.CounterVec
	passed *prometheus.CounterVec
	failed *prometheus.CounterVec
	solve  *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "challenges_issued_total",
			Help: "Challenge pages issued, by method (nojs, pow).",
		}, []string{"method"}),
		passed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "challenges_passed_total",
			Help: "Challenges solved and passes issued, by method (nojs, pow, fallback).",
		}, []string{"method"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "challenges_failed_total",
			Help: "Rejected solutions and pass cookies, by method (pass for cookies) and reason.",
		}, []string{"method", "reason"}),
		solve: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "challenge_solve_seconds",
			Help:    "Time from issuing a challenge to its accepted solution, by method.",
			Buckets: solveBuckets,
		}, []string{"method"}),
	}
	for _, c := range []prometheus.Collector{m.issued, m.passed, m.failed, m.solve} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("register challenge metrics: %w (one Service per registry)", err)
			}
			return nil, fmt.Errorf("register challenge metrics: %w", err)
		}
	}
	return m, nil
}
