package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/controllers/revocation"
	"github.com/certctl-io/ejbca-issuer/controllers/signing"
)

// requestKind is what differs between the two kinds of request one
// reconciler skeleton (reconcileRequest) signs: CertificateRequests and
// CertificateSigningRequests. After issuer-lib's request object helper: the
// kind reads its issuer reference and finality, runs its own contract
// (a pure decision, plus the API calls only it needs) and writes its own
// status; the skeleton does the rest, the same for both.
type requestKind[T client.Object] interface {
	// newRequest is an empty request of the kind, to read into.
	newRequest() T
	// issuerOf names the issuer the request asks for; ours is false for
	// another issuer's request (or a malformed signer name of ours).
	issuerOf(req T) (kind, namespace, name string, ours bool)
	// isFinal: the request is issued, failed or denied for good.
	isFinal(req T) bool
	// decide runs the kind's contract on the attempt so far.
	decide(ctx context.Context, req T, a *attempt) (decision, error)
	// signingRequest is the request as the signing core sees it.
	signingRequest(req T) *signing.SigningRequest
	// write stores a decision on the request. deleted: the request was gone
	// while EJBCA issued its certificate.
	write(ctx context.Context, req T, issuer v1alpha1.Issuer, d decision, now time.Time) (deleted bool, err error)
	// announce is the event to record for a decision (nil: none).
	announce(req T, d decision) *signing.Event
	// forget drops the kind's own memory of a request that is gone or final.
	forget(key types.NamespacedName)
}

// attempt is one reconcile's inputs to the kind's decision: the issuer as
// the request sees it (SignThrough updates it), the clock, and EJBCA's
// answer once asked.
type attempt struct {
	Issuer          signing.IssuerState
	Now             time.Time
	RetryWindow     time.Duration
	ApprovalMaxWait time.Duration
	Result          *signing.SignResult
	// ReferenceAllowed is the requester's right to use a namespaced
	// issuer, once the kind asked the API server (CSRs); asked once per
	// reconcile.
	ReferenceAllowed *bool
}

// decision is a kind's decision as the skeleton needs it; the kind's own
// decision rides along for its write.
type decision struct {
	action signing.Action
	// final: the decision ends the request (issued or failed).
	final bool
	// issued: the decision carries the request's certificate.
	issued      bool
	certificate []byte
	event       *signing.Event
	warnings    []signing.Event
	notices     []signing.IssuerNotice
	issuerFault *signing.IssuerFault
	outcome     string
	// approvalSince is when the wait for an EJBCA administrator began.
	approvalSince time.Time
	callAfter     time.Duration
	requeueAfter  time.Duration
	// logValues are the "decided" log line's key/value pairs.
	logValues []any
	// own is the kind's decision.
	own any
}

// requestMemory is what a request reconciler keeps between reconciles.
type requestMemory struct {
	finished  signing.FinishedRequests
	approvals signing.PendingApprovals
}

// reconcileRequest decides a request's status, asking EJBCA when the
// decision needs it, and writes it: the one reconcile of both kinds.
func reconcileRequest[T client.Object](ctx context.Context, s *signing.RequestSigning, m *requestMemory, k requestKind[T], key types.NamespacedName) (ctrl.Result, error) {
	req := k.newRequest()
	if err := s.Client.Get(ctx, key, req); err != nil {
		if apierrors.IsNotFound(err) {
			m.approvals.Set(key, false, time.Time{})
			k.forget(key)
			s.ForgetDeleted(key)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if m.finished.Recent(req.GetUID(), s.Clock.Now()) {
		return ctrl.Result{}, nil
	}
	kind, ns, name, ours := k.issuerOf(req)
	if !ours || k.isFinal(req) {
		// Final states never revert: nothing can be sent for it any more.
		// (Made final by another writer, e.g. an approver, while it waited
		// for EJBCA's approval: it waits no more.)
		m.approvals.Set(key, false, time.Time{})
		k.forget(key)
		s.ForgetFinal(key, req.GetUID())
		return ctrl.Result{}, nil
	}
	if !s.Lease.Holds() {
		// Deposed (frozen past the lease, say): the new leader acts.
		return ctrl.Result{RequeueAfter: signing.NotLeaderRequeue}, nil
	}
	if !signing.IsComplete(req) {
		// The cache reduces only foreign and final requests, handled above;
		// signing never works from a reduced copy.
		return ctrl.Result{}, fmt.Errorf("the cache holds %s %s as %q, not whole", signing.RequestKind(req), describe(key), signing.ShapeOf(req))
	}
	issuer, state, err := signing.LoadIssuer(ctx, s.Client, kind, ns, name)
	if err != nil {
		return ctrl.Result{}, err
	}
	a := &attempt{Issuer: state, Now: s.Clock.Now(), RetryWindow: s.RetryWindow}
	if issuer != nil {
		a.ApprovalMaxWait = issuer.GetSpec().ApprovalMaxWait()
	}
	d, err := k.decide(ctx, req, a)
	if err != nil {
		return ctrl.Result{}, err
	}
	if d.action == signing.ActionIgnore {
		return ctrl.Result{}, nil
	}
	if d.action == signing.ActionSign {
		if wait := s.Gate.Wait(key, req.GetUID(), a.Now); wait > 0 {
			// Woken before the time its last answer set (by its issuer,
			// say): back to sleep, no call, no write.
			return ctrl.Result{RequeueAfter: wait}, nil
		}
		if res := signing.SignThrough(ctx, s.Clients, s.Signer, s.Issuers, issuer, &a.Issuer, k.signingRequest(req)); res != nil {
			if errors.Is(res.Err, signing.ErrNotLeader) {
				return ctrl.Result{RequeueAfter: signing.NotLeaderRequeue}, nil
			}
			a.Result = res
			a.Now = s.Clock.Now()
		}
		if d, err = k.decide(ctx, req, a); err != nil {
			return ctrl.Result{}, err
		}
	}
	logf.FromContext(ctx).V(1).Info("decided", d.logValues...)
	if !s.Lease.Holds() {
		// Deposed while deciding (frozen in the EJBCA call, say): the new
		// leader writes; a write from here could only be stale.
		return ctrl.Result{RequeueAfter: signing.NotLeaderRequeue}, nil
	}
	return applyDecision(ctx, s, m, k, key, req, issuer, d)
}

// applyDecision writes a decision through the kind, then records its
// events and metrics; an issuer fault EJBCA's answer showed goes to the
// issuer controllers through s.Issuers (only they write issuers).
func applyDecision[T client.Object](ctx context.Context, s *signing.RequestSigning, m *requestMemory, k requestKind[T], key types.NamespacedName, req T, issuer v1alpha1.Issuer, d decision) (ctrl.Result, error) {
	now := s.Clock.Now()
	if !s.Lease.Holds() {
		// Checked again right before the writes: a deposed leader's write
		// could only be stale.
		return ctrl.Result{RequeueAfter: signing.NotLeaderRequeue}, nil
	}
	deleted, err := k.write(ctx, req, issuer, d, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	if deleted {
		// EJBCA issued the request's certificate, but the request was
		// deleted before its status could store it: the certificate is
		// revoked or recorded (unclaimed), once; the request is done.
		revocation.Unclaimed(ctx, s, req, issuer, d.certificate)
		m.approvals.Set(key, false, time.Time{})
		k.forget(key)
		m.finished.Remember(req.GetUID(), s.Clock.Now())
		s.ForgetFinal(key, req.GetUID())
		return ctrl.Result{}, nil
	}
	signing.ReportDecision(s.Recorder, s.Clients, s.Issuers, req, issuer, now, signing.RequestReport{
		RequestKind: signing.RequestKind(req), IssuerKind: issuerKindOf(k, req),
		Event: k.announce(req, d), Warnings: d.warnings, Notices: d.notices, Outcome: d.outcome, IssuerFault: d.issuerFault,
		Issued: d.issued, Created: req.GetCreationTimestamp().Time,
	})
	m.approvals.Set(key, d.outcome == "waiting_for_approval", d.approvalSince)
	if d.final {
		// A request's enrolment Secret, if any, is garbage-collected with
		// the request: the manager never deletes Secrets.
		k.forget(key)
		m.finished.Remember(req.GetUID(), now)
		s.ForgetFinal(key, req.GetUID())
		return ctrl.Result{}, nil
	}
	if d.callAfter > 0 {
		s.Gate.Hold(key, req.GetUID(), now.Add(d.callAfter))
	}
	if d.requeueAfter > 0 {
		return ctrl.Result{RequeueAfter: signing.RequeueNoSooner(d.requeueAfter, s.Jitter)}, nil
	}
	return ctrl.Result{}, nil
}

func issuerKindOf[T client.Object](k requestKind[T], req T) string {
	kind, _, _, _ := k.issuerOf(req)
	return kind
}

// describe names a request by its key: namespace/name, or the name alone
// of a cluster-scoped one.
func describe(key types.NamespacedName) string {
	if key.Namespace == "" {
		return key.Name
	}
	return key.String()
}
