package ejbca

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/utils/clock"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// tokenRefreshMargin is how long before its expiry a token is replaced, so a
// token never expires in flight.
const tokenRefreshMargin = 30 * time.Second

// ClientCredentials configure the OAuth2 client credentials grant.
type ClientCredentials struct {
	TokenURL     string
	ClientID     string
	ClientSecret string
	Scopes       []string
	// Audience is sent as the "audience" parameter; EJBCA's OAuth providers
	// need an aud claim.
	Audience string
}

// tokenCache hands out one token until shortly before it expires, and
// forgets it early when EJBCA refuses it (clock skew, revoked session). One
// fetch runs at a time, with the context of the call that needs the token,
// so a cancelled call or its deadline stops the fetch (and the wait for it).
type tokenCache struct {
	cfg   *clientcredentials.Config
	url   string // the token URL, named in every error
	hc    *http.Client
	fetch chan struct{} // a one-slot semaphore held while fetching
	clock clock.PassiveClock

	mu     sync.Mutex
	cached *oauth2.Token
}

func newTokenCache(cc ClientCredentials, hc *http.Client, clk clock.PassiveClock) (*tokenCache, error) {
	u, err := url.Parse(cc.TokenURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("OAuth2 token URL %q must be an https:// URL", cc.TokenURL)
	}
	if cc.ClientID == "" || cc.ClientSecret == "" {
		return nil, errors.New("OAuth2 client credentials need a client id and a client secret")
	}
	cfg := &clientcredentials.Config{
		ClientID:     cc.ClientID,
		ClientSecret: cc.ClientSecret,
		TokenURL:     cc.TokenURL,
		Scopes:       cc.Scopes,
	}
	if cc.Audience != "" {
		cfg.EndpointParams = url.Values{"audience": {cc.Audience}}
	}
	return &tokenCache{cfg: cfg, url: cc.TokenURL, hc: hc, fetch: make(chan struct{}, 1), clock: clk}, nil
}

// tokenEndpoint is the Endpoint of every error of a token fetch; such errors
// also carry the token URL (Error.TokenURL) and read as the identity
// provider's, not EJBCA's.
const tokenEndpoint = "POST token endpoint"

// IsTokenEndpoint reports whether err came from the OAuth2 token endpoint
// (the identity provider), not from EJBCA.
func IsTokenEndpoint(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Endpoint == tokenEndpoint
}

// OAuthErrorCode is the OAuth2 error code (RFC 6749 section 5.2: e.g.
// invalid_client, invalid_scope, RFC 8707's invalid_target) of a token
// endpoint's refusal, "" for any other error.
func OAuthErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Endpoint == tokenEndpoint {
		return e.oauthCode
	}
	return ""
}

// current is the cached token while it is valid for tokenRefreshMargin more.
func (t *tokenCache) current() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cached == nil || t.cached.AccessToken == "" {
		return ""
	}
	if !t.cached.Expiry.IsZero() && !t.clock.Now().Add(tokenRefreshMargin).Before(t.cached.Expiry) {
		return ""
	}
	return t.cached.AccessToken
}

func (t *tokenCache) token(ctx context.Context) (string, error) {
	if tok := t.current(); tok != "" {
		return tok, nil
	}
	select {
	case t.fetch <- struct{}{}:
	case <-ctx.Done():
		return "", &Error{Endpoint: tokenEndpoint, TokenURL: t.url, Kind: KindRetryable, Err: ctx.Err()}
	}
	defer func() { <-t.fetch }()
	if tok := t.current(); tok != "" { // fetched while this call waited
		return tok, nil
	}
	var handshakeFailed atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		TLSHandshakeDone: func(_ tls.ConnectionState, err error) { handshakeFailed.Store(err != nil) },
	})
	tok, err := t.cfg.Token(context.WithValue(ctx, oauth2.HTTPClient, t.hc))
	if err != nil {
		return "", tokenError(t.url, err, handshakeFailed.Load())
	}
	if !sendable(tok.AccessToken) {
		return "", &Error{Endpoint: tokenEndpoint, TokenURL: t.url, Kind: KindRetryable,
			Message: "its access token cannot be sent in an HTTP header"}
	}
	t.mu.Lock()
	t.cached = tok
	t.mu.Unlock()
	return tok.AccessToken, nil
}

// sendable reports whether a token can be sent as "Authorization: Bearer
// <token>": no control characters, which net/http refuses in a header, and
// no surrounding spaces, which the server would strip.
func sendable(token string) bool {
	for i := 0; i < len(token); i++ {
		if c := token[i]; c < ' ' || c == 0x7f {
			return false
		}
	}
	return strings.TrimSpace(token) == token
}

// invalidate drops the cached token if it is still the one EJBCA refused.
func (t *tokenCache) invalidate(refused string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cached != nil && t.cached.AccessToken == refused {
		t.cached = nil
	}
}

// tokenError classifies a failed token fetch: the endpoint refusing the
// client (400, 401, 403: invalid_client, invalid_scope, invalid_target...) is
// an authentication failure; anything else may pass.
func tokenError(tokenURL string, err error, duringHandshake bool) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		e := &Error{Endpoint: tokenEndpoint, TokenURL: tokenURL, Kind: KindRetryable}
		var header http.Header
		if re.Response != nil {
			e.StatusCode = re.Response.StatusCode
			header = re.Response.Header
		}
		e.oauthCode = clip(re.ErrorCode, 100)
		e.Message = re.ErrorCode
		if re.ErrorDescription != "" {
			e.Message += ": " + re.ErrorDescription
		}
		e.Message = clip(e.Message, maxMessageBytes)
		if e.Message == "" {
			// Not an OAuth2 error document: say what the body was (a web
			// server's 404 page, a proxy's 502).
			if header == nil {
				header = http.Header{}
			}
			e.Message = errorMessage(&response{status: e.StatusCode, header: header, body: re.Body})
		}
		if e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden ||
			(e.StatusCode == http.StatusBadRequest) {
			e.Kind = KindUnauthorized
		}
		return e
	}
	return &Error{Endpoint: tokenEndpoint, TokenURL: tokenURL, Kind: KindRetryable, Err: transportFailure(err, duringHandshake)}
}
