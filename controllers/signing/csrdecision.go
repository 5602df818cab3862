package signing

import (
	"fmt"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
)

// ActionCheckReference: run the requester's SubjectAccessReview for the
// namespaced issuer, then decide again with its answer.
const ActionCheckReference = ActionUpdate + 1

// CSRInput is everything a CertificateSigningRequest's decision depends on.
type CSRInput struct {
	CSR    *certificatesv1.CertificateSigningRequest
	Issuer IssuerState
	Now    time.Time
	// RetryWindow is how long retryable errors are retried (--retry-window).
	RetryWindow time.Duration
	// ApprovalMaxWait is the issuer's approval.maxWait.
	ApprovalMaxWait time.Duration
	// ReferenceAllowed is the requester's SubjectAccessReview for a
	// namespaced issuer's signer name; nil until it ran.
	ReferenceAllowed *bool
	// Result is nil until EJBCA was asked.
	Result *SignResult
}

// CSRDecision is what happens to a CertificateSigningRequest. The CSR API
// has no Pending condition: a request that waits gets an event and a
// requeue, no status write.
type CSRDecision struct {
	Action Action
	// ApprovalSince is when the wait for an EJBCA administrator began
	// (Outcome waiting_for_approval).
	ApprovalSince time.Time
	// Failed adds the Failed condition with Reason and Message: final.
	Failed          bool
	Reason, Message string
	// Certificate is status.certificate: the PEM leaf and intermediates.
	Certificate  []byte
	RequeueAfter time.Duration
	// CallAfter: see Decision.CallAfter.
	CallAfter   time.Duration
	Event       *Event
	Warnings    []Event
	Notices     []IssuerNotice
	IssuerFault *IssuerFault
	Outcome     string
}

// DecideCSR is the CertificateSigningRequest contract as a pure function:
// only signer names of ours, only Approved and never Denied or Failed ones,
// usages that fit the CSR, the requester's right to reference a namespaced
// issuer, then EJBCA's answer decided as for CertificateRequests.
func DecideCSR(in CSRInput) CSRDecision {
	csr := in.CSR
	kind, ns, name, ours := SignerIssuer(csr.Spec.SignerName)
	if !ours || CSRIsFinal(csr) || !csrConditionTrue(csr, certificatesv1.CertificateApproved) {
		return CSRDecision{Action: ActionIgnore}
	}
	if msg := csrUsageProblem(csr); msg != "" {
		return csrFailed(v1alpha1.CSRReasonBadRequest, msg)
	}
	if kind == v1alpha1.IssuerKind {
		if in.ReferenceAllowed == nil {
			return CSRDecision{Action: ActionCheckReference}
		}
		if !*in.ReferenceAllowed {
			return csrFailed(v1alpha1.CSRReasonReferenceDenied, fmt.Sprintf(
				"The requester %q may not reference the namespaced EJBCAIssuer %s/%s: it needs the verb reference on signers (group certificates.k8s.io) named %q or %q in namespace %s",
				csr.Spec.Username, ns, name, csr.Spec.SignerName, v1alpha1.IssuerSignerPrefix+"*", ns))
		}
	}
	if !in.Issuer.Found || !in.Issuer.Ready {
		return csrWaiting(waiting(issuerWaitMessage(in.Issuer), 0, EventIssuerNotReady, corev1.EventTypeWarning, "issuer_not_ready"))
	}
	if in.Result == nil {
		return CSRDecision{Action: ActionSign}
	}
	d := decideCSRResult(in)
	d.Warnings = append(ignoredAnnotations(in.Result), d.Warnings...)
	return d
}

func decideCSRResult(in CSRInput) CSRDecision {
	csr, r := in.CSR, in.Result
	if cert := r.Certificate; cert != nil {
		usages := make([]cmapi.KeyUsage, len(csr.Spec.Usages))
		for i, u := range csr.Spec.Usages {
			usages[i] = cmapi.KeyUsage(u)
		}
		var v validity
		if s := csr.Spec.ExpirationSeconds; s != nil {
			v = validityMismatch(time.Duration(*s)*time.Second, cert.Leaf, in.Issuer.UseRequestedDuration)
		}
		s := decideSigned(cert, usageDifferences(false, usages, cert.Leaf), v, in.Issuer.UseRequestedDuration, in.Issuer.FailUnmet)
		if s.FailedMessage != "" {
			return csrFailed(v1alpha1.CSRReasonSigningFailed, s.FailedMessage)
		}
		return CSRDecision{Action: ActionUpdate, Certificate: cert.ChainPEM, Outcome: "issued", Event: &s.Event, Warnings: s.Warnings, Notices: s.Notices}
	}
	u := decideUnsigned(unsignedInput{Result: r, Issuer: in.Issuer, Now: in.Now, Created: csr.CreationTimestamp.Time,
		RetryWindow: in.RetryWindow, ApprovalMaxWait: in.ApprovalMaxWait, Request: "CertificateSigningRequest " + csr.Name})
	if u.Failed {
		return csrFailed(v1alpha1.CSRReasonSigningFailed, u.Message)
	}
	return csrWaiting(u)
}

// csrUsageProblem says why spec.usages cannot be signed for the CSR: an
// unknown usage, or key usage extensions in the CSR that differ from them.
// Empty when they fit.
func csrUsageProblem(csr *certificatesv1.CertificateSigningRequest) string {
	ku, eku, err := pki.BuildKeyUsagesKube(csr.Spec.Usages)
	if err != nil {
		return fmt.Sprintf("spec.usages: %v", err)
	}
	if _, err := pki.CertificateTemplateFromCSRPEM(csr.Spec.Request, pki.CertificateTemplateValidateAndOverrideKeyUsages(ku, eku)); err != nil {
		return fmt.Sprintf("spec.usages do not fit the CSR: %v", err)
	}
	return ""
}

func csrFailed(reason, msg string) CSRDecision {
	return CSRDecision{Action: ActionUpdate, Failed: true, Reason: reason, Message: msg, Outcome: "failed",
		Event: &Event{corev1.EventTypeWarning, EventFailed, msg}}
}

func csrWaiting(u unsigned) CSRDecision {
	return CSRDecision{Action: ActionUpdate, Message: u.Message, RequeueAfter: u.RequeueAfter, CallAfter: u.CallAfter, Outcome: u.Outcome,
		IssuerFault: u.IssuerFault, Event: &Event{u.EventType, u.EventReason, u.Message}, ApprovalSince: u.ApprovalSince}
}

// csrIsFinal: signed, Failed or Denied CSRs are never touched again (the
// cache keeps only that of them: ShapeFinished).
func CSRIsFinal(csr *certificatesv1.CertificateSigningRequest) bool {
	return ShapeOf(csr) == ShapeFinished || len(csr.Status.Certificate) > 0 ||
		csrConditionTrue(csr, certificatesv1.CertificateDenied) || csrConditionTrue(csr, certificatesv1.CertificateFailed)
}

func csrConditionTrue(csr *certificatesv1.CertificateSigningRequest, t certificatesv1.RequestConditionType) bool {
	c := csrCondition(csr, t)
	return c != nil && c.Status == corev1.ConditionTrue
}
