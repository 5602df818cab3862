package testkit

import (
	"strings"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
)

// IssuerRef refers to one of our issuers: kind is v1alpha1.IssuerKind or
// v1alpha1.ClusterIssuerKind.
func IssuerRef(kind, name string) cmmeta.IssuerReference {
	return cmmeta.IssuerReference{Group: v1alpha1.GroupVersion.Group, Kind: kind, Name: name}
}

// objectMeta names an object: a name ending in "-" is a generateName.
func objectMeta(namespace, name string) metav1.ObjectMeta {
	if strings.HasSuffix(name, "-") {
		return metav1.ObjectMeta{Namespace: namespace, GenerateName: name}
	}
	return metav1.ObjectMeta{Namespace: namespace, Name: name}
}

// CertificateRequest is a request for csrPEM from ref, as cert-manager makes
// them (usages digital signature and server auth), changed by opts; it is
// not created. A name ending in "-" is a generateName.
func CertificateRequest(namespace, name string, csrPEM []byte, ref cmmeta.IssuerReference, opts ...func(*cmapi.CertificateRequest)) *cmapi.CertificateRequest {
	cr := &cmapi.CertificateRequest{
		ObjectMeta: objectMeta(namespace, name),
		Spec: cmapi.CertificateRequestSpec{
			Request:   csrPEM,
			IssuerRef: ref,
			Usages:    []cmapi.KeyUsage{cmapi.UsageDigitalSignature, cmapi.UsageServerAuth},
		},
	}
	for _, o := range opts {
		o(cr)
	}
	return cr
}

// CertificateSigningRequest is a Kubernetes CSR for csrPEM to signer
// (usages digital signature and server auth), changed by opts; it is not
// created. A name ending in "-" is a generateName.
func CertificateSigningRequest(name, signer string, csrPEM []byte, opts ...func(*certificatesv1.CertificateSigningRequest)) *certificatesv1.CertificateSigningRequest {
	c := &certificatesv1.CertificateSigningRequest{
		ObjectMeta: objectMeta("", name),
		Spec: certificatesv1.CertificateSigningRequestSpec{Request: csrPEM, SignerName: signer,
			Usages: []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth}},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}
