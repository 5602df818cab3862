package signing

import (
	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
)

// ownNames are the CA and profile names the issuer itself sent for a
// request; a profile the request chose through an allowed override is ""
// (a refusal of it is the request's fault, not the issuer's).
type ownNames struct {
	CA, CertificateProfile, EndEntityProfile string
}

// of is the issuer's own name of kind k, "" when the request chose it.
func (o ownNames) of(k ejbca.NameKind) string {
	switch k {
	case ejbca.NameCA:
		return o.CA
	case ejbca.NameCertificateProfile:
		return o.CertificateProfile
	case ejbca.NameEndEntityProfile:
		return o.EndEntityProfile
	}
	return ""
}

// issuerRefusal wraps err as an IssuerRefusedError when EJBCA refused a CA
// or profile name that is the issuer's own (ejbca.UnknownNameOf says which
// name EJBCA refused): named, it must be the issuer's name of that kind, so
// a requester who overrides a profile with the name of the issuer's CA or
// other profile cannot make EJBCA's refusal count as the issuer's; unnamed
// (the end entity API does not say which), the refused kind must not come
// from an override.
func issuerRefusal(err error, own ownNames) error {
	u, ok := ejbca.UnknownNameOf(err)
	if !ok {
		return err
	}
	n := own.of(u.Kind)
	if n != "" && (!u.Named || u.Name == n) {
		return &IssuerRefusedError{Err: err}
	}
	return err
}
