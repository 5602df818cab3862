package ejbcasim

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Authentication failures, all 403 as in EJBCA (which never answers 401).
const (
	msgNoCredentials = "Error no client certificate or OAuth token received for authentication."
	msgBadToken      = "Authentication failed using OAuth Bearer Token."
	msgExpiredToken  = "Authentication failed using OAuth Bearer Token. JWT token has expired."
	msgWrongAudience = "Authentication failed using OAuth Bearer Token. The token's audience does not match."
)

// authenticate checks the caller the way EJBCA's REST resources do: a TLS
// client certificate first (it wins over a bearer token, even when it is
// refused), else an OAuth2 bearer token where this version has OAuth
// (Behaviour.OAuth); without it a token is no credential at all.
func (s *Sim) authenticate(r *http.Request) *apiError {
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		return s.checkClientCert(r.TLS.PeerCertificates)
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" || !s.behaviour.OAuth {
		return errorf(http.StatusForbidden, msgNoCredentials)
	}
	return s.checkToken(strings.TrimSpace(token))
}

// checkClientCert verifies the presented chain against the trusted client
// CAs, at the simulator's clock, and against the revoked administrators.
func (s *Sim) checkClientCert(chain []*x509.Certificate) *apiError {
	leaf := chain[0]
	intermediates := x509.NewCertPool()
	for _, c := range chain[1:] {
		intermediates.AddCert(c)
	}
	who := fmt.Sprintf("Client certificate '%s' with serial number %X issued by '%s'",
		mustDN(leaf.RawSubject), leaf.SerialNumber, mustDN(leaf.RawIssuer))
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         s.clientRoots,
		Intermediates: intermediates,
		CurrentTime:   s.now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		var invalid x509.CertificateInvalidError
		if errors.As(err, &invalid) && invalid.Reason == x509.Expired {
			return errorf(http.StatusForbidden, who+" has expired.")
		}
		return errorf(http.StatusForbidden, who+" is not trusted.")
	}
	s.mu.Lock()
	revoked := s.revokedClientCerts[clientCertKey(leaf)]
	s.mu.Unlock()
	if revoked {
		return errorf(http.StatusForbidden, who+" has been revoked.")
	}
	return nil
}

// checkToken accepts a static token, or an OAuth2 token this simulator
// issued that has not expired (and carries the required audience, if any).
func (s *Sim) checkToken(token string) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.staticTokens[token] {
		return nil
	}
	t, ok := s.oauthTokens[token]
	if !ok {
		return errorf(http.StatusForbidden, msgBadToken)
	}
	if !s.now().Before(t.expiry) {
		return errorf(http.StatusForbidden, msgExpiredToken)
	}
	if s.requiredAudience != "" && !containsField(t.audience, s.requiredAudience) {
		return errorf(http.StatusForbidden, msgWrongAudience)
	}
	return nil
}

// containsField reports whether the space-separated list holds v.
func containsField(list, v string) bool {
	for _, f := range strings.Fields(list) {
		if f == v {
			return true
		}
	}
	return false
}
