package ejbca_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

// Names of the simulator's default contents.
const (
	issuingCA      = ejbcasim.IssuingCAName
	issuingCADN    = "CN=IssuingCA,O=EJBCA Sim"
	rootCADN       = "CN=EJBCA Sim Root CA"
	certProfile    = "ENDUSER"
	approvalProf   = "APPROVAL"
	eeProfile      = "EMPTY"
	enrolPassword  = "foo123"
	testCallBudget = 20 * time.Second
	// backdateAllowance is what a caller of FindIssued subtracts from the
	// time of its attempt: EJBCA backdates notBefore by 10 minutes, and
	// FindIssued compares notBefore with IssuedAfter as given (the
	// controllers use the same allowance).
	backdateAllowance = 15 * time.Minute
)

// authMode is one of the client's three credential kinds.
type authMode string

const (
	modeMTLS   authMode = "mTLS"
	modeOAuth2 authMode = "OAuth2"
	modeToken  authMode = "static-token"
)

var allModes = []authMode{modeMTLS, modeOAuth2, modeToken}

// startSim starts a simulator closed at the end of the test.
func startSim(tb testing.TB, cfg ejbcasim.Config) *ejbcasim.Sim {
	tb.Helper()
	sim, err := ejbcasim.Start(cfg)
	if err != nil {
		tb.Fatalf("ejbcasim.Start: %v", err)
	}
	tb.Cleanup(func() { _ = sim.Close() })
	return sim
}

// simRoots is a pool holding only the simulator's TLS CA.
func simRoots(tb testing.TB, sim *ejbcasim.Sim) *x509.CertPool {
	tb.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(sim.CABundlePEM()) {
		tb.Fatal("CABundlePEM holds no certificate")
	}
	return pool
}

// options are the client options for the simulator in the given mode.
func options(tb testing.TB, sim *ejbcasim.Sim, mode authMode) ejbca.Options {
	tb.Helper()
	o := ejbca.Options{URL: sim.URL(), Roots: simRoots(tb, sim), Timeout: 10 * time.Second}
	switch mode {
	case modeMTLS:
		pair, err := tls.X509KeyPair(sim.ClientCertPEM(), sim.ClientKeyPEM())
		if err != nil {
			tb.Fatalf("client key pair: %v", err)
		}
		o.ClientCertificate = &pair
	case modeOAuth2:
		o.ClientCredentials = &ejbca.ClientCredentials{
			TokenURL:     sim.TokenURL(),
			ClientID:     sim.OAuthClientID(),
			ClientSecret: sim.OAuthClientSecret(),
		}
	case modeToken:
		o.BearerToken = sim.StaticToken()
	default:
		tb.Fatalf("unknown auth mode %q", mode)
	}
	return o
}

// newClient builds a client from o and closes it at the end of the test.
func newClient(tb testing.TB, o ejbca.Options) *ejbca.Client {
	tb.Helper()
	c, err := ejbca.New(o)
	if err != nil {
		tb.Fatalf("ejbca.New: %v", err)
	}
	tb.Cleanup(c.Close)
	return c
}

// clientFor is a client for the simulator in the given mode.
func clientFor(tb testing.TB, sim *ejbcasim.Sim, mode authMode) *ejbca.Client {
	tb.Helper()
	return newClient(tb, options(tb, sim, mode))
}

// certPair parses a PEM certificate and key into a tls.Certificate.
func certPair(tb testing.TB, certPEM, keyPEM []byte) *tls.Certificate {
	tb.Helper()
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		tb.Fatalf("key pair: %v", err)
	}
	return &pair
}

// csrSpec describes a CSR to generate.
type csrSpec struct {
	cn   string
	org  string
	dns  []string
	ips  []net.IP
	uris []string
}

// newCSR generates a P-256 key and a PEM CSR for it.
func newCSR(tb testing.TB, spec csrSpec) ([]byte, *ecdsa.PrivateKey) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("generate key: %v", err)
	}
	return csrFor(tb, key, spec), key
}

// csrFor is a PEM CSR for key with spec's names.
func csrFor(tb testing.TB, key *ecdsa.PrivateKey, spec csrSpec) []byte {
	tb.Helper()
	subject := pkix.Name{CommonName: spec.cn}
	if spec.org != "" {
		subject.Organization = []string{spec.org}
	}
	_, csr := testkit.CSR(tb, testkit.WithKey(key), testkit.Subject(subject), testkit.DNSNames(spec.dns...),
		testkit.IPAddresses(spec.ips...), testkit.URIs(spec.uris...))
	return csr
}

// simpleCSR is a CSR with just a common name.
func simpleCSR(tb testing.TB, cn string) ([]byte, *ecdsa.PrivateKey) {
	tb.Helper()
	return newCSR(tb, csrSpec{cn: cn, dns: []string{cn}})
}

// enrolment is the usual pkcs10enroll request for the default CA and profiles.
func enrolment(csr []byte, username string) ejbca.EnrollRequest {
	return ejbca.EnrollRequest{
		CSR:                    csr,
		CAName:                 issuingCA,
		CertificateProfileName: certProfile,
		EndEntityProfileName:   eeProfile,
		Username:               username,
		Password:               enrolPassword,
	}
}

// ctxFor is a context bounded for one test.
func ctxFor(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testCallBudget)
	tb.Cleanup(cancel)
	return ctx
}

// asError unwraps the client's *ejbca.Error, failing the test without one.
func asError(tb testing.TB, err error) *ejbca.Error {
	tb.Helper()
	var e *ejbca.Error
	if !errors.As(err, &e) {
		tb.Fatalf("error %v (%T) is not an *ejbca.Error", err, err)
	}
	return e
}

// decodePEMCerts parses every CERTIFICATE block of a PEM bundle.
func decodePEMCerts(tb testing.TB, data []byte) []*x509.Certificate {
	tb.Helper()
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			tb.Fatalf("unexpected PEM block %q", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			tb.Fatalf("parse certificate: %v", err)
		}
		certs = append(certs, c)
	}
	return certs
}

// checkIssued asserts what a caller relies on in an issued certificate: the
// CSR's key, ChainPEM = leaf + IssuingCA, CAPEM = root, and a chain that
// verifies against the root.
func checkIssued(tb testing.TB, sim *ejbcasim.Sim, cert *ejbca.Certificate, key *ecdsa.PrivateKey) {
	tb.Helper()
	if cert == nil || cert.Leaf == nil {
		tb.Fatal("no certificate returned")
	}
	if !key.PublicKey.Equal(cert.Leaf.PublicKey) {
		tb.Error("the leaf does not carry the CSR's public key")
	}
	chain := decodePEMCerts(tb, cert.ChainPEM)
	if len(chain) != 2 {
		tb.Fatalf("ChainPEM holds %d certificates, want 2 (leaf, IssuingCA)", len(chain))
	}
	if !chain[0].Equal(cert.Leaf) {
		tb.Error("ChainPEM does not start with the leaf")
	}
	if !chain[1].Equal(sim.IssuingCA()) {
		tb.Errorf("ChainPEM[1] is %q, want the issuing CA", chain[1].Subject)
	}
	ca := decodePEMCerts(tb, cert.CAPEM)
	if len(ca) != 1 || !ca[0].Equal(sim.RootCA()) {
		tb.Fatalf("CAPEM is not the root CA alone (%d certificates)", len(ca))
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca[0])
	inter := x509.NewCertPool()
	inter.AddCert(chain[1])
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		tb.Errorf("the chain does not verify against the root: %v", err)
	}
	if want := cert.Leaf.SerialNumber.Text(16); !equalFoldHex(cert.SerialNumber, want) {
		tb.Errorf("SerialNumber %q does not match the leaf's %s", cert.SerialNumber, want)
	}
}

func equalFoldHex(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x >= 'A' && x <= 'F' {
			x += 'a' - 'A'
		}
		if y >= 'A' && y <= 'F' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// serialHex is EJBCA's form of a serial: upper-case hex, no leading zeros.
func serialHex(c *x509.Certificate) string { return upperHex(c.SerialNumber.Text(16)) }

func upperHex(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'f' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// recorder is a TLS server on 127.0.0.1 that records what the client sends
// and answers as told: for the request bodies, which the simulator does not
// expose.
type recorder struct {
	srv    *httptest.Server
	mu     sync.Mutex
	bodies map[string][]map[string]any // by path
	answer func(path string) (int, string)
}

func startRecorder(tb testing.TB, answer func(path string) (int, string)) (*recorder, *ejbca.Client) {
	tb.Helper()
	rec := &recorder{bodies: map[string][]map[string]any{}, answer: answer}
	rec.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		raw, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(raw, &body)
		rec.mu.Lock()
		rec.bodies[r.URL.Path] = append(rec.bodies[r.URL.Path], body)
		rec.mu.Unlock()
		status, text := rec.answer(r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, text)
	}))
	tb.Cleanup(rec.srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(rec.srv.Certificate())
	c := newClient(tb, ejbca.Options{URL: rec.srv.URL, Roots: roots, BearerToken: "recorded", Timeout: 10 * time.Second})
	return rec, c
}

// sent is the body of the n-th request to path (under the default base path).
func (r *recorder) sent(tb testing.TB, path string, n int) map[string]any {
	tb.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	bodies := r.bodies[ejbca.DefaultBasePath+path]
	if n >= len(bodies) {
		tb.Fatalf("%d requests to %s, want at least %d", len(bodies), path, n+1)
	}
	return bodies[n]
}

// count is how many requests reached path.
func (r *recorder) count(path string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.bodies[ejbca.DefaultBasePath+path])
}
