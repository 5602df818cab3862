package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// IssuerSpec is shared by EJBCAIssuer and EJBCAClusterIssuer: it says which
// EJBCA to call, how to authenticate and which CA and profiles sign.
//
// Secrets and ConfigMaps are named without a namespace: an EJBCAIssuer reads
// them from its own namespace, an EJBCAClusterIssuer from the controller's
// cluster resource namespace. No field can point at another namespace.
// +kubebuilder:validation:XValidation:rule="!has(self.urls) || !self.urls.exists(u, u == self.url || u + '/' == self.url || u == self.url + '/')",message="urls lists the EJBCA nodes after url: do not repeat url in it"
type IssuerSpec struct {
	// URL of EJBCA's REST API. Either the server alone
	// (https://ejbca.example.com:8443), to which /ejbca/ejbca-rest-api is
	// appended, or the full base path when EJBCA sits behind a proxy
	// (https://pki.example.com/ejbca/ejbca-rest-api). HTTPS only.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.startsWith('https://')",message="url must start with https:// (EJBCA's REST API is only served over TLS), e.g. https://ejbca.example.com:8443"
	// +kubebuilder:validation:XValidation:rule="!self.contains('#')",message="url must not carry a fragment (the part from '#'): give https://host[:port][/path]"
	// +kubebuilder:validation:XValidation:rule="self.contains('#') || (isURL(self) && url(self).getHostname() != '')",message="url must be an absolute URL with a host, e.g. https://ejbca.example.com:8443"
	// +kubebuilder:validation:XValidation:rule="!isURL(self) || url(self).getQuery().size() == 0",message="url must not carry a query string"
	URL string `json:"url"`

	// URLs lists further nodes of the same EJBCA, after url: nodes sharing
	// one database (EJBCA Enterprise's cluster, or RA nodes in front of one
	// CA), each written like url. url stays the first node and is always
	// required, so an issuer with url alone is unchanged; with urls, the
	// issuer's nodes are [url, urls...] in that order. Every call goes to the
	// first node believed usable; one that cannot be reached, fails TLS,
	// times out or answers 5xx is set aside for a while and the call moves on
	// to the next node. An enrolment that got no answer is never sent to
	// another node: it is searched for first (the nodes share a database),
	// as with one node. The CA bundle and credentials apply to every node.
	// At most 4 (5 nodes in all); no repeats, and not url again.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=4
	URLs []NodeURL `json:"urls,omitempty"`

	// CAName is the name of the CA in EJBCA that signs certificates (the CA's
	// name as listed by EJBCA, not its subject DN).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	CAName string `json:"caName"`

	// CertificateProfileName is the EJBCA certificate profile used for
	// enrolment. It is always sent to EJBCA (which has no default of its own:
	// a missing name is refused as profile "null"). Default ENDUSER, EJBCA's
	// built-in end-user certificate profile.
	// +optional
	// +kubebuilder:default=ENDUSER
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	CertificateProfileName string `json:"certificateProfileName,omitempty"`

	// EndEntityProfileName is the EJBCA end entity profile used for
	// enrolment. It is always sent to EJBCA. Default EMPTY, EJBCA's built-in
	// end entity profile that allows any subject.
	// +optional
	// +kubebuilder:default=EMPTY
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	EndEntityProfileName string `json:"endEntityProfileName,omitempty"`

	// EndEntityName says how the EJBCA end entity (username) of a request is
	// chosen:
	//   certificateName: <namespace>/<Certificate name> (the default); every
	//     renewal of a Certificate updates the same end entity and two
	//     namespaces never share one.
	//   requestName: <namespace>/<CertificateRequest name>; one end entity
	//     per request.
	//   cn, dns, uri, ip: the CSR's common name, or its first DNS name, URI or
	//     IP address. These are not namespace-qualified: requests with the same
	//     value share an end entity, whichever namespace they come from.
	// +optional
	// +kubebuilder:default=certificateName
	EndEntityName EndEntityNameSource `json:"endEntityName,omitempty"`

	// UseRequestedDuration sends the CertificateRequest's spec.duration to
	// EJBCA as the certificate's end time. It needs EJBCA 9.3.3 or later and
	// a certificate profile that allows validity override; otherwise the
	// profile's validity applies.
	// +optional
	UseRequestedDuration bool `json:"useRequestedDuration,omitempty"`

	// Auth says how the issuer authenticates to EJBCA.
	Auth AuthSpec `json:"auth"`

	// CABundle holds the PEM roots that verify EJBCA's TLS certificate and the
	// OAuth2 token endpoint. When unset, the system roots are used.
	// +optional
	CABundle *CABundle `json:"caBundle,omitempty"`

	// Approval tunes requests that need an EJBCA administrator's approval.
	// +optional
	Approval *ApprovalSpec `json:"approval,omitempty"`

	// AllowedOverrides lists the per-request annotations honoured by this
	// issuer. Annotations not listed here are ignored, so a tenant cannot
	// pick another profile or end entity unless the issuer's owner allows it:
	//   certificateProfileName: ejbca-issuer.certctl.io/certificate-profile-name
	//   endEntityProfileName:   ejbca-issuer.certctl.io/end-entity-profile-name
	//   endEntityName:          ejbca-issuer.certctl.io/end-entity-name
	// An allowed end entity name is always placed in the request's
	// namespace (<namespace>/<value>), so it never reaches another
	// namespace's end entities.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=3
	AllowedOverrides []Override `json:"allowedOverrides,omitempty"`

	// RateLimit bounds the calls this issuer makes to EJBCA (enrolments,
	// searches, approval polls and its health checks), shared by every
	// worker and request of the issuer, so that a renewal storm cannot
	// overload EJBCA. A request held back stays Pending and says so; it is
	// never Failed for it. Unset: the manager's --ejbca-qps, --ejbca-burst
	// and --ejbca-max-concurrent (no limit unless set).
	// +optional
	RateLimit *RateLimit `json:"rateLimit,omitempty"`

	// UnmetRequest says what happens when the certificate EJBCA issued does
	// not carry what the request asked for (spec.isCA, or spec.usages that
	// the certificate profile does not set):
	//   Warn (the default): the certificate is stored and a Warning event on
	//     the CertificateRequest names each difference.
	//   Fail: the request is Failed with a message naming each difference and
	//     the serial EJBCA issued, so it can be revoked in EJBCA.
	// +optional
	// +kubebuilder:default=Warn
	UnmetRequest UnmetRequestPolicy `json:"unmetRequest,omitempty"`

	// Revocation makes the manager revoke, in EJBCA, certificates this
	// issuer issued once they are no longer needed. Unset (the default):
	// nothing is ever revoked, not even on request. Set (even empty): a
	// CertificateRequest annotated ejbca-issuer.certctl.io/revoke=<reason>
	// is revoked with that reason. The EJBCA role of the issuer's
	// credentials needs revoke rights: /ra_functionality/revoke_end_entity
	// and /endentityprofilesrules/<profile>/revoke_end_entity, besides its
	// CA; without them EJBCA answers 403 and revocations wait and retry.
	// See docs/revocation.md.
	// +optional
	Revocation *RevocationSpec `json:"revocation,omitempty"`
}

// NodeURL is one EJBCA node's URL in urls, written like url.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=2048
// +kubebuilder:validation:XValidation:rule="self.startsWith('https://')",message="each of urls must start with https:// (EJBCA's REST API is only served over TLS), e.g. https://ejbca-2.example.com:8443"
// +kubebuilder:validation:XValidation:rule="!self.contains('#')",message="each of urls must not carry a fragment (the part from '#'): give https://host[:port][/path]"
// +kubebuilder:validation:XValidation:rule="self.contains('#') || (isURL(self) && size(url(self).getHostname()) > 0)",message="each of urls must be an absolute URL with a host, e.g. https://ejbca-2.example.com:8443"
// +kubebuilder:validation:XValidation:rule="!isURL(self) || url(self).getQuery().size() == 0",message="each of urls must not carry a query string"
type NodeURL string

// NodeURLs is the issuer's EJBCA nodes in order of preference: url, then urls.
func (s *IssuerSpec) NodeURLs() []string {
	out := make([]string, 0, 1+len(s.URLs))
	out = append(out, s.URL)
	for _, u := range s.URLs {
		out = append(out, string(u))
	}
	return out
}

// RevocationSpec says when certificates this issuer issued are revoked in
// EJBCA. A certificate is revoked at most once and never while the
// Certificate's Secret still holds it, unless a user asked explicitly.
type RevocationSpec struct {
	// Superseded revokes a certificate, with reason SUPERSEDED, once a newer
	// revision of its Certificate was issued and stored in the Certificate's
	// Secret, gracePeriod after that newer one was issued.
	// +optional
	Superseded bool `json:"superseded,omitempty"`

	// Deleted revokes a certificate, with reason CESSATION_OF_OPERATION,
	// when its Certificate is deleted (or, for a CertificateRequest made
	// without a Certificate, when the request is deleted). Requests issued
	// while this is on carry the finalizer
	// ejbca-issuer.certctl.io/revocation, so a deletion the manager did not
	// see is still handled; the manager's --revocation-abandon-after (24h)
	// bounds how long a deletion waits for EJBCA.
	// +optional
	Deleted bool `json:"deleted,omitempty"`

	// GracePeriod is how long a superseded certificate stays valid after its
	// successor was issued, for workloads to load the new one. Default 1h.
	// +optional
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s')",message="revocation.gracePeriod must not be negative"
	GracePeriod *metav1.Duration `json:"gracePeriod,omitempty"`
}

// RateLimit is a token bucket of calls to EJBCA and a bound on the calls in
// flight at once.
type RateLimit struct {
	// QPS is the sustained rate, in calls per second.
	// +kubebuilder:validation:Minimum=1
	QPS int32 `json:"qps"`

	// Burst is how many calls may go at once after a quiet spell. Default:
	// qps.
	// +optional
	// +kubebuilder:validation:Minimum=1
	Burst int32 `json:"burst,omitempty"`

	// MaxConcurrent bounds the calls in flight at once; 0 means no bound.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MaxConcurrent int32 `json:"maxConcurrent,omitempty"`
}

// UnmetRequestPolicy is what to do with a certificate that lacks what its
// request asked for.
// +kubebuilder:validation:Enum=Warn;Fail
type UnmetRequestPolicy string

// The policies; see IssuerSpec.UnmetRequest.
const (
	UnmetRequestWarn UnmetRequestPolicy = "Warn"
	UnmetRequestFail UnmetRequestPolicy = "Fail"
)

// EndEntityNameSource is where the EJBCA end entity name of a request comes from.
// +kubebuilder:validation:Enum=certificateName;requestName;cn;dns;uri;ip
type EndEntityNameSource string

// The ways an end entity name is derived; see IssuerSpec.EndEntityName.
const (
	EndEntityNameCertificateName EndEntityNameSource = "certificateName"
	EndEntityNameRequestName     EndEntityNameSource = "requestName"
	EndEntityNameCN              EndEntityNameSource = "cn"
	EndEntityNameDNS             EndEntityNameSource = "dns"
	EndEntityNameURI             EndEntityNameSource = "uri"
	EndEntityNameIP              EndEntityNameSource = "ip"
)

// Override names a request annotation an issuer may honour.
// +kubebuilder:validation:Enum=certificateProfileName;endEntityProfileName;endEntityName
type Override string

// The overridable settings; see IssuerSpec.AllowedOverrides.
const (
	OverrideCertificateProfileName Override = "certificateProfileName"
	OverrideEndEntityProfileName   Override = "endEntityProfileName"
	OverrideEndEntityName          Override = "endEntityName"
)

// Annotations on a CertificateRequest that override the issuer's settings,
// honoured only when listed in IssuerSpec.AllowedOverrides.
const (
	AnnotationCertificateProfileName = "ejbca-issuer.certctl.io/certificate-profile-name"
	AnnotationEndEntityProfileName   = "ejbca-issuer.certctl.io/end-entity-profile-name"
	AnnotationEndEntityName          = "ejbca-issuer.certctl.io/end-entity-name"
)

// AuthMode selects the credential the issuer presents to EJBCA.
// +kubebuilder:validation:Enum=mtls;oauth2
type AuthMode string

// The supported authentication modes.
const (
	AuthModeMTLS   AuthMode = "mtls"
	AuthModeOAuth2 AuthMode = "oauth2"
)

// AuthSpec is the issuer's credential for EJBCA. EJBCA checks a client
// certificate first and a bearer token otherwise; only the one of Mode is sent.
// +kubebuilder:validation:XValidation:rule="self.mode != 'mtls' || has(self.mtls)",message="auth.mode is mtls but auth.mtls.secretName is not set: name the kubernetes.io/tls Secret holding the client certificate"
// +kubebuilder:validation:XValidation:rule="self.mode != 'oauth2' || has(self.oauth2)",message="auth.mode is oauth2 but auth.oauth2 is not set: give either tokenSecretRef or tokenURL with clientSecretRef"
type AuthSpec struct {
	// Mode is mtls (a client certificate, the default) or oauth2 (a bearer
	// token, needs EJBCA Enterprise 7.8+ or Community 9.3+).
	// +optional
	// +kubebuilder:default=mtls
	Mode AuthMode `json:"mode,omitempty"`

	// MTLS holds the client certificate used when mode is mtls.
	// +optional
	MTLS *MTLSAuth `json:"mtls,omitempty"`

	// OAuth2 holds the bearer token source used when mode is oauth2.
	// +optional
	OAuth2 *OAuth2Auth `json:"oauth2,omitempty"`
}

// MTLSAuth names the client certificate the issuer presents to EJBCA.
type MTLSAuth struct {
	// SecretName is a kubernetes.io/tls Secret holding tls.crt (the client
	// certificate, optionally followed by its intermediates) and tls.key.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	SecretName string `json:"secretName"`
}

// OAuth2Auth is either a static bearer token or OAuth2 client credentials.
// +kubebuilder:validation:XValidation:rule="has(self.tokenSecretRef) != has(self.tokenURL)",message="auth.oauth2 needs exactly one of tokenSecretRef (a static bearer token) or tokenURL with clientSecretRef (client credentials)"
// +kubebuilder:validation:XValidation:rule="has(self.tokenURL) == has(self.clientSecretRef)",message="auth.oauth2.tokenURL and auth.oauth2.clientSecretRef go together: client credentials need both"
// +kubebuilder:validation:XValidation:rule="has(self.tokenURL) || (!has(self.scopes) && !has(self.audience))",message="auth.oauth2.scopes and audience only apply to client credentials (tokenURL)"
type OAuth2Auth struct {
	// TokenSecretRef points at a Secret key holding a bearer token, sent as
	// is. Whoever writes the Secret is responsible for refreshing it; the
	// issuer rereads it when it changes.
	// +optional
	TokenSecretRef *SecretKeySelector `json:"tokenSecretRef,omitempty"`

	// TokenURL is the OAuth2 token endpoint for the client credentials grant.
	// The issuer caches the token and fetches a new one shortly before it
	// expires.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.startsWith('https://') && isURL(self)",message="auth.oauth2.tokenURL must be an https:// URL"
	TokenURL string `json:"tokenURL,omitempty"`

	// ClientSecretRef points at a Secret holding the client id and secret.
	// +optional
	ClientSecretRef *ClientSecretRef `json:"clientSecretRef,omitempty"`

	// Scopes requested with the token.
	// +optional
	// +listType=atomic
	Scopes []string `json:"scopes,omitempty"`

	// Audience requested with the token (the "audience" parameter); EJBCA's
	// OAuth providers require an aud claim.
	// +optional
	Audience string `json:"audience,omitempty"`
}

// SecretKeySelector names a key of a Secret in the issuer's Secret namespace.
type SecretKeySelector struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Key in the Secret's data.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key"`
}

// ConfigMapKeySelector names a key of a ConfigMap in the issuer's Secret namespace.
type ConfigMapKeySelector struct {
	// Name of the ConfigMap.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Key in the ConfigMap's data, or, when data has no such key, in its
	// binaryData.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key"`
}

// ClientSecretRef names the Secret holding OAuth2 client credentials.
type ClientSecretRef struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// ClientIDKey is the key holding the client id. Default client_id.
	// +optional
	// +kubebuilder:default=client_id
	ClientIDKey string `json:"clientIDKey,omitempty"`

	// ClientSecretKey is the key holding the client secret. Default
	// client_secret.
	// +optional
	// +kubebuilder:default=client_secret
	ClientSecretKey string `json:"clientSecretKey,omitempty"`
}

// CABundle is where the trusted roots for EJBCA and the token endpoint are.
// +kubebuilder:validation:XValidation:rule="has(self.secretRef) != has(self.configMapRef)",message="caBundle needs exactly one of secretRef or configMapRef"
type CABundle struct {
	// SecretRef points at a Secret key holding PEM certificates.
	// +optional
	SecretRef *SecretKeySelector `json:"secretRef,omitempty"`

	// ConfigMapRef points at a ConfigMap key holding PEM certificates.
	// +optional
	ConfigMapRef *ConfigMapKeySelector `json:"configMapRef,omitempty"`

	// ExcludeSystemRoots trusts only the bundle. By default the bundle is
	// added to the system roots.
	// +optional
	ExcludeSystemRoots bool `json:"excludeSystemRoots,omitempty"`
}

// ApprovalFlow selects when the EJBCA approval flow is used.
// +kubebuilder:validation:Enum=Detect;Always
type ApprovalFlow string

// The approval flow choices; see ApprovalSpec.Flow.
const (
	// ApprovalFlowDetect enrols in one call and switches to the approval
	// flow only when EJBCA refuses because approvals are enabled.
	ApprovalFlowDetect ApprovalFlow = "Detect"
	// ApprovalFlowAlways always adds the end entity first and waits for
	// approval, saving the refused call when every request needs approval.
	ApprovalFlowAlways ApprovalFlow = "Always"
)

// ApprovalSpec tunes enrolments that wait for an EJBCA administrator.
type ApprovalSpec struct {
	// Flow chooses how enrolment starts:
	//   Detect (the default): enrol in one call (pkcs10enroll) and switch to
	//     the approval flow only when EJBCA refuses because approvals are
	//     enabled for the CA or certificate profile.
	//   Always: add the end entity first and wait for an administrator's
	//     approval, saving the refused call when every request needs one.
	// +optional
	// +kubebuilder:default=Detect
	Flow ApprovalFlow `json:"flow,omitempty"`

	// PollInterval caps the time between two approval status checks. The
	// issuer asks after about 5s, 15s, 45s, 2m and then every 5m; a shorter
	// PollInterval lowers every step above it. Default 5m.
	// +optional
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s')",message="approval.pollInterval must be at least 1s"
	PollInterval *metav1.Duration `json:"pollInterval,omitempty"`

	// MaxWait is how long a request may wait for approval before it is
	// marked Failed. Default 168h (7 days).
	// +optional
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="approval.maxWait must be a positive duration"
	MaxWait *metav1.Duration `json:"maxWait,omitempty"`
}

// IssuerStatus is the observed health of an issuer.
type IssuerStatus struct {
	// Conditions hold Ready: True once an authenticated call to EJBCA
	// succeeded and showed caName exists, False with a reason otherwise.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`
	// CANotAfter is when the first certificate of the issuer's CA chain
	// expires: that of caName's CA or of a CA above it in EJBCA's CA list,
	// as the last health check that found the CA read them. After it,
	// EJBCA can no longer issue through this CA.
	// +optional
	CANotAfter *metav1.Time `json:"caNotAfter,omitempty"`
}
