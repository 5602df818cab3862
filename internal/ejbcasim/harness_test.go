package ejbcasim_test

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

// harness is a running simulator with clients that trust it.
type harness struct {
	t     *testing.T
	sim   *ejbcasim.Sim
	roots *x509.CertPool
	admin *http.Client
	anon  *http.Client
}

func start(t *testing.T, cfg ejbcasim.Config) *harness {
	t.Helper()
	sim, err := ejbcasim.Start(cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(sim.CABundlePEM()) {
		t.Fatal("CABundlePEM holds no certificate")
	}
	h := &harness{t: t, sim: sim, roots: roots}
	h.admin = h.client(sim.ClientCertPEM(), sim.ClientKeyPEM())
	h.anon = h.client(nil, nil)
	return h
}

// client trusts the simulator and presents the given certificate, if any.
func (h *harness) client(certPEM, keyPEM []byte) *http.Client {
	h.t.Helper()
	cfg := &tls.Config{RootCAs: h.roots, MinVersion: tls.VersionTLS12}
	if certPEM != nil {
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			h.t.Fatalf("client key pair: %v", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	tr := &http.Transport{TLSClientConfig: cfg, MaxIdleConnsPerHost: 64, ForceAttemptHTTP2: false}
	h.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// reply is a whole HTTP answer.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// call sends a request; paths starting with "/v" are under the REST base URL.
// body is sent raw when it is a string, else as JSON.
func (h *harness) call(c *http.Client, method, path string, body any, header ...string) reply {
	h.t.Helper()
	r, err := h.try(c, method, path, body, header...)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

func (h *harness) try(c *http.Client, method, path string, body any, header ...string) (reply, error) {
	target := h.sim.URL() + path
	if strings.HasPrefix(path, "/v") {
		target = h.sim.BaseURL() + path
	}
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			h.t.Fatalf("marshal: %v", err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, target, rd)
	if err != nil {
		h.t.Fatalf("new request: %v", err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: raw}, nil
}

func (r reply) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// expectError checks an EJBCA JSON error answer: status, error_code and the
// exact message.
func (r reply) expectError(t *testing.T, status int, message string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q, want JSON; body %s", ct, r.body)
	}
	var e struct {
		Code    int    `json:"error_code"`
		Message string `json:"error_message"`
	}
	r.decode(t, &e)
	if e.Code != status || e.Message != message {
		t.Fatalf("error %d %q, want %d %q", e.Code, e.Message, status, message)
	}
}

// errorMessage is the error_message of a JSON error answer.
func (r reply) errorMessage(t *testing.T) string {
	t.Helper()
	var e struct {
		Message string `json:"error_message"`
	}
	r.decode(t, &e)
	return e.Message
}

// csrSpec describes a CSR to generate.
type csrSpec struct {
	cn     string
	org    string
	dns    []string
	ips    []net.IP
	emails []string
	uris   []*url.URL
	key    crypto.Signer // default: fresh P-256
}

func newCSR(t *testing.T, spec csrSpec) (string, crypto.Signer) {
	t.Helper()
	subject := pkix.Name{CommonName: spec.cn}
	if spec.org != "" {
		subject.Organization = []string{spec.org}
	}
	opts := []testkit.CSROption{testkit.Template(x509.CertificateRequest{URIs: spec.uris}), testkit.Subject(subject),
		testkit.DNSNames(spec.dns...), testkit.IPAddresses(spec.ips...), testkit.Emails(spec.emails...)}
	if spec.key != nil {
		opts = append(opts, testkit.WithKey(spec.key))
	}
	key, csr := testkit.CSR(t, opts...)
	return string(csr), key
}

// enrollBody is a valid pkcs10enroll request for the default CA.
func enrollBody(csr, username, profile string) map[string]any {
	return map[string]any{
		"certificate_request":        csr,
		"certificate_authority_name": "IssuingCA",
		"certificate_profile_name":   profile,
		"end_entity_profile_name":    "EMPTY",
		"username":                   username,
		"password":                   "foo123",
		"include_chain":              true,
		"response_format":            "DER",
	}
}

// enrolled is pkcs10enroll's 201 body.
type enrolled struct {
	Certificate    string   `json:"certificate"`
	SerialNumber   string   `json:"serial_number"`
	ResponseFormat string   `json:"response_format"`
	Chain          []string `json:"certificate_chain"`
}

func (e enrolled) cert(t *testing.T) *x509.Certificate {
	t.Helper()
	return parseB64Cert(t, e.Certificate)
}

func parseB64Cert(t *testing.T, b64 string) *x509.Certificate {
	t.Helper()
	der, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatalf("certificate base64: %v", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("certificate DER: %v", err)
	}
	return c
}

// enroll issues a certificate for username with pkcs10enroll.
func (h *harness) enroll(username, profile string) (enrolled, *x509.Certificate) {
	h.t.Helper()
	csr, _ := newCSR(h.t, csrSpec{cn: username + ".example.com", dns: []string{username + ".example.com"}})
	return h.enrollCSR(csr, username, profile)
}

// enrollCSR issues a certificate for csr and username with pkcs10enroll.
func (h *harness) enrollCSR(csr, username, profile string) (enrolled, *x509.Certificate) {
	h.t.Helper()
	r := h.call(h.admin, "POST", "/v1/certificate/pkcs10enroll", enrollBody(csr, username, profile))
	if r.status != http.StatusCreated {
		h.t.Fatalf("pkcs10enroll: %d %s", r.status, r.body)
	}
	var e enrolled
	r.decode(h.t, &e)
	return e, e.cert(h.t)
}

// fakeClock is a settable clock for Config.Now.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
