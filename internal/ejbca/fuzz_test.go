package ejbca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"k8s.io/utils/clock"
)

// The fuzz targets below feed the client what an EJBCA, a proxy in front of
// it or an OAuth2 token endpoint could answer, and check what the client makes
// of it. Answers come from an in-memory transport (fakeEJBCA), so one exec
// costs no network. Their seeds are the simulator's real answers, in
// testdata/fuzz/<target>/sim-* (written by TestFuzzSeeds with
// -update-fuzz-seeds), and the f.Add cases of each target: the shapes proxies
// and older EJBCA versions answer.
//
// Every target asserts that an error is an *Error whose Kind is the one the
// callers act on for that status (failureKinds), with a bounded, valid UTF-8
// message, and that a success matches what the answer said.

// fuzzCSRFile is the CSR the enrolment and search targets ask for: the seeds'
// certificates were issued by the simulator for its key.
const fuzzCSRFile = "testdata/fuzz-csr.pem"

const jsonType = "application/json"

// cannedAnswer is one HTTP answer of the fake EJBCA.
type cannedAnswer struct {
	status      int
	contentType string
	header      http.Header
	body        []byte
}

// fakeEJBCA is an http.RoundTripper answering every call from answer,
// without a network.
type fakeEJBCA struct {
	calls  atomic.Int64
	answer func(r *http.Request) cannedAnswer
}

func (f *fakeEJBCA) RoundTrip(r *http.Request) (*http.Response, error) {
	f.calls.Add(1)
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	a := f.answer(r)
	h := http.Header{}
	for k, v := range a.header {
		h[k] = v
	}
	if a.contentType != "" {
		h.Set("Content-Type", a.contentType)
	}
	return &http.Response{
		Status:     strconv.Itoa(a.status) + " " + http.StatusText(a.status),
		StatusCode: a.status,
		Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(a.body)),
		ContentLength: int64(len(a.body)),
		Request:       r,
	}, nil
}

// fuzzClient is a client (static token) whose calls fake answers.
func fuzzClient(t testing.TB, answer func(*http.Request) cannedAnswer) (*Client, *fakeEJBCA) {
	t.Helper()
	c, err := New(Options{URL: "https://ejbca.fuzz.invalid", BearerToken: "fuzz"})
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeEJBCA{answer: answer}
	c.http = &http.Client{Transport: fake}
	return c, fake
}

// always answers every call the same.
func always(status int, contentType string, body []byte) func(*http.Request) cannedAnswer {
	return func(*http.Request) cannedAnswer {
		return cannedAnswer{status: status, contentType: contentType, body: body}
	}
}

// httpStatus maps any int the fuzzer picks onto 100..599, keeping real
// statuses as they are.
func httpStatus(s int) int {
	if s >= 100 && s <= 599 {
		return s
	}
	return 100 + int(uint(s)%500)
}

// failureKinds are the kinds failure may give a status that is not the
// call's success: the classification the controllers decide by. A 404 may
// be retryable: a proxy's page for a path EJBCA serves.
func failureKinds(status int) []Kind {
	switch {
	case status == http.StatusAccepted:
		return []Kind{KindPending}
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return []Kind{KindUnauthorized}
	case status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500:
		return []Kind{KindRetryable}
	case status == http.StatusNotFound:
		return []Kind{KindNotFound, KindUnsupported, KindRetryable}
	case status == http.StatusConflict:
		return []Kind{KindConflict}
	case status == http.StatusBadRequest:
		// EJBCA's 400 is also its answer for approvals and an offline CA.
		return []Kind{KindPermanent, KindApprovalRequired, KindRetryable}
	default:
		return []Kind{KindPermanent}
	}
}

// maxMessageLen bounds an Error's Message: what the server said is cut to
// maxMessageBytes, plus the words the client adds around it.
const maxMessageLen = maxMessageBytes + 200

// checkError asserts err is an *Error (not wrapped) from endpoint (any
// endpoint when empty) with one of kinds, a bounded, valid UTF-8 message, a
// sane Retry-After, and Is* functions that agree with its Kind.
func checkError(t *testing.T, err error, endpoint string, kinds ...Kind) *Error {
	t.Helper()
	e, ok := err.(*Error)
	if !ok {
		t.Fatalf("error %v (%T) is not an *ejbca.Error", err, err)
	}
	if endpoint != "" && e.Endpoint != endpoint {
		t.Fatalf("error %v names endpoint %q, want %q", err, e.Endpoint, endpoint)
	}
	if !slices.Contains(kinds, e.Kind) {
		t.Fatalf("error %v is %s, want one of %v", err, e.Kind, kinds)
	}
	if !utf8.ValidString(e.Message) {
		t.Fatalf("message %q is not valid UTF-8", e.Message)
	}
	if len(e.Message) > maxMessageLen {
		t.Fatalf("message of %d bytes, want at most %d: %.200q...", len(e.Message), maxMessageLen, e.Message)
	}
	if e.RetryAfter < 0 || e.RetryAfter > maxRetryAfter {
		t.Fatalf("Retry-After %v outside [0, %v]", e.RetryAfter, maxRetryAfter)
	}
	text := e.Error()
	if e.Endpoint == tokenEndpoint {
		// The identity provider's failure names it, not EJBCA.
		if e.TokenURL == "" || !strings.HasPrefix(text, "the identity provider at "+e.TokenURL+" ") {
			t.Fatalf("Error() = %q does not start with the identity provider and its token URL", text)
		}
	} else if !strings.HasPrefix(text, "EJBCA "+e.Endpoint) {
		t.Fatalf("Error() = %q does not start with the endpoint", text)
	}
	if IsRetryable(err) != (e.Kind == KindRetryable) || IsUnauthorized(err) != (e.Kind == KindUnauthorized) ||
		IsNotFound(err) != (e.Kind == KindNotFound) || IsConflict(err) != (e.Kind == KindConflict) ||
		IsUnsupported(err) != (e.Kind == KindUnsupported) || IsApprovalRequired(err) != (e.Kind == KindApprovalRequired) {
		t.Fatalf("the Is* functions disagree with kind %s", e.Kind)
	}
	if IsRetryable(err) && IsPermanent(err) {
		t.Fatalf("error %v is both retryable and permanent", err)
	}
	if e.Kind != KindPending && e.RequestID != 0 {
		t.Fatalf("a %s error carries request id %d", e.Kind, e.RequestID)
	}
	return e
}

// readFuzzCSR is the CSR of fuzzCSRFile, as PEM and parsed.
func readFuzzCSR(tb testing.TB) ([]byte, *x509.CertificateRequest) {
	tb.Helper()
	raw, err := os.ReadFile(fuzzCSRFile)
	if err != nil {
		tb.Fatalf("%v (run TestFuzzSeeds with -update-fuzz-seeds to write it)", err)
	}
	csr, _, err := parseCSR("", raw)
	if err != nil {
		tb.Fatalf("%s: %v", fuzzCSRFile, err)
	}
	return raw, csr
}

// pemCertificates parses every PEM block of data as a certificate and
// fails on anything else, leftovers included.
func pemCertificates(t *testing.T, what string, data []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" || len(block.Headers) != 0 {
			t.Fatalf("%s holds a %q block", what, block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatalf("%s holds a certificate that does not parse: %v", what, err)
		}
		out = append(out, cert)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("%s has %d bytes after its last PEM block", what, len(rest))
	}
	return out
}

// checkChain asserts what a caller stores: ChainPEM starts with the leaf,
// each certificate is signed by the next, every CA certificate is one the
// server sent (in sent, by DER), and CAPEM, when set, is one certificate
// that signs the top of the chain (or is it).
func checkChain(t *testing.T, cert *Certificate, sent [][]byte) {
	t.Helper()
	chain := pemCertificates(t, "ChainPEM", cert.ChainPEM)
	if len(chain) == 0 || !chain[0].Equal(cert.Leaf) {
		t.Fatal("ChainPEM does not start with the leaf")
	}
	known := func(c *x509.Certificate) bool {
		return c.Equal(cert.Leaf) || slices.ContainsFunc(sent, func(der []byte) bool { return bytes.Equal(der, c.Raw) })
	}
	for i := 1; i < len(chain); i++ {
		if err := chain[i-1].CheckSignatureFrom(chain[i]); err != nil {
			t.Fatalf("ChainPEM[%d] is not signed by ChainPEM[%d]: %v", i-1, i, err)
		}
		if !known(chain[i]) {
			t.Fatalf("ChainPEM[%d] (%s) is not a certificate the server sent", i, chain[i].Subject)
		}
	}
	if len(cert.CAPEM) == 0 {
		return
	}
	ca := pemCertificates(t, "CAPEM", cert.CAPEM)
	if len(ca) != 1 {
		t.Fatalf("CAPEM holds %d certificates, want 1", len(ca))
	}
	if !known(ca[0]) {
		t.Fatalf("CAPEM (%s) is not a certificate the server sent", ca[0].Subject)
	}
	top := chain[len(chain)-1]
	if !top.Equal(ca[0]) && top.CheckSignatureFrom(ca[0]) != nil {
		t.Fatalf("CAPEM (%s) does not sign the top of the chain (%s)", ca[0].Subject, top.Subject)
	}
}

// carriesKey asserts cert is for the CSR's public key.
func carriesKey(t *testing.T, cert *x509.Certificate, csr *x509.CertificateRequest) {
	t.Helper()
	pub, ok := csr.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		t.Fatalf("the certificate (serial %X) does not carry the CSR's public key", cert.SerialNumber)
	}
}

// base64DERs is what s may hold as DER: its base64 decoding, and that
// decoding's own base64 decoding (search's double encoding).
func base64DERs(s string) [][]byte {
	var out [][]byte
	once, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil
	}
	out = append(out, once)
	if twice, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(once))); err == nil {
		out = append(out, twice)
	}
	return out
}

// explainedID reports whether a pending answer's request id is one the body
// carries: as request_id, in a link's /{id}/finalize or in a message. Keys
// match without case, as encoding/json's do.
func explainedID(body []byte, id int) bool {
	var doc map[string]any
	if json.Unmarshal(body, &doc) != nil {
		return false
	}
	text := strconv.Itoa(id)
	for k, v := range doc {
		switch {
		case strings.EqualFold(k, "request_id"):
			if n, ok := v.(float64); ok && n == float64(id) {
				return true
			}
		case strings.EqualFold(k, "link"):
			if s, ok := v.(string); ok && strings.Contains(s, "/"+text+"/finalize") {
				return true
			}
		case strings.EqualFold(k, "info_message"), strings.EqualFold(k, "error_message"):
			if s, ok := v.(string); ok && strings.Contains(s, text) {
				return true
			}
		}
	}
	return false
}

// FuzzEnrollAnswer: what pkcs10enroll or certificaterequest answer. A
// success is the certificate the body holds, for the CSR's key, with the
// serial the body gave (else the leaf's), a chain ordered by signature from
// the certificates the body held, and the same answer again once the chain
// cache knows the chain. A failure is an *Error: invalid response for a
// 200/201 it cannot use, else the kind of the status.
func FuzzEnrollAnswer(f *testing.F) {
	csrPEM, csr := readFuzzCSR(f)
	for _, body := range []string{
		`{}`, `null`, `[]`, `not json`, ``, `{"certificate":""}`, `{"certificate":"!!!"}`,
		`{"certificate":"MAo=","certificate_chain":["MAo="]}`,
		`{"certificate":null,"serial_number":"1A","certificate_chain":null,"response_format":"DER"}`,
	} {
		f.Add(false, 201, []byte(body))
		f.Add(true, 200, []byte(body))
	}
	f.Add(false, 400, []byte(`{"error_code":400,"error_message":"Single transaction enrollment request rejected since approvals are enabled for this CA (1) or Certificate Profile (2)."}`))
	f.Add(false, 400, []byte(`{"error_code":400,"error_message":"CA token is off line"}`))
	f.Add(true, 400, []byte(`{"error_code":400,"error_message":"Wrong username or password"}`))
	f.Add(true, 404, []byte(`{"error_code":404,"error_message":"Got request for nonexisting user: fuzz"}`))
	f.Add(false, 404, []byte("<!DOCTYPE html><html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>"))
	f.Add(false, 502, []byte("<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"))
	f.Add(false, 204, []byte(nil))
	f.Fuzz(func(t *testing.T, forEndEntity bool, status int, body []byte) {
		status = httpStatus(status)
		endpoint := "POST /v1/certificate/pkcs10enroll"
		if forEndEntity {
			endpoint = endpointCertificateRequest
		}
		enrol := func(c *Client) (*Certificate, error) {
			if forEndEntity {
				return c.EnrollForEndEntity(context.Background(), EnrollForEndEntityRequest{CSR: csrPEM, Username: "fuzz", Password: "fuzz", CAName: "FuzzCA"})
			}
			return c.Enroll(context.Background(), EnrollRequest{CSR: csrPEM, CAName: "FuzzCA", CertificateProfileName: "ENDUSER",
				EndEntityProfileName: "EMPTY", Username: "fuzz", Password: "fuzz"})
		}
		c, fake := fuzzClient(t, always(status, jsonType, body))
		cert, err := enrol(c)
		if n := fake.calls.Load(); n != 1 {
			t.Fatalf("%d calls, want 1", n)
		}
		success := status/100 == 2
		if err != nil {
			kinds := failureKinds(status)
			if success {
				// Unreadable: EJBCA probably issued, recover by search.
				// Readable, but for another key: invalid.
				kinds = []Kind{KindRetryable, KindInvalidResponse}
			}
			if forEndEntity && (status == http.StatusBadRequest || status == http.StatusNotFound) {
				kinds = append(kinds, KindNotFound)
			}
			e := checkError(t, err, endpoint, kinds...)
			if success && e.Kind == KindRetryable && (!e.UnreadableSuccess || !MayHaveIssued(err)) {
				t.Fatalf("a %d that could not be read does not say EJBCA may have issued: %+v", status, e)
			}
			// EJBCA's own JSON error says it did not issue; anything else
			// at 5xx is a proxy's page, sent while EJBCA may still work.
			if status >= 500 && MayHaveIssued(err) == json.Valid(body) {
				t.Fatalf("a %d (JSON body %v) says may have issued %v: %v", status, json.Valid(body), MayHaveIssued(err), err)
			}
			if IsEndEntityNotFound(err) && !forEndEntity {
				t.Fatalf("pkcs10enroll's %v counts as a missing end entity", err)
			}
			return
		}
		if !success {
			t.Fatalf("status %d gave a certificate", status)
		}
		var sent certificateBody
		if err := json.Unmarshal(body, &sent); err != nil {
			t.Fatalf("a body that is not JSON gave a certificate: %v", err)
		}
		if der := base64DERs(sent.Certificate); len(der) == 0 || !bytes.Equal(der[0], cert.Leaf.Raw) {
			t.Fatal("the leaf is not the answer's certificate")
		}
		carriesKey(t, cert.Leaf, csr)
		want := sent.SerialNumber
		if want == "" {
			want = fmt.Sprintf("%X", cert.Leaf.SerialNumber)
		}
		if cert.SerialNumber != want {
			t.Fatalf("SerialNumber %q, want %q", cert.SerialNumber, want)
		}
		var chain [][]byte
		for _, s := range sent.CertificateChain {
			chain = append(chain, base64DERs(s)...)
		}
		checkChain(t, cert, chain)

		again, err := enrol(c)
		if err != nil {
			t.Fatalf("the same answer failed the second time (chain cached): %v", err)
		}
		if !bytes.Equal(again.ChainPEM, cert.ChainPEM) || !bytes.Equal(again.CAPEM, cert.CAPEM) || again.SerialNumber != cert.SerialNumber {
			t.Fatal("the chain cache changed the answer")
		}
	})
}

// FuzzCSR: the CSR of a CertificateRequest, PEM or DER. A CSR that parses
// has a valid signature, and its PEM form is one CERTIFICATE REQUEST block
// of the same DER, which parses again (from PEM and DER) to the same
// request. Anything else is a permanent *Error.
func FuzzCSR(f *testing.F) {
	csrPEM, csr := readFuzzCSR(f)
	f.Add(csrPEM)
	f.Add(csr.Raw)
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\n-----END CERTIFICATE REQUEST-----\n"))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMAo=\n-----END CERTIFICATE-----\n"))
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x00})
	f.Add(append(append([]byte{}, csr.Raw...), 0))
	f.Fuzz(func(t *testing.T, raw []byte) {
		const endpoint = "POST /v1/certificate/pkcs10enroll"
		got, gotPEM, err := parseCSR(endpoint, raw)
		if err != nil {
			checkError(t, err, endpoint, KindPermanent)
			return
		}
		if err := got.CheckSignature(); err != nil {
			t.Fatalf("a CSR with a bad signature was accepted: %v", err)
		}
		block, rest := pem.Decode([]byte(gotPEM))
		if block == nil || block.Type != "CERTIFICATE REQUEST" || len(rest) != 0 || !bytes.Equal(block.Bytes, got.Raw) {
			t.Fatalf("the PEM sent to EJBCA is not one CERTIFICATE REQUEST block of the CSR: %q", gotPEM)
		}
		for _, form := range [][]byte{[]byte(gotPEM), block.Bytes} {
			again, againPEM, err := parseCSR(endpoint, form)
			if err != nil || !bytes.Equal(again.Raw, got.Raw) || againPEM != gotPEM {
				t.Fatalf("the CSR does not round-trip: %v", err)
			}
		}
		n := requestedNames(got)
		if len(n.subject) > len(got.Subject.Names) {
			t.Fatalf("%d subject attributes from %d", len(n.subject), len(got.Subject.Names))
		}
	})
}

// FuzzSearchAnswers: FindIssued against v2 and v1 search results and the CA
// chain download. It ends within a bounded number of calls; a certificate
// it recovers is one the results held (base64 once or twice), for the CSR's
// key and names, with the chain ordered by signature from the download.
// Errors are *Error: invalid response, or the kind of the v2 status.
func FuzzSearchAnswers(f *testing.F) {
	csrPEM, csr := readFuzzCSR(f)
	empty := []byte(`{"certificates":[]}`)
	restEasy := []byte(`{"error_code":404,"error_message":"RESTEASY003210: Could not find resource for full path: https://ejbca/ejbca/ejbca-rest-api/v2/certificate/search"}`)
	f.Add(200, empty, empty, []byte(nil))
	f.Add(404, restEasy, empty, []byte(nil))
	f.Add(404, restEasy, []byte(`{"certificates":[],"more_results":true}`), []byte(nil))
	f.Add(200, []byte(`{"certificates":[{"serialNumber":"1A","username":"fuzz"},{"serialNumber":"1B","username":"fuzz"}],"more_results":true}`), empty, []byte(nil))
	f.Add(200, []byte(`{"certificates":[{"base64Cert":"TUFvPQ==","username":"fuzz"}]}`), empty, []byte(nil))
	f.Add(200, []byte(`{"certificates":[{},{}],"pagination_summary":{"page_size":2,"current_page":1}}`), empty, []byte(nil))
	f.Add(500, []byte(`<html><body>Internal Server Error</body></html>`), empty, []byte(nil))
	f.Fuzz(func(t *testing.T, v2Status int, v2Body, v1Body, chainBody []byte) {
		v2Status = httpStatus(v2Status)
		c, fake := fuzzClient(t, func(r *http.Request) cannedAnswer {
			switch p := r.URL.Path; {
			case strings.HasSuffix(p, "/v2/certificate/search"):
				return cannedAnswer{status: v2Status, contentType: jsonType, body: v2Body}
			case strings.HasSuffix(p, "/v1/certificate/search"):
				return cannedAnswer{status: http.StatusOK, contentType: jsonType, body: v1Body}
			case strings.HasSuffix(p, "/certificate/download"):
				return cannedAnswer{status: http.StatusOK, contentType: "application/x-pem-file", body: chainBody}
			}
			t.Errorf("unexpected call %s %s", r.Method, r.URL.Path)
			return cannedAnswer{}
		})
		c.searchPageSize = 2 // so that two rows make a full page
		cert, err := c.FindIssued(context.Background(), FindRequest{Username: "fuzz", CAName: "FuzzCA", CSR: csrPEM})
		if n, most := fake.calls.Load(), int64(maxSearchPages+maxCertificateLookups+maxSearchSplits+3); n > most {
			t.Fatalf("%d calls, want at most %d", n, most)
		}
		if err != nil {
			kinds := []Kind{KindInvalidResponse}
			if v2Status != http.StatusOK && v2Status != http.StatusNotFound {
				kinds = append(kinds, failureKinds(v2Status)...)
			}
			e := checkError(t, err, "", kinds...)
			if e.Endpoint != endpointSearchV2 && e.Endpoint != endpointSearchV1 && e.Endpoint != "GET /v1/ca/{subject_dn}/certificate/download" {
				t.Fatalf("error %v names endpoint %q, not one FindIssued calls", err, e.Endpoint)
			}
			return
		}
		if cert == nil {
			return
		}
		var held [][]byte
		var v2 struct {
			Certificates []v2Row `json:"certificates"`
		}
		if json.Unmarshal(v2Body, &v2) == nil {
			for _, row := range v2.Certificates {
				held = append(held, base64DERs(row.Base64Cert)...)
			}
		}
		var v1 struct {
			Certificates []struct {
				Certificate string `json:"certificate"`
			} `json:"certificates"`
		}
		if json.Unmarshal(v1Body, &v1) == nil {
			for _, row := range v1.Certificates {
				held = append(held, base64DERs(row.Certificate)...)
			}
		}
		if !slices.ContainsFunc(held, func(der []byte) bool { return bytes.Equal(der, cert.Leaf.Raw) }) {
			t.Fatal("the recovered certificate is none the search results held")
		}
		carriesKey(t, cert.Leaf, csr)
		if !requestedNames(csr).matches(cert.Leaf) {
			t.Fatal("the recovered certificate does not have the CSR's names")
		}
		if want := fmt.Sprintf("%X", cert.Leaf.SerialNumber); cert.SerialNumber != want {
			t.Fatalf("SerialNumber %q, want %q", cert.SerialNumber, want)
		}
		var downloaded [][]byte
		for rest := chainBody; ; {
			var block *pem.Block
			if block, rest = pem.Decode(rest); block == nil {
				break
			}
			downloaded = append(downloaded, block.Bytes)
		}
		checkChain(t, cert, downloaded)
	})
}

// FuzzCAChainAnswer: the PEM chain download. A success is every PEM block
// of the body, in order, each a certificate; anything else an invalid
// response.
func FuzzCAChainAnswer(f *testing.F) {
	f.Add([]byte(""))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMAo=\n-----END CERTIFICATE-----\n"))
	f.Add([]byte(`{"error_code":404,"error_message":"CA not found"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		const endpoint = "GET /v1/ca/{subject_dn}/certificate/download"
		c, _ := fuzzClient(t, always(http.StatusOK, "application/x-pem-file", body))
		certs, err := c.CAChain(context.Background(), "CN=Fuzz CA,O=Fuzz")
		if err != nil {
			checkError(t, err, endpoint, KindInvalidResponse)
			return
		}
		var blocks [][]byte
		for rest := body; ; {
			var block *pem.Block
			if block, rest = pem.Decode(rest); block == nil {
				break
			}
			blocks = append(blocks, block.Bytes)
		}
		if len(certs) == 0 || len(certs) != len(blocks) {
			t.Fatalf("%d certificates from %d PEM blocks", len(certs), len(blocks))
		}
		for i, cert := range certs {
			if !bytes.Equal(cert.Raw, blocks[i]) {
				t.Fatalf("certificate %d is not PEM block %d", i, i)
			}
		}
	})
}

// FuzzErrorAnswer: any answer that is not a call's success, whatever its
// body (EJBCA's JSON, a proxy's plain text or HTML page) and headers. Its
// Kind is the status's, its Message non-empty, bounded and valid UTF-8 and
// EJBCA's error_message when there is one, Retry-After its seconds (capped),
// and a 202's request id one the body carries.
func FuzzErrorAnswer(f *testing.F) {
	f.Add(400, jsonType, "", []byte(`{"error_code":400,"error_message":"Wrong username or password"}`))
	f.Add(404, "text/html; charset=iso-8859-1", "", []byte("<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n<title>404 Not Found</title>\n</head><body>\n<h1>Not Found</h1>\n<p>The requested URL was not found on this server.</p>\n<hr>\n<address>Apache/2.4.57 (Unix) Server at ejbca.example.com Port 443</address>\n</body></html>\n"))
	f.Add(503, "text/plain", "120", []byte("upstream connect error or disconnect/reset before headers. reset reason: connection termination"))
	f.Add(429, "", "Wed, 21 Oct 2015 07:28:00 GMT", []byte(nil))
	f.Add(503, jsonType, "9999999999", []byte(`{"error_code":503,"error_message":"Service Unavailable"}`))
	f.Add(502, "text/plain; charset=utf-8", "", []byte(strings.Repeat("é", 200)))
	f.Add(400, jsonType, "", []byte(`{"error_code":400,"error_message":"`+strings.Repeat("x", 5000)+`"}`))
	f.Add(500, "text/plain", "", []byte("\xff\xfe invalid UTF-8"))
	f.Add(202, jsonType, "", []byte(`{"status_code":202,"info_message":"Waiting for approval","link":"https://ejbca/ejbca/ejbca-rest-api/v1/certificate/42/finalize","request_id":42}`))
	f.Add(202, jsonType, "", []byte(`{"error_code":202,"error_message":"Request is waiting for approval, approval request ID '77'."}`))
	f.Fuzz(func(t *testing.T, status int, contentType, retryAfterHeader string, body []byte) {
		const endpoint = "POST /v1/certificate/pkcs10enroll"
		status = httpStatus(status)
		r := &response{status: status, header: http.Header{}, body: body}
		if contentType != "" {
			r.header.Set("Content-Type", contentType)
		}
		if retryAfterHeader != "" {
			r.header.Set("Retry-After", retryAfterHeader)
		}
		e := checkError(t, failure(endpoint, r), endpoint, failureKinds(status)...)
		if strings.TrimSpace(e.Message) == "" {
			t.Fatal("no message")
		}
		if status == http.StatusAccepted {
			if e.RequestID < 0 || (e.RequestID > 0 && !explainedID(body, e.RequestID)) {
				t.Fatalf("request id %d is not one the body carries", e.RequestID)
			}
			return
		}
		if s, err := strconv.Atoi(strings.TrimSpace(retryAfterHeader)); err == nil && s > 0 {
			want := maxRetryAfter
			if int64(s) < int64(maxRetryAfter/time.Second) {
				want = time.Duration(s) * time.Second
			}
			if e.RetryAfter != want {
				t.Fatalf("Retry-After %q gave %v, want %v", retryAfterHeader, e.RetryAfter, want)
			}
		}
		var eb errorBody
		if json.Unmarshal(body, &eb) == nil {
			if said := strings.TrimSpace(eb.ErrorMessage); said != "" && len(said) < maxMessageBytes && e.Message != said {
				t.Fatalf("Message %q, want EJBCA's error_message %q", e.Message, said)
			}
		}
	})
}

// FuzzAddEndEntityAnswer: what /v1/endentity answers. 200/201/204 add at
// once; a 202 in either shape, or the 400 "approval request already
// exists", waits for approval with a request id the body carries (or 0);
// anything else is an *Error of the status's kind.
func FuzzAddEndEntityAnswer(f *testing.F) {
	f.Add(202, []byte(`{"status_code":202,"info_message":"Waiting for approval","link":"https://ejbca/ejbca/ejbca-rest-api/v1/certificate/42/finalize","request_id":42}`))
	f.Add(202, []byte(`{"error_code":202,"error_message":"Request is waiting for approval"}`))
	f.Add(202, []byte(`{"request_id":99999999999999999999999,"link":"/7/finalize"}`))
	f.Add(202, []byte(`{"info_message":"approval request id: 12"}`))
	f.Add(202, []byte(`garbage`))
	f.Add(202, []byte(`{"request_id":1,"request_id":null}`))
	f.Add(202, []byte(`{"link":"/1/finalize","LINK":7}`))
	f.Add(202, []byte(`{"info_message":"approval id 1","info_message":null}`))
	f.Add(400, []byte(`{"error_code":400,"error_message":"Approval request with id 1234567 already exists."}`))
	f.Add(409, []byte(`{"error_code":409,"error_message":"User fuzz already exists."}`))
	f.Add(404, []byte(`{"error_code":404,"error_message":"RESTEASY003210: Could not find resource for full path: https://ejbca/ejbca/ejbca-rest-api/v1/endentity"}`))
	f.Add(200, []byte(nil))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		status = httpStatus(status)
		c, _ := fuzzClient(t, always(status, jsonType, body))
		add, err := c.AddEndEntity(context.Background(), EndEntity{Username: "fuzz", Password: "fuzz", SubjectDN: "CN=fuzz",
			CAName: "FuzzCA", CertificateProfileName: "APPROVAL", EndEntityProfileName: "EMPTY"})
		switch {
		case status == http.StatusOK || status == http.StatusCreated || status == http.StatusNoContent:
			if err != nil || add != (Addition{}) {
				t.Fatalf("status %d: %+v, %v; want added at once", status, add, err)
			}
		case status == http.StatusAccepted:
			if err != nil || !add.WaitingForApproval {
				t.Fatalf("202: %+v, %v; want waiting", add, err)
			}
			if add.RequestID < 0 || (add.RequestID > 0 && !explainedID(body, add.RequestID)) {
				t.Fatalf("request id %d is not one the body carries", add.RequestID)
			}
		case err == nil:
			if status != http.StatusBadRequest || add != (Addition{WaitingForApproval: true}) {
				t.Fatalf("status %d: %+v and no error", status, add)
			}
		default:
			checkError(t, err, endpointAddEndEntity, failureKinds(status)...)
			if add != (Addition{}) {
				t.Fatalf("an error came with %+v", add)
			}
		}
	})
}

// FuzzApprovalStatusAnswer: the approval API's status. A success is a
// non-empty, upper-case state the body named (status, else
// approval_status), never both approved and refused; a 200 without one is
// an invalid response, another status an *Error of its kind.
func FuzzApprovalStatusAnswer(f *testing.F) {
	for _, s := range []string{`{"status":"PENDING"}`, `{"approval_status":"waiting_for_approval"}`, `{"status":"EXECUTED"}`,
		`{"status":""}`, `{"status":" "}`, `{}`, `{"status":7}`, `"APPROVED"`} {
		f.Add(200, []byte(s))
	}
	f.Add(404, []byte(`{"error_code":404,"error_message":"Approval request with id 5 was not found."}`))
	f.Add(404, []byte(`{"error_code":404,"error_message":"RESTEASY003210: Could not find resource for full path: https://ejbca/ejbca/ejbca-rest-api/v1/approval/5/status"}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		const endpoint = "GET /v1/approval/{request_id}/status"
		status = httpStatus(status)
		c, _ := fuzzClient(t, always(status, jsonType, body))
		state, err := c.ApprovalStatus(context.Background(), 5)
		if err != nil {
			kinds := failureKinds(status)
			if status == http.StatusOK {
				kinds = []Kind{KindInvalidResponse}
			}
			checkError(t, err, endpoint, kinds...)
			return
		}
		if status != http.StatusOK {
			t.Fatalf("status %d gave state %q", status, state)
		}
		s := string(state)
		if s == "" || s != strings.ToUpper(strings.TrimSpace(s)) {
			t.Fatalf("state %q is empty or not normalised", s)
		}
		if state.Approved() && state.Refused() {
			t.Fatalf("state %q is both approved and refused", s)
		}
		if !strings.Contains(strings.ToUpper(strings.ReplaceAll(string(body), "_", "")), strings.ReplaceAll(s, "_", "")) &&
			state != ApprovalPending {
			t.Fatalf("state %q is not in the body", s)
		}
	})
}

// FuzzOtherAnswers: the remaining JSON answers the issuer reads: the
// status endpoint, the CA list, a revocation and its status, an approval's
// processing, and a certificate profile. A success is what the body held; a failure an
// *Error: invalid response for a 200 it cannot read, else the status's kind.
func FuzzOtherAnswers(f *testing.F) {
	f.Add(uint8(0), 200, []byte(`{"status":"OK","version":"1.0","revision":"EJBCA 9.3.3 Enterprise"}`))
	f.Add(uint8(1), 200, []byte(`{"certificate_authorities":[{"id":1,"name":"IssuingCA","subject_dn":"CN=IssuingCA","issuer_dn":"CN=Root","expiration_date":"2035-01-01T00:00:00Z","external":false}]}`))
	f.Add(uint8(2), 200, []byte(`{"issuer_dn":"CN=IssuingCA","serial_number":"1A","revoked":true,"revocation_reason":"KEY_COMPROMISE","revocation_date":"2025-01-01T00:00:00Z","message":"Successfully revoked"}`))
	f.Add(uint8(2), 409, []byte(`{"error_code":409,"error_message":"Certificate is already revoked"}`))
	f.Add(uint8(2), 400, []byte(`{"error_code":400,"error_message":"Approval request with approvalID 1869448106 already exists."}`))
	f.Add(uint8(3), 200, []byte(`{"issuer_dn":"CN=IssuingCA","serial_number":"1A","revoked":false,"revocation_reason":"NOT_REVOKED"}`))
	f.Add(uint8(3), 200, []byte(`{"revoked":false}`))
	f.Add(uint8(4), 204, []byte(nil))
	f.Add(uint8(5), 200, []byte(`{"certificate_profile_id":1,"available_cas":["IssuingCA"]}`))
	f.Add(uint8(5), 400, []byte(`{"error_code":400,"error_message":"unknown certificate profile"}`))
	f.Fuzz(func(t *testing.T, which uint8, status int, body []byte) {
		status = httpStatus(status)
		c, _ := fuzzClient(t, always(status, jsonType, body))
		ctx := context.Background()
		var got, want any
		var err error
		var endpoint string
		switch which % 6 {
		case 0:
			endpoint, want = "GET /v1/certificate/status", &ServerStatus{}
			got, err = c.Status(ctx)
		case 1:
			endpoint, want = "GET /v1/ca", &struct {
				CAs []CA `json:"certificate_authorities"`
			}{}
			var cas []CA
			cas, err = c.ListCAs(ctx)
			got = &struct {
				CAs []CA `json:"certificate_authorities"`
			}{cas}
		case 2:
			endpoint, want = "PUT /v1/certificate/{issuer_dn}/{serial}/revoke", &RevocationStatus{}
			got, err = c.Revoke(ctx, "CN=Fuzz CA", "1A", ReasonKeyCompromise, time.Time{})
			if err != nil && status == http.StatusBadRequest {
				// EJBCA's "approval already exists" is a revocation waiting.
				checkError(t, err, endpoint, append(failureKinds(status), KindPending)...)
				return
			}
		case 3:
			endpoint, want = "GET /v1/certificate/{issuer_dn}/{serial}/revocationstatus", &RevocationStatus{}
			got, err = c.RevocationStatus(ctx, "CN=Fuzz CA", "1A")
		case 5:
			endpoint, want = "GET /v2/certificate/profile/{profile_name}", &CertificateProfileInfo{}
			got, err = c.CertificateProfile(ctx, "ENDUSER")
			if err != nil && status == http.StatusBadRequest {
				checkError(t, err, endpoint, append(failureKinds(status), KindNotFound)...)
				return
			}
		case 4:
			endpoint = "POST /v1/approval/{request_id}/process"
			err = c.ProcessApproval(ctx, 5, true, "fuzz")
			if status/100 == 2 {
				if err != nil {
					t.Fatalf("status %d: %v", status, err)
				}
				return
			}
			checkError(t, err, endpoint, failureKinds(status)...)
			return
		}
		if err != nil {
			kinds := failureKinds(status)
			if status == http.StatusOK {
				kinds = []Kind{KindInvalidResponse}
			}
			checkError(t, err, endpoint, kinds...)
			return
		}
		if status != http.StatusOK {
			t.Fatalf("status %d: no error", status)
		}
		if err := json.Unmarshal(body, want); err != nil {
			t.Fatalf("a body that is not JSON was read: %v", err)
		}
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if !bytes.Equal(g, w) {
			t.Fatalf("read %s, the body holds %s", g, w)
		}
	})
}

// FuzzTokenAnswer: what the OAuth2 token endpoint answers, through
// golang.org/x/oauth2 and the token cache. A token is the body's
// access_token (JSON, or form-encoded for form and text/plain types), can be
// sent in an Authorization header, and is reused while it is valid for the
// refresh margin; a refusal (400, 401, 403) is unauthorized, anything else
// that fails retryable.
func FuzzTokenAnswer(f *testing.F) {
	f.Add(200, jsonType, []byte(`{"access_token":"eyJhbGciOiJSUzI1NiJ9.e30.sig","token_type":"Bearer","expires_in":3600}`))
	f.Add(200, "application/x-www-form-urlencoded", []byte(`access_token=abc&token_type=bearer&expires_in=60`))
	f.Add(200, "text/plain", []byte(`access_token=a%0Ab`))
	f.Add(200, jsonType, []byte(`{"access_token":"a\nb","expires_in":"3600"}`))
	f.Add(200, jsonType, []byte(`{"access_token":"abc","expires_in":-5}`))
	f.Add(200, jsonType, []byte(`{"error":"invalid_client"}`))
	f.Add(200, jsonType, []byte(`{}`))
	f.Add(401, jsonType, []byte(`{"error":"invalid_client","error_description":"Invalid client credentials"}`))
	f.Add(400, "application/x-www-form-urlencoded", []byte(`error=invalid_grant&error_description=%FF`))
	f.Add(503, "text/html", []byte(`<html><body>Service Unavailable</body></html>`))
	f.Fuzz(func(t *testing.T, status int, contentType string, body []byte) {
		status = httpStatus(status)
		fake := &fakeEJBCA{answer: always(status, contentType, body)}
		tc, err := newTokenCache(ClientCredentials{TokenURL: "https://idp.fuzz.invalid/token", ClientID: "fuzz", ClientSecret: "fuzz"},
			&http.Client{Transport: fake}, clock.RealClock{})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := tc.token(context.Background())
		if err != nil {
			kinds := []Kind{KindRetryable}
			if status == http.StatusBadRequest || status == http.StatusUnauthorized || status == http.StatusForbidden {
				kinds = []Kind{KindUnauthorized}
			}
			checkError(t, err, tokenEndpoint, kinds...)
			return
		}
		if status/100 != 2 {
			t.Fatalf("status %d gave a token", status)
		}
		var want string
		if mt := mediaType(contentType); mt == "application/x-www-form-urlencoded" || mt == "text/plain" {
			vals, err := url.ParseQuery(string(body))
			if err != nil {
				t.Fatalf("a form that does not parse gave a token: %v", err)
			}
			want = vals.Get("access_token")
		} else {
			var doc struct {
				AccessToken string `json:"access_token"`
			}
			_ = json.Unmarshal(body, &doc)
			want = doc.AccessToken
		}
		if tok == "" || tok != want {
			t.Fatalf("token %q, the body's is %q", tok, want)
		}
		if !validHeaderValue("Bearer " + tok) {
			t.Fatalf("token %q cannot be sent in a header", tok)
		}
		tc.mu.Lock()
		expiry := tc.cached.Expiry
		tc.mu.Unlock()
		again, err := tc.token(context.Background())
		if err != nil || again != tok {
			t.Fatalf("second token %q, %v; want %q again", again, err, tok)
		}
		// Reused while valid for the margin, fetched again otherwise (a
		// few seconds either side of the margin are not judged).
		now, calls := time.Now(), fake.calls.Load()
		switch {
		case (expiry.IsZero() || now.Add(tokenRefreshMargin+5*time.Second).Before(expiry)) && calls != 1:
			t.Fatalf("%d fetches for a token valid until %v", calls, expiry)
		case !expiry.IsZero() && expiry.Before(now.Add(tokenRefreshMargin-5*time.Second)) && calls != 2:
			t.Fatalf("%d fetches for a token expiring at %v", calls, expiry)
		}
	})
}

// mediaType is a Content-Type's media type, as oauth2 reads it.
func mediaType(v string) string {
	mt, _, _ := mime.ParseMediaType(v)
	return mt
}

// validHeaderValue is net/http's rule for a field value: no control
// characters but tab.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
