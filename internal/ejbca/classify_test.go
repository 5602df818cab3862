package ejbca_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
)

// The controllers decide by these predicates only; each row is an answer
// EJBCA (or the recorder in its place) sends over a real socket to a
// revoke, the call whose answers are the most varied.
func TestClassifyAnswers(t *testing.T) {
	t.Parallel()
	type want struct {
		pending, alreadyExists, forbidden, definitive, answer bool
	}
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   want
	}{
		{"202 held for approval", 202, `{"approval_request_id":7}`, want{pending: true, answer: true}},
		{"400 approval already exists", 400, `{"error_code":400,"error_message":"Approval request with id 123456 already exists."}`,
			want{pending: true, alreadyExists: true, definitive: true, answer: true}},
		{"403", 403, `{"error_code":403,"error_message":"Not authorized to resource /ca/CN=Issuing."}`, want{forbidden: true, definitive: true, answer: true}},
		{"404", 404, `{"error_code":404,"error_message":"Certificate not found."}`, want{definitive: true, answer: true}},
		{"409", 409, `{"error_code":409,"error_message":"Certificate is already revoked."}`, want{definitive: true, answer: true}},
		{"429", 429, `{"error_code":429,"error_message":"slow down"}`, want{definitive: true, answer: true}},
		{"500", 500, `{"error_code":500,"error_message":"boom"}`, want{answer: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, c := startRecorder(t, func(string) (int, string) { return tc.status, tc.body })
			_, err := c.Revoke(ctxFor(t), "CN=Issuing", "01", ejbca.ReasonSuperseded, time.Time{})
			if err == nil {
				t.Fatal("Revoke succeeded")
			}
			got := want{ejbca.IsPending(err), ejbca.IsApprovalAlreadyExists(err), ejbca.IsForbidden(err), ejbca.IsDefinitive(err), ejbca.HasAnswer(err)}
			if got != tc.want {
				t.Errorf("%v: got %+v, want %+v", err, got, tc.want)
			}
			// Wrapped by a caller, the answer is classified the same.
			wrapped := fmt.Errorf("revoking: %w", err)
			if g := (want{ejbca.IsPending(wrapped), ejbca.IsApprovalAlreadyExists(wrapped), ejbca.IsForbidden(wrapped), ejbca.IsDefinitive(wrapped), ejbca.HasAnswer(wrapped)}); g != tc.want {
				t.Errorf("wrapped %v: got %+v, want %+v", err, g, tc.want)
			}
		})
	}
	// Neither an answer nor ours: nothing holds.
	for _, err := range []error{nil, errors.New("context canceled"), &ejbca.Error{Kind: ejbca.KindRetryable, Err: errors.New("connection refused")}} {
		if ejbca.IsPending(err) || ejbca.IsApprovalAlreadyExists(err) || ejbca.IsForbidden(err) || ejbca.IsDefinitive(err) || ejbca.HasAnswer(err) {
			t.Errorf("%v is classified as an answer", err)
		}
		if ejbca.TokenFailureOf(err) != ejbca.TokenNoAnswer {
			t.Errorf("TokenFailureOf(%v) = %v", err, ejbca.TokenFailureOf(err))
		}
	}
}

// EJBCA's refusals of an unknown CA or profile, as pkcs10enroll (named) and
// /v1/endentity (unnamed) word them, over a real socket. Which kind and
// name EJBCA refused is all this says; whose name it is is the caller's.
func TestUnknownNameOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		msg    string
		status int
		ok     bool
		want   ejbca.UnknownName
	}{
		{`Certificate profile with name "SERVER" doesn't exist`, 400, true, ejbca.UnknownName{Kind: ejbca.NameCertificateProfile, Named: true, Name: "SERVER"}},
		{`End Entity Profile of name "EMPTY" was not found`, 400, true, ejbca.UnknownName{Kind: ejbca.NameEndEntityProfile, Named: true, Name: "EMPTY"}},
		{`CA with name "IssuingCA" doesn't exist`, 400, true, ejbca.UnknownName{Kind: ejbca.NameCA, Named: true, Name: "IssuingCA"}},
		{`CA with name IssuingCA doesn't exist.`, 400, true, ejbca.UnknownName{Kind: ejbca.NameCA, Named: true, Name: "IssuingCA"}},
		{`Invalid request, unknown end entity profile.`, 400, true, ejbca.UnknownName{Kind: ejbca.NameEndEntityProfile}},
		{`Invalid request, unknown certificate profile.`, 400, true, ejbca.UnknownName{Kind: ejbca.NameCertificateProfile}},
		{`Invalid request, unknown CA.`, 400, true, ejbca.UnknownName{Kind: ejbca.NameCA}},
		// A name that is itself a refusal's wording stays the name.
		{`Certificate profile with name "Invalid request, unknown CA." doesn't exist`, 400, true,
			ejbca.UnknownName{Kind: ejbca.NameCertificateProfile, Named: true, Name: "Invalid request, unknown CA."}},
		{`Invalid certificate request`, 400, false, ejbca.UnknownName{}},
		{`Certificate profile with name "SERVER" doesn't exist`, 503, false, ejbca.UnknownName{}},
		{`Certificate profile with name "SERVER" doesn't exist`, 403, false, ejbca.UnknownName{}},
		{`refused: Certificate profile with name "SERVER" doesn't exist`, 400, false, ejbca.UnknownName{}},
	} {
		t.Run(fmt.Sprintf("%d %s", tc.status, tc.msg), func(t *testing.T) {
			t.Parallel()
			body := fmt.Sprintf(`{"error_code":%d,"error_message":%q}`, tc.status, tc.msg)
			_, c := startRecorder(t, func(string) (int, string) { return tc.status, body })
			_, err := c.Revoke(ctxFor(t), "CN=Issuing", "01", ejbca.ReasonSuperseded, time.Time{})
			got, ok := ejbca.UnknownNameOf(err)
			if ok != tc.ok || got != tc.want {
				t.Errorf("UnknownNameOf(%v) = %+v, %v; want %+v, %v", err, got, ok, tc.want, tc.ok)
			}
		})
	}
	if _, ok := ejbca.UnknownNameOf(errors.New(`Certificate profile with name "SERVER" doesn't exist`)); ok {
		t.Error("a message that is not EJBCA's answer was read as a refusal")
	}
}
