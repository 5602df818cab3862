package signing

import (
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
)

// unsignedInput is what deciding an answer without a certificate depends
// on, whatever the request's kind.
type unsignedInput struct {
	Result *SignResult
	Issuer IssuerState
	Now    time.Time
	// Created is the request's creation: the retry window and backoff
	// count from it.
	Created         time.Time
	RetryWindow     time.Duration
	ApprovalMaxWait time.Duration
	// Request names the request in issuer fault messages, e.g.
	// "CertificateRequest team-a/web-1".
	Request string
}

// unsigned is the decision on an answer without a certificate: the request
// fails, or it waits (for approval, the issuer, a retry) and is looked at
// again.
type unsigned struct {
	Failed       bool
	Message      string
	RequeueAfter time.Duration
	// CallAfter: EJBCA is not called for the request again sooner than
	// this (its backoff, Retry-After, approval poll, settle time); zero
	// when whatever wakes it may call (it waits for its issuer).
	CallAfter              time.Duration
	EventReason, EventType string
	// Outcome labels the request metric.
	Outcome     string
	IssuerFault *IssuerFault
	// ApprovalSince is when the wait for an EJBCA administrator began.
	ApprovalSince time.Time
}

// decideUnsigned classifies EJBCA's answer when it is not a certificate.
// Both request kinds share it, so a CertificateSigningRequest is retried,
// waits and fails exactly like a CertificateRequest.
func decideUnsigned(in unsignedInput) unsigned {
	r := in.Result
	if a := r.WaitingForApproval; a != nil {
		msg := fmt.Sprintf("waiting for EJBCA approval of request %d since %s", a.RequestID, a.Since.UTC().Format(time.RFC3339))
		if a.RequestID == 0 {
			msg = fmt.Sprintf("waiting for EJBCA approval of the end entity %q since %s (EJBCA gave no approval request id)", a.EndEntity, a.Since.UTC().Format(time.RFC3339))
		}
		u := gated(waiting(msg, a.PollAfter, EventWaitingForApproval, corev1.EventTypeNormal, "waiting_for_approval"))
		u.ApprovalSince = a.Since
		return u
	}
	if r.Err == nil {
		return unsigned{Failed: true, Message: "EJBCA returned neither a certificate nor an error", Outcome: "failed"}
	}

	msg := r.Err.Error()
	var throttled *ThrottledError
	if errors.As(r.Err, &throttled) {
		// Never failed, and never an event each time: the limit is the
		// issuer owner's choice.
		return gated(waiting(fmt.Sprintf("Waiting: %s", msg), max(throttled.Wait, 10*time.Millisecond), EventRetrying, corev1.EventTypeNormal, "throttled"))
	}
	var still *StillIssuingError
	if errors.As(r.Err, &still) {
		// Never failed, even past the retry deadline: a new request would
		// enrol a second certificate while this one may be on its way.
		wait := max(still.LookAgain.Sub(in.Now), time.Second)
		return gated(waiting(msg, wait, EventRetrying, corev1.EventTypeNormal, "pending"))
	}
	var refused *IssuerRefusedError
	if errors.As(r.Err, &refused) {
		// The issuer's own CA or profile is unknown to EJBCA: the issuer's
		// fault, so the request waits for it like for any issuer fault and
		// is signed within seconds of the fix.
		u := waiting(fmt.Sprintf("Waiting for %s: EJBCA refused its configuration: %s", in.Issuer.Ref, msg),
			0, EventIssuerNotReady, corev1.EventTypeWarning, "issuer_not_ready")
		u.IssuerFault = &IssuerFault{Reason: v1alpha1.ReasonProfileNotFound,
			Message: fmt.Sprintf("EJBCA refused the issuer's configuration when signing %s: %s", in.Request, msg)}
		return u
	}
	var unanswered *IssuerUnansweredError
	if errors.As(r.Err, &unanswered) {
		// EJBCA may be down: the request waits for its issuer's re-check,
		// which wakes it, and calls again no sooner than its backoff (an
		// EJBCA that answers checks but drops enrolments is not asked
		// more often than before); the requeue only covers a lost wake.
		if deadline := retryDeadline(in.Result, in.Issuer, in.Created, in.RetryWindow, in.ApprovalMaxWait); !in.Now.Before(deadline) {
			return unsigned{Failed: true, Outcome: "failed", Message: fmt.Sprintf("Giving up: still failing at the retry deadline %s: %s",
				deadline.UTC().Format(time.RFC3339), msg)}
		}
		u := waiting(msg, MinHealthCheckSpacing, EventIssuerNotReady, corev1.EventTypeWarning, "issuer_not_ready")
		if unanswered.Err != nil {
			u.CallAfter = RetryBackoff(in.Now.Sub(in.Created), unanswered.Err)
		}
		return u
	}
	var permanent *PermanentError
	if errors.As(r.Err, &permanent) {
		// Whatever it wraps (a 403 for a profile the request chose): the
		// request's own problem, which no retry or issuer fix can help.
		return unsigned{Failed: true, Message: msg, Outcome: "failed"}
	}
	// EJBCA's 403 to a request may be about this request alone (an end
	// entity under a CA or profile the issuer's role may not edit): the
	// request is retried and the issuer re-checked (signThrough), and only
	// the check's own refusal takes a shared issuer out of service.
	refusedRequest := requestForbidden(r.Err)
	retryable := ejbca.IsRetryable(r.Err) || refusedRequest
	unauthorized := ejbca.IsUnauthorized(r.Err) && !refusedRequest
	if !retryable && !unauthorized {
		return unsigned{Failed: true, Message: msg, Outcome: "failed"}
	}
	if deadline := retryDeadline(in.Result, in.Issuer, in.Created, in.RetryWindow, in.ApprovalMaxWait); !in.Now.Before(deadline) {
		return unsigned{Failed: true, Outcome: "failed", Message: fmt.Sprintf("Giving up: still failing at the retry deadline %s: %s",
			deadline.UTC().Format(time.RFC3339), msg)}
	}
	if unauthorized {
		u := waiting(fmt.Sprintf("EJBCA refused %s's credentials; waiting for the issuer to be Ready again: %s", in.Issuer.Ref, msg),
			0, EventIssuerNotReady, corev1.EventTypeWarning, "issuer_not_ready")
		u.IssuerFault = &IssuerFault{Reason: v1alpha1.ReasonUnauthorized,
			Message: fmt.Sprintf("EJBCA refused the credentials when signing %s: %s", in.Request, msg)}
		return u
	}
	wait := RetryBackoff(in.Now.Sub(in.Created), r.Err)
	if refusedRequest {
		return gated(waiting(fmt.Sprintf("EJBCA refused this request (403), will retry while %s is re-checked: %s", in.Issuer.Ref, msg),
			wait, EventRetrying, corev1.EventTypeWarning, "pending"))
	}
	return gated(waiting(fmt.Sprintf("EJBCA call failed, will retry: %s", msg), wait, EventRetrying, corev1.EventTypeWarning, "pending"))
}

// gated makes a wait one before which EJBCA is not called, whatever wakes
// the request.
func gated(u unsigned) unsigned {
	u.CallAfter = u.RequeueAfter
	return u
}

func waiting(msg string, requeue time.Duration, eventReason, eventType, outcome string) unsigned {
	return unsigned{Message: msg, RequeueAfter: requeue, EventReason: eventReason, EventType: eventType, Outcome: outcome}
}

// issuerWaitMessage says why a request waits for its issuer.
func issuerWaitMessage(s IssuerState) string {
	if !s.Found {
		return fmt.Sprintf("Waiting for %s: not found", s.Ref)
	}
	msg := fmt.Sprintf("Waiting for %s to be Ready", s.Ref)
	if s.Reason != "" {
		msg += fmt.Sprintf(" (%s: %s)", s.Reason, s.Message)
	}
	return msg
}

// retryDeadline is when retryable errors stop being retried, for a request
// of any kind created at created. While a request waits for approval (its
// verified start, from the signer) it is the approval's start plus the
// issuer's maxWait. Otherwise it is the retry window counted from the
// request's first chance to reach EJBCA: its creation, or, if its issuer
// became Ready later, that moment, so time spent waiting for the issuer does
// not count. Both come from the API server (creation time, the issuer's
// status), so a restart does not reset the window and nothing a requester
// writes moves it.
func retryDeadline(r *SignResult, iss IssuerState, created time.Time, window, approvalMaxWait time.Duration) time.Time {
	if r != nil && !r.ApprovalSince.IsZero() {
		return r.ApprovalSince.Add(approvalMaxWait)
	}
	start := created
	if iss.ReadySince.After(start) {
		start = iss.ReadySince
	}
	return start.Add(window)
}
