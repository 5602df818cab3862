package controllers_test

import (
	"context"
	"testing"
	"time"

	"k8s.io/utils/clock"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	clientevents "k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/certctl-io/ejbca-issuer/controllers"
	"github.com/certctl-io/ejbca-issuer/controllers/signing"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
	"github.com/certctl-io/ejbca-issuer/internal/issuerclients"
)

// staleReader answers Gets of one request with an old copy, as a lagging
// informer cache would.
type staleReader struct {
	client.Client
	old *cmapi.CertificateRequest
}

func (s staleReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if cr, ok := obj.(*cmapi.CertificateRequest); ok && key == client.ObjectKeyFromObject(s.old) {
		s.old.DeepCopyInto(cr)
		return nil
	}
	return s.Client.Get(ctx, key, obj, opts...)
}

// TestStaleReadNeverActs: a reconciler whose cache still shows an issued
// request as approved and unsigned must not enrol it again or overwrite its
// status. The state write that precedes the EJBCA call carries the
// resourceVersion it was decided from, and the API server refuses it.
func TestStaleReadNeverActs(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns, _ := readyIssuer(t, sim)
	cr, _ := requestFor(t, ns, "ejbca", "stale")
	stale := cr.DeepCopy() // approved, not yet signed
	waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
	issued := cr.Status.Certificate

	c := staleReader{Client: k8s, old: stale}
	// A second process (or one restarted) that began after the request
	// existed: it inherits the request and searches before enrolling.
	attempts := signing.NewAttempts(clock.RealClock{}, signing.CertificateRequestInventory(signing.InventoryReaders{API: k8s}))
	if err := attempts.Begin(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := &controllers.CertificateRequestReconciler{RequestSigning: signing.RequestSigning{
		Client:  c,
		Clients: issuerclients.New(k8s, k8s, clusterResourceNamespace, nil, nil),
		Signer: &signing.Signer{Client: c, Reader: k8s, Clock: clock.RealClock{}, Settle: signing.SettleTime(5 * time.Second),
			Attempts: attempts},
		Recorder: clientevents.NewFakeRecorder(10), ClusterResourceNamespace: clusterResourceNamespace,
		RetryWindow: time.Hour, Clock: clock.RealClock{},
	}}
	_, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(cr)})
	if !apierrors.IsConflict(err) {
		t.Errorf("reconciling from a stale copy = %v, want a conflict", err)
	}
	if n := enrolments(sim, ns+"/stale"); n != 1 {
		t.Errorf("%d certificates after a reconcile from a stale copy, want the 1 issued before", n)
	}
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(cr), cr); err != nil {
		t.Fatal(err)
	}
	if readyOf(cr).Reason != cmapi.CertificateRequestReasonIssued || string(cr.Status.Certificate) != string(issued) {
		t.Errorf("the issued request's status was changed: %+v", readyOf(cr))
	}
}
