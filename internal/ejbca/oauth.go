package ejbca

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

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
	hc    *http.Client
	fetch chan struct{} // a one-slot semaphore held while fetching

	mu     sync.Mutex
	cached *oauth2.Token
}

func newTokenCache(cc ClientCredentials, hc *http.Client) (*tokenCache, error) {
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
	return &tokenCache{cfg: cfg, hc: hc, fetch: make(chan struct{}, 1)}, nil
}

const tokenEndpoint = "POST token endpoint"

// current is the cached token while it is valid for tokenRefreshMargin more.
func (t *tokenCache) current() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cached == nil || t.cached.AccessToken == "" {
		return ""
	}
	if !t.cached.Expiry.IsZero() && !time.Now().Add(tokenRefreshMargin).Before(t.cached.Expiry) {
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
		return "", &Error{Endpoint: tokenEndpoint, Kind: KindRetryable, Err: ctx.Err()}
	}
	defer func() { <-t.fetch }()
	if tok := t.current(); tok != "" { // fetched while this call waited
		return tok, nil
	}
	tok, err := t.cfg.Token(context.WithValue(ctx, oauth2.HTTPClient, t.hc))
	if err != nil {
		return "", tokenError(err)
	}
	if !sendable(tok.AccessToken) {
		return "", &Error{Endpoint: tokenEndpoint, Kind: KindRetryable,
			Message: "the token endpoint answered an access token that cannot be sent in an HTTP header"}
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
// client is an authentication failure; anything else may pass.
func tokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		e := &Error{Endpoint: tokenEndpoint, Kind: KindRetryable}
		if re.Response != nil {
			e.StatusCode = re.Response.StatusCode
		}
		e.Message = re.ErrorCode
		if re.ErrorDescription != "" {
			e.Message += ": " + re.ErrorDescription
		}
		e.Message = clip(e.Message, maxMessageBytes)
		if e.Message == "" {
			e.Message = "the token endpoint refused the request"
		}
		if e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden ||
			(e.StatusCode == http.StatusBadRequest) {
			e.Kind = KindUnauthorized
		}
		return e
	}
	return &Error{Endpoint: tokenEndpoint, Kind: KindRetryable, Err: transportError(err)}
}
