package ejbcasim_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
)

func TestStatusEndpointsNeedNoCredentials(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	for _, path := range []string{"/v1/certificate/status", "/v1/ca/status", "/v2/certificate/status"} {
		r := h.call(h.anon, "GET", path, nil)
		var st struct{ Status, Version, Revision string }
		r.decode(t, &st)
		if r.status != http.StatusOK || st.Status != "OK" || !strings.HasPrefix(st.Revision, "EJBCA ") {
			t.Errorf("%s: %d %s", path, r.status, r.body)
		}
	}
}

func TestAuthenticatedEndpointRefusesNoCredentials(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	h.call(h.anon, "GET", "/v1/ca", nil).expectError(t, 403, "Error no client certificate or OAuth token received for authentication.")
	// A non-bearer Authorization header is no credential either.
	h.call(h.anon, "GET", "/v1/ca", nil, "Authorization", "Basic Zm9vOmJhcg==").
		expectError(t, 403, "Error no client certificate or OAuth token received for authentication.")
}

func TestClientCertificates(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	altCert, altKey, err := h.sim.NewClientCert("rotated", true, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	expiredCert, expiredKey, err := h.sim.NewClientCert("expired", false, -time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	untrustedCert, untrustedKey, err := h.sim.NewUntrustedClientCert("intruder")
	if err != nil {
		t.Fatal(err)
	}
	revokedCert, revokedKey, err := h.sim.NewClientCert("revoked", false, 0)
	if err != nil {
		t.Fatal(err)
	}
	h.sim.RevokeClientCert(revokedCert)

	for _, tc := range []struct {
		name       string
		cert, key  []byte
		wantStatus int
		wantSuffix string
	}{
		{"default admin", h.sim.ClientCertPEM(), h.sim.ClientKeyPEM(), 200, ""},
		{"alternate trusted CA", altCert, altKey, 200, ""},
		{"expired", expiredCert, expiredKey, 403, "has expired."},
		{"untrusted", untrustedCert, untrustedKey, 403, "is not trusted."},
		{"revoked", revokedCert, revokedKey, 403, "has been revoked."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.call(h.client(tc.cert, tc.key), "GET", "/v1/ca", nil)
			if r.status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tc.wantStatus, r.body)
			}
			if tc.wantSuffix != "" {
				if msg := r.errorMessage(t); !strings.HasSuffix(msg, tc.wantSuffix) || !strings.HasPrefix(msg, "Client certificate '") {
					t.Fatalf("message %q, want ...%q", msg, tc.wantSuffix)
				}
			}
		})
	}
}

func TestClientCertificateWinsOverToken(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	// A valid certificate with a garbage token: the certificate decides.
	if r := h.call(h.admin, "GET", "/v1/ca", nil, "Authorization", "Bearer garbage"); r.status != 200 {
		t.Fatalf("valid cert + bad token: %d %s", r.status, r.body)
	}
	// A refused certificate with a valid token: still the certificate decides.
	cert, key, err := h.sim.NewUntrustedClientCert("intruder")
	if err != nil {
		t.Fatal(err)
	}
	r := h.call(h.client(cert, key), "GET", "/v1/ca", nil, "Authorization", "Bearer "+h.sim.StaticToken())
	if r.status != 403 || !strings.HasSuffix(r.errorMessage(t), "is not trusted.") {
		t.Fatalf("untrusted cert + good token: %d %s", r.status, r.body)
	}
}

func TestStaticTokens(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	bearer := func(tok string) reply {
		return h.call(h.anon, "GET", "/v1/ca", nil, "Authorization", "Bearer "+tok)
	}
	if r := bearer(h.sim.StaticToken()); r.status != 200 {
		t.Fatalf("static token: %d %s", r.status, r.body)
	}
	bearer("not-a-token").expectError(t, 403, "Authentication failed using OAuth Bearer Token.")
	h.sim.AddStaticToken("rotated")
	if r := bearer("rotated"); r.status != 200 {
		t.Fatalf("added token: %d", r.status)
	}
	h.sim.RemoveStaticToken("rotated")
	bearer("rotated").expectError(t, 403, "Authentication failed using OAuth Bearer Token.")
}

// token gets an access token with HTTP Basic client authentication.
func (h *harness) token(form url.Values) (reply, string) {
	h.t.Helper()
	req, err := http.NewRequest("POST", h.sim.TokenURL(), strings.NewReader(form.Encode()))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(h.sim.OAuthClientID()), url.QueryEscape(h.sim.OAuthClientSecret()))
	return h.postToken(req)
}

func (h *harness) postToken(req *http.Request) (reply, string) {
	h.t.Helper()
	resp, err := h.anon.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
		Error       string `json:"error"`
	}
	r := reply{status: resp.StatusCode, header: resp.Header}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
		h.t.Fatalf("token response: %v", err)
	}
	r.body = []byte(tr.Error)
	if resp.StatusCode == 200 && (tr.TokenType != "Bearer" || tr.ExpiresIn <= 0 || tr.AccessToken == "") {
		h.t.Fatalf("token response %+v", tr)
	}
	return r, tr.AccessToken
}

func TestOAuthClientCredentials(t *testing.T) {
	clock := newFakeClock()
	h := start(t, ejbcasim.Config{Now: clock.Now, TokenLifetime: 10 * time.Minute})
	r, tok := h.token(url.Values{"grant_type": {"client_credentials"}, "scope": {"ejbca admin"}, "audience": {"https://ejbca"}})
	if r.status != 200 {
		t.Fatalf("token: %d %s", r.status, r.body)
	}
	bearer := func() reply { return h.call(h.anon, "GET", "/v1/ca", nil, "Authorization", "Bearer "+tok) }
	if r := bearer(); r.status != 200 {
		t.Fatalf("fresh token: %d %s", r.status, r.body)
	}
	reqs := h.sim.TokenRequests()
	if len(reqs) != 1 || reqs[0].Scope != "ejbca admin" || reqs[0].Audience != "https://ejbca" || reqs[0].ClientID != h.sim.OAuthClientID() {
		t.Fatalf("recorded %+v", reqs)
	}

	// Lifetime elapses on the simulator's clock.
	clock.Advance(11 * time.Minute)
	bearer().expectError(t, 403, "Authentication failed using OAuth Bearer Token. JWT token has expired.")

	// ExpireTokens expires fresh tokens too.
	_, tok = h.token(url.Values{"grant_type": {"client_credentials"}})
	if r := bearer(); r.status != 200 {
		t.Fatalf("new token: %d", r.status)
	}
	h.sim.ExpireTokens()
	bearer().expectError(t, 403, "Authentication failed using OAuth Bearer Token. JWT token has expired.")

	// Form-field client authentication.
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {h.sim.OAuthClientID()}, "client_secret": {h.sim.OAuthClientSecret()}}
	req, _ := http.NewRequest("POST", h.sim.TokenURL(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if r, _ := h.postToken(req); r.status != 200 {
		t.Fatalf("form client auth: %d", r.status)
	}

	// Wrong secret, wrong grant.
	form.Set("client_secret", "wrong")
	req, _ = http.NewRequest("POST", h.sim.TokenURL(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if r, _ := h.postToken(req); r.status != 401 || string(r.body) != "invalid_client" {
		t.Fatalf("wrong secret: %d %s", r.status, r.body)
	}
	if r, _ := h.token(url.Values{"grant_type": {"password"}}); r.status != 400 || string(r.body) != "unsupported_grant_type" {
		t.Fatalf("wrong grant: %d %s", r.status, r.body)
	}
	if got := h.sim.Counters().TokensIssued; got != 3 {
		t.Fatalf("TokensIssued %d, want 3", got)
	}
}

func TestOAuthRequiredAudience(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	h.sim.SetRequiredAudience("ejbca-rest")
	_, without := h.token(url.Values{"grant_type": {"client_credentials"}})
	_, with := h.token(url.Values{"grant_type": {"client_credentials"}, "audience": {"ejbca-rest"}})
	if r := h.call(h.anon, "GET", "/v1/ca", nil, "Authorization", "Bearer "+without); r.status != 403 {
		t.Fatalf("token without audience: %d", r.status)
	}
	if r := h.call(h.anon, "GET", "/v1/ca", nil, "Authorization", "Bearer "+with); r.status != 200 {
		t.Fatalf("token with audience: %d %s", r.status, r.body)
	}
}

func TestTokenEndpointRefusesUnknownAudiencesAndScopes(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	h.sim.SetTokenAudiences("ejbca")
	h.sim.SetTokenScopes("ejbca", "openid")
	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
		code   string
	}{
		{"known", url.Values{"audience": {"ejbca"}, "scope": {"ejbca openid"}}, 200, ""},
		{"no audience, no scope", url.Values{}, 200, ""},
		{"wrong audience", url.Values{"audience": {"ejbca-rest"}}, 400, "invalid_target"},
		{"wrong resource", url.Values{"resource": {"https://other"}}, 400, "invalid_target"},
		{"wrong scope", url.Values{"scope": {"ejbca admin"}}, 400, "invalid_scope"},
	} {
		tc.form.Set("grant_type", "client_credentials")
		r, tok := h.token(tc.form)
		if r.status != tc.status || string(r.body) != tc.code || (tc.status == 200) != (tok != "") {
			t.Errorf("%s: %d %s (token %v), want %d %s", tc.name, r.status, r.body, tok != "", tc.status, tc.code)
		}
	}
	h.sim.SetTokenAudiences()
	h.sim.SetTokenScopes()
	if r, _ := h.token(url.Values{"grant_type": {"client_credentials"}, "audience": {"x"}, "scope": {"y"}}); r.status != 200 {
		t.Errorf("with the checks off: %d %s", r.status, r.body)
	}
}
