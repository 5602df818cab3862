package signing

import (
	"crypto/x509"
	"fmt"
	"time"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
)

// IssuerState is what the decision needs to know about the request's issuer.
type IssuerState struct {
	// Ref names the issuer for messages, e.g. `EJBCAIssuer "team-a/ejbca"`.
	Ref   string
	Found bool
	// Ready is true when the issuer's Ready condition is True for its
	// current generation.
	Ready bool
	// Reason and Message are the issuer's Ready condition, when not Ready.
	Reason, Message string
	// ReadySince is when the issuer last became Ready (its Ready
	// condition's lastTransitionTime); time spent waiting for the issuer
	// does not count against a request's retry window.
	ReadySince time.Time
	// UseRequestedDuration is the issuer's useRequestedDuration.
	UseRequestedDuration bool
	// FailUnmet fails a request whose certificate lacks what it asked for
	// (the issuer's unmetRequest: Fail), instead of warning.
	FailUnmet bool
}

// Approval is a request waiting for an EJBCA administrator.
type Approval struct {
	// RequestID is EJBCA's approval request id, 0 when EJBCA gave none.
	RequestID int
	// EndEntity is the end entity waiting to be added.
	EndEntity string
	Since     time.Time
	PollAfter time.Duration
}

// SignResult is the outcome of asking EJBCA: a certificate, a wait for
// approval, or an error: *PermanentError fails the request, other errors are
// classified with the ejbca package's Is* functions (errors from elsewhere,
// such as the API server's, are retryable).
type SignResult struct {
	Certificate        *ejbca.Certificate
	WaitingForApproval *Approval
	Err                error
	// ApprovalSince is when the request's verified approval wait began; the
	// issuer's approval.maxWait, not the retry window, then bounds retries.
	ApprovalSince time.Time
	// Warnings are recorded as Warning events on the request.
	Warnings []string
}

// Input is everything the status decision depends on.
type Input struct {
	Request *cmapi.CertificateRequest
	Issuer  IssuerState
	Now     time.Time
	// RetryWindow is how long retryable errors are retried (--retry-window).
	RetryWindow time.Duration
	// ApprovalMaxWait is the issuer's approval.maxWait.
	ApprovalMaxWait time.Duration
	// Result is nil until EJBCA was asked.
	Result *SignResult
}

// Action is what the reconciler does next.
type Action int

const (
	// ActionIgnore: not ours, already final, or not approved yet.
	ActionIgnore Action = iota
	// ActionSign: ask EJBCA, then decide again with the result.
	ActionSign
	// ActionUpdate: write the decided status.
	ActionUpdate
)

// Event is a Kubernetes event to record on the request.
type Event struct {
	Type, Reason, Message string
}

// Decision is the status a request should get.
type Decision struct {
	Action  Action
	Status  cmmeta.ConditionStatus
	Reason  string
	Message string
	// Failed sets status.failureTime: the request is final.
	Failed          bool
	Certificate, CA []byte
	// Leaf is Certificate's first certificate as EJBCA's answer was
	// parsed, so the status write does not parse the PEM again.
	Leaf         *x509.Certificate
	RequeueAfter time.Duration
	// CallAfter: EJBCA is not called for the request sooner than this
	// after the decision, whatever wakes it (see CallGate).
	CallAfter time.Duration
	Event     *Event
	// Warnings are further Warning events, e.g. a certificate that lacks
	// what the request asked for.
	Warnings []Event
	// Notices are differences the issuer's configuration made, reported
	// on the issuer (through the issuer controller), not on the request.
	Notices []IssuerNotice
	// IssuerFault, when set, is reported to the issuer controller (the
	// only writer of issuers), which marks the issuer not Ready with it:
	// EJBCA refused the issuer's credentials or configuration.
	IssuerFault *IssuerFault
	// Outcome labels the request metric.
	Outcome string
	// ApprovalSince is when the wait for an EJBCA administrator began
	// (Outcome waiting_for_approval).
	ApprovalSince time.Time
}

// Event reasons recorded on CertificateRequests.
const (
	EventIssued             = "Issued"
	EventWaitingForApproval = "WaitingForApproval"
	EventFailed             = "Failed"
	EventIssuerNotReady     = "IssuerNotReady"
	EventRetrying           = "Retrying"
	EventUnmetRequest       = "UnmetRequest"
	EventIgnoredAnnotations = "IgnoredAnnotations"
	EventDurationMismatch   = "DurationMismatch"
)

// Decide is the whole CertificateRequest contract as a pure function of the
// request, its issuer, the clock and EJBCA's answer.
func Decide(in Input) Decision {
	cr := in.Request
	if !IsOurs(cr.Spec.IssuerRef) || IsFinal(cr) {
		return Decision{Action: ActionIgnore}
	}
	if conditionTrue(cr, cmapi.CertificateRequestConditionDenied) {
		return Decision{Action: ActionUpdate, Status: cmmeta.ConditionFalse, Reason: cmapi.CertificateRequestReasonDenied,
			Message: "The CertificateRequest was denied by an approval controller", Failed: true, Outcome: "denied",
			Event: &Event{corev1.EventTypeWarning, EventFailed, "The CertificateRequest was denied; it will not be signed"}}
	}
	if !conditionTrue(cr, cmapi.CertificateRequestConditionApproved) {
		return Decision{Action: ActionIgnore}
	}
	if !in.Issuer.Found || !in.Issuer.Ready {
		msg := issuerWaitMessage(in.Issuer)
		return pending(cr, msg, 0, EventIssuerNotReady, corev1.EventTypeWarning, "issuer_not_ready")
	}
	if in.Result == nil {
		return Decision{Action: ActionSign}
	}

	d := decideResult(in)
	d.Warnings = append(ignoredAnnotations(in.Result), d.Warnings...)
	return d
}

// decideResult decides a request from EJBCA's answer.
func decideResult(in Input) Decision {
	cr, r := in.Request, in.Result
	switch {
	case r.Certificate != nil:
		s := decideSigned(r.Certificate, usageDifferences(cr.Spec.IsCA, cr.Spec.Usages, r.Certificate.Leaf),
			durationMismatch(cr, r.Certificate.Leaf, in.Issuer.UseRequestedDuration), in.Issuer.UseRequestedDuration, in.Issuer.FailUnmet)
		if s.FailedMessage != "" {
			return failed(cr, s.FailedMessage)
		}
		return Decision{Action: ActionUpdate, Status: cmmeta.ConditionTrue, Reason: cmapi.CertificateRequestReasonIssued,
			Message:     fmt.Sprintf("Certificate issued by EJBCA (serial %s)", r.Certificate.SerialNumber),
			Certificate: r.Certificate.ChainPEM, CA: r.Certificate.CAPEM, Leaf: r.Certificate.Leaf, Outcome: "issued", Event: &s.Event, Warnings: s.Warnings, Notices: s.Notices}
	}
	u := decideUnsigned(unsignedInput{Result: r, Issuer: in.Issuer, Now: in.Now, Created: cr.CreationTimestamp.Time,
		RetryWindow: in.RetryWindow, ApprovalMaxWait: in.ApprovalMaxWait, Request: "CertificateRequest " + cr.Namespace + "/" + cr.Name})
	if u.Failed {
		return failed(cr, u.Message)
	}
	d := pending(cr, u.Message, u.RequeueAfter, u.EventReason, u.EventType, u.Outcome)
	d.IssuerFault, d.CallAfter = u.IssuerFault, u.CallAfter
	d.ApprovalSince = u.ApprovalSince
	return d
}

// durationMismatch is how the issued validity differs from the request's
// spec.duration; zero when it asked for none.
func durationMismatch(cr *cmapi.CertificateRequest, leaf *x509.Certificate, useRequested bool) validity {
	if cr.Spec.Duration == nil {
		return validity{}
	}
	return validityMismatch(cr.Spec.Duration.Duration, leaf, useRequested)
}

// validity is how an issued certificate's validity differs from the
// requested one, beyond EJBCA's backdating and rounding (an hour, or 1% of
// the duration). At most one of Shorter and Longer is set.
type validity struct {
	// Shorter can hurt the request: the certificate ends before the
	// requester planned, and cert-manager renews it sooner (at a third of
	// its validity left when the Certificate's renewBefore is longer than
	// it; cert-manager refuses a renewBefore of the duration or more, so a
	// validity shorter than the renewal window is always shorter than
	// requested). A Warning on the request.
	Shorter string
	// Longer comes from the issuer's configuration (the certificate
	// profile's validity, or one that does not allow a validity override):
	// the same for every request through the issuer, so it is reported on
	// the issuer, once an hour, not on each request.
	Longer string
	// Requested is the requested validity, Issued the certificate's.
	Requested, Issued time.Duration
}

// validityMismatch is durationMismatch for a request of any kind that asked
// for requested.
func validityMismatch(requested time.Duration, leaf *x509.Certificate, useRequested bool) validity {
	if requested <= 0 || leaf.NotAfter.IsZero() {
		return validity{}
	}
	issued := leaf.NotAfter.Sub(leaf.NotBefore)
	diff := issued - requested
	if diff < 0 {
		diff = -diff
	}
	if diff <= max(time.Hour, requested/100) {
		return validity{}
	}
	why := "the issuer's useRequestedDuration is off, so EJBCA's certificate profile decides the validity"
	if useRequested {
		why = "EJBCA did not apply the requested end time: it needs EJBCA 9.3.3 or later and a certificate profile that allows validity override, and caps it at the profile's and the CA's validity"
	}
	v := validity{Requested: requested, Issued: issued}
	if issued < requested {
		v.Shorter = fmt.Sprintf("The certificate is valid for %s (until %s), shorter than the requested %s: %s; cert-manager renews it sooner than planned",
			issued.Round(time.Minute), leaf.NotAfter.UTC().Format(time.RFC3339), requested, why)
	} else {
		v.Longer = fmt.Sprintf("certificates are valid for %s, longer than the %s requested: %s",
			issued.Round(time.Minute), requested, why)
	}
	return v
}

// RetryBackoff grows with the request's age, from 2s to 1m, and is never
// shorter than EJBCA's Retry-After. It depends only on the age, so a restart
// does not reset it and no per-request counter is needed.
func RetryBackoff(age time.Duration, err error) time.Duration {
	d := age / 2
	if d < 2*time.Second {
		d = 2 * time.Second
	}
	if d > time.Minute {
		d = time.Minute
	}
	if ra, ok := ejbca.RetryAfter(err); ok && ra > d {
		d = ra
	}
	return d
}

func pending(cr *cmapi.CertificateRequest, msg string, requeue time.Duration, eventReason, eventType, outcome string) Decision {
	d := Decision{Action: ActionUpdate, Status: cmmeta.ConditionFalse, Reason: cmapi.CertificateRequestReasonPending,
		Message: msg, RequeueAfter: requeue, Outcome: outcome}
	if c := ReadyCondition(cr); c == nil || c.Reason != d.Reason || c.Message != msg {
		d.Event = &Event{eventType, eventReason, msg}
	}
	return d
}

func failed(cr *cmapi.CertificateRequest, msg string) Decision {
	return Decision{Action: ActionUpdate, Status: cmmeta.ConditionFalse, Reason: cmapi.CertificateRequestReasonFailed,
		Message: msg, Failed: true, Outcome: "failed",
		Event: &Event{corev1.EventTypeWarning, EventFailed, msg}}
}

// IsOurs reports whether a request names one of our issuer kinds.
func IsOurs(ref cmmeta.IssuerReference) bool {
	if ref.Group != v1alpha1.GroupVersion.Group {
		return false
	}
	switch ref.Kind {
	case v1alpha1.IssuerKind, v1alpha1.ClusterIssuerKind:
		return true
	}
	return false
}

// IsFinal: issued, failed or denied requests are never touched again (the
// cache keeps them as ShapeFinished).
func IsFinal(cr *cmapi.CertificateRequest) bool {
	if ShapeOf(cr) == ShapeFinished {
		return true
	}
	c := ReadyCondition(cr)
	if c == nil {
		return false
	}
	return c.Status == cmmeta.ConditionTrue ||
		c.Reason == cmapi.CertificateRequestReasonFailed || c.Reason == cmapi.CertificateRequestReasonDenied
}

func ReadyCondition(cr *cmapi.CertificateRequest) *cmapi.CertificateRequestCondition {
	return ConditionOf(cr, cmapi.CertificateRequestConditionReady)
}

func conditionTrue(cr *cmapi.CertificateRequest, t cmapi.CertificateRequestConditionType) bool {
	c := ConditionOf(cr, t)
	return c != nil && c.Status == cmmeta.ConditionTrue
}

// ConditionOf is the request's condition of type t, or nil.
func ConditionOf(cr *cmapi.CertificateRequest, t cmapi.CertificateRequestConditionType) *cmapi.CertificateRequestCondition {
	return apiutil.GetCertificateRequestCondition(cr, t)
}
