package signing

import (
	"errors"
	"testing"

	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
)

func TestIssuerRefusal(t *testing.T) {
	own := ownNames{CA: "IssuingCA", CertificateProfile: "SERVER", EndEntityProfile: "EMPTY"}
	// The request overrode both profiles (with names it chose).
	overridden := ownNames{CA: "IssuingCA"}
	for _, tc := range []struct {
		msg    string
		status int
		own    ownNames
		want   bool
	}{
		{`Certificate profile with name "SERVER" doesn't exist`, 400, own, true},
		{`Certificate profile with name "NOPE" doesn't exist`, 400, own, false}, // not the issuer's
		{`End Entity Profile of name "EMPTY" was not found`, 400, own, true},
		{`CA with name "IssuingCA" doesn't exist`, 400, own, true},
		{`CA with name IssuingCA doesn't exist.`, 400, own, true},
		{`Invalid request, unknown end entity profile.`, 400, own, true},
		{`Invalid request, unknown certificate profile.`, 400, overridden, false},
		{`Invalid request, unknown end entity profile.`, 400, overridden, false},
		{`Invalid request, unknown CA.`, 400, overridden, true}, // the CA is never overridden
		{`Invalid certificate request`, 400, own, false},
		{`Certificate profile with name "SERVER" doesn't exist`, 503, own, false},
		// Hostile: a requester allowed to override a profile names another
		// of the issuer's own names; EJBCA's refusal is the request's fault.
		{`Certificate profile with name "IssuingCA" doesn't exist`, 400, overridden, false},
		{`Certificate profile with name "EMPTY" doesn't exist`, 400, ownNames{CA: "IssuingCA", EndEntityProfile: "EMPTY"}, false},
		{`End Entity Profile of name "SERVER" was not found`, 400, ownNames{CA: "IssuingCA", CertificateProfile: "SERVER"}, false},
		{`End Entity Profile of name "IssuingCA" was not found`, 400, overridden, false},
	} {
		err := issuerRefusal(&ejbca.Error{StatusCode: tc.status, Kind: ejbca.KindPermanent, Message: tc.msg}, tc.own)
		var refused *IssuerRefusedError
		if got := errors.As(err, &refused); got != tc.want {
			t.Errorf("%d %q (own %+v): issuer's fault %v, want %v", tc.status, tc.msg, tc.own, got, tc.want)
		}
	}
}

// A PermanentError keeps what it was found from: callers still see EJBCA's
// refusal through it.
func TestPermanentErrorUnwraps(t *testing.T) {
	inner := &ejbca.Error{StatusCode: 403, Kind: ejbca.KindUnauthorized, Message: "Not authorized to profile OTHER"}
	err := error(&PermanentError{Msg: "EJBCA refused the profile this request chose", Err: inner})
	var e *ejbca.Error
	if !errors.As(err, &e) || e != inner || !ejbca.IsForbidden(err) {
		t.Errorf("PermanentError does not unwrap to the EJBCA refusal it wraps: %v", err)
	}
	if errors.Unwrap(&PermanentError{Msg: "no cause"}) != nil {
		t.Error("a PermanentError without a cause unwraps to something")
	}
}
