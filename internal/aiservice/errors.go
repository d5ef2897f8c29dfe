package aiservice

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Code is the stable machine-readable reason for a rejected request. Senders
// branch on it; docs/webhook.md lists every value.
type Code string

// Rejection codes. Adding one means documenting it in docs/webhook.md.
const (
	CodeNotFound              Code = "not_found"
	CodeMethodNotAllowed      Code = "method_not_allowed"
	CodeUnsupportedMediaType  Code = "unsupported_media_type"
	CodeUnauthenticated       Code = "unauthenticated"
	CodeStaleSignature        Code = "stale_signature"
	CodeReplayedSignature     Code = "replayed_signature"
	CodeBodyTooLarge          Code = "body_too_large"
	CodeMalformedJSON         Code = "malformed_json"
	CodeUnknownField          Code = "unknown_field"
	CodeUnsupportedVersion    Code = "unsupported_version"
	CodeSchemaViolation       Code = "schema_violation"
	CodeInvalidIP             Code = "invalid_ip"
	CodeInvalidTime           Code = "invalid_time"
	CodeTooManyEvents         Code = "too_many_events"
	CodeInvalidCommand        Code = "invalid_command"
	CodeInvalidIdempotencyKey Code = "invalid_idempotency_key"
	CodeIdempotencyInProgress Code = "idempotency_in_progress"
	CodeRateLimited           Code = "rate_limited"
	CodeQueueFull             Code = "queue_full"
	CodeNotEnabled            Code = "not_enabled"
	CodeUnavailable           Code = "unavailable"
	CodeInternal              Code = "internal"
)

// allCodes fixes the label set of webhook_rejected_total.
var allCodes = [...]Code{
	CodeNotFound, CodeMethodNotAllowed, CodeUnsupportedMediaType,
	CodeUnauthenticated, CodeStaleSignature, CodeReplayedSignature,
	CodeBodyTooLarge, CodeMalformedJSON, CodeUnknownField,
	CodeUnsupportedVersion, CodeSchemaViolation, CodeInvalidIP,
	CodeInvalidTime, CodeTooManyEvents, CodeInvalidCommand,
	CodeInvalidIdempotencyKey, CodeIdempotencyInProgress, CodeRateLimited,
	CodeQueueFull, CodeNotEnabled, CodeUnavailable, CodeInternal,
}

// Error is a rejection: what the caller gets back as
// {"error":{"code":...,"message":...}} with Status. Ingest returns it too,
// so in-process senders can branch on Code with errors.As.
type Error struct {
	Status  int
	Code    Code
	Message string
	// RetryAfter, when positive, is sent as the Retry-After header.
	RetryAfter time.Duration
	// Err is the underlying cause (for logs and errors.Is; never sent).
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return string(e.Code) + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

func reject(status int, code Code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func badRequest(code Code, format string, args ...any) *Error {
	return reject(http.StatusBadRequest, code, format, args...)
}

// retryAfterSeconds renders d for the Retry-After header: whole seconds,
// rounded up, at least 1.
func retryAfterSeconds(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10)
}
