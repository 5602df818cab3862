package controllers

import (
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/certctl-io/ejbca-issuer/controllers/signing"
)

// requestEvents passes the CertificateRequest events that can change what
// the reconciler does for a request (createMatters, updateMatters), and
// every deletion (what is held for the request is forgotten). A request
// waiting on its issuer or on EJBCA is woken by its issuer or its requeue,
// never by its own write.
func (r *CertificateRequestReconciler) requestEvents() predicate.Predicate {
	finishedByUs := func(uid types.UID) bool { return r.memory.finished.Recent(uid, r.Clock.Now()) }
	return predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool {
			if _, final := e.Object.(*signing.FinishedRequest); final {
				return false // as createMatters says of a final request
			}
			cr, ok := e.Object.(*cmapi.CertificateRequest)
			return !ok || createMatters(cr)
		},
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := signing.CachedRequest(e.ObjectOld)
			n, ok2 := signing.CachedRequest(e.ObjectNew)
			return !ok1 || !ok2 || updateMatters(o, n, finishedByUs)
		},
	}
}

// createMatters: a request first seen (created, or every request at start)
// needs a reconcile only when it is unfinished and an approver has decided
// it. cert-manager creates requests undecided and approves them by an
// update, which updateMatters passes; until then the decision is to wait
// (signing.Decide), whatever else the request says.
func createMatters(cr *cmapi.CertificateRequest) bool {
	return !signing.IsFinal(cr) && signing.ApproverDecided(cr)
}

// updateMatters: an update needs a reconcile when it changes the approver's
// decision (Approved, Denied) of an unfinished request, or when it makes
// the request final and the final write was not ours (finishedByUs: the
// reconciler finished it moments ago and already forgot what it held), so
// a request made final by another writer while it waited for EJBCA stops
// waiting at once. Everything else cannot change the decision: our own
// status writes (Ready, the issuance record, the revocation conditions),
// other controllers' conditions, annotations and metadata, and any update
// of a request already final.
func updateMatters(old, cur *cmapi.CertificateRequest, finishedByUs func(types.UID) bool) bool {
	if signing.IsFinal(old) {
		return false
	}
	if signing.IsFinal(cur) {
		return !finishedByUs(cur.UID)
	}
	return signing.ApproverDecisionOf(old) != signing.ApproverDecisionOf(cur)
}
