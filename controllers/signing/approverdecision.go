package signing

import (
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
)

// ApproverDecision is an approver's decision on a CertificateRequest as
// cert-manager's approval contract has it: the statuses of its Approved and
// Denied conditions ("" when absent). Decide reads nothing else an approver
// writes.
type ApproverDecision struct {
	Approved, Denied cmmeta.ConditionStatus
}

// ApproverDecisionOf is the request's ApproverDecision.
func ApproverDecisionOf(cr *cmapi.CertificateRequest) ApproverDecision {
	var a ApproverDecision
	if c := ConditionOf(cr, cmapi.CertificateRequestConditionApproved); c != nil {
		a.Approved = c.Status
	}
	if c := ConditionOf(cr, cmapi.CertificateRequestConditionDenied); c != nil {
		a.Denied = c.Status
	}
	return a
}

// ApproverDecided: an approver approved or denied the request. Before that
// Decide waits (ActionIgnore): nothing else can change what is done for it.
func ApproverDecided(cr *cmapi.CertificateRequest) bool {
	a := ApproverDecisionOf(cr)
	return a.Approved == cmmeta.ConditionTrue || a.Denied == cmmeta.ConditionTrue
}
