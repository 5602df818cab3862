package revocation

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/controllers/signing"
	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
	"github.com/certctl-io/ejbca-issuer/internal/eventrecord"
	"github.com/certctl-io/ejbca-issuer/internal/issuerclients"
	"github.com/certctl-io/ejbca-issuer/internal/leadership"
	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

// TestRevocationWaitsForTheLease: a process whose lease is not (or no
// longer) held makes no revoke call, writes nothing and keeps the request's
// finalizer; it looks again later. The issuer client cache is nil, so any
// attempt to reach EJBCA would panic.
func TestRevocationWaitsForTheLease(t *testing.T) {
	t.Parallel()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, cmapi.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clk := clocktesting.NewFakeClock(now)
	iss := &v1alpha1.EJBCAIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "ejbca"},
		Spec: v1alpha1.IssuerSpec{Revocation: &v1alpha1.RevocationSpec{Deleted: true}}}
	cr, key := deletedIssuedHere(t, now)
	for _, tc := range []struct {
		name  string
		lease func(t *testing.T) *leadership.Lease
	}{
		{"elected, never renewed", func(*testing.T) *leadership.Lease { return leadership.New(clk, 7*time.Second) }},
		{"renewed, then frozen past its trust", func(t *testing.T) *leadership.Lease {
			l := leadership.New(clk, 7*time.Second)
			if err := l.Watch(renewingLock{}).Update(context.Background(), resourcelock.LeaderElectionRecord{HolderIdentity: "me"}); err != nil {
				t.Fatal(err)
			}
			if !l.Holds() {
				t.Fatal("a lease just renewed does not hold")
			}
			clk.Step(8 * time.Second)
			return l
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(iss.DeepCopy(), cr.DeepCopy()).WithStatusSubresource(cr).Build()
			recorder := events.NewFakeRecorder(10)
			r := &RevocationReconciler{Client: c, Reader: c, Recorder: recorder, Clock: clk, AbandonAfter: time.Hour, Lease: tc.lease(t), IssuanceKey: key}
			res, err := r.Reconcile(context.Background(), reconcile.Request{NamespacedName: client.ObjectKeyFromObject(cr)})
			if err != nil {
				t.Fatal(err)
			}
			if res.RequeueAfter != signing.NotLeaderRequeue {
				t.Errorf("requeue after %s, want %s", res.RequeueAfter, signing.NotLeaderRequeue)
			}
			got := &cmapi.CertificateRequest{}
			if err := c.Get(context.Background(), client.ObjectKeyFromObject(cr), got); err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(got.Finalizers, v1alpha1.RevocationFinalizer) {
				t.Error("the finalizer was removed by a process that does not hold the lease")
			}
			if revokedCondition(got) != nil {
				t.Errorf("recorded %+v without the lease", revokedCondition(got))
			}
			if len(recorder.Events) != 0 {
				t.Errorf("event %q without the lease", <-recorder.Events)
			}
		})
	}
}

// renewingLock is a leader election lock whose every write succeeds.
type renewingLock struct{ resourcelock.Interface }

func (renewingLock) Update(context.Context, resourcelock.LeaderElectionRecord) error { return nil }
func (renewingLock) Identity() string                                                { return "me" }

// TestRevocationDeposedDuringTheCall: the lease is held when the revoke
// call starts and lost while EJBCA answers it (the clock steps past the
// lease's trust as the answer arrives, as for a leader frozen in the call).
// The answer is not recorded, no event is emitted and the finalizer stays:
// the new leader records what EJBCA says then, so the request never gets
// two contradictory stories.
func TestRevocationDeposedDuringTheCall(t *testing.T) {
	t.Parallel()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, cmapi.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	sim, err := ejbcasim.Start(ejbcasim.Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	now := time.Now() // the client certificate is checked against this clock
	clk := clocktesting.NewFakeClock(now)
	lease := leadership.New(clk, 7*time.Second)
	if err := lease.Watch(renewingLock{}).Update(context.Background(), resourcelock.LeaderElectionRecord{HolderIdentity: "me"}); err != nil {
		t.Fatal(err)
	}
	iss := &v1alpha1.EJBCAIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "ejbca"},
		Spec: v1alpha1.IssuerSpec{URL: sim.URL(), CAName: "IssuingCA", CertificateProfileName: "SERVER", EndEntityProfileName: "EMPTY",
			Auth:       v1alpha1.AuthSpec{Mode: v1alpha1.AuthModeMTLS, MTLS: &v1alpha1.MTLSAuth{SecretName: "ejbca-client"}},
			CABundle:   &v1alpha1.CABundle{ConfigMapRef: &v1alpha1.ConfigMapKeySelector{Name: "ejbca-ca", Key: "ca.crt"}, ExcludeSystemRoots: true},
			Revocation: &v1alpha1.RevocationSpec{Deleted: true}}}
	objs := []client.Object{iss,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "ejbca-client"}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: sim.ClientCertPEM(), corev1.TLSPrivateKeyKey: sim.ClientKeyPEM()}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "ejbca-ca"}, Data: map[string]string{"ca.crt": string(sim.CABundlePEM())}},
	}
	cr, key := deletedIssuedHere(t, now)
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(append(objs, cr.DeepCopy())...).WithStatusSubresource(cr).Build()
	clients := issuerclients.New(c, c, "ejbca-issuer", clk.Now, func(_ v1alpha1.Issuer, o *ejbca.Options) {
		o.OnRoundTrip = func(endpoint string, _ int, _ time.Duration) {
			if strings.Contains(endpoint, "revoke") {
				clk.Step(8 * time.Second) // the answer arrives past the lease's trust
			}
		}
	})
	recorder := events.NewFakeRecorder(10)
	r := &RevocationReconciler{Client: c, Reader: c, Clients: clients, Recorder: eventrecord.LeaderOnly(recorder, lease), Clock: clk, AbandonAfter: time.Hour, Lease: lease, IssuanceKey: key}
	res, err := r.Reconcile(context.Background(), reconcile.Request{NamespacedName: client.ObjectKeyFromObject(cr)})
	if err != nil {
		t.Fatal(err)
	}
	if sim.Counters().Get("revoke") != 1 {
		t.Fatalf("revoke calls: %+v; the test needs the one made while the lease held (result %+v)", sim.Counters().Calls, res)
	}
	if res.RequeueAfter != signing.NotLeaderRequeue {
		t.Errorf("requeue after %s, want %s", res.RequeueAfter, signing.NotLeaderRequeue)
	}
	got := &cmapi.CertificateRequest{}
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(cr), got); err != nil {
		t.Fatal(err)
	}
	if revokedCondition(got) != nil {
		t.Errorf("a deposed process recorded %+v", revokedCondition(got))
	}
	if !slices.Contains(got.Finalizers, v1alpha1.RevocationFinalizer) {
		t.Error("a deposed process removed the finalizer")
	}
	if len(recorder.Events) != 0 {
		t.Errorf("a deposed process emitted %q", <-recorder.Events)
	}
}

// deletedIssuedHere is a request of team/ejbca, deleted a minute before now
// and held by the revocation finalizer, whose certificate this manager
// issued: its sealed issuance record (made with the returned key) names it.
func deletedIssuedHere(t *testing.T, now time.Time) (*cmapi.CertificateRequest, signing.IssuanceKey) {
	t.Helper()
	deleted := metav1.NewTime(now.Add(-time.Minute))
	cr := &cmapi.CertificateRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "web-1", UID: types.UID("uid-1"),
			Finalizers: []string{v1alpha1.RevocationFinalizer}, DeletionTimestamp: &deleted},
		Spec:   cmapi.CertificateRequestSpec{IssuerRef: cmmeta.IssuerReference{Group: v1alpha1.GroupVersion.Group, Kind: v1alpha1.IssuerKind, Name: "ejbca"}},
		Status: cmapi.CertificateRequestStatus{Certificate: testkit.SelfSignedPEM(t, 0x1a2b, "web.example.com")},
	}
	key := signing.IssuanceKey("an issuance key of 32 bytes.....")
	rec := key.IssuanceRecordCondition(cr.UID, signing.LeafOf(cr.Status.Certificate), metav1.NewTime(now))
	cr.Status.Conditions = []cmapi.CertificateRequestCondition{{Type: *rec.Type, Status: *rec.Status, Reason: *rec.Reason, Message: *rec.Message}}
	return cr, key
}
