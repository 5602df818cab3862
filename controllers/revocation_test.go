package controllers_test

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

// TestRevocationAfterRestartBetweenDeletionAndRevocation deletes a
// Certificate and its request while no manager runs: the request's
// finalizer (added at issuance, deleted: true) keeps it, and the next
// manager revokes its certificate once and lets the deletion complete.
// Not parallel: it stops the suite's manager.
func TestRevocationAfterRestartBetweenDeletionAndRevocation(t *testing.T) {
	sim := newSim(t, ejbcasim.Config{})
	ns, _ := readyIssuer(t, sim, func(s *v1alpha1.IssuerSpec) {
		s.Revocation = &v1alpha1.RevocationSpec{Deleted: true}
	})
	crt := &cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "restart"}, Spec: cmapi.CertificateSpec{
		SecretName: "restart-tls", CommonName: "restart.example.com",
		IssuerRef: cmmetaRef("ejbca")}}
	create(t, crt)
	cr, _ := requestFor(t, ns, "ejbca", "restart", func(cr *cmapi.CertificateRequest) {
		cr.OwnerReferences = []metav1.OwnerReference{{APIVersion: cmapi.SchemeGroupVersion.String(), Kind: cmapi.CertificateKind,
			Name: crt.Name, UID: crt.UID, Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}
	})
	waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
	if !slices.Contains(cr.Finalizers, v1alpha1.RevocationFinalizer) {
		t.Fatalf("issued under deleted: true without the finalizer: %v", cr.Finalizers)
	}
	leaf, err := pki.DecodeX509CertificateBytes(cr.Status.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	serial := leaf.SerialNumber.Text(16)

	var deletedAt time.Time
	restartManager(t, func() {
		if err := k8s.Delete(context.Background(), crt); err != nil {
			t.Fatal(err)
		}
		if err := k8s.Delete(context.Background(), cr); err != nil {
			t.Fatal(err)
		}
		deletedAt = time.Now()
		time.Sleep(500 * time.Millisecond)
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(cr), cr); err != nil {
			t.Fatalf("the request was not held while no manager ran: %v", err)
		}
		if n := sim.RevokeCalls(serial); n != 0 {
			t.Fatalf("%d revoke calls with no manager running", n)
		}
	})
	testkit.Eventually(t, 30*time.Second, func() string {
		err := k8s.Get(context.Background(), client.ObjectKeyFromObject(cr), &cmapi.CertificateRequest{})
		if !apierrors.IsNotFound(err) {
			return "the request still exists"
		}
		return ""
	})
	took := time.Since(deletedAt)
	var reason string
	for _, c := range sim.Issued() {
		if c.Serial.Text(16) == serial {
			reason = c.RevocationReason
		}
	}
	if reason != "CESSATION_OF_OPERATION" {
		t.Errorf("EJBCA has serial %s revoked with %q, want CESSATION_OF_OPERATION", serial, reason)
	}
	if n := sim.RevokeCalls(serial); n != 1 {
		t.Errorf("%d revoke calls, want 1", n)
	}
	t.Logf("restart between deletion and revocation: 1 revoke call; revoked and released %s after the deletion (manager restart included)", took.Round(10*time.Millisecond))
}

func cmmetaRef(name string) cmmeta.IssuerReference {
	return cmmeta.IssuerReference{Group: v1alpha1.GroupVersion.Group, Kind: v1alpha1.IssuerKind, Name: name}
}

// TestRevocationAskedAgainWhileWaitingForApproval loses the answer to the
// first revoke call of a certificate whose profile needs approval: EJBCA
// holds the approval request, and the retry gets EJBCA's 400 "approval
// already exists" (ApprovalSessionBean.addApprovalRequest). That is the
// revocation waiting, not a refusal: EJBCA holds one approval request, the
// request records PendingApproval after two calls, and the only Warning is
// the one for the lost answer (not one per backoff step).
func TestRevocationAskedAgainWhileWaitingForApproval(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{Preset: ejbcasim.PresetEnterprise9})
	ns, _ := readyIssuer(t, sim, func(s *v1alpha1.IssuerSpec) { s.Revocation = &v1alpha1.RevocationSpec{} })
	cr, _ := requestFor(t, ns, "ejbca", "waiting")
	waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
	leaf, err := pki.DecodeX509CertificateBytes(cr.Status.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	serial := leaf.SerialNumber.Text(16)
	sim.SetApprovalRequired("SERVER", true)                                      // the issuer's certificate profile
	sim.InjectFault("revoke", ejbcasim.Fault{Count: 1, ResetAfterIssuing: true}) // handled, the 202 lost

	patch := client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"annotations":{"`+v1alpha1.RevokeAnnotation+`":"keyCompromise"}}}`))
	if err := k8s.Patch(context.Background(), cr, patch); err != nil {
		t.Fatal(err)
	}
	var recorded *cmapi.CertificateRequestCondition
	testkit.Eventually(t, 30*time.Second, func() string {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(cr), cr); err != nil {
			return err.Error()
		}
		for i, c := range cr.Status.Conditions {
			if c.Type == v1alpha1.ConditionRevoked {
				recorded = &cr.Status.Conditions[i]
				if c.Reason == v1alpha1.RevokedReasonPending {
					return ""
				}
			}
		}
		return fmt.Sprintf("no Revoked/%s condition (revoke calls %d, events %v)", v1alpha1.RevokedReasonPending, sim.RevokeCalls(serial), testkit.Reasons(testkit.EventsOf(t, k8s, cr)))
	})
	if recorded.Status != cmmeta.ConditionUnknown {
		t.Errorf("Revoked condition %+v, want Unknown", recorded)
	}
	if ids := sim.PendingApprovals(); len(ids) != 1 {
		t.Errorf("pending approvals in EJBCA %v, want the one revocation", ids)
	}
	if n := sim.RevokeCalls(serial); n != 2 {
		t.Errorf("%d revoke calls, want 2 (the lost answer and the one told the request exists)", n)
	}
	if got := sim.Counters().Calls["revoke"]; got[400] != 1 {
		t.Errorf("revoke answers %v, want one 400", got)
	}
	var warnings []string
	for _, e := range testkit.EventsOf(t, k8s, cr) {
		if e.Type == corev1.EventTypeWarning {
			warnings = append(warnings, e.Reason+": "+e.Message)
		}
	}
	if len(warnings) != 1 || !strings.HasPrefix(warnings[0], "RevocationFailed: ") {
		t.Errorf("Warning events %q, want the one for the lost answer", warnings)
	}
	if c := simIssued(sim, leaf.SerialNumber); c.Revoked {
		t.Error("EJBCA revoked the certificate before the approval")
	}
}

// simIssued is the simulator's record of serial.
func simIssued(sim *ejbcasim.Sim, serial *big.Int) ejbcasim.IssuedCert {
	for _, c := range sim.Issued() {
		if c.Serial.Cmp(serial) == 0 {
			return c
		}
	}
	return ejbcasim.IssuedCert{}
}

// TestPlainRevocationLogsNoError: a deleted request's certificate is
// revoked and the request released with no error on the way: the release
// after the status write is no conflict, so no "Reconciler error" line
// (with a stack trace) for operators to alert on, and one revoke call.
func TestPlainRevocationLogsNoError(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns, _ := readyIssuer(t, sim, func(s *v1alpha1.IssuerSpec) {
		s.Revocation = &v1alpha1.RevocationSpec{Deleted: true}
	})
	crt := &cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "plain"}, Spec: cmapi.CertificateSpec{
		SecretName: "plain-tls", CommonName: "plain.example.com", IssuerRef: cmmetaRef("ejbca")}}
	create(t, crt)
	cr, _ := requestFor(t, ns, "ejbca", "plain", func(cr *cmapi.CertificateRequest) {
		cr.OwnerReferences = []metav1.OwnerReference{{APIVersion: cmapi.SchemeGroupVersion.String(), Kind: cmapi.CertificateKind,
			Name: crt.Name, UID: crt.UID, Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}
	})
	waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
	leaf, err := pki.DecodeX509CertificateBytes(cr.Status.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	serial := leaf.SerialNumber.Text(16)
	if err := k8s.Delete(context.Background(), crt); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Delete(context.Background(), cr); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, func() string {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(cr), &cmapi.CertificateRequest{}); !apierrors.IsNotFound(err) {
			return "the request still exists"
		}
		return ""
	})
	if n := sim.RevokeCalls(serial); n != 1 {
		t.Errorf("%d revoke calls, want 1", n)
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `"level":"error"`) && strings.Contains(line, ns) {
			t.Errorf("an error logged for a plain revocation: %s", line)
		}
	}
}
