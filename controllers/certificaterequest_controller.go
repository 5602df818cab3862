package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	cmac "github.com/cert-manager/cert-manager/pkg/client/applyconfigurations/certmanager/v1"
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
	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
	"github.com/certctl-io/ejbca-issuer/internal/metrics"
)

// IssuerFault is an issuer's fault that a request found: EJBCA refused the
// issuer's credentials (Unauthorized) or its CA or profiles (ProfileNotFound).
type IssuerFault struct {
	Reason, Message string
}

// FieldOwner is the field manager of every write the controllers make.
const FieldOwner = "ejbca-issuer"

// requestIssuerIndex indexes CertificateRequests by the issuer they name, so
// an issuer becoming Ready wakes exactly its waiting requests.
const requestIssuerIndex = "ejbca-issuer.certctl.io/issuer"

// notLeaderRequeue is how soon a request is looked at again by a process
// that found it no longer leads (if it does again by then).
const notLeaderRequeue = 5 * time.Second

// finishedMemory is how long a request finished by this process is skipped
// without a look, covering a cache that has not yet seen the final status.
const finishedMemory = 10 * time.Minute

// CertificateRequestReconciler signs the CertificateRequests that name an
// EJBCAIssuer or EJBCAClusterIssuer, following cert-manager's contract.
type CertificateRequestReconciler struct {
	RequestSigning
	// IssuanceKey seals the issuance record written with each certificate,
	// which the revocation controller verifies.
	IssuanceKey IssuanceKey

	finished  finishedRequests
	approvals pendingApprovals
}

// +kubebuilder:rbac:groups=cert-manager.io,resources=certificaterequests,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=cert-manager.io,resources=certificaterequests/status,verbs=get;patch;update
// +kubebuilder:rbac:groups=ejbca-issuer.certctl.io,resources=ejbcaissuers;ejbcaclusterissuers,verbs=get;list;watch
// +kubebuilder:rbac:groups=ejbca-issuer.certctl.io,resources=ejbcaissuers/status;ejbcaclusterissuers/status,verbs=get;patch;update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile decides a request's status, asking EJBCA when the decision needs it.
func (r *CertificateRequestReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := logf.FromContext(ctx)
	cr := &cmapi.CertificateRequest{}
	if err := r.Client.Get(ctx, req.NamespacedName, cr); err != nil {
		if apierrors.IsNotFound(err) {
			r.approvals.set(req.NamespacedName, false, time.Time{})
			r.Signer.Attempts.Deleted(req.Namespace, req.Name)
			r.Gate.Forget(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if r.finished.recent(cr.UID, r.Clock.Now()) {
		return ctrl.Result{}, nil
	}
	if !IsOurs(cr.Spec.IssuerRef) || isFinal(cr) {
		// Final states never revert: nothing can be sent for it any more.
		// (Made final by another writer, e.g. an approver, while it waited
		// for EJBCA's approval: it waits no more.)
		r.approvals.set(req.NamespacedName, false, time.Time{})
		r.Signer.Attempts.Done(cr.UID)
		r.Gate.Forget(req.NamespacedName)
		return ctrl.Result{}, nil
	}
	if !r.Lease.Holds() {
		// Deposed (frozen past the lease, say): the new leader acts.
		return ctrl.Result{RequeueAfter: notLeaderRequeue}, nil
	}
	if !isComplete(cr) {
		// The cache reduces only foreign and final requests, handled above;
		// signing never works from a reduced copy.
		return ctrl.Result{}, fmt.Errorf("the cache holds CertificateRequest %s as %q, not whole", req.NamespacedName, ShapeOf(cr))
	}

	issuer, state, err := loadIssuer(ctx, r.Client, cr.Spec.IssuerRef.Kind, cr.Namespace, cr.Spec.IssuerRef.Name)
	if err != nil {
		return ctrl.Result{}, err
	}
	in := Input{Request: cr, Issuer: state, Now: r.Clock.Now(), RetryWindow: r.RetryWindow}
	if issuer != nil {
		in.ApprovalMaxWait = issuer.GetSpec().ApprovalMaxWait()
	}
	d := Decide(in)
	if d.Action == ActionIgnore {
		return ctrl.Result{}, nil
	}
	if d.Action == ActionSign {
		if wait := r.Gate.Wait(req.NamespacedName, cr.UID, in.Now); wait > 0 {
			// Woken before the time its last answer set (by its issuer,
			// say): back to sleep, no call, no write.
			return ctrl.Result{RequeueAfter: wait}, nil
		}
		if res := signThrough(ctx, r.Clients, r.Signer, r.Issuers, issuer, &in.Issuer, certificateRequestSigning(r.Client, cr)); res != nil {
			if errors.Is(res.Err, ErrNotLeader) {
				return ctrl.Result{RequeueAfter: notLeaderRequeue}, nil
			}
			in.Result = res
			in.Now = r.Clock.Now()
		}
		d = Decide(in)
	}
	log.V(1).Info("decided", "status", d.Status, "reason", d.Reason, "message", d.Message, "requeueAfter", d.RequeueAfter)
	if !r.Lease.Holds() {
		// Deposed while deciding (frozen in the EJBCA call, say): the new
		// leader writes; a write from here could only be stale.
		return ctrl.Result{RequeueAfter: notLeaderRequeue}, nil
	}
	return r.apply(ctx, cr, issuer, d)
}

// apply writes a decision: the request's status (only our fields, by
// server-side apply), events and metrics; an issuer fault EJBCA's answer
// showed goes to the issuer controller through IssuerWakes (only it writes
// issuers).
func (r *CertificateRequestReconciler) apply(ctx context.Context, cr *cmapi.CertificateRequest, issuer v1alpha1.Issuer, d Decision) (ctrl.Result, error) {
	now := r.Clock.Now()
	ltt := metav1.NewTime(now)
	if c := readyCondition(cr); c != nil && c.Status == d.Status && c.LastTransitionTime != nil {
		ltt = *c.LastTransitionTime
	}
	cond := cmac.CertificateRequestCondition().WithType(cmapi.CertificateRequestConditionReady).
		WithStatus(d.Status).WithReason(d.Reason).WithMessage(d.Message).WithLastTransitionTime(ltt)
	status := cmac.CertificateRequestStatus().WithConditions(cond)
	if !r.Lease.Holds() {
		// Checked again right before the writes: a deposed leader's write
		// could only be stale.
		return ctrl.Result{RequeueAfter: notLeaderRequeue}, nil
	}
	if len(d.Certificate) > 0 {
		// Set, not WithCertificate(d.Certificate...), which appends the PEM
		// byte by byte into a growing slice.
		status.Certificate = d.Certificate
		leaf := leafOf(d.Certificate)
		if leaf == nil {
			return ctrl.Result{}, fmt.Errorf("the certificate EJBCA issued does not parse as PEM")
		}
		// In the same write as the certificate: no request ever carries
		// our certificate without its record.
		status.WithConditions(r.IssuanceKey.issuanceRecordCondition(cr.UID, leaf, metav1.NewTime(now)))
		if err := holdForRevocation(ctx, r.Client, cr, issuer); err != nil {
			if apierrors.IsNotFound(err) {
				return r.issuedForDeleted(ctx, cr, issuer, d)
			}
			return ctrl.Result{}, err
		}
		if c := revokeAnnotationAtIssuance(cr, metav1.NewTime(now)); c != nil {
			status.WithConditions(c)
		}
	}
	if len(d.CA) > 0 {
		status.CA = d.CA
	}
	if d.Failed {
		status.WithFailureTime(metav1.NewTime(now))
	}
	if unchanged(cr, d) {
		// Nothing to write: the same Pending message as before.
	} else if err := r.Client.Status().Apply(ctx,
		// The resourceVersion makes a write decided from a stale copy fail
		// with a conflict; the request is then decided again from a fresh one.
		cmac.CertificateRequest(cr.Name, cr.Namespace).WithResourceVersion(cr.ResourceVersion).WithStatus(status),
		client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		if apierrors.IsNotFound(err) && len(d.Certificate) > 0 {
			return r.issuedForDeleted(ctx, cr, issuer, d)
		}
		return ctrl.Result{}, fmt.Errorf("writing the CertificateRequest status: %w", err)
	}

	reportDecision(r.Recorder, r.Clients, r.Issuers, cr, issuer, now, requestReport{
		RequestKind: metrics.RequestKindCertificateRequest, IssuerKind: cr.Spec.IssuerRef.Kind,
		Event: d.Event, Warnings: d.Warnings, Notices: d.Notices, Outcome: d.Outcome, IssuerFault: d.IssuerFault,
		Issued: d.Status == cmmeta.ConditionTrue, Created: cr.CreationTimestamp.Time,
	})
	r.approvals.set(types.NamespacedName{Namespace: cr.Namespace, Name: cr.Name}, d.Outcome == "waiting_for_approval", d.ApprovalSince)
	if d.Status == cmmeta.ConditionTrue || d.Failed {
		// A request's enrolment Secret, if any, is garbage-collected with
		// the request: the manager never deletes Secrets.
		r.finished.remember(cr.UID, now)
		r.Signer.Attempts.Done(cr.UID)
		r.Gate.Forget(types.NamespacedName{Namespace: cr.Namespace, Name: cr.Name})
		return ctrl.Result{}, nil
	}
	if d.CallAfter > 0 {
		r.Gate.Hold(types.NamespacedName{Namespace: cr.Namespace, Name: cr.Name}, cr.UID, now.Add(d.CallAfter))
	}
	if d.RequeueAfter > 0 {
		return ctrl.Result{RequeueAfter: requeueNoSooner(d.RequeueAfter, r.Jitter)}, nil
	}
	return ctrl.Result{}, nil
}

// issuedForDeleted: EJBCA issued the request's certificate, but the request
// was deleted before its status could store it. The certificate is
// revoked or recorded (unclaimed), once: the request is done.
func (r *CertificateRequestReconciler) issuedForDeleted(ctx context.Context, cr *cmapi.CertificateRequest, issuer v1alpha1.Issuer, d Decision) (ctrl.Result, error) {
	r.unclaimed(ctx, cr, issuer, d.Certificate)
	r.approvals.set(types.NamespacedName{Namespace: cr.Namespace, Name: cr.Name}, false, time.Time{})
	r.finished.remember(cr.UID, r.Clock.Now())
	r.Signer.Attempts.Done(cr.UID)
	r.Gate.Forget(types.NamespacedName{Namespace: cr.Namespace, Name: cr.Name})
	return ctrl.Result{}, nil
}

// unchanged reports a Pending decision identical to the current condition.
func unchanged(cr *cmapi.CertificateRequest, d Decision) bool {
	c := readyCondition(cr)
	return c != nil && !d.Failed && len(d.Certificate) == 0 &&
		c.Status == d.Status && c.Reason == d.Reason && c.Message == d.Message
}

// SetupWithManager watches CertificateRequests (only changes of their
// approval, not our own writes) and the issuers, waking a request when its
// issuer changes.
func (r *CertificateRequestReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &cmapi.CertificateRequest{}, requestIssuerIndex,
		func(o client.Object) []string {
			cr := o.(*cmapi.CertificateRequest)
			if !IsOurs(cr.Spec.IssuerRef) {
				return nil
			}
			return []string{issuerIndexKey(cr.Spec.IssuerRef.Kind, cr.Namespace, cr.Spec.IssuerRef.Name)}
		}); err != nil {
		return err
	}
	ours := predicate.NewPredicateFuncs(func(o client.Object) bool {
		cr, ok := o.(*cmapi.CertificateRequest)
		return ok && IsOurs(cr.Spec.IssuerRef)
	})
	b := ctrl.NewControllerManagedBy(mgr).
		Named("certificaterequest").
		For(&cmapi.CertificateRequest{}, builder.WithPredicates(ours, approvalChanged()))
	return wakeOnIssuers(b, r.Issuers, r.requestsFor).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles, LogConstructor: reconcileLog(mgr.GetLogger(), "certificaterequest")}).
		Complete(r)
}

func issuerIndexKey(kind, namespace, name string) string {
	if kind == v1alpha1.ClusterIssuerKind {
		namespace = ""
	}
	return kind + "/" + namespace + "/" + name
}

// requestsFor maps an issuer to the requests that name it.
func (r *CertificateRequestReconciler) requestsFor(kind string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var list cmapi.CertificateRequestList
		// Read only: the cache's own copies, not a deep copy of every
		// request of the issuer.
		opts := []client.ListOption{client.MatchingFields{requestIssuerIndex: issuerIndexKey(kind, o.GetNamespace(), o.GetName())}, client.UnsafeDisableDeepCopy}
		if kind == v1alpha1.IssuerKind {
			opts = append(opts, client.InNamespace(o.GetNamespace()))
		}
		if err := r.Client.List(ctx, &list, opts...); err != nil {
			logf.FromContext(ctx).Error(err, "listing the requests of an issuer", "issuer", o.GetName())
			return nil
		}
		out := make([]reconcile.Request, 0, len(list.Items))
		for i := range list.Items {
			if isFinal(&list.Items[i]) {
				continue
			}
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: list.Items[i].Namespace, Name: list.Items[i].Name}})
		}
		return out
	}
}

// approvalChanged passes creations and updates that change a condition other
// than our Ready condition (Approved, Denied). Our own status writes and
// annotation patches do not trigger a reconcile: a Pending request is woken by
// its requeue or its issuer, never by its own write.
func approvalChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := e.ObjectOld.(*cmapi.CertificateRequest)
			n, ok2 := e.ObjectNew.(*cmapi.CertificateRequest)
			if !ok1 || !ok2 {
				return true
			}
			return othersConditions(o) != othersConditions(n)
		},
	}
}

func othersConditions(cr *cmapi.CertificateRequest) string {
	s := ""
	for _, c := range cr.Status.Conditions {
		if c.Type != cmapi.CertificateRequestConditionReady {
			s += string(c.Type) + "=" + string(c.Status) + ";"
		}
	}
	return s
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

// noResponse reports an EJBCA call that got no HTTP answer at all (refused,
// reset, timed out): EJBCA may be down, which the issuer's check confirms.
// The token endpoint is the identity provider's, not EJBCA's.
func noResponse(err error) bool {
	return ejbca.NoAnswer(err) && !ejbca.IsTokenEndpoint(err)
}
