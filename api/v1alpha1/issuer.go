package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Kind names, as CertificateRequests carry them in spec.issuerRef.kind.
const (
	IssuerKind        = "EJBCAIssuer"
	ClusterIssuerKind = "EJBCAClusterIssuer"
)

// Issuer is either kind of issuer, so one reconciler and one signer serve both.
// +kubebuilder:object:generate=false
type Issuer interface {
	client.Object
	GetSpec() *IssuerSpec
	GetStatus() *IssuerStatus
}

// Defaults applied by the controller when a field is unset (the API server
// applies the CRD defaults; these cover objects built in Go).
const (
	DefaultApprovalPollInterval = 5 * time.Minute
	DefaultApprovalMaxWait      = 7 * 24 * time.Hour
	// DefaultRevocationGracePeriod is how long a superseded certificate
	// stays valid after its successor was issued.
	DefaultRevocationGracePeriod = time.Hour
	// DefaultCertificateProfileName and DefaultEndEntityProfileName are
	// EJBCA's built-in profiles; EJBCA itself has no default for either.
	DefaultCertificateProfileName = "ENDUSER"
	DefaultEndEntityProfileName   = "EMPTY"
)

// EffectiveCertificateProfileName is the certificate profile with the default applied.
func (s *IssuerSpec) EffectiveCertificateProfileName() string {
	if s.CertificateProfileName == "" {
		return DefaultCertificateProfileName
	}
	return s.CertificateProfileName
}

// EffectiveEndEntityProfileName is the end entity profile with the default applied.
func (s *IssuerSpec) EffectiveEndEntityProfileName() string {
	if s.EndEntityProfileName == "" {
		return DefaultEndEntityProfileName
	}
	return s.EndEntityProfileName
}

// FailsUnmetRequests reports whether a certificate lacking what its request
// asked for fails the request instead of only warning.
func (s *IssuerSpec) FailsUnmetRequests() bool { return s.UnmetRequest == UnmetRequestFail }

// ApprovalPollInterval is the cap on the approval polling schedule.
func (s *IssuerSpec) ApprovalPollInterval() time.Duration {
	if s.Approval != nil && s.Approval.PollInterval != nil && s.Approval.PollInterval.Duration > 0 {
		return s.Approval.PollInterval.Duration
	}
	return DefaultApprovalPollInterval
}

// ApprovalMaxWait is how long a request may wait for EJBCA approval.
func (s *IssuerSpec) ApprovalMaxWait() time.Duration {
	if s.Approval != nil && s.Approval.MaxWait != nil && s.Approval.MaxWait.Duration > 0 {
		return s.Approval.MaxWait.Duration
	}
	return DefaultApprovalMaxWait
}

// RevocationGracePeriod is the grace period of superseded certificates.
func (s *IssuerSpec) RevocationGracePeriod() time.Duration {
	if s.Revocation != nil && s.Revocation.GracePeriod != nil && s.Revocation.GracePeriod.Duration >= 0 {
		return s.Revocation.GracePeriod.Duration
	}
	return DefaultRevocationGracePeriod
}

// RevokesSuperseded reports whether superseded certificates are revoked.
func (s *IssuerSpec) RevokesSuperseded() bool { return s.Revocation != nil && s.Revocation.Superseded }

// RevokesDeleted reports whether certificates of deleted Certificates are
// revoked.
func (s *IssuerSpec) RevokesDeleted() bool { return s.Revocation != nil && s.Revocation.Deleted }

// AlwaysUseApprovalFlow reports whether enrolment starts with the approval flow.
func (s *IssuerSpec) AlwaysUseApprovalFlow() bool {
	return s.Approval != nil && s.Approval.Flow == ApprovalFlowAlways
}

// AllowsOverride reports whether the request annotation for o is honoured.
func (s *IssuerSpec) AllowsOverride(o Override) bool {
	for _, a := range s.AllowedOverrides {
		if a == o {
			return true
		}
	}
	return false
}

// EffectiveAuthMode is the auth mode with the default applied.
func (s *IssuerSpec) EffectiveAuthMode() AuthMode {
	if s.Auth.Mode == "" {
		return AuthModeMTLS
	}
	return s.Auth.Mode
}

// EffectiveEndEntityName is the end entity name source with the default applied.
func (s *IssuerSpec) EffectiveEndEntityName() EndEntityNameSource {
	if s.EndEntityName == "" {
		return EndEntityNameCertificateName
	}
	return s.EndEntityName
}

// ReadyCondition returns the issuer's Ready condition, or nil.
func (s *IssuerStatus) ReadyCondition() *metav1.Condition {
	for i := range s.Conditions {
		if s.Conditions[i].Type == ConditionReady {
			return &s.Conditions[i]
		}
	}
	return nil
}

// IsReady reports whether the issuer was checked healthy at its current
// generation; a Ready condition from an older spec does not count.
func IsReady(i Issuer) bool {
	c := i.GetStatus().ReadyCondition()
	return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == i.GetGeneration()
}

// NewIssuer is an empty issuer of kind (IssuerKind or ClusterIssuerKind),
// and false for any other kind: the one place that maps a kind name to its
// type.
func NewIssuer(kind string) (Issuer, bool) {
	switch kind {
	case IssuerKind:
		return &EJBCAIssuer{}, true
	case ClusterIssuerKind:
		return &EJBCAClusterIssuer{}, true
	}
	return nil, false
}

// IssuerKey is where an issuer of kind named name is found for a request in
// namespace: an EJBCAIssuer in the request's namespace, an
// EJBCAClusterIssuer in none.
func IssuerKey(kind, namespace, name string) client.ObjectKey {
	if kind == ClusterIssuerKind {
		namespace = ""
	}
	return client.ObjectKey{Namespace: namespace, Name: name}
}

// KindOf is the kind name of an issuer object.
func KindOf(iss Issuer) string {
	if _, ok := iss.(*EJBCAClusterIssuer); ok {
		return ClusterIssuerKind
	}
	return IssuerKind
}

// Keys are the Secret keys holding the client id and secret, with their
// defaults where unset (also on a nil ref, for messages).
func (r *ClientSecretRef) Keys() (clientID, clientSecret string) {
	clientID, clientSecret = "client_id", "client_secret"
	if r != nil && r.ClientIDKey != "" {
		clientID = r.ClientIDKey
	}
	if r != nil && r.ClientSecretKey != "" {
		clientSecret = r.ClientSecretKey
	}
	return clientID, clientSecret
}
