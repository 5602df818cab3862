package ejbca

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

var updateFuzzSeeds = flag.Bool("update-fuzz-seeds", false,
	"rewrite testdata/fuzz/*/sim-* from the simulator's answers (and testdata/fuzz-csr.pem when missing)")

// recordedAnswer is one answer the simulator gave the client.
type recordedAnswer struct {
	path        string
	status      int
	contentType string
	retryAfter  string
	body        []byte
}

// recordingTransport keeps every answer that passes through it.
type recordingTransport struct {
	next    http.RoundTripper
	mu      sync.Mutex
	answers []recordedAnswer
}

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	r.mu.Lock()
	r.answers = append(r.answers, recordedAnswer{path: req.URL.Path, status: resp.StatusCode,
		contentType: resp.Header.Get("Content-Type"), retryAfter: resp.Header.Get("Retry-After"), body: body})
	r.mu.Unlock()
	return resp, nil
}

// last is the latest answer to a path ending in suffix.
func (r *recordingTransport) last(t *testing.T, suffix string) recordedAnswer {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.answers) - 1; i >= 0; i-- {
		if strings.HasSuffix(r.answers[i].path, suffix) {
			return r.answers[i]
		}
	}
	t.Fatalf("no answer recorded for *%s", suffix)
	return recordedAnswer{}
}

// seedWriter collects seeds by target and writes them in the fuzz corpus
// format.
type seedWriter struct {
	seeds map[string]map[string][]any // target, name, values
}

func (w *seedWriter) add(target, name string, values ...any) {
	if w.seeds[target] == nil {
		w.seeds[target] = map[string][]any{}
	}
	w.seeds[target][name] = values
}

// corpusFile is values in the format of go test's testdata/fuzz files.
func corpusFile(values ...any) []byte {
	var b bytes.Buffer
	b.WriteString("go test fuzz v1\n")
	for _, v := range values {
		switch v := v.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", v)
		case string:
			fmt.Fprintf(&b, "string(%q)\n", v)
		case int, bool, uint8:
			fmt.Fprintf(&b, "%T(%v)\n", v, v)
		default:
			panic(fmt.Sprintf("no corpus encoding for %T", v))
		}
	}
	return b.Bytes()
}

// simClient is a client of sim, with mTLS unless creds are given, whose
// answers rec records.
func simClient(t *testing.T, sim *ejbcasim.Sim, creds *ClientCredentials) (*Client, *recordingTransport) {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(sim.CABundlePEM())
	o := Options{URL: sim.URL(), Roots: roots, Timeout: 10 * time.Second, ClientCredentials: creds}
	if creds == nil {
		pair, err := tls.X509KeyPair(sim.ClientCertPEM(), sim.ClientKeyPEM())
		if err != nil {
			t.Fatal(err)
		}
		o.ClientCertificate = &pair
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	rec := &recordingTransport{next: c.http.Transport}
	c.http.Transport = rec
	return c, rec
}

func startSeedSim(t *testing.T, cfg ejbcasim.Config) *ejbcasim.Sim {
	t.Helper()
	sim, err := ejbcasim.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	return sim
}

// writeFuzzCSR makes the CSR of fuzzCSRFile: a P-256 key (thrown away) and
// every kind of name the client compares.
func writeFuzzCSR(t *testing.T) {
	t.Helper()
	_, csr := testkit.CSR(t,
		testkit.Subject(pkix.Name{CommonName: "fuzz.example.com", Organization: []string{"Fuzz, Inc."}, OrganizationalUnit: []string{"Seeds"}}),
		testkit.DNSNames("fuzz.example.com", "www.fuzz.example.com"),
		testkit.IPAddresses(net.ParseIP("192.0.2.10")),
		testkit.URIs("spiffe://fuzz.example/ns/default/sa/fuzz"))
	if err := os.MkdirAll(filepath.Dir(fuzzCSRFile), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fuzzCSRFile, csr, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFuzzSeeds records the simulator's answers to what the fuzz targets
// feed the client: every preset's enrolment, approval, search, chain,
// revocation, token and error answers. With -update-fuzz-seeds it writes
// them to testdata/fuzz/<target>/sim-*; without, it checks that every
// target has its committed seeds, so the generator keeps working.
func TestFuzzSeeds(t *testing.T) {
	if *updateFuzzSeeds {
		if _, err := os.Stat(fuzzCSRFile); os.IsNotExist(err) {
			writeFuzzCSR(t)
		}
	}
	csrPEM, _ := readFuzzCSR(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w := &seedWriter{seeds: map[string]map[string][]any{}}
	enrolment := func(username, ca, profile string) EnrollRequest {
		return EnrollRequest{CSR: csrPEM, CAName: ca, CertificateProfileName: profile, EndEntityProfileName: "EMPTY",
			Username: username, Password: "foo123"}
	}
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	failing := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s succeeded, want an error", what)
		}
	}
	errorSeed := func(name string, a recordedAnswer) {
		w.add("FuzzErrorAnswer", name, a.status, a.contentType, a.retryAfter, a.body)
	}

	// enterprise-9: enrolment, chains, errors, approvals, search, revocation.
	e9 := startSeedSim(t, ejbcasim.Config{Preset: ejbcasim.PresetEnterprise9})
	c, rec := simClient(t, e9, nil)
	issued, err := c.Enroll(ctx, enrolment("fuzz-1", ejbcasim.IssuingCAName, "ENDUSER"))
	must("Enroll", err)
	a := rec.last(t, "/pkcs10enroll")
	w.add("FuzzEnrollAnswer", "sim-enterprise-9-pkcs10enroll", false, a.status, a.body)

	_, err = e9.AddCA("FuzzSubCA", "CN=Fuzz Sub CA,O=EJBCA Sim", ejbcasim.IssuingCAName)
	must("AddCA", err)
	_, err = c.Enroll(ctx, enrolment("fuzz-sub", "FuzzSubCA", "ENDUSER"))
	must("Enroll from a sub CA", err)
	a = rec.last(t, "/pkcs10enroll")
	w.add("FuzzEnrollAnswer", "sim-enterprise-9-pkcs10enroll-sub-ca", false, a.status, a.body)

	_, err = c.Enroll(ctx, enrolment("fuzz-x", "NoSuchCA", "ENDUSER"))
	failing("Enroll from an unknown CA", err)
	a = rec.last(t, "/pkcs10enroll")
	w.add("FuzzEnrollAnswer", "sim-enterprise-9-unknown-ca", false, a.status, a.body)
	errorSeed("sim-enterprise-9-unknown-ca", a)

	_, err = c.Enroll(ctx, enrolment("fuzz-x", ejbcasim.IssuingCAName, "APPROVAL"))
	failing("Enroll on the APPROVAL profile", err)
	a = rec.last(t, "/pkcs10enroll")
	w.add("FuzzEnrollAnswer", "sim-enterprise-9-approvals-enabled", false, a.status, a.body)
	errorSeed("sim-enterprise-9-approvals-enabled", a)

	must("SetCAOffline", e9.SetCAOffline(ejbcasim.IssuingCAName, true))
	_, err = c.Enroll(ctx, enrolment("fuzz-x", ejbcasim.IssuingCAName, "ENDUSER"))
	failing("Enroll from an offline CA", err)
	must("SetCAOffline", e9.SetCAOffline(ejbcasim.IssuingCAName, false))
	errorSeed("sim-enterprise-9-ca-offline", rec.last(t, "/pkcs10enroll"))

	for name, f := range map[string]ejbcasim.Fault{
		"503-retry-after": {Count: 1, Status: http.StatusServiceUnavailable, RetryAfter: "30"},
		"429-date":        {Count: 1, Status: http.StatusTooManyRequests, RetryAfter: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC).Format(http.TimeFormat)},
		"404-proxy-html": {Count: 1, Status: http.StatusNotFound, Body: "<!DOCTYPE html>\n<html>\n<head><title>404 Not Found</title></head>\n" +
			"<body>\n<center><h1>404 Not Found</h1></center>\n<hr><center>nginx</center>\n</body>\n</html>\n"},
		"502-plain": {Count: 1, Status: http.StatusBadGateway, Body: "Bad Gateway: upstream ejbca:8443 refused the connection"},
		"500-empty": {Count: 1, Status: http.StatusInternalServerError, Body: " ", ContentType: "text/plain"},
	} {
		e9.InjectFault("pkcs10enroll", f)
		_, err = c.Enroll(ctx, enrolment("fuzz-x", ejbcasim.IssuingCAName, "ENDUSER"))
		failing("Enroll with fault "+name, err)
		a = rec.last(t, "/pkcs10enroll")
		errorSeed("sim-enterprise-9-"+name, a)
		w.add("FuzzEnrollAnswer", "sim-enterprise-9-"+name, false, a.status, a.body)
	}

	untrustedCert, untrustedKey, err := e9.NewUntrustedClientCert("fuzz-intruder")
	must("NewUntrustedClientCert", err)
	pair, err := tls.X509KeyPair(untrustedCert, untrustedKey)
	must("key pair", err)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(e9.CABundlePEM())
	intruder, err := New(Options{URL: e9.URL(), Roots: roots, ClientCertificate: &pair})
	must("New", err)
	defer intruder.Close()
	intruderRec := &recordingTransport{next: intruder.http.Transport}
	intruder.http.Transport = intruderRec
	_, err = intruder.ListCAs(ctx)
	failing("ListCAs with an untrusted certificate", err)
	errorSeed("sim-enterprise-9-403", intruderRec.last(t, "/v1/ca"))

	// Approval flow.
	ee := EndEntity{Username: "fuzz-2", Password: "foo123", SubjectDN: "CN=fuzz.example.com,OU=Seeds,O=Fuzz\\, Inc.",
		SubjectAltName: "dNSName=fuzz.example.com,dNSName=www.fuzz.example.com,iPAddress=192.0.2.10,uniformResourceIdentifier=spiffe://fuzz.example/ns/default/sa/fuzz",
		CAName:         ejbcasim.IssuingCAName, CertificateProfileName: "APPROVAL", EndEntityProfileName: "EMPTY"}
	add, err := c.AddEndEntity(ctx, ee)
	must("AddEndEntity", err)
	if !add.WaitingForApproval || add.RequestID == 0 {
		t.Fatalf("AddEndEntity = %+v, want waiting with a request id", add)
	}
	a = rec.last(t, "/v1/endentity")
	w.add("FuzzAddEndEntityAnswer", "sim-enterprise-9-202", a.status, a.body)
	errorSeed("sim-enterprise-9-202", a)
	_, err = c.AddEndEntity(ctx, ee)
	must("AddEndEntity again", err)
	w.add("FuzzAddEndEntityAnswer", "sim-enterprise-9-already-exists", rec.last(t, "/v1/endentity").status, rec.last(t, "/v1/endentity").body)

	_, err = c.ApprovalStatus(ctx, add.RequestID)
	must("ApprovalStatus", err)
	a = rec.last(t, "/status")
	w.add("FuzzApprovalStatusAnswer", "sim-enterprise-9-pending", a.status, a.body)

	_, err = c.EnrollForEndEntity(ctx, EnrollForEndEntityRequest{CSR: csrPEM, Username: ee.Username, Password: ee.Password, CAName: ee.CAName})
	failing("EnrollForEndEntity before approval", err)
	a = rec.last(t, "/certificaterequest")
	w.add("FuzzEnrollAnswer", "sim-enterprise-9-certificaterequest-no-end-entity", true, a.status, a.body)

	must("ProcessApproval", c.ProcessApproval(ctx, add.RequestID, true, "fuzz seeds"))
	a = rec.last(t, "/process")
	w.add("FuzzOtherAnswers", "sim-enterprise-9-process", uint8(4), a.status, a.body)
	failing("ProcessApproval again", c.ProcessApproval(ctx, add.RequestID, true, "fuzz seeds"))
	a = rec.last(t, "/process")
	w.add("FuzzOtherAnswers", "sim-enterprise-9-process-again", uint8(4), a.status, a.body)

	_, err = c.ApprovalStatus(ctx, add.RequestID)
	must("ApprovalStatus", err)
	a = rec.last(t, "/status")
	w.add("FuzzApprovalStatusAnswer", "sim-enterprise-9-approved", a.status, a.body)
	_, err = c.ApprovalStatus(ctx, 987654321)
	failing("ApprovalStatus of an unknown id", err)
	a = rec.last(t, "/status")
	w.add("FuzzApprovalStatusAnswer", "sim-enterprise-9-unknown-id", a.status, a.body)

	_, err = c.EnrollForEndEntity(ctx, EnrollForEndEntityRequest{CSR: csrPEM, Username: ee.Username, Password: ee.Password, CAName: ee.CAName})
	must("EnrollForEndEntity", err)
	a = rec.last(t, "/certificaterequest")
	w.add("FuzzEnrollAnswer", "sim-enterprise-9-certificaterequest", true, a.status, a.body)

	rejected := ee
	rejected.Username = "fuzz-3"
	add, err = c.AddEndEntity(ctx, rejected)
	must("AddEndEntity", err)
	must("Reject", e9.Reject(add.RequestID))
	_, err = c.ApprovalStatus(ctx, add.RequestID)
	must("ApprovalStatus", err)
	a = rec.last(t, "/status")
	w.add("FuzzApprovalStatusAnswer", "sim-enterprise-9-rejected", a.status, a.body)

	// Search: v2, and a v2 row without its certificate looked up by v1.
	found, err := c.FindIssued(ctx, FindRequest{Username: "fuzz-1", CAName: ejbcasim.IssuingCAName, CSR: csrPEM})
	must("FindIssued", err)
	if found == nil || !found.Leaf.Equal(issued.Leaf) {
		t.Fatal("FindIssued did not find the enrolled certificate")
	}
	v2 := rec.last(t, "/v2/certificate/search")
	chain := rec.last(t, "/certificate/download")
	_, _, err = c.searchV1(ctx, []criterion{{Property: "QUERY", Value: found.SerialNumber, Operation: "EQUAL"}})
	must("v1 search by serial", err)
	bySerial := rec.last(t, "/v1/certificate/search")
	empty := []byte(`{"certificates":[],"more_results":false}`)
	w.add("FuzzSearchAnswers", "sim-enterprise-9-v2", v2.status, v2.body, empty, chain.body)
	w.add("FuzzSearchAnswers", "sim-enterprise-9-v2-row-without-certificate", v2.status, withoutBase64Cert(t, v2.body), bySerial.body, chain.body)
	w.add("FuzzCAChainAnswer", "sim-enterprise-9-issuing-ca", chain.body)
	_, err = c.CAChain(ctx, "CN=Fuzz Sub CA,O=EJBCA Sim")
	must("CAChain of the sub CA", err)
	w.add("FuzzCAChainAnswer", "sim-enterprise-9-sub-ca", rec.last(t, "/certificate/download").body)
	_, err = c.CAChain(ctx, "CN=No Such CA")
	failing("CAChain of an unknown CA", err)
	errorSeed("sim-enterprise-9-unknown-ca-chain", rec.last(t, "/certificate/download"))

	// Status, CA list, revocation.
	_, err = c.Status(ctx)
	must("Status", err)
	a = rec.last(t, "/v1/certificate/status")
	w.add("FuzzOtherAnswers", "sim-enterprise-9-status", uint8(0), a.status, a.body)
	_, err = c.ListCAs(ctx)
	must("ListCAs", err)
	a = rec.last(t, "/v1/ca")
	w.add("FuzzOtherAnswers", "sim-enterprise-9-ca-list", uint8(1), a.status, a.body)
	_, err = c.CertificateProfile(ctx, "ENDUSER")
	must("CertificateProfile", err)
	a = rec.last(t, "/v2/certificate/profile/ENDUSER")
	w.add("FuzzOtherAnswers", "sim-enterprise-9-certificate-profile", uint8(5), a.status, a.body)
	_, err = c.CertificateProfile(ctx, "NO_SUCH_PROFILE")
	failing("CertificateProfile of an unknown profile", err)
	a = rec.last(t, "/v2/certificate/profile/NO_SUCH_PROFILE")
	w.add("FuzzOtherAnswers", "sim-enterprise-9-unknown-certificate-profile", uint8(5), a.status, a.body)
	errorSeed("sim-enterprise-9-unknown-certificate-profile", a)
	issuer := issued.Leaf.Issuer.String()
	_, err = c.Revoke(ctx, issuer, issued.SerialNumber, ReasonKeyCompromise, time.Time{})
	must("Revoke", err)
	a = rec.last(t, "/revoke")
	w.add("FuzzOtherAnswers", "sim-enterprise-9-revoke", uint8(2), a.status, a.body)
	_, err = c.Revoke(ctx, issuer, issued.SerialNumber, ReasonKeyCompromise, time.Time{})
	failing("Revoke again", err)
	a = rec.last(t, "/revoke")
	w.add("FuzzOtherAnswers", "sim-enterprise-9-revoke-again", uint8(2), a.status, a.body)
	errorSeed("sim-enterprise-9-revoke-again", a)
	_, err = c.RevocationStatus(ctx, issuer, issued.SerialNumber)
	must("RevocationStatus", err)
	a = rec.last(t, "/revocationstatus")
	w.add("FuzzOtherAnswers", "sim-enterprise-9-revocation-status", uint8(3), a.status, a.body)
	_, err = c.Revoke(ctx, issuer, "not-hex", ReasonKeyCompromise, time.Time{})
	failing("Revoke a bad serial", err)
	errorSeed("sim-enterprise-9-bad-serial", rec.last(t, "/revoke"))

	// The OAuth2 token endpoint: a token, and a refusal.
	creds := &ClientCredentials{TokenURL: e9.TokenURL(), ClientID: e9.OAuthClientID(), ClientSecret: e9.OAuthClientSecret()}
	oc, orec := simClient(t, e9, creds)
	_, err = oc.ListCAs(ctx)
	must("ListCAs with OAuth2", err)
	a = orec.last(t, "/oauth2/token")
	w.add("FuzzTokenAnswer", "sim-enterprise-9-token", a.status, a.contentType, a.body)
	bad := *creds
	bad.ClientSecret = "wrong"
	bc, brec := simClient(t, e9, &bad)
	_, err = bc.ListCAs(ctx)
	failing("ListCAs with a wrong client secret", err)
	a = brec.last(t, "/oauth2/token")
	w.add("FuzzTokenAnswer", "sim-enterprise-9-invalid-client", a.status, a.contentType, a.body)

	// enterprise-8: the 202 without an id, no approval API.
	e8 := startSeedSim(t, ejbcasim.Config{Preset: ejbcasim.PresetEnterprise8})
	c, rec = simClient(t, e8, nil)
	add, err = c.AddEndEntity(ctx, ee)
	must("AddEndEntity on enterprise-8", err)
	a = rec.last(t, "/v1/endentity")
	w.add("FuzzAddEndEntityAnswer", "sim-enterprise-8-202", a.status, a.body)
	errorSeed("sim-enterprise-8-202", a)
	_, err = c.ApprovalStatus(ctx, 1)
	failing("ApprovalStatus on enterprise-8", err)
	a = rec.last(t, "/status")
	w.add("FuzzApprovalStatusAnswer", "sim-enterprise-8-no-approval-api", a.status, a.body)
	errorSeed("sim-enterprise-8-no-approval-api", a)

	// community-9: no end entity API.
	c9 := startSeedSim(t, ejbcasim.Config{Preset: ejbcasim.PresetCommunity9})
	c, rec = simClient(t, c9, nil)
	_, err = c.AddEndEntity(ctx, ee)
	failing("AddEndEntity on community-9", err)
	a = rec.last(t, "/v1/endentity")
	w.add("FuzzAddEndEntityAnswer", "sim-community-9-no-end-entity-api", a.status, a.body)

	// An EJBCA without the v2 search: v1 only.
	b, err := ejbcasim.PresetBehaviour(ejbcasim.PresetEnterprise9)
	must("PresetBehaviour", err)
	b.SearchV2 = false
	v1only := startSeedSim(t, ejbcasim.Config{Behaviour: &b})
	c, rec = simClient(t, v1only, nil)
	_, err = c.Enroll(ctx, enrolment("fuzz-1", ejbcasim.IssuingCAName, "ENDUSER"))
	must("Enroll", err)
	found, err = c.FindIssued(ctx, FindRequest{Username: "fuzz-1", CAName: ejbcasim.IssuingCAName, CSR: csrPEM})
	must("FindIssued with v1 only", err)
	if found == nil {
		t.Fatal("FindIssued with v1 only found nothing")
	}
	v2 = rec.last(t, "/v2/certificate/search")
	w.add("FuzzSearchAnswers", "sim-v1-only", v2.status, v2.body, rec.last(t, "/v1/certificate/search").body, rec.last(t, "/certificate/download").body)

	for target, seeds := range w.seeds {
		dir := filepath.Join("testdata", "fuzz", target)
		if !*updateFuzzSeeds {
			for name := range seeds {
				if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
					t.Errorf("seed %s/%s is not committed (go test -run TestFuzzSeeds -update-fuzz-seeds ./internal/ejbca): %v", target, name, err)
				}
			}
			continue
		}
		must("mkdir", os.MkdirAll(dir, 0o755))
		old, _ := filepath.Glob(filepath.Join(dir, "sim-*"))
		for _, p := range old {
			must("remove", os.Remove(p))
		}
		for name, values := range seeds {
			must("write seed", os.WriteFile(filepath.Join(dir, name), corpusFile(values...), 0o644))
		}
	}
}

// withoutBase64Cert is a v2 search answer whose rows lost their
// certificates, as when EJBCA keeps them in a table of their own.
func withoutBase64Cert(t *testing.T, body []byte) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	rows, _ := doc["certificates"].([]any)
	for _, row := range rows {
		if m, ok := row.(map[string]any); ok {
			delete(m, "base64Cert")
		}
	}
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
