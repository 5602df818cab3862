package ejbcasim_test

import (
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

// ejbcaExpectation is one expectation of EJBCA's own REST tests
// (Keyfactor/ejbca-ce, modules/ejbca-rest-api/src-test), ported to the
// simulator over HTTP: test is the EJBCA test class and method it comes
// from, resource the REST resource it checks (docs/compatibility.md counts
// them per resource), applies the presets it holds for (nil: every preset).
type ejbcaExpectation struct {
	resource, test string
	applies        func(ejbcasim.Behaviour) bool
	check          func(t *testing.T, h *harness)
}

const (
	resCertificate   = "CertificateRestResource"
	resCertificateV2 = "CertificateRestResourceV2"
	resCA            = "CaRestResource"
	resApproval      = "ApprovalRestResource"
)

// ejbcaExpectations are the ported expectations, for the endpoints, statuses
// and fields the issuer's client relies on.
var ejbcaExpectations = []ejbcaExpectation{
	{resCertificate, "CertificateRestResourceSystemTest.shouldReturnStatusInformation", nil, func(t *testing.T, h *harness) {
		statusInformation(t, h, "/v1/certificate/status")
	}},
	{resCertificate, "CertificateRestResourceSystemTest.shouldRestrictAccessToRestResourceIfProtocolDisabled", nil, func(t *testing.T, h *harness) {
		protocolDisabled(t, h, "/v1/certificate/status")
	}},
	{resCertificate, "CertificateRestResourceSystemTest.shouldRevokeCertificate", nil, func(t *testing.T, h *harness) {
		_, cert := h.enroll("CertificateRestSystemTestUser", "ENDUSER")
		issuerDN := cert.Issuer.String() // "CN=IssuingCA,O=EJBCA Sim", EJBCA's order
		serial := fmt.Sprintf("%X", cert.SerialNumber)
		r := h.call(h.admin, "PUT", "/v1/certificate/"+url.PathEscape(issuerDN)+"/"+serial+"/revoke/?reason=KEY_COMPROMISE", nil)
		expectJSON(t, r, 200)
		var got map[string]any
		r.decode(t, &got)
		if got["issuer_dn"] != issuerDN || got["serial_number"] != serial || got["revoked"] != true || got["revocation_reason"] != "KEY_COMPROMISE" {
			t.Errorf("revoke answer %s", r.body)
		}
		if rec := issuedRecord(t, h, cert); !rec.Revoked || rec.RevocationReason != "KEY_COMPROMISE" {
			t.Errorf("EJBCA's record %+v, want KEY_COMPROMISE", rec)
		}
	}},
	{resCertificate, "CertificateRestResourceSystemTest.enrollPkcs10ExpectCertificateResponseWithRequestedSubjectDnAndIssuer", nil, func(t *testing.T, h *harness) {
		subject := pkix.Name{Country: []string{"EE"}, Province: []string{"Alabama"}, Locality: []string{"tallinn"},
			Organization: []string{"naabrivalve"}, CommonName: "hello123server6"}
		r := h.call(h.admin, "POST", "/v1/certificate/pkcs10enroll", enrollBody(csrWithSubject(t, subject), "CertificateRestSystemTestUser", "ENDUSER"))
		expectJSON(t, r, 201)
		var e enrolled
		r.decode(t, &e)
		cert := e.cert(t) // base64 of the DER
		if cert.Issuer.String() != h.sim.IssuingCA().Subject.String() {
			t.Errorf("issuer %q, want the CA's %q", cert.Issuer, h.sim.IssuingCA().Subject)
		}
		if cert.Subject.String() != subject.String() {
			t.Errorf("subject %q, want the CSR's %q", cert.Subject, subject)
		}
	}},
	{resCA, "CaRestResourceSystemTest.shouldReturnStatusInformation", nil, func(t *testing.T, h *harness) {
		statusInformation(t, h, "/v1/ca/status")
	}},
	{resCA, "CaRestResourceSystemTest.shouldRestrictAccessToRestResourceIfProtocolDisabled", nil, func(t *testing.T, h *harness) {
		protocolDisabled(t, h, "/v1/ca/status")
	}},
	{resApproval, "ApprovalRestResourceSystemTest.testStatusShouldReturnCorrectApprovalRequestStatus", approvalAPI, func(t *testing.T, h *harness) {
		id := h.addPending("ApprovalRestSystemTestUser")
		r := h.call(h.admin, "GET", fmt.Sprintf("/v1/approval/%d/status", id), nil)
		expectJSON(t, r, 200)
		var got struct {
			RequestID json.Number `json:"request_id"` // a JSON number, as the test reads it (long)
			Status    string      `json:"status"`
		}
		r.decode(t, &got)
		if got.RequestID.String() != fmt.Sprint(id) || got.Status != "PENDING" {
			t.Errorf("approval status %s, want request_id %d and PENDING", r.body, id)
		}
	}},
	{resApproval, "ApprovalRestResourceSystemTest.testStatusShouldReturnErrorForInvalidRequest", approvalAPI, func(t *testing.T, h *harness) {
		h.call(h.admin, "GET", "/v1/approval/-12345/status", nil).
			expectError(t, 400, "Invalid request ID: -12345. Request ID must be a positive integer.")
	}},
	{resCertificateV2, "SearchCertificatesRestResponseV2UnitTest.testConvertRaCertificateSearchResponse", searchV2, func(t *testing.T, h *harness) {
		_, cert := h.enroll("testuser", "ENDUSER")
		r := h.call(h.admin, "POST", "/v2/certificate/search", map[string]any{
			"pagination": map[string]int{"page_size": 10, "current_page": 1},
			"criteria":   []crit{q("QUERY", "testuser", "EQUAL")},
		})
		expectJSON(t, r, 200)
		var page struct {
			Certificates []map[string]any `json:"certificates"`
			Summary      map[string]any   `json:"pagination_summary"`
		}
		r.decode(t, &page)
		if page.Summary["total_certs"] != 1.0 || len(page.Certificates) != 1 {
			t.Fatalf("one certificate on page 1 of 10: %s", r.body)
		}
		row := page.Certificates[0]
		ca := h.sim.IssuingCA()
		want := map[string]any{
			"fingerprint":          sha1Hex(cert.Raw),
			"cAFingerprint":        sha1Hex(ca.Raw),
			"certificateProfileId": 1.0, // ENDUSER's fixed id
			"endEntityProfileId":   1.0, // EMPTY's fixed id
			"expireDate":           float64(cert.NotAfter.UnixMilli()),
			"notBefore":            float64(cert.NotBefore.UnixMilli()),
			"revocationDate":       -1.0,
			"revocationReason":     -1.0, // RevocationReasons.NOT_REVOKED's database value
			"serialNumber":         fmt.Sprintf("%X", cert.SerialNumber),
			"status":               20.0, // CERT_ACTIVE
			"subjectKeyId":         hex.EncodeToString(cert.SubjectKeyId),
			"type":                 1.0, // CERTTYPE_ENDENTITY
			"username":             "testuser",
		}
		for k, v := range want {
			if row[k] != v {
				t.Errorf("%s = %v, want %v", k, row[k], v)
			}
		}
		// base64Cert is a byte[] holding the base64 of the DER, which
		// Jackson writes as base64 again.
		if got := parseB64Cert(t, undoubleBase64(t, row["base64Cert"].(string))); !got.Equal(cert) {
			t.Error("base64Cert is not the certificate")
		}
	}},
	{resCertificateV2, "SearchCertificatesRestResponseV2UnitTest.testConvertRaCertificateSearchResponseWhenCurrentPageNegativeOne", searchV2, func(t *testing.T, h *harness) {
		for range 3 {
			h.enroll("counted", "ENDUSER")
		}
		r := h.call(h.admin, "POST", "/v2/certificate/search", map[string]any{
			"pagination": map[string]int{"page_size": 10, "current_page": -1},
			"criteria":   []crit{q("QUERY", "counted", "EQUAL")},
		})
		expectJSON(t, r, 200)
		var page struct {
			Certificates []map[string]any `json:"certificates"`
			Summary      map[string]any   `json:"pagination_summary"`
		}
		r.decode(t, &page)
		if page.Summary["total_certs"] != 3.0 || page.Certificates == nil || len(page.Certificates) != 0 {
			t.Errorf("current_page -1: %s, want total_certs 3 and an empty list", r.body)
		}
	}},
	maxResults("validationShouldFailOnNullValue", nil, 400, "Invalid maximum number of results, can not be null."),
	maxResults("validationShouldFailOnNegativeValue", -1, 400, "Invalid maximum number of results, can not be less or equal to zero."),
	maxResults("validationShouldFailOnZeroValue", 0, 400, "Invalid maximum number of results, can not be less or equal to zero."),
	maxResults("validationShouldFailOnValueAboveMaximum", 401, 400, "Invalid maximum number of results, can not be more than 400."),
	maxResults("validationShouldPassOnNormalValue", 201, 200, ""),
}

// maxResults ports ValidSearchCertificateMaxNumberOfResultsUnitTest's
// cases to POST /v1/certificate/search. The test mocks the maximum
// (GlobalCesecoreConfiguration.getMaximumQueryCount, 321 in the test); the
// simulator's maximum is 400, which its cases fall on the same side of.
func maxResults(method string, n any, status int, message string) ejbcaExpectation {
	return ejbcaExpectation{resCertificate, "ValidSearchCertificateMaxNumberOfResultsUnitTest." + method, nil, func(t *testing.T, h *harness) {
		r := h.call(h.admin, "POST", "/v1/certificate/search", map[string]any{
			"max_number_of_results": n, "criteria": []crit{q("QUERY", "anyone", "EQUAL")},
		})
		if status != 200 {
			r.expectError(t, status, message)
			return
		}
		expectJSON(t, r, status)
	}}
}

func approvalAPI(b ejbcasim.Behaviour) bool { return b.ApprovalAPI }
func searchV2(b ejbcasim.Behaviour) bool    { return b.SearchV2 }

// TestEJBCAConformance runs every ported expectation on every preset it
// holds for, each on a fresh simulator.
func TestEJBCAConformance(t *testing.T) {
	for _, e := range ejbcaExpectations {
		for _, preset := range ejbcasim.PresetNames() {
			t.Run(e.test+"/"+preset, func(t *testing.T) {
				h := start(t, ejbcasim.Config{Preset: preset})
				if e.applies != nil && !e.applies(h.sim.Behaviour()) {
					t.Skipf("%s: this preset has no such resource", preset)
				}
				e.check(t, h)
			})
		}
	}
}

// TestEJBCAConformanceCounts keeps docs/compatibility.md's counts honest:
// the number of ported expectations per resource.
func TestEJBCAConformanceCounts(t *testing.T) {
	got := map[string]int{}
	for _, e := range ejbcaExpectations {
		got[e.resource]++
	}
	want := map[string]int{resCertificate: 9, resCertificateV2: 2, resCA: 2, resApproval: 2}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("expectations per resource %v, docs/compatibility.md says %v", got, want)
	}
}

// statusInformation is the resources' shouldReturnStatusInformation: 200,
// JSON, status OK, version 1.0 and the EJBCA version as revision.
func statusInformation(t *testing.T, h *harness, path string) {
	r := h.call(h.anon, "GET", path, nil)
	expectJSON(t, r, 200)
	var st map[string]any
	r.decode(t, &st)
	if st["status"] != "OK" || st["version"] != "1.0" || !strings.HasPrefix(fmt.Sprint(st["revision"]), "EJBCA ") {
		t.Errorf("%s: %s", path, r.body)
	}
}

// protocolDisabled is shouldRestrictAccessToRestResourceIfProtocolDisabled:
// with the REST protocol off in the system configuration, 403.
func protocolDisabled(t *testing.T, h *harness, path string) {
	h.sim.SetProtocolEnabled(false)
	if r := h.call(h.anon, "GET", path, nil); r.status != 403 {
		t.Errorf("%s with REST disabled: %d, want 403", path, r.status)
	}
	h.sim.SetProtocolEnabled(true)
	if r := h.call(h.anon, "GET", path, nil); r.status != 200 {
		t.Errorf("%s with REST enabled again: %d", path, r.status)
	}
}

// expectJSON is EjbcaAssert.assertJsonContentType with the status.
func expectJSON(t *testing.T, r reply, status int) {
	t.Helper()
	if r.status != status || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("%d %q, want %d JSON: %s", r.status, r.header.Get("Content-Type"), status, r.body)
	}
}

func issuedRecord(t *testing.T, h *harness, cert *x509.Certificate) ejbcasim.IssuedCert {
	t.Helper()
	for _, c := range h.sim.Issued() {
		if c.Serial.Cmp(cert.SerialNumber) == 0 {
			return c
		}
	}
	t.Fatalf("no record of serial %X", cert.SerialNumber)
	return ejbcasim.IssuedCert{}
}

func sha1Hex(der []byte) string {
	sum := sha1.Sum(der)
	return hex.EncodeToString(sum[:])
}

// csrWithSubject is a PEM CSR for subject.
func csrWithSubject(t *testing.T, subject pkix.Name) string {
	t.Helper()
	_, csr := testkit.CSR(t, testkit.Subject(subject))
	return string(csr)
}
