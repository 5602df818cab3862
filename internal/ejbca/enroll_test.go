package ejbca_test

import (
	"encoding/pem"
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
		_, err = c.EnrollForEndEntity(ctx, ejbca.EnrollForEndEntityRequest{CSR: raw, Username: "bad", Password: "x"})
		if !ejbca.IsPermanent(err) {
			t.Errorf("%s: EnrollForEndEntity = %v, want permanent", name, err)
		}
		_, err = c.FindIssued(ctx, "bad", raw, time.Now())
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
	_, err = c.EnrollForEndEntity(ctx, ejbca.EnrollForEndEntityRequest{CSR: csr, Username: "ee-mismatch", Password: enrolPassword})
	if ejbca.KindOf(err) != ejbca.KindInvalidResponse {
		t.Errorf("EnrollForEndEntity = %v, want an invalid response", err)
	}
}

func TestFindIssuedRecoversLostAnswer(t *testing.T) {
	t.Parallel()
	for _, mode := range []authMode{modeMTLS, modeOAuth2} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			sim := startSim(t, ejbcasim.Config{})
			ctx := ctxFor(t)
			c := clientFor(t, sim, mode)

			// An older certificate of the same end entity, for another key.
			oldCSR, _ := simpleCSR(t, "lost.example.com")
			if _, err := c.Enroll(ctx, enrolment(oldCSR, "lost")); err != nil {
				t.Fatal(err)
			}
			sim.ResetCounters()

			sim.InjectFault("pkcs10enroll", ejbcasim.Fault{Count: 1, ResetAfterIssuing: true})
			csr, key := newCSR(t, csrSpec{cn: "lost.example.com", dns: []string{"lost.example.com"}, ips: []net.IP{net.ParseIP("10.0.0.9")}})
			attempt := time.Now()
			_, err := c.Enroll(ctx, enrolment(csr, "lost"))
			if !ejbca.IsRetryable(err) {
				t.Fatalf("Enroll with the answer lost = %v, want retryable", err)
			}
			if e := asError(t, err); e.StatusCode != 0 || e.Endpoint != "POST /v1/certificate/pkcs10enroll" {
				t.Errorf("error = %+v", e)
			}

			// issuedAfter is compared with notBefore as given, and EJBCA
			// backdates notBefore: the attempt time itself misses it.
			if cert, err := c.FindIssued(ctx, "lost", csr, attempt); err != nil || cert != nil {
				t.Errorf("FindIssued(attempt time) = %v, %v; want nil, nil (notBefore is backdated)", cert, err)
			}
			cert, err := c.FindIssued(ctx, "lost", csr, attempt.Add(-backdateAllowance))
			if err != nil {
				t.Fatalf("FindIssued: %v", err)
			}
			if cert == nil {
				t.Fatal("FindIssued found nothing")
			}
			checkIssued(t, sim, cert, key)
			issued := sim.Issued()
			if !cert.Leaf.Equal(issued[len(issued)-1].Cert) {
				t.Error("FindIssued returned another certificate than the one issued last")
			}
			if cert.SerialNumber != serialHex(cert.Leaf) {
				t.Errorf("SerialNumber = %q, want %q", cert.SerialNumber, serialHex(cert.Leaf))
			}
			got := sim.Counters()
			if got.Enrollments != 1 {
				t.Errorf("Enrollments = %d, want 1 (recovered, not issued again)", got.Enrollments)
			}
			if got.Calls["pkcs10enroll"][0] != 1 || got.Get("pkcs10enroll") != 1 {
				t.Errorf("pkcs10enroll calls = %v", got.Calls["pkcs10enroll"])
			}

			// A key never certified, and a time after the issuance, find nothing.
			other, _ := simpleCSR(t, "lost.example.com")
			if cert, err := c.FindIssued(ctx, "lost", other, attempt.Add(-backdateAllowance)); err != nil || cert != nil {
				t.Errorf("FindIssued for an unknown key = %v, %v; want nil, nil", cert, err)
			}
			if cert, err := c.FindIssued(ctx, "lost", csr, time.Now().Add(time.Hour)); err != nil || cert != nil {
				t.Errorf("FindIssued after the issuance = %v, %v; want nil, nil", cert, err)
			}
			if cert, err := c.FindIssued(ctx, "someone-else", csr, attempt.Add(-backdateAllowance)); err != nil || cert != nil {
				t.Errorf("FindIssued for another username = %v, %v; want nil, nil", cert, err)
			}
		})
	}
}

// An issuing CA under another CA than the default one is recovered with its
// own chain.
func TestFindIssuedOtherCA(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	c := clientFor(t, sim, modeToken)
	sub, err := sim.AddCA("SubCA", "CN=Sub CA, OU=Ops, O=EJBCA Sim", ejbcasim.IssuingCAName)
	if err != nil {
		t.Fatal(err)
	}
	csr, key := simpleCSR(t, "deep.example.com")
	req := enrolment(csr, "deep")
	req.CAName = "SubCA"
	attempt := time.Now()
	cert, err := c.Enroll(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	found, err := c.FindIssued(ctx, "deep", csr, attempt.Add(-backdateAllowance))
	if err != nil || found == nil {
		t.Fatalf("FindIssued = %v, %v", found, err)
	}
	for name, got := range map[string]*ejbca.Certificate{"Enroll": cert, "FindIssued": found} {
		if !key.PublicKey.Equal(got.Leaf.PublicKey) {
			t.Errorf("%s: wrong key", name)
		}
		chain := decodePEMCerts(t, got.ChainPEM)
		if len(chain) != 3 || !chain[1].Equal(sub) || !chain[2].Equal(sim.IssuingCA()) {
			t.Errorf("%s: ChainPEM has %d certificates, want leaf, SubCA, IssuingCA", name, len(chain))
		}
		if ca := decodePEMCerts(t, got.CAPEM); len(ca) != 1 || !ca[0].Equal(sim.RootCA()) {
			t.Errorf("%s: CAPEM is not the root", name)
		}
	}
	chain, err := c.CAChain(ctx, "O=EJBCA Sim,OU=Ops,CN=Sub CA")
	if err != nil || len(chain) != 3 {
		t.Errorf("CAChain by a reordered DN = %d certificates, %v", len(chain), err)
	}
	_, err = c.CAChain(ctx, "CN=No Such CA")
	if !ejbca.IsNotFound(err) || !strings.Contains(ejbca.Message(err), "does not exist") {
		t.Errorf("CAChain(unknown) = %v, want not found", err)
	}
}
