package leadership

import (
	"context"
	"errors"
	"testing"
	"time"

	"k8s.io/client-go/tools/leaderelection/resourcelock"
	clocktesting "k8s.io/utils/clock/testing"
)

// fakeLock is a lock whose writes succeed or fail as told.
type fakeLock struct {
	resourcelock.Interface
	fail bool
}

func (f *fakeLock) Identity() string { return "me" }

func (f *fakeLock) Create(context.Context, resourcelock.LeaderElectionRecord) error { return f.err() }
func (f *fakeLock) Update(context.Context, resourcelock.LeaderElectionRecord) error { return f.err() }
func (f *fakeLock) err() error {
	if f.fail {
		return errors.New("conflict")
	}
	return nil
}

func TestLeaseHoldsOnlyWithinTrustOfTheLastRenewal(t *testing.T) {
	clock := clocktesting.NewFakePassiveClock(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))
	l := New(clock, 5*time.Second)
	lock := &fakeLock{}
	w := l.Watch(lock)
	if l.Holds() {
		t.Fatal("holds before acquiring")
	}
	if err := w.Create(context.Background(), resourcelock.LeaderElectionRecord{HolderIdentity: "me"}); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		advance time.Duration
		renew   bool
		fail    bool
		want    bool
	}{
		{0, false, false, true},
		{4 * time.Second, false, false, true},
		{time.Second, false, false, false}, // 5s after the renewal: a frozen leader stops here
		{0, true, true, false},             // a failed renewal does not count
		{0, true, false, true},             // a successful one does
		{2 * time.Second, true, false, true},
		{4 * time.Second, false, false, true},
		{2 * time.Second, false, false, false},
	}
	for i, s := range steps {
		clock.SetTime(clock.Now().Add(s.advance))
		if s.renew {
			lock.fail = s.fail
			_ = w.Update(context.Background(), resourcelock.LeaderElectionRecord{HolderIdentity: "me"})
		}
		if got := l.Holds(); got != s.want {
			t.Errorf("step %d (+%s, renew %v, fail %v): Holds() = %v, want %v", i, s.advance, s.renew, s.fail, got, s.want)
		}
	}
}

func TestNoLeaseAlwaysHolds(t *testing.T) {
	var l *Lease
	if !l.Holds() {
		t.Error("a nil Lease (no leader election) does not hold")
	}
}

// TestReleaseIsNoRenewal: a deposed leader woken from a freeze releases the
// lease (a successful write with no holder) on its way out; that must not
// make it hold again.
func TestReleaseIsNoRenewal(t *testing.T) {
	clock := clocktesting.NewFakePassiveClock(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))
	l := New(clock, 5*time.Second)
	w := l.Watch(&fakeLock{})
	if err := w.Update(context.Background(), resourcelock.LeaderElectionRecord{HolderIdentity: "me"}); err != nil || !l.Holds() {
		t.Fatalf("a renewal: holds %v, %v", l.Holds(), err)
	}
	if err := w.Update(context.Background(), resourcelock.LeaderElectionRecord{HolderIdentity: ""}); err != nil {
		t.Fatal(err)
	}
	if l.Holds() {
		t.Error("holds after releasing the lease")
	}
	if err := w.Create(context.Background(), resourcelock.LeaderElectionRecord{HolderIdentity: "someone-else"}); err != nil || l.Holds() {
		t.Errorf("holds after writing the lock for another holder: %v", err)
	}
}
