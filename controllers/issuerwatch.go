package controllers

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/controllers/issuers"
	"github.com/certctl-io/ejbca-issuer/controllers/signing"
)

// wakeOnIssuers makes a change of an issuer's readiness, or the end of its
// suspicion (issuers.IssuerWakes), wake the requests waiting for it, as
// requestsOf(kind) finds them.
func wakeOnIssuers(b *builder.Builder, wakes signing.Issuers, requestsOf func(kind string) handler.MapFunc) *builder.Builder {
	if inbox, ok := wakes.(*issuers.IssuerWakes); ok && inbox != nil {
		b = b.WatchesRawSource(source.Channel(inbox.RequestInbox(), handler.EnqueueRequestsFromMapFunc(
			func(ctx context.Context, o client.Object) []reconcile.Request {
				iss, ok := o.(v1alpha1.Issuer)
				if !ok {
					return nil
				}
				return requestsOf(v1alpha1.KindOf(iss))(ctx, o)
			})))
	}
	return b.
		Watches(&v1alpha1.EJBCAIssuer{}, handler.EnqueueRequestsFromMapFunc(requestsOf(v1alpha1.IssuerKind)),
			builder.WithPredicates(issuerReadinessChanged())).
		Watches(&v1alpha1.EJBCAClusterIssuer{}, handler.EnqueueRequestsFromMapFunc(requestsOf(v1alpha1.ClusterIssuerKind)),
			builder.WithPredicates(issuerReadinessChanged()))
}

// issuerReadinessChanged passes issuer updates that change its Ready
// condition's status or reason, so waiting requests say the current reason.
func issuerReadinessChanged() predicate.Predicate {
	return predicate.Funcs{
		CreateFunc: func(event.CreateEvent) bool { return true },
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := e.ObjectOld.(v1alpha1.Issuer)
			n, ok2 := e.ObjectNew.(v1alpha1.Issuer)
			return !ok1 || !ok2 || v1alpha1.IsReady(o) != v1alpha1.IsReady(n) || readyReason(o) != readyReason(n)
		},
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

func readyReason(i v1alpha1.Issuer) string {
	if c := i.GetStatus().ReadyCondition(); c != nil {
		return c.Reason
	}
	return ""
}
