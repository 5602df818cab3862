package controllers

import (
	"context"
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
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/controllers/revocation"
	"github.com/certctl-io/ejbca-issuer/controllers/signing"
	"github.com/certctl-io/ejbca-issuer/internal/reconcilelog"
)

// requestIssuerIndex indexes CertificateRequests by the issuer they name, so
// an issuer becoming Ready wakes exactly its waiting requests.
const requestIssuerIndex = "ejbca-issuer.certctl.io/issuer"

// CertificateRequestReconciler signs the CertificateRequests that name an
// EJBCAIssuer or EJBCAClusterIssuer, following cert-manager's contract.
type CertificateRequestReconciler struct {
	signing.RequestSigning
	// IssuanceKey seals the issuance record written with each certificate,
	// which the revocation controller verifies.
	IssuanceKey signing.IssuanceKey

	memory requestMemory
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
	return reconcileRequest(ctx, &r.RequestSigning, &r.memory, certificateRequests{r}, req.NamespacedName)
}

// certificateRequests is the CertificateRequest kind of the request
// reconciler: cert-manager's contract (signing.Decide) and its status,
// written by server-side apply.
type certificateRequests struct{ r *CertificateRequestReconciler }

func (certificateRequests) newRequest() *cmapi.CertificateRequest { return &cmapi.CertificateRequest{} }

func (certificateRequests) issuerOf(cr *cmapi.CertificateRequest) (kind, namespace, name string, ours bool) {
	return cr.Spec.IssuerRef.Kind, cr.Namespace, cr.Spec.IssuerRef.Name, signing.IsOurs(cr.Spec.IssuerRef)
}

func (certificateRequests) isFinal(cr *cmapi.CertificateRequest) bool { return signing.IsFinal(cr) }

func (k certificateRequests) signingRequest(cr *cmapi.CertificateRequest) *signing.SigningRequest {
	return signing.CertificateRequestSigning(k.r.Client, cr)
}

func (certificateRequests) forget(types.NamespacedName) {}

func (certificateRequests) announce(_ *cmapi.CertificateRequest, d decision) *signing.Event {
	return d.event
}

func (certificateRequests) decide(_ context.Context, cr *cmapi.CertificateRequest, a *attempt) (decision, error) {
	d := signing.Decide(signing.Input{Request: cr, Issuer: a.Issuer, Now: a.Now, RetryWindow: a.RetryWindow,
		ApprovalMaxWait: a.ApprovalMaxWait, Result: a.Result})
	return decision{
		action: d.Action, final: d.Status == cmmeta.ConditionTrue || d.Failed, issued: d.Status == cmmeta.ConditionTrue,
		certificate: d.Certificate, event: d.Event, warnings: d.Warnings, notices: d.Notices, issuerFault: d.IssuerFault,
		outcome: d.Outcome, approvalSince: d.ApprovalSince, callAfter: d.CallAfter, requeueAfter: d.RequeueAfter,
		logValues: []any{"status", d.Status, "reason", d.Reason, "message", d.Message, "requeueAfter", d.RequeueAfter},
		own:       d,
	}, nil
}

// write writes the request's status (only our fields, by server-side
// apply): the Ready condition and, once issued, the certificate with its
// sealed issuance record, in one write.
func (k certificateRequests) write(ctx context.Context, cr *cmapi.CertificateRequest, issuer v1alpha1.Issuer, dec decision, now time.Time) (bool, error) {
	r, d := k.r, dec.own.(signing.Decision)
	ltt := metav1.NewTime(now)
	if c := signing.ReadyCondition(cr); c != nil && c.Status == d.Status && c.LastTransitionTime != nil {
		ltt = *c.LastTransitionTime
	}
	cond := cmac.CertificateRequestCondition().WithType(cmapi.CertificateRequestConditionReady).
		WithStatus(d.Status).WithReason(d.Reason).WithMessage(d.Message).WithLastTransitionTime(ltt)
	status := cmac.CertificateRequestStatus().WithConditions(cond)
	if len(d.Certificate) > 0 {
		// Set, not WithCertificate(d.Certificate...), which appends the PEM
		// byte by byte into a growing slice.
		status.Certificate = d.Certificate
		leaf := d.Leaf
		if leaf == nil {
			leaf = signing.LeafOf(d.Certificate)
		}
		if leaf == nil {
			return false, fmt.Errorf("the certificate EJBCA issued does not parse as PEM")
		}
		// In the same write as the certificate: no request ever carries
		// our certificate without its record.
		status.WithConditions(r.IssuanceKey.IssuanceRecordCondition(cr.UID, leaf, metav1.NewTime(now)))
		if err := revocation.HoldForRevocation(ctx, r.Client, cr, issuer); err != nil {
			if apierrors.IsNotFound(err) {
				return true, nil
			}
			return false, err
		}
		if c := revocation.RevokeAnnotationAtIssuance(cr, metav1.NewTime(now)); c != nil {
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
		return false, nil
	}
	if err := r.Client.Status().Apply(ctx,
		// The resourceVersion makes a write decided from a stale copy fail
		// with a conflict; the request is then decided again from a fresh one.
		cmac.CertificateRequest(cr.Name, cr.Namespace).WithResourceVersion(cr.ResourceVersion).WithStatus(status),
		client.FieldOwner(v1alpha1.FieldOwner), client.ForceOwnership); err != nil {
		if apierrors.IsNotFound(err) && len(d.Certificate) > 0 {
			return true, nil
		}
		return false, fmt.Errorf("writing the CertificateRequest status: %w", err)
	}
	return false, nil
}

// unchanged reports a Pending decision identical to the current condition.
func unchanged(cr *cmapi.CertificateRequest, d signing.Decision) bool {
	c := signing.ReadyCondition(cr)
	return c != nil && !d.Failed && len(d.Certificate) == 0 &&
		c.Status == d.Status && c.Reason == d.Reason && c.Message == d.Message
}

// SetupWithManager watches CertificateRequests (only the events that can
// change what we do for them, requestEvents) and the issuers, waking a
// request when its issuer changes.
func (r *CertificateRequestReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &cmapi.CertificateRequest{}, requestIssuerIndex,
		func(o client.Object) []string {
			cr, ok := o.(*cmapi.CertificateRequest) // a FinishedRequest is final
			if !ok || !signing.IsOurs(cr.Spec.IssuerRef) || signing.IsFinal(cr) {
				// Only unfinished requests are woken by their issuer.
				return nil
			}
			return []string{issuerIndexKey(cr.Spec.IssuerRef.Kind, cr.Namespace, cr.Spec.IssuerRef.Name)}
		}); err != nil {
		return err
	}
	ours := predicate.NewPredicateFuncs(func(o client.Object) bool {
		ref, ok := signing.CachedIssuerRef(o)
		return ok && signing.IsOurs(ref)
	})
	b := ctrl.NewControllerManagedBy(mgr).
		Named("certificaterequest").
		For(&cmapi.CertificateRequest{}, builder.WithPredicates(ours, r.requestEvents()))
	return wakeOnIssuers(b, r.Issuers, r.requestsFor).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles, LogConstructor: reconcilelog.For(mgr.GetLogger(), "certificaterequest")}).
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
			if signing.IsFinal(&list.Items[i]) || !signing.ApproverDecided(&list.Items[i]) {
				// Unapproved: its approval wakes it, not its issuer.
				continue
			}
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: list.Items[i].Namespace, Name: list.Items[i].Name}})
		}
		return out
	}
}
