package controllers

import (
	"context"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/controllers/signing"
	"github.com/certctl-io/ejbca-issuer/internal/leadership"
	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

// skeletonFixture is one request reconciler of each kind over a fake
// client and a fake clock, with an exactly-once memory that remembers one
// unanswered attempt per request named in it.
type skeletonFixture struct {
	client   client.Client
	clock    *clocktesting.FakeClock
	attempts *signing.Attempts
	gate     *signing.CallGate
	cr       *CertificateRequestReconciler
	csr      *CertificateSigningRequestReconciler
}

func newSkeletonFixture(t *testing.T, lease *leadership.Lease, objs ...client.Object) *skeletonFixture {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, cmapi.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	f := &skeletonFixture{clock: clocktesting.NewFakeClock(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)), gate: &signing.CallGate{}}
	f.client = fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).WithStatusSubresource(objs...).Build()
	f.attempts = signing.NewAttempts(f.clock, nil)
	s := signing.RequestSigning{Client: f.client, Signer: &signing.Signer{Attempts: f.attempts, Clock: f.clock}, Clock: f.clock,
		Jitter: func() float64 { return 1 }, Lease: lease, Gate: f.gate}
	f.cr = &CertificateRequestReconciler{RequestSigning: s}
	f.csr = &CertificateSigningRequestReconciler{RequestSigning: s}
	return f
}

// sent puts an unanswered attempt of the request in memory, and shuts its
// call gate for an hour.
func (f *skeletonFixture) sent(ns, name string, uid types.UID) {
	f.attempts.Sent(&signing.SigningRequest{Namespace: ns, Name: name, UID: uid}, f.clock.Now())
	f.gate.Hold(types.NamespacedName{Namespace: ns, Name: name}, uid, f.clock.Now().Add(time.Hour))
}

func (f *skeletonFixture) gateShut(ns, name string, uid types.UID) bool {
	return f.gate.Wait(types.NamespacedName{Namespace: ns, Name: name}, uid, f.clock.Now()) > 0
}

func crFor(name string, ref cmmeta.IssuerReference, conds ...cmapi.CertificateRequestCondition) *cmapi.CertificateRequest {
	cr := testkit.CertificateRequest("team-a", name, []byte("not read"), ref)
	cr.UID = types.UID("uid-" + name)
	cr.Status.Conditions = conds
	return cr
}

// TestRequestSkeletonForgetsWhatIsOver: whichever the kind, a request that
// is gone, final, or not ours leaves the exactly-once memory and the call
// gate, without a write; a deposed leader leaves everything as it is and
// looks again later.
func TestRequestSkeletonForgetsWhatIsOver(t *testing.T) {
	ours := testkit.IssuerRef(v1alpha1.IssuerKind, "ejbca")
	issued := cmapi.CertificateRequestCondition{Type: cmapi.CertificateRequestConditionReady, Status: cmmeta.ConditionTrue, Reason: cmapi.CertificateRequestReasonIssued}
	final := crFor("final", ours, issued)
	foreign := crFor("foreign", cmmeta.IssuerReference{Group: "cert-manager.io", Kind: "Issuer", Name: "ca"})
	pending := crFor("pending", ours)
	finalCSR := testkit.CertificateSigningRequest("final-csr", v1alpha1.IssuerSignerName(v1alpha1.ClusterIssuerKind, "", "ejbca"), []byte("not read"))
	finalCSR.UID = "uid-final-csr"
	finalCSR.Status.Certificate = []byte("issued")
	finalCSR.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue}}

	held := leadership.New(clocktesting.NewFakeClock(time.Now()), time.Minute) // never renewed: does not hold
	for _, tc := range []struct {
		name      string
		lease     *leadership.Lease
		objs      []client.Object
		reconcile func(f *skeletonFixture) (ctrl.Result, error)
		ns, req   string
		uid       types.UID
		forgotten bool
		want      ctrl.Result
	}{
		{name: "a deleted CertificateRequest", ns: "team-a", req: "gone", uid: "uid-gone", forgotten: true,
			reconcile: func(f *skeletonFixture) (ctrl.Result, error) {
				return f.cr.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "team-a", Name: "gone"}})
			}},
		{name: "a final CertificateRequest", objs: []client.Object{final}, ns: "team-a", req: "final", uid: final.UID, forgotten: true,
			reconcile: func(f *skeletonFixture) (ctrl.Result, error) {
				return f.cr.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(final)})
			}},
		{name: "another issuer's CertificateRequest", objs: []client.Object{foreign}, ns: "team-a", req: "foreign", uid: foreign.UID, forgotten: true,
			reconcile: func(f *skeletonFixture) (ctrl.Result, error) {
				return f.cr.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(foreign)})
			}},
		{name: "a deleted CertificateSigningRequest", req: "gone-csr", uid: "uid-gone-csr", forgotten: true,
			reconcile: func(f *skeletonFixture) (ctrl.Result, error) {
				return f.csr.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Name: "gone-csr"}})
			}},
		{name: "an issued CertificateSigningRequest", objs: []client.Object{finalCSR}, req: "final-csr", uid: finalCSR.UID, forgotten: true,
			reconcile: func(f *skeletonFixture) (ctrl.Result, error) {
				return f.csr.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Name: "final-csr"}})
			}},
		{name: "a pending request seen by a deposed leader", lease: held, objs: []client.Object{pending}, ns: "team-a", req: "pending", uid: pending.UID,
			want: ctrl.Result{RequeueAfter: signing.NotLeaderRequeue},
			reconcile: func(f *skeletonFixture) (ctrl.Result, error) {
				return f.cr.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(pending)})
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var objs []client.Object
			for _, o := range tc.objs {
				objs = append(objs, o.DeepCopyObject().(client.Object))
			}
			f := newSkeletonFixture(t, tc.lease, objs...)
			f.sent(tc.ns, tc.req, tc.uid)
			before := map[string]string{}
			for _, o := range objs {
				before[o.GetName()] = o.GetResourceVersion()
			}
			res, err := tc.reconcile(f)
			if err != nil {
				t.Fatal(err)
			}
			if res != tc.want {
				t.Errorf("result %+v, want %+v", res, tc.want)
			}
			if remembered := f.attempts.Len() == 1; remembered == tc.forgotten {
				t.Errorf("exactly-once memory holds %d requests; forgotten %v", f.attempts.Len(), tc.forgotten)
			}
			if shut := f.gateShut(tc.ns, tc.req, tc.uid); shut == tc.forgotten {
				t.Errorf("call gate shut: %v; forgotten %v", shut, tc.forgotten)
			}
			for _, o := range objs {
				cur := o.DeepCopyObject().(client.Object)
				if err := f.client.Get(context.Background(), client.ObjectKeyFromObject(o), cur); err != nil {
					t.Fatal(err)
				}
				if cur.GetResourceVersion() != before[o.GetName()] {
					t.Errorf("%s was written (resourceVersion %s, was %s)", o.GetName(), cur.GetResourceVersion(), before[o.GetName()])
				}
			}
		})
	}
}
