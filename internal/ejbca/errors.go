package ejbca

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// maxMessageBytes bounds the Message an Error takes from an answer: EJBCA's
// own messages are short, and a message ends up in conditions and events.
const maxMessageBytes = 1024

// maxRetryAfter caps a server's Retry-After: no answer parks a request for
// longer (nor overflows a Duration).
const maxRetryAfter = time.Hour

// clip makes s valid UTF-8 and cuts it to at most n bytes, on a rune
// boundary, ending the cut text with "...".
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	cut := max(n-len("..."), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// Kind is what a caller should do about a failed call. Callers outside
// this package decide with the Is* predicates (here and in classify.go)
// and UnknownNameOf, never by reading an Error's Kind, StatusCode or
// Message: matching EJBCA's wording happens in this package only.
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
	// KindPending: the operation waits for an administrator's approval (202),
	// e.g. a revocation on a profile that needs approval.
	KindPending
	// KindNotFound: 404 or an answer that means the same: an unknown CA,
	// certificate or approval request, or (certificaterequest) an end entity
	// that does not exist (yet), see IsEndEntityNotFound.
	KindNotFound
	// KindConflict: 409, e.g. a certificate already revoked.
	KindConflict
	// KindInvalidResponse: EJBCA answered success but the body was unusable
	// (not JSON, a certificate that does not parse or does not match the CSR).
	KindInvalidResponse
	// KindUnsupported: this EJBCA does not have the endpoint at all (RESTEasy's
	// 404 "Could not find resource for full path"), e.g. the approval API
	// on versions before it existed, or /v1/endentity on Community Edition.
	KindUnsupported
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
	case KindUnsupported:
		return "unsupported"
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
	// UnreadableSuccess marks a 2xx from an issuing call whose body could
	// not be read: EJBCA probably issued.
	UnreadableSuccess bool
	// NotSent marks a call that certainly never reached EJBCA: the
	// connection or TLS handshake failed, or no token could be had.
	NotSent bool
	// Proxy marks an answer that came from something in front of EJBCA (a
	// reverse proxy's HTML 404 or 5xx page), not from EJBCA's REST API.
	Proxy bool
	// TokenURL is set on errors of the OAuth2 token endpoint (Endpoint
	// "POST token endpoint"): the identity provider failed, not EJBCA.
	TokenURL string
	// Node is, for a client of several EJBCA nodes, the node (as written
	// in the issuer) whose answer or failure this is; OtherNodes says what
	// the nodes tried before it in the same call answered. Both are empty
	// for a client of one node.
	Node, OtherNodes string

	// heldBack marks a call the issuer's rate limit held back: no node
	// was asked.
	heldBack bool

	// oauthCode is the token endpoint's OAuth2 error code, see OAuthErrorCode.
	oauthCode string
}

func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.TokenURL != "":
		// The identity provider's failure, named as such: EJBCA was not called.
		fmt.Fprintf(&b, "the identity provider at %s (OAuth2 token endpoint)", e.TokenURL)
		if e.StatusCode != 0 {
			fmt.Fprintf(&b, " answered %d", e.StatusCode)
		} else {
			b.WriteString(" gave no usable token")
		}
	default:
		b.WriteString("EJBCA ")
		b.WriteString(e.Endpoint)
		if e.Node != "" {
			b.WriteString(" at ")
			b.WriteString(e.Node)
		}
		if e.StatusCode != 0 {
			fmt.Fprintf(&b, " answered %d", e.StatusCode)
		}
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
	if e.OtherNodes != "" {
		fmt.Fprintf(&b, " (before it: %s)", e.OtherNodes)
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

// MayHaveIssued reports whether an issuing call that failed may still have
// issued: no answer arrived, a proxy in front of EJBCA answered (its 5xx or
// 404 page), or EJBCA answered 2xx with a body that could not be read. The
// certificate must then be looked for before enrolling again. EJBCA's own
// error answers (JSON, any status) mean it did not issue.
func MayHaveIssued(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return err != nil
	}
	if e.NotSent {
		return false
	}
	return e.StatusCode == 0 || e.UnreadableSuccess || e.Proxy
}

// NoAnswer reports a call that got no HTTP answer at all: refused, reset or
// timed out.
func NoAnswer(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.StatusCode == 0 && e.Kind == KindRetryable
}

// IsUnauthorized reports whether EJBCA or the token endpoint refused the credentials.
func IsUnauthorized(err error) bool { return err != nil && KindOf(err) == KindUnauthorized }

// IsApprovalRequired reports whether pkcs10enroll refused because approvals are enabled.
func IsApprovalRequired(err error) bool { return err != nil && KindOf(err) == KindApprovalRequired }

// IsNotFound reports a 404.
func IsNotFound(err error) bool { return err != nil && KindOf(err) == KindNotFound }

// IsConflict reports a 409.
func IsConflict(err error) bool { return err != nil && KindOf(err) == KindConflict }

// IsUnsupported reports that this EJBCA has no such endpoint (RESTEasy's
// 404 for an unknown path): an older version or another edition. Calling
// again cannot help; use what the version has instead.
func IsUnsupported(err error) bool { return err != nil && KindOf(err) == KindUnsupported }

// IsEndEntityNotFound reports that EnrollForEndEntity was refused because
// the end entity does not exist: in the approval flow, the addition has not
// been approved (and executed) yet, or never will be. EJBCA answers this with
// a 400 "Wrong username or password" (SignSessionBean.createCertificateWS
// does not say which of the two was wrong; a wrong password has its own
// message), some versions with a 404 naming the missing user.
func IsEndEntityNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == KindNotFound && e.Endpoint == endpointCertificateRequest &&
		endEntityMissing.MatchString(e.Message)
}

// IsPermanent reports whether retrying the same request cannot help:
// rejections of the request, unusable responses and missing endpoints.
// Callers that can wait or switch to another way check IsEndEntityNotFound
// and IsUnsupported first.
func IsPermanent(err error) bool {
	switch KindOf(err) {
	case KindPermanent, KindInvalidResponse, KindNotFound, KindConflict, KindUnsupported:
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
