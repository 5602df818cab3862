package ejbcasim

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// restPrefix is where EJBCA mounts its REST API; clients append it to the host.
const restPrefix = "/ejbca/ejbca-rest-api"

// Config tunes a simulator. The zero value is a working simulator on a random
// loopback port.
type Config struct {
	// Addr to listen on; default "127.0.0.1:0". Keep it a loopback address in
	// tests: the TLS certificate only names 127.0.0.1, ::1 and localhost.
	Addr string
	// Latency is added to every call before it is handled.
	Latency time.Duration
	// ApprovalCertificateProfiles are the certificate profiles that carry an
	// approval profile (created when missing); nil means {"APPROVAL"}, an empty
	// non-nil slice means none.
	ApprovalCertificateProfiles []string
	// TokenLifetime of the tokens issued by the OAuth2 endpoint; default 1h.
	TokenLifetime time.Duration
	// Now is the clock for certificate validity, token and approval expiry and
	// client certificate checks; default time.Now.
	Now func() time.Time
	// Preset names the EJBCA version to behave as (see PresetNames); ""
	// means DefaultPreset.
	Preset string
	// Behaviour, when set, replaces the preset's switches.
	Behaviour *Behaviour
	// RefuseUntrustedClientCertsInHandshake makes the TLS listener verify
	// client certificates against the trusted administrator CAs, as an
	// application server's listener with a truststore does: an untrusted
	// one is refused with a TLS alert (unknown_ca, or bad_certificate and
	// certificate_expired), before any HTTP, instead of EJBCA's 403.
	RefuseUntrustedClientCertsInHandshake bool
}

// Sim is a running simulator. Every method is safe for concurrent use.
type Sim struct {
	cfg       Config
	preset    string
	behaviour Behaviour
	revision  string
	srv       *http.Server
	tlsConfig *tls.Config // the listener's, shared by every Node
	url       string
	closed    chan struct{} // closed by Close: wakes every sleeping call
	closeOnce sync.Once
	closeErr  error
	serveDone chan struct{}
	inflight  sync.WaitGroup

	tlsCA       *keyPair
	clientCAs   []*keyPair // trusted administrator CAs: the default one, then the alternate
	untrustedCA *keyPair
	clientRoots *x509.CertPool
	adminCert   []byte
	adminKey    []byte

	// listener: SetDown's state and the open connections it resets.
	listener downSwitch

	mu               sync.Mutex // guards everything below
	closing          bool
	latency          time.Duration
	protocolDisabled bool

	cas          map[string]*certificateAuthority // by name
	caOrder      []*certificateAuthority
	certProfiles map[string]*certificateProfile
	eeProfiles   map[string]*endEntityProfile
	endEntities  map[string]*endEntity
	approvals    map[int]*approval
	issued       []*issuedCertificate
	issuedByKey  map[string]*issuedCertificate // issuer DN + serial

	revokedClientCerts map[string]bool
	staticTokens       map[string]bool
	defaultStaticToken string
	oauthTokens        map[string]*oauthToken
	tokenRequests      []TokenRequest
	oauthClientID      string
	oauthClientSecret  string
	requiredAudience   string
	tokenAudiences     []string // the token endpoint's known audiences; nil: any
	tokenScopes        []string // the token endpoint's allowed scopes; nil: any

	faults   map[string][]*faultEntry
	counters Counters
	arrivals map[string][]time.Time
	// revokeCalls counts revoke calls that reached the handler, by serial
	// (lower-case hex without leading zeros).
	revokeCalls map[string]int
}

// Start builds the simulator's PKI and default contents, listens on
// cfg.Addr and serves TLS in a goroutine until Close.
func Start(cfg Config) (*Sim, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.ApprovalCertificateProfiles == nil {
		cfg.ApprovalCertificateProfiles = []string{"APPROVAL"}
	}
	if cfg.TokenLifetime <= 0 {
		cfg.TokenLifetime = time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	presetName, behaviour, revision, err := resolveBehaviour(cfg)
	if err != nil {
		return nil, err
	}
	s := &Sim{
		cfg:                cfg,
		preset:             presetName,
		behaviour:          behaviour,
		revision:           revision,
		closed:             make(chan struct{}),
		serveDone:          make(chan struct{}),
		latency:            cfg.Latency,
		cas:                map[string]*certificateAuthority{},
		certProfiles:       map[string]*certificateProfile{},
		eeProfiles:         map[string]*endEntityProfile{},
		endEntities:        map[string]*endEntity{},
		approvals:          map[int]*approval{},
		issuedByKey:        map[string]*issuedCertificate{},
		revokedClientCerts: map[string]bool{},
		staticTokens:       map[string]bool{},
		oauthTokens:        map[string]*oauthToken{},
		faults:             map[string][]*faultEntry{},
		counters:           newCounters(),
	}
	serverCert, err := s.initCredentials()
	if err != nil {
		return nil, err
	}
	if err := s.initContents(); err != nil {
		return nil, err
	}
	for _, p := range cfg.ApprovalCertificateProfiles {
		s.SetApprovalRequired(p, true)
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("ejbcasim: listen on %s: %w", cfg.Addr, err)
	}
	s.url = "https://" + dialableAddr(ln.Addr())
	tlsCfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{serverCert},
		// Client certificates are requested but checked by the simulator, so a
		// bad one gets EJBCA's 403 JSON instead of a TLS alert. No acceptable
		// CA names are sent, so clients always present what they have.
		ClientAuth: tls.RequestClientCert,
		NextProtos: []string{"http/1.1"},
		VerifyConnection: func(tls.ConnectionState) error {
			s.countHandshake()
			return nil
		},
	}
	if cfg.RefuseUntrustedClientCertsInHandshake {
		tlsCfg.ClientAuth = tls.VerifyClientCertIfGiven
		tlsCfg.ClientCAs = s.clientRoots
		tlsCfg.Time = cfg.Now
	}
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	s.srv = &http.Server{
		Handler:           s.routes(),
		ConnState:         s.listener.trackConn,
		Protocols:         protocols,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	s.tlsConfig = tlsCfg
	gate := &gateListener{Listener: ln, isDown: s.isDown}
	go func() {
		defer close(s.serveDone)
		_ = s.srv.Serve(tls.NewListener(gate, tlsCfg))
	}()
	return s, nil
}

// dialableAddr turns a listener address into host:port a client can dial
// (a wildcard listener is reached on 127.0.0.1).
func dialableAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// Close stops serving, drops every connection and waits for the calls in
// progress (sleeping latencies and faults wake at once).
func (s *Sim) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		s.mu.Unlock()
		close(s.closed)
		s.closeErr = s.srv.Close()
		<-s.serveDone
		s.inflight.Wait()
	})
	return s.closeErr
}

// URL is the server's origin, "https://127.0.0.1:PORT"; clients append the
// REST path themselves.
func (s *Sim) URL() string { return s.url }

// BaseURL is the REST API's base URL, URL()+"/ejbca/ejbca-rest-api".
func (s *Sim) BaseURL() string { return s.url + restPrefix }

// TokenURL is the OAuth2 token endpoint, served by the same TLS server.
func (s *Sim) TokenURL() string { return s.url + "/oauth2/token" }

// SetProtocolEnabled switches EJBCA's REST protocol on or off; off, every REST
// path answers 403 with the application server's HTML page.
func (s *Sim) SetProtocolEnabled(enabled bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.protocolDisabled = !enabled
}

// SetLatency replaces the latency added to every call.
func (s *Sim) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

func (s *Sim) now() time.Time { return s.cfg.Now() }

func (s *Sim) protocolOff() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.protocolDisabled
}

// enter registers a call in progress; false once Close has begun.
func (s *Sim) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.inflight.Add(1)
	return true
}

// sleep waits d, or less when the call is cancelled or the simulator closes;
// it reports whether the full time passed.
func (s *Sim) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.closed:
		return false
	}
}

// endpoint is one REST (or token) operation, named for counters and faults.
type endpoint struct {
	name   string
	rest   bool // under the REST API: the disabled protocol applies
	auth   bool // needs an authenticated administrator
	absent bool // this EJBCA version has no such resource: RESTEasy's 404
	handle func(w http.ResponseWriter, r *http.Request, f Fault)
}

func (s *Sim) routes() http.Handler {
	mux := http.NewServeMux()
	b := s.behaviour
	only := func(present bool, method, path, name string, auth bool, h func(http.ResponseWriter, *http.Request, Fault)) {
		e := s.serveEndpoint(endpoint{name: name, rest: true, auth: auth, absent: !present, handle: h})
		mux.Handle(method+" "+restPrefix+path, e)
		// JAX-RS matches a resource path with or without a trailing slash
		// (CertificateRestResourceSystemTest.shouldRevokeCertificate calls
		// .../revoke/?reason=...).
		mux.Handle(method+" "+restPrefix+path+"/{$}", e)
	}
	rest := func(method, path, name string, auth bool, h func(http.ResponseWriter, *http.Request, Fault)) {
		only(true, method, path, name, auth, h)
	}
	rest("GET", "/v1/certificate/status", "status", false, s.handleStatus)
	rest("GET", "/v1/ca/status", "status", false, s.handleStatus)
	only(b.SearchV2, "GET", "/v2/certificate/status", "status", false, s.handleStatusV2)
	rest("GET", "/v1/ca", "ca", true, s.handleCAList)
	rest("GET", "/v1/ca/{subject_dn}/certificate/download", "ca-download", true, s.handleCADownload)
	rest("POST", "/v1/certificate/pkcs10enroll", "pkcs10enroll", true, s.handlePKCS10Enroll)
	only(b.EndEntityAPI, "POST", "/v1/endentity", "endentity", true, s.handleAddEndEntity)
	only(b.ApprovalAPI, "GET", "/v1/approval/{id}/status", "approval-status", true, s.handleApprovalStatus)
	only(b.ApprovalAPI, "POST", "/v1/approval/{id}/process", "approval-process", true, s.handleApprovalProcess)
	rest("POST", "/v1/certificate/{id}/finalize", "finalize", true, s.handleFinalize)
	rest("POST", "/v1/certificate/certificaterequest", "certificaterequest", true, s.handleCertificateRequest)
	rest("PUT", "/v1/certificate/{issuer_dn}/{serial}/revoke", "revoke", true, s.handleRevoke)
	rest("GET", "/v1/certificate/{issuer_dn}/{serial}/revocationstatus", "revocationstatus", true, s.handleRevocationStatus)
	rest("POST", "/v1/certificate/search", "search", true, s.handleSearchV1)
	only(b.SearchV2, "POST", "/v2/certificate/search", "search-v2", true, s.handleSearchV2)
	only(b.CertificateProfileAPI, "GET", "/v2/certificate/profile/{name}", "certificate-profile", true, s.handleCertificateProfile)
	mux.Handle("POST /oauth2/token", s.serveEndpoint(endpoint{name: "token", handle: s.handleToken}))
	mux.HandleFunc("GET /sim/counters", s.handleCounters)
	mux.HandleFunc("/", s.handleUnknownPath)
	return mux
}

func isRESTPath(r *http.Request) bool {
	return r.URL.Path == restPrefix || strings.HasPrefix(r.URL.Path, restPrefix+"/")
}

// handleUnknownPath answers paths (and methods) no endpoint serves, as
// RESTEasy does under the API; a disabled protocol hides them too.
func (s *Sim) handleUnknownPath(w http.ResponseWriter, r *http.Request) {
	if !isRESTPath(r) {
		http.NotFound(w, r)
		return
	}
	if s.protocolOff() {
		writeDisabledPage(w)
		return
	}
	s.writeUnknownResource(w, r)
}

// writeUnknownResource is RESTEasy's answer for a path no resource serves.
func (s *Sim) writeUnknownResource(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, "RESTEASY003210: Could not find resource for full path: "+s.url+r.URL.RequestURI())
}

// serveEndpoint runs one call through the simulator's pipeline: the down
// switch, latency, injected faults, the disabled protocol, authentication,
// the handler, then the fault's way of delivering (or not) the answer.
func (s *Sim) serveEndpoint(ep endpoint) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.enter() {
			abortConnection(w)
			return
		}
		defer s.inflight.Done()
		s.noteArrival(ep.name)
		if s.isDown() {
			abortConnection(w)
			return
		}
		s.mu.Lock()
		latency := s.latency
		s.mu.Unlock()
		if !s.sleep(r.Context(), latency) {
			s.countCall(ep.name, 0)
			abortConnection(w)
			return
		}
		if ep.absent {
			resp := newBufferedResponse()
			if ep.rest && s.protocolOff() {
				writeDisabledPage(resp)
			} else {
				s.writeUnknownResource(resp, r)
			}
			s.countCall(ep.name, resp.statusCode())
			resp.flushTo(w)
			return
		}
		if ep.auth && refusedByNode(r) {
			s.countCall(ep.name, http.StatusForbidden)
			writeError(w, http.StatusForbidden, "Authentication failed: the client certificate or OAuth bearer token is not trusted by this node.")
			return
		}
		f, faulted := s.takeFault(ep.name)
		if faulted {
			if !s.sleep(r.Context(), f.Latency) {
				s.countCall(ep.name, 0)
				abortConnection(w)
				return
			}
			if f.ResetBeforeHandling {
				s.countCall(ep.name, 0)
				abortConnection(w)
				return
			}
			if f.Status != 0 {
				s.countCall(ep.name, f.Status)
				writeFault(w, f)
				return
			}
		}

		if faulted && f.Processing > 0 {
			// Carried out whatever the client does, so the call's context
			// (cancelled when the client goes) is not used from here on.
			s.sleep(context.Background(), f.Processing)
			r = r.WithContext(context.WithoutCancel(r.Context()))
		}
		resp := newBufferedResponse()
		s.handleCall(ep, resp, r, f)
		switch {
		case f.ResetAfterIssuing:
			s.countCall(ep.name, 0)
			abortConnection(w)
		case f.Truncate:
			s.countCall(ep.name, resp.statusCode())
			writeTruncated(w, resp)
		default:
			s.countCall(ep.name, resp.statusCode())
			resp.flushTo(w)
		}
	})
}

// handleCall applies the protocol switch and authentication, then the handler.
func (s *Sim) handleCall(ep endpoint, w http.ResponseWriter, r *http.Request, f Fault) {
	if ep.rest && s.protocolOff() {
		writeDisabledPage(w)
		return
	}
	if ep.auth {
		if err := s.authenticate(r); err != nil {
			writeAPIError(w, err)
			return
		}
	}
	ep.handle(w, r, f)
}
