// Package ejbca is a client for EJBCA's REST API: enrolment, the approval
// flow, recovery of a lost answer by search, revocation and the CA list. It
// speaks what EJBCA's REST resources answer across versions and editions,
// checks what EJBCA returns (chain order, key match) and types its errors so
// callers decide without matching strings.
package ejbca

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"k8s.io/utils/clock"
)

// DefaultBasePath is appended to a URL that names only the server.
const DefaultBasePath = "/ejbca/ejbca-rest-api"

// Defaults for Options left zero.
const (
	DefaultTimeout          = 30 * time.Second
	DefaultMaxResponseBytes = 8 << 20
	DefaultMaxIdleConns     = 256
)

// Options configure a Client. Exactly one credential must be set:
// ClientCertificate (mTLS), BearerToken, or ClientCredentials (OAuth2).
type Options struct {
	// URL is either https://host[:port] or the full REST base path.
	URL string
	// URLs are further nodes of the same EJBCA (sharing its database),
	// tried after URL in this order; see nodeSet.
	URLs []string
	// NodeRetry is how long a failed node is set aside before a read-only
	// call tries it first again; 0 means DefaultNodeRetry.
	NodeRetry time.Duration
	// Roots verify EJBCA's TLS certificate and the token endpoint's; nil
	// means the system roots.
	Roots *x509.CertPool

	ClientCertificate *tls.Certificate
	BearerToken       string
	ClientCredentials *ClientCredentials

	// Timeout bounds each call (and each token fetch); the caller's context
	// can only shorten it.
	Timeout time.Duration
	// MaxResponseBytes caps how much of a response body is read.
	MaxResponseBytes int64
	// MaxIdleConnsPerHost is the keep-alive pool size, and the most
	// connections the client opens to the host; set it to at least the number
	// of concurrent callers so connections are reused, not redialled.
	MaxIdleConnsPerHost int
	// OnRoundTrip, when set, is told the outcome of every call (for metrics):
	// the endpoint template, the HTTP status (0 without a response) and the time taken.
	OnRoundTrip func(endpoint string, status int, took time.Duration)
	// Clock times calls, token expiry, search windows and Retry-After
	// dates; nil means the real clock.
	Clock clock.PassiveClock
	// Limit bounds the calls to EJBCA (nil: none); OnThrottle is told how
	// long a call waited for it.
	Limit      *Limit
	OnThrottle func(time.Duration)
	// MayConnect, when set, is asked at the end of every TLS handshake with
	// EJBCA, after the server was verified and before any request is sent
	// on the connection; false fails the handshake. The manager gives its
	// leader election lease here: a process frozen in a handshake past its
	// lease (the new leader may have enrolled since) must not send the call
	// when it wakes.
	MayConnect func() bool
}

// ErrNotLeading fails a TLS handshake of a process that no longer leads.
var ErrNotLeading = errors.New("this process no longer holds the leader election lease, so it sends nothing to EJBCA")

// Client talks to one EJBCA, through one or more of its nodes, with one
// credential. It is safe for concurrent
// use and keeps its connections (and OAuth2 token) alive between calls, so
// build one per credential set and reuse it.
type Client struct {
	nodes       *nodeSet
	http        *http.Client
	transport   *http.Transport
	bearer      string
	tokens      *tokenCache
	timeout     time.Duration
	maxBody     int64
	onRoundTrip func(string, int, time.Duration)
	clock       clock.PassiveClock
	limit       *limiter
	chains      chainCache
	// noSearchV2 is set once the server answered 404 to the v2 search.
	noSearchV2 atomic.Bool
	// searchPageSize is the v2 search page size; 0 means the default.
	searchPageSize int
	// nodeLost: a call set a usable node aside since TakeNodeLoss last
	// reported it.
	nodeLost atomic.Bool
}

// New builds a client. It makes no network call.
func New(o Options) (*Client, error) {
	if 1+len(o.URLs) > MaxNodes {
		return nil, fmt.Errorf("at most %d EJBCA nodes (url and urls) are supported, got %d", MaxNodes, 1+len(o.URLs))
	}
	nodes, err := newNodeSet(append([]string{o.URL}, o.URLs...), o.NodeRetry)
	if err != nil {
		return nil, err
	}
	creds := 0
	for _, set := range []bool{o.ClientCertificate != nil, o.BearerToken != "", o.ClientCredentials != nil} {
		if set {
			creds++
		}
	}
	if creds != 1 {
		return nil, fmt.Errorf("exactly one of a client certificate, a bearer token or OAuth2 client credentials is needed, got %d", creds)
	}
	c := &Client{
		nodes:       nodes,
		bearer:      o.BearerToken,
		timeout:     o.Timeout,
		maxBody:     o.MaxResponseBytes,
		onRoundTrip: o.OnRoundTrip,
		clock:       o.Clock,
	}
	if c.clock == nil {
		c.clock = clock.RealClock{}
	}
	c.limit = newLimiter(o.Limit, o.OnThrottle)
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.maxBody <= 0 {
		c.maxBody = DefaultMaxResponseBytes
	}
	idle := o.MaxIdleConnsPerHost
	if idle <= 0 {
		idle = DefaultMaxIdleConns
	}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: o.Roots}
	if o.ClientCertificate != nil {
		cert := *o.ClientCertificate
		// Always present the configured certificate, also when the server
		// lists acceptable CAs that do not include its issuer (Go would then
		// send none): EJBCA's refusal (a TLS alert, unknown_ca) names the
		// real fault, where "no client certificate received" would not.
		tlsConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	}
	if may := o.MayConnect; may != nil {
		tlsConfig.VerifyConnection = func(tls.ConnectionState) error {
			if !may() {
				return ErrNotLeading
			}
			return nil
		}
	}
	// MaxConnsPerHost: without a cap, a burst of calls dials more
	// connections than it uses (a call served by a freed connection leaves
	// its dial running), and those beyond the idle pool are closed and
	// later redialled.
	c.transport = &http.Transport{
		Proxy:           http.ProxyFromEnvironment,
		DialContext:     (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig: tlsConfig,
		// A stalled handshake shows as itself, not as the call's deadline;
		// on a loaded machine a handshake can take a while, so never under
		// a second (nor over the call's timeout).
		TLSHandshakeTimeout:   min(10*time.Second, c.timeout, max(c.timeout/2, time.Second)),
		MaxIdleConns:          idle,
		MaxIdleConnsPerHost:   idle,
		MaxConnsPerHost:       idle,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: c.timeout,
		ExpectContinueTimeout: time.Second,
	}
	c.http = &http.Client{Transport: c.transport, Timeout: c.timeout}
	if o.ClientCredentials != nil {
		c.tokens, err = newTokenCache(*o.ClientCredentials, c.http, c.clock)
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

// BaseURL turns what a user wrote in spec.url into the REST base URL: a URL
// with no path gets /ejbca/ejbca-rest-api, a URL with a path is used as is.
func BaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, fmt.Errorf("EJBCA URL %q: %w", raw, err)
	}
	if u.Scheme != "https" {
		return nil, fmt.Errorf("EJBCA URL %q: only https is supported", raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("EJBCA URL %q has no host", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("EJBCA URL %q must not have a query or fragment", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	if u.Path == "" {
		u.Path = DefaultBasePath
	}
	return u, nil
}

// Close drops idle connections.
func (c *Client) Close() { c.transport.CloseIdleConnections() }

// request is one call: the endpoint template names it in errors and metrics,
// path is already escaped.
type request struct {
	method   string
	endpoint string
	path     string
	query    url.Values
	body     any
	// readOnly marks a POST that changes nothing (a search), which, like
	// a GET, may be sent to another node after one gave no answer.
	readOnly bool
}

// idempotent reports whether sending r twice does no harm.
func (r request) idempotent() bool { return r.method == http.MethodGet || r.readOnly }

type response struct {
	status int
	header http.Header
	body   []byte
	// at is when the answer arrived, for Retry-After dates.
	at time.Time
	// node and others name, for a client of several nodes, the node that
	// answered and what the nodes tried before it said (see Error).
	node, others string
}

// sendTo performs the call on one node and returns any response, success
// or not; only a missing response is an error here. A 403 that refuses a client-credentials
// token (expired, revoked: EJBCA's message names the token) drops the cached
// token and tries once more with a new one; other 403s are not retried.
func (c *Client) sendTo(ctx context.Context, base *url.URL, r request) (*response, error) {
	resp, token, err := c.sendOnce(ctx, base, r)
	if err == nil && resp.status == http.StatusForbidden && c.tokens != nil && token != "" &&
		strings.Contains(strings.ToLower(errorMessage(resp)), "token") {
		c.tokens.invalidate(token)
		resp, _, err = c.sendOnce(ctx, base, r)
	}
	return resp, err
}

func (c *Client) sendOnce(ctx context.Context, base *url.URL, r request) (*response, string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	u := *base
	u.RawPath = ""
	u.Path = base.Path + r.path
	if unescaped, err := url.PathUnescape(u.Path); err == nil && unescaped != u.Path {
		u.RawPath = u.Path
		u.Path = unescaped
	}
	u.RawQuery = r.query.Encode()

	var body io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return nil, "", &Error{Endpoint: r.endpoint, Kind: KindPermanent, Err: err}
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return nil, "", &Error{Endpoint: r.endpoint, Kind: KindPermanent, Err: err}
	}
	req.Header.Set("Accept", "application/json")
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	var token string
	switch {
	case c.bearer != "":
		token = c.bearer
	case c.tokens != nil:
		token, err = c.tokens.token(ctx)
		if err != nil {
			var e *Error
			if errors.As(err, &e) {
				e.NotSent = true
			}
			return nil, "", err
		}
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}

	// Whether the request reached the wire decides, when no answer comes,
	// whether EJBCA may have acted on it.
	var wrote, handshakeFailed atomic.Bool
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		WroteRequest:     func(httptrace.WroteRequestInfo) { wrote.Store(true) },
		TLSHandshakeDone: func(_ tls.ConnectionState, err error) { handshakeFailed.Store(err != nil) },
	}))
	release, err := c.limit.acquire(ctx, c.clock.Now)
	if err != nil {
		return nil, token, &Error{Endpoint: r.endpoint, Kind: KindRetryable, NotSent: true, heldBack: true,
			Message: "held back by the issuer's rate limit until the call's deadline", Err: err}
	}
	defer release()
	start := c.clock.Now()
	res, err := c.http.Do(req)
	if err != nil {
		c.observe(r.endpoint, 0, start)
		terr := transportFailure(err, handshakeFailed.Load())
		// A server that refuses the client certificate with a TLS alert
		// (TLS 1.3 sends it after the client thinks the handshake done, so
		// the request may count as written) never passed the call on.
		return nil, token, &Error{Endpoint: r.endpoint, Kind: KindRetryable, Err: terr, NotSent: !wrote.Load() || refusedClientCert(err)}
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, c.maxBody+1))
	c.observe(r.endpoint, res.StatusCode, start)
	success := res.StatusCode/100 == 2
	if err != nil {
		return nil, token, &Error{Endpoint: r.endpoint, StatusCode: res.StatusCode, Kind: KindRetryable, UnreadableSuccess: success,
			Err: fmt.Errorf("reading the response: %w", transportError(err))}
	}
	if int64(len(data)) > c.maxBody {
		kind := KindInvalidResponse
		if success && r.method == http.MethodPost {
			kind = KindRetryable // it may have issued: recover by search
		}
		return nil, token, &Error{Endpoint: r.endpoint, StatusCode: res.StatusCode, Kind: kind, UnreadableSuccess: success,
			Err: fmt.Errorf("response body larger than %d bytes", c.maxBody)}
	}
	return &response{status: res.StatusCode, header: res.Header, body: data, at: c.clock.Now()}, token, nil
}

func (c *Client) observe(endpoint string, status int, start time.Time) {
	if c.onRoundTrip != nil {
		c.onRoundTrip(endpoint, status, c.clock.Since(start))
	}
}

// transportError keeps the cause readable: url.Error repeats the method and
// full URL, which the Error already names.
func transportError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// hintedError is a transport error with a hint at the side to fix.
type hintedError struct {
	err  error
	hint string
}

func (h *hintedError) Error() string { return h.err.Error() + " (" + h.hint + ")" }
func (h *hintedError) Unwrap() error { return h.err }

// transportFailure is transportError with, where the failure shows it, what
// is wrong and on which side: the server's (EJBCA, a proxy in front of it,
// the port named) or the issuer's (its caBundle). duringHandshake says the
// TLS handshake failed, which tells a listener that drops connections from a
// server closing a connection in use.
func transportFailure(err error, duringHandshake bool) error {
	cause := transportError(err)
	if hint := transportHint(cause, duringHandshake); hint != "" {
		return &hintedError{err: cause, hint: hint}
	}
	return cause
}

func transportHint(err error, duringHandshake bool) string {
	text := err.Error()
	var unknownAuthority x509.UnknownAuthorityError
	var hostname x509.HostnameError
	switch {
	case tlsAlert(err, "unknown certificate authority"):
		return "the server does not trust the CA that issued the issuer's client certificate; " +
			"fix it on the server's side: EJBCA's TLS listener (or the TLS proxy in front of it) must trust that CA, " +
			"or use a client certificate from a CA it trusts"
	case tlsAlert(err, "certificate required"):
		return "the server requires a client certificate and got none; use auth.mode mtls, or let EJBCA's TLS listener accept calls without one"
	case tlsAlert(err, badCertAlerts...):
		return "the server refused the issuer's client certificate during the TLS handshake; check it against what EJBCA's TLS listener accepts"
	case strings.Contains(text, "server gave HTTP response to HTTPS client"):
		return "the server answered in plain HTTP: the URL's port does not serve HTTPS; give the HTTPS port (EJBCA's is 8443 by default)"
	case strings.Contains(text, "first record does not look like a TLS handshake"):
		return "the server does not speak TLS on this port (plain HTTP or another protocol); give the HTTPS port (EJBCA's is 8443 by default)"
	case strings.Contains(text, "TLS handshake timeout"):
		return "the server accepted the connection but did not complete the TLS handshake: " +
			"the port may not speak TLS, or the server (or a proxy in front of it) is stuck or overloaded"
	case duringHandshake && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(text, "connection reset by peer")):
		return "the server closed the connection during the TLS handshake without a word: " +
			"the port may not be an HTTPS port, or the server, a proxy or a firewall drops the connection (see its logs); " +
			"a server that requires a client certificate the issuer does not send may also do this"
	case errors.As(err, &unknownAuthority) || strings.Contains(text, "certificate signed by unknown authority"):
		return "fix it on the issuer's side: caBundle must hold the root that signed the server's certificate"
	case errors.As(err, &hostname):
		return "the server's certificate does not name the host of the URL: use a host name it carries, or fix the certificate"
	}
	return ""
}

// badCertAlerts are the TLS alerts with which a server refuses the client
// certificate it was given; clientCertAlerts adds an untrusted issuer and
// none given.
var (
	badCertAlerts    = []string{"bad certificate", "certificate expired", "revoked certificate", "unsupported certificate"}
	clientCertAlerts = append([]string{"unknown certificate authority", "certificate required"}, badCertAlerts...)
)

// refusedClientCert reports a TLS alert with which the server refused the
// client certificate.
func refusedClientCert(err error) bool {
	return tlsAlert(err, clientCertAlerts...)
}

// tlsAlert reports whether err is the server's TLS alert of one of names.
func tlsAlert(err error, names ...string) bool {
	text := err.Error()
	for _, a := range names {
		if strings.Contains(text, "remote error: tls: "+a) {
			return true
		}
	}
	return false
}

// errorBody is EJBCA's JSON error document.
type errorBody struct {
	ErrorCode    int    `json:"error_code"`
	ErrorMessage string `json:"error_message"`
}

// pendingBody is EJBCA's 202 document. It comes in two shapes: the info
// body {"status_code":202,"info_message":...,"link":...} (newer versions may
// add "request_id"), and, from /v1/endentity on some versions, the error
// shape {"error_code":202,"error_message":...} with no id anywhere.
type pendingBody struct {
	StatusCode   int    `json:"status_code"`
	InfoMessage  string `json:"info_message"`
	Link         string `json:"link"`
	RequestID    int    `json:"request_id"`
	ErrorCode    int    `json:"error_code"`
	ErrorMessage string `json:"error_message"`
}

// message is what the 202 said, in either shape.
func (p pendingBody) message() string {
	if p.InfoMessage != "" {
		return p.InfoMessage
	}
	return p.ErrorMessage
}

// parsePending reads a 202 body. One that does not decode cleanly, or
// names a field twice (decoders disagree on which one counts), carries
// nothing: the id it names picks the approval request the issuer follows,
// so an ambiguous one must not pick.
func parsePending(r *response) pendingBody {
	var p pendingBody
	if json.Unmarshal(r.body, &p) != nil || !distinctKeys(r.body) {
		return pendingBody{}
	}
	return p
}

// distinctKeys reports whether a JSON object's top-level keys differ from
// each other under case folding, as encoding/json matches them to fields.
func distinctKeys(body []byte) bool {
	d := json.NewDecoder(bytes.NewReader(body))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return true // not an object: no keys to repeat
	}
	var seen []string
	for d.More() {
		t, err := d.Token()
		if err != nil {
			return false
		}
		key, _ := t.(string)
		for _, k := range seen {
			if strings.EqualFold(k, key) {
				return false
			}
		}
		seen = append(seen, key)
		var skip json.RawMessage
		if d.Decode(&skip) != nil {
			return false
		}
	}
	return true
}

// Messages EJBCA words in ways the client has to recognise. See IsRetryable
// and IsUnsupported.
var (
	// RESTEasy's NotFoundException for a path no resource serves (RESTEASY003210),
	// which EJBCA's ExceptionHandler forwards as a JSON 404.
	unknownPath = regexp.MustCompile(`(?i)could not find resource for (full|relative) path|RESTEASY003210`)
	// A CA or its crypto token that cannot sign now: CAOfflineException,
	// CryptoTokenOfflineException ("CA's CryptoToken not found.", "CA token is
	// off line"), or a CA whose status is not active. pkcs10enroll catches
	// these and answers 400 with the message.
	offline = regexp.MustCompile(`(?i)off[- ]?line|crypto ?token|\bca\b.*\bnot active\b`)
)

// failure turns a non-success response into an *Error.
func failure(endpoint string, r *response) *Error {
	e := &Error{Endpoint: endpoint, StatusCode: r.status, Node: r.node, OtherNodes: r.others}
	if r.status == http.StatusAccepted {
		p := parsePending(r)
		e.Kind = KindPending
		e.Message = clip(strings.TrimSpace(p.message()), maxMessageBytes)
		e.RequestID = pendingRequestID(p)
		if e.Message == "" {
			e.Message = "waiting for approval"
		}
		return e
	}
	e.Message = errorMessage(r)
	e.RetryAfter = retryAfter(r.header.Get("Retry-After"), r.at)
	switch {
	case r.status == http.StatusForbidden || r.status == http.StatusUnauthorized:
		e.Kind = KindUnauthorized
	case r.status >= 500 && !isJSON(r):
		// Not EJBCA's JSON error: a proxy's 502/503/504 page, which may
		// have been sent while EJBCA still works on the call.
		e.Kind, e.Proxy = KindRetryable, true
	case r.status == http.StatusTooManyRequests || r.status == http.StatusRequestTimeout || r.status >= 500:
		e.Kind = KindRetryable
	case r.status == http.StatusNotFound && unknownPath.MatchString(e.Message):
		e.Kind = KindUnsupported
	case r.status == http.StatusNotFound && !isJSON(r):
		// EJBCA answers 404 in JSON; an HTML page is a proxy or web server
		// in front of it (a route being reloaded, a wrong path prefix).
		e.Kind, e.Proxy = KindRetryable, true
		e.Message = "a proxy or web server in front of EJBCA answered instead of EJBCA's REST API (" + e.Message + "); check the url's path"
	case r.status == http.StatusNotFound:
		e.Kind = KindNotFound
	case r.status == http.StatusConflict:
		e.Kind = KindConflict
	case r.status == http.StatusBadRequest && strings.Contains(e.Message, "approvals are enabled"):
		e.Kind = KindApprovalRequired
	case r.status == http.StatusBadRequest && offline.MatchString(e.Message):
		e.Kind = KindRetryable
	default:
		e.Kind = KindPermanent
	}
	return e
}

var (
	// The link EJBCA builds for a 202 ends in /{request_id}/finalize (it is
	// malformed otherwise, so it is never followed).
	linkID = regexp.MustCompile(`/([1-9]\d*)/finalize/?$`)
	// An id named in a message: "Id '123'", "ID 123", "id: 123".
	messageID = regexp.MustCompile(`(?i)\bid\b\W{0,3}([1-9]\d*)\b`)
)

// pendingRequestID takes the approval request id from request_id, else from
// the link, else from an id the message names; 0 when there is none (the
// error shape of /v1/endentity's 202 carries none).
func pendingRequestID(p pendingBody) int {
	if p.RequestID > 0 {
		return p.RequestID
	}
	if m := linkID.FindStringSubmatch(p.Link); m != nil {
		if id, err := strconv.Atoi(m[1]); err == nil && id > 0 {
			return id
		}
	}
	if m := messageID.FindStringSubmatch(p.message()); m != nil {
		if id, err := strconv.Atoi(m[1]); err == nil && id > 0 {
			return id
		}
	}
	return 0
}

var htmlTags = regexp.MustCompile(`(?s)<[^>]*>`)
var spaces = regexp.MustCompile(`\s+`)

// errorMessage is EJBCA's error_message, or, for the plain-text and HTML
// bodies some failures produce, a short readable excerpt saying what it was.
func errorMessage(r *response) string {
	var eb errorBody
	if err := json.Unmarshal(r.body, &eb); err == nil && strings.TrimSpace(eb.ErrorMessage) != "" {
		return clip(strings.TrimSpace(eb.ErrorMessage), maxMessageBytes)
	}
	text := strings.TrimSpace(strings.ToValidUTF8(string(r.body), "\uFFFD"))
	mediaType, _, _ := mime.ParseMediaType(r.header.Get("Content-Type"))
	mediaType = clip(mediaType, 100)
	if strings.Contains(mediaType, "html") || strings.HasPrefix(strings.ToLower(text), "<!doctype") || strings.HasPrefix(text, "<html") {
		text = htmlTags.ReplaceAllString(text, " ")
	}
	text = clip(strings.TrimSpace(spaces.ReplaceAllString(text, " ")), 303)
	if mediaType == "" {
		mediaType = "no content type"
	}
	if text == "" {
		return fmt.Sprintf("%s (empty %s body)", http.StatusText(r.status), mediaType)
	}
	if mediaType == "application/json" {
		return text
	}
	return fmt.Sprintf("non-JSON %s body: %s", mediaType, text)
}

// isJSON reports whether a body is JSON, as EJBCA's REST API answers.
func isJSON(r *response) bool {
	return json.Valid(r.body) && len(strings.TrimSpace(string(r.body))) > 0
}

// retryAfter parses Retry-After as seconds or an HTTP date, at most
// maxRetryAfter.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s > 0 {
		if s >= int(maxRetryAfter/time.Second) {
			return maxRetryAfter // and no overflow
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, maxRetryAfter)
		}
	}
	return 0
}

// decode unmarshals a success body, reporting an unusable one as such.
func decode(endpoint string, r *response, out any) error {
	if err := json.Unmarshal(r.body, out); err != nil {
		excerpt := clip(string(r.body), 123)
		return &Error{Endpoint: endpoint, StatusCode: r.status, Kind: KindInvalidResponse,
			Message: fmt.Sprintf("unreadable JSON body %q", excerpt), Err: err}
	}
	return nil
}
