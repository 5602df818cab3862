// Package v1alpha1 holds the EJBCAIssuer and EJBCAClusterIssuer API: where
// EJBCA is, how to authenticate to it and which CA and profiles sign.
// +kubebuilder:object:generate=true
// +groupName=ejbca-issuer.certctl.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the API group and version of both issuer kinds. The group
	// is what CertificateRequests name in spec.issuerRef.group.
	GroupVersion = schema.GroupVersion{Group: "ejbca-issuer.certctl.io", Version: "v1alpha1"}

	// SchemeBuilder registers the issuer kinds with a runtime.Scheme, with
	// apimachinery alone, so importing the API drags in no controller
	// machinery.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the issuer kinds to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &EJBCAIssuer{}, &EJBCAIssuerList{}, &EJBCAClusterIssuer{}, &EJBCAClusterIssuerList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
