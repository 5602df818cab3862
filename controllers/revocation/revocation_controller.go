package revocation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"sync"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	cmac "github.com/cert-manager/cert-manager/pkg/client/applyconfigurations/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/controllers/signing"
	"github.com/certctl-io/ejbca-issuer/internal/eventrecord"
	"github.com/certctl-io/ejbca-issuer/internal/issuerclients"
	"github.com/certctl-io/ejbca-issuer/internal/leadership"
	"github.com/certctl-io/ejbca-issuer/internal/metrics"
	"github.com/certctl-io/ejbca-issuer/internal/reconcilelog"
)

// RevocationFieldOwner is the field manager of the revocation controller's
// status writes, apart from v1alpha1.FieldOwner so that neither controller's apply
// removes the other's conditions.
const RevocationFieldOwner = "ejbca-issuer-revocation"

// DefaultRevocationAbandonAfter is how long a deleted request is held for a
// revocation EJBCA does not take.
const DefaultRevocationAbandonAfter = 24 * time.Hour

// requestOwnerIndex indexes CertificateRequests by a bucket of the name of
// the Certificate that controls them (ownerBucket), so a Certificate's
// change wakes its requests. Buckets rather than names: an index value
// costs client-go a set of its own (about 200 bytes, twice over as
// controller-runtime also indexes across namespaces), and most
// Certificates own one or two requests; a bucket's few other requests are
// filtered out by name (ownedRequests).
const requestOwnerIndex = "ejbca-issuer.certctl.io/certificate-bucket"

// ownerBuckets is how many buckets a namespace's requests are indexed in.
const ownerBuckets = 1024

// ownerBucket is the index value of the requests Certificate name controls.
func ownerBucket(name string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	return strconv.FormatUint(uint64(h.Sum32()%ownerBuckets), 36)
}

// ownedRequests lists the cached requests that the Certificate ns/name
// controls. They are copies: the cache holds final requests as
// signing.FinishedRequests, which only a copy makes CertificateRequests
// (a bucket holds a few dozen requests).
func ownedRequests(ctx context.Context, c client.Reader, ns, name string) ([]cmapi.CertificateRequest, error) {
	var list cmapi.CertificateRequestList
	if err := c.List(ctx, &list, client.InNamespace(ns), client.MatchingFields{requestOwnerIndex: ownerBucket(name)}); err != nil {
		return nil, err
	}
	owned := list.Items[:0]
	for i := range list.Items {
		if ref := signing.CertificateOwner(&list.Items[i]); ref != nil && ref.Name == name {
			owned = append(owned, list.Items[i])
		}
	}
	return owned, nil
}

// RevocationReconciler revokes, in EJBCA, the certificates of
// CertificateRequests that our issuers issued, as RevocationDecide says.
type RevocationReconciler struct {
	Client client.Client
	// Reader reads Secrets, which the manager caches as metadata only.
	Reader   client.Reader
	Clients  *issuerclients.Cache
	Recorder events.EventRecorder
	Clock    clock.PassiveClock
	// Lease says whether this process still leads; nil without leader
	// election. It is asked before every revoke call.
	Lease *leadership.Lease
	// AbandonAfter bounds how long a deleted request waits for EJBCA.
	AbandonAfter time.Duration
	// IssuanceKey verifies the issuance records the request controller
	// writes: only a certificate one names is revoked.
	IssuanceKey signing.IssuanceKey

	failures sync.Map // types.UID -> revocationFailures
	done     signing.FinishedRequests
}

type revocationFailures struct {
	n    int
	last time.Time
	err  string
}

// +kubebuilder:rbac:groups=cert-manager.io,resources=certificates,verbs=get;list;watch
// +kubebuilder:rbac:groups=cert-manager.io,resources=certificaterequests,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=cert-manager.io,resources=certificaterequests/finalizers,verbs=update
// +kubebuilder:rbac:groups=cert-manager.io,resources=certificaterequests/status,verbs=get;patch;update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get

// Reconcile decides and carries out the revocation of one request's
// certificate. A process found deposed right before a write looks again
// later.
func (r *RevocationReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	res, err := r.reconcile(ctx, req)
	if errors.Is(err, signing.ErrNotLeader) {
		return reconcile.Result{RequeueAfter: signing.NotLeaderRequeue}, nil
	}
	return res, err
}

func (r *RevocationReconciler) reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	cr := &cmapi.CertificateRequest{}
	if err := r.Client.Get(ctx, req.NamespacedName, cr); err != nil {
		if apierrors.IsNotFound(err) {
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err
	}
	if !signing.IsOurs(cr.Spec.IssuerRef) {
		return reconcile.Result{}, nil
	}
	in, issuer, crt, err := r.input(ctx, cr)
	if err != nil {
		return reconcile.Result{}, err
	}
	if r.done.Recent(cr.UID, r.Clock.Now()) && !revocationFinal(in.Recorded) {
		// Recorded by this process, not yet in the cache: never again.
		in.Recorded = &cmapi.CertificateRequestCondition{Type: v1alpha1.ConditionRevoked, Reason: v1alpha1.RevokedReasonAlready}
	}
	d := RevocationDecide(in)
	logf.FromContext(ctx).V(1).Info("revocation decided", "action", d.Action, "reason", d.Reason, "trigger", d.Trigger, "message", d.Message)
	kind := cr.Spec.IssuerRef.Kind
	if d.Note != nil {
		if err := r.note(ctx, cr, crt, kind, in.Annotation, d.Note); err != nil {
			return reconcile.Result{}, err
		}
	}
	switch d.Action {
	case RevocationWait:
		return reconcile.Result{RequeueAfter: max(d.At.Sub(r.Clock.Now()), time.Second)}, nil
	case RevocationRelease:
		if !revocationFinal(in.Recorded) {
			r.event(cr, crt, corev1.EventTypeNormal, "RevocationNotNeeded", "deleted without revocation: "+d.Message)
		}
		return reconcile.Result{}, r.release(ctx, cr)
	case RevocationAbandon:
		if err := r.record(ctx, cr, cmmeta.ConditionFalse, v1alpha1.RevokedReasonAbandoned, d.Message); err != nil {
			return reconcile.Result{}, err
		}
		r.event(cr, crt, corev1.EventTypeWarning, "RevocationAbandoned", d.Message)
		metrics.Revocations.WithLabelValues(kind, orUnknown(d.Reason), revocationOutcomeAbandoned).Inc()
		r.failures.Delete(cr.UID)
		return reconcile.Result{}, r.release(ctx, cr)
	case RevocationRevoke:
		return r.revoke(ctx, cr, crt, issuer, in, d)
	}
	return reconcile.Result{}, nil
}

// revoke calls EJBCA once and records what it answered.
func (r *RevocationReconciler) revoke(ctx context.Context, cr *cmapi.CertificateRequest, crt *cmapi.Certificate, issuer v1alpha1.Issuer,
	in RevocationInput, d RevocationDecision) (reconcile.Result, error) {
	if !r.Lease.Holds() {
		return reconcile.Result{RequeueAfter: signing.NotLeaderRequeue}, nil
	}
	kind := cr.Spec.IssuerRef.Kind
	cl, err := r.Clients.Client(ctx, issuer)
	var res revocationResult
	if err != nil {
		res = revocationResult{Retry: true, Outcome: revocationOutcomeFailed, Warning: true,
			Message: fmt.Sprintf("revoking serial %s: the issuer's credentials do not load: %v", in.Serial, err)}
	} else {
		if wait := cl.AdmitRevocation(); wait > 0 {
			// Held back like a request, not waiting in the bucket: a queue
			// of revocations would take every token ahead of other
			// tenants' requests.
			return reconcile.Result{RequeueAfter: max(wait, 10*time.Millisecond)}, nil
		}
		_, err = cl.Revoke(ctx, in.IssuerDN, in.Serial, d.Reason, time.Time{})
		res = RevocationResultOf(d.Reason, in.Serial, err)
	}
	metrics.Revocations.WithLabelValues(kind, d.Reason, res.Outcome).Inc()
	now := r.Clock.Now()
	if res.Retry {
		f := revocationFailures{}
		if v, ok := r.failures.Load(cr.UID); ok {
			f = v.(revocationFailures)
		}
		f.n, f.last, f.err = f.n+1, now, res.Message
		r.failures.Store(cr.UID, f)
		r.event(cr, crt, corev1.EventTypeWarning, "RevocationFailed", res.Message)
		after := RevocationBackoff(f.n)
		if in.Deleting && in.HasFinalizer && r.AbandonAfter > 0 {
			after = min(after, max(in.DeletedAt.Add(r.AbandonAfter).Sub(now), time.Second))
		}
		return reconcile.Result{RequeueAfter: after}, nil
	}
	r.failures.Delete(cr.UID)
	msg := res.Message + " (" + d.Message + ")"
	if err := r.record(ctx, cr, res.Status, res.Reason, msg); err != nil {
		// Not remembered as done: the next attempt gets EJBCA's 409 and
		// records AlreadyRevoked.
		return reconcile.Result{}, err
	}
	r.rememberDone(cr.UID, now)
	typ := corev1.EventTypeNormal
	if res.Warning {
		typ = corev1.EventTypeWarning
	}
	r.event(cr, crt, typ, "Revoked", msg)
	return reconcile.Result{}, r.release(ctx, cr)
}

// rememberDone notes a revocation this process recorded; whenever the
// record of those forgets old ones, failures of requests not seen for as
// long are forgotten too, so the maps stay small.
func (r *RevocationReconciler) rememberDone(uid types.UID, now time.Time) {
	if !r.done.Remember(uid, now) {
		return
	}
	r.failures.Range(func(k, v any) bool {
		if now.Sub(v.(revocationFailures).last) > signing.FinishedMemory+RevocationBackoff(1000) {
			r.failures.Delete(k)
		}
		return true
	})
}

// note records a refused annotation once: the condition and a Warning event
// when the condition does not already say the same.
func (r *RevocationReconciler) note(ctx context.Context, cr *cmapi.CertificateRequest, crt *cmapi.Certificate, kind, value string, n *RevocationNote) error {
	if c := revokedCondition(cr); c != nil && c.Reason == n.Reason && c.Message == n.Message {
		return nil
	}
	if err := r.record(ctx, cr, cmmeta.ConditionFalse, n.Reason, n.Message); err != nil {
		return err
	}
	reason := RevocationReasons[value]
	r.event(cr, crt, corev1.EventTypeWarning, "RevocationRefused", n.Message)
	metrics.Revocations.WithLabelValues(kind, orUnknown(reason), n.Outcome).Inc()
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return revocationMetricUnknownValue
	}
	return s
}

// record writes v1alpha1.ConditionRevoked with our own field manager.
func (r *RevocationReconciler) record(ctx context.Context, cr *cmapi.CertificateRequest, status cmmeta.ConditionStatus, reason, message string) error {
	if !r.Lease.Holds() {
		return signing.ErrNotLeader
	}
	cond := cmac.CertificateRequestCondition().WithType(v1alpha1.ConditionRevoked).WithStatus(status).
		WithReason(reason).WithMessage(message).WithLastTransitionTime(metav1.NewTime(r.Clock.Now()))
	if err := r.Client.Status().Apply(ctx, cmac.CertificateRequest(cr.Name, cr.Namespace).WithStatus(cmac.CertificateRequestStatus().WithConditions(cond)),
		client.FieldOwner(RevocationFieldOwner), client.ForceOwnership); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("recording the revocation: %w", err)
	}
	return nil
}

// release removes our finalizer, if the request carries it, by a JSON patch
// that tests the finalizer is still where this copy saw it and removes it:
// other finalizers are kept, and the status just written (which changed
// the resourceVersion of this copy) is no conflict.
func (r *RevocationReconciler) release(ctx context.Context, cr *cmapi.CertificateRequest) error {
	i := slices.Index(cr.Finalizers, v1alpha1.RevocationFinalizer)
	if i < 0 {
		return nil
	}
	if !r.Lease.Holds() {
		return signing.ErrNotLeader
	}
	patch, err := json.Marshal([]map[string]any{
		{"op": "test", "path": fmt.Sprintf("/metadata/finalizers/%d", i), "value": v1alpha1.RevocationFinalizer},
		{"op": "remove", "path": fmt.Sprintf("/metadata/finalizers/%d", i)},
	})
	if err != nil {
		return err
	}
	if err := r.Client.Patch(ctx, cr, client.RawPatch(types.JSONPatchType, patch)); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("removing the revocation finalizer: %w", err)
	}
	return nil
}

// event reports on the request and, where it exists, its Certificate.
func (r *RevocationReconciler) event(cr *cmapi.CertificateRequest, crt *cmapi.Certificate, typ, reason, message string) {
	if crt == nil {
		// No typed nil as the related object: the recorder would drop the
		// event, failing to reference it.
		eventrecord.Record(r.Recorder, cr, nil, typ, reason, eventrecord.ActionRevoking, message)
		return
	}
	eventrecord.Record(r.Recorder, cr, crt, typ, reason, eventrecord.ActionRevoking, message)
	eventrecord.Record(r.Recorder, crt, cr, typ, reason, eventrecord.ActionRevoking, "CertificateRequest "+cr.Name+": "+message)
}

// input gathers what RevocationDecide needs; the Certificate is returned
// when it exists (for events).
func (r *RevocationReconciler) input(ctx context.Context, cr *cmapi.CertificateRequest) (RevocationInput, v1alpha1.Issuer, *cmapi.Certificate, error) {
	in := RevocationInput{
		Now:          r.Clock.Now(),
		HasFinalizer: controllerutil.ContainsFinalizer(cr, v1alpha1.RevocationFinalizer),
		Recorded:     revokedCondition(cr),
		AbandonAfter: r.AbandonAfter,
	}
	if cr.DeletionTimestamp != nil {
		in.Deleting, in.DeletedAt = true, cr.DeletionTimestamp.Time
	}
	if revocationFinal(in.Recorded) {
		return in, nil, nil, nil // decided once and for all: nothing to read
	}
	in.Annotation, in.HasAnnotation = cr.Annotations[v1alpha1.RevokeAnnotation]
	if c := signing.ConditionOf(cr, v1alpha1.ConditionIssuedWithRevokeAnnotation); c != nil && c.Status == cmmeta.ConditionTrue {
		in.AtIssuance, in.HadAtIssuance = atIssuanceValue(c.Message), true
	}
	if v, ok := r.failures.Load(cr.UID); ok {
		f := v.(revocationFailures)
		in.Failures, in.LastFailure, in.LastError = f.n, f.last, f.err
	}
	issued, ok := signing.IssuedRecordOf(cr)
	if !ok {
		return in, nil, nil, nil
	}
	in.Serial, in.IssuerDN = issued.Serial, issued.IssuerDN
	in.NotIssuedHere = r.IssuanceKey.NotIssuedHere(cr, in.Serial, in.IssuerDN)

	iss, _, err := signing.LoadIssuer(ctx, r.Client, cr.Spec.IssuerRef.Kind, cr.Namespace, cr.Spec.IssuerRef.Name)
	if err != nil {
		return in, nil, nil, err
	}
	if iss != nil {
		spec := iss.GetSpec()
		in.IssuerFound, in.Enabled = true, spec.Revocation != nil
		in.Superseded, in.Deleted, in.Grace = spec.RevokesSuperseded(), spec.RevokesDeleted(), spec.RevocationGracePeriod()
	}

	crt, state, err := r.certificate(ctx, cr)
	if err != nil {
		return in, iss, nil, err
	}
	in.Certificate = state
	if state == CertificateLive && in.Enabled && (in.Superseded || in.Deleting) {
		current, successorAt, err := r.currentAndSuccessor(ctx, cr, crt, issued)
		if err != nil {
			return in, iss, crt, err
		}
		in.Current, in.SuccessorIssuedAt = current, successorAt
	}
	return in, iss, crt, nil
}

// certificate finds the Certificate that controls the request, by owner
// reference (name and UID): a Certificate of that name with another UID is
// a new one, and the request's own is gone.
func (r *RevocationReconciler) certificate(ctx context.Context, cr *cmapi.CertificateRequest) (*cmapi.Certificate, CertificateState, error) {
	ref := signing.CertificateOwner(cr)
	if ref == nil {
		return nil, NoCertificate, nil
	}
	crt := &cmapi.Certificate{}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: cr.Namespace, Name: ref.Name}, crt); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, CertificateGone, nil
		}
		return nil, CertificateGone, err
	}
	if crt.UID != ref.UID {
		return nil, CertificateGone, nil
	}
	if !signing.IsComplete(crt) {
		// Cached as a stub: it names another issuer now. Its Secret is
		// still what decides whether this request's certificate is current.
		if err := r.Reader.Get(ctx, client.ObjectKeyFromObject(crt), crt); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, CertificateGone, nil
			}
			return nil, CertificateGone, err
		}
		if crt.UID != ref.UID {
			return nil, CertificateGone, nil
		}
	}
	if crt.DeletionTimestamp != nil {
		return crt, CertificateGone, nil
	}
	return crt, CertificateLive, nil
}

// currentAndSuccessor reads the Certificate's Secret (from the API server:
// Secrets are cached as metadata only): whether it holds the request's
// certificate, and if it holds a newer revision's, when that was issued.
func (r *RevocationReconciler) currentAndSuccessor(ctx context.Context, cr *cmapi.CertificateRequest, crt *cmapi.Certificate, issued signing.IssuedRecord) (bool, time.Time, error) {
	var s corev1.Secret
	if err := r.Reader.Get(ctx, types.NamespacedName{Namespace: cr.Namespace, Name: crt.Spec.SecretName}, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return false, time.Time{}, nil
		}
		return false, time.Time{}, err
	}
	held := signing.LeafOf(s.Data[corev1.TLSCertKey])
	if held == nil {
		return false, time.Time{}, nil
	}
	if issued.Is(held) {
		return true, time.Time{}, nil
	}
	ours := revisionOf(cr)
	siblings, err := ownedRequests(ctx, r.Client, cr.Namespace, crt.Name)
	if err != nil {
		return false, time.Time{}, err
	}
	for i := range siblings {
		o := &siblings[i]
		if o.UID == cr.UID || revisionOf(o) <= ours || signing.CertificateOwner(o) == nil || signing.CertificateOwner(o).UID != crt.UID {
			continue
		}
		// The successor must hold what this manager issued for it: its
		// status (approvers may write it) alone starts no grace period.
		if rec, ok := signing.IssuedRecordOf(o); ok && rec.Is(held) && r.IssuanceKey.NotIssuedHere(o, rec.Serial, rec.IssuerDN) == "" {
			if c := signing.ReadyCondition(o); c != nil && c.Status == cmmeta.ConditionTrue && c.LastTransitionTime != nil {
				// The condition keeps whole seconds: the successor was
				// issued within the second after it, so the grace period
				// counts from the end of that second, never early.
				return false, c.LastTransitionTime.Time.Add(time.Second), nil
			}
		}
	}
	return false, time.Time{}, nil
}

// revisionOf is the request's cert-manager revision, 0 when unknown.
func revisionOf(cr *cmapi.CertificateRequest) int {
	n, err := strconv.Atoi(signing.RequestRevision(cr))
	if err != nil {
		return 0
	}
	return n
}

func revokedCondition(cr *cmapi.CertificateRequest) *cmapi.CertificateRequestCondition {
	return signing.ConditionOf(cr, v1alpha1.ConditionRevoked)
}

// SetupWithManager watches our CertificateRequests (every change: issuance,
// annotations, deletion) and Certificates (a new revision, a deletion),
// mapping a Certificate to the requests it controls.
func (r *RevocationReconciler) SetupWithManager(mgr manager.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &cmapi.CertificateRequest{}, requestOwnerIndex,
		func(o client.Object) []string {
			issuer, ok := signing.CachedIssuerRef(o)
			if !ok || !signing.IsOurs(issuer) {
				return nil
			}
			if ref := signing.CertificateOwner(o); ref != nil {
				return []string{ownerBucket(ref.Name)}
			}
			return nil
		}); err != nil {
		return err
	}
	ours := predicate.NewPredicateFuncs(func(o client.Object) bool {
		ref, ok := signing.CachedIssuerRef(o)
		return ok && signing.IsOurs(ref)
	})
	return ctrl.ControllerManagedBy(mgr).
		Named("revocation").
		WithOptions(controller.Options{LogConstructor: reconcilelog.For(mgr.GetLogger(), "revocation")}).
		For(&cmapi.CertificateRequest{}, ctrl.WithPredicates(ours, r.requestChanges())).
		Watches(&cmapi.Certificate{}, handler.EnqueueRequestsFromMapFunc(r.requestsOf)).
		// A request's issuance can supersede its siblings: the Certificate's
		// revision change wakes them too, but may be seen before the
		// successor's status is in this cache.
		Watches(&cmapi.CertificateRequest{}, handler.EnqueueRequestsFromMapFunc(r.siblingsOf), ctrl.WithPredicates(ours, issuedNow())).
		Complete(r)
}

// siblingsOf maps a request to the other requests of its Certificate.
func (r *RevocationReconciler) siblingsOf(ctx context.Context, o client.Object) []reconcile.Request {
	cr, ok := signing.CachedRequest(o)
	if !ok {
		return nil
	}
	ref := signing.CertificateOwner(cr)
	if ref == nil {
		return nil
	}
	crt := &cmapi.Certificate{}
	crt.Namespace, crt.Name = cr.Namespace, ref.Name
	return r.requestsOf(ctx, crt)
}

// issuedNow passes request updates that store a certificate.
func issuedNow() predicate.Predicate {
	return predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := signing.CachedRequest(e.ObjectOld)
			n, ok2 := signing.CachedRequest(e.ObjectNew)
			return ok1 && ok2 && !signing.HasIssued(o) && signing.HasIssued(n)
		},
	}
}

// requestsOf maps a Certificate to its requests.
func (r *RevocationReconciler) requestsOf(ctx context.Context, o client.Object) []reconcile.Request {
	owned, err := ownedRequests(ctx, r.Client, o.GetNamespace(), o.GetName())
	if err != nil {
		logf.FromContext(ctx).Error(err, "listing a Certificate's requests", "certificate", o.GetName())
		return nil
	}
	out := make([]reconcile.Request, 0, len(owned))
	for i := range owned {
		if r.mayDecide(&owned[i]) {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: owned[i].Namespace, Name: owned[i].Name}})
		}
	}
	return out
}

// requestChanges: which of a request's own events wake it. At start every
// request is created, and each changes on its way to a certificate
// (approved, issued), a reconcile each time were it looked at: only a
// request whose revocation may be due as it now is (mayDecide) is. A
// deletion always is (the request is gone: nothing to do, the reconcile
// says so).
func (r *RevocationReconciler) requestChanges() predicate.Funcs {
	return predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool { return r.mayDecide(e.Object) },
		UpdateFunc: func(e event.UpdateEvent) bool { return r.mayDecide(e.ObjectNew) },
	}
}

// mayDecide: RevocationDecide may have something to do for o as it now
// is (a request the cache did not shape as one is looked at).
func (r *RevocationReconciler) mayDecide(o client.Object) bool {
	cr, ok := signing.CachedRequest(o)
	return !ok || !(revocationIdle(cr) || r.revokesNothing(cr))
}

// revokesNothing: cr's issuer, as cached, sets no spec.revocation, and cr
// is neither annotated nor being deleted (both ask for a decision and a
// note even so): whatever its Certificate did while no manager ran
// (renewed, deleted) revokes nothing. A cluster holds a finished request
// per Certificate and more, each owned by it: without this, a start with
// revocation off queued every one of them. (Revocation turned on later
// acts from the next change of a request or its Certificate, started or
// not.) False when the issuer is not in the cache.
func (r *RevocationReconciler) revokesNothing(cr *cmapi.CertificateRequest) bool {
	if _, asked := cr.Annotations[v1alpha1.RevokeAnnotation]; asked || cr.DeletionTimestamp != nil {
		return false
	}
	iss, ok := v1alpha1.NewIssuer(cr.Spec.IssuerRef.Kind)
	if !ok {
		return false
	}
	// Read only: the cache's own copy.
	err := r.Client.Get(context.Background(), v1alpha1.IssuerKey(cr.Spec.IssuerRef.Kind, cr.Namespace, cr.Spec.IssuerRef.Name), iss, client.UnsafeDisableDeepCopy)
	return err == nil && iss.GetSpec().Revocation == nil
}

// revocationIdle: RevocationDecide can decide nothing for cr until cr
// itself changes (its update wakes it): cr is not being deleted and asks
// for no revocation, and its revocation is recorded for good, or it carries
// no certificate, or no Certificate owns it (only a Certificate's new
// revision or deletion acts on a request that is not deleted). Such a
// request is not looked at when first seen or when its Certificate changes.
func revocationIdle(cr *cmapi.CertificateRequest) bool {
	if _, asked := cr.Annotations[v1alpha1.RevokeAnnotation]; asked || cr.DeletionTimestamp != nil {
		return false
	}
	return revocationFinal(revokedCondition(cr)) || !signing.HasIssued(cr) || signing.CertificateOwner(cr) == nil
}
