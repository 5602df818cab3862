package issuers

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/event"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/controllers/signing"
)

// IssuerWakes is the issuer controllers' inbox: the one way anything else
// speaks of an issuer. The request side says a request could not reach EJBCA
// through it (re-check it, within the usual spacing) or that EJBCA refused
// its credentials or configuration (mark it not Ready with that); the
// reachability probe says EJBCA answers again (re-check it now). Only the
// issuer controllers act on these, and only they write issuers.
//
// A request that got no answer from EJBCA also makes its issuer suspected:
// until the issuer's re-check, every request through it waits for that
// check instead of calling EJBCA on its own backoff, so an outage costs
// about one attempt per request plus the issuer's checks and probes, not a
// retry per request every few seconds. The check ends the suspicion: found
// Unreachable, the issuer's status holds the requests; found Ready, the
// waiting requests are woken here (the status did not change, so its watch
// would not).
type IssuerWakes struct {
	byKind map[string]*IssuerReconciler

	mu        sync.Mutex
	suspected map[issuerKey]bool
	// requests are the request controllers' inboxes: an issuer sent there
	// wakes the requests that name it.
	requests []chan event.GenericEvent
}

// NewIssuerWakes is an inbox with no issuer controller yet; Setup registers
// one per kind before the manager starts.
func NewIssuerWakes() *IssuerWakes {
	return &IssuerWakes{byKind: map[string]*IssuerReconciler{}, suspected: map[issuerKey]bool{}}
}

func (w *IssuerWakes) Register(kind string, r *IssuerReconciler) {
	w.byKind[kind] = r
	r.wakes = w
}

// RequestInbox is a channel on which the issuers whose waiting requests
// should be woken arrive; one per request controller, made before the
// manager starts.
func (w *IssuerWakes) RequestInbox() <-chan event.GenericEvent {
	ch := make(chan event.GenericEvent, 1024)
	w.requests = append(w.requests, ch)
	return ch
}

// Doubt: EJBCA refused a request through the issuer (403), or a node of
// several was set aside: the issuer's check, at its usual spacing, tells
// whether the issuer is at fault. Unlike Suspect, requests through the
// issuer are not held: one request's refusal must not stall the others.
func (w *IssuerWakes) Doubt(kind string, key types.NamespacedName) {
	if r := w.byKind[kind]; r != nil {
		r.wakeUp(key, wakeSuspect)
	}
}

// Suspect: a request got no answer from EJBCA through the issuer. Requests
// through it wait for its re-check.
func (w *IssuerWakes) Suspect(kind string, key types.NamespacedName) {
	w.mu.Lock()
	w.suspected[issuerKey{kind, key}] = true
	w.mu.Unlock()
	if r := w.byKind[kind]; r != nil {
		r.wakeUp(key, wakeSuspect)
	}
}

// Suspected reports whether a request through the issuer got no answer
// from EJBCA since the issuer's last check.
func (w *IssuerWakes) Suspected(kind string, key types.NamespacedName) bool {
	if w == nil {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.suspected[issuerKey{kind, key}]
}

// checked ends a suspicion with the issuer's check: found Ready, the
// requests that waited for it are woken.
func (w *IssuerWakes) checked(kind string, key types.NamespacedName, ready bool) {
	w.mu.Lock()
	was := w.suspected[issuerKey{kind, key}]
	delete(w.suspected, issuerKey{kind, key})
	w.mu.Unlock()
	if !was || !ready {
		return
	}
	iss, ok := v1alpha1.NewIssuer(kind)
	if !ok {
		return
	}
	iss.SetNamespace(key.Namespace)
	iss.SetName(key.Name)
	for _, ch := range w.requests {
		select {
		case ch <- event.GenericEvent{Object: iss}:
		default:
			// Full (a burst of checks ending suspicions): deliver it as
			// soon as there is room rather than drop it, so the requests
			// that wait for this check are woken by it and not only by
			// their fallback requeue. Checks of one issuer are at least a
			// minute apart, so these are few.
			go func(ch chan<- event.GenericEvent, ev event.GenericEvent) { ch <- ev }(ch, event.GenericEvent{Object: iss})
		}
	}
}

// forgetIssuer drops the suspicion of an issuer that is gone.
func (w *IssuerWakes) forgetIssuer(kind string, key types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.suspected, issuerKey{kind, key})
}

// Recheck: EJBCA answers again; check the issuer now.
func (w *IssuerWakes) Recheck(kind string, key types.NamespacedName) {
	if r := w.byKind[kind]; r != nil {
		r.wakeUp(key, wakeEJBCABack)
	}
}

// Report: a request found the issuer at fault.
func (w *IssuerWakes) Report(kind string, key types.NamespacedName, fault signing.IssuerFault) {
	if r := w.byKind[kind]; r != nil {
		r.report(key, fault)
	}
}

// Notice: a request got a certificate that differs from what it asked for
// because of the issuer's configuration; the issuer controller reports it
// on the issuer once per NoticeInterval with a count.
func (w *IssuerWakes) Notice(kind string, key types.NamespacedName, n signing.IssuerNotice) {
	if r := w.byKind[kind]; r != nil {
		r.notice(key, n)
	}
}
