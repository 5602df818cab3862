package controllers

import (
	"crypto/x509"
	"fmt"
	"strings"
	"unicode"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
)

// maxEndEntityName is the longest end entity name the issuer sends
// (EJBCA's username column holds 250 characters).
const maxEndEntityName = 250

// endEntityName chooses the EJBCA username of a request as the issuer's
// spec.endEntityName says; nothing a requester writes on the request can
// name another end entity. The namespace-qualified sources keep tenants
// apart: two namespaces never share an end entity. An override the issuer
// allows is placed in the request's namespace too.
func endEntityName(spec *v1alpha1.IssuerSpec, sr *SigningRequest, csr *x509.CertificateRequest) (string, error) {
	name, err := derivedEndEntityName(spec, sr, csr)
	if err != nil {
		return "", err
	}
	if len(name) > maxEndEntityName || strings.ContainsFunc(name, unicode.IsControl) {
		return "", fmt.Errorf("the end entity name %q is longer than %d characters or holds control characters", name, maxEndEntityName)
	}
	return name, nil
}

func derivedEndEntityName(spec *v1alpha1.IssuerSpec, sr *SigningRequest, csr *x509.CertificateRequest) (string, error) {
	if v, ok := endEntityOverride(spec, sr); ok {
		return sr.endEntityScope() + "/" + v, nil
	}
	switch src := spec.EffectiveEndEntityName(); src {
	case v1alpha1.EndEntityNameCertificateName:
		if name := sr.CertificateName; name != "" {
			return sr.endEntityScope() + "/" + name, nil
		}
		return ownEndEntityName(sr), nil
	case v1alpha1.EndEntityNameRequestName:
		return ownEndEntityName(sr), nil
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

// endEntityOverride is the request's end entity name annotation, when the
// issuer allows it. A cluster-scoped request (a Kubernetes CSR) has no
// namespace to place the override in, so any requester could name another
// one's end entity: it never overrides.
func endEntityOverride(spec *v1alpha1.IssuerSpec, sr *SigningRequest) (string, bool) {
	if !spec.AllowsOverride(v1alpha1.OverrideEndEntityName) || sr.Namespace == "" {
		return "", false
	}
	v := strings.TrimSpace(sr.Annotations[v1alpha1.AnnotationEndEntityName])
	return v, v != ""
}

// profiles returns the certificate and end entity profile of a request: the
// issuer's, or the request's annotations where the issuer allows them.
func profiles(spec *v1alpha1.IssuerSpec, sr *SigningRequest) (certificateProfile, endEntityProfile string) {
	certificateProfile, endEntityProfile = spec.EffectiveCertificateProfileName(), spec.EffectiveEndEntityProfileName()
	if spec.AllowsOverride(v1alpha1.OverrideCertificateProfileName) {
		if v := strings.TrimSpace(sr.Annotations[v1alpha1.AnnotationCertificateProfileName]); v != "" {
			certificateProfile = v
		}
	}
	if spec.AllowsOverride(v1alpha1.OverrideEndEntityProfileName) {
		if v := strings.TrimSpace(sr.Annotations[v1alpha1.AnnotationEndEntityProfileName]); v != "" {
			endEntityProfile = v
		}
	}
	return certificateProfile, endEntityProfile
}

// approvalEndEntityName is the end entity the approval flow adds. EJBCA's
// end entity API only adds (an existing name is refused), so a Certificate's
// renewals cannot reuse one end entity there: with the default
// certificateName source each request gets its own, <namespace>/<request>.
// Other sources (and an allowed override) are used as they are.
func approvalEndEntityName(spec *v1alpha1.IssuerSpec, sr *SigningRequest, username string) string {
	_, overridden := endEntityOverride(spec, sr)
	if spec.EffectiveEndEntityName() == v1alpha1.EndEntityNameCertificateName && !overridden {
		return ownEndEntityName(sr)
	}
	return username
}

// ownEndEntityName is the end entity named after the request itself:
// <namespace>/<request> for a CertificateRequest.
func ownEndEntityName(sr *SigningRequest) string {
	return sr.endEntityScope() + "/" + sr.Name
}

// endEntityScope is what qualifies names derived from the request: its
// namespace, or the scope its adapter set (a cluster-scoped request's).
func (sr *SigningRequest) endEntityScope() string {
	if sr.EndEntityScope != "" {
		return sr.EndEntityScope
	}
	return sr.Namespace
}
