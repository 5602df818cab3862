package controllers_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
)

// TestIssuerReadyNamesThePartAtFault: failures of the identity provider
// name it and its token URL (not EJBCA's url), and TLS failures say which
// side to fix, each with the field to check.
func TestIssuerReadyNamesThePartAtFault(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{RefuseUntrustedClientCertsInHandshake: true})
	sim.SetTokenAudiences("ejbca")
	sim.SetTokenScopes("ejbca")
	strict := newSim(t, ejbcasim.Config{})
	strict.SetRequiredAudience("ejbca")
	ns := newNamespace(t)
	simSecrets(t, sim, ns)
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "wrong-oauth"},
		Data: map[string][]byte{"client_id": []byte(sim.OAuthClientID()), "client_secret": []byte("wrong")}})
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "strict-oauth"},
		Data: map[string][]byte{"client_id": []byte(strict.OAuthClientID()), "client_secret": []byte(strict.OAuthClientSecret())}})
	create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "strict-ca"},
		Data: map[string]string{"ca.crt": string(strict.CABundlePEM())}})
	untrustedCert, untrustedKey, err := sim.NewUntrustedClientCert("intruder")
	if err != nil {
		t.Fatal(err)
	}
	create(t, tlsSecret(ns, "untrusted", untrustedCert, untrustedKey))
	plain := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(plain.Close)

	oauth := func(mutate func(*v1alpha1.OAuth2Auth)) v1alpha1.IssuerSpec {
		s := oauthSpec(sim)
		mutate(s.Auth.OAuth2)
		return s
	}
	refusedURL := "https://" + freeAddr() + "/token"
	wrongPath := sim.URL() + "/realms/pki/protocol/openid-connect/token"
	noAudience := oauthSpec(strict)
	noAudience.Auth.OAuth2.Audience = ""
	noAudience.Auth.OAuth2.ClientSecretRef.Name = "strict-oauth"
	noAudience.CABundle.ConfigMapRef.Name = "strict-ca"
	untrustedClient := issuerSpec(sim)
	untrustedClient.Auth.MTLS.SecretName = "untrusted"
	plainPort := issuerSpec(sim)
	plainPort.URL = "https://" + strings.TrimPrefix(plain.URL, "http://")

	for _, tc := range []struct {
		name, reason string
		spec         v1alpha1.IssuerSpec
		want         []string
		notEJBCA     bool
	}{
		{"token-url-404", v1alpha1.ReasonUnreachable, oauth(func(o *v1alpha1.OAuth2Auth) { o.TokenURL = wrongPath }),
			[]string{"the identity provider at " + wrongPath + " (OAuth2 token endpoint) answered 404", "check auth.oauth2.tokenURL"}, true},
		{"token-url-refused", v1alpha1.ReasonUnreachable, oauth(func(o *v1alpha1.OAuth2Auth) { o.TokenURL = refusedURL }),
			[]string{"the identity provider at " + refusedURL, "connection refused", "reachable from the manager"}, true},
		{"invalid-client", v1alpha1.ReasonUnauthorized, oauth(func(o *v1alpha1.OAuth2Auth) { o.ClientSecretRef.Name = "wrong-oauth" }),
			[]string{"answered 401: invalid_client", "Secret " + ns + "/wrong-oauth"}, true},
		{"wrong-audience", v1alpha1.ReasonUnauthorized, oauth(func(o *v1alpha1.OAuth2Auth) { o.Audience = "ejbca-rest" }),
			[]string{"answered 400: invalid_target", `check auth.oauth2.audience "ejbca-rest"`}, true},
		{"wrong-scope", v1alpha1.ReasonUnauthorized, oauth(func(o *v1alpha1.OAuth2Auth) { o.Scopes = []string{"ejbca", "admin"} }),
			[]string{"answered 400: invalid_scope", "check auth.oauth2.scopes [ejbca admin]"}, true},
		{"missing-audience", v1alpha1.ReasonUnauthorized, noAudience,
			[]string{"EJBCA refused the issuer's credentials", "audience"}, false},
		{"untrusted-client-ca", v1alpha1.ReasonUnreachable, untrustedClient,
			[]string{"tls: unknown certificate authority", "fix it on the server's side"}, false},
		{"plain-http-port", v1alpha1.ReasonUnreachable, plainPort,
			[]string{"server gave HTTP response to HTTPS client", "HTTPS port"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := waitIssuer(t, newIssuer(t, ns, tc.name, tc.spec), tc.reason)
			for _, w := range tc.want {
				if !strings.Contains(c.Message, w) {
					t.Errorf("message %q lacks %q", c.Message, w)
				}
			}
			if tc.notEJBCA && strings.Contains(c.Message, "EJBCA at") {
				t.Errorf("message %q blames EJBCA for the identity provider", c.Message)
			}
		})
	}
}
