package signing

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
	"github.com/certctl-io/ejbca-issuer/internal/leadership"
)

// Attempts is the signer's memory of one-call enrolments whose answer may
// have been lost. It replaces a write on every request: only a process
// knows what it sent, so it keeps that in memory. When it begins signing
// (its start, or its election as leader) it asks what the leader election
// Lease told of its predecessor (InheritanceFrom): none, or one that handed
// over with nothing in flight, leaves nothing to inherit. Otherwise every
// request that exists at that moment may have been sent by the
// predecessor. Which requests existed is read from the API server once
// (Inventory), not judged from creation times, whose clock and one-second
// resolution are not ours. Such a request is searched for once, and
// enrolled only when the search, run after the predecessor's last possible
// call has settled, finds nothing. Steady state: no write and no search; a
// restart after a crash costs one list and one search per request pending
// at the time, a clean restart nothing.
type Attempts struct {
	clock clock.Clock
	// inventory lists every request that exists now, of every kind the
	// signer serves.
	inventory Inventory
	// predecessor tells what the leader election Lease said of the
	// previous leader; nil: unknown.
	predecessor func(context.Context) (leadership.Predecessor, error)
	// inheritance is what Begin decided, for the log.
	inheritance Inheritance
	inherited   int

	ready chan struct{}
	once  sync.Once

	mu      sync.Mutex
	entries map[types.UID]*attempt
	// doneEarly holds the requests found final before the inventory was
	// taken, so that it does not add them back: their final reconcile is
	// over, and nothing would forget them (final states never revert).
	// Emptied when the inventory is taken.
	doneEarly map[types.UID]struct{}
}

// Inventory lists the requests that exist, read from the API server (not a
// cache), so that none created before the call is missing.
type Inventory func(ctx context.Context) ([]Existing, error)

// Existing is a request an Inventory found.
type Existing struct {
	UID             types.UID
	Namespace, Name string
}

type attempt struct {
	namespace, name string
	// sent is when an enrolment was sent that got no definitive answer
	// yet: by this process, or, for an inherited request, the latest its
	// predecessor may have sent one (Inheritance.LastCall).
	sent time.Time
	// inherited: the request existed when this process began, so its
	// predecessor may have sent it; search from its creation.
	inherited bool
	// settled: no enrolment for the request is in flight or unanswered,
	// whoever sent it (EJBCA answered that it did not issue, or a search
	// after the settle time found nothing).
	settled bool
	// issued is the certificate EJBCA gave for the request, kept until its
	// status is written: a status write that failed (a conflict) is retried
	// with it, without asking EJBCA again.
	issued *ejbca.Certificate
}

// NewAttempts returns a memory that begins when Begin (or Start) has taken
// the inventory; until then the signer waits.
func NewAttempts(c clock.Clock, inventory Inventory) *Attempts {
	return &Attempts{clock: c, inventory: inventory, ready: make(chan struct{}), entries: map[types.UID]*attempt{}, doneEarly: map[types.UID]struct{}{}}
}

// WithPredecessor makes Begin ask what is known of the previous leader
// (leadership.Lease.Predecessor); without it, every request that exists
// when this process begins is inherited.
func (a *Attempts) WithPredecessor(p func(context.Context) (leadership.Predecessor, error)) *Attempts {
	a.predecessor = p
	return a
}

// Begin decides what this process inherits from its predecessor and, if it
// may have left calls in flight, takes the inventory: every request that
// exists now may have been sent by it, at the latest at its last possible
// call.
func (a *Attempts) Begin(ctx context.Context) error {
	began := a.clock.Now()
	var p leadership.Predecessor
	if a.predecessor != nil {
		var err error
		if p, err = a.predecessor(ctx); err != nil {
			return err
		}
	}
	inh := InheritanceFrom(p, began)
	var existing []Existing
	if inh.Search {
		var err error
		if existing, err = a.inventory(ctx); err != nil {
			return fmt.Errorf("listing the requests that exist as this process begins signing: %w", err)
		}
	}
	a.once.Do(func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.inheritance, a.inherited = inh, len(existing)
		for _, r := range existing {
			_, known := a.entries[r.UID]
			_, done := a.doneEarly[r.UID]
			if !known && !done {
				a.entries[r.UID] = &attempt{namespace: r.Namespace, name: r.Name, sent: inh.LastCall, inherited: true}
			}
		}
		a.doneEarly = nil
		close(a.ready)
	})
	return nil
}

// Start is Begin as a leader election runnable of the manager: it runs once
// this process leads, and retries the inventory until it succeeds.
func (a *Attempts) Start(ctx context.Context) error {
	log := logf.FromContext(ctx).WithName("attempts")
	for {
		err := a.Begin(ctx)
		if err == nil {
			break
		}
		log.Error(err, "requests wait until the inventory succeeds")
		select {
		case <-ctx.Done():
			return nil
		case <-a.clock.After(time.Second):
		}
	}
	a.mu.Lock()
	if a.inheritance.Search {
		log.Info("began signing after a predecessor that may have left enrolments in flight: the requests that exist now are searched for before they are enrolled",
			"requests", a.inherited, "predecessorLastCall", a.inheritance.LastCall)
	} else {
		log.Info("began signing: no predecessor, or one that handed over with nothing in flight; nothing to search for")
	}
	a.mu.Unlock()
	<-ctx.Done()
	return nil
}

// UnansweredAttempt is an enrolment that may have issued without the answer
// reaching this process.
type UnansweredAttempt struct {
	// At is when the attempt began (for an inherited request: the latest
	// its predecessor may have sent it), SearchFrom when EJBCA may have
	// begun issuing it.
	At, SearchFrom time.Time
	// Inherited: a predecessor may have sent it; this process did not.
	Inherited bool
}

// Unanswered tells whether an enrolment for the request may have issued
// without the answer reaching this process. It waits for Begin.
func (a *Attempts) Unanswered(ctx context.Context, sr *SigningRequest) (UnansweredAttempt, bool, error) {
	select {
	case <-a.ready:
	case <-ctx.Done():
		return UnansweredAttempt{}, false, ctx.Err()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.entries[sr.UID]
	switch {
	case e == nil || e.settled || e.issued != nil:
		return UnansweredAttempt{}, false, nil
	case e.inherited:
		return UnansweredAttempt{At: e.sent, SearchFrom: sr.Created, Inherited: true}, true, nil
	}
	return UnansweredAttempt{At: e.sent, SearchFrom: e.sent}, true, nil
}

// Drained reports whether nothing this process knows of may still issue
// unseen: no enrolment sent and unanswered, no certificate EJBCA gave whose
// status is not written, no inherited request not yet searched for. Only
// then may it hand over cleanly (leadership.Lease.HandOver).
func (a *Attempts) Drained() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range a.entries {
		if !e.settled {
			return false
		}
	}
	return true
}

// Sent records, before EJBCA is called, that an enrolment is on its way.
func (a *Attempts) Sent(sr *SigningRequest, at time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.entries[sr.UID] = &attempt{namespace: sr.Namespace, name: sr.Name, sent: at}
}

// Issued keeps the certificate EJBCA gave for the request until Done.
func (a *Attempts) Issued(sr *SigningRequest, cert *ejbca.Certificate) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.entries[sr.UID] = &attempt{namespace: sr.Namespace, name: sr.Name, issued: cert}
}

// Held is the certificate EJBCA gave for the request whose status is not
// written yet, or nil.
func (a *Attempts) Held(sr *SigningRequest) *ejbca.Certificate {
	a.mu.Lock()
	defer a.mu.Unlock()
	if e := a.entries[sr.UID]; e != nil {
		return e.issued
	}
	return nil
}

// Settled records that nothing sent for the request can still issue: EJBCA
// answered that it did not, or a search after the settle time found
// nothing. The next enrolment needs no search.
func (a *Attempts) Settled(sr *SigningRequest) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.entries[sr.UID] = &attempt{namespace: sr.Namespace, name: sr.Name, settled: true}
}

// Done forgets a request that is final: its status is written, or it was
// found final.
func (a *Attempts) Done(uid types.UID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.entries, uid)
	if a.doneEarly != nil {
		a.doneEarly[uid] = struct{}{}
	}
}

// Taken reports whether the inventory has been taken (the signer no longer
// waits for it).
func (a *Attempts) Taken() bool {
	select {
	case <-a.ready:
		return true
	default:
		return false
	}
}

// Deleted forgets a request that no longer exists.
func (a *Attempts) Deleted(namespace, name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for uid, e := range a.entries {
		if e.namespace == namespace && e.name == name {
			delete(a.entries, uid)
		}
	}
}

// Len is how many requests the memory holds.
func (a *Attempts) Len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.entries)
}

// Inventories joins the inventories of several kinds.
func Inventories(kinds ...Inventory) Inventory {
	return func(ctx context.Context) ([]Existing, error) {
		var all []Existing
		for _, list := range kinds {
			found, err := list(ctx)
			if err != nil {
				return nil, err
			}
			all = append(all, found...)
		}
		return all, nil
	}
}
