package outbound

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// maxBackoff caps one wait between attempts.
const maxBackoff = 30 * time.Second

// permanent marks an error that retrying cannot fix.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent wraps err so that Retry stops at once and returns it.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// Retryable reports whether Retry would try again after err: not for
// Permanent errors, the context's own errors, the SSRF guard, or a
// *StatusError that is not retryable (4xx other than 429).
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	var p permanent
	if errors.As(err, &p) {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, ErrForbiddenAddress) || errors.Is(err, ErrBadURL) {
		return false
	}
	var se *StatusError
	if errors.As(err, &se) {
		return se.Retryable()
	}
	return true
}

// Retry calls fn up to attempts times (at least once), waiting base, 2×base,
// 4×base … (capped at 30s, with ±50 % jitter so that many senders do not
// retry in step) between attempts, or the server's Retry-After when it asks
// for longer. It stops early on success, on a non-retryable error and when
// ctx ends, and returns the last error.
func Retry(ctx context.Context, attempts int, base time.Duration, fn func(ctx context.Context) error) error {
	if attempts < 1 {
		attempts = 1
	}
	if base <= 0 {
		base = 100 * time.Millisecond
	}
	var err error
	for i := range attempts {
		if err = fn(ctx); err == nil || !Retryable(err) {
			return unwrapPermanent(err)
		}
		if i == attempts-1 {
			break
		}
		wait := backoff(base, i)
		var se *StatusError
		if errors.As(err, &se) && se.RetryAfter > wait {
			wait = min(se.RetryAfter, maxBackoff)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
	}
	return err
}

func unwrapPermanent(err error) error {
	var p permanent
	if errors.As(err, &p) {
		return p.err
	}
	return err
}

// backoff is base·2^attempt, capped, scaled by a random factor in [0.5, 1.5).
func backoff(base time.Duration, attempt int) time.Duration {
	d := base
	for range attempt {
		d *= 2
		if d >= maxBackoff {
			d = maxBackoff
			break
		}
	}
	return time.Duration(float64(d) * (0.5 + rand.Float64()))
}
