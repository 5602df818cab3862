package controllers

import (
	"testing"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/controllers/signing"
)

// eventRequest is a request of ours with the given conditions (type,
// status, reason) and resourceVersion.
func eventRequest(rv string, conds ...[3]string) *cmapi.CertificateRequest {
	cr := &cmapi.CertificateRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "r", UID: "uid-r", ResourceVersion: rv},
		Spec: cmapi.CertificateRequestSpec{IssuerRef: cmmeta.IssuerReference{Group: v1alpha1.GroupVersion.Group, Kind: v1alpha1.IssuerKind, Name: "ejbca"}}}
	for _, c := range conds {
		cr.Status.Conditions = append(cr.Status.Conditions, cmapi.CertificateRequestCondition{
			Type: cmapi.CertificateRequestConditionType(c[0]), Status: cmmeta.ConditionStatus(c[1]), Reason: c[2]})
	}
	return cr
}

var (
	approved    = [3]string{string(cmapi.CertificateRequestConditionApproved), "True", "cert-manager.io"}
	denied      = [3]string{string(cmapi.CertificateRequestConditionDenied), "True", "policy"}
	pendingOurs = [3]string{string(cmapi.CertificateRequestConditionReady), "False", cmapi.CertificateRequestReasonPending}
	issued      = [3]string{string(cmapi.CertificateRequestConditionReady), "True", cmapi.CertificateRequestReasonIssued}
	failed      = [3]string{string(cmapi.CertificateRequestConditionReady), "False", cmapi.CertificateRequestReasonFailed}
	deniedReady = [3]string{string(cmapi.CertificateRequestConditionReady), "False", cmapi.CertificateRequestReasonDenied}
	record      = [3]string{string(signing.ConditionIssuanceRecord), "True", "Sealed"}
	revoked     = [3]string{string(v1alpha1.ConditionRevoked), "True", "Revoked"}
	foreign     = [3]string{"example.com/Audited", "True", "Seen"}
)

func TestCreateMatters(t *testing.T) {
	for _, tc := range []struct {
		name string
		cr   *cmapi.CertificateRequest
		want bool
	}{
		{"created undecided, as cert-manager creates every request", eventRequest("1"), false},
		{"undecided with another controller's condition", eventRequest("1", foreign), false},
		{"approved (seen at start, or approved before the watch saw it)", eventRequest("1", approved), true},
		{"approved and Pending (a start while it waited)", eventRequest("1", approved, pendingOurs), true},
		{"denied, not yet failed by us", eventRequest("1", denied), true},
		{"issued", eventRequest("1", approved, issued, record), false},
		{"failed", eventRequest("1", approved, failed), false},
		{"denied and failed by us", eventRequest("1", denied, deniedReady), false},
		{"approved False", eventRequest("1", [3]string{string(cmapi.CertificateRequestConditionApproved), "False", "x"}), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := createMatters(tc.cr); got != tc.want {
				t.Errorf("createMatters = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestUpdateMatters(t *testing.T) {
	ours := func(types.UID) bool { return true }
	notOurs := func(types.UID) bool { return false }
	for _, tc := range []struct {
		name     string
		old, cur *cmapi.CertificateRequest
		byUs     func(types.UID) bool
		want     bool
	}{
		{"approved by the approver", eventRequest("1"), eventRequest("2", approved), notOurs, true},
		{"denied by the approver", eventRequest("1"), eventRequest("2", denied), notOurs, true},
		{"denied after our Pending write", eventRequest("1", approved, pendingOurs), eventRequest("2", approved, denied, pendingOurs), notOurs, true},
		{"a second approver writes Approved again (another message)", eventRequest("1", approved), eventRequest("2", approved), notOurs, false},
		{"resourceVersion only", eventRequest("1", approved), eventRequest("2", approved), notOurs, false},
		{"our Pending write echoing back", eventRequest("1", approved), eventRequest("2", approved, pendingOurs), notOurs, false},
		{"another controller's condition", eventRequest("1", approved), eventRequest("2", approved, foreign), notOurs, false},
		{"another controller's condition while undecided", eventRequest("1"), eventRequest("2", foreign), notOurs, false},
		// The cache keeps a final request reduced: its Approved condition
		// is gone from the new copy.
		{"our issued write echoing back", eventRequest("1", approved), eventRequest("2", issued, record), ours, false},
		{"our Denied write echoing back", eventRequest("1", denied), eventRequest("2", deniedReady), ours, false},
		{"made final by another writer while it waited", eventRequest("1", approved, pendingOurs), eventRequest("2", failed), notOurs, true},
		{"issued by another writer", eventRequest("1", approved), eventRequest("2", issued), notOurs, true},
		{"revoked after issuance", eventRequest("1", issued, record), eventRequest("2", issued, record, revoked), notOurs, false},
		{"final, metadata only", eventRequest("1", failed), eventRequest("2", failed), notOurs, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := updateMatters(tc.old, tc.cur, tc.byUs); got != tc.want {
				t.Errorf("updateMatters = %v, want %v", got, tc.want)
			}
		})
	}
}
