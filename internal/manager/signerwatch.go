package manager

import (
	"context"
	"slices"
	"sync"

	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/certctl-io/ejbca-issuer/controllers/signing"
)

// otherSigners keeps the CertificateSigningRequest informer free of CSRs of
// other signers. The API server cannot select CSRs by a signer-name prefix
// (each issuer has a signer name of its own), and a cluster holds CSRs of
// kubelets and other signers by the thousand: even as stubs they cost
// their decoded struct and a store entry each (about 700 bytes). Dropped
// between the watch and the informer, each costs only its UID here (about
// 80 bytes), which the inventory asks about (Has): a CSR it lists that the
// cache does not hold is another signer's, or new.
//
// A CSR's signer name is immutable (the API server refuses to change it),
// so a CSR is ours or another signer's for its whole life: dropping another
// signer's events, deletion included, never leaves the cache holding a CSR
// the API server no longer has, nor misses one of ours. Bookmarks and
// errors pass through, so list-by-watch (client-go's WatchListClient)
// still sees the end of its initial events.
type otherSigners struct {
	mu   sync.Mutex
	uids map[types.UID]struct{}
	// next is rebuilt by a list-by-watch and replaces uids at the end of
	// its initial events (CSRs deleted while no watch ran are not kept).
	next map[types.UID]struct{}
}

func newOtherSigners() *otherSigners {
	return &otherSigners{uids: map[types.UID]struct{}{}}
}

// Has: the informer left out the CSR with this UID as another signer's.
func (o *otherSigners) Has(uid types.UID) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, ok := o.uids[uid]
	return ok
}

// over is lw (controller-runtime's CSR ListWatch) without other signers'
// CSRs.
func (o *otherSigners) over(lw toolscache.ListerWatcher) toolscache.ListerWatcher {
	inner := toolscache.ToListerWatcherWithContext(lw)
	return &toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			out, err := inner.ListWithContext(ctx, opts)
			if list, ok := out.(*certificatesv1.CertificateSigningRequestList); ok && err == nil {
				others := map[types.UID]struct{}{}
				list.Items = slices.DeleteFunc(list.Items, func(csr certificatesv1.CertificateSigningRequest) bool {
					if signing.IsOurSigner(csr.Spec.SignerName) {
						return false
					}
					others[csr.UID] = struct{}{}
					return true
				})
				o.mu.Lock()
				o.uids, o.next = others, nil
				o.mu.Unlock()
			}
			return out, err
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			w, err := inner.WatchWithContext(ctx, opts)
			if err != nil {
				return nil, err
			}
			if opts.SendInitialEvents != nil && *opts.SendInitialEvents {
				o.mu.Lock()
				o.next = map[types.UID]struct{}{}
				o.mu.Unlock()
			}
			return watch.Filter(w, o.event), nil
		},
	}
}

// event keeps an event unless it is about a CSR of another signer, whose
// UID it notes instead.
func (o *otherSigners) event(e watch.Event) (watch.Event, bool) {
	csr, ok := e.Object.(*certificatesv1.CertificateSigningRequest)
	if !ok {
		return e, true // errors
	}
	switch e.Type {
	case watch.Added, watch.Modified, watch.Deleted:
		if signing.IsOurSigner(csr.Spec.SignerName) {
			return e, true
		}
		o.mu.Lock()
		defer o.mu.Unlock()
		if e.Type == watch.Deleted {
			delete(o.uids, csr.UID)
			delete(o.next, csr.UID)
		} else {
			o.uids[csr.UID] = struct{}{}
			if o.next != nil {
				o.next[csr.UID] = struct{}{}
			}
		}
		return e, false
	case watch.Bookmark:
		if csr.Annotations[metav1.InitialEventsAnnotationKey] == "true" {
			o.mu.Lock()
			if o.next != nil {
				o.uids, o.next = o.next, nil
			}
			o.mu.Unlock()
		}
	}
	return e, true
}
