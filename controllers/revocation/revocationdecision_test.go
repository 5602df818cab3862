package revocation

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
)

// revocationBase is an issued request of a live Certificate under an issuer
// that revokes superseded and deleted certificates, with a grace of 1h.
func revocationBase(now time.Time) RevocationInput {
	return RevocationInput{
		Now: now, Serial: "1a2b", IssuerDN: "CN=Issuing CA",
		IssuerFound: true, Enabled: true, Superseded: true, Deleted: true, Grace: time.Hour,
		Certificate: CertificateLive, Current: true, AbandonAfter: 24 * time.Hour,
	}
}

func TestRevocationDecide(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	successor := now.Add(-30 * time.Minute)
	cases := []struct {
		name    string
		mutate  func(*RevocationInput)
		action  RevocationAction
		reason  string
		at      time.Time
		note    string
		message string
	}{
		{name: "current certificate of a live Certificate: nothing", mutate: func(*RevocationInput) {}, action: RevocationNothing},
		{name: "superseded, grace not over: wait until successor+grace, not before",
			mutate: func(in *RevocationInput) { in.Current, in.SuccessorIssuedAt = false, successor },
			action: RevocationWait, reason: ejbca.ReasonSuperseded, at: successor.Add(time.Hour)},
		{name: "superseded, one nanosecond before the grace ends: still wait",
			mutate: func(in *RevocationInput) {
				in.Current, in.SuccessorIssuedAt = false, successor
				in.Now = successor.Add(time.Hour - 1)
			},
			action: RevocationWait, reason: ejbca.ReasonSuperseded, at: successor.Add(time.Hour)},
		{name: "superseded, grace over: revoke SUPERSEDED",
			mutate: func(in *RevocationInput) {
				in.Current, in.SuccessorIssuedAt = false, successor
				in.Now = successor.Add(time.Hour)
			},
			action: RevocationRevoke, reason: ejbca.ReasonSuperseded},
		{name: "superseded but superseded: false: nothing",
			mutate: func(in *RevocationInput) {
				in.Current, in.SuccessorIssuedAt, in.Superseded = false, successor, false
				in.Now = successor.Add(2 * time.Hour)
			},
			action: RevocationNothing},
		{name: "not current but no issued successor known: nothing",
			mutate: func(in *RevocationInput) { in.Current = false },
			action: RevocationNothing},
		{name: "a certificate no issuance record names is never revoked, explicitly or not",
			mutate: func(in *RevocationInput) {
				in.Annotation, in.HasAnnotation, in.NotIssuedHere = "keyCompromise", true, "status.certificate holds serial 1, but ejbca-issuer issued serial 2"
			},
			action: RevocationNothing, note: v1alpha1.RevokedReasonNotIssuedHere, message: "issued serial 2"},
		{name: "a deleted request whose certificate no record names is released unrevoked",
			mutate: func(in *RevocationInput) {
				in.Certificate, in.Deleting, in.HasFinalizer, in.DeletedAt = CertificateGone, true, true, now
				in.NotIssuedHere = "the request carries no record"
			},
			action: RevocationRelease, note: v1alpha1.RevokedReasonNotIssuedHere},
		{name: "Certificate deleted: revoke CESSATION_OF_OPERATION, the Secret's copy notwithstanding",
			mutate: func(in *RevocationInput) { in.Certificate = CertificateGone },
			action: RevocationRevoke, reason: ejbca.ReasonCessationOfOperation},
		{name: "Certificate deleted under deleted: false: nothing",
			mutate: func(in *RevocationInput) { in.Certificate, in.Deleted = CertificateGone, false },
			action: RevocationNothing},
		{name: "request pruned (revisionHistoryLimit) while current, superseded off: released, not revoked",
			mutate: func(in *RevocationInput) {
				in.Deleting, in.DeletedAt, in.HasFinalizer, in.Superseded = true, now, true, false
			},
			action: RevocationRelease, message: "still holds"},
		{name: "request pruned while current (a renewal began), superseded on: held unrevoked",
			mutate: func(in *RevocationInput) { in.Deleting, in.DeletedAt, in.HasFinalizer = true, now, true },
			action: RevocationWait, at: now.Add(time.Minute), message: "held, unrevoked"},
		{name: "request pruned while current, still current at the bound: released unrevoked",
			mutate: func(in *RevocationInput) {
				in.Deleting, in.DeletedAt, in.HasFinalizer = true, now.Add(-24*time.Hour), true
			},
			action: RevocationRelease, message: "released unrevoked"},
		{name: "superseded request pruned within the grace: held until the grace ends",
			mutate: func(in *RevocationInput) {
				in.Deleting, in.DeletedAt, in.HasFinalizer = true, now, true
				in.Current, in.SuccessorIssuedAt = false, successor
			},
			action: RevocationWait, reason: ejbca.ReasonSuperseded, at: successor.Add(time.Hour)},
		{name: "request without a Certificate deleted: revoke CESSATION_OF_OPERATION",
			mutate: func(in *RevocationInput) {
				in.Certificate, in.Current = NoCertificate, false
				in.Deleting, in.DeletedAt, in.HasFinalizer = true, now, true
			},
			action: RevocationRevoke, reason: ejbca.ReasonCessationOfOperation},
		{name: "explicit annotation revokes the current certificate with its reason",
			mutate: func(in *RevocationInput) { in.Annotation, in.HasAnnotation = "keyCompromise", true },
			action: RevocationRevoke, reason: ejbca.ReasonKeyCompromise},
		{name: "explicit annotation works with superseded and deleted off",
			mutate: func(in *RevocationInput) {
				in.Superseded, in.Deleted = false, false
				in.Annotation, in.HasAnnotation = "privilegesWithdrawn", true
			},
			action: RevocationRevoke, reason: ejbca.ReasonPrivilegesWithdrawn},
		{name: "annotation copied at issuance: refused, nothing revoked",
			mutate: func(in *RevocationInput) {
				in.Annotation, in.HasAnnotation, in.AtIssuance, in.HadAtIssuance = "keyCompromise", true, "keyCompromise", true
			},
			action: RevocationNothing, note: v1alpha1.RevokedReasonAtIssuance},
		{name: "annotation copied at issuance does not stop the superseded rule",
			mutate: func(in *RevocationInput) {
				in.Annotation, in.HasAnnotation, in.AtIssuance, in.HadAtIssuance = "keyCompromise", true, "keyCompromise", true
				in.Current, in.SuccessorIssuedAt, in.Now = false, successor, successor.Add(2*time.Hour)
			},
			action: RevocationRevoke, reason: ejbca.ReasonSuperseded, note: v1alpha1.RevokedReasonAtIssuance},
		{name: "a different value than at issuance is a new, explicit ask",
			mutate: func(in *RevocationInput) {
				in.Annotation, in.HasAnnotation, in.AtIssuance, in.HadAtIssuance = "superseded", true, "keyCompromise", true
			},
			action: RevocationRevoke, reason: ejbca.ReasonSuperseded},
		{name: "unknown reason: refused, nothing revoked",
			mutate: func(in *RevocationInput) { in.Annotation, in.HasAnnotation = "KEY_COMPROMISE", true },
			action: RevocationNothing, note: v1alpha1.RevokedReasonInvalid},
		{name: "revocation off: the annotation is refused",
			mutate: func(in *RevocationInput) {
				in.Enabled, in.Superseded, in.Deleted = false, false, false
				in.Annotation, in.HasAnnotation = "keyCompromise", true
			},
			action: RevocationNothing, note: v1alpha1.RevokedReasonNotEnabled},
		{name: "revocation off: a deleted Certificate is not revoked",
			mutate: func(in *RevocationInput) {
				in.Enabled, in.Superseded, in.Deleted = false, false, false
				in.Certificate = CertificateGone
			},
			action: RevocationNothing},
		{name: "already revoked (recorded): never again, finalizer released",
			mutate: func(in *RevocationInput) {
				in.Recorded = &cmapi.CertificateRequestCondition{Type: v1alpha1.ConditionRevoked, Status: cmmeta.ConditionTrue, Reason: ejbca.ReasonKeyCompromise}
				in.Annotation, in.HasAnnotation = "keyCompromise", true
				in.Deleting, in.DeletedAt, in.HasFinalizer, in.Certificate = true, now, true, CertificateGone
			},
			action: RevocationRelease},
		{name: "a refused annotation recorded is not final: a fixed value revokes",
			mutate: func(in *RevocationInput) {
				in.Recorded = &cmapi.CertificateRequestCondition{Type: v1alpha1.ConditionRevoked, Status: cmmeta.ConditionFalse, Reason: v1alpha1.RevokedReasonInvalid}
				in.Annotation, in.HasAnnotation = "keyCompromise", true
			},
			action: RevocationRevoke, reason: ejbca.ReasonKeyCompromise},
		{name: "not issued, deleted with the finalizer: released",
			mutate: func(in *RevocationInput) {
				in.Serial, in.Deleting, in.DeletedAt, in.HasFinalizer = "", true, now, true
			},
			action: RevocationRelease},
		{name: "after a failure, the next attempt waits for the backoff",
			mutate: func(in *RevocationInput) {
				in.Certificate = CertificateGone
				in.Failures, in.LastFailure, in.LastError = 2, now.Add(-5*time.Second), "connection refused"
			},
			action: RevocationWait, reason: ejbca.ReasonCessationOfOperation, at: now.Add(5 * time.Second)},
		{name: "after a failure, once the backoff is over: revoke again",
			mutate: func(in *RevocationInput) {
				in.Certificate = CertificateGone
				in.Failures, in.LastFailure = 2, now.Add(-10*time.Second)
			},
			action: RevocationRevoke, reason: ejbca.ReasonCessationOfOperation},
		{name: "deleted, EJBCA failing, within the bound: wait",
			mutate: func(in *RevocationInput) {
				in.Certificate, in.Deleting, in.DeletedAt, in.HasFinalizer = CertificateGone, true, now.Add(-23*time.Hour), true
				in.Failures, in.LastFailure = 9, now.Add(-time.Second)
			},
			action: RevocationWait, reason: ejbca.ReasonCessationOfOperation, at: now.Add(-time.Second + 5*time.Minute)},
		{name: "deleted, EJBCA failing, past the bound: abandoned",
			mutate: func(in *RevocationInput) {
				in.Certificate, in.Deleting, in.DeletedAt, in.HasFinalizer = CertificateGone, true, now.Add(-24*time.Hour), true
				in.Failures, in.LastFailure, in.LastError = 9, now.Add(-time.Second), "connection refused"
			},
			action: RevocationAbandon, reason: ejbca.ReasonCessationOfOperation, message: "connection refused"},
		{name: "deleted past the bound but EJBCA never failed: try once more",
			mutate: func(in *RevocationInput) {
				in.Certificate, in.Deleting, in.DeletedAt, in.HasFinalizer = CertificateGone, true, now.Add(-25*time.Hour), true
			},
			action: RevocationRevoke, reason: ejbca.ReasonCessationOfOperation},
		{name: "deleted, issuer gone: wait, at the bound at the latest",
			mutate: func(in *RevocationInput) {
				in.IssuerFound = false
				in.Certificate, in.Deleting, in.DeletedAt, in.HasFinalizer = CertificateGone, true, now.Add(-24*time.Hour+2*time.Second), true
			},
			action: RevocationWait, at: now.Add(2 * time.Second)},
		{name: "deleted, issuer gone, past the bound: abandoned",
			mutate: func(in *RevocationInput) {
				in.IssuerFound = false
				in.Certificate, in.Deleting, in.DeletedAt, in.HasFinalizer = CertificateGone, true, now.Add(-24*time.Hour), true
			},
			action: RevocationAbandon, message: "issuer is not found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			clk := clocktesting.NewFakePassiveClock(now)
			in := revocationBase(clk.Now())
			c.mutate(&in)
			d := RevocationDecide(in)
			if d.Action != c.action || d.Reason != c.reason {
				t.Fatalf("got action %d reason %q (%s), want %d %q", d.Action, d.Reason, d.Message, c.action, c.reason)
			}
			if !c.at.IsZero() && !d.At.Equal(c.at) {
				t.Errorf("at %s, want %s", d.At, c.at)
			}
			if c.note == "" && d.Note != nil {
				t.Errorf("unexpected note %+v", d.Note)
			}
			if c.note != "" && (d.Note == nil || d.Note.Reason != c.note) {
				t.Errorf("note %+v, want reason %s", d.Note, c.note)
			}
			if !strings.Contains(d.Message, c.message) {
				t.Errorf("message %q, want it to contain %q", d.Message, c.message)
			}
		})
	}
}

// TestSupersededNotRevokedBeforeGrace steps a fake clock through the grace
// period: the decision waits at every instant before successor+grace and
// revokes from it on.
func TestSupersededNotRevokedBeforeGrace(t *testing.T) {
	t.Parallel()
	successor := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakePassiveClock(successor)
	for step := time.Duration(0); step <= 3*time.Second; step += 250 * time.Millisecond {
		clk.SetTime(successor.Add(step))
		in := revocationBase(clk.Now())
		in.Grace, in.Current, in.SuccessorIssuedAt = 2*time.Second, false, successor
		d := RevocationDecide(in)
		if step < 2*time.Second && (d.Action != RevocationWait || !d.At.Equal(successor.Add(2*time.Second))) {
			t.Fatalf("at +%s: %d %s, want a wait until +2s", step, d.Action, d.Message)
		}
		if step >= 2*time.Second && d.Action != RevocationRevoke {
			t.Fatalf("at +%s: %d %s, want revoke", step, d.Action, d.Message)
		}
	}
}

func TestRevocationBackoff(t *testing.T) {
	t.Parallel()
	want := []time.Duration{0, 5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 5 * time.Minute, 5 * time.Minute}
	for n, w := range want {
		if got := RevocationBackoff(n); got != w {
			t.Errorf("RevocationBackoff(%d) = %s, want %s", n, got, w)
		}
	}
	if got := RevocationBackoff(1000); got != 5*time.Minute {
		t.Errorf("RevocationBackoff(1000) = %s", got)
	}
}

func TestRevocationResultOf(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		err     error
		done    bool
		reason  string
		outcome string
	}{
		{"revoked", nil, true, ejbca.ReasonSuperseded, revocationOutcomeRevoked},
		{"409 already revoked is done", &ejbca.Error{Kind: ejbca.KindConflict, StatusCode: 409}, true, v1alpha1.RevokedReasonAlready, revocationOutcomeAlready},
		{"202 waits for approval, not asked again", &ejbca.Error{Kind: ejbca.KindPending, StatusCode: 202}, true, v1alpha1.RevokedReasonPending, revocationOutcomePending},
		{"400 approval already exists waits too", &ejbca.Error{Kind: ejbca.KindPending, StatusCode: 400,
			Message: "Approval request with approvalID 1869448106 already exists."}, true, v1alpha1.RevokedReasonPending, revocationOutcomePending},
		{"404 unknown to EJBCA", &ejbca.Error{Kind: ejbca.KindNotFound, StatusCode: 404}, true, v1alpha1.RevokedReasonNotFound, revocationOutcomeNotFound},
		{"unreachable: retry", &ejbca.Error{Kind: ejbca.KindRetryable, Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}, false, "", revocationOutcomeFailed},
		{"403 no revoke rights: retry", &ejbca.Error{Kind: ejbca.KindUnauthorized, StatusCode: 403}, false, "", revocationOutcomeFailed},
	}
	for _, c := range cases {
		r := RevocationResultOf(ejbca.ReasonSuperseded, "1a2b", c.err)
		if r.Done != c.done || r.Retry == c.done || r.Reason != c.reason || r.Outcome != c.outcome {
			t.Errorf("%s: %+v", c.name, r)
		}
	}
}

func TestAtIssuanceValueRoundTrips(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"keyCompromise", "", `we"ird value`} {
		cr := &cmapi.CertificateRequest{}
		cr.Annotations = map[string]string{v1alpha1.RevokeAnnotation: v}
		c := RevokeAnnotationAtIssuance(cr, metav1.Now())
		if got := atIssuanceValue(*c.Message); got != v {
			t.Errorf("%q came back as %q", v, got)
		}
	}
}

// TestRevocationIdle: the requests the revocation controller does not look
// at when first seen (every request at start) or when their Certificate
// changes are exactly those RevocationDecide can do nothing for until they
// change themselves.
func TestRevocationIdle(t *testing.T) {
	owner := metav1.OwnerReference{APIVersion: cmapi.SchemeGroupVersion.String(), Kind: cmapi.CertificateKind, Name: "web", Controller: new(true)}
	issued := func(mods ...func(*cmapi.CertificateRequest)) *cmapi.CertificateRequest {
		cr := &cmapi.CertificateRequest{ObjectMeta: metav1.ObjectMeta{Name: "r", OwnerReferences: []metav1.OwnerReference{owner}},
			Status: cmapi.CertificateRequestStatus{Certificate: []byte("-----BEGIN CERTIFICATE-----")}}
		for _, m := range mods {
			m(cr)
		}
		return cr
	}
	now := metav1.Now()
	for _, tc := range []struct {
		name string
		cr   *cmapi.CertificateRequest
		idle bool
	}{
		{"issued, owned by a Certificate: may be superseded or its Certificate gone", issued(), false},
		{"issued, made without a Certificate", issued(func(cr *cmapi.CertificateRequest) { cr.OwnerReferences = nil }), true},
		{"not issued", issued(func(cr *cmapi.CertificateRequest) { cr.Status.Certificate = nil }), true},
		{"revoked already", issued(func(cr *cmapi.CertificateRequest) {
			cr.Status.Conditions = []cmapi.CertificateRequestCondition{{Type: v1alpha1.ConditionRevoked, Status: cmmeta.ConditionTrue, Reason: "KEY_COMPROMISE"}}
		}), true},
		{"a refused annotation recorded, owned: may still be superseded", issued(func(cr *cmapi.CertificateRequest) {
			cr.Status.Conditions = []cmapi.CertificateRequestCondition{{Type: v1alpha1.ConditionRevoked, Status: cmmeta.ConditionFalse, Reason: v1alpha1.RevokedReasonInvalid}}
		}), false},
		{"being deleted, made without a Certificate", issued(func(cr *cmapi.CertificateRequest) {
			cr.OwnerReferences, cr.DeletionTimestamp = nil, &now
		}), false},
		{"being deleted, revoked already (its finalizer is released)", issued(func(cr *cmapi.CertificateRequest) {
			cr.DeletionTimestamp = &now
			cr.Status.Conditions = []cmapi.CertificateRequestCondition{{Type: v1alpha1.ConditionRevoked, Status: cmmeta.ConditionTrue, Reason: "KEY_COMPROMISE"}}
		}), false},
		{"annotated, made without a Certificate", issued(func(cr *cmapi.CertificateRequest) {
			cr.OwnerReferences, cr.Annotations = nil, map[string]string{v1alpha1.RevokeAnnotation: "keyCompromise"}
		}), false},
	} {
		if got := revocationIdle(tc.cr); got != tc.idle {
			t.Errorf("%s: idle %v, want %v", tc.name, got, tc.idle)
		}
	}
}
