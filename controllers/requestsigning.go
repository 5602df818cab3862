package controllers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/issuerclients"
	"github.com/certctl-io/ejbca-issuer/internal/leadership"
	"github.com/certctl-io/ejbca-issuer/internal/metrics"
)

// The pieces both request reconcilers (CertificateRequest and
// CertificateSigningRequest) share: loading the issuer, asking EJBCA through
// it, and recording the outcome as events, metrics and issuer faults.

// RequestSigning is what the CertificateRequest and CertificateSigningRequest
// reconcilers are given alike: one signer, the issuers' EJBCA clients, and
// the manager's policies for requests.
type RequestSigning struct {
	Client  client.Client
	Clients *issuerclients.Cache
	Signer  *Signer
	// Recorder records events on the requests.
	Recorder events.EventRecorder
	// ClusterResourceNamespace holds the cluster issuers' Secrets and the
	// approval flow's enrolment Secrets of CSRs (which are cluster-scoped).
	ClusterResourceNamespace string
	// RetryWindow is how long, from a request's creation, retryable errors
	// are retried before the request is Failed.
	RetryWindow             time.Duration
	Clock                   clock.PassiveClock
	Jitter                  func() float64
	MaxConcurrentReconciles int
	// Lease says whether this process still leads; nil without leader
	// election.
	Lease *leadership.Lease
	// Gate keeps each request from calling EJBCA before the time its last
	// answer set; nil: no gate.
	Gate *CallGate
	// Issuers is told when a request could not reach EJBCA through an
	// issuer (it is re-checked, and its requests wait for it) or found the
	// issuer at fault: the issuer controller, not the request controllers,
	// writes issuers.
	Issuers *IssuerWakes
}

// loadIssuer loads an issuer of ours and what the decisions need of it.
// namespace is the request's (ignored for cluster issuers); a missing
// issuer is no error: its state says not Found.
func loadIssuer(ctx context.Context, c client.Reader, kind, namespace, name string) (v1alpha1.Issuer, IssuerState, error) {
	iss, ok := v1alpha1.NewIssuer(kind)
	if !ok {
		return nil, IssuerState{}, fmt.Errorf("issuer kind %q is not ours", kind)
	}
	key := v1alpha1.IssuerKey(kind, namespace, name)
	state := IssuerState{Ref: fmt.Sprintf("%s %q", kind, key.Name)}
	if key.Namespace != "" {
		state.Ref = fmt.Sprintf("%s %q", kind, key.Namespace+"/"+key.Name)
	}
	if err := c.Get(ctx, key, iss); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, state, nil
		}
		return nil, state, err
	}
	state.Found = true
	state.Ready = v1alpha1.IsReady(iss)
	state.FailUnmet = iss.GetSpec().FailsUnmetRequests()
	state.UseRequestedDuration = iss.GetSpec().UseRequestedDuration
	if c := iss.GetStatus().ReadyCondition(); state.Ready && c != nil {
		state.ReadySince = c.LastTransitionTime.Time
	}
	if c := iss.GetStatus().ReadyCondition(); !state.Ready && c != nil {
		state.Reason, state.Message = c.Reason, c.Message
		if c.ObservedGeneration != iss.GetGeneration() {
			state.Reason, state.Message = v1alpha1.ReasonNotChecked, "its spec changed and has not been checked yet"
		}
	}
	return iss, state, nil
}

// signThrough asks EJBCA for sr's certificate through a Ready issuer. It
// returns nil when the issuer's credentials no longer load (state then says
// why the request waits), and ErrNotLeader as the result's error when this
// process was deposed.
func signThrough(ctx context.Context, clients *issuerclients.Cache, signer *Signer, wakes *IssuerWakes,
	issuer v1alpha1.Issuer, state *IssuerState, sr *SigningRequest) *SignResult {
	cl, err := clients.Client(ctx, issuer)
	if err != nil {
		// The issuer was Ready, but its credentials no longer load (a
		// Secret changed since the check); its own watch re-checks it.
		state.Ready, state.Reason, state.Message = false, v1alpha1.ReasonCredentialsUnavailable, err.Error()
		return nil
	}
	kind, key := v1alpha1.KindOf(issuer), client.ObjectKeyFromObject(issuer)
	if wakes.Suspected(kind, key) && signer.Attempts.Held(sr) == nil {
		// Another request just got no answer through this issuer: wait for
		// its re-check rather than add a call to an EJBCA that may be down.
		return &SignResult{Err: &IssuerUnansweredError{Issuer: state.Ref}}
	}
	res := signer.Sign(ctx, sr, issuer, cl)
	// After the call: no answer from EJBCA makes the issuer suspected
	// (requests through it wait for its re-check), unless it was one node's
	// of several and another is still usable: the next calls go there, so
	// holding them would only stall the issuer (the request itself retries
	// on its backoff, searching first). A 403 that may be the issuer's, or
	// a node of several set aside by this or another call (the request
	// itself may have gone through the next node), asks for a re-check at
	// the usual spacing without holding other requests, so one tenant's
	// refusal never stalls a shared issuer.
	lost := cl.TakeNodeLoss()
	switch {
	case wakes == nil || errors.Is(res.Err, ErrNotLeader):
	case noResponse(res.Err) && !cl.OtherNodeUsable(res.Err):
		wakes.Suspect(kind, key)
		res.Err = &IssuerUnansweredError{Issuer: state.Ref, Err: res.Err}
	case suspectsIssuer(res.Err) || lost:
		wakes.Doubt(kind, key)
	}
	return &res
}

// suspectsIssuer reports a request's failure that its issuer's check may
// explain: no answer from EJBCA, or EJBCA's 403 to this request (which the
// check tells apart: its own 403 is the issuer's, otherwise the request's).
// The issuer controller spaces the checks these wake.
func suspectsIssuer(err error) bool {
	if err == nil || errors.Is(err, ErrNotLeader) {
		return false
	}
	var permanent *PermanentError
	return noResponse(err) || (requestForbidden(err) && !errors.As(err, &permanent))
}

// requestReport is what a decision leaves besides the request's status.
type requestReport struct {
	// RequestKind labels the metrics: metrics.RequestKindCertificateRequest
	// or metrics.RequestKindCertificateSigningRequest.
	RequestKind string
	IssuerKind  string
	Event       *Event
	Warnings    []Event
	// Notices go to the issuer controller, which reports them on the
	// issuer.
	Notices []IssuerNotice
	Outcome string
	// Issued observes the time from Created to now.
	Issued      bool
	Created     time.Time
	IssuerFault *IssuerFault
}

// reportDecision records a decision's events and metrics on obj, and hands
// an issuer fault to the issuer controller (dropping a client EJBCA
// refused).
func reportDecision(rec events.EventRecorder, clients *issuerclients.Cache, wakes *IssuerWakes,
	obj client.Object, issuer v1alpha1.Issuer, now time.Time, r requestReport) {
	if r.Event != nil {
		recordEvent(rec, obj, nil, r.Event.Type, r.Event.Reason, ActionSigning, r.Event.Message)
	}
	for _, w := range r.Warnings {
		recordEvent(rec, obj, nil, w.Type, w.Reason, ActionSigning, w.Message)
	}
	if issuer != nil && wakes != nil {
		for _, n := range r.Notices {
			wakes.Notice(v1alpha1.KindOf(issuer), client.ObjectKeyFromObject(issuer), n)
		}
	}
	if r.Outcome != "" {
		metrics.Requests.WithLabelValues(r.IssuerKind, r.RequestKind, r.Outcome).Inc()
	}
	if r.Issued {
		metrics.IssuanceDuration.WithLabelValues(r.IssuerKind, r.RequestKind).Observe(now.Sub(r.Created).Seconds())
	}
	if r.IssuerFault != nil && issuer != nil {
		if r.IssuerFault.Reason == v1alpha1.ReasonUnauthorized {
			clients.Invalidate(issuer.GetUID())
		}
		if wakes != nil {
			wakes.Report(v1alpha1.KindOf(issuer), client.ObjectKeyFromObject(issuer), *r.IssuerFault)
		}
	}
}

// finishedRequests remembers the requests this process finished for
// finishedMemory, so a cache that has not yet seen the final status does
// not make it sign again.
type finishedRequests struct {
	m      sync.Map // types.UID -> time.Time
	stored atomic.Int64
}

// recent reports whether uid was finished less than finishedMemory ago.
func (f *finishedRequests) recent(uid types.UID, now time.Time) bool {
	t, ok := f.m.Load(uid)
	if !ok {
		return false
	}
	if now.Sub(t.(time.Time)) < finishedMemory {
		return true
	}
	f.m.Delete(uid)
	return false
}

// remember notes a finished request, and now and then forgets the ones
// older than finishedMemory so the map stays small; pruned says it did.
func (f *finishedRequests) remember(uid types.UID, now time.Time) (pruned bool) {
	f.m.Store(uid, now)
	if f.stored.Add(1)%256 != 0 {
		return false
	}
	f.m.Range(func(k, v any) bool {
		if now.Sub(v.(time.Time)) > finishedMemory {
			f.m.Delete(k)
		}
		return true
	})
	return true
}

// pendingApprovals keeps the approvals-pending gauge: one count per request
// waiting for an EJBCA administrator, and when the longest wait began.
type pendingApprovals struct{ m sync.Map }

func (p *pendingApprovals) set(key any, waiting bool, since time.Time) {
	if waiting {
		if _, loaded := p.m.LoadOrStore(key, struct{}{}); !loaded {
			metrics.ApprovalsPending.Inc()
		}
		metrics.ApprovalWaiting(key, since)
		return
	}
	if _, loaded := p.m.LoadAndDelete(key); loaded {
		metrics.ApprovalsPending.Dec()
		metrics.ApprovalDone(key)
	}
}

// requestKind names a request's kind for messages and the request_kind
// label.
func requestKind(obj client.Object) string {
	if _, ok := obj.(*certificatesv1.CertificateSigningRequest); ok {
		return metrics.RequestKindCertificateSigningRequest
	}
	return metrics.RequestKindCertificateRequest
}

// wakeOnIssuers makes a change of an issuer's readiness, or the end of its
// suspicion (IssuerWakes), wake the requests waiting for it, as
// requestsOf(kind) finds them.
func wakeOnIssuers(b *builder.Builder, wakes *IssuerWakes, requestsOf func(kind string) handler.MapFunc) *builder.Builder {
	if wakes != nil {
		b = b.WatchesRawSource(source.Channel(wakes.requestInbox(), handler.EnqueueRequestsFromMapFunc(
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
