package controllers

import (
	"errors"
	"regexp"

	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
)

// ownNames are the CA and profile names the issuer itself sent for a
// request; a profile the request chose through an allowed override is ""
// (a refusal of it is the request's fault, not the issuer's).
type ownNames struct {
	CA, CertificateProfile, EndEntityProfile string
}

// EJBCA's refusals that name an unknown CA or profile: pkcs10enroll's
// (EjbcaRestHelperSessionBean, with the name) and /v1/endentity's
// (EndEntityRestResource, without). Each is matched only against the
// issuer's own name of its kind, so a requester who overrides a profile
// with the name of the issuer's CA or other profile cannot make EJBCA's
// refusal count as the issuer's.
var (
	unknownNamed = []struct {
		re  *regexp.Regexp
		own func(ownNames) string
	}{
		{regexp.MustCompile(`^CA with name "?(.*?)"? doesn't exist`), func(o ownNames) string { return o.CA }},
		{regexp.MustCompile(`^Certificate profile with name "(.*)" doesn't exist`), func(o ownNames) string { return o.CertificateProfile }},
		{regexp.MustCompile(`^End Entity Profile of name "(.*)" was not found`), func(o ownNames) string { return o.EndEntityProfile }},
	}
	unknownUnnamed = regexp.MustCompile(`^Invalid request, unknown (end entity profile|certificate profile|CA)\.`)
)

// issuerRefusal wraps err as an IssuerRefusedError when EJBCA refused a CA
// or profile name that is the issuer's own: named, it must be the issuer's
// name of that kind; unnamed (the end entity API does not say which), the
// refused kind must not come from an override.
func issuerRefusal(err error, own ownNames) error {
	var e *ejbca.Error
	if !errors.As(err, &e) || e.StatusCode != 400 {
		return err
	}
	for _, u := range unknownNamed {
		if m := u.re.FindStringSubmatch(e.Message); m != nil {
			if n := u.own(own); n != "" && m[1] == n {
				return &IssuerRefusedError{Err: err}
			}
			return err
		}
	}
	if m := unknownUnnamed.FindStringSubmatch(e.Message); m != nil {
		ownName := map[string]string{"CA": own.CA, "certificate profile": own.CertificateProfile, "end entity profile": own.EndEntityProfile}[m[1]]
		if ownName != "" {
			return &IssuerRefusedError{Err: err}
		}
	}
	return err
}
