package signing

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
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
	return map[string]*string{v1alpha1.AnnotationApprovalRequestID: &id, v1alpha1.AnnotationApprovalRequestedAt: &since, v1alpha1.AnnotationApprovalSeal: &seal}
}

// hasApprovalRecord reports whether the request claims to wait for approval;
// whether the claim holds is for readApprovalRecord to say.
func hasApprovalRecord(sr *SigningRequest) bool {
	_, ok := sr.Annotations[v1alpha1.AnnotationApprovalSeal]
	return ok
}

// readApprovalRecord returns the request's approval record if the manager
// wrote it for this request, end entity and enrolment password.
func readApprovalRecord(key IssuanceKey, sr *SigningRequest, endEntity, password string) (approvalRecord, bool) {
	id, err := strconv.Atoi(sr.Annotations[v1alpha1.AnnotationApprovalRequestID])
	if err != nil || id < 0 {
		return approvalRecord{}, false
	}
	since, err := time.Parse(time.RFC3339, sr.Annotations[v1alpha1.AnnotationApprovalRequestedAt])
	if err != nil {
		return approvalRecord{}, false
	}
	rec := approvalRecord{RequestID: id, Since: since}
	if len(key) == 0 {
		return approvalRecord{}, false
	}
	want := rec.seal(key, sr, endEntity, password)
	if !hmac.Equal([]byte(want), []byte(sr.Annotations[v1alpha1.AnnotationApprovalSeal])) {
		return approvalRecord{}, false
	}
	return rec, true
}
