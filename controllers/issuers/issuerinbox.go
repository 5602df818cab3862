package issuers

import (
	"context"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// issuerInbox is an issuer controller's own event source, through which
// wakes, reported faults and notices queue a reconcile of the issuer. It
// never drops one: once the controller runs, a key goes straight into its
// work queue, which has no bound and holds a key once however often it is
// added (a burst of wakes for one issuer is one reconcile; why it was woken
// is kept beside, in the reconciler's wake and fault maps); before that it
// waits in a set keyed by issuer, which Start hands to the queue. Both grow
// with the issuers woken, never with the wakes. (issuer-lib's event source
// enqueues directly in the same way.)
type issuerInbox struct {
	mu      sync.Mutex
	queue   workqueue.TypedRateLimitingInterface[reconcile.Request]
	pending map[types.NamespacedName]struct{}
}

// add queues a reconcile of the issuer key.
func (b *issuerInbox) add(key types.NamespacedName) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.queue != nil {
		b.queue.Add(reconcile.Request{NamespacedName: key})
		return
	}
	if b.pending == nil {
		b.pending = map[types.NamespacedName]struct{}{}
	}
	b.pending[key] = struct{}{}
}

// Start implements source.Source: the controller hands over its queue,
// and every key added before goes into it.
func (b *issuerInbox) Start(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.queue = q
	for key := range b.pending {
		q.Add(reconcile.Request{NamespacedName: key})
	}
	b.pending = nil
	return nil
}

func (b *issuerInbox) String() string { return "issuer inbox" }
