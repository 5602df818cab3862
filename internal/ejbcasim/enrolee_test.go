package ejbcasim_test

import (
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"

	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
)

// TestFinalizeEnrols: finalize is no status probe. On an approved addition
// it issues a certificate for the end entity with a key the simulator
// generates, spending the enrolment code; a second call is refused.
func TestFinalizeEnrols(t *testing.T) {
	for _, preset := range approvalPresets {
		t.Run(preset, func(t *testing.T) {
			h := start(t, ejbcasim.Config{Preset: preset})
			id := h.addPending("fin")
			path := fmt.Sprintf("/v1/certificate/%d/finalize", id)
			body := map[string]any{"response_format": "DER", "password": "enrol-fin"}

			// Waiting: the info body; request_id only where the version has it.
			r := h.call(h.admin, "POST", path, body)
			var w waiting
			r.decode(t, &w)
			if r.status != 202 || w.InfoMessage != fmt.Sprintf("Request with Id '%d' is still waiting for approval", id) ||
				!strings.HasSuffix(w.Link, fmt.Sprintf("/%d/finalize", id)) {
				t.Fatalf("finalize while pending: %d %s", r.status, r.body)
			}
			if hasID := strings.Contains(string(r.body), `"request_id"`); hasID == h.sim.Behaviour().PendingWithoutID {
				t.Errorf("request_id present %v on %s: %s", hasID, preset, r.body)
			}
			h.call(h.admin, "POST", "/v1/certificate/999/finalize", body).expectError(t, 400, "Could not find request with Id '999'")
			h.call(h.admin, "POST", path, map[string]any{"password": "enrol-fin"}).expectError(t, 400, "Invalid parameter: response_format")
			h.call(h.admin, "POST", path, map[string]any{"response_format": "der", "password": "enrol-fin"}).expectError(t, 400, "Invalid parameter: response_format")
			h.call(h.admin, "POST", path, nil).expectError(t, 500, "General failure.")
			if r := h.call(h.admin, "POST", "/v1/certificate/x1/finalize", body); r.status != 404 {
				t.Fatalf("non-numeric id: %d %s", r.status, r.body)
			}

			if err := h.sim.Approve(id); err != nil {
				t.Fatal(err)
			}
			h.call(h.admin, "POST", path, map[string]any{"response_format": "P12", "password": "enrol-fin"}).
				expectError(t, 400, "Invalid response format. Cannot create keystore for certificate request  with user generated keys")
			h.call(h.admin, "POST", path, map[string]any{"response_format": "DER", "password": "wrong"}).
				expectError(t, 403, "Got request for user with invalid password: fin.")
			if n := h.sim.Counters().Enrollments; n != 0 {
				t.Fatalf("%d enrolments before a good finalize", n)
			}

			r = h.call(h.admin, "POST", path, body)
			var e enrolled
			r.decode(t, &e)
			if r.status != 201 || e.ResponseFormat != "DER" {
				t.Fatalf("finalize after approval: %d %s", r.status, r.body)
			}
			cert := e.cert(t)
			if cert.Subject.String() != "CN=fin.example.com,O=Example" || fmt.Sprintf("%X", cert.SerialNumber) != e.SerialNumber {
				t.Fatalf("certificate %s %s", cert.Subject, e.SerialNumber)
			}
			issued := h.sim.Issued()
			if len(issued) != 1 || issued[0].Endpoint != "finalize" || issued[0].Username != "fin" {
				t.Fatalf("Issued %+v", issued)
			}
			if ee, _ := h.sim.EndEntity("fin"); ee.Status != "GENERATED" {
				t.Fatalf("end entity status %s", ee.Status)
			}
			h.call(h.admin, "POST", path, body).expectError(t, 400, fmt.Sprintf("Enrollment with Id '%d' has already been finalized", id))
			// The enrolment code is spent for certificaterequest too.
			csr, _ := newCSR(t, csrSpec{cn: "fin"})
			h.call(h.admin, "POST", "/v1/certificate/certificaterequest", certificateRequestBody(csr, "fin", "enrol-fin", false)).
				expectError(t, 400, "Got request with status GENERATED (40). Status NEW, FAILED or INPROCESS required: fin.")
			if n := h.sim.Counters().Enrollments; n != 1 {
				t.Fatalf("%d enrolments, want 1", n)
			}
		})
	}
}

func TestFinalizePEM(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	id := h.addPending("pem")
	if err := h.sim.Approve(id); err != nil {
		t.Fatal(err)
	}
	r := h.call(h.admin, "POST", fmt.Sprintf("/v1/certificate/%d/finalize", id), map[string]any{"response_format": "PEM", "password": "enrol-pem"})
	var e enrolled
	r.decode(t, &e)
	raw, err := base64.StdEncoding.DecodeString(e.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	if block, _ := pem.Decode(raw); r.status != 201 || e.ResponseFormat != "PEM" || block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("PEM finalize: %d %s", r.status, r.body)
	}
}

// TestCertificateRequestType: the 9.x build of enterprise-9 fails without
// certificate_request_type; the others treat a missing type as PKCS10.
func TestCertificateRequestType(t *testing.T) {
	for _, preset := range ejbcasim.PresetNames() {
		t.Run(preset, func(t *testing.T) {
			h := start(t, ejbcasim.Config{Preset: preset})
			for _, u := range []string{"typed", "untyped"} {
				if err := h.sim.AddEndEntity(ejbcasim.EndEntity{Username: u, SubjectDN: "CN=" + u, CAName: "IssuingCA",
					CertificateProfile: "ENDUSER", EndEntityProfile: "EMPTY"}, "code-"+u); err != nil {
					t.Fatal(err)
				}
			}
			csr, _ := newCSR(t, csrSpec{cn: "any"})
			if r := h.call(h.admin, "POST", "/v1/certificate/certificaterequest", certificateRequestBody(csr, "typed", "code-typed", false)); r.status != 201 {
				t.Fatalf("typed: %d %s", r.status, r.body)
			}
			untyped := certificateRequestBody(csr, "untyped", "code-untyped", false)
			delete(untyped, "certificate_request_type")
			r := h.call(h.admin, "POST", "/v1/certificate/certificaterequest", untyped)
			if h.sim.Behaviour().CertificateRequestTypeRequired {
				r.expectError(t, 500, "General failure.")
				if ee, _ := h.sim.EndEntity("untyped"); ee.Status != "NEW" {
					t.Fatalf("the failed call changed the end entity: %+v", ee)
				}
				return
			}
			if r.status != 201 {
				t.Fatalf("untyped: %d %s", r.status, r.body)
			}
			bogus := certificateRequestBody(csr, "untyped", "code-untyped", false)
			bogus["certificate_request_type"] = "X509"
			h.call(h.admin, "POST", "/v1/certificate/certificaterequest", bogus).
				expectError(t, 400, "An unsupported certificate request type has been passed: X509")
		})
	}
}

func TestCertificateRequestRefusals(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	add := func(u, token string) {
		t.Helper()
		if err := h.sim.AddEndEntity(ejbcasim.EndEntity{Username: u, SubjectDN: "CN=" + u + ",O=Example", CAName: "IssuingCA",
			CertificateProfile: "ENDUSER", EndEntityProfile: "EMPTY", TokenType: token}, "code"); err != nil {
			t.Fatal(err)
		}
	}
	add("eve", "")
	add("p12", "P12")
	csr, _ := newCSR(t, csrSpec{cn: "whatever"})
	post := func(body map[string]any) reply {
		t.Helper()
		return h.call(h.admin, "POST", "/v1/certificate/certificaterequest", body)
	}
	post(certificateRequestBody(csr, "nobody", "code", false)).expectError(t, 400, "Wrong username or password")
	post(certificateRequestBody(csr, "eve", "wrong", false)).expectError(t, 400, "Got request for user with invalid password: eve.")
	post(certificateRequestBody(csr, "p12", "code", false)).
		expectError(t, 400, "Error: Wrong Token Type of user, must be 'USERGENERATED' for PKCS10/SPKAC/CRMF/CVC requests")
	post(certificateRequestBody("not a CSR", "eve", "code", false)).expectError(t, 400, "Invalid certificate request")

	if err := h.sim.SetCAOffline("IssuingCA", true); err != nil {
		t.Fatal(err)
	}
	post(certificateRequestBody(csr, "eve", "code", false)).expectError(t, 503, "Signing CA 'CN=IssuingCA,O=EJBCA Sim' is not active.")
	_ = h.sim.SetCAOffline("IssuingCA", false)
	if err := h.sim.SetCryptoTokenOffline("IssuingCA", true); err != nil {
		t.Fatal(err)
	}
	post(certificateRequestBody(csr, "eve", "code", false)).expectError(t, 503, "Device was unavailable.")
	_ = h.sim.SetCryptoTokenOffline("IssuingCA", false)
	if ee, _ := h.sim.EndEntity("eve"); ee.Status != "NEW" {
		t.Fatalf("refusals changed the end entity: %+v", ee)
	}

	// The CA name only picks the chain, after issuing: an unknown one loses
	// the answer of an issued certificate.
	unknownCA := certificateRequestBody(csr, "eve", "code", true)
	unknownCA["certificate_authority_name"] = "NoSuchCA"
	post(unknownCA).expectError(t, 404, "CA with name NoSuchCA doesn't exist.")
	if ee, _ := h.sim.EndEntity("eve"); ee.Status != "GENERATED" || h.sim.Counters().Enrollments != 1 {
		t.Fatalf("the certificate should have been issued: %+v, %d enrolments", ee, h.sim.Counters().Enrollments)
	}
	post(certificateRequestBody(csr, "eve", "code", false)).
		expectError(t, 400, "Got request with status GENERATED (40). Status NEW, FAILED or INPROCESS required: eve.")

	// Without include_chain the name is not even looked at; with it, the
	// named CA's chain is returned.
	add("walt", "")
	noCA := certificateRequestBody(csr, "walt", "code", false)
	delete(noCA, "certificate_authority_name")
	if r := post(noCA); r.status != 201 {
		t.Fatalf("no CA name: %d %s", r.status, r.body)
	}
	add("root", "")
	rootChain := certificateRequestBody(csr, "root", "code", true)
	rootChain["certificate_authority_name"] = "RootCA"
	r := post(rootChain)
	var e enrolled
	r.decode(t, &e)
	if r.status != 201 || len(e.Chain) != 1 || !parseB64Cert(t, e.Chain[0]).Equal(h.sim.RootCA()) {
		t.Fatalf("chain of the named CA: %d %s", r.status, r.body)
	}
}
