package ejbca_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
)

// Messages EJBCA (and so the simulator) answers with.
const (
	msgBadToken     = "Authentication failed using OAuth Bearer Token."
	msgExpiredToken = "Authentication failed using OAuth Bearer Token. JWT token has expired."
)

func TestUnknownBearerTokenIsUnauthorized(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	o := options(t, sim, modeToken)
	o.BearerToken = "not-a-token-the-simulator-knows"
	c := newClient(t, o)

	// The status endpoint checks no credentials.
	if _, err := c.Status(ctx); err != nil {
		t.Fatalf("Status with a bad token: %v", err)
	}
	_, err := c.ListCAs(ctx)
	if !ejbca.IsUnauthorized(err) {
		t.Fatalf("ListCAs = %v, want unauthorized", err)
	}
	if ejbca.IsRetryable(err) || ejbca.IsPermanent(err) {
		t.Errorf("unauthorized error %v is also retryable or permanent", err)
	}
	if got := ejbca.Message(err); got != msgBadToken {
		t.Errorf("Message = %q, want %q", got, msgBadToken)
	}
	e := asError(t, err)
	if e.StatusCode != 403 || e.Endpoint != "GET /v1/ca" {
		t.Errorf("error = %+v", e)
	}
	if !strings.Contains(err.Error(), "GET /v1/ca") || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), msgBadToken) {
		t.Errorf("error text %q does not name the endpoint, status and message", err)
	}

	// Every authenticated endpoint refuses alike.
	csr, _ := simpleCSR(t, "x.example.com")
	if _, err := c.Enroll(ctx, enrolment(csr, "x")); !ejbca.IsUnauthorized(err) || ejbca.Message(err) != msgBadToken {
		t.Errorf("Enroll = %v", err)
	}
	if _, err := c.Revoke(ctx, issuingCADN, "01", ejbca.ReasonUnspecified, time.Time{}); !ejbca.IsUnauthorized(err) {
		t.Errorf("Revoke = %v", err)
	}
	if _, err := c.AddEndEntity(ctx, ejbca.EndEntity{Username: "x", Password: "p", SubjectDN: "CN=x", CAName: issuingCA}); !ejbca.IsUnauthorized(err) {
		t.Errorf("AddEndEntity = %v", err)
	}
	if got := sim.Counters(); got.Calls["pkcs10enroll"][403] != 1 || got.Enrollments != 0 {
		t.Errorf("counters: %+v", got)
	}

	// A static token that is withdrawn stops working.
	sim.AddStaticToken("rotating-token")
	o.BearerToken = "rotating-token"
	rot := newClient(t, o)
	if _, err := rot.ListCAs(ctx); err != nil {
		t.Fatalf("ListCAs with an added static token: %v", err)
	}
	sim.RemoveStaticToken("rotating-token")
	if _, err := rot.ListCAs(ctx); !ejbca.IsUnauthorized(err) || ejbca.Message(err) != msgBadToken {
		t.Errorf("ListCAs with a removed static token = %v", err)
	}
}

func TestClientCertificateRefusals(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)

	certPEM, keyPEM, err := sim.NewUntrustedClientCert("Intruder")
	if err != nil {
		t.Fatal(err)
	}
	o := options(t, sim, modeMTLS)
	o.ClientCertificate = certPair(t, certPEM, keyPEM)
	_, err = newClient(t, o).ListCAs(ctx)
	if !ejbca.IsUnauthorized(err) {
		t.Fatalf("ListCAs with an untrusted client CA = %v, want unauthorized", err)
	}
	if msg := ejbca.Message(err); !strings.Contains(msg, "Intruder") || !strings.HasSuffix(msg, "is not trusted.") {
		t.Errorf("Message = %q", msg)
	}

	// A certificate from the second trusted client CA works, until revoked.
	certPEM, keyPEM, err = sim.NewClientCert("Operator", true, 0)
	if err != nil {
		t.Fatal(err)
	}
	o.ClientCertificate = certPair(t, certPEM, keyPEM)
	c := newClient(t, o)
	if _, err := c.ListCAs(ctx); err != nil {
		t.Fatalf("ListCAs with the alternate CA's certificate: %v", err)
	}
	sim.RevokeClientCert(certPEM)
	_, err = c.ListCAs(ctx)
	if !ejbca.IsUnauthorized(err) {
		t.Fatalf("ListCAs with a revoked client certificate = %v, want unauthorized", err)
	}
	if msg := ejbca.Message(err); !strings.Contains(msg, "Operator") || !strings.HasSuffix(msg, "has been revoked.") {
		t.Errorf("Message = %q", msg)
	}

	// An expired certificate is refused with EJBCA's message.
	certPEM, keyPEM, err = sim.NewClientCert("Expired", false, -time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	o.ClientCertificate = certPair(t, certPEM, keyPEM)
	_, err = newClient(t, o).ListCAs(ctx)
	if !ejbca.IsUnauthorized(err) || !strings.HasSuffix(ejbca.Message(err), "has expired.") {
		t.Errorf("ListCAs with an expired client certificate = %v", err)
	}
	if got := sim.Counters().Calls["ca"]; got[403] != 3 || got[200] != 1 {
		t.Errorf("ca calls = %v, want 3 refused and 1 answered", got)
	}
}

func TestExpiredOAuthTokenIsRefetched(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	c := clientFor(t, sim, modeOAuth2)

	if _, err := c.ListCAs(ctx); err != nil {
		t.Fatalf("ListCAs: %v", err)
	}
	if got := sim.Counters().TokensIssued; got != 1 {
		t.Fatalf("TokensIssued = %d after the first call, want 1", got)
	}
	if _, err := c.ListCAs(ctx); err != nil {
		t.Fatalf("second ListCAs: %v", err)
	}
	if got := sim.Counters().TokensIssued; got != 1 {
		t.Fatalf("TokensIssued = %d after reuse, want 1", got)
	}

	sim.ExpireTokens()
	csr, key := simpleCSR(t, "refetch.example.com")
	cert, err := c.Enroll(ctx, enrolment(csr, "refetch"))
	if err != nil {
		t.Fatalf("Enroll after the token expired: %v", err)
	}
	checkIssued(t, sim, cert, key)
	got := sim.Counters()
	if got.TokensIssued != 2 {
		t.Errorf("TokensIssued = %d, want 2", got.TokensIssued)
	}
	// The refused call with the old token, then the successful one.
	if got.Calls["pkcs10enroll"][403] != 1 || got.Calls["pkcs10enroll"][201] != 1 || got.Enrollments != 1 {
		t.Errorf("pkcs10enroll calls = %v, enrollments %d", got.Calls["pkcs10enroll"], got.Enrollments)
	}
	// And the new token is kept.
	if _, err := c.ListCAs(ctx); err != nil || sim.Counters().TokensIssued != 2 {
		t.Errorf("ListCAs after the refetch = %v, tokens %d", err, sim.Counters().TokensIssued)
	}
}

// A genuine refusal is reported after one refetch, not retried forever.
func TestOAuthRefusalAfterRefetch(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	sim.SetRequiredAudience("https://ejbca.example.com")

	o := options(t, sim, modeOAuth2)
	c := newClient(t, o)
	_, err := c.ListCAs(ctx)
	if !ejbca.IsUnauthorized(err) || !strings.Contains(ejbca.Message(err), "audience") {
		t.Fatalf("ListCAs without the audience = %v, want unauthorized", err)
	}
	if got := sim.Counters(); got.Calls["ca"][403] != 2 || got.TokensIssued != 2 {
		t.Errorf("ca calls %v, tokens %d; want 2 refused calls and 2 tokens", got.Calls["ca"], got.TokensIssued)
	}

	o.ClientCredentials.Audience = "https://ejbca.example.com"
	o.ClientCredentials.Scopes = []string{"ejbca", "pki"}
	if _, err := newClient(t, o).ListCAs(ctx); err != nil {
		t.Fatalf("ListCAs with the audience: %v", err)
	}
	reqs := sim.TokenRequests()
	last := reqs[len(reqs)-1]
	if last.Audience != "https://ejbca.example.com" || last.Scope != "ejbca pki" || last.ClientID != sim.OAuthClientID() {
		t.Errorf("token request = %+v", last)
	}
}

func TestTokenEndpointRefusal(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	o := options(t, sim, modeOAuth2)
	o.ClientCredentials.ClientSecret = "wrong"
	_, err := newClient(t, o).ListCAs(ctx)
	if !ejbca.IsUnauthorized(err) {
		t.Fatalf("ListCAs with a wrong client secret = %v, want unauthorized", err)
	}
	e := asError(t, err)
	if e.Endpoint != "POST token endpoint" || e.StatusCode != 401 || !strings.Contains(e.Message, "invalid_client") {
		t.Errorf("error = %+v", e)
	}
	if got := sim.Counters(); got.Get("ca") != 0 || got.TokensIssued != 0 {
		t.Errorf("calls %v, tokens %d", got.Calls, got.TokensIssued)
	}

	// A token endpoint failing with 503 is retryable.
	sim.InjectFault("token", ejbcasim.Fault{Status: 503})
	_, err = clientFor(t, sim, modeOAuth2).ListCAs(ctx)
	if !ejbca.IsRetryable(err) {
		t.Errorf("ListCAs with the token endpoint down = %v, want retryable", err)
	}
	if got := ejbca.TokenFailureOf(err); got != ejbca.TokenServerFailed {
		t.Errorf("TokenFailureOf(%v) = %v, want TokenServerFailed", err, got)
	}
}

// Token endpoint failures name the identity provider and its URL, never
// EJBCA, and carry what the identity provider said.
func TestTokenEndpointErrorsNameTheIdentityProvider(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	sim.SetTokenAudiences("ejbca")
	sim.SetTokenScopes("ejbca")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedURL := "https://" + l.Addr().String() + "/token"
	l.Close()
	for _, tc := range []struct {
		name         string
		mutate       func(*ejbca.ClientCredentials)
		unauthorized bool
		code         string
		failure      ejbca.TokenFailure
		want         []string
	}{
		{"invalid_client", func(c *ejbca.ClientCredentials) { c.ClientSecret = "wrong" }, true, "invalid_client", ejbca.TokenRefused, []string{"answered 401: invalid_client"}},
		{"invalid_target", func(c *ejbca.ClientCredentials) { c.Audience = "ejbca-rest" }, true, "invalid_target", ejbca.TokenRefused, []string{"answered 400: invalid_target", `"ejbca-rest"`}},
		{"invalid_scope", func(c *ejbca.ClientCredentials) { c.Scopes = []string{"ejbca", "admin"} }, true, "invalid_scope", ejbca.TokenRefused, []string{"answered 400: invalid_scope", `"admin"`}},
		{"404", func(c *ejbca.ClientCredentials) { c.TokenURL = sim.URL() + "/realms/pki/token" }, false, "", ejbca.TokenNotAnEndpoint, []string{"answered 404: "}},
		{"connection refused", func(c *ejbca.ClientCredentials) { c.TokenURL = refusedURL }, false, "", ejbca.TokenNoAnswer, []string{"gave no usable token", "connection refused"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := options(t, sim, modeOAuth2)
			tc.mutate(o.ClientCredentials)
			_, err := newClient(t, o).ListCAs(ctxFor(t))
			if err == nil {
				t.Fatal("ListCAs succeeded")
			}
			if !ejbca.IsTokenEndpoint(err) || ejbca.IsUnauthorized(err) != tc.unauthorized || ejbca.OAuthErrorCode(err) != tc.code {
				t.Errorf("token endpoint %v, unauthorized %v, code %q: %v", ejbca.IsTokenEndpoint(err), ejbca.IsUnauthorized(err), ejbca.OAuthErrorCode(err), err)
			}
			if got := ejbca.TokenFailureOf(err); got != tc.failure {
				t.Errorf("TokenFailureOf = %d, want %d: %v", got, tc.failure, err)
			}
			msg := err.Error()
			prefix := "the identity provider at " + o.ClientCredentials.TokenURL + " (OAuth2 token endpoint) "
			if !strings.HasPrefix(msg, prefix) || strings.Contains(msg, "EJBCA") {
				t.Errorf("message %q does not start with %q (or names EJBCA)", msg, prefix)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
		})
	}
	if got := sim.Counters(); got.Get("ca") != 0 {
		t.Errorf("EJBCA was called without a token: %v", got.Calls)
	}
}
