package issuers

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/controllers/signing"
	"github.com/certctl-io/ejbca-issuer/internal/issuerclients"
)

func newTestQueue(t *testing.T) workqueue.TypedRateLimitingInterface[reconcile.Request] {
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	t.Cleanup(q.ShutDown)
	return q
}

// drain takes every key from q, counting how often each came.
func drain(q workqueue.TypedRateLimitingInterface[reconcile.Request]) map[types.NamespacedName]int {
	seen := map[types.NamespacedName]int{}
	for q.Len() > 0 {
		item, _ := q.Get()
		seen[item.NamespacedName]++
		q.Done(item)
	}
	return seen
}

// TestIssuerInboxLosesNoWake: a burst of wakes for far more issuers than
// the 1,024 slots the inbox once had, before the controller starts and
// after, queues every issuer, each once however often it was woken. (The
// old channel inbox dropped every wake past its 1,024th while the
// controller was busy or not yet started.)
func TestIssuerInboxLosesNoWake(t *testing.T) {
	r := &IssuerReconciler{Kind: v1alpha1.IssuerKind, Clock: clocktesting.NewFakePassiveClock(time.Now())}
	wakes := NewIssuerWakes()
	wakes.Register(v1alpha1.IssuerKind, r)
	key := func(i int) types.NamespacedName {
		return types.NamespacedName{Namespace: fmt.Sprintf("team-%d", i%7), Name: fmt.Sprintf("issuer-%d", i)}
	}
	const burst = 3000
	// Before the controller runs: every issuer woken twice, in every way.
	for i := range burst {
		wakes.Suspect(v1alpha1.IssuerKind, key(i))
		switch i % 3 {
		case 0:
			wakes.Recheck(v1alpha1.IssuerKind, key(i))
		case 1:
			wakes.Report(v1alpha1.IssuerKind, key(i), signing.IssuerFault{Reason: v1alpha1.ReasonUnauthorized, Message: "refused"})
		}
	}
	// Another kind's wakes are not this controller's.
	wakes.Suspect(v1alpha1.ClusterIssuerKind, types.NamespacedName{Name: "cluster"})

	q := newTestQueue(t)
	if err := r.inbox.Start(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	seen := drain(q)
	if len(seen) != burst {
		t.Fatalf("%d issuers queued after a burst of wakes for %d before the start, want all", len(seen), burst)
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%v queued %d times, want once", k, n)
		}
	}

	// Running, with nothing taken from the queue while the burst comes
	// (all workers busy): none dropped, each queued once.
	for i := range 2 * burst {
		wakes.Suspect(v1alpha1.IssuerKind, key(i))
		wakes.Recheck(v1alpha1.IssuerKind, key(i))
	}
	seen = drain(q)
	if len(seen) != 2*burst {
		t.Fatalf("%d issuers queued after a burst of wakes for %d while running, want all", len(seen), 2*burst)
	}
	// Why each was woken is kept beside the queue, coalesced to the most
	// urgent reason.
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range burst {
		want := wakeEJBCABack
		if i%3 == 1 {
			want = wakeFault
		}
		if got := r.wake[key(i)]; got != want {
			t.Fatalf("issuer %v woken for %v, want %v", key(i), got, want)
		}
	}
	if len(r.faults) != burst/3 {
		t.Errorf("%d faults kept, want %d", len(r.faults), burst/3)
	}
}

// wakeTest is an issuer reconciler over controller-runtime's fake client
// and a fake clock, for the wake, fault and schedule logic. The issuer's
// Secret does not exist, so a check is told by its result (SecretNotFound)
// without EJBCA being asked; its last check (at t0) is seeded.
type wakeTest struct {
	r     *IssuerReconciler
	c     client.Client
	clk   *clocktesting.FakePassiveClock
	queue workqueue.TypedRateLimitingInterface[reconcile.Request]
	key   types.NamespacedName
	t0    time.Time
}

const wakeTestInterval = 10 * time.Minute

func newWakeTest(t *testing.T, last healthRecord, cond metav1.Condition, generation int64) *wakeTest {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	iss := &v1alpha1.EJBCAIssuer{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "ejbca", UID: "uid-1", Generation: generation},
		Spec: v1alpha1.IssuerSpec{URL: "https://127.0.0.1:1", CAName: "IssuingCA",
			Auth: v1alpha1.AuthSpec{Mode: v1alpha1.AuthModeMTLS, MTLS: &v1alpha1.MTLSAuth{SecretName: "absent"}}},
	}
	cond.Type, cond.ObservedGeneration, cond.LastTransitionTime = v1alpha1.ConditionReady, 1, metav1.NewTime(t0)
	iss.Status.Conditions = []metav1.Condition{cond}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(iss).WithStatusSubresource(iss).Build()
	clk := clocktesting.NewFakePassiveClock(t0)
	r := &IssuerReconciler{
		Kind: v1alpha1.IssuerKind, Client: c, ClusterResourceNamespace: "ejbca-issuer",
		Clients:  issuerclients.New(c, c, "ejbca-issuer", clk.Now, nil),
		Interval: wakeTestInterval, Clock: clk, Recorder: events.NewFakeRecorder(100),
	}
	key := client.ObjectKeyFromObject(iss)
	// The record of a check at t0 of the issuer's first generation.
	first := iss.DeepCopy()
	first.Generation = 1
	refs, err := r.Clients.Fingerprint(context.Background(), first)
	if err != nil {
		t.Fatal(err)
	}
	last.uid, last.generation, last.refs, last.at = iss.UID, 1, refs, t0
	r.checks = map[types.NamespacedName]*healthRecord{key: &last}
	q := newTestQueue(t)
	if err := r.inbox.Start(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	return &wakeTest{r: r, c: c, clk: clk, queue: q, key: key, t0: t0}
}

// reconcileAt runs one reconcile at t0+at and returns its result and the
// issuer's Ready condition after it.
func (w *wakeTest) reconcileAt(t *testing.T, at time.Duration) (ctrl.Result, *metav1.Condition) {
	t.Helper()
	w.clk.SetTime(w.t0.Add(at))
	res, err := w.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: w.key})
	if err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	var iss v1alpha1.EJBCAIssuer
	if err := w.c.Get(context.Background(), w.key, &iss); err != nil {
		t.Fatal(err)
	}
	return res, iss.Status.ReadyCondition()
}

// TestIssuerWakeFaultAndSchedule: what a reconcile of an issuer does,
// given its last check, what woke it and when: check now, take a reported
// fault as the check's result, or wait (and how long).
func TestIssuerWakeFaultAndSchedule(t *testing.T) {
	ready := healthRecord{status: metav1.ConditionTrue, reason: v1alpha1.ReasonChecked}
	failing := healthRecord{status: metav1.ConditionFalse, reason: v1alpha1.ReasonSecretNotFound, failures: 3}
	readyCond := metav1.Condition{Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonChecked, Message: "checked"}
	failingCond := metav1.Condition{Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonSecretNotFound, Message: "absent"}
	fault := signing.IssuerFault{Reason: v1alpha1.ReasonUnauthorized, Message: "EJBCA refused the credentials when signing CertificateRequest team-a/web-1: 403"}
	suspect := func(w *wakeTest) { w.r.wakeUp(w.key, wakeSuspect) }
	back := func(w *wakeTest) { w.r.wakeUp(w.key, wakeEJBCABack) }
	report := func(w *wakeTest) { w.r.report(w.key, fault) }
	for _, tc := range []struct {
		name       string
		last       healthRecord
		cond       metav1.Condition
		generation int64 // the issuer's; its last check saw generation 1
		wake       []func(*wakeTest)
		at         time.Duration
		// recorded: a result (a check's or a reported fault's) was recorded at t0+at.
		recorded   bool
		wantReason string
		wantMsg    string
		requeue    time.Duration
		// kept: a suspicion is kept for the deferred check.
		kept bool
	}{
		{name: "not due, not woken: nothing checked", last: ready, cond: readyCond, at: 30 * time.Second,
			wantReason: v1alpha1.ReasonChecked, requeue: wakeTestInterval - 30*time.Second},
		{name: "due: checked", last: ready, cond: readyCond, at: wakeTestInterval,
			recorded: true, wantReason: v1alpha1.ReasonSecretNotFound, requeue: signing.MinHealthCheckSpacing},
		{name: "a suspicion within the spacing waits for it and is kept", last: ready, cond: readyCond, wake: []func(*wakeTest){suspect}, at: 20 * time.Second,
			wantReason: v1alpha1.ReasonChecked, requeue: 40 * time.Second, kept: true},
		{name: "a suspicion past the spacing checks", last: ready, cond: readyCond, wake: []func(*wakeTest){suspect}, at: signing.MinHealthCheckSpacing,
			recorded: true, wantReason: v1alpha1.ReasonSecretNotFound, requeue: signing.MinHealthCheckSpacing},
		{name: "EJBCA back checks at once", last: ready, cond: readyCond, wake: []func(*wakeTest){back}, at: 5 * time.Second,
			recorded: true, wantReason: v1alpha1.ReasonSecretNotFound, requeue: signing.MinHealthCheckSpacing},
		{name: "a reported fault is the result, without a check", last: ready, cond: readyCond, wake: []func(*wakeTest){report}, at: 5 * time.Second,
			recorded: true, wantReason: v1alpha1.ReasonUnauthorized, wantMsg: fault.Message, requeue: signing.MinHealthCheckSpacing},
		{name: "suspicion and fault coalesce: the fault wins", last: ready, cond: readyCond, wake: []func(*wakeTest){suspect, report, suspect}, at: 5 * time.Second,
			recorded: true, wantReason: v1alpha1.ReasonUnauthorized, wantMsg: fault.Message, requeue: signing.MinHealthCheckSpacing},
		{name: "EJBCA back and fault coalesce: the fault wins", last: ready, cond: readyCond, wake: []func(*wakeTest){report, back}, at: 5 * time.Second,
			recorded: true, wantReason: v1alpha1.ReasonUnauthorized, wantMsg: fault.Message, requeue: signing.MinHealthCheckSpacing},
		{name: "a fault reported against an older spec is checked instead", last: ready, cond: readyCond, generation: 2, wake: []func(*wakeTest){report}, at: 5 * time.Second,
			recorded: true, wantReason: v1alpha1.ReasonSecretNotFound, requeue: signing.MinHealthCheckSpacing},
		{name: "a changed spec checks at once, unwoken", last: ready, cond: readyCond, generation: 2, at: 5 * time.Second,
			recorded: true, wantReason: v1alpha1.ReasonSecretNotFound, requeue: signing.MinHealthCheckSpacing},
		{name: "a failing issuer backs off: the 4th check 4m after the 3rd", last: failing, cond: failingCond, at: time.Minute,
			wantReason: v1alpha1.ReasonSecretNotFound, requeue: 3 * time.Minute},
		{name: "a failing issuer is checked when its backoff ends", last: failing, cond: failingCond, at: 4 * time.Minute,
			recorded: true, wantReason: v1alpha1.ReasonSecretNotFound, requeue: 8 * time.Minute},
		{name: "a suspicion cuts a failing issuer's backoff to the spacing, not below", last: failing, cond: failingCond, wake: []func(*wakeTest){suspect}, at: 30 * time.Second,
			wantReason: v1alpha1.ReasonSecretNotFound, requeue: 30 * time.Second, kept: true},
		{name: "a suspicion checks a failing issuer once the spacing is over", last: failing, cond: failingCond, wake: []func(*wakeTest){suspect}, at: 2 * time.Minute,
			recorded: true, wantReason: v1alpha1.ReasonSecretNotFound, requeue: 8 * time.Minute},
		{name: "a condition this process did not write waits for the spacing", last: ready, cond: failingCond, at: 30 * time.Second,
			wantReason: v1alpha1.ReasonSecretNotFound, requeue: 30 * time.Second},
		{name: "a condition this process did not write is checked past the spacing", last: ready, cond: failingCond, at: signing.MinHealthCheckSpacing,
			recorded: true, wantReason: v1alpha1.ReasonSecretNotFound, requeue: signing.MinHealthCheckSpacing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gen := tc.generation
			if gen == 0 {
				gen = 1
			}
			w := newWakeTest(t, tc.last, tc.cond, gen)
			for _, wake := range tc.wake {
				wake(w)
			}
			if got := drain(w.queue); len(tc.wake) > 0 && got[w.key] != 1 || len(got) > 1 {
				t.Errorf("queued %v after %d wakes, want the issuer once", got, len(tc.wake))
			}
			res, cond := w.reconcileAt(t, tc.at)
			if res.RequeueAfter != tc.requeue {
				t.Errorf("requeue after %v, want %v", res.RequeueAfter, tc.requeue)
			}
			if cond == nil || cond.Reason != tc.wantReason {
				t.Errorf("Ready condition %+v, want reason %s", cond, tc.wantReason)
			} else if tc.wantMsg != "" && cond.Message != tc.wantMsg {
				t.Errorf("Ready message %q, want %q", cond.Message, tc.wantMsg)
			}
			w.r.mu.Lock()
			rec := w.r.checks[w.key]
			kept := w.r.wake[w.key] == wakeSuspect
			_, faultLeft := w.r.faults[w.key]
			w.r.mu.Unlock()
			if recorded := rec.at.Equal(w.t0.Add(tc.at)); recorded != tc.recorded {
				t.Errorf("result recorded at t0+%v: %v, want %v (record %+v)", tc.at, recorded, tc.recorded, rec)
			}
			if kept != tc.kept {
				t.Errorf("suspicion kept %v, want %v", kept, tc.kept)
			}
			if faultLeft {
				t.Error("a reported fault outlived the reconcile that saw it")
			}
		})
	}
}

// A suspicion deferred to the spacing is acted on by the reconcile at the
// deferred time, with no new wake; and after it, nothing is left.
func TestIssuerSuspicionDeferredThenChecked(t *testing.T) {
	w := newWakeTest(t, healthRecord{status: metav1.ConditionTrue, reason: v1alpha1.ReasonChecked},
		metav1.Condition{Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonChecked, Message: "checked"}, 1)
	w.r.wakeUp(w.key, wakeSuspect)
	res, cond := w.reconcileAt(t, 15*time.Second)
	if res.RequeueAfter != 45*time.Second || cond.Reason != v1alpha1.ReasonChecked {
		t.Fatalf("woken at 15s: requeue %v, reason %s; want 45s and no check", res.RequeueAfter, cond.Reason)
	}
	res, cond = w.reconcileAt(t, signing.MinHealthCheckSpacing)
	if cond.Reason != v1alpha1.ReasonSecretNotFound || res.RequeueAfter != signing.MinHealthCheckSpacing {
		t.Fatalf("at the deferred time: requeue %v, reason %s; want a check", res.RequeueAfter, cond.Reason)
	}
	// The next reconcile, unwoken and before the failing schedule, checks nothing.
	res, cond = w.reconcileAt(t, signing.MinHealthCheckSpacing+10*time.Second)
	if res.RequeueAfter != 50*time.Second || cond.Reason != v1alpha1.ReasonSecretNotFound || !cond.LastTransitionTime.Time.Equal(w.t0.Add(signing.MinHealthCheckSpacing)) {
		t.Errorf("after the check: requeue %v, condition %+v; want 50s and the check's condition", res.RequeueAfter, cond)
	}
}

// A deleted issuer is forgotten: its record goes, and a reconcile of it
// asks for nothing more.
func TestIssuerDeletedIsForgotten(t *testing.T) {
	w := newWakeTest(t, healthRecord{status: metav1.ConditionTrue, reason: v1alpha1.ReasonChecked},
		metav1.Condition{Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonChecked}, 1)
	if err := w.c.Delete(context.Background(), &v1alpha1.EJBCAIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: w.key.Namespace, Name: w.key.Name}}); err != nil {
		t.Fatal(err)
	}
	res, err := w.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: w.key})
	if err != nil || res != (ctrl.Result{}) {
		t.Fatalf("Reconcile of a deleted issuer = %+v, %v", res, err)
	}
	w.r.mu.Lock()
	defer w.r.mu.Unlock()
	if w.r.checks[w.key] != nil {
		t.Error("the deleted issuer's check record is kept")
	}
}
