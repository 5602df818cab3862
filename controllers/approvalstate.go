package controllers

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// Annotations that record a request's wait for EJBCA approval, so a restart
// or a new leader resumes it. A requester can write a request's annotations
// (and cert-manager copies a Certificate's annotations onto its requests),
// so the record is sealed: AnnotationApprovalSeal is an HMAC over the
// record, the request's UID, its end entity and its enrolment password,
// keyed with the manager's key (IssuanceKey), which no tenant can read. (The
// enrolment password alone is no key: the Secret holding it lives in the
// request's namespace, readable by its tenants.) A record that does not
// verify is ignored; the request then starts (or resumes, through EJBCA's
// "already exists" answer) on its own, derived end entity.
const (
	// AnnotationApprovalRequestID is EJBCA's approval request id, 0 when
	// EJBCA gave none (some versions' 202 carries no id).
	AnnotationApprovalRequestID = "ejbca-issuer.certctl.io/approval-request-id"
	// AnnotationApprovalRequestedAt is when the end entity was added for approval.
	AnnotationApprovalRequestedAt = "ejbca-issuer.certctl.io/approval-requested-at"
	// AnnotationApprovalSeal authenticates the two above.
	AnnotationApprovalSeal = "ejbca-issuer.certctl.io/approval-seal"
)

// approvalRecord is a request's verified wait for approval.
type approvalRecord struct {
	// RequestID is EJBCA's approval request id, 0 when unknown.
	RequestID int
	// Since is when the end entity was added; approval.maxWait counts from it.
	Since time.Time
}

func (a approvalRecord) seal(key IssuanceKey, sr *SigningRequest, endEntity, password string) string {
	m := hmac.New(sha256.New, key)
	pw := sha256.Sum256([]byte(password))
	for _, part := range []string{"ejbca-issuer approval v2", string(sr.UID), endEntity, hex.EncodeToString(pw[:]), strconv.Itoa(a.RequestID), a.Since.UTC().Format(time.RFC3339)} {
		m.Write([]byte(part))
		m.Write([]byte{0})
	}
	return hex.EncodeToString(m.Sum(nil))
}

// annotations are the record as the request's annotations.
func (a approvalRecord) annotations(key IssuanceKey, sr *SigningRequest, endEntity, password string) map[string]*string {
	id, since, seal := strconv.Itoa(a.RequestID), a.Since.UTC().Format(time.RFC3339), a.seal(key, sr, endEntity, password)
	return map[string]*string{AnnotationApprovalRequestID: &id, AnnotationApprovalRequestedAt: &since, AnnotationApprovalSeal: &seal}
}

// hasApprovalRecord reports whether the request claims to wait for approval;
// whether the claim holds is for readApprovalRecord to say.
func hasApprovalRecord(sr *SigningRequest) bool {
	_, ok := sr.Annotations[AnnotationApprovalSeal]
	return ok
}

// readApprovalRecord returns the request's approval record if the manager
// wrote it for this request, end entity and enrolment password.
func readApprovalRecord(key IssuanceKey, sr *SigningRequest, endEntity, password string) (approvalRecord, bool) {
	id, err := strconv.Atoi(sr.Annotations[AnnotationApprovalRequestID])
	if err != nil || id < 0 {
		return approvalRecord{}, false
	}
	since, err := time.Parse(time.RFC3339, sr.Annotations[AnnotationApprovalRequestedAt])
	if err != nil {
		return approvalRecord{}, false
	}
	rec := approvalRecord{RequestID: id, Since: since}
	if len(key) == 0 {
		return approvalRecord{}, false
	}
	want := rec.seal(key, sr, endEntity, password)
	if !hmac.Equal([]byte(want), []byte(sr.Annotations[AnnotationApprovalSeal])) {
		return approvalRecord{}, false
	}
	return rec, true
}
