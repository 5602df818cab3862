package ejbcasim_test

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
)

func TestPKCS10EnrollIssuesVerifiableCertificate(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	spiffe, _ := url.Parse("spiffe://example.com/web")
	csr, key := newCSR(t, csrSpec{
		cn: "web.example.com", org: "Example",
		dns: []string{"web.example.com", "www.example.com"}, ips: []net.IP{net.ParseIP("10.1.2.3")},
		emails: []string{"ops@example.com"}, uris: []*url.URL{spiffe},
	})
	r := h.call(h.admin, "POST", "/v1/certificate/pkcs10enroll", enrollBody(csr, "web", "ENDUSER"))
	if r.status != 201 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var e enrolled
	r.decode(t, &e)
	cert := e.cert(t)

	if e.SerialNumber != fmt.Sprintf("%X", cert.SerialNumber) || strings.HasPrefix(e.SerialNumber, "0") || e.SerialNumber != strings.ToUpper(e.SerialNumber) {
		t.Errorf("serial_number %q for %X", e.SerialNumber, cert.SerialNumber)
	}
	if bits := cert.SerialNumber.BitLen(); bits < 64 || bits > 128 {
		t.Errorf("serial has %d bits", bits)
	}
	if e.ResponseFormat != "DER" || len(e.Chain) != 2 {
		t.Fatalf("response_format %q, chain of %d", e.ResponseFormat, len(e.Chain))
	}
	issuing, root := parseB64Cert(t, e.Chain[0]), parseB64Cert(t, e.Chain[1])
	if !issuing.Equal(h.sim.IssuingCA()) || !root.Equal(h.sim.RootCA()) {
		t.Fatal("chain is not [IssuingCA, RootCA]")
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(root)
	inter.AddCert(issuing)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Fatalf("verify against chain: %v", err)
	}
	if !cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(key.Public()) {
		t.Error("certificate is not for the CSR's key")
	}
	if cert.Subject.CommonName != "web.example.com" || !slices.Equal(cert.Subject.Organization, []string{"Example"}) {
		t.Errorf("subject %s", cert.Subject)
	}
	if !slices.Equal(cert.DNSNames, []string{"web.example.com", "www.example.com"}) || len(cert.IPAddresses) != 1 ||
		!slices.Equal(cert.EmailAddresses, []string{"ops@example.com"}) || len(cert.URIs) != 1 || cert.URIs[0].String() != spiffe.String() {
		t.Errorf("SANs %v %v %v %v", cert.DNSNames, cert.IPAddresses, cert.EmailAddresses, cert.URIs)
	}
	wantEKU := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageEmailProtection}
	if !slices.Equal(cert.ExtKeyUsage, wantEKU) || cert.IsCA {
		t.Errorf("ENDUSER EKU %v", cert.ExtKeyUsage)
	}
	if len(cert.SubjectKeyId) == 0 || !bytes.Equal(cert.AuthorityKeyId, issuing.SubjectKeyId) {
		t.Error("SKI/AKI not set")
	}
	if d := time.Until(cert.NotAfter); d < 89*24*time.Hour || d > 91*24*time.Hour {
		t.Errorf("ENDUSER validity ends in %v, want ~90 days", d)
	}

	issued := h.sim.Issued()
	if len(issued) != 1 || issued[0].Serial.Cmp(cert.SerialNumber) != 0 || issued[0].Username != "web" || issued[0].Endpoint != "pkcs10enroll" {
		t.Fatalf("Issued %+v", issued)
	}
	if c := h.sim.Counters(); c.Enrollments != 1 || c.Calls["pkcs10enroll"][201] != 1 {
		t.Fatalf("counters %+v", c)
	}
	ee, ok := h.sim.EndEntity("web")
	if !ok || ee.Status != "GENERATED" || ee.SubjectDN != "CN=web.example.com,O=Example" {
		t.Fatalf("end entity %+v", ee)
	}
}

func TestPKCS10EnrollServerProfileBareBase64AndEndTime(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	csrPEM, _ := newCSR(t, csrSpec{cn: "api", dns: []string{"api.example.com"}})
	block, _ := pem.Decode([]byte(csrPEM))
	body := enrollBody(base64.StdEncoding.EncodeToString(block.Bytes), "api", "SERVER")
	body["include_chain"] = false
	r := h.call(h.admin, "POST", "/v1/certificate/pkcs10enroll", body)
	if r.status != 201 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if strings.Contains(string(r.body), "certificate_chain") {
		t.Errorf("certificate_chain present without include_chain: %s", r.body)
	}
	var e enrolled
	r.decode(t, &e)
	cert := e.cert(t)
	if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("SERVER EKU %v", cert.ExtKeyUsage)
	}
	if d := time.Until(cert.NotAfter); d < 364*24*time.Hour || d > 366*24*time.Hour {
		t.Errorf("SERVER validity ends in %v, want ~1 year", d)
	}

	end := time.Now().UTC().Add(48 * time.Hour).Truncate(time.Second)
	body["end_time"] = end.Format("2006-01-02 15:04:05")
	body["certificate_request"] = csrPEM
	r = h.call(h.admin, "POST", "/v1/certificate/pkcs10enroll", body)
	r.decode(t, &e)
	if got := e.cert(t).NotAfter; !got.Equal(end) {
		t.Errorf("end_time: notAfter %v, want %v", got, end)
	}
}

func TestPKCS10EnrollPKCS7(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	csr, _ := newCSR(t, csrSpec{cn: "p7"})
	body := enrollBody(csr, "p7", "ENDUSER")
	body["response_format"] = "PKCS7"
	r := h.call(h.admin, "POST", "/v1/certificate/pkcs10enroll", body)
	var e enrolled
	r.decode(t, &e)
	der, err := base64.StdEncoding.DecodeString(e.Certificate)
	if err != nil || e.ResponseFormat != "PKCS7" {
		t.Fatalf("%d %s", r.status, r.body)
	}
	var ci struct {
		Type    asn1.ObjectIdentifier
		Content asn1.RawValue `asn1:"explicit,tag:0"`
	}
	if _, err := asn1.Unmarshal(der, &ci); err != nil || !ci.Type.Equal(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}) {
		t.Fatalf("not a PKCS#7 SignedData: %v %v", err, ci.Type)
	}
}

func TestPKCS10EnrollErrors(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	csr, _ := newCSR(t, csrSpec{cn: "x"})
	tampered := []byte(csr)
	block, _ := pem.Decode(tampered)
	block.Bytes[len(block.Bytes)-3] ^= 0xff // inside the signature
	badSig := string(pem.EncodeToMemory(block))
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	weak, _ := newCSR(t, csrSpec{cn: "weak", key: rsaKey})
	approvalMsg := fmt.Sprintf("Single transaction enrollment request rejected since approvals are enabled for this CA (%d) or Certificate Profile (%d).",
		h.sim.CAID("IssuingCA"), h.sim.CertificateProfileID("APPROVAL"))

	for _, tc := range []struct {
		name   string
		edit   func(map[string]any)
		status int
		msg    string
	}{
		{"unknown CA (checked first)", func(b map[string]any) {
			b["certificate_authority_name"] = "NoSuchCA"
			b["certificate_profile_name"] = "NoSuchProfile"
		}, 400, `CA with name "NoSuchCA" doesn't exist`},
		{"unknown certificate profile", func(b map[string]any) {
			b["certificate_profile_name"] = "NoSuchProfile"
			b["end_entity_profile_name"] = "NoSuchEEP"
		}, 400, `Certificate profile with name "NoSuchProfile" doesn't exist`},
		{"unknown end entity profile", func(b map[string]any) {
			b["end_entity_profile_name"] = "NoSuchEEP"
			b["certificate_request"] = "garbage"
		}, 400, `End Entity Profile of name "NoSuchEEP" was not found`},
		{"no CA name", func(b map[string]any) { delete(b, "certificate_authority_name") }, 400, `CA with name "null" doesn't exist`},
		{"no certificate profile name", func(b map[string]any) { delete(b, "certificate_profile_name") }, 400, `Certificate profile with name "null" doesn't exist`},
		{"empty certificate profile name", func(b map[string]any) { b["certificate_profile_name"] = "" }, 400, `Certificate profile with name "" doesn't exist`},
		{"no end entity profile name", func(b map[string]any) { delete(b, "end_entity_profile_name") }, 400, `End Entity Profile of name "null" was not found`},
		{"unparseable CSR", func(b map[string]any) { b["certificate_request"] = "bm90IGEgQ1NS" }, 400, "Invalid certificate request"},
		{"CSR signature does not verify", func(b map[string]any) { b["certificate_request"] = badSig }, 400, "Invalid certificate request"},
		{"key refused by profile", func(b map[string]any) { b["certificate_request"] = weak }, 400, "Illegal key length, not authorized by certificate profile: 1024."},
		{"approval required", func(b map[string]any) { b["certificate_profile_name"] = "APPROVAL" }, 400, approvalMsg},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := enrollBody(csr, "u1", "ENDUSER")
			tc.edit(body)
			h.call(h.admin, "POST", "/v1/certificate/pkcs10enroll", body).expectError(t, tc.status, tc.msg)
		})
	}

	t.Run("approval on the CA", func(t *testing.T) {
		if err := h.sim.SetCAApprovalRequired("IssuingCA", true); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = h.sim.SetCAApprovalRequired("IssuingCA", false) }()
		msg := fmt.Sprintf("Single transaction enrollment request rejected since approvals are enabled for this CA (%d) or Certificate Profile (%d).",
			h.sim.CAID("IssuingCA"), h.sim.CertificateProfileID("ENDUSER"))
		h.call(h.admin, "POST", "/v1/certificate/pkcs10enroll", enrollBody(csr, "u1", "ENDUSER")).expectError(t, 400, msg)
	})

	t.Run("malformed JSON is plain text", func(t *testing.T) {
		r := h.call(h.admin, "POST", "/v1/certificate/pkcs10enroll", `{"certificate_request": `)
		if r.status != 400 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") ||
			string(r.body) != "Malformed JSON request, check if format of the values of every parameter is correct and request structure is proper." {
			t.Fatalf("%d %q %s", r.status, r.header.Get("Content-Type"), r.body)
		}
	})

	if n := h.sim.Counters().Enrollments; n != 0 {
		t.Fatalf("%d certificates issued by refused requests", n)
	}
}

func TestPKCS10EnrollUpdatesExistingEndEntity(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	h.enroll("same", "ENDUSER")
	h.enroll("same", "SERVER")
	ee, ok := h.sim.EndEntity("same")
	if !ok || ee.CertificateProfile != "SERVER" || ee.Status != "GENERATED" {
		t.Fatalf("end entity %+v", ee)
	}
	if n := len(h.sim.Issued()); n != 2 {
		t.Fatalf("%d issued, want 2", n)
	}
}

func TestEnforceUniqueDN(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	if err := h.sim.SetEnforceUniqueDN("IssuingCA", true); err != nil {
		t.Fatal(err)
	}
	csr, _ := newCSR(t, csrSpec{cn: "shared.example.com"})
	if r := h.call(h.admin, "POST", "/v1/certificate/pkcs10enroll", enrollBody(csr, "first", "ENDUSER")); r.status != 201 {
		t.Fatalf("first: %d %s", r.status, r.body)
	}
	h.call(h.admin, "POST", "/v1/certificate/pkcs10enroll", enrollBody(csr, "second", "ENDUSER")).expectError(t, 409,
		"User 'second' is not allowed to use same subject DN as the user(s) 'first' is/are using while issuing a certificate.")
}

func TestEnforceUniqueKeyAndOfflineCA(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	if err := h.sim.SetEnforceUniqueKey("IssuingCA", true); err != nil {
		t.Fatal(err)
	}
	csr, key := newCSR(t, csrSpec{cn: "one"})
	if r := h.call(h.admin, "POST", "/v1/certificate/pkcs10enroll", enrollBody(csr, "one", "ENDUSER")); r.status != 201 {
		t.Fatalf("first: %d %s", r.status, r.body)
	}
	sameKey, _ := newCSR(t, csrSpec{cn: "two", key: key})
	h.call(h.admin, "POST", "/v1/certificate/pkcs10enroll", enrollBody(sameKey, "two", "ENDUSER")).
		expectError(t, 409, "User 'two' is not allowed to use same key as another user is using.")

}

// TestPKCS10EnrollOffline: an offline CA or crypto token is a 400 whose
// message names the exception and the CA (retryable by message only).
func TestPKCS10EnrollOffline(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	fresh, _ := newCSR(t, csrSpec{cn: "three"})
	if err := h.sim.SetCAOffline("IssuingCA", true); err != nil {
		t.Fatal(err)
	}
	h.call(h.admin, "POST", "/v1/certificate/pkcs10enroll", enrollBody(fresh, "three", "ENDUSER")).
		expectError(t, 400, "org.cesecore.certificates.ca.CAOfflineException: Signing CA 'CN=IssuingCA,O=EJBCA Sim' is not active.")
	if err := h.sim.SetCAOffline("IssuingCA", false); err != nil {
		t.Fatal(err)
	}
	if err := h.sim.SetCryptoTokenOffline("IssuingCA", true); err != nil {
		t.Fatal(err)
	}
	h.call(h.admin, "POST", "/v1/certificate/pkcs10enroll", enrollBody(fresh, "three", "ENDUSER")).
		expectError(t, 400, "org.cesecore.keys.token.CryptoTokenOfflineException: CA token is offline for CA 'CN=IssuingCA,O=EJBCA Sim'.")
	if err := h.sim.SetCryptoTokenOffline("IssuingCA", false); err != nil {
		t.Fatal(err)
	}
	if err := h.sim.SetCryptoTokenOffline("NoSuchCA", true); err == nil {
		t.Fatal("SetCryptoTokenOffline accepted an unknown CA")
	}
	h.enrollCSR(fresh, "three", "ENDUSER")
	if n := h.sim.Counters().Enrollments; n != 1 {
		t.Fatalf("%d enrolments", n)
	}
}

// TestPKCS10EnrollEndTimePerPreset: end_time is honoured from 9.3.3 and
// ignored (profile validity) before.
func TestPKCS10EnrollEndTimePerPreset(t *testing.T) {
	for _, preset := range ejbcasim.PresetNames() {
		t.Run(preset, func(t *testing.T) {
			h := start(t, ejbcasim.Config{Preset: preset})
			csr, _ := newCSR(t, csrSpec{cn: "end"})
			end := time.Now().UTC().Add(48 * time.Hour).Truncate(time.Second)
			body := enrollBody(csr, "end", "ENDUSER")
			body["end_time"] = end.Format("2006-01-02 15:04:05")
			r := h.call(h.admin, "POST", "/v1/certificate/pkcs10enroll", body)
			var e enrolled
			r.decode(t, &e)
			got := e.cert(t).NotAfter
			if h.sim.Behaviour().EndTime != got.Equal(end) {
				t.Fatalf("EndTime %v: notAfter %v (requested %v)", h.sim.Behaviour().EndTime, got, end)
			}
		})
	}
}

func TestConfiguredApprovalProfiles(t *testing.T) {
	none := start(t, ejbcasim.Config{ApprovalCertificateProfiles: []string{}})
	csr, _ := newCSR(t, csrSpec{cn: "a"})
	if r := none.call(none.admin, "POST", "/v1/certificate/pkcs10enroll", enrollBody(csr, "a", "APPROVAL")); r.status != 201 {
		t.Fatalf("no approval profiles: %d %s", r.status, r.body)
	}
	custom := start(t, ejbcasim.Config{ApprovalCertificateProfiles: []string{"GUARDED"}})
	if r := custom.call(custom.admin, "POST", "/v1/certificate/pkcs10enroll", enrollBody(csr, "a", "GUARDED")); r.status != 400 {
		t.Fatalf("GUARDED profile: %d %s", r.status, r.body)
	}
	if r := custom.call(custom.admin, "POST", "/v1/certificate/pkcs10enroll", enrollBody(csr, "a", "APPROVAL")); r.status != 201 {
		t.Fatalf("APPROVAL without approval: %d %s", r.status, r.body)
	}
}
