// Package leadership tells the signer whether this process may still act as
// the leader. controller-runtime's leader election notices a lost lease only
// when a renewal fails, seconds later; a process that was frozen (SIGSTOP, a
// long GC pause, a suspended VM) past its lease wakes up still believing it
// leads while a standby already does. Before every EJBCA call that issues or
// adds, the signer asks Lease.Holds, which judges from the time of this
// process's own last successful renewal, kept in memory: no API call per
// certificate.
package leadership

import (
	"context"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/utils/clock"
)

// Lease is this process's view of its leader election lease. The zero value
// and a nil *Lease always hold: without leader election there is no one to
// take over.
type Lease struct {
	clock clock.PassiveClock
	// trust is how long after a renewal was sent the lease still counts as
	// held. Another candidate takes over only a full lease duration after it
	// saw the renewal, so trust is shorter than the lease duration.
	trust time.Duration

	// lock is the Lease lock, when it is one: HandOver and Predecessor
	// read and write the Lease through its client.
	lock *resourcelock.LeaseLock

	mu       sync.Mutex
	elected  bool
	renewed  time.Time // when the last successful renewal was sent
	acquired acquisition
	drained  func() bool
}

// New returns a Lease that holds for trust after each successful renewal.
func New(c clock.PassiveClock, trust time.Duration) *Lease {
	return &Lease{clock: c, trust: trust, elected: true}
}

// Holds reports whether this process renewed its lease recently enough to
// act as the leader now.
func (l *Lease) Holds() bool {
	if l == nil || !l.elected {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.renewed.IsZero() && l.clock.Since(l.renewed) < l.trust
}

// forget drops the last renewal: this process wrote the lock for someone
// else (released it).
func (l *Lease) forget() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.renewed = time.Time{}
}

func (l *Lease) record(sent time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if sent.After(l.renewed) {
		l.renewed = sent
	}
}

// Watch wraps the leader election lock so that every successful create or
// update of the lock (acquiring or renewing) is recorded, stamped with the
// time it was sent.
func (l *Lease) Watch(lock resourcelock.Interface) resourcelock.Interface {
	if ll, ok := lock.(*resourcelock.LeaseLock); ok {
		l.lock = ll
	}
	return &watchedLock{Interface: lock, lease: l}
}

type watchedLock struct {
	resourcelock.Interface
	lease *Lease

	mu sync.Mutex
	// seen is the record the last Get read (nil: the Lease did not exist),
	// the predecessor's if the next write takes the lease.
	seen *resourcelock.LeaderElectionRecord
}

// Get keeps the record read, which says who held the lease before a write
// that takes it.
func (w *watchedLock) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	rec, raw, err := w.Interface.Get(ctx)
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case err == nil && rec != nil:
		seen := *rec
		w.seen = &seen
	case apierrors.IsNotFound(err):
		w.seen = nil
	}
	return rec, raw, err
}

// took records, on the first write that makes this process the holder, who
// held the lease before: the record read just before (none when the write
// created the Lease).
func (w *watchedLock) took(created bool) {
	w.mu.Lock()
	seen := w.seen
	w.mu.Unlock()
	l := w.lease
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.acquired.done {
		return
	}
	l.acquired = acquisition{done: true, created: created, seen: seen}
}

// Create and Update record a successful write only when it makes this
// process the holder: a release on the way out (LeaderElectionReleaseOnCancel
// writes the lock with no holder) is a write too, and must not count as a
// renewal, or a deposed leader woken from a freeze would release the lease and
// then think itself freshly renewed.
func (w *watchedLock) Create(ctx context.Context, rec resourcelock.LeaderElectionRecord) error {
	sent := renewedAt(rec, w.lease.clock.Now())
	err := w.Interface.Create(ctx, rec)
	if err == nil && rec.HolderIdentity == w.Identity() {
		w.took(true)
		w.lease.record(sent)
	}
	return err
}

func (w *watchedLock) Update(ctx context.Context, rec resourcelock.LeaderElectionRecord) error {
	sent := renewedAt(rec, w.lease.clock.Now())
	err := w.Interface.Update(ctx, rec)
	if err == nil && rec.HolderIdentity == w.Identity() {
		w.took(false)
		w.lease.record(sent)
	} else if err == nil {
		w.lease.forget()
	}
	return err
}

// renewedAt is the time a renewal counts from: when it is sent, or the
// renew time it writes on the Lease if earlier (client-go stamps the record
// before it may read the Lease again), so that what a successor reads there
// bounds this process's last call (Predecessor.LastCall).
func renewedAt(rec resourcelock.LeaderElectionRecord, sent time.Time) time.Time {
	if t := rec.RenewTime.Time; !t.IsZero() && t.Before(sent) {
		return t
	}
	return sent
}
