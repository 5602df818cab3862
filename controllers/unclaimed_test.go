package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/controllers/revocation"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

// enrolmentHeld makes the simulator's next enrolment wait before it is
// handled (within the suite's 5 s EJBCA timeout), so the test can delete
// the request while EJBCA works on it.
var enrolmentHeld = ejbcasim.Fault{Count: 1, Latency: 3 * time.Second}

// waitArrival waits until the simulator received n calls of endpoint.
func waitArrival(t *testing.T, sim *ejbcasim.Sim, endpoint string, n int) {
	t.Helper()
	testkit.Eventually(t, 30*time.Second, func() string {
		if got := len(sim.Arrivals(endpoint)); got < n {
			return fmt.Sprintf("%d %s calls arrived, want %d", got, endpoint, n)
		}
		return ""
	})
}

// TestCertificateIssuedForADeletedRequest: a Certificate's request is
// deleted while EJBCA works on its enrolment. EJBCA issues it anyway; no
// status can store it. Under revocation.deleted it is revoked, with one
// call and CESSATION_OF_OPERATION, and the Certificate gets an event;
// without, it stays valid, and an event on the Certificate gives its serial.
func TestCertificateIssuedForADeletedRequest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		revocation *v1alpha1.RevocationSpec
		event      string
		revokes    int
	}{
		{"revoke-deleted", &v1alpha1.RevocationSpec{Deleted: true}, revocation.EventUnclaimedRevoked, 1},
		{"no revocation", nil, revocation.EventUnclaimed, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sim := newSim(t, ejbcasim.Config{})
			ns, _ := readyIssuer(t, sim, func(s *v1alpha1.IssuerSpec) { s.Revocation = tc.revocation })
			crt := &cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gone"}, Spec: cmapi.CertificateSpec{
				SecretName: "gone-tls", CommonName: "gone.example.com", IssuerRef: cmmetaRef("ejbca")}}
			create(t, crt)
			sim.InjectFault("pkcs10enroll", enrolmentHeld)
			cr, _ := requestFor(t, ns, "ejbca", "gone", func(cr *cmapi.CertificateRequest) {
				cr.OwnerReferences = []metav1.OwnerReference{{APIVersion: cmapi.SchemeGroupVersion.String(), Kind: cmapi.CertificateKind,
					Name: crt.Name, UID: crt.UID, Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}
			})
			waitArrival(t, sim, "pkcs10enroll", 1)
			if err := k8s.Delete(context.Background(), cr); err != nil {
				t.Fatal(err)
			}
			note := testkit.WaitEvent(t, k8s, crt, testkit.EventMatch{Reason: tc.event}, 30*time.Second).Message
			issued := sim.Issued()
			if len(issued) != 1 {
				t.Fatalf("%d certificates issued, want the 1 enrolled before the deletion", len(issued))
			}
			serial := issued[0].Serial.Text(16)
			if !strings.Contains(note, serial) {
				t.Errorf("the event does not name serial %s: %q", serial, note)
			}
			if n := sim.RevokeCalls(serial); n != tc.revokes {
				t.Errorf("%d revoke calls, want %d", n, tc.revokes)
			}
			if tc.revokes > 0 && issued[0].RevocationReason != "CESSATION_OF_OPERATION" {
				t.Errorf("revoked with %q, want CESSATION_OF_OPERATION", issued[0].RevocationReason)
			}
			outcome := map[bool]string{true: "revoked", false: "kept"}[tc.revokes > 0]
			testkit.Eventually(t, 10*time.Second, func() string {
				if got := find(scrapeMetrics(t), "ejbca_issuer_unclaimed_certificates_total", map[string]string{"outcome": outcome}); len(got) == 0 || got[0].value < 1 {
					return fmt.Sprintf("no unclaimed certificate counted as %s: %v", outcome, got)
				}
				return ""
			})
		})
	}
}

// TestCSRIssuedAfterItsDeletion: the same for a Kubernetes CSR deleted
// while EJBCA works on it: under revocation.deleted, one revoke call.
func TestCSRIssuedAfterItsDeletion(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	issuer := readyClusterIssuer(t, sim, func(s *v1alpha1.IssuerSpec) { s.Revocation = &v1alpha1.RevocationSpec{Deleted: true} })
	signer := v1alpha1.IssuerSignerName(v1alpha1.ClusterIssuerKind, "", issuer)
	sim.InjectFault("pkcs10enroll", enrolmentHeld)
	csr := newCSR(t, clientsetAs(t, ""), signer, "gone-csr.example.com")
	decideCSR(t, csr, "Approved")
	waitArrival(t, sim, "pkcs10enroll", 1)
	if err := k8s.Delete(context.Background(), csr); err != nil {
		t.Fatal(err)
	}
	testkit.WaitEvent(t, k8s, csr, testkit.EventMatch{Reason: revocation.EventUnclaimedRevoked}, 30*time.Second)
	issued := sim.Issued()
	if len(issued) != 1 {
		t.Fatalf("%d certificates issued, want 1", len(issued))
	}
	if n := sim.RevokeCalls(issued[0].Serial.Text(16)); n != 1 {
		t.Errorf("%d revoke calls, want 1", n)
	}
}

// TestApprovedRequestIssuedAfterItsDeletion: a request waiting for EJBCA
// approval is approved, and deleted while its enrolment for the approved
// end entity is in EJBCA: under revocation.deleted, the certificate is
// revoked with one call, and the event (no Certificate owns the request)
// goes on the request's name.
func TestApprovedRequestIssuedAfterItsDeletion(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns, _ := readyIssuer(t, sim, func(s *v1alpha1.IssuerSpec) {
		s.CertificateProfileName = "APPROVAL"
		s.Approval = &v1alpha1.ApprovalSpec{PollInterval: &metav1.Duration{Duration: time.Second}}
		s.Revocation = &v1alpha1.RevocationSpec{Deleted: true}
	})
	cr, _ := requestFor(t, ns, "ejbca", "approved-gone")
	id := waitForApproval(t, cr)
	sim.InjectFault("certificaterequest", enrolmentHeld)
	if err := sim.Approve(id); err != nil {
		t.Fatal(err)
	}
	waitArrival(t, sim, "certificaterequest", 1)
	if err := k8s.Delete(context.Background(), cr); err != nil {
		t.Fatal(err)
	}
	testkit.WaitEvent(t, k8s, cr, testkit.EventMatch{Reason: revocation.EventUnclaimedRevoked}, 30*time.Second)
	issued := sim.Issued()
	if len(issued) != 1 {
		t.Fatalf("%d certificates issued, want 1", len(issued))
	}
	if n := sim.RevokeCalls(issued[0].Serial.Text(16)); n != 1 {
		t.Errorf("%d revoke calls, want 1", n)
	}
}
