package controllers

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
)

// Attempts is the signer's memory of one-call enrolments whose answer may
// have been lost. It replaces a write on every request: only a process
// knows what it sent, so it keeps that in memory, and treats every request
// that existed when it began signing (its start, or its election as leader)
// as possibly sent by its predecessor. Which requests existed is read from
// the API server once, at that moment (Inventory), not judged from creation
// times, whose clock and one-second resolution are not ours. Such a request
// is searched for once, and enrolled only when the search, run after its
// predecessor's calls have settled, finds nothing. Steady state: no write
// and no search; a restart costs one list and one search per request
// pending at the time.
type Attempts struct {
	clock clock.Clock
	// inventory lists every request that exists now, of every kind the
	// signer serves.
	inventory Inventory

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
	// yet: by this process, or, for an inherited request, at the latest
	// when this process began.
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

// Begin takes the inventory: every request that exists now may have been
// sent by a predecessor, whose last call began before now.
func (a *Attempts) Begin(ctx context.Context) error {
	began := a.clock.Now()
	existing, err := a.inventory(ctx)
	if err != nil {
		return fmt.Errorf("listing the requests that exist as this process begins signing: %w", err)
	}
	a.once.Do(func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, r := range existing {
			_, known := a.entries[r.UID]
			_, done := a.doneEarly[r.UID]
			if !known && !done {
				a.entries[r.UID] = &attempt{namespace: r.Namespace, name: r.Name, sent: began, inherited: true}
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
	<-ctx.Done()
	return nil
}

// Unanswered tells whether an enrolment for the request may have issued
// without the answer reaching this process. at is when that attempt began
// (for an inherited request: when this process began, the latest its
// predecessor can have sent), searchFrom when EJBCA may have begun issuing
// it. It waits for the inventory.
func (a *Attempts) Unanswered(ctx context.Context, sr *SigningRequest) (at, searchFrom time.Time, ok bool, err error) {
	select {
	case <-a.ready:
	case <-ctx.Done():
		return time.Time{}, time.Time{}, false, ctx.Err()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.entries[sr.UID]
	switch {
	case e == nil || e.settled || e.issued != nil:
		return time.Time{}, time.Time{}, false, nil
	case e.inherited:
		return e.sent, sr.Created, true, nil
	}
	return e.sent, e.sent, true, nil
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
