package v1alpha1

import (
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
)

// Names ejbca-issuer reads and writes on the requests it signs
// (CertificateRequests and CertificateSigningRequests). They are part of the
// user-visible interface: requesters, approvers, tests and tools use them.

// FieldOwner is the field manager of the controllers' writes: request and
// issuer status. The revocation controller writes its Revoked condition as a
// field manager of its own (ejbca-issuer-revocation), so that neither
// controller's server-side apply removes the other's condition.
const FieldOwner = "ejbca-issuer"

// Names the revocation controller reads and writes on CertificateRequests.
const (
	// RevokeAnnotation asks for the request's certificate to be revoked,
	// with a camelCase reason (RFC 5280's reasons: keyCompromise,
	// superseded, ...).
	RevokeAnnotation = "ejbca-issuer.certctl.io/revoke"
	// RevocationFinalizer holds a request issued under revocation.deleted
	// (or superseded) until its revocation is decided, so a deletion the
	// manager did not see is still handled after a restart.
	RevocationFinalizer = "ejbca-issuer.certctl.io/revocation"
	// ConditionRevoked records the revocation of the request's certificate,
	// once: True (reason: EJBCA's reason, or AlreadyRevoked), Unknown
	// (PendingApproval) or False (Abandoned, NotFoundInEJBCA,
	// NotIssuedForThisRequest, or a refused annotation: InvalidReason,
	// RevocationNotEnabled, AnnotationAtIssuance).
	ConditionRevoked cmapi.CertificateRequestConditionType = "ejbca-issuer.certctl.io/Revoked"
	// ConditionIssuedWithRevokeAnnotation is written with the certificate
	// (in the same status write) when the request already carried
	// RevokeAnnotation at issuance, as cert-manager copies a Certificate's
	// annotations onto each new request. Its message holds the value: that
	// value never revokes this request. An approver of the namespace can
	// write request status and so drop this record: that only lets them
	// revoke their own request's certificate, which they may anyway.
	ConditionIssuedWithRevokeAnnotation cmapi.CertificateRequestConditionType = "ejbca-issuer.certctl.io/IssuedWithRevokeAnnotation"
)

// Reasons of ConditionRevoked that are not EJBCA's.
const (
	RevokedReasonAlready       = "AlreadyRevoked"
	RevokedReasonPending       = "PendingApproval"
	RevokedReasonAbandoned     = "Abandoned"
	RevokedReasonNotFound      = "NotFoundInEJBCA"
	RevokedReasonInvalid       = "InvalidReason"
	RevokedReasonNotEnabled    = "RevocationNotEnabled"
	RevokedReasonAtIssuance    = "AnnotationAtIssuance"
	RevokedReasonNotIssuedHere = "NotIssuedForThisRequest"
)

// Annotations that record a request's wait for EJBCA approval, so a restart
// or a new leader resumes it. A requester can write a request's annotations
// (and cert-manager copies a Certificate's annotations onto its requests),
// so the record is sealed: AnnotationApprovalSeal is an HMAC over the
// record, the request's UID, its end entity and its enrolment password,
// keyed with the manager's issuance key, which no tenant can read. A record
// that does not verify is ignored.
const (
	// AnnotationApprovalRequestID is EJBCA's approval request id, 0 when
	// EJBCA gave none (some versions' 202 carries no id).
	AnnotationApprovalRequestID = "ejbca-issuer.certctl.io/approval-request-id"
	// AnnotationApprovalRequestedAt is when the end entity was added for approval.
	AnnotationApprovalRequestedAt = "ejbca-issuer.certctl.io/approval-requested-at"
	// AnnotationApprovalSeal authenticates the two above.
	AnnotationApprovalSeal = "ejbca-issuer.certctl.io/approval-seal"
)

// Signer name prefixes of Kubernetes CertificateSigningRequests this
// manager signs, after cert-manager's convention:
// ejbcaclusterissuers.ejbca-issuer.certctl.io/<name> and
// ejbcaissuers.ejbca-issuer.certctl.io/<namespace>.<name>.
const (
	ClusterIssuerSignerPrefix = "ejbcaclusterissuers.ejbca-issuer.certctl.io/"
	IssuerSignerPrefix        = "ejbcaissuers.ejbca-issuer.certctl.io/"
)

// IssuerSignerName is the signer name of an issuer of ours.
func IssuerSignerName(kind, namespace, name string) string {
	if kind == ClusterIssuerKind {
		return ClusterIssuerSignerPrefix + name
	}
	return IssuerSignerPrefix + namespace + "." + name
}

// CSREndEntityScope qualifies the EJBCA end entity names derived from a
// CertificateSigningRequest (certificates.k8s.io/<csr name>/<csr uid>). A
// CertificateRequest's are <namespace>/<name>, and no namespace has a dot in
// its name, so the two kinds never share an end entity.
const CSREndEntityScope = "certificates.k8s.io"

// CSRConditionEnrolment is the condition in which the signer keeps its
// records on a CertificateSigningRequest (the sealed approval record), as
// JSON in its message. It is written through the status subresource, so the
// manager needs no right to update CSRs themselves; a record written by
// anyone else is ignored (it is sealed).
const CSRConditionEnrolment certificatesv1.RequestConditionType = "ejbca-issuer.certctl.io/Enrolment"

// Reasons of the Failed condition ejbca-issuer sets on a
// CertificateSigningRequest.
const (
	// CSRReasonBadRequest: the CSR or its spec.usages cannot be signed as
	// asked (usages that do not fit the CSR, unknown usages, a CSR that
	// does not parse).
	CSRReasonBadRequest = "BadRequest"
	// CSRReasonReferenceDenied: the requester may not use the namespaced
	// EJBCAIssuer (no `reference` on its signer name).
	CSRReasonReferenceDenied = "ReferenceDenied"
	// CSRReasonSigningFailed: EJBCA refused for good, or retryable errors
	// lasted past the retry deadline, or the certificate lacks what was
	// asked for under the issuer's unmetRequest: Fail.
	CSRReasonSigningFailed = "SigningFailed"
)
