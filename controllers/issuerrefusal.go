package controllers

import (
	"errors"
	"regexp"

	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
)

// EJBCA's refusals that name an unknown CA or profile: pkcs10enroll's
// (EjbcaRestHelperSessionBean, with the name) and /v1/endentity's
// (EndEntityRestResource, without).
var (
	unknownNamed = []*regexp.Regexp{
		regexp.MustCompile(`^CA with name "?(.*?)"? doesn't exist`),
		regexp.MustCompile(`^Certificate profile with name "(.*)" doesn't exist`),
		regexp.MustCompile(`^End Entity Profile of name "(.*)" was not found`),
	}
	unknownUnnamed = regexp.MustCompile(`^Invalid request, unknown (end entity profile|certificate profile|CA)\.`)
)

// issuerRefusal wraps err as an IssuerRefusedError when EJBCA refused a CA
// or profile name that is the issuer's own: named, it must be one of names;
// unnamed (the end entity API does not say which), none of the request's
// names may come from an override.
func issuerRefusal(err error, overridden bool, names ...string) error {
	var e *ejbca.Error
	if !errors.As(err, &e) || e.StatusCode != 400 {
		return err
	}
	for _, re := range unknownNamed {
		if m := re.FindStringSubmatch(e.Message); m != nil {
			for _, n := range names {
				if m[1] == n {
					return &IssuerRefusedError{Err: err}
				}
			}
			return err
		}
	}
	if unknownUnnamed.MatchString(e.Message) && !overridden {
		return &IssuerRefusedError{Err: err}
	}
	return err
}
