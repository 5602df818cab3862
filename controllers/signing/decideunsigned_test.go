package signing

import (
	"errors"
	"testing"
	"time"

	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
)

// TestNoAnswerWaitsForTheIssuer: a request that got no answer from EJBCA,
// or did not call because its issuer is suspected, waits for the issuer's
// re-check (which wakes it) instead of a retry of its own; after a call it
// still calls again no sooner than its backoff; past the retry deadline it
// fails as any retryable error does.
func TestNoAnswerWaitsForTheIssuer(t *testing.T) {
	created := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	reset := &ejbca.Error{Kind: ejbca.KindRetryable, Err: errors.New("connection reset by peer")}
	iss := IssuerState{Ref: `EJBCAIssuer "ns/ejbca"`, Found: true, Ready: true}
	for _, tc := range []struct {
		name          string
		err           error
		age           time.Duration
		wantFailed    bool
		wantCallAfter time.Duration
	}{
		{"no answer: waits for the issuer, calls again no sooner than its backoff", &IssuerUnansweredError{Issuer: iss.Ref, Err: reset}, 10 * time.Second, false, 5 * time.Second},
		{"issuer suspected, nothing sent: any wake may call", &IssuerUnansweredError{Issuer: iss.Ref}, 10 * time.Second, false, 0},
		{"past the retry window: Failed", &IssuerUnansweredError{Issuer: iss.Ref, Err: reset}, 2 * time.Hour, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := decideUnsigned(unsignedInput{Result: &SignResult{Err: tc.err}, Issuer: iss, Now: created.Add(tc.age), Created: created, RetryWindow: time.Hour})
			if u.Failed != tc.wantFailed {
				t.Fatalf("Failed = %v (%s)", u.Failed, u.Message)
			}
			if tc.wantFailed {
				return
			}
			if u.Outcome != "issuer_not_ready" || u.EventReason != EventIssuerNotReady || u.RequeueAfter != MinHealthCheckSpacing {
				t.Errorf("got %+v, want a wait for the issuer (requeue %s only against a lost wake)", u, MinHealthCheckSpacing)
			}
			if u.CallAfter != tc.wantCallAfter {
				t.Errorf("CallAfter = %s, want %s", u.CallAfter, tc.wantCallAfter)
			}
		})
	}
}
