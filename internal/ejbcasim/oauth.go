package ejbcasim

import (
	"crypto/rand"
	"crypto/subtle"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// oauthToken is an access token the token endpoint issued.
type oauthToken struct {
	expiry   time.Time
	audience string
	scope    string
}

// TokenRequest records a successful client-credentials grant, so tests can
// check which scope and audience a client asked for.
type TokenRequest struct {
	ClientID string
	Scope    string // as sent, space-separated
	Audience string // the "audience" (or RFC 8707 "resource") parameter
	Time     time.Time
}

// StaticToken is a bearer token that is always accepted (EJBCA configured
// with a long-lived token), for the static-token auth mode.
func (s *Sim) StaticToken() string { return s.defaultStaticToken }

// AddStaticToken makes tok an accepted bearer token.
func (s *Sim) AddStaticToken(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.staticTokens[tok] = true
}

// RemoveStaticToken stops accepting tok, e.g. to test token rotation.
func (s *Sim) RemoveStaticToken(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.staticTokens, tok)
}

// OAuthClientID is the client id the token endpoint accepts.
func (s *Sim) OAuthClientID() string { return s.oauthClientID }

// OAuthClientSecret is the matching client secret.
func (s *Sim) OAuthClientSecret() string { return s.oauthClientSecret }

// ExpireTokens makes every token issued so far expired; later requests with
// them get EJBCA's "JWT token has expired" 403. New tokens are unaffected.
func (s *Sim) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	past := s.now().Add(-time.Second)
	for _, t := range s.oauthTokens {
		t.expiry = past
	}
}

// SetRequiredAudience makes the REST API accept only OAuth2 tokens that were
// requested with this audience (EJBCA 7.8+ checks the aud claim); "" turns
// the check off.
func (s *Sim) SetRequiredAudience(audience string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requiredAudience = audience
}

// SetTokenAudiences makes the token endpoint refuse a request for an
// audience ("audience" or RFC 8707 "resource") other than these, with 400
// invalid_target, as an identity provider that knows no such resource
// server does. A request without an audience still gets a token (without the
// claim; see SetRequiredAudience for EJBCA refusing that). No arguments turn
// the check off.
func (s *Sim) SetTokenAudiences(audiences ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenAudiences = append([]string(nil), audiences...)
}

// SetTokenScopes makes the token endpoint refuse a request for any scope
// other than these, with 400 invalid_scope (RFC 6749 section 5.2). No
// arguments turn the check off.
func (s *Sim) SetTokenScopes(scopes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenScopes = append([]string(nil), scopes...)
}

// TokenRequests lists the successful token requests, oldest first.
func (s *Sim) TokenRequests() []TokenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]TokenRequest(nil), s.tokenRequests...)
}

// tokenResponse is the RFC 6749 access token response.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope,omitempty"`
}

type oauthError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description,omitempty"`
}

// handleToken is an identity provider's token endpoint: the client
// credentials grant, with client authentication by HTTP Basic (RFC 6749
// form-encoded id and secret) or by the client_id/client_secret fields.
func (s *Sim) handleToken(w http.ResponseWriter, r *http.Request, _ Fault) {
	w.Header().Set("Cache-Control", "no-store")
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		writeJSON(w, http.StatusBadRequest, oauthError{Error: "invalid_request", ErrorDescription: "expected an application/x-www-form-urlencoded body"})
		return
	}
	r.Body = http.MaxBytesReader(nil, r.Body, maxBodyBytes)
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, oauthError{Error: "invalid_request", ErrorDescription: "unreadable form body"})
		return
	}
	id, secret, basic := r.BasicAuth()
	if basic {
		if v, err := url.QueryUnescape(id); err == nil {
			id = v
		}
		if v, err := url.QueryUnescape(secret); err == nil {
			secret = v
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if subtle.ConstantTimeCompare([]byte(id), []byte(s.oauthClientID)) != 1 ||
		subtle.ConstantTimeCompare([]byte(secret), []byte(s.oauthClientSecret)) != 1 {
		if basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="ejbca-sim"`)
		}
		writeJSON(w, http.StatusUnauthorized, oauthError{Error: "invalid_client"})
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		writeJSON(w, http.StatusBadRequest, oauthError{Error: "unsupported_grant_type"})
		return
	}
	scope := r.PostForm.Get("scope")
	audience := r.PostForm.Get("audience")
	if audience == "" {
		audience = r.PostForm.Get("resource")
	}
	s.mu.Lock()
	audiences, scopes := s.tokenAudiences, s.tokenScopes
	s.mu.Unlock()
	if len(audiences) > 0 {
		for _, a := range strings.Fields(audience) {
			if !slices.Contains(audiences, a) {
				writeJSON(w, http.StatusBadRequest, oauthError{Error: "invalid_target", ErrorDescription: "unknown audience " + strconv.Quote(a)})
				return
			}
		}
	}
	if len(scopes) > 0 {
		for _, sc := range strings.Fields(scope) {
			if !slices.Contains(scopes, sc) {
				writeJSON(w, http.StatusBadRequest, oauthError{Error: "invalid_scope", ErrorDescription: "scope " + strconv.Quote(sc) + " is not allowed for this client"})
				return
			}
		}
	}
	token := rand.Text()
	now := s.now()
	s.mu.Lock()
	s.oauthTokens[token] = &oauthToken{expiry: now.Add(s.cfg.TokenLifetime), audience: audience, scope: scope}
	s.tokenRequests = append(s.tokenRequests, TokenRequest{ClientID: id, Scope: scope, Audience: audience, Time: now})
	s.counters.TokensIssued++
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, tokenResponse{
		AccessToken: token,
		TokenType:   "Bearer",
		ExpiresIn:   int64(s.cfg.TokenLifetime / time.Second),
		Scope:       scope,
	})
}
