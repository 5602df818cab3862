package ejbca

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kind is what a caller should do about a failed call. Callers decide with
// the Is* functions below, never by matching messages.
type Kind int

const (
	// KindPermanent: EJBCA rejected the request itself (4xx); sending it
	// again unchanged fails again.
	KindPermanent Kind = iota
	// KindRetryable: a network error, a timeout, 429 or 5xx; the same call
	// may succeed later.
	KindRetryable
	// KindUnauthorized: EJBCA refused the credentials (it answers 403 for
	// every authentication and authorization failure), or the token endpoint
	// refused the client.
	KindUnauthorized
	// KindApprovalRequired: pkcs10enroll refused because approvals are
	// enabled for the CA or certificate profile; use the approval flow.
	KindApprovalRequired
	// KindPending: the operation waits for an administrator's approval (202).
	KindPending
	// KindNotFound: 404, an unknown CA, certificate or approval request, or an
	// endpoint this EJBCA does not have.
	KindNotFound
	// KindConflict: 409, e.g. a certificate already revoked.
	KindConflict
	// KindInvalidResponse: EJBCA answered success but the body was unusable
	// (not JSON, a certificate that does not parse or does not match the CSR).
	KindInvalidResponse
)

func (k Kind) String() string {
	switch k {
	case KindRetryable:
		return "retryable"
	case KindUnauthorized:
		return "unauthorized"
	case KindApprovalRequired:
		return "approval required"
	case KindPending:
		return "pending approval"
	case KindNotFound:
		return "not found"
	case KindConflict:
		return "conflict"
	case KindInvalidResponse:
		return "invalid response"
	default:
		return "permanent"
	}
}

// Error is every error the client returns for a call to EJBCA.
type Error struct {
	// Endpoint is the method and path template, e.g. "POST /v1/certificate/pkcs10enroll".
	Endpoint string
	// StatusCode is the HTTP status, 0 when no response arrived.
	StatusCode int
	// Message is EJBCA's error_message, or what the body said when it was not JSON.
	Message string
	// Kind classifies the error.
	Kind Kind
	// RetryAfter is the server's Retry-After, when it sent one.
	RetryAfter time.Duration
	// RequestID is the approval request id of a pending (202) answer, 0 if unknown.
	RequestID int
	// Err is the underlying transport or parsing error, if any.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("EJBCA ")
	b.WriteString(e.Endpoint)
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, " answered %d", e.StatusCode)
	}
	switch {
	case e.Message != "" && e.Err != nil:
		fmt.Fprintf(&b, ": %s: %v", e.Message, e.Err)
	case e.Message != "":
		b.WriteString(": ")
		b.WriteString(e.Message)
	case e.Err != nil:
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the Kind of err, or KindRetryable for errors that did not
// come from this package (a canceled context, for instance).
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindRetryable
}

// IsRetryable reports whether the same call may succeed later.
func IsRetryable(err error) bool { return err != nil && KindOf(err) == KindRetryable }

// IsUnauthorized reports whether EJBCA or the token endpoint refused the credentials.
func IsUnauthorized(err error) bool { return err != nil && KindOf(err) == KindUnauthorized }

// IsApprovalRequired reports whether pkcs10enroll refused because approvals are enabled.
func IsApprovalRequired(err error) bool { return err != nil && KindOf(err) == KindApprovalRequired }

// IsPending reports whether the operation waits for approval.
func IsPending(err error) bool { return err != nil && KindOf(err) == KindPending }

// IsNotFound reports a 404.
func IsNotFound(err error) bool { return err != nil && KindOf(err) == KindNotFound }

// IsConflict reports a 409.
func IsConflict(err error) bool { return err != nil && KindOf(err) == KindConflict }

// IsPermanent reports whether retrying the same request cannot help:
// rejections of the request and unusable responses.
func IsPermanent(err error) bool {
	switch KindOf(err) {
	case KindPermanent, KindInvalidResponse, KindNotFound, KindConflict:
		return err != nil
	}
	return false
}

// RetryAfter returns the server's requested delay, if it gave one.
func RetryAfter(err error) (time.Duration, bool) {
	var e *Error
	if errors.As(err, &e) && e.RetryAfter > 0 {
		return e.RetryAfter, true
	}
	return 0, false
}

// PendingRequestID returns the approval request id of a pending answer.
func PendingRequestID(err error) (int, bool) {
	var e *Error
	if errors.As(err, &e) && e.Kind == KindPending && e.RequestID > 0 {
		return e.RequestID, true
	}
	return 0, false
}

// Message returns what EJBCA said (error_message) for err, or err's text.
func Message(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Message != "" {
		return e.Message
	}
	if err == nil {
		return ""
	}
	return err.Error()
}
