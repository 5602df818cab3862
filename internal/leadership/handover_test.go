package leadership

import (
	"context"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	clocktesting "k8s.io/utils/clock/testing"
)

// recordLock is a lock whose Get returns a given record, or NotFound.
type recordLock struct {
	fakeLock
	rec *resourcelock.LeaderElectionRecord
}

func (r *recordLock) Get(context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	if r.rec == nil {
		return nil, nil, apierrors.NewNotFound(schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}, "x")
	}
	rec := *r.rec
	return &rec, nil, nil
}

// TestPredecessorFromTheAcquiringWrite: what the lease said of the previous
// holder is the record read just before the write that took it; renewals
// after that change nothing.
func TestPredecessorFromTheAcquiringWrite(t *testing.T) {
	renewed := time.Date(2026, 12, 7, 11, 59, 50, 0, time.UTC)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		rec  *resourcelock.LeaderElectionRecord
		want Predecessor
	}{
		{"the Lease did not exist: first start", nil, Predecessor{Kind: PredecessorNone}},
		{"another holder (no Lease client here to read a handover record): lost",
			&resourcelock.LeaderElectionRecord{HolderIdentity: "old", RenewTime: metav1.NewTime(renewed), LeaseDurationSeconds: 15},
			Predecessor{Kind: PredecessorLost, Holder: "old", Renewed: renewed, Duration: 15 * time.Second}},
		{"released by client-go's release on cancel: lost, bounded by the release",
			&resourcelock.LeaderElectionRecord{RenewTime: metav1.NewTime(renewed), LeaseDurationSeconds: 1},
			Predecessor{Kind: PredecessorLost, Renewed: renewed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := New(clocktesting.NewFakePassiveClock(renewed.Add(20*time.Second)), 5*time.Second)
			lock := &recordLock{rec: tc.rec}
			w := l.Watch(lock)
			if p, _ := l.Predecessor(ctx); p.Kind != PredecessorUnknown {
				t.Fatalf("before the election: %v, want unknown", p.Kind)
			}
			_, _, _ = w.Get(ctx)
			mine := resourcelock.LeaderElectionRecord{HolderIdentity: "me"}
			if tc.rec == nil {
				_ = w.Create(ctx, mine)
			} else {
				_ = w.Update(ctx, mine)
			}
			// Renewals: the record read is now this process's own.
			lock.rec = &mine
			_, _, _ = w.Get(ctx)
			_ = w.Update(ctx, mine)
			got, err := l.Predecessor(ctx)
			if err != nil || got != tc.want {
				t.Errorf("Predecessor = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
	var none *Lease
	if p, _ := none.Predecessor(ctx); p.Kind != PredecessorUnknown {
		t.Errorf("without leader election: %v, want unknown", p.Kind)
	}
}

// TestTrustCountsFromTheRenewTimeWritten: a renewal whose record was
// stamped before it was sent (client-go read the Lease in between) counts
// from the stamp, which is what a successor reads on the Lease.
func TestTrustCountsFromTheRenewTimeWritten(t *testing.T) {
	stamp := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	clock := clocktesting.NewFakePassiveClock(stamp.Add(3 * time.Second)) // sent 3s after the stamp
	l := New(clock, 5*time.Second)
	w := l.Watch(&fakeLock{})
	if err := w.Update(context.Background(), resourcelock.LeaderElectionRecord{HolderIdentity: "me", RenewTime: metav1.NewTime(stamp)}); err != nil {
		t.Fatal(err)
	}
	clock.SetTime(stamp.Add(4900 * time.Millisecond))
	if !l.Holds() {
		t.Fatal("does not hold within trust of the stamp")
	}
	clock.SetTime(stamp.Add(5 * time.Second))
	if l.Holds() {
		t.Error("holds 5s after the renew time written on the Lease (trust 5s): a successor would count from it")
	}
}
