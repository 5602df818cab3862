package ejbca_test

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
)

func TestEnrollSubjectAndSANs(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	c := clientFor(t, sim, modeMTLS)

	cases := []struct {
		name string
		spec csrSpec
	}{
		{"dns only", csrSpec{cn: "a.example.com", dns: []string{"a.example.com"}}},
		{"ip only", csrSpec{cn: "10.1.2.3", ips: []net.IP{net.ParseIP("10.1.2.3")}}},
		{"uri only", csrSpec{cn: "workload", uris: []string{"spiffe://cluster.local/ns/a/sa/b"}}},
		{"all kinds", csrSpec{cn: "b.example.com", org: "Acme Corp",
			dns:  []string{"b.example.com", "*.b.example.com"},
			ips:  []net.IP{net.ParseIP("198.51.100.7"), net.ParseIP("2001:db8::7")},
			uris: []string{"spiffe://cluster.local/ns/b/sa/c", "https://b.example.com/id"}}},
		{"no SAN", csrSpec{cn: "plain"}},
	}
	for i, tc := range cases {
		csr, key := newCSR(t, tc.spec)
		cert, err := c.Enroll(ctx, enrolment(csr, tc.name))
		if err != nil {
			t.Fatalf("%s: Enroll: %v", tc.name, err)
		}
		checkIssued(t, sim, cert, key)
		var ips, uris []string
		for _, ip := range tc.spec.ips {
			ips = append(ips, ip.String())
		}
		uris = append(uris, tc.spec.uris...)
		checkSubjectAndSANs(t, cert.Leaf, tc.spec.cn, tc.spec.org, tc.spec.dns, ips, uris)
		if cert.SerialNumber != serialHex(cert.Leaf) {
			t.Errorf("%s: SerialNumber %q, want EJBCA's upper-case hex %q", tc.name, cert.SerialNumber, serialHex(cert.Leaf))
		}
		issued := sim.Issued()
		if len(issued) != i+1 || !issued[i].Cert.Equal(cert.Leaf) || issued[i].Username != tc.name || issued[i].Endpoint != "pkcs10enroll" {
			t.Errorf("%s: the simulator's record does not match", tc.name)
		}
	}
}

func TestEnrollAcceptsDERAndSetsNotAfter(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	c := clientFor(t, sim, modeToken)

	csrPEM, key := simpleCSR(t, "der.example.com")
	block, _ := pem.Decode(csrPEM)
	req := enrolment(block.Bytes, "der")
	notAfter := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	req.NotAfter = notAfter
	cert, err := c.Enroll(ctx, req)
	if err != nil {
		t.Fatalf("Enroll with a DER CSR: %v", err)
	}
	checkIssued(t, sim, cert, key)
	if !cert.Leaf.NotAfter.Equal(notAfter) {
		t.Errorf("NotAfter = %v, want %v", cert.Leaf.NotAfter, notAfter)
	}

	// Without NotAfter the profile's validity (90 days) applies.
	req.NotAfter = time.Time{}
	cert, err = c.Enroll(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(cert.Leaf.NotAfter); d < 89*24*time.Hour || d > 91*24*time.Hour {
		t.Errorf("default validity ends in %v, want about 90 days", d)
	}
}

func TestEnrollRejections(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	c := clientFor(t, sim, modeOAuth2)
	csr, _ := simpleCSR(t, "reject.example.com")

	cases := []struct {
		name   string
		mutate func(*ejbca.EnrollRequest)
		want   string
	}{
		{"unknown CA", func(r *ejbca.EnrollRequest) { r.CAName = "X" }, `CA with name "X" doesn't exist`},
		{"unknown certificate profile", func(r *ejbca.EnrollRequest) { r.CertificateProfileName = "NOPE" },
			`Certificate profile with name "NOPE" doesn't exist`},
		{"unknown end entity profile", func(r *ejbca.EnrollRequest) { r.EndEntityProfileName = "MISSING" },
			`End Entity Profile of name "MISSING" was not found`},
		// EJBCA checks the CA first, then the profiles.
		{"all unknown", func(r *ejbca.EnrollRequest) {
			r.CAName, r.CertificateProfileName, r.EndEntityProfileName = "X", "NOPE", "MISSING"
		}, `CA with name "X" doesn't exist`},
		{"no username", func(r *ejbca.EnrollRequest) { r.Username = "" }, "Invalid request, username is empty."},
		{"end time in the past", func(r *ejbca.EnrollRequest) { r.NotAfter = time.Now().Add(-time.Hour) },
			"The certificate's end time must be after its start time and in the future."},
	}
	for _, tc := range cases {
		req := enrolment(csr, "reject")
		tc.mutate(&req)
		_, err := c.Enroll(ctx, req)
		if !ejbca.IsPermanent(err) || ejbca.KindOf(err) != ejbca.KindPermanent {
			t.Errorf("%s: Enroll = %v, want a permanent error", tc.name, err)
			continue
		}
		if ejbca.IsRetryable(err) || ejbca.IsApprovalRequired(err) || ejbca.IsUnauthorized(err) {
			t.Errorf("%s: %v has more than one kind", tc.name, err)
		}
		if got := ejbca.Message(err); got != tc.want {
			t.Errorf("%s: Message = %q, want %q", tc.name, got, tc.want)
		}
		if e := asError(t, err); e.StatusCode != 400 || e.Endpoint != "POST /v1/certificate/pkcs10enroll" {
			t.Errorf("%s: error = %+v", tc.name, e)
		}
	}
	got := sim.Counters()
	if got.Calls["pkcs10enroll"][400] != len(cases) || got.Enrollments != 0 {
		t.Errorf("pkcs10enroll calls %v, enrollments %d", got.Calls["pkcs10enroll"], got.Enrollments)
	}
	// Refused with 400 and a still-valid token: no token refetch.
	if got.TokensIssued != 1 {
		t.Errorf("TokensIssued = %d, want 1", got.TokensIssued)
	}
}

func TestEnrollRefusesBadCSRLocally(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	c := clientFor(t, sim, modeMTLS)

	csr, _ := simpleCSR(t, "tampered.example.com")
	block, _ := pem.Decode(csr)
	tampered := append([]byte(nil), block.Bytes...)
	tampered[len(tampered)-3] ^= 0xff // the signature
	for name, raw := range map[string][]byte{
		"garbage":  []byte("not a CSR"),
		"empty":    nil,
		"tampered": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: tampered}),
	} {
		_, err := c.Enroll(ctx, enrolment(raw, "bad"))
		if !ejbca.IsPermanent(err) {
			t.Errorf("%s: Enroll = %v, want permanent", name, err)
		}
		if !strings.Contains(err.Error(), "certificate signing request") {
			t.Errorf("%s: error %q does not say the CSR is bad", name, err)
		}
		_, err = c.EnrollForEndEntity(ctx, ejbca.EnrollForEndEntityRequest{CSR: raw, Username: "bad", Password: "x", CAName: issuingCA})
		if !ejbca.IsPermanent(err) {
			t.Errorf("%s: EnrollForEndEntity = %v, want permanent", name, err)
		}
		_, err = c.FindIssued(ctx, ejbca.FindRequest{Username: "bad", CAName: issuingCA, CSR: raw, IssuedAfter: time.Now()})
		if !ejbca.IsPermanent(err) {
			t.Errorf("%s: FindIssued = %v, want permanent", name, err)
		}
	}
	if got := sim.Counters(); len(got.Calls) != 0 || got.TLSHandshakes != 0 {
		t.Errorf("a bad CSR reached the server: %+v", got)
	}
}

func TestEnrollUpdatesExistingEndEntity(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	c := clientFor(t, sim, modeMTLS)

	csr1, key1 := simpleCSR(t, "first.example.com")
	if _, err := c.Enroll(ctx, enrolment(csr1, "same-user")); err != nil {
		t.Fatal(err)
	}
	// Same end entity, other certificate profile and key: updated, not refused.
	csr2, key2 := simpleCSR(t, "second.example.com")
	req := enrolment(csr2, "same-user")
	req.CertificateProfileName = "SERVER"
	cert, err := c.Enroll(ctx, req)
	if err != nil {
		t.Fatalf("second Enroll for the same end entity: %v", err)
	}
	checkIssued(t, sim, cert, key2)
	if key1.PublicKey.Equal(cert.Leaf.PublicKey) {
		t.Error("the second certificate has the first key")
	}
	if ee, ok := sim.EndEntity("same-user"); !ok || ee.CertificateProfile != "SERVER" {
		t.Errorf("end entity = %+v, %v", ee, ok)
	}
}

func TestMismatchedKeyIsInvalidResponse(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	c := clientFor(t, sim, modeMTLS)
	sim.InjectFault("pkcs10enroll", ejbcasim.Fault{Count: 1, MismatchedKey: true})

	csr, key := simpleCSR(t, "mismatch.example.com")
	cert, err := c.Enroll(ctx, enrolment(csr, "mismatch"))
	if err == nil {
		t.Fatalf("Enroll accepted a certificate for another key (serial %s)", cert.SerialNumber)
	}
	if ejbca.KindOf(err) != ejbca.KindInvalidResponse || !ejbca.IsPermanent(err) || ejbca.IsRetryable(err) {
		t.Errorf("Enroll = %v (kind %v), want an invalid response", err, ejbca.KindOf(err))
	}
	if !strings.Contains(ejbca.Message(err), "does not carry the CSR's public key") {
		t.Errorf("Message = %q", ejbca.Message(err))
	}
	if e := asError(t, err); e.StatusCode != 201 || e.Endpoint != "POST /v1/certificate/pkcs10enroll" {
		t.Errorf("error = %+v", e)
	}
	// The fault was for one call only.
	cert, err = c.Enroll(ctx, enrolment(csr, "mismatch"))
	if err != nil {
		t.Fatal(err)
	}
	checkIssued(t, sim, cert, key)

	// certificaterequest is checked the same way.
	if _, err := c.AddEndEntity(ctx, ejbca.EndEntity{Username: "ee-mismatch", Password: enrolPassword, SubjectDN: "CN=ee-mismatch",
		CAName: issuingCA, CertificateProfileName: certProfile, EndEntityProfileName: eeProfile}); err != nil {
		t.Fatal(err)
	}
	sim.InjectFault("certificaterequest", ejbcasim.Fault{Count: 1, MismatchedKey: true})
	_, err = c.EnrollForEndEntity(ctx, enrolFor(csr, "ee-mismatch"))
	if ejbca.KindOf(err) != ejbca.KindInvalidResponse {
		t.Errorf("EnrollForEndEntity = %v, want an invalid response", err)
	}
}

// An offline CA or crypto token is a 400 on pkcs10enroll (the resource
// catches the exception): the client tells it from a refusal by EJBCA's
// message and makes it retryable, on every preset.
func TestEnrollOfflineCAIsRetryable(t *testing.T) {
	t.Parallel()
	for _, preset := range ejbcasim.PresetNames() {
		t.Run(preset, func(t *testing.T) {
			t.Parallel()
			sim := startSim(t, ejbcasim.Config{Preset: preset})
			ctx := ctxFor(t)
			c := clientFor(t, sim, modeMTLS)
			csr, key := simpleCSR(t, "offline.example.com")

			if err := sim.SetCAOffline(issuingCA, true); err != nil {
				t.Fatal(err)
			}
			_, err := c.Enroll(ctx, enrolment(csr, "offline"))
			if !ejbca.IsRetryable(err) || ejbca.IsPermanent(err) {
				t.Fatalf("Enroll on an offline CA = %v, want retryable", err)
			}
			if e := asError(t, err); e.StatusCode != 400 && e.StatusCode != 503 {
				t.Errorf("error = %+v", e)
			}
			if err := sim.SetCAOffline(issuingCA, false); err != nil {
				t.Fatal(err)
			}
			cert, err := c.Enroll(ctx, enrolment(csr, "offline"))
			if err != nil {
				t.Fatalf("Enroll once the CA is back: %v", err)
			}
			checkIssued(t, sim, cert, key)
			if got := sim.Counters().Enrollments; got != 1 {
				t.Errorf("Enrollments = %d", got)
			}
		})
	}
}

// EJBCA's wordings of an unavailable CA or crypto token, answered as 400.
func TestOfflineMessagesAreRetryable(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	c := clientFor(t, sim, modeMTLS)
	csr, _ := simpleCSR(t, "offline.example.com")

	for msg, retryable := range map[string]bool{
		"CA's CryptoToken not found.": true,
		"org.cesecore.keys.token.CryptoTokenOfflineException: CA token is offline for CA 'CN=IssuingCA,O=EJBCA Sim'.": true,
		"CA token is off line: IssuingCA. Contact your administrator.":                                                true,
		"org.cesecore.certificates.ca.CAOfflineException: Signing CA 'CN=IssuingCA,O=EJBCA Sim' is not active.":       true,
		"CA IssuingCA, CN=IssuingCA is off-line.":                                                                     true,
		"Invalid certificate request":                        false,
		`Certificate profile with name "NOPE" doesn't exist`: false,
	} {
		sim.InjectFault("pkcs10enroll", ejbcasim.Fault{Count: 1, Status: 400,
			Body: fmt.Sprintf(`{"error_code":400,"error_message":%q}`, msg)})
		_, err := c.Enroll(ctx, enrolment(csr, "offline"))
		if ejbca.IsRetryable(err) != retryable || ejbca.IsPermanent(err) == retryable || ejbca.Message(err) != msg {
			t.Errorf("400 %q: %v (kind %v), want retryable %v", msg, err, ejbca.KindOf(err), retryable)
		}
	}
}

// What the client puts in its requests, as EJBCA's request classes read
// them: both profile names always (even empty), the request type on
// certificaterequest, approve/comment on process, and the narrowed search.
func TestRequestBodies(t *testing.T) {
	t.Parallel()
	rec, c := startRecorder(t, func(path string) (int, string) {
		switch {
		case strings.HasSuffix(path, "/v2/certificate/search"):
			return 404, `{"error_code":404,"error_message":"RESTEASY003210: Could not find resource for full path: https://127.0.0.1/ejbca/ejbca-rest-api/v2/certificate/search"}`
		case strings.HasSuffix(path, "/v1/certificate/search"):
			return 200, `{"certificates":[],"more_results":false}`
		}
		return 400, `{"error_code":400,"error_message":"recorded"}`
	})
	ctx := ctxFor(t)
	csr, _ := simpleCSR(t, "body.example.com")

	req := enrolment(csr, "body")
	req.CertificateProfileName, req.EndEntityProfileName = "", ""
	_, _ = c.Enroll(ctx, req)
	body := rec.sent(t, "/v1/certificate/pkcs10enroll", 0)
	for _, k := range []string{"certificate_profile_name", "end_entity_profile_name"} {
		if v, ok := body[k]; !ok || v != "" {
			t.Errorf("pkcs10enroll %s = %v (sent %v), want an empty string", k, v, ok)
		}
	}
	if body["certificate_authority_name"] != issuingCA || body["include_chain"] != true || body["response_format"] != "DER" {
		t.Errorf("pkcs10enroll body = %v", body)
	}

	_, _ = c.EnrollForEndEntity(ctx, enrolFor(csr, "body"))
	body = rec.sent(t, "/v1/certificate/certificaterequest", 0)
	if body["certificate_request_type"] != "PKCS10" || body["username"] != "body" || body["password"] != enrolPassword ||
		body["certificate_authority_name"] != issuingCA || body["include_chain"] != true {
		t.Errorf("certificaterequest body = %v", body)
	}

	_ = c.ProcessApproval(ctx, 7, false, "no thanks")
	body = rec.sent(t, "/v1/approval/7/process", 0)
	if len(body) != 2 || body["approve"] != false || body["comment"] != "no thanks" {
		t.Errorf("process body = %v", body)
	}

	ee := approvalEndEntity("body")
	ee.CertificateProfileName, ee.EndEntityProfileName = "", ""
	_, _ = c.AddEndEntity(ctx, ee)
	body = rec.sent(t, "/v1/endentity", 0)
	if _, ok := body["certificate_profile_name"]; !ok || body["token"] != "USERGENERATED" {
		t.Errorf("endentity body = %v", body)
	}
	if _, ok := body["end_entity_profile_name"]; !ok {
		t.Errorf("endentity body = %v", body)
	}

	after := time.Date(2025, 3, 4, 5, 6, 7, 890, time.FixedZone("CET", 3600))
	if got, err := c.FindIssued(ctx, ejbca.FindRequest{Username: "body", CAName: issuingCA, CSR: csr, IssuedAfter: after}); got != nil || err != nil {
		t.Fatalf("FindIssued = %v, %v", got, err)
	}
	wantCriteria := []any{
		map[string]any{"property": "QUERY", "value": "body", "operation": "EQUAL"},
		map[string]any{"property": "CA", "value": issuingCA, "operation": "EQUAL"},
		map[string]any{"property": "ISSUED_DATE", "value": "2025-03-04T04:06:07Z", "operation": "AFTER"},
	}
	v2 := rec.sent(t, "/v2/certificate/search", 0)
	if fmt.Sprint(v2["criteria"]) != fmt.Sprint(wantCriteria) {
		t.Errorf("v2 criteria = %v, want %v", v2["criteria"], wantCriteria)
	}
	if p, ok := v2["pagination"].(map[string]any); !ok || p["current_page"] != float64(1) || p["page_size"] == nil {
		t.Errorf("v2 pagination = %v", v2["pagination"])
	}
	v1 := rec.sent(t, "/v1/certificate/search", 0)
	if fmt.Sprint(v1["criteria"]) != fmt.Sprint(wantCriteria) || v1["max_number_of_results"] != float64(ejbca.MaxSearchResults) {
		t.Errorf("v1 body = %v", v1)
	}
	// The v2 404 is remembered: the next search goes to v1 directly.
	if _, err := c.FindIssued(ctx, ejbca.FindRequest{Username: "body", CSR: csr}); err != nil {
		t.Fatal(err)
	}
	if rec.count("/v2/certificate/search") != 1 || rec.count("/v1/certificate/search") != 2 {
		t.Errorf("v2 searches %d, v1 searches %d", rec.count("/v2/certificate/search"), rec.count("/v1/certificate/search"))
	}
	// No CA and no time: only the username narrows.
	if got := fmt.Sprint(rec.sent(t, "/v1/certificate/search", 1)["criteria"]); got != fmt.Sprint(wantCriteria[:1]) {
		t.Errorf("criteria without CA and time = %v", got)
	}
}

// A CSR the caller already parsed is not parsed again, but its signature is
// still checked, and a parsed CSR other than the one sent is not trusted:
// what is checked is what goes to EJBCA.
func TestEnrollParsedCSRIsCheckedAsTheSentOne(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	c := clientFor(t, sim, modeMTLS)

	good, key := simpleCSR(t, "parsed.example.com")
	goodBlock, _ := pem.Decode(good)
	goodParsed, err := x509.ParseCertificateRequest(goodBlock.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	tamperedDER := append([]byte(nil), goodBlock.Bytes...)
	tamperedDER[len(tamperedDER)-3] ^= 0xff // the signature
	tampered := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: tamperedDER})
	tamperedParsed, err := x509.ParseCertificateRequest(tamperedDER)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		csr    []byte
		parsed *x509.CertificateRequest
	}{
		"tampered, parsed by the caller":            {tampered, tamperedParsed},
		"tampered, a good CSR parsed by the caller": {tampered, goodParsed},
	} {
		req := enrolment(tc.csr, "parsed-bad")
		req.ParsedCSR = tc.parsed
		if _, err := c.Enroll(ctx, req); !ejbca.IsPermanent(err) || !strings.Contains(err.Error(), "signature") {
			t.Errorf("%s: Enroll = %v, want a permanent error about the signature", name, err)
		}
	}
	if got := sim.Counters(); len(got.Calls) != 0 {
		t.Errorf("a bad CSR reached the server: %+v", got.Calls)
	}
	other, _ := simpleCSR(t, "other.example.com")
	otherBlock, _ := pem.Decode(other)
	otherParsed, err := x509.ParseCertificateRequest(otherBlock.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for name, parsed := range map[string]*x509.CertificateRequest{"the same CSR": goodParsed, "another CSR": otherParsed} {
		req := enrolment(good, "parsed-"+strings.ReplaceAll(name, " ", "-"))
		req.ParsedCSR = parsed
		cert, err := c.Enroll(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		checkIssued(t, sim, cert, key)
	}
}
