package signing

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode"

	"k8s.io/apimachinery/pkg/types"

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
	if i := strings.IndexAny(name, ejbcaStrippedChars); i >= 0 {
		return "", fmt.Errorf("the end entity name %q holds %q, which EJBCA replaces with '/' in usernames (its namespace separator here); choose a name without any of %q",
			name, name[i], ejbcaStrippedChars)
	}
	return name, nil
}

// ejbcaStrippedChars are the characters EJBCA replaces with '/' in a
// username before using it (org.cesecore.util.StringTools.stripUsername:
// the default forbidden characters of cesecore.properties plus '<' and '>',
// and '\', whose escapes it also turns into '/'). A name holding one could
// land, inside EJBCA, on another namespace's <namespace>/<name> end entity.
const ejbcaStrippedChars = ";!%`?$~<>\\"

// requesterNamed qualifies a name taken from the CSR (cn, dns, uri, ip) that
// holds the namespace separator: it is placed in the request's scope, as an
// allowed override is, so it never names another namespace's end entity.
// Names without one (every hostname and IP) are used as they are: they
// cannot be a <namespace>/<name>.
func requesterNamed(sr *SigningRequest, name string) string {
	if strings.Contains(name, "/") {
		return sr.endEntityScope() + "/" + name
	}
	return name
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
			return requesterNamed(sr, csr.Subject.CommonName), nil
		}
		return "", fmt.Errorf("the issuer's endEntityName is cn but the CSR has no common name")
	case v1alpha1.EndEntityNameDNS:
		if len(csr.DNSNames) > 0 {
			return requesterNamed(sr, csr.DNSNames[0]), nil
		}
		return "", fmt.Errorf("the issuer's endEntityName is dns but the CSR has no DNS name")
	case v1alpha1.EndEntityNameURI:
		if len(csr.URIs) > 0 {
			return requesterNamed(sr, csr.URIs[0].String()), nil
		}
		return "", fmt.Errorf("the issuer's endEntityName is uri but the CSR has no URI")
	case v1alpha1.EndEntityNameIP:
		if len(csr.IPAddresses) > 0 {
			return requesterNamed(sr, csr.IPAddresses[0].String()), nil
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
// <namespace>/<request> for a CertificateRequest, CSREndEntityName for a
// cluster-scoped CertificateSigningRequest.
func ownEndEntityName(sr *SigningRequest) string {
	if sr.Namespace == "" {
		return CSREndEntityName(sr.Name, sr.UID)
	}
	return sr.endEntityScope() + "/" + sr.Name
}

// CSREndEntityName is a CertificateSigningRequest's own end entity:
// certificates.k8s.io/<csr name>/<csr uid>. The UID keeps a name reused
// later, by anyone, off the earlier CSR's end entity; a long name is
// shortened (with a hash of it) to fit EJBCA's 250 characters.
func CSREndEntityName(name string, uid types.UID) string {
	room := maxEndEntityName - len(v1alpha1.CSREndEntityScope) - len(uid) - 2
	if len(name) > room {
		sum := sha256.Sum256([]byte(name))
		name = name[:room-9] + "-" + hex.EncodeToString(sum[:4])
	}
	return v1alpha1.CSREndEntityScope + "/" + name + "/" + string(uid)
}

// endEntityScope is what qualifies names derived from the request: its
// namespace, or the scope its adapter set (a cluster-scoped request's).
func (sr *SigningRequest) endEntityScope() string {
	if sr.EndEntityScope != "" {
		return sr.EndEntityScope
	}
	return sr.Namespace
}
