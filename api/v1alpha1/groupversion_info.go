// Package v1alpha1 holds the EJBCAIssuer and EJBCAClusterIssuer API: where
// EJBCA is, how to authenticate to it and which CA and profiles sign.
// +kubebuilder:object:generate=true
// +groupName=ejbca-issuer.certctl.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the API group and version of both issuer kinds. The group
	// is what CertificateRequests name in spec.issuerRef.group.
	GroupVersion = schema.GroupVersion{Group: "ejbca-issuer.certctl.io", Version: "v1alpha1"}

	// SchemeBuilder registers the issuer kinds with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the issuer kinds to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
