package controllers_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/controllers"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
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
	if !slices.Contains(cr.Finalizers, controllers.RevocationFinalizer) {
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
	eventually(t, 30*time.Second, func() string {
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
	eventually(t, 30*time.Second, func() string {
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
