package revocation

import (
	"testing"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/event"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

// TestRequestChangesWakeOnlyWhatMayBeDecided: a request's creation and its
// own changes queue it for the revocation controller exactly when
// RevocationDecide may act on it as it now is. On its way to a certificate
// (approved, then issued) a request of an issuer without spec.revocation,
// or one made without a Certificate, is never looked at; an annotation or a
// deletion always is, whatever the issuer says.
func TestRequestChangesWakeOnlyWhatMayBeDecided(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := cmapi.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	off := &v1alpha1.EJBCAIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "off"}}
	on := &v1alpha1.EJBCAIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "on"},
		Spec: v1alpha1.IssuerSpec{Revocation: &v1alpha1.RevocationSpec{Deleted: true}}}
	r := &RevocationReconciler{Client: fake.NewClientBuilder().WithScheme(scheme).WithObjects(off, on).Build()}
	changes := r.requestChanges()

	owner := metav1.OwnerReference{APIVersion: cmapi.SchemeGroupVersion.String(), Kind: cmapi.CertificateKind, Name: "web", Controller: new(true)}
	now := metav1.Now()
	approved := func(issuer string, mods ...func(*cmapi.CertificateRequest)) *cmapi.CertificateRequest {
		cr := testkit.CertificateRequest("ns", "web-1", nil, testkit.IssuerRef(v1alpha1.IssuerKind, issuer))
		cr.OwnerReferences = []metav1.OwnerReference{owner}
		for _, m := range mods {
			m(cr)
		}
		return cr
	}
	issued := func(cr *cmapi.CertificateRequest) { cr.Status.Certificate = []byte("-----BEGIN CERTIFICATE-----") }
	unowned := func(cr *cmapi.CertificateRequest) { cr.OwnerReferences = nil }
	annotated := func(cr *cmapi.CertificateRequest) {
		cr.Annotations = map[string]string{v1alpha1.RevokeAnnotation: "keyCompromise"}
	}
	deleting := func(cr *cmapi.CertificateRequest) { cr.DeletionTimestamp = &now }

	for _, tc := range []struct {
		name string
		cr   *cmapi.CertificateRequest
		wake bool
	}{
		{"approved, revocation off", approved("off"), false},
		{"issued, revocation off", approved("off", issued), false},
		{"issued, revocation off, annotated", approved("off", issued, annotated), true},
		{"issued, revocation off, being deleted", approved("off", issued, deleting), true},
		{"approved, revocation on", approved("on"), false},
		{"issued, revocation on, owned by a Certificate", approved("on", issued), true},
		{"issued, revocation on, made without a Certificate", approved("on", issued, unowned), false},
		{"issued, revocation on, made without a Certificate, being deleted", approved("on", issued, unowned, deleting), true},
		{"issued, issuer not in the cache", approved("gone", issued), true},
	} {
		before := approved(tc.cr.Spec.IssuerRef.Name)
		if got := changes.Update(event.UpdateEvent{ObjectOld: before, ObjectNew: tc.cr}); got != tc.wake {
			t.Errorf("%s: its change wakes it: %v, want %v", tc.name, got, tc.wake)
		}
		if got := changes.Create(event.CreateEvent{Object: tc.cr}); got != tc.wake {
			t.Errorf("%s: seen first (at start) wakes it: %v, want %v", tc.name, got, tc.wake)
		}
	}
}
