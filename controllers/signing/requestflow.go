package signing

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
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
	"github.com/certctl-io/ejbca-issuer/internal/eventrecord"
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
	Issuers Issuers
}

// ForgetFinal forgets a request that is final: its exactly-once memory and
// its call gate.
func (s *RequestSigning) ForgetFinal(key types.NamespacedName, uid types.UID) {
	s.Signer.Forget(uid)
	s.Gate.Forget(key)
}

// ForgetDeleted forgets a request that no longer exists.
func (s *RequestSigning) ForgetDeleted(key types.NamespacedName) {
	s.Signer.ForgetDeleted(key.Namespace, key.Name)
	s.Gate.Forget(key)
}

// LoadIssuer loads an issuer of ours and what the decisions need of it.
// namespace is the request's (ignored for cluster issuers); a missing
// issuer is no error: its state says not Found.
func LoadIssuer(ctx context.Context, c client.Reader, kind, namespace, name string) (v1alpha1.Issuer, IssuerState, error) {
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

// SignThrough asks EJBCA for sr's certificate through a Ready issuer. It
// returns nil when the issuer's credentials no longer load (state then says
// why the request waits), and ErrNotLeader as the result's error when this
// process was deposed.
func SignThrough(ctx context.Context, clients *issuerclients.Cache, signer *Signer, wakes Issuers,
	issuer v1alpha1.Issuer, state *IssuerState, sr *SigningRequest) *SignResult {
	cl, err := clients.Client(ctx, issuer)
	if err != nil {
		// The issuer was Ready, but its credentials no longer load (a
		// Secret changed since the check); its own watch re-checks it.
		state.Ready, state.Reason, state.Message = false, v1alpha1.ReasonCredentialsUnavailable, err.Error()
		return nil
	}
	kind, key := v1alpha1.KindOf(issuer), client.ObjectKeyFromObject(issuer)
	if wakes != nil && wakes.Suspected(kind, key) && !signer.HoldsCertificate(sr) {
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

// RequestReport is what a decision leaves besides the request's status.
type RequestReport struct {
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

// ReportDecision records a decision's events and metrics on obj, and hands
// an issuer fault to the issuer controller (dropping a client EJBCA
// refused).
func ReportDecision(rec events.EventRecorder, clients *issuerclients.Cache, wakes Issuers,
	obj client.Object, issuer v1alpha1.Issuer, now time.Time, r RequestReport) {
	if r.Event != nil {
		eventrecord.Record(rec, obj, nil, r.Event.Type, r.Event.Reason, eventrecord.ActionSigning, r.Event.Message)
	}
	for _, w := range r.Warnings {
		eventrecord.Record(rec, obj, nil, w.Type, w.Reason, eventrecord.ActionSigning, w.Message)
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

// FinishedRequests remembers the requests this process finished for
// finishedMemory, so a cache that has not yet seen the final status does
// not make it sign again.
type FinishedRequests struct {
	m      sync.Map // types.UID -> time.Time
	stored atomic.Int64
}

// Recent reports whether uid was finished less than finishedMemory ago.
func (f *FinishedRequests) Recent(uid types.UID, now time.Time) bool {
	t, ok := f.m.Load(uid)
	if !ok {
		return false
	}
	if now.Sub(t.(time.Time)) < FinishedMemory {
		return true
	}
	f.m.Delete(uid)
	return false
}

// Remember notes a finished request, and now and then forgets the ones
// older than finishedMemory so the map stays small; pruned says it did.
func (f *FinishedRequests) Remember(uid types.UID, now time.Time) (pruned bool) {
	f.m.Store(uid, now)
	if f.stored.Add(1)%256 != 0 {
		return false
	}
	f.m.Range(func(k, v any) bool {
		if now.Sub(v.(time.Time)) > FinishedMemory {
			f.m.Delete(k)
		}
		return true
	})
	return true
}

// PendingApprovals keeps the approvals-pending gauge: one count per request
// waiting for an EJBCA administrator, and when the longest wait began.
type PendingApprovals struct{ m sync.Map }

func (p *PendingApprovals) Set(key any, waiting bool, since time.Time) {
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

// RequestKind names a request's kind for messages and the request_kind
// label.
func RequestKind(obj client.Object) string {
	if _, ok := obj.(*certificatesv1.CertificateSigningRequest); ok {
		return metrics.RequestKindCertificateSigningRequest
	}
	return metrics.RequestKindCertificateRequest
}

// NotLeaderRequeue is how soon a request is looked at again by a process
// that found it no longer leads (if it does again by then).
const NotLeaderRequeue = 5 * time.Second

// FinishedMemory is how long a request finished by this process is skipped
// without a look, covering a cache that has not yet seen the final status.
const FinishedMemory = 10 * time.Minute

// noResponse reports an EJBCA call that got no HTTP answer at all (refused,
// reset, timed out): EJBCA may be down, which the issuer's check confirms.
// The token endpoint is the identity provider's, not EJBCA's.
func noResponse(err error) bool {
	return ejbca.NoAnswer(err) && !ejbca.IsTokenEndpoint(err)
}
