package issuers

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
)

// tokenEndpointFailure is the Ready condition of an issuer whose OAuth2
// token endpoint failed: the identity provider is at fault, not EJBCA (which
// was not called), and the message says which field to check.
// secretNamespace is where the issuer reads its Secrets.
func tokenEndpointFailure(spec *v1alpha1.IssuerSpec, secretNamespace string, err error) (metav1.ConditionStatus, string, string) {
	reason := v1alpha1.ReasonUnreachable
	if ejbca.IsUnauthorized(err) {
		reason = v1alpha1.ReasonUnauthorized
	}
	o := spec.Auth.OAuth2
	if o == nil {
		o = &v1alpha1.OAuth2Auth{}
	}
	var fix string
	switch code := ejbca.OAuthErrorCode(err); {
	case code == "invalid_client":
		idKey, secretKey := o.ClientSecretRef.Keys()
		var name string
		if o.ClientSecretRef != nil {
			name = o.ClientSecretRef.Name
		}
		fix = fmt.Sprintf("the identity provider does not know this client or its secret: check keys %s and %s of Secret %s/%s against the client registered there",
			idKey, secretKey, secretNamespace, name)
	case code == "invalid_scope":
		fix = fmt.Sprintf("check auth.oauth2.scopes [%s]: the identity provider does not grant them to this client", strings.Join(o.Scopes, " "))
	case code == "invalid_target":
		fix = fmt.Sprintf("check auth.oauth2.audience %q: the identity provider knows no such audience (resource server)", o.Audience)
	case code != "":
		fix = "check auth.oauth2 (clientSecretRef, scopes, audience) against the client registered at the identity provider"
	case ejbca.TokenFailureOf(err) == ejbca.TokenNotAnEndpoint:
		fix = "check auth.oauth2.tokenURL: it is not the identity provider's token endpoint"
	case ejbca.TokenFailureOf(err) == ejbca.TokenServerFailed:
		fix = "the identity provider failed; check it (the issuer retries)"
	case ejbca.TokenFailureOf(err) == ejbca.TokenRefused:
		fix = "check auth.oauth2.tokenURL and the identity provider"
	default:
		fix = "check auth.oauth2.tokenURL and that the identity provider is reachable from the manager"
	}
	return metav1.ConditionFalse, reason, fmt.Sprintf("no OAuth2 token, so EJBCA was not called: %v; %s", err, fix)
}
