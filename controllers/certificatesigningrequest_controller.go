package controllers

import (
	"context"
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
	"github.com/certctl-io/ejbca-issuer/controllers/signing"
	"github.com/certctl-io/ejbca-issuer/internal/reconcilelog"
)

// csrSignerIndex indexes CertificateSigningRequests by their signer name
// (ours only), so an issuer becoming Ready wakes exactly its waiting CSRs.
const csrSignerIndex = "ejbca-issuer.certctl.io/signer"

// CertificateSigningRequestReconciler signs the Kubernetes
// CertificateSigningRequests whose signer name is one of our issuers',
// through the same Signer as CertificateRequests.
type CertificateSigningRequestReconciler struct {
	signing.RequestSigning

	memory requestMemory
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
	return reconcileRequest(ctx, &r.RequestSigning, &r.memory, certificateSigningRequests{r}, req.NamespacedName)
}

// certificateSigningRequests is the CertificateSigningRequest kind of the
// request reconciler: the CSR contract (signing.DecideCSR, with the
// requester's SubjectAccessReview for a namespaced issuer) and its status,
// written through the status subresource.
type certificateSigningRequests struct {
	r *CertificateSigningRequestReconciler
}

func (certificateSigningRequests) newRequest() *certificatesv1.CertificateSigningRequest {
	return &certificatesv1.CertificateSigningRequest{}
}

func (certificateSigningRequests) issuerOf(csr *certificatesv1.CertificateSigningRequest) (kind, namespace, name string, ours bool) {
	return signing.SignerIssuer(csr.Spec.SignerName)
}

func (certificateSigningRequests) isFinal(csr *certificatesv1.CertificateSigningRequest) bool {
	return signing.CSRIsFinal(csr)
}

func (k certificateSigningRequests) signingRequest(csr *certificatesv1.CertificateSigningRequest) *signing.SigningRequest {
	return signing.CSRSigning(k.r.Client, csr, k.r.ClusterResourceNamespace, k.r.Clock)
}

func (k certificateSigningRequests) forget(key types.NamespacedName) { k.r.announced.Delete(key.Name) }

// announce records a waiting message once per CSR, so a request polled for
// approval does not repeat it at every poll.
func (k certificateSigningRequests) announce(csr *certificatesv1.CertificateSigningRequest, d decision) *signing.Event {
	ev := d.event
	if !d.final && ev != nil {
		if last, ok := k.r.announced.Load(csr.Name); ok && last == ev.Message {
			ev = nil
		} else {
			k.r.announced.Store(csr.Name, ev.Message)
		}
	}
	return ev
}

func (k certificateSigningRequests) decide(ctx context.Context, csr *certificatesv1.CertificateSigningRequest, a *attempt) (decision, error) {
	in := signing.CSRInput{CSR: csr, Issuer: a.Issuer, Now: a.Now, RetryWindow: a.RetryWindow, ApprovalMaxWait: a.ApprovalMaxWait,
		Result: a.Result, ReferenceAllowed: a.ReferenceAllowed}
	d := signing.DecideCSR(in)
	if d.Action == signing.ActionCheckReference {
		_, ns, _, _ := signing.SignerIssuer(csr.Spec.SignerName)
		allowed, err := k.r.mayReference(ctx, csr, ns)
		if err != nil {
			return decision{}, err
		}
		a.ReferenceAllowed = &allowed
		in.ReferenceAllowed = &allowed
		d = signing.DecideCSR(in)
	}
	return decision{
		action: d.Action, final: d.Failed || len(d.Certificate) > 0, issued: len(d.Certificate) > 0,
		certificate: d.Certificate, event: d.Event, warnings: d.Warnings, notices: d.Notices, issuerFault: d.IssuerFault,
		outcome: d.Outcome, approvalSince: d.ApprovalSince, callAfter: d.CallAfter, requeueAfter: d.RequeueAfter,
		logValues: []any{"failed", d.Failed, "reason", d.Reason, "message", d.Message, "requeueAfter", d.RequeueAfter},
		own:       d,
	}, nil
}

// write writes status.certificate or the Failed condition (through the
// status subresource, conditional on the CSR's resourceVersion); a CSR not
// yet final has nothing written.
func (k certificateSigningRequests) write(ctx context.Context, csr *certificatesv1.CertificateSigningRequest, _ v1alpha1.Issuer, dec decision, now time.Time) (bool, error) {
	d := dec.own.(signing.CSRDecision)
	if !dec.final {
		return false, nil
	}
	updated := csr.DeepCopy()
	if d.Failed {
		signing.SetCSRCondition(updated, certificatesv1.CertificateSigningRequestCondition{
			Type: certificatesv1.CertificateFailed, Status: corev1.ConditionTrue, Reason: d.Reason, Message: d.Message,
		}, metav1.NewTime(now))
	} else {
		updated.Status.Certificate = d.Certificate
	}
	if err := k.r.Client.Status().Update(ctx, updated); err != nil {
		if apierrors.IsNotFound(err) && len(d.Certificate) > 0 {
			// Deleted while EJBCA issued: revoked or recorded, once.
			return true, nil
		}
		return false, fmt.Errorf("writing the CertificateSigningRequest status: %w", err)
	}
	return false, nil
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
	for _, name := range []string{csr.Spec.SignerName, v1alpha1.IssuerSignerPrefix + "*"} {
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

// SetupWithManager watches the CSRs of our signers (creations and changes
// of their approval, not our own writes) and the issuers, waking a CSR when
// its issuer changes.
func (r *CertificateSigningRequestReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &certificatesv1.CertificateSigningRequest{}, csrSignerIndex,
		func(o client.Object) []string {
			csr := o.(*certificatesv1.CertificateSigningRequest)
			if !signing.IsOurSigner(csr.Spec.SignerName) || signing.CSRIsFinal(csr) {
				// Only unfinished CSRs are woken by their issuer.
				return nil
			}
			return []string{csr.Spec.SignerName}
		}); err != nil {
		return err
	}
	ours := predicate.NewPredicateFuncs(func(o client.Object) bool {
		csr, ok := o.(*certificatesv1.CertificateSigningRequest)
		return ok && signing.IsOurSigner(csr.Spec.SignerName)
	})
	b := ctrl.NewControllerManagedBy(mgr).
		Named("certificatesigningrequest").
		For(&certificatesv1.CertificateSigningRequest{}, builder.WithPredicates(ours, csrApprovalChanged()))
	return wakeOnIssuers(b, r.Issuers, r.csrsFor).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles, LogConstructor: reconcilelog.For(mgr.GetLogger(), "certificatesigningrequest")}).
		Complete(r)
}

// csrsFor maps an issuer to the unfinished CSRs that name its signer.
func (r *CertificateSigningRequestReconciler) csrsFor(kind string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var list certificatesv1.CertificateSigningRequestList
		signer := v1alpha1.IssuerSignerName(kind, o.GetNamespace(), o.GetName())
		if err := r.Client.List(ctx, &list, client.MatchingFields{csrSignerIndex: signer}, client.UnsafeDisableDeepCopy); err != nil {
			logf.FromContext(ctx).Error(err, "listing the CertificateSigningRequests of an issuer", "signer", signer)
			return nil
		}
		var out []reconcile.Request
		for i := range list.Items {
			if !signing.CSRIsFinal(&list.Items[i]) {
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
			return !ok || !signing.CSRIsFinal(csr)
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
		if c.Type != v1alpha1.CSRConditionEnrolment {
			s += string(c.Type) + "=" + string(c.Status) + ";"
		}
	}
	return s
}
