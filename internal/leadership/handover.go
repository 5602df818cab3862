package leadership

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// What a new leader knows of the process that led before it decides which
// requests may still have an EJBCA call in flight. A call is in flight only
// where a predecessor may have made it: none when there was no predecessor
// (the Lease did not exist) or when it handed over cleanly, having drained
// its calls and recorded that nothing was left unanswered.

// HandedOverAnnotation on the leader election Lease names the holder that,
// stopping, had no EJBCA call in flight or unanswered. It counts only while
// it names the Lease's holder: the next leader's renewals keep the
// annotation, but the holder then differs.
const HandedOverAnnotation = "ejbca-issuer.certctl.io/handed-over-by"

// PredecessorKind says what is known of the previous leader.
type PredecessorKind int

const (
	// PredecessorUnknown: no leader election (any process may have run
	// before), or not elected yet.
	PredecessorUnknown PredecessorKind = iota
	// PredecessorNone: the Lease did not exist when this process took it:
	// no manager led before.
	PredecessorNone
	// PredecessorHandedOver: the previous holder stopped with nothing in
	// flight and said so on the Lease.
	PredecessorHandedOver
	// PredecessorLost: the previous holder stopped without handing over
	// (killed, crashed, frozen, or stopped with calls unanswered).
	PredecessorLost
)

func (k PredecessorKind) String() string {
	switch k {
	case PredecessorNone:
		return "none"
	case PredecessorHandedOver:
		return "handed over"
	case PredecessorLost:
		return "lost"
	}
	return "unknown"
}

// Predecessor is what the Lease told about the previous leader when this
// process took it.
type Predecessor struct {
	Kind   PredecessorKind
	Holder string
	// Renewed is the previous holder's last renewal written on the Lease
	// (its own clock), and Duration the lease duration it wrote.
	Renewed  time.Time
	Duration time.Duration
}

// LastCall is the latest time a lost predecessor may have begun an EJBCA
// call: a leader calls only while it trusts its lease, at most half the
// lease duration after its last renewal (see Lease.Holds, and the trust the
// manager derives from the lease duration).
func (p Predecessor) LastCall() time.Time {
	return p.Renewed.Add(p.Duration / 2)
}

// acquisition is what the lock wrapper saw as this process took the lease.
type acquisition struct {
	done bool
	// created: the write that took the lease created the Lease.
	created bool
	// seen is the record read just before the write that took the lease.
	seen *resourcelock.LeaderElectionRecord
}

// Predecessor reads what the Lease said of the previous leader when this
// process took it. It is PredecessorUnknown without leader election or
// before this process was elected. For a previous holder it reads the
// Lease's annotations (an API call, once per election).
func (l *Lease) Predecessor(ctx context.Context) (Predecessor, error) {
	if l == nil || !l.elected {
		return Predecessor{}, nil
	}
	l.mu.Lock()
	acq := l.acquired
	l.mu.Unlock()
	switch {
	case acq.created:
		return Predecessor{Kind: PredecessorNone}, nil
	case !acq.done || acq.seen == nil:
		return Predecessor{}, nil
	}
	p := Predecessor{Kind: PredecessorLost, Holder: acq.seen.HolderIdentity, Renewed: acq.seen.RenewTime.Time,
		Duration: time.Duration(acq.seen.LeaseDurationSeconds) * time.Second}
	if p.Holder == "" {
		// Released without our handover record (client-go's release on
		// cancel): the release time bounds its calls.
		p.Duration = 0
		return p, nil
	}
	if l.lock == nil {
		return p, nil // no Lease to read a handover record from
	}
	// The write that took the lease carried the annotations read with the
	// record (and its resourceVersion), so they are still the previous
	// holder's.
	lease, err := l.lock.Client.Leases(l.lock.LeaseMeta.Namespace).Get(ctx, l.lock.LeaseMeta.Name, metav1.GetOptions{})
	if err != nil {
		return Predecessor{}, fmt.Errorf("reading the leader election Lease: %w", err)
	}
	if lease.Annotations[HandedOverAnnotation] == p.Holder {
		p.Kind = PredecessorHandedOver
	}
	return p, nil
}

// Drains tells the Lease how to know that nothing this process sent to
// EJBCA is in flight or unanswered; without it, HandOver never records a
// clean handover.
func (l *Lease) Drains(drained func() bool) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.drained = drained
}

// HandOver is called once the manager has stopped (every controller
// returned, so no call can start any more). If nothing is in flight or
// unanswered, it records so on the Lease and shortens the lease to a second,
// so that a standby takes over at once and enrols without searching or
// waiting. It writes only while the Lease still names this process its
// holder, with the resourceVersion it read: a process deposed meanwhile
// (frozen past its lease) changes nothing. handed is false when nothing was
// written.
func (l *Lease) HandOver(ctx context.Context) (handed bool, err error) {
	if l == nil || l.lock == nil {
		return false, nil
	}
	l.mu.Lock()
	drained := l.drained
	l.mu.Unlock()
	if drained == nil || !drained() {
		return false, nil
	}
	leases := l.lock.Client.Leases(l.lock.LeaseMeta.Namespace)
	lease, err := leases.Get(ctx, l.lock.LeaseMeta.Name, metav1.GetOptions{})
	if err != nil {
		return false, err
	}
	id := l.lock.Identity()
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != id {
		return false, nil
	}
	handOver(lease, id)
	if _, err := leases.Update(ctx, lease, metav1.UpdateOptions{}); err != nil {
		return false, err
	}
	l.forget()
	return true, nil
}

// handOver marks lease as handed over by holder, with a lease of one second.
func handOver(lease *coordinationv1.Lease, holder string) {
	if lease.Annotations == nil {
		lease.Annotations = map[string]string{}
	}
	lease.Annotations[HandedOverAnnotation] = holder
	one := int32(1)
	lease.Spec.LeaseDurationSeconds = &one
}
