package controllers

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
)

// startSkewAllowance widens "created before this process began" to cover a
// difference between this process's clock and the API server's, which
// stamps creation times.
const startSkewAllowance = time.Second

// Attempts is the signer's memory of one-call enrolments whose answer may
// have been lost. It replaces a write on every request: only a process
// knows what it sent, so it keeps that in memory, and treats every request
// created before it began signing (its start, or its election as leader) as
// possibly sent by its predecessor. Such a request is searched for once,
// and enrolled only when the search, run after its predecessor's calls have
// settled, finds nothing. Steady state: no write and no search; a restart
// costs one search per request pending at the time.
type Attempts struct {
	clock clock.PassiveClock

	mu      sync.Mutex
	began   time.Time
	entries map[types.UID]*attempt
}

type attempt struct {
	namespace, name string
	// sent is when this process sent an enrolment that got no definitive
	// answer yet; zero when none.
	sent time.Time
	// settled: no enrolment for the request is in flight or unanswered,
	// whoever sent it (EJBCA answered that it did not issue, or a search
	// after the settle time found nothing).
	settled bool
}

// NewAttempts returns an empty memory; Begin starts it.
func NewAttempts(c clock.PassiveClock) *Attempts {
	return &Attempts{clock: c, entries: map[types.UID]*attempt{}}
}

// Begin marks the moment this process began signing. The manager runs it as
// a leader election runnable, so it is the time of election; until it runs,
// the first question asked begins the memory, which only errs towards
// searching.
func (a *Attempts) Begin() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if now := a.clock.Now(); a.began.IsZero() || now.After(a.began) {
		a.began = now
	}
}

// Start is Begin as a manager runnable.
func (a *Attempts) Start(ctx context.Context) error {
	a.Begin()
	<-ctx.Done()
	return nil
}

// Unanswered tells whether an enrolment for the request may have issued
// without the answer reaching this process: one this process sent, or one a
// predecessor may have sent. at is when the attempt began (for a
// predecessor's: when this process began, the latest it can have sent), and
// searchFrom when EJBCA may have begun issuing for it.
func (a *Attempts) Unanswered(sr *SigningRequest) (at, searchFrom time.Time, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.began.IsZero() {
		a.began = a.clock.Now()
	}
	if e := a.entries[sr.UID]; e != nil {
		if e.settled {
			return time.Time{}, time.Time{}, false
		}
		if !e.sent.IsZero() {
			return e.sent, e.sent, true
		}
	}
	if sr.Created.Before(a.began.Add(startSkewAllowance)) {
		return a.began, sr.Created, true
	}
	return time.Time{}, time.Time{}, false
}

// Sent records, before EJBCA is called, that an enrolment is on its way.
func (a *Attempts) Sent(sr *SigningRequest, at time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.entries[sr.UID] = &attempt{namespace: sr.Namespace, name: sr.Name, sent: at}
}

// Settled records that nothing sent for the request can still issue: EJBCA
// answered that it did not, or a search after the settle time found
// nothing. The next enrolment needs no search.
func (a *Attempts) Settled(sr *SigningRequest) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.entries[sr.UID] = &attempt{namespace: sr.Namespace, name: sr.Name, settled: true}
}

// Done forgets a request whose final status is written.
func (a *Attempts) Done(uid types.UID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.entries, uid)
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
