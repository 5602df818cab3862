package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// EJBCAIssuer signs CertificateRequests of its own namespace with EJBCA. It
// reads its Secrets and ConfigMaps from that namespace only.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,shortName=ejbcaiss,categories=cert-manager
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="CA Expires",type=string,JSONPath=`.status.caNotAfter`
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type EJBCAIssuer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   IssuerSpec   `json:"spec"`
	Status IssuerStatus `json:"status,omitempty"`
}

// EJBCAIssuerList is a list of EJBCAIssuer.
// +kubebuilder:object:root=true
type EJBCAIssuerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []EJBCAIssuer `json:"items"`
}

// GetSpec returns the shared issuer spec.
func (i *EJBCAIssuer) GetSpec() *IssuerSpec { return &i.Spec }

// GetStatus returns the shared issuer status.
func (i *EJBCAIssuer) GetStatus() *IssuerStatus { return &i.Status }
