package issuers

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/controllers/signing"
	"github.com/certctl-io/ejbca-issuer/internal/leadership"
)

// TestDeposedIssuerCheckWritesNothing: a process that no longer holds its
// lease (frozen past it, say) neither checks a due issuer nor writes its
// status, so it cannot contradict the new leader's check (issue 28 item
// 3); the same reconcile with the lease renewed checks and writes.
func TestDeposedIssuerCheckWritesNothing(t *testing.T) {
	ready := healthRecord{status: metav1.ConditionTrue, reason: v1alpha1.ReasonChecked}
	readyCond := metav1.Condition{Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonChecked, Message: "checked"}
	for _, holds := range []bool{false, true} {
		w := newWakeTest(t, ready, readyCond, 1)
		lease := leadership.New(w.clk, trustForTest)
		w.r.Lease = lease
		// Renewed at t0; the check is due at t0+wakeTestInterval, long after
		// the lease's trust ran out, unless renewed then too.
		renew := func() {
			if err := lease.Watch(acceptingLock{}).Update(context.Background(), resourcelock.LeaderElectionRecord{HolderIdentity: "me"}); err != nil {
				t.Fatal(err)
			}
		}
		renew()
		w.clk.SetTime(w.t0.Add(wakeTestInterval))
		if holds {
			renew()
		}
		res, cond := w.reconcileAt(t, wakeTestInterval)
		switch {
		case !holds && (res.RequeueAfter != signing.NotLeaderRequeue || cond == nil || cond.Reason != v1alpha1.ReasonChecked):
			t.Errorf("deposed: requeue %v, condition %+v; want %v and the condition untouched", res.RequeueAfter, cond, signing.NotLeaderRequeue)
		case holds && (cond == nil || cond.Reason != v1alpha1.ReasonSecretNotFound):
			t.Errorf("leading: condition %+v; want the due check's %s", cond, v1alpha1.ReasonSecretNotFound)
		}
	}
}

// trustForTest is how long a renewal lets the test's lease hold.
const trustForTest = 7 * time.Second

// acceptingLock is a leader election lock whose every renewal succeeds.
type acceptingLock struct{ resourcelock.Interface }

func (acceptingLock) Update(context.Context, resourcelock.LeaderElectionRecord) error { return nil }
func (acceptingLock) Identity() string                                                { return "me" }
