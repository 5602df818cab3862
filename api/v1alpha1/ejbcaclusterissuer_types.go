package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// EJBCAClusterIssuer signs CertificateRequests of every namespace with EJBCA.
// It reads its Secrets and ConfigMaps from the controller's cluster resource
// namespace only.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=ejbcaciss,categories=cert-manager
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="CA Expires",type=string,JSONPath=`.status.caNotAfter`
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type EJBCAClusterIssuer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   IssuerSpec   `json:"spec"`
	Status IssuerStatus `json:"status,omitempty"`
}

// EJBCAClusterIssuerList is a list of EJBCAClusterIssuer.
// +kubebuilder:object:root=true
type EJBCAClusterIssuerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []EJBCAClusterIssuer `json:"items"`
}

// GetSpec returns the shared issuer spec.
func (i *EJBCAClusterIssuer) GetSpec() *IssuerSpec { return &i.Spec }

// GetStatus returns the shared issuer status.
func (i *EJBCAClusterIssuer) GetStatus() *IssuerStatus { return &i.Status }
