package controllers

import (
	"errors"
	"testing"

	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
)

func TestIssuerRefusal(t *testing.T) {
	own := []string{"IssuingCA", "SERVER", "EMPTY"}
	for _, tc := range []struct {
		msg        string
		status     int
		overridden bool
		want       bool
	}{
		{`Certificate profile with name "SERVER" doesn't exist`, 400, false, true},
		{`Certificate profile with name "NOPE" doesn't exist`, 400, false, false}, // a profile the request chose
		{`End Entity Profile of name "EMPTY" was not found`, 400, false, true},
		{`CA with name "IssuingCA" doesn't exist`, 400, false, true},
		{`CA with name IssuingCA doesn't exist.`, 400, false, true},
		{`Invalid request, unknown end entity profile.`, 400, false, true},
		{`Invalid request, unknown certificate profile.`, 400, true, false},
		{`Invalid certificate request`, 400, false, false},
		{`Certificate profile with name "SERVER" doesn't exist`, 503, false, false},
	} {
		err := issuerRefusal(&ejbca.Error{StatusCode: tc.status, Kind: ejbca.KindPermanent, Message: tc.msg}, tc.overridden, own...)
		var refused *IssuerRefusedError
		if got := errors.As(err, &refused); got != tc.want {
			t.Errorf("%d %q (overridden %v): issuer's fault %v, want %v", tc.status, tc.msg, tc.overridden, got, tc.want)
		}
	}
}
