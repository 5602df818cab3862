package controllers

import (
	"crypto/x509"
	"fmt"
	"slices"
	"strings"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
)

// UnmetRequest names what the request asked for that the issued
// certificate does not carry: CA rights (spec.isCA) and each usage listed
// in spec.usages. EJBCA's certificate profile, not the request, decides
// both, so a request can silently get less than it asked for. Empty when
// everything asked for is there; a request without usages asks for none in
// particular.
func UnmetRequest(cr *cmapi.CertificateRequest, leaf *x509.Certificate) string {
	return unmet(cr.Spec.IsCA, cr.Spec.Usages, leaf)
}

// unmet is UnmetRequest for a request of any kind (a
// CertificateSigningRequest's usages have cert-manager's names).
func unmet(isCA bool, usages []cmapi.KeyUsage, leaf *x509.Certificate) string {
	var missing []string
	if isCA && !leaf.IsCA {
		missing = append(missing, "isCA (the certificate is not a CA certificate)")
	}
	for _, u := range usages {
		if ku, ok := apiutil.KeyUsageType(u); ok {
			if leaf.KeyUsage&ku == 0 {
				missing = append(missing, "usage "+string(u))
			}
			continue
		}
		if eku, ok := apiutil.ExtKeyUsageType(u); ok {
			if !slices.Contains(leaf.ExtKeyUsage, eku) && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageAny) {
				missing = append(missing, "usage "+string(u))
			}
			continue
		}
		missing = append(missing, fmt.Sprintf("usage %s (unknown)", u))
	}
	if len(missing) == 0 {
		return ""
	}
	return "it lacks " + strings.Join(missing, ", ")
}
