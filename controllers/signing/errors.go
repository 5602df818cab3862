package signing

import (
	"errors"
	"fmt"
	"time"
)

// The errors the signer and the request flow return, which the decisions
// (decideunsigned.go) turn into a status: fail, wait or retry. How an
// EJBCA answer is classified is internal/ejbca's; these say what the
// signing core made of it. IssuerUnansweredError, the wait for an issuer's
// re-check, is in issuerreports.go with the rest of what the request side
// tells the issuer controllers.

// PermanentError is a request problem no retry can fix (a CSR the issuer
// cannot name, an approval rejected in EJBCA, a wait past maxWait). Err,
// when set, is the error it was found from (EJBCA's refusal, a parse
// error); Msg already says it. A PermanentError fails the request whatever
// Err is, even an error that alone would be retried or waited out.
type PermanentError struct {
	Msg string
	Err error
}

func (e *PermanentError) Error() string { return e.Msg }
func (e *PermanentError) Unwrap() error { return e.Err }

// StillIssuingError: EJBCA gave no answer to an attempt and may still be
// issuing; the request waits and searches again instead of enrolling.
type StillIssuingError struct {
	Attempted, LookAgain time.Time
	// Inherited: this process sent nothing; a previous manager may have,
	// at the latest at Attempted.
	Inherited bool
}

func (e *StillIssuingError) Error() string {
	if e.Inherited {
		return fmt.Sprintf("a previous manager may have sent an enrolment for this request at the latest at %s and EJBCA may still be issuing it; no certificate found yet, looking again at %s before enrolling",
			e.Attempted.UTC().Format(time.RFC3339), e.LookAgain.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("EJBCA gave no answer to the enrolment sent at %s and may still be issuing it; looking for the certificate again at %s before enrolling again",
		e.Attempted.UTC().Format(time.RFC3339), e.LookAgain.UTC().Format(time.RFC3339))
}

// ErrNotLeader: this process no longer holds its leader election lease
// (judged from its last renewal), so it must not call EJBCA or write.
var ErrNotLeader = errors.New("this process no longer holds the leader election lease")

// IssuerRefusedError: EJBCA refused the issuer's own CA or profile (not one
// a request chose through an allowed override). That is the issuer's fault:
// the request waits for the issuer instead of failing.
type IssuerRefusedError struct{ Err error }

func (e *IssuerRefusedError) Error() string { return e.Err.Error() }
func (e *IssuerRefusedError) Unwrap() error { return e.Err }

// ThrottledError: the issuer's rate limit on EJBCA calls holds the request
// back until it lets a call go. The request is never Failed for it.
type ThrottledError struct{ Wait time.Duration }

func (e *ThrottledError) Error() string {
	return "held back by the issuer's rate limit on EJBCA calls (spec.rateLimit, or the manager's --ejbca-qps); tried again as soon as the limit lets a call go"
}
