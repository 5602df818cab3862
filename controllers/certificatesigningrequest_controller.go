package controllers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/metrics"
)

// csrSignerIndex indexes CertificateSigningRequests by their signer name
// (ours only), so an issuer becoming Ready wakes exactly its waiting CSRs.
const csrSignerIndex = "ejbca-issuer.certctl.io/signer"

// CertificateSigningRequestReconciler signs the Kubernetes
// CertificateSigningRequests whose signer name is one of our issuers',
// through the same Signer as CertificateRequests.
type CertificateSigningRequestReconciler struct {
	RequestSigning

	finished  finishedRequests
	approvals pendingApprovals
	// announced is the last waiting message recorded as an event per CSR,
	// so a request polled for approval does not repeat it at every poll.
	announced sync.Map // CSR name -> string
}

// +kubebuilder:rbac:groups=certificates.k8s.io,resources=certificatesigningrequests,verbs=get;list;watch
// +kubebuilder:rbac:groups=certificates.k8s.io,resources=certificatesigningrequests/status,verbs=update;patch
// +kubebuilder:rbac:groups=certificates.k8s.io,resources=signers,verbs=sign,resourceNames=ejbcaclusterissuers.ejbca-issuer.certctl.io/*;ejbcaissuers.ejbca-issuer.certctl.io/*
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// Reconcile decides a CSR, asking the API server (the requester's right to
// a namespaced issuer) and EJBCA when the decision needs them.
func (r *CertificateSigningRequestReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	csr := &certificatesv1.CertificateSigningRequest{}
	if err := r.Client.Get(ctx, req.NamespacedName, csr); err != nil {
		if apierrors.IsNotFound(err) {
			r.approvals.set(req.Name, false, time.Time{})
			r.announced.Delete(req.Name)
			r.Signer.Attempts.Deleted("", req.Name)
			r.Gate.Forget(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if r.finished.recent(csr.UID, r.Clock.Now()) {
		return ctrl.Result{}, nil
	}
	kind, ns, name, ours := SignerIssuer(csr.Spec.SignerName)
	if !ours || csrIsFinal(csr) {
		// Final states never revert: nothing can be sent for it any more.
		// (Made final by another writer while it waited for EJBCA's
		// approval: it waits no more.)
		r.approvals.set(req.Name, false, time.Time{})
		r.announced.Delete(req.Name)
		r.Signer.Attempts.Done(csr.UID)
		r.Gate.Forget(req.NamespacedName)
		return ctrl.Result{}, nil
	}
	if !r.Lease.Holds() {
		return ctrl.Result{RequeueAfter: notLeaderRequeue}, nil
	}
	if !isComplete(csr) {
		// The cache reduces only foreign and final CSRs, handled above;
		// signing never works from a reduced copy.
		return ctrl.Result{}, fmt.Errorf("the cache holds CertificateSigningRequest %s as %q, not whole", req.Name, ShapeOf(csr))
	}
	issuer, state, err := loadIssuer(ctx, r.Client, kind, ns, name)
	if err != nil {
		return ctrl.Result{}, err
	}
	in := CSRInput{CSR: csr, Issuer: state, Now: r.Clock.Now(), RetryWindow: r.RetryWindow}
	if issuer != nil {
		in.ApprovalMaxWait = issuer.GetSpec().ApprovalMaxWait()
	}
	d := DecideCSR(in)
	if d.Action == ActionCheckReference {
		allowed, err := r.mayReference(ctx, csr, ns)
		if err != nil {
			return ctrl.Result{}, err
		}
		in.ReferenceAllowed = &allowed
		d = DecideCSR(in)
	}
	if d.Action == ActionIgnore {
		return ctrl.Result{}, nil
	}
	if d.Action == ActionSign {
		if wait := r.Gate.Wait(req.NamespacedName, csr.UID, in.Now); wait > 0 {
			return ctrl.Result{RequeueAfter: wait}, nil
		}
		sr := csrSigning(r.Client, csr, r.ClusterResourceNamespace, r.Clock)
		if res := signThrough(ctx, r.Clients, r.Signer, r.Issuers, issuer, &in.Issuer, sr); res != nil {
			if errors.Is(res.Err, ErrNotLeader) {
				return ctrl.Result{RequeueAfter: notLeaderRequeue}, nil
			}
			in.Result = res
			in.Now = r.Clock.Now()
		}
		d = DecideCSR(in)
	}
	logf.FromContext(ctx).V(1).Info("decided", "failed", d.Failed, "reason", d.Reason, "message", d.Message, "requeueAfter", d.RequeueAfter)
	if !r.Lease.Holds() {
		return ctrl.Result{RequeueAfter: notLeaderRequeue}, nil
	}
	return r.apply(ctx, csr, issuer, d)
}

// mayReference runs cert-manager's rule for namespaced issuers in CSR mode:
// the requester needs the verb reference on signers (certificates.k8s.io)
// in the issuer's namespace, named as the CSR's signer or with the
// wildcard ejbcaissuers.ejbca-issuer.certctl.io/* (as Kubernetes does
// for approve and sign).
func (r *CertificateSigningRequestReconciler) mayReference(ctx context.Context, csr *certificatesv1.CertificateSigningRequest, namespace string) (bool, error) {
	extra := make(map[string]authorizationv1.ExtraValue, len(csr.Spec.Extra))
	for k, v := range csr.Spec.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	for _, name := range []string{csr.Spec.SignerName, IssuerSignerPrefix + "*"} {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: csr.Spec.Username, Groups: csr.Spec.Groups, UID: csr.Spec.UID, Extra: extra,
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Group: certificatesv1.GroupName, Resource: "signers", Verb: "reference", Namespace: namespace, Name: name,
			},
		}}
		if err := r.Client.Create(ctx, sar); err != nil {
			return false, fmt.Errorf("asking whether the requester may reference %s: %w", csr.Spec.SignerName, err)
		}
		if sar.Status.Allowed {
			return true, nil
		}
	}
	return false, nil
}

// apply writes a decision: status.certificate or the Failed condition
// (through the status subresource, conditional on the CSR's
// resourceVersion), events and metrics.
func (r *CertificateSigningRequestReconciler) apply(ctx context.Context, csr *certificatesv1.CertificateSigningRequest, issuer v1alpha1.Issuer, d CSRDecision) (ctrl.Result, error) {
	now := r.Clock.Now()
	final := d.Failed || len(d.Certificate) > 0
	if !r.Lease.Holds() {
		// Checked again right before the write: a deposed leader's write
		// could only be stale.
		return ctrl.Result{RequeueAfter: notLeaderRequeue}, nil
	}
	if final {
		updated := csr.DeepCopy()
		if d.Failed {
			setCSRCondition(updated, certificatesv1.CertificateSigningRequestCondition{
				Type: certificatesv1.CertificateFailed, Status: corev1.ConditionTrue, Reason: d.Reason, Message: d.Message,
			}, metav1.NewTime(now))
		} else {
			updated.Status.Certificate = d.Certificate
		}
		if err := r.Client.Status().Update(ctx, updated); err != nil {
			if apierrors.IsNotFound(err) && len(d.Certificate) > 0 {
				// Deleted while EJBCA issued: revoked or recorded, once.
				r.unclaimed(ctx, csr, issuer, d.Certificate)
				r.approvals.set(csr.Name, false, time.Time{})
				r.announced.Delete(csr.Name)
				r.finished.remember(csr.UID, now)
				r.Signer.Attempts.Done(csr.UID)
				r.Gate.Forget(types.NamespacedName{Name: csr.Name})
				return ctrl.Result{}, nil
			}
			return ctrl.Result{}, fmt.Errorf("writing the CertificateSigningRequest status: %w", err)
		}
	}
	ev := d.Event
	if !final && ev != nil {
		if last, ok := r.announced.Load(csr.Name); ok && last == ev.Message {
			ev = nil
		} else {
			r.announced.Store(csr.Name, ev.Message)
		}
	}
	kind, _, _, _ := SignerIssuer(csr.Spec.SignerName)
	reportDecision(r.Recorder, r.Clients, r.Issuers, csr, issuer, now, requestReport{
		RequestKind: metrics.RequestKindCertificateSigningRequest, IssuerKind: kind,
		Event: ev, Warnings: d.Warnings, Notices: d.Notices, Outcome: d.Outcome, IssuerFault: d.IssuerFault,
		Issued: len(d.Certificate) > 0, Created: csr.CreationTimestamp.Time,
	})
	r.approvals.set(csr.Name, d.Outcome == "waiting_for_approval", d.ApprovalSince)
	if final {
		r.announced.Delete(csr.Name)
		r.finished.remember(csr.UID, now)
		r.Signer.Attempts.Done(csr.UID)
		r.Gate.Forget(types.NamespacedName{Name: csr.Name})
		return ctrl.Result{}, nil
	}
	if d.CallAfter > 0 {
		r.Gate.Hold(types.NamespacedName{Name: csr.Name}, csr.UID, now.Add(d.CallAfter))
	}
	if d.RequeueAfter > 0 {
		return ctrl.Result{RequeueAfter: requeueNoSooner(d.RequeueAfter, r.Jitter)}, nil
	}
	return ctrl.Result{}, nil
}

// SetupWithManager watches the CSRs of our signers (creations and changes
// of their approval, not our own writes) and the issuers, waking a CSR when
// its issuer changes.
func (r *CertificateSigningRequestReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &certificatesv1.CertificateSigningRequest{}, csrSignerIndex,
		func(o client.Object) []string {
			csr := o.(*certificatesv1.CertificateSigningRequest)
			if !isOurSigner(csr.Spec.SignerName) || csrIsFinal(csr) {
				// Only unfinished CSRs are woken by their issuer.
				return nil
			}
			return []string{csr.Spec.SignerName}
		}); err != nil {
		return err
	}
	ours := predicate.NewPredicateFuncs(func(o client.Object) bool {
		csr, ok := o.(*certificatesv1.CertificateSigningRequest)
		return ok && isOurSigner(csr.Spec.SignerName)
	})
	b := ctrl.NewControllerManagedBy(mgr).
		Named("certificatesigningrequest").
		For(&certificatesv1.CertificateSigningRequest{}, builder.WithPredicates(ours, csrApprovalChanged()))
	return wakeOnIssuers(b, r.Issuers, r.csrsFor).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles, LogConstructor: reconcileLog(mgr.GetLogger(), "certificatesigningrequest")}).
		Complete(r)
}

// csrsFor maps an issuer to the unfinished CSRs that name its signer.
func (r *CertificateSigningRequestReconciler) csrsFor(kind string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var list certificatesv1.CertificateSigningRequestList
		signer := IssuerSignerName(kind, o.GetNamespace(), o.GetName())
		if err := r.Client.List(ctx, &list, client.MatchingFields{csrSignerIndex: signer}, client.UnsafeDisableDeepCopy); err != nil {
			logf.FromContext(ctx).Error(err, "listing the CertificateSigningRequests of an issuer", "signer", signer)
			return nil
		}
		var out []reconcile.Request
		for i := range list.Items {
			if !csrIsFinal(&list.Items[i]) {
				out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: list.Items[i].Name}})
			}
		}
		return out
	}
}

// csrApprovalChanged passes creations and updates that change a condition
// other than our records (Approved, Denied, Failed).
func csrApprovalChanged() predicate.Predicate {
	return predicate.Funcs{
		// A CSR final when first seen needs no reconcile (approvalChanged).
		CreateFunc: func(e event.CreateEvent) bool {
			csr, ok := e.Object.(*certificatesv1.CertificateSigningRequest)
			return !ok || !csrIsFinal(csr)
		},
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := e.ObjectOld.(*certificatesv1.CertificateSigningRequest)
			n, ok2 := e.ObjectNew.(*certificatesv1.CertificateSigningRequest)
			return !ok1 || !ok2 || othersCSRConditions(o) != othersCSRConditions(n)
		},
	}
}

func othersCSRConditions(csr *certificatesv1.CertificateSigningRequest) string {
	s := ""
	for _, c := range csr.Status.Conditions {
		if c.Type != CSRConditionEnrolment {
			s += string(c.Type) + "=" + string(c.Status) + ";"
		}
	}
	return s
}
