package signing

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

type crOpt func(*cmapi.CertificateRequest)

func request(opts ...crOpt) *cmapi.CertificateRequest {
	cr := &cmapi.CertificateRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "team-a", CreationTimestamp: metav1.NewTime(t0)},
		Spec: cmapi.CertificateRequestSpec{IssuerRef: cmmeta.IssuerReference{
			Group: "ejbca-issuer.certctl.io", Kind: "EJBCAIssuer", Name: "ejbca"}},
	}
	for _, o := range opts {
		o(cr)
	}
	return cr
}

func withCondition(t cmapi.CertificateRequestConditionType, s cmmeta.ConditionStatus, reason, msg string) crOpt {
	return func(cr *cmapi.CertificateRequest) {
		cr.Status.Conditions = append(cr.Status.Conditions, cmapi.CertificateRequestCondition{Type: t, Status: s, Reason: reason, Message: msg})
	}
}

var (
	approved = withCondition(cmapi.CertificateRequestConditionApproved, cmmeta.ConditionTrue, "cert-manager.io", "ok")
	denied   = withCondition(cmapi.CertificateRequestConditionDenied, cmmeta.ConditionTrue, "policy", "no")
)

func withIssuerRef(group, kind string) crOpt {
	return func(cr *cmapi.CertificateRequest) { cr.Spec.IssuerRef.Group, cr.Spec.IssuerRef.Kind = group, kind }
}

var readyIssuer = IssuerState{Ref: `EJBCAIssuer "team-a/ejbca"`, Found: true, Ready: true}

func issued() *ejbca.Certificate {
	return &ejbca.Certificate{
		Leaf:         &x509.Certificate{SerialNumber: big.NewInt(0xABC), Subject: pkix.Name{CommonName: "web.example.com"}},
		SerialNumber: "ABC", ChainPEM: []byte("LEAF+INTERMEDIATE"), CAPEM: []byte("ROOT"),
	}
}

func TestDecide(t *testing.T) {
	deadline := t0.Add(time.Hour)
	for _, tc := range []struct {
		name    string
		cr      *cmapi.CertificateRequest
		issuer  IssuerState
		now     time.Time
		result  *SignResult
		action  Action
		status  cmmeta.ConditionStatus
		reason  string
		message string // substring
		failed  bool
		requeue time.Duration
		event   string
		issuerN bool
		outcome string
	}{
		{name: "other group ignored", cr: request(approved, withIssuerRef("cert-manager.io", "EJBCAIssuer")), issuer: readyIssuer, action: ActionIgnore},
		{name: "other kind ignored", cr: request(approved, withIssuerRef("ejbca-issuer.certctl.io", "Issuer")), issuer: readyIssuer, action: ActionIgnore},
		{name: "not approved waits", cr: request(), issuer: readyIssuer, action: ActionIgnore},
		{name: "denied fails with failureTime", cr: request(denied), issuer: readyIssuer, action: ActionUpdate,
			status: cmmeta.ConditionFalse, reason: "Denied", message: "denied", failed: true, event: EventFailed, outcome: "denied"},
		{name: "already issued untouched", cr: request(approved, withCondition("Ready", cmmeta.ConditionTrue, "Issued", "")), issuer: readyIssuer, action: ActionIgnore},
		{name: "already failed untouched", cr: request(approved, withCondition("Ready", cmmeta.ConditionFalse, "Failed", "")), issuer: readyIssuer, action: ActionIgnore},
		{name: "already denied untouched", cr: request(denied, withCondition("Ready", cmmeta.ConditionFalse, "Denied", "")), issuer: readyIssuer, action: ActionIgnore},
		{name: "issuer missing is pending, no requeue", cr: request(approved), issuer: IssuerState{Ref: `EJBCAIssuer "team-a/ejbca"`},
			action: ActionUpdate, status: cmmeta.ConditionFalse, reason: "Pending", message: `Waiting for EJBCAIssuer "team-a/ejbca": not found`, event: EventIssuerNotReady, outcome: "issuer_not_ready"},
		{name: "issuer not ready names it and why", cr: request(approved),
			issuer: IssuerState{Ref: `EJBCAClusterIssuer "ejbca"`, Found: true, Reason: "Unauthorized", Message: "EJBCA said no"},
			action: ActionUpdate, status: cmmeta.ConditionFalse, reason: "Pending", message: `Waiting for EJBCAClusterIssuer "ejbca" to be Ready (Unauthorized: EJBCA said no)`, event: EventIssuerNotReady, outcome: "issuer_not_ready"},
		{name: "waiting for the issuer never fails, even far past the retry window", cr: request(approved), now: t0.Add(48 * time.Hour),
			issuer: IssuerState{Ref: `EJBCAIssuer "team-a/ejbca"`, Found: true, Reason: "Unreachable", Message: "down"},
			action: ActionUpdate, status: cmmeta.ConditionFalse, reason: "Pending", message: "to be Ready (Unreachable: down)", event: EventIssuerNotReady, outcome: "issuer_not_ready"},
		{name: "same pending message records no new event", cr: request(approved, withCondition("Ready", cmmeta.ConditionFalse, "Pending", `Waiting for EJBCAIssuer "team-a/ejbca": not found`)),
			issuer: IssuerState{Ref: `EJBCAIssuer "team-a/ejbca"`}, action: ActionUpdate, status: cmmeta.ConditionFalse, reason: "Pending", outcome: "issuer_not_ready"},
		{name: "approved and issuer ready signs", cr: request(approved), issuer: readyIssuer, action: ActionSign},
		{name: "issued", cr: request(approved), issuer: readyIssuer, result: &SignResult{Certificate: issued()},
			action: ActionUpdate, status: cmmeta.ConditionTrue, reason: "Issued", message: "serial ABC", event: EventIssued, outcome: "issued"},
		{name: "waiting for approval", cr: request(approved), issuer: readyIssuer,
			result: &SignResult{WaitingForApproval: &Approval{RequestID: 42, Since: t0, PollAfter: 15 * time.Second}},
			action: ActionUpdate, status: cmmeta.ConditionFalse, reason: "Pending", message: "waiting for EJBCA approval of request 42 since 2026-11-27T12:00:00Z",
			requeue: 15 * time.Second, event: EventWaitingForApproval, outcome: "waiting_for_approval"},
		{name: "retryable is pending with backoff", cr: request(approved), issuer: readyIssuer, now: t0.Add(10 * time.Second),
			result: &SignResult{Err: &ejbca.Error{Endpoint: "POST /v1/certificate/pkcs10enroll", StatusCode: 503, Kind: ejbca.KindRetryable, Message: "busy"}},
			action: ActionUpdate, status: cmmeta.ConditionFalse, reason: "Pending", message: "busy", requeue: 5 * time.Second, event: EventRetrying, outcome: "pending"},
		{name: "retry-after is honoured", cr: request(approved), issuer: readyIssuer,
			result: &SignResult{Err: &ejbca.Error{StatusCode: 429, Kind: ejbca.KindRetryable, RetryAfter: 30 * time.Second}},
			action: ActionUpdate, status: cmmeta.ConditionFalse, reason: "Pending", requeue: 30 * time.Second, event: EventRetrying, outcome: "pending"},
		{name: "retryable past the window fails", cr: request(approved), issuer: readyIssuer, now: deadline,
			result: &SignResult{Err: &ejbca.Error{Kind: ejbca.KindRetryable, Err: errors.New("connection refused")}},
			action: ActionUpdate, status: cmmeta.ConditionFalse, reason: "Failed", message: "connection refused", failed: true, event: EventFailed, outcome: "failed"},
		{name: "time waiting for the issuer does not count against the retry window", cr: request(approved),
			issuer: IssuerState{Ref: `EJBCAIssuer "team-a/ejbca"`, Found: true, Ready: true, ReadySince: t0.Add(2 * time.Hour)}, now: t0.Add(2*time.Hour + time.Minute),
			result: &SignResult{Err: &ejbca.Error{Kind: ejbca.KindRetryable, Err: errors.New("connection reset")}},
			action: ActionUpdate, status: cmmeta.ConditionFalse, reason: "Pending", message: "will retry", requeue: time.Minute, event: EventRetrying, outcome: "pending"},
		{name: "the window still ends an hour after the issuer became Ready", cr: request(approved),
			issuer: IssuerState{Ref: `EJBCAIssuer "team-a/ejbca"`, Found: true, Ready: true, ReadySince: t0.Add(2 * time.Hour)}, now: t0.Add(3 * time.Hour),
			result: &SignResult{Err: &ejbca.Error{Kind: ejbca.KindRetryable, Err: errors.New("connection reset")}},
			action: ActionUpdate, status: cmmeta.ConditionFalse, reason: "Failed", message: "Giving up", failed: true, event: EventFailed, outcome: "failed"},
		{name: "approval waits are bounded by maxWait, not the retry window", cr: request(approved), issuer: readyIssuer, now: t0.Add(3 * time.Hour),
			result: &SignResult{Err: &ejbca.Error{Kind: ejbca.KindRetryable, Err: errors.New("connection reset")}, ApprovalSince: t0},
			action: ActionUpdate, status: cmmeta.ConditionFalse, reason: "Pending", message: "will retry", requeue: time.Minute, event: EventRetrying, outcome: "pending"},
		{name: "EJBCA may still be issuing: wait and look again, never fail", cr: request(approved), issuer: readyIssuer, now: deadline.Add(time.Minute),
			result: &SignResult{Err: &StillIssuingError{Attempted: deadline.Add(30 * time.Second), LookAgain: deadline.Add(80 * time.Second)}},
			action: ActionUpdate, status: cmmeta.ConditionFalse, reason: "Pending", message: "may still be issuing", requeue: 20 * time.Second, event: EventRetrying, outcome: "pending"},
		{name: "an unreadable 201 is retried through recovery", cr: request(approved), issuer: readyIssuer,
			result: &SignResult{Err: &ejbca.Error{StatusCode: 201, Kind: ejbca.KindRetryable, UnreadableSuccess: true, Message: "EJBCA answered 201, so it probably issued"}},
			action: ActionUpdate, status: cmmeta.ConditionFalse, reason: "Pending", message: "probably issued", requeue: 2 * time.Second, event: EventRetrying, outcome: "pending"},
		{name: "an unmet request warns by default", cr: request(approved, func(cr *cmapi.CertificateRequest) { cr.Spec.IsCA = true }), issuer: readyIssuer,
			result: &SignResult{Certificate: issued()},
			action: ActionUpdate, status: cmmeta.ConditionTrue, reason: "Issued", message: "serial ABC", event: EventIssued, outcome: "issued"},
		{name: "an unmet request fails when the issuer says so", cr: request(approved, func(cr *cmapi.CertificateRequest) { cr.Spec.IsCA = true }),
			issuer: IssuerState{Ref: `EJBCAIssuer "team-a/ejbca"`, Found: true, Ready: true, FailUnmet: true}, result: &SignResult{Certificate: issued()},
			action: ActionUpdate, status: cmmeta.ConditionFalse, reason: "Failed", message: "EJBCA issued serial ABC, but it lacks isCA", failed: true, event: EventFailed, outcome: "failed"},
		{name: "a request's 403 is retried and leaves the issuer alone", cr: request(approved), issuer: readyIssuer,
			result: &SignResult{Err: &ejbca.Error{StatusCode: 403, Kind: ejbca.KindUnauthorized, Message: "Not authorized to profile SERVER"}},
			action: ActionUpdate, status: cmmeta.ConditionFalse, reason: "Pending", message: "EJBCA refused this request (403), will retry", requeue: 2 * time.Second, event: EventRetrying, outcome: "pending"},
		{name: "a request's 403 past the retry deadline fails with EJBCA's message", cr: request(approved), issuer: readyIssuer, now: deadline,
			result: &SignResult{Err: &ejbca.Error{StatusCode: 403, Kind: ejbca.KindUnauthorized, Message: "Not authorized to profile SERVER"}},
			action: ActionUpdate, status: cmmeta.ConditionFalse, reason: "Failed", message: "Not authorized to profile SERVER", failed: true, event: EventFailed, outcome: "failed"},
		{name: "the token endpoint's 403 marks the issuer", cr: request(approved), issuer: readyIssuer,
			result: &SignResult{Err: &ejbca.Error{Endpoint: "POST token endpoint", StatusCode: 403, Kind: ejbca.KindUnauthorized, Message: "unauthorized_client"}},
			action: ActionUpdate, status: cmmeta.ConditionFalse, reason: "Pending", message: "unauthorized_client", event: EventIssuerNotReady, issuerN: true, outcome: "issuer_not_ready"},
		{name: "EJBCA refusing the issuer's own profile waits for the issuer and reports it", cr: request(approved), issuer: readyIssuer, now: deadline.Add(time.Hour),
			result: &SignResult{Err: &IssuerRefusedError{&ejbca.Error{Endpoint: "POST /v1/certificate/pkcs10enroll", StatusCode: 400, Kind: ejbca.KindPermanent,
				Message: `Certificate profile with name "SERVERX" doesn't exist`}}},
			action: ActionUpdate, status: cmmeta.ConditionFalse, reason: "Pending", message: `EJBCA refused its configuration: EJBCA POST /v1/certificate/pkcs10enroll answered 400: Certificate profile with name "SERVERX" doesn't exist`,
			event: EventIssuerNotReady, issuerN: true, outcome: "issuer_not_ready"},
		{name: "permanent rejection fails with EJBCA's message", cr: request(approved), issuer: readyIssuer,
			result: &SignResult{Err: &ejbca.Error{Endpoint: "POST /v1/certificate/pkcs10enroll", StatusCode: 400, Kind: ejbca.KindPermanent,
				Message: `Certificate profile with name "NOPE" doesn't exist`}},
			action: ActionUpdate, status: cmmeta.ConditionFalse, reason: "Failed", message: `Certificate profile with name "NOPE" doesn't exist`, failed: true, event: EventFailed, outcome: "failed"},
		{name: "key mismatch fails", cr: request(approved), issuer: readyIssuer,
			result: &SignResult{Err: &ejbca.Error{StatusCode: 201, Kind: ejbca.KindInvalidResponse, Message: "does not carry the CSR's public key"}},
			action: ActionUpdate, status: cmmeta.ConditionFalse, reason: "Failed", message: "does not carry the CSR's public key", failed: true, event: EventFailed, outcome: "failed"},
		{name: "our own permanent errors fail", cr: request(approved), issuer: readyIssuer,
			result: &SignResult{Err: &PermanentError{Msg: "EJBCA approval request 7 ended REJECTED: not issued"}},
			action: ActionUpdate, status: cmmeta.ConditionFalse, reason: "Failed", message: "REJECTED", failed: true, event: EventFailed, outcome: "failed"},
		{name: "a permanent error fails whatever it wraps (a 403 for a profile the request chose)", cr: request(approved), issuer: readyIssuer,
			result: &SignResult{Err: &PermanentError{Msg: "EJBCA refused the profile this request chose through an allowed override: 403",
				Err: &ejbca.Error{StatusCode: 403, Kind: ejbca.KindUnauthorized, Message: "Not authorized to profile OTHER"}}},
			action: ActionUpdate, status: cmmeta.ConditionFalse, reason: "Failed", message: "allowed override", failed: true, event: EventFailed, outcome: "failed"},
		{name: "a permanent error fails whatever it wraps (a retryable error)", cr: request(approved), issuer: readyIssuer,
			result: &SignResult{Err: &PermanentError{Msg: "no retry helps", Err: &ejbca.Error{Kind: ejbca.KindRetryable, Err: errors.New("connection reset")}}},
			action: ActionUpdate, status: cmmeta.ConditionFalse, reason: "Failed", message: "no retry helps", failed: true, event: EventFailed, outcome: "failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := tc.now
			if now.IsZero() {
				now = t0
			}
			d := Decide(Input{Request: tc.cr, Issuer: tc.issuer, Now: now, RetryWindow: time.Hour, ApprovalMaxWait: 7 * 24 * time.Hour, Result: tc.result})
			if d.Action != tc.action {
				t.Fatalf("action = %v, want %v (%+v)", d.Action, tc.action, d)
			}
			if tc.action != ActionUpdate {
				return
			}
			if d.Status != tc.status || d.Reason != tc.reason {
				t.Errorf("condition = %s/%s, want %s/%s", d.Status, d.Reason, tc.status, tc.reason)
			}
			if !strings.Contains(d.Message, tc.message) {
				t.Errorf("message %q does not contain %q", d.Message, tc.message)
			}
			if d.Failed != tc.failed {
				t.Errorf("failed = %v, want %v", d.Failed, tc.failed)
			}
			if d.RequeueAfter != tc.requeue {
				t.Errorf("requeue = %s, want %s", d.RequeueAfter, tc.requeue)
			}
			if got := ""; d.Event != nil {
				got = d.Event.Reason
				if got != tc.event {
					t.Errorf("event = %q, want %q", got, tc.event)
				}
			} else if tc.event != "" {
				t.Errorf("no event, want %q", tc.event)
			}
			if (d.IssuerFault != nil) != tc.issuerN {
				t.Errorf("issuer fault = %+v, want set=%v", d.IssuerFault, tc.issuerN)
			}
			if d.Outcome != tc.outcome {
				t.Errorf("outcome = %q, want %q", d.Outcome, tc.outcome)
			}
			if tc.reason == "Issued" && (string(d.Certificate) != "LEAF+INTERMEDIATE" || string(d.CA) != "ROOT") {
				t.Errorf("certificate/ca = %q/%q", d.Certificate, d.CA)
			}
			if tc.reason == "Issued" && tc.cr.Spec.IsCA != (len(d.Warnings) == 1 && d.Warnings[0].Reason == EventUnmetRequest) {
				t.Errorf("warnings %+v for a request with isCA %v", d.Warnings, tc.cr.Spec.IsCA)
			}
		})
	}
}

func TestDurationMismatchIsNamed(t *testing.T) {
	year := &x509.Certificate{NotBefore: t0.Add(-10 * time.Minute), NotAfter: t0.Add(365 * 24 * time.Hour)}
	for _, tc := range []struct {
		name            string
		requested       time.Duration
		leaf            *x509.Certificate
		useReq          bool
		shorter, longer string
	}{
		{"no duration asked for", 0, year, false, "", ""},
		{"honoured, with EJBCA's 10 minute backdating", 2160 * time.Hour, &x509.Certificate{NotBefore: t0.Add(-10 * time.Minute), NotAfter: t0.Add(2160 * time.Hour)}, true, "", ""},
		{"the sample's 90 days on a one-year profile: the issuer's", 2160 * time.Hour, year, false, "", "valid for 8760h10m0s, longer than the 2160h0m0s requested: the issuer's useRequestedDuration is off"},
		{"asked for, but EJBCA did not apply it: the issuer's", 2160 * time.Hour, year, true, "", "EJBCA did not apply the requested end time"},
		{"two years asked for, one given: the request's", 2 * 8760 * time.Hour, year, false,
			"valid for 8760h10m0s (until 2027-11-27T12:00:00Z), shorter than the requested 17520h0m0s: the issuer's useRequestedDuration is off, so EJBCA's certificate profile decides the validity; cert-manager renews it sooner than planned", ""},
	} {
		cr := request(approved)
		if tc.requested > 0 {
			cr.Spec.Duration = &metav1.Duration{Duration: tc.requested}
		}
		got := durationMismatch(cr, tc.leaf, tc.useReq)
		if (tc.shorter == "") != (got.Shorter == "") || !strings.Contains(got.Shorter, tc.shorter) {
			t.Errorf("%s: shorter %q, want %q", tc.name, got.Shorter, tc.shorter)
		}
		if (tc.longer == "") != (got.Longer == "") || !strings.Contains(got.Longer, tc.longer) {
			t.Errorf("%s: longer %q, want %q", tc.name, got.Longer, tc.longer)
		}
	}
}

func TestAbsenceIsProvenOnlyAfterTheSettleTime(t *testing.T) {
	settle := SettleTime(30 * time.Second)
	if settle != 70*time.Second {
		t.Fatalf("SettleTime(30s) = %s, want 70s: the timeout, as much again, and 10s", settle)
	}
	for _, tc := range []struct {
		since time.Duration
		want  bool
		again time.Duration
	}{{0, false, settle}, {5 * time.Second, false, settle}, {settle - time.Nanosecond, false, settle}, {settle, true, 0}, {time.Hour, true, 0}} {
		proven, again := absenceProven(t0, t0.Add(tc.since), settle)
		if proven != tc.want || (!proven && again != t0.Add(tc.again)) {
			t.Errorf("%s after the attempt: proven %v, look again at %s; want %v, %s", tc.since, proven, again, tc.want, t0.Add(tc.again))
		}
	}
}

func TestRetryBackoffGrowsWithAgeAndIsCapped(t *testing.T) {
	for _, tc := range []struct {
		age  time.Duration
		want time.Duration
	}{{0, 2 * time.Second}, {10 * time.Second, 5 * time.Second}, {90 * time.Second, 45 * time.Second}, {time.Hour, time.Minute}} {
		if got := RetryBackoff(tc.age, errors.New("x")); got != tc.want {
			t.Errorf("RetryBackoff(%s) = %s, want %s", tc.age, got, tc.want)
		}
	}
}

// A request's failure wakes a re-check of its issuer when the check can
// tell whose fault it is: no answer, or EJBCA's own 403.
func TestSuspectsIssuer(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"no answer", &ejbca.Error{Kind: ejbca.KindRetryable, Message: "connection refused"}, true},
		{"EJBCA's 403", &ejbca.Error{StatusCode: 403, Kind: ejbca.KindUnauthorized}, true},
		{"the token endpoint's 403 (an issuer fault already)", &ejbca.Error{Endpoint: "POST token endpoint", StatusCode: 403, Kind: ejbca.KindUnauthorized}, false},
		{"a refused profile override", &PermanentError{Msg: "EJBCA refused the profile this request chose"}, false},
		{"not the leader", ErrNotLeader, false},
		{"a 400", &ejbca.Error{StatusCode: 400, Kind: ejbca.KindPermanent}, false},
		{"nothing", nil, false},
	} {
		if got := suspectsIssuer(tc.err); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
