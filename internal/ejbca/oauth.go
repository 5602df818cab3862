package ejbca

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
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
// forgets it early when EJBCA refuses it (clock skew, revoked session).
type tokenCache struct {
	mu     sync.Mutex
	fetch  oauth2.TokenSource
	cached oauth2.TokenSource
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
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, hc)
	t := &tokenCache{fetch: fetchSource{cfg: cfg, ctx: ctx}}
	t.cached = oauth2.ReuseTokenSourceWithExpiry(nil, t.fetch, tokenRefreshMargin)
	return t, nil
}

// fetchSource asks the token endpoint every time; tokenCache reuses it.
type fetchSource struct {
	cfg *clientcredentials.Config
	ctx context.Context
}

func (f fetchSource) Token() (*oauth2.Token, error) { return f.cfg.Token(f.ctx) }

const tokenEndpoint = "POST token endpoint"

func (t *tokenCache) token() (string, error) {
	t.mu.Lock()
	src := t.cached
	t.mu.Unlock()
	tok, err := src.Token()
	if err != nil {
		return "", tokenError(err)
	}
	return tok.AccessToken, nil
}

// invalidate drops the cached token if it is still the one EJBCA refused.
func (t *tokenCache) invalidate(refused string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if tok, err := t.cached.Token(); err == nil && tok.AccessToken != refused {
		return
	}
	t.cached = oauth2.ReuseTokenSourceWithExpiry(nil, t.fetch, tokenRefreshMargin)
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
