package revocation

import (
	"fmt"
	"sort"
	"strings"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
)

// Metric labels of revocation triggers and outcomes.
const (
	revocationTriggerSuperseded  = "superseded"
	revocationTriggerDeleted     = "deleted"
	revocationTriggerExplicit    = "explicit"
	revocationOutcomeRevoked     = "revoked"
	revocationOutcomeAlready     = "already_revoked"
	revocationOutcomePending     = "pending_approval"
	revocationOutcomeNotFound    = "not_found"
	revocationOutcomeFailed      = "failed"
	revocationOutcomeAbandoned   = "abandoned"
	revocationOutcomeInvalid     = "invalid_reason"
	revocationOutcomeRefused     = "refused"
	revocationMetricUnknownValue = "unknown"
)

// RevocationReasons maps the camelCase reasons the revoke annotation takes
// to the names EJBCA's REST API accepts (org.cesecore.certificates.crl.
// RevocationReasons, string values; CertificateRestResource.revokeCertificate
// looks the query parameter up there).
var RevocationReasons = map[string]string{
	"unspecified":          ejbca.ReasonUnspecified,
	"keyCompromise":        ejbca.ReasonKeyCompromise,
	"caCompromise":         ejbca.ReasonCACompromise,
	"affiliationChanged":   ejbca.ReasonAffiliationChanged,
	"superseded":           ejbca.ReasonSuperseded,
	"cessationOfOperation": ejbca.ReasonCessationOfOperation,
	"certificateHold":      ejbca.ReasonCertificateHold,
	"privilegesWithdrawn":  ejbca.ReasonPrivilegesWithdrawn,
	"aaCompromise":         ejbca.ReasonAACompromise,
}

// revocationReasonNames lists the camelCase reasons, sorted, for messages.
func revocationReasonNames() string {
	names := make([]string, 0, len(RevocationReasons))
	for k := range RevocationReasons {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// CertificateState is what the revocation decision knows of the Certificate
// that owns a request.
type CertificateState int

const (
	// NoCertificate: the request has no Certificate owner (made directly).
	NoCertificate CertificateState = iota
	// CertificateLive: its Certificate exists and is not being deleted.
	CertificateLive
	// CertificateGone: its Certificate is deleted or being deleted (or the
	// name now belongs to another Certificate).
	CertificateGone
)

// RevocationInput is everything the revocation decision depends on.
type RevocationInput struct {
	Now time.Time
	// Serial and IssuerDN are from the request's own status.certificate;
	// empty when it carries none (not issued).
	Serial, IssuerDN string
	// NotIssuedHere says why that certificate is not the one this manager
	// issued for the request (no verified issuance record names it); empty
	// when it is. Such a certificate is never revoked.
	NotIssuedHere string
	// Deleting: the request has a deletionTimestamp (DeletedAt).
	Deleting  bool
	DeletedAt time.Time
	// HasFinalizer: the request carries v1alpha1.RevocationFinalizer.
	HasFinalizer bool
	// Recorded is the request's v1alpha1.ConditionRevoked, if any.
	Recorded *cmapi.CertificateRequestCondition
	// Annotation is v1alpha1.RevokeAnnotation's value; HasAnnotation says it is set.
	Annotation    string
	HasAnnotation bool
	// AtIssuance is the value v1alpha1.ConditionIssuedWithRevokeAnnotation recorded;
	// HadAtIssuance says there is one.
	AtIssuance    string
	HadAtIssuance bool
	// IssuerFound: the request's issuer exists. Enabled: it has
	// spec.revocation; Superseded, Deleted and Grace are its settings.
	IssuerFound, Enabled, Superseded, Deleted bool
	Grace                                     time.Duration
	// Certificate is the state of the request's Certificate; Current says
	// its Secret holds this request's certificate; SuccessorIssuedAt is when
	// the newer revision that the Secret holds was issued (zero: none).
	Certificate       CertificateState
	Current           bool
	SuccessorIssuedAt time.Time
	// AbandonAfter bounds how long a deleted request is held for EJBCA.
	AbandonAfter time.Duration
	// Failures counts the revoke attempts that failed in a row, the last
	// at LastFailure with LastError.
	Failures    int
	LastFailure time.Time
	LastError   string
}

// RevocationAction is what to do with a request.
type RevocationAction int

const (
	// RevocationNothing: no revocation, now or later (unless something changes).
	RevocationNothing RevocationAction = iota
	// RevocationWait: look again at Decision.At.
	RevocationWait
	// RevocationRevoke: call EJBCA's revoke with Decision.Reason.
	RevocationRevoke
	// RevocationRelease: remove the finalizer; nothing is revoked.
	RevocationRelease
	// RevocationAbandon: give up: record it, remove the finalizer.
	RevocationAbandon
)

// RevocationNote is a refusal to write once (condition and Warning event)
// alongside the action: an annotation that cannot be honoured.
type RevocationNote struct {
	Reason, Message, Outcome string
}

// RevocationDecision is what RevocationDecide decided.
type RevocationDecision struct {
	Action RevocationAction
	// Reason is EJBCA's reason name for RevocationRevoke; Trigger is why
	// (superseded, deleted, explicit).
	Reason, Trigger string
	// At is when to look again (RevocationWait).
	At time.Time
	// Message explains the decision (events, the Abandoned condition).
	Message string
	// Note, when set, is a refusal to record unless already recorded.
	Note *RevocationNote

	holdingCurrent bool
}

// heldCurrentRecheck is how often a pruned request that is still current is
// looked at (besides the wake its successor's issuance sends).
const heldCurrentRecheck = time.Minute

// revocationFinal reports a recorded condition after which nothing is done
// again: revoked, already revoked, waiting for approval in EJBCA,
// abandoned, or unknown to EJBCA.
func revocationFinal(c *cmapi.CertificateRequestCondition) bool {
	if c == nil {
		return false
	}
	switch c.Reason {
	case v1alpha1.RevokedReasonInvalid, v1alpha1.RevokedReasonNotEnabled, v1alpha1.RevokedReasonAtIssuance:
		return false
	}
	return true
}

// RevocationDecide decides, as a pure function of the request, its issuer
// and its Certificate, whether the request's certificate is revoked now,
// later or never. The rules (docs/revocation.md):
//   - a certificate is revoked at most once: a final v1alpha1.ConditionRevoked ends it;
//   - only a certificate this manager issued for the request (a verified
//     issuance record names it) is revoked; any other is refused, once;
//   - an explicit annotation revokes, unless revocation is off for the
//     issuer, the reason is unknown, or the request already carried that
//     value when it was issued (copied from its Certificate);
//   - deleted: the Certificate is gone (or, for a request without one, the
//     request is being deleted): CESSATION_OF_OPERATION at once;
//   - superseded: the Certificate's Secret holds a newer revision, issued at
//     SuccessorIssuedAt: SUPERSEDED at SuccessorIssuedAt + Grace, not before;
//   - never the certificate the live Certificate's Secret holds, except
//     explicitly: a request pruned (revisionHistoryLimit) while current is
//     released unrevoked;
//   - after a failed call, the next waits RevocationBackoff; a deleted request
//     held longer than AbandonAfter while its revocation cannot be done is
//     abandoned: recorded, finalizer removed.
func RevocationDecide(in RevocationInput) RevocationDecision {
	release := func(msg string) RevocationDecision {
		if in.Deleting && in.HasFinalizer {
			return RevocationDecision{Action: RevocationRelease, Message: msg}
		}
		return RevocationDecision{Action: RevocationNothing, Message: msg}
	}
	if revocationFinal(in.Recorded) {
		return release("already recorded: " + in.Recorded.Reason)
	}
	if in.Serial == "" {
		return release("the request carries no certificate")
	}
	pastBound := in.Deleting && in.HasFinalizer && in.AbandonAfter > 0 && !in.Now.Before(in.DeletedAt.Add(in.AbandonAfter))

	var d RevocationDecision
	var note *RevocationNote
	switch {
	case !in.IssuerFound:
		if in.Deleting && in.HasFinalizer {
			d = RevocationDecision{Action: RevocationWait, Message: "its issuer is not found, so EJBCA cannot be asked"}
		} else {
			d = RevocationDecision{Action: RevocationNothing, Message: "its issuer is not found"}
		}
	default:
		d, note = decideTrigger(in)
	}
	if d.Action == RevocationRevoke && in.NotIssuedHere != "" {
		// status.certificate is writable by approvers: revoking what it
		// names would revoke any certificate the issuer's role may revoke.
		d = RevocationDecision{Action: RevocationNothing, Message: in.NotIssuedHere}
		note = &RevocationNote{Reason: v1alpha1.RevokedReasonNotIssuedHere, Outcome: revocationOutcomeRefused, Message: in.NotIssuedHere}
	}
	d.Note = note

	if d.Action == RevocationRevoke && in.Failures > 0 {
		next := in.LastFailure.Add(RevocationBackoff(in.Failures))
		if in.Now.Before(next) {
			d = RevocationDecision{Action: RevocationWait, At: next, Reason: d.Reason, Trigger: d.Trigger, Note: d.Note,
				Message: fmt.Sprintf("revoking (%s) failed %d time(s), last: %s; next attempt at %s", d.Reason, in.Failures, in.LastError, next.UTC().Format(time.RFC3339))}
		}
	}
	if pastBound && d.holdingCurrent {
		return RevocationDecision{Action: RevocationRelease, Note: d.Note,
			Message: fmt.Sprintf("no newer revision superseded it within %s of the request's deletion, and the Certificate's Secret still holds it: released unrevoked", in.AbandonAfter)}
	}
	if pastBound && (d.Action == RevocationWait || (d.Action == RevocationRevoke && in.Failures > 0)) {
		why := d.Message
		if in.Failures > 0 {
			why = fmt.Sprintf("%d attempt(s) failed, last: %s", in.Failures, in.LastError)
		}
		return RevocationDecision{Action: RevocationAbandon, Reason: d.Reason, Trigger: d.Trigger,
			Message: fmt.Sprintf("revocation abandoned %s after the request's deletion (bound --revocation-abandon-after): %s; certificate serial %s is NOT revoked in EJBCA", in.AbandonAfter, why, in.Serial)}
	}
	if d.Action == RevocationNothing && in.Deleting && in.HasFinalizer {
		d.Action = RevocationRelease
	}
	if d.Action == RevocationWait {
		if d.At.IsZero() {
			// Waiting for something that no event announces (an issuer
			// that may come back): look again on the backoff schedule.
			d.At = in.Now.Add(RevocationBackoff(in.Failures + 1))
		}
		// A held deletion is looked at again at the bound at the latest.
		if in.Deleting && in.HasFinalizer && in.AbandonAfter > 0 {
			if bound := in.DeletedAt.Add(in.AbandonAfter); bound.Before(d.At) {
				d.At = bound
			}
		}
	}
	return d
}

// decideTrigger applies the explicit, deleted and superseded rules for a
// request whose issuer exists.
func decideTrigger(in RevocationInput) (RevocationDecision, *RevocationNote) {
	var note *RevocationNote
	if in.HasAnnotation {
		reason, known := RevocationReasons[in.Annotation]
		switch {
		case !in.Enabled:
			note = &RevocationNote{Reason: v1alpha1.RevokedReasonNotEnabled, Outcome: revocationOutcomeRefused,
				Message: fmt.Sprintf("%s=%q is ignored: the issuer does not set spec.revocation, so nothing it issued is revoked", v1alpha1.RevokeAnnotation, in.Annotation)}
		case in.HadAtIssuance && in.AtIssuance == in.Annotation:
			note = &RevocationNote{Reason: v1alpha1.RevokedReasonAtIssuance, Outcome: revocationOutcomeRefused,
				Message: fmt.Sprintf("%s=%q is not honoured: the request already carried it when it was issued (cert-manager copies a Certificate's annotations onto every new request); remove it from the Certificate, and annotate the request itself with a different reason to revoke it", v1alpha1.RevokeAnnotation, in.Annotation)}
		case !known:
			note = &RevocationNote{Reason: v1alpha1.RevokedReasonInvalid, Outcome: revocationOutcomeInvalid,
				Message: fmt.Sprintf("%s=%q is not a revocation reason; nothing is revoked. Use one of: %s", v1alpha1.RevokeAnnotation, in.Annotation, revocationReasonNames())}
		default:
			return RevocationDecision{Action: RevocationRevoke, Reason: reason, Trigger: revocationTriggerExplicit,
				Message: fmt.Sprintf("revocation asked for by %s=%s", v1alpha1.RevokeAnnotation, in.Annotation)}, nil
		}
	}
	gone := in.Certificate == CertificateGone || (in.Certificate == NoCertificate && in.Deleting)
	if in.Deleted && gone {
		what := "its Certificate was deleted"
		if in.Certificate == NoCertificate {
			what = "the request (made without a Certificate) was deleted"
		}
		return RevocationDecision{Action: RevocationRevoke, Reason: ejbca.ReasonCessationOfOperation, Trigger: revocationTriggerDeleted, Message: what}, note
	}
	if in.Superseded && in.Certificate == CertificateLive && !in.Current && !in.SuccessorIssuedAt.IsZero() {
		due := in.SuccessorIssuedAt.Add(in.Grace)
		if in.Now.Before(due) {
			return RevocationDecision{Action: RevocationWait, At: due, Reason: ejbca.ReasonSuperseded, Trigger: revocationTriggerSuperseded,
				Message: fmt.Sprintf("superseded by a revision issued at %s; revoked after the grace period, at %s", in.SuccessorIssuedAt.UTC().Format(time.RFC3339), due.UTC().Format(time.RFC3339))}, note
		}
		return RevocationDecision{Action: RevocationRevoke, Reason: ejbca.ReasonSuperseded, Trigger: revocationTriggerSuperseded,
			Message: fmt.Sprintf("superseded by a revision issued at %s, grace period %s over", in.SuccessorIssuedAt.UTC().Format(time.RFC3339), in.Grace)}, note
	}
	if in.Current && in.Certificate == CertificateLive {
		if in.Superseded && in.Deleting && in.HasFinalizer {
			// cert-manager prunes the current request (revisionHistoryLimit,
			// 1 by default) as soon as it creates the next revision's: hold
			// it, unrevoked, until the successor is issued.
			return RevocationDecision{Action: RevocationWait, At: in.Now.Add(heldCurrentRecheck), holdingCurrent: true,
				Message: "pruned while the Certificate's Secret still holds this certificate: held, unrevoked, until a newer revision supersedes it"}, note
		}
		return RevocationDecision{Action: RevocationNothing, Message: "the Certificate's Secret still holds this certificate"}, note
	}
	return RevocationDecision{Action: RevocationNothing, Message: "no revocation applies"}, note
}

// RevocationBackoff is the wait after the n-th failed revoke attempt in a
// row: 5s doubling to at most 5m.
func RevocationBackoff(n int) time.Duration {
	const first, most = 5 * time.Second, 5 * time.Minute
	if n <= 0 {
		return 0
	}
	d := first
	for i := 1; i < n && d < most; i++ {
		d *= 2
	}
	return min(d, most)
}

// revocationResult is what an EJBCA revoke answer means for the record.
type revocationResult struct {
	// Done: record Condition (Status, Reason) and stop; otherwise retry.
	Done           bool
	Status         cmmeta.ConditionStatus
	Reason         string
	Outcome        string
	Message        string
	Warning, Retry bool
}

// RevocationResultOf classifies EJBCA's answer to a revoke call: success
// and 409 (already revoked) are done; 202 (waiting for an administrator in
// EJBCA), and the 400 "approval already exists" that asking again while it
// waits gets, are recorded as pending and not asked again; 404 (EJBCA does not know the
// certificate or CA) is recorded as a Warning; anything else (no answer,
// 5xx, 429, 403 for a role without revoke rights) is retried with backoff.
func RevocationResultOf(reason, serial string, err error) revocationResult {
	switch {
	case err == nil:
		return revocationResult{Done: true, Status: cmmeta.ConditionTrue, Reason: reason, Outcome: revocationOutcomeRevoked,
			Message: fmt.Sprintf("certificate serial %s revoked in EJBCA with reason %s", serial, reason)}
	case ejbca.IsConflict(err):
		return revocationResult{Done: true, Status: cmmeta.ConditionTrue, Reason: v1alpha1.RevokedReasonAlready, Outcome: revocationOutcomeAlready,
			Message: fmt.Sprintf("certificate serial %s was already revoked in EJBCA (409): %s", serial, ejbca.Message(err))}
	case ejbca.IsApprovalAlreadyExists(err):
		// EJBCA's "approval already exists": an earlier call (whose answer
		// was lost, or whose record failed) made the approval request.
		return revocationResult{Done: true, Status: cmmeta.ConditionUnknown, Reason: v1alpha1.RevokedReasonPending, Outcome: revocationOutcomePending,
			Message: fmt.Sprintf("revocation of serial %s with reason %s already waits for an administrator's approval in EJBCA (%s); it is not asked again", serial, reason, ejbca.Message(err))}
	case ejbca.IsPending(err):
		return revocationResult{Done: true, Status: cmmeta.ConditionUnknown, Reason: v1alpha1.RevokedReasonPending, Outcome: revocationOutcomePending,
			Message: fmt.Sprintf("revocation of serial %s with reason %s waits for an administrator's approval in EJBCA; it is not asked again", serial, reason)}
	case ejbca.IsNotFound(err):
		return revocationResult{Done: true, Status: cmmeta.ConditionFalse, Reason: v1alpha1.RevokedReasonNotFound, Outcome: revocationOutcomeNotFound, Warning: true,
			Message: fmt.Sprintf("EJBCA does not know certificate serial %s (404): %s", serial, ejbca.Message(err))}
	}
	return revocationResult{Retry: true, Outcome: revocationOutcomeFailed, Warning: true,
		Message: fmt.Sprintf("revoking serial %s with reason %s failed, will retry: %s", serial, reason, ejbca.Message(err))}
}
