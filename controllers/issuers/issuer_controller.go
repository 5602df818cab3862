package issuers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/controllers/signing"
	"github.com/certctl-io/ejbca-issuer/internal/credentials"
	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
	"github.com/certctl-io/ejbca-issuer/internal/eventrecord"
	"github.com/certctl-io/ejbca-issuer/internal/issuerclients"
	"github.com/certctl-io/ejbca-issuer/internal/leadership"
	"github.com/certctl-io/ejbca-issuer/internal/metrics"
)

// issuerRefIndex indexes issuers by the Secrets and ConfigMaps they name
// ("Secret/<namespace>/<name>"), so a change to one re-checks exactly the
// issuers that use it.
const issuerRefIndex = "ejbca-issuer.certctl.io/references"

// IssuerReconciler checks that an issuer can reach and authenticate to EJBCA
// and that its CA exists, and says so in its Ready condition. One type serves
// both kinds.
type IssuerReconciler struct {
	// Kind is v1alpha1.IssuerKind or v1alpha1.ClusterIssuerKind.
	Kind                     string
	Client                   client.Client
	Clients                  *issuerclients.Cache
	ClusterResourceNamespace string
	// Interval between checks of a healthy issuer (jittered).
	Interval time.Duration
	Clock    clock.PassiveClock
	Jitter   func() float64
	// Reachability probes the EJBCAs that Unreachable issuers wait for.
	Reachability *Reachability
	// Recorder records an event on each Ready transition.
	Recorder events.EventRecorder
	// Lease says whether this process still leads (nil: always): a deposed
	// leader checks no issuer and writes no issuer status.
	Lease *leadership.Lease
	// SecretsNamespaceOnly: the manager reads Secrets and ConfigMaps only in
	// the cluster resource namespace (--secrets-in-cluster-resource-namespace-only).
	SecretsNamespaceOnly bool

	// wakes is the inbox this controller is registered with: it ends the
	// suspicions its checks answer.
	wakes *IssuerWakes

	mu     sync.Mutex
	checks map[types.NamespacedName]*healthRecord
	// wake holds why an issuer was woken between checks.
	wake map[types.NamespacedName]wakeReason
	// faults hold what requests reported, until the issuer is next woken.
	faults map[types.NamespacedName]signing.IssuerFault
	// notices tally what the issuer's configuration changed in requests'
	// certificates, until reported on the issuer.
	notices issuerNotices
	// inbox queues the reconciles the wakes, faults and notices ask for.
	inbox issuerInbox
}

// wakeReason is why an issuer is checked before its schedule.
type wakeReason int

const (
	// wakeSuspect: a request could not reach EJBCA through this issuer;
	// check again, but not sooner than signing.MinHealthCheckSpacing after the last.
	wakeSuspect wakeReason = iota + 1
	// wakeEJBCABack: EJBCA answers again; check now.
	wakeEJBCABack
	// wakeFault: a request found EJBCA refusing the issuer's credentials or
	// configuration; mark it not Ready now, without a check.
	wakeFault
)

// report marks an issuer not Ready with a fault a request found (EJBCA
// refused its credentials, CA or profile). The issuer is checked again on
// the failing schedule (1 min at the soonest), so a fix made in EJBCA alone
// is noticed too.
func (r *IssuerReconciler) report(key types.NamespacedName, fault signing.IssuerFault) {
	r.mu.Lock()
	if r.faults == nil {
		r.faults = map[types.NamespacedName]signing.IssuerFault{}
	}
	r.faults[key] = fault
	r.mu.Unlock()
	r.wakeUp(key, wakeFault)
}

// notice counts a request's notice and, for the first since the last
// report, wakes the issuer (without a reason: no check) to report it or
// schedule its report.
func (r *IssuerReconciler) notice(key types.NamespacedName, n signing.IssuerNotice) {
	metrics.ProfileDifferences.WithLabelValues(r.Kind, key.Namespace, key.Name, n.Reason).Inc()
	if r.notices.add(key, n, r.Clock.Now()) {
		r.enqueue(key)
	}
}

func (r *IssuerReconciler) wakeUp(key types.NamespacedName, why wakeReason) {
	r.mu.Lock()
	if r.wake == nil {
		r.wake = map[types.NamespacedName]wakeReason{}
	}
	r.wake[key] = max(r.wake[key], why)
	r.mu.Unlock()
	r.enqueue(key)
}

// enqueue queues a reconcile of the issuer; it never drops one (see
// issuerInbox).
func (r *IssuerReconciler) enqueue(key types.NamespacedName) { r.inbox.add(key) }

// healthRecord is the last check of an issuer: what it checked and found.
type healthRecord struct {
	uid        types.UID
	generation int64
	refs       string
	at         time.Time
	status     metav1.ConditionStatus
	reason     string
	message    string
	failures   int
	// degraded: Ready, but some of the issuer's EJBCA nodes are not
	// usable; checked again sooner, so the message follows their return.
	degraded bool
}

// +kubebuilder:rbac:groups=ejbca-issuer.certctl.io,resources=ejbcaissuers;ejbcaclusterissuers,verbs=get;list;watch
// +kubebuilder:rbac:groups=ejbca-issuer.certctl.io,resources=ejbcaissuers/status;ejbcaclusterissuers/status,verbs=get;patch;update
// +kubebuilder:rbac:groups="",resources=secrets;configmaps,verbs=get;list;watch

func (r *IssuerReconciler) newIssuer() v1alpha1.Issuer {
	iss, _ := v1alpha1.NewIssuer(r.Kind)
	return iss
}

// Reconcile checks the issuer when its inputs changed or a check is due.
func (r *IssuerReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	if !r.Lease.Holds() {
		// Deposed (frozen past the lease, say): the new leader checks.
		return ctrl.Result{RequeueAfter: signing.NotLeaderRequeue}, nil
	}
	iss := r.newIssuer()
	if err := r.Client.Get(ctx, req.NamespacedName, iss); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	now := r.Clock.Now()
	noticeNext := r.reportNotices(iss, now)
	res, err := r.reconcile(ctx, req, iss, now)
	if err == nil && !noticeNext.IsZero() && (res.RequeueAfter == 0 || noticeNext.Sub(now) < res.RequeueAfter) {
		res.RequeueAfter = noticeNext.Sub(now)
	}
	return res, err
}

// reportNotices records the notice reports due on the issuer as events,
// and returns when the next is due (zero: none pending).
func (r *IssuerReconciler) reportNotices(iss v1alpha1.Issuer, now time.Time) time.Time {
	due, next := r.notices.take(client.ObjectKeyFromObject(iss), now)
	for _, n := range due {
		eventrecord.Record(r.Recorder, iss, nil, n.Type, n.Reason, eventrecord.ActionSigning, n.Note())
	}
	return next
}

// reconcile is Reconcile's check of a loaded issuer.
func (r *IssuerReconciler) reconcile(ctx context.Context, req ctrl.Request, iss v1alpha1.Issuer, now time.Time) (ctrl.Result, error) {
	if r.SecretsNamespaceOnly && iss.GetNamespace() != "" && iss.GetNamespace() != r.ClusterResourceNamespace {
		// Its Secrets are out of the manager's reach: say what to do, once.
		msg := fmt.Sprintf("this ejbca-issuer runs with --secrets-in-cluster-resource-namespace-only, so it cannot read Secrets in namespace %s: "+
			"use an EJBCAClusterIssuer (its Secrets go in namespace %s), create this EJBCAIssuer in %s, or install with Secret access in every namespace (Helm: rbac.secretsClusterWide=true)",
			iss.GetNamespace(), r.ClusterResourceNamespace, r.ClusterResourceNamespace)
		if c := iss.GetStatus().ReadyCondition(); c != nil && c.Reason == v1alpha1.ReasonSecretsNotAccessible && c.Message == msg && c.ObservedGeneration == iss.GetGeneration() {
			return ctrl.Result{}, nil
		}
		metrics.HealthChecks.WithLabelValues(r.Kind, v1alpha1.ReasonSecretsNotAccessible).Inc()
		return ctrl.Result{}, setIssuerReady(ctx, r.Client, r.Recorder, iss, metav1.ConditionFalse, v1alpha1.ReasonSecretsNotAccessible, msg, now)
	}
	refs, err := r.Clients.Fingerprint(ctx, iss)
	if err != nil {
		return ctrl.Result{}, err
	}
	r.mu.Lock()
	last := r.checks[req.NamespacedName]
	woken := r.wake[req.NamespacedName]
	delete(r.wake, req.NamespacedName)
	fault, reported := r.faults[req.NamespacedName]
	delete(r.faults, req.NamespacedName)
	r.mu.Unlock()
	if last != nil && last.uid != iss.GetUID() {
		last = nil // deleted and created again
	}

	if last != nil && last.generation == iss.GetGeneration() && last.refs == refs && woken != wakeEJBCABack && woken != wakeFault {
		due := r.nextCheck(last)
		current := iss.GetStatus().ReadyCondition()
		if woken == wakeSuspect || (current != nil && (current.Status != last.status || current.Reason != last.reason)) {
			// A request could not reach EJBCA, or the condition is not what
			// this process last wrote (another replica led before): check
			// again, but not sooner than the spacing allows.
			if spaced := last.at.Add(signing.MinHealthCheckSpacing); spaced.Before(due) {
				due = spaced
			}
		}
		if now.Before(due) {
			if woken == wakeSuspect {
				r.wakeLater(req.NamespacedName)
				if r.Reachability != nil {
					// Its requests wait for the check: the status probe
					// brings it forward as soon as EJBCA answers.
					r.Reachability.Suspected(r.Kind, req.NamespacedName, iss.GetSpec().URL)
				}
			}
			return ctrl.Result{RequeueAfter: due.Sub(now)}, nil
		}
	}

	var status metav1.ConditionStatus
	var reason, message string
	var degraded bool
	var chain []metrics.CAValidity // nil: the check did not find the CA
	if reported && last != nil && last.generation == iss.GetGeneration() && last.refs == refs {
		// A request found the fault since the last check, with nothing
		// changed since: take it as this check's result.
		status, reason, message = metav1.ConditionFalse, fault.Reason, fault.Message
	} else {
		status, reason, message, degraded, chain = r.check(ctx, iss)
	}
	ca := caExpiryUpdate{}
	switch {
	case chain != nil:
		metrics.SetCAExpiry(r.Kind, iss.GetNamespace(), iss.GetName(), chain)
		ca = caExpiryUpdate{set: true, notAfter: earliestExpiry(chain)}
		if status == metav1.ConditionTrue && !ca.notAfter.IsZero() {
			message += caExpiryNote(chain)
		}
	case reason == v1alpha1.ReasonCANotFound:
		// The CA is gone from what these credentials see; a failure to
		// reach EJBCA keeps what the last check found.
		metrics.ForgetCAExpiry(r.Kind, iss.GetNamespace(), iss.GetName())
		ca = caExpiryUpdate{set: true}
	}
	metrics.HealthChecks.WithLabelValues(r.Kind, reason).Inc()
	rec := &healthRecord{uid: iss.GetUID(), generation: iss.GetGeneration(), refs: refs, at: now, status: status, reason: reason, message: message, degraded: degraded}
	if status != metav1.ConditionTrue && last != nil && last.status != metav1.ConditionTrue {
		rec.failures = last.failures + 1
	} else if status != metav1.ConditionTrue {
		rec.failures = 1
	}
	r.mu.Lock()
	if r.checks == nil {
		r.checks = map[types.NamespacedName]*healthRecord{}
	}
	r.checks[req.NamespacedName] = rec
	r.mu.Unlock()

	if r.Reachability != nil {
		if reason == v1alpha1.ReasonUnreachable {
			r.Reachability.Unreachable(r.Kind, req.NamespacedName, strings.Join(iss.GetSpec().NodeURLs(), " "), now)
		} else {
			r.Reachability.Forget(r.Kind, req.NamespacedName)
		}
	}
	if !r.Lease.Holds() {
		// Deposed during the check (frozen in an EJBCA call, say): the new
		// leader's check writes; one from here could contradict it.
		return ctrl.Result{RequeueAfter: signing.NotLeaderRequeue}, nil
	}
	if err := setIssuerStatus(ctx, r.Client, r.Recorder, iss, status, reason, message, now, ca); err != nil {
		return ctrl.Result{}, err
	}
	if r.wakes != nil {
		r.wakes.checked(r.Kind, req.NamespacedName, status == metav1.ConditionTrue)
	}
	logf.FromContext(ctx).V(1).Info("issuer checked", "ready", status, "reason", reason)
	return ctrl.Result{RequeueAfter: r.nextCheck(rec).Sub(now)}, nil
}

// nextCheck is when the issuer of rec is checked next; see IssuerCheckDue.
func (r *IssuerReconciler) nextCheck(rec *healthRecord) time.Time {
	j := 1.0
	if r.Jitter != nil {
		j = r.Jitter()
	}
	due := IssuerCheckDue(rec.at, rec.status == metav1.ConditionTrue, rec.reason, rec.failures, r.Interval, r.Reachability != nil, j)
	if rec.degraded {
		if soon := rec.at.Add(signing.MinHealthCheckSpacing); soon.Before(due) {
			return soon
		}
	}
	return due
}

// IssuerCheckDue is when an issuer checked at `at` is checked next: a
// healthy one after the interval; a failing one after a backoff of 1m, 2m,
// 4m... capped at the interval and never sooner than 1m, so a failing EJBCA
// is never asked more than once a minute per issuer. An Unreachable issuer
// is left to the reachability probe (when probed), which wakes it as soon as
// EJBCA answers, and is otherwise checked at the interval. jitter is a factor
// near 1 that spreads issuers checked together; it never brings a failing
// issuer's check under a minute.
func IssuerCheckDue(at time.Time, ready bool, reason string, failures int, interval time.Duration, probed bool, jitter float64) time.Time {
	wait := interval
	if !ready && !(reason == v1alpha1.ReasonUnreachable && probed) {
		wait = signing.MinHealthCheckSpacing << min(max(failures, 1)-1, 5)
		if wait > interval {
			wait = interval
		}
		if wait < signing.MinHealthCheckSpacing {
			wait = signing.MinHealthCheckSpacing
		}
	}
	if j := time.Duration(float64(wait) * jitter); j >= signing.MinHealthCheckSpacing || ready {
		wait = j
	}
	return at.Add(wait)
}

// check builds the issuer's client and calls EJBCA's CA list: authenticated,
// check builds the issuer's client and calls EJBCA's CA list: authenticated,
// and it shows whether caName exists. An issuer of several nodes asks each
// (checkNodes); degraded says some of them are not usable. chain is the CA's
// chain as EJBCA's CA list shows it, nil when the check did not find the CA.
func (r *IssuerReconciler) check(ctx context.Context, iss v1alpha1.Issuer) (status metav1.ConditionStatus, reason, message string, degraded bool, chain []metrics.CAValidity) {
	spec := iss.GetSpec()
	cl, err := r.Clients.Client(ctx, iss)
	if err != nil {
		var nf *credentials.NotFoundError
		var inv *credentials.InvalidError
		switch {
		case errors.As(err, &nf):
			return metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound, fmt.Sprintf("%v: create it in namespace %s", err, nf.Namespace), false, nil
		case errors.As(err, &inv):
			return metav1.ConditionFalse, v1alpha1.ReasonInvalidSecret, err.Error(), false, nil
		}
		return metav1.ConditionFalse, v1alpha1.ReasonInvalidConfig, err.Error(), false, nil
	}
	defer setNodeMetrics(r.Kind, iss, cl)
	if len(cl.Nodes()) > 1 {
		return r.checkNodes(ctx, iss, cl)
	}
	status, reason, message, chain = r.checkOne(ctx, iss, cl, spec.URL)
	return status, reason, message, false, chain
}

// checkOne checks the issuer through its client's node routing; where names
// the EJBCA in messages.
func (r *IssuerReconciler) checkOne(ctx context.Context, iss v1alpha1.Issuer, cl *ejbca.Client, where string) (metav1.ConditionStatus, string, string, []metrics.CAValidity) {
	spec := iss.GetSpec()
	cas, err := cl.ListCAs(ctx)
	if err != nil {
		if ejbca.IsTokenEndpoint(err) {
			status, reason, message := tokenEndpointFailure(spec, r.Clients.SecretNamespace(iss), err)
			return status, reason, message, nil
		}
		if ejbca.IsUnauthorized(err) {
			return metav1.ConditionFalse, v1alpha1.ReasonUnauthorized, fmt.Sprintf("EJBCA refused the issuer's credentials: %v", err), nil
		}
		return metav1.ConditionFalse, v1alpha1.ReasonUnreachable, fmt.Sprintf("EJBCA at %s could not be used: %v", where, err), nil
	}
	return checkCAs(ctx, cl, spec, cas, where)
}

// checkCAs looks for caName among cas and checks the profile; the chain is
// nil when the CA is not among them.
func checkCAs(ctx context.Context, cl *ejbca.Client, spec *v1alpha1.IssuerSpec, cas []ejbca.CA, where string) (metav1.ConditionStatus, string, string, []metrics.CAValidity) {
	var names []string
	for _, ca := range cas {
		if ca.Name == spec.CAName {
			status, reason, message := checkProfile(ctx, cl, spec, ca, where)
			chain := caChain(cas, ca)
			if chain == nil {
				chain = []metrics.CAValidity{}
			}
			return status, reason, message, chain
		}
		names = append(names, ca.Name)
	}
	sort.Strings(names)
	return metav1.ConditionFalse, v1alpha1.ReasonCANotFound,
		fmt.Sprintf("EJBCA at %s has no CA named %q visible to these credentials; it has: %s", where, spec.CAName, strings.Join(names, ", ")), nil
}

// checkProfile asks EJBCA for the issuer's certificate profile, where
// EJBCA can say (8.x and later): an unknown profile, or one that does not
// allow the CA, is the issuer's fault, found before any request is refused
// for it. (EJBCA's REST API has no such question for the end entity
// profile on every edition; a refusal naming it is reported by the requests.)
func checkProfile(ctx context.Context, cl *ejbca.Client, spec *v1alpha1.IssuerSpec, ca ejbca.CA, where string) (metav1.ConditionStatus, string, string) {
	ok := fmt.Sprintf("EJBCA at %s accepted the credentials and has CA %q (%s)", where, ca.Name, ca.SubjectDN)
	profile := spec.EffectiveCertificateProfileName()
	info, err := cl.CertificateProfile(ctx, profile)
	switch {
	case ejbca.IsUnsupported(err):
		return metav1.ConditionTrue, v1alpha1.ReasonChecked, ok
	case ejbca.IsNotFound(err):
		return metav1.ConditionFalse, v1alpha1.ReasonProfileNotFound,
			fmt.Sprintf("EJBCA at %s has no certificate profile named %q that these credentials may use (%s): fix certificateProfileName, or create the profile in EJBCA and authorize the role for it",
				where, profile, ejbca.Message(err))
	case ejbca.IsUnauthorized(err):
		return metav1.ConditionFalse, v1alpha1.ReasonUnauthorized, fmt.Sprintf("EJBCA refused the issuer's credentials: %v", err)
	case err != nil:
		return metav1.ConditionFalse, v1alpha1.ReasonUnreachable, fmt.Sprintf("EJBCA at %s could not be used: %v", where, err)
	}
	if len(info.AvailableCAs) > 0 && !slices.Contains(info.AvailableCAs, ca.Name) && !slices.Contains(info.AvailableCAs, "ANY_CA") {
		return metav1.ConditionFalse, v1alpha1.ReasonProfileNotFound,
			fmt.Sprintf("EJBCA's certificate profile %q does not allow CA %q (it allows: %s): choose another profile, or allow the CA in the profile",
				profile, ca.Name, strings.Join(info.AvailableCAs, ", "))
	}
	return metav1.ConditionTrue, v1alpha1.ReasonChecked, ok + fmt.Sprintf(" and certificate profile %q", profile)
}

func (r *IssuerReconciler) forget(req ctrl.Request) {
	r.mu.Lock()
	if rec := r.checks[req.NamespacedName]; rec != nil {
		r.Clients.Forget(rec.uid)
	}
	delete(r.checks, req.NamespacedName)
	// A wake or fault left for the issuer just before its deletion must
	// not carry over to one created again under its name.
	delete(r.wake, req.NamespacedName)
	delete(r.faults, req.NamespacedName)
	r.mu.Unlock()
	r.notices.forget(req.NamespacedName)
	for _, cause := range []string{signing.NoticeValidityFromProfile, signing.NoticeUsageNotForKey} {
		metrics.ProfileDifferences.DeleteLabelValues(r.Kind, req.Namespace, req.Name, cause)
	}
	if r.Reachability != nil {
		r.Reachability.Forget(r.Kind, req.NamespacedName)
	}
	if r.wakes != nil {
		r.wakes.forgetIssuer(r.Kind, req.NamespacedName)
	}
	metrics.ForgetIssuer(r.Kind, req.Namespace, req.Name)
	metrics.ForgetNodes(r.Kind, req.Namespace, req.Name)
}

// setIssuerReady writes the issuer's Ready condition for its current
// generation; lastTransitionTime moves only when the status does.
func setIssuerReady(ctx context.Context, c client.Client, rec events.EventRecorder, iss v1alpha1.Issuer, status metav1.ConditionStatus, reason, message string, now time.Time) error {
	return setIssuerStatus(ctx, c, rec, iss, status, reason, message, now, caExpiryUpdate{})
}

// caExpiryUpdate is what a check found of the CA chain's expiry for
// status.caNotAfter: nothing to change (set false), a time, or none (zero).
type caExpiryUpdate struct {
	set      bool
	notAfter time.Time
}

// caExpiryNote is the Ready message's mention of the chain's first expiry.
func caExpiryNote(chain []metrics.CAValidity) string {
	first := chain[0]
	for _, ca := range chain {
		if ca.NotAfter.Before(first.NotAfter) {
			first = ca
		}
	}
	return fmt.Sprintf("; the first CA certificate of its chain to expire is %q's (%s), on %s", first.Name, first.Role, first.NotAfter.UTC().Format(time.RFC3339))
}

// setIssuerStatus is setIssuerReady that also writes status.caNotAfter, in
// the same patch.
func setIssuerStatus(ctx context.Context, c client.Client, rec events.EventRecorder, iss v1alpha1.Issuer, status metav1.ConditionStatus, reason, message string, now time.Time, ca caExpiryUpdate) error {
	metrics.SetIssuerReady(v1alpha1.KindOf(iss), iss.GetNamespace(), iss.GetName(), status == metav1.ConditionTrue, reason)

	base := iss.DeepCopyObject().(v1alpha1.Issuer)
	caChanged := false
	if ca.set {
		var want *metav1.Time
		if !ca.notAfter.IsZero() {
			t := metav1.NewTime(ca.notAfter.UTC().Truncate(time.Second))
			want = &t
		}
		if old := iss.GetStatus().CANotAfter; (old == nil) != (want == nil) || (old != nil && !old.Equal(want)) {
			iss.GetStatus().CANotAfter = want
			caChanged = true
		}
	}
	prev := iss.GetStatus().ReadyCondition()
	transition := prev == nil || prev.Status != status || prev.Reason != reason
	changed := meta.SetStatusCondition(&iss.GetStatus().Conditions, metav1.Condition{
		Type: v1alpha1.ConditionReady, Status: status, Reason: reason, Message: message,
		ObservedGeneration: iss.GetGeneration(), LastTransitionTime: metav1.NewTime(now),
	})
	if !changed && !caChanged {
		return nil
	}
	if err := c.Status().Patch(ctx, iss, client.MergeFrom(base), client.FieldOwner(v1alpha1.FieldOwner)); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("writing the issuer's Ready condition: %w", err)
	}
	if transition {
		// One event per transition, so `kubectl describe` shows the
		// issuer's history: Ready, then why it stopped being.
		typ := corev1.EventTypeWarning
		if status == metav1.ConditionTrue {
			typ = corev1.EventTypeNormal
		}
		eventrecord.Record(rec, iss, nil, typ, reason, eventrecord.ActionCheckingIssuer, message)
	}
	return nil
}

// SetupWithManager watches the issuers and, as metadata only, the Secrets and
// ConfigMaps they reference.
func (r *IssuerReconciler) SetupWithManager(mgr ctrl.Manager) error {
	obj := r.newIssuer()
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), obj, issuerRefIndex, func(o client.Object) []string {
		iss := o.(v1alpha1.Issuer)
		ns := r.Clients.SecretNamespace(iss)
		var keys []string
		for _, ref := range credentials.References(iss.GetSpec()) {
			keys = append(keys, string(ref.Kind)+"/"+ns+"/"+ref.Name)
		}
		return keys
	}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named(strings.ToLower(r.Kind)).
		For(obj).
		WatchesRawSource(&r.inbox).
		WatchesMetadata(credentials.KindSecret.Metadata(), handler.EnqueueRequestsFromMapFunc(r.issuersReferencing(credentials.KindSecret))).
		WatchesMetadata(credentials.KindConfigMap.Metadata(), handler.EnqueueRequestsFromMapFunc(r.issuersReferencing(credentials.KindConfigMap))).
		WithOptions(controller.Options{MaxConcurrentReconciles: 2}).
		Complete(r)
}

func (r *IssuerReconciler) issuersReferencing(kind credentials.ObjectKind) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var items []client.Object
		key := client.MatchingFields{issuerRefIndex: string(kind) + "/" + o.GetNamespace() + "/" + o.GetName()}
		switch r.Kind {
		case v1alpha1.ClusterIssuerKind:
			if o.GetNamespace() != r.ClusterResourceNamespace {
				return nil
			}
			var list v1alpha1.EJBCAClusterIssuerList
			if err := r.Client.List(ctx, &list, key); err != nil {
				return nil
			}
			for i := range list.Items {
				items = append(items, &list.Items[i])
			}
		default:
			var list v1alpha1.EJBCAIssuerList
			if err := r.Client.List(ctx, &list, key, client.InNamespace(o.GetNamespace())); err != nil {
				return nil
			}
			for i := range list.Items {
				items = append(items, &list.Items[i])
			}
		}
		out := make([]reconcile.Request, 0, len(items))
		for _, it := range items {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: it.GetNamespace(), Name: it.GetName()}})
		}
		return out
	}
}

// wakeLater keeps a suspicion until the check it was deferred to.
func (r *IssuerReconciler) wakeLater(key types.NamespacedName) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.wake == nil {
		r.wake = map[types.NamespacedName]wakeReason{}
	}
	r.wake[key] = max(r.wake[key], wakeSuspect)
}
