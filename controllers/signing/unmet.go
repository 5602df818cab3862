package signing

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
)

// UnmetRequest names what the request asked for, and could use, that the
// issued certificate does not carry: CA rights (spec.isCA) and each usage
// listed in spec.usages. EJBCA's certificate profile, not the request,
// decides both, so a request can silently get less than it asked for. Empty
// when everything asked for is there; a request without usages asks for none
// in particular. Usages the certificate's key type cannot have (key
// encipherment for an EC key) are not unmet: see usageDifferences.
func UnmetRequest(cr *cmapi.CertificateRequest, leaf *x509.Certificate) string {
	return lacking(usageDifferences(cr.Spec.IsCA, cr.Spec.Usages, leaf).Needed)
}

// usages is what an issued certificate lacks of the requested usages.
type usages struct {
	// Needed are what the request asked for and its key could use: isCA,
	// an extended key usage, a key usage of the key's algorithm, or a
	// usage we do not know. They can hurt the request.
	Needed []string
	// NotForKey are key usages the certificate's key type cannot have
	// (RFC 5480 §3: no key or data encipherment for an EC key; RFC 8410 §5:
	// only signing for Ed25519; RFC 4055/3279: no key agreement for RSA).
	// cert-manager asks for key encipherment by default whatever the key,
	// so a profile that leaves it out for EC keys is right, and it is the
	// issuer's configuration, not the request, that decides it.
	NotForKey []string
}

// usageDifferences compares what a request of any kind asked for with the
// issued certificate (a CertificateSigningRequest's usages have
// cert-manager's names).
func usageDifferences(isCA bool, requested []cmapi.KeyUsage, leaf *x509.Certificate) usages {
	var out usages
	if isCA && !leaf.IsCA {
		out.Needed = append(out.Needed, "isCA (the certificate is not a CA certificate)")
	}
	for _, u := range requested {
		if ku, ok := apiutil.KeyUsageType(u); ok {
			switch {
			case leaf.KeyUsage&ku != 0:
			case keyCannotHave(leaf.PublicKey, ku):
				out.NotForKey = append(out.NotForKey, "usage "+string(u))
			default:
				out.Needed = append(out.Needed, "usage "+string(u))
			}
			continue
		}
		if eku, ok := apiutil.ExtKeyUsageType(u); ok {
			if !slices.Contains(leaf.ExtKeyUsage, eku) && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageAny) {
				out.Needed = append(out.Needed, "usage "+string(u))
			}
			continue
		}
		out.Needed = append(out.Needed, fmt.Sprintf("usage %s (unknown)", u))
	}
	return out
}

// keyCannotHave reports a key usage the key's algorithm cannot perform, so a
// certificate profile rightly leaves it out.
func keyCannotHave(pub any, ku x509.KeyUsage) bool {
	const encipher = x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment
	switch pub.(type) {
	case *ecdsa.PublicKey:
		return ku&encipher != 0
	case ed25519.PublicKey:
		return ku&(encipher|x509.KeyUsageKeyAgreement|x509.KeyUsageEncipherOnly|x509.KeyUsageDecipherOnly) != 0
	case *rsa.PublicKey:
		return ku&(x509.KeyUsageKeyAgreement|x509.KeyUsageEncipherOnly|x509.KeyUsageDecipherOnly) != 0
	}
	return false
}

// lacking says what a certificate lacks, "" for nothing.
func lacking(what []string) string {
	if len(what) == 0 {
		return ""
	}
	return "it lacks " + strings.Join(what, ", ")
}
