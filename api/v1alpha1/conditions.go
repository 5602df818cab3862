package v1alpha1

// ConditionReady is the issuer's only condition type.
const ConditionReady = "Ready"

// Reasons of the issuer's Ready condition. Each names something a user can
// act on; docs/troubleshooting.md gives the fix for each.
const (
	// ReasonChecked: an authenticated call to EJBCA succeeded and caName exists.
	ReasonChecked = "Checked"
	// ReasonSecretNotFound: a referenced Secret or ConfigMap does not exist
	// in the namespace the issuer reads.
	ReasonSecretNotFound = "SecretNotFound"
	// ReasonInvalidSecret: a referenced Secret or ConfigMap has the wrong
	// type, lacks a key, or holds an unparseable or expired certificate or key.
	ReasonInvalidSecret = "InvalidSecret"
	// ReasonInvalidConfig: the spec cannot be used (for example a URL the
	// client cannot parse) even though the API server accepted it.
	ReasonInvalidConfig = "InvalidConfig"
	// ReasonUnauthorized: EJBCA refused the credentials (403), or the token
	// endpoint refused the client credentials.
	ReasonUnauthorized = "Unauthorized"
	// ReasonUnreachable: EJBCA could not be reached or its TLS certificate
	// was not trusted, or it answered with a server error.
	ReasonUnreachable = "Unreachable"
	// ReasonCANotFound: EJBCA answered but has no CA named caName.
	ReasonCANotFound = "CANotFound"
	// ReasonNotChecked: the issuer's spec changed and it has not been
	// checked since. Requests waiting for the issuer say so; the issuer's own
	// condition never carries it.
	ReasonNotChecked = "NotChecked"
	// ReasonCredentialsUnavailable: the issuer was Ready, but its
	// credentials no longer load (a Secret changed since the check). Requests
	// say so while the issuer's own re-check follows.
	ReasonCredentialsUnavailable = "CredentialsUnavailable"
	// ReasonProfileNotFound: EJBCA does not know the issuer's CA,
	// certificate profile or end entity profile (or the profile does not
	// allow the CA): found by the health check where EJBCA can say, or by the
	// first request EJBCA refused for it. Requests wait for the issuer.
	ReasonProfileNotFound = "ProfileNotFound"
	// ReasonSecretsNotAccessible: the manager was started to read Secrets
	// only in the cluster resource namespace, so an EJBCAIssuer elsewhere
	// cannot be used.
	ReasonSecretsNotAccessible = "SecretsNotAccessible"
)
