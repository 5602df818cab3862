package controllers

import (
	"crypto/x509"
	"fmt"
	"strings"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
)

// endEntityName chooses the EJBCA username of a request as the issuer's
// spec.endEntityName says. The namespace-qualified sources keep tenants
// apart: two namespaces never share an end entity.
func endEntityName(spec *v1alpha1.IssuerSpec, cr *cmapi.CertificateRequest, csr *x509.CertificateRequest) (string, error) {
	if spec.AllowsOverride(v1alpha1.OverrideEndEntityName) {
		if v := strings.TrimSpace(cr.Annotations[v1alpha1.AnnotationEndEntityName]); v != "" {
			return v, nil
		}
	}
	switch src := spec.EffectiveEndEntityName(); src {
	case v1alpha1.EndEntityNameCertificateName:
		if name := cr.Annotations[cmapi.CertificateNameKey]; name != "" {
			return cr.Namespace + "/" + name, nil
		}
		return cr.Namespace + "/" + cr.Name, nil
	case v1alpha1.EndEntityNameRequestName:
		return cr.Namespace + "/" + cr.Name, nil
	case v1alpha1.EndEntityNameCN:
		if csr.Subject.CommonName != "" {
			return csr.Subject.CommonName, nil
		}
		return "", fmt.Errorf("the issuer's endEntityName is cn but the CSR has no common name")
	case v1alpha1.EndEntityNameDNS:
		if len(csr.DNSNames) > 0 {
			return csr.DNSNames[0], nil
		}
		return "", fmt.Errorf("the issuer's endEntityName is dns but the CSR has no DNS name")
	case v1alpha1.EndEntityNameURI:
		if len(csr.URIs) > 0 {
			return csr.URIs[0].String(), nil
		}
		return "", fmt.Errorf("the issuer's endEntityName is uri but the CSR has no URI")
	case v1alpha1.EndEntityNameIP:
		if len(csr.IPAddresses) > 0 {
			return csr.IPAddresses[0].String(), nil
		}
		return "", fmt.Errorf("the issuer's endEntityName is ip but the CSR has no IP address")
	default:
		return "", fmt.Errorf("unknown endEntityName source %q", src)
	}
}

// profiles returns the certificate and end entity profile of a request: the
// issuer's, or the request's annotations where the issuer allows them.
func profiles(spec *v1alpha1.IssuerSpec, cr *cmapi.CertificateRequest) (certificateProfile, endEntityProfile string) {
	certificateProfile, endEntityProfile = spec.CertificateProfileName, spec.EndEntityProfileName
	if spec.AllowsOverride(v1alpha1.OverrideCertificateProfileName) {
		if v := strings.TrimSpace(cr.Annotations[v1alpha1.AnnotationCertificateProfileName]); v != "" {
			certificateProfile = v
		}
	}
	if spec.AllowsOverride(v1alpha1.OverrideEndEntityProfileName) {
		if v := strings.TrimSpace(cr.Annotations[v1alpha1.AnnotationEndEntityProfileName]); v != "" {
			endEntityProfile = v
		}
	}
	return certificateProfile, endEntityProfile
}

// subjectAltName renders a CSR's SANs the way EJBCA's end entity API takes them.
func subjectAltName(csr *x509.CertificateRequest) string {
	var parts []string
	for _, d := range csr.DNSNames {
		parts = append(parts, "dNSName="+d)
	}
	for _, ip := range csr.IPAddresses {
		parts = append(parts, "iPAddress="+ip.String())
	}
	for _, u := range csr.URIs {
		parts = append(parts, "uniformResourceIdentifier="+u.String())
	}
	for _, e := range csr.EmailAddresses {
		parts = append(parts, "rfc822name="+e)
	}
	return strings.Join(parts, ", ")
}

// subjectDN is the CSR's subject, or a CN from its first name when the CSR
// has only SANs (EJBCA's end entities need a DN).
func subjectDN(csr *x509.CertificateRequest, username string) string {
	if dn := csr.Subject.String(); dn != "" {
		return dn
	}
	switch {
	case len(csr.DNSNames) > 0:
		return "CN=" + csr.DNSNames[0]
	case len(csr.URIs) > 0:
		return "CN=" + csr.URIs[0].String()
	case len(csr.IPAddresses) > 0:
		return "CN=" + csr.IPAddresses[0].String()
	}
	return "CN=" + username
}

// approvalEndEntityName is the end entity the approval flow adds. EJBCA's
// end entity API only adds (an existing name is refused), so a Certificate's
// renewals cannot reuse one end entity there: with the default
// certificateName source each request gets its own, <namespace>/<request>.
// Other sources (and an allowed override) are used as they are.
func approvalEndEntityName(spec *v1alpha1.IssuerSpec, cr *cmapi.CertificateRequest, username string) string {
	overridden := spec.AllowsOverride(v1alpha1.OverrideEndEntityName) && strings.TrimSpace(cr.Annotations[v1alpha1.AnnotationEndEntityName]) != ""
	if spec.EffectiveEndEntityName() == v1alpha1.EndEntityNameCertificateName && !overridden {
		return cr.Namespace + "/" + cr.Name
	}
	return username
}
