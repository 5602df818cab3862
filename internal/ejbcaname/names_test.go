package ejbcaname_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/certctl-io/ejbca-issuer/internal/ejbcaname"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
)

var key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

// csrWith builds and parses a CSR, as the signer receives it; false when Go
// refuses to encode such names.
func csrWith(t testing.TB, tmpl *x509.CertificateRequest) (*x509.CertificateRequest, bool) {
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, false
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, false
	}
	return csr, true
}

// roundTrip renders the CSR's names, parses them as EJBCA (the simulator)
// does, and fails unless every name comes back unchanged.
func roundTrip(t testing.TB, csr *x509.CertificateRequest) {
	dn, san := ejbcaname.SubjectDN(csr, "fallback"), ejbcaname.SubjectAltName(csr)
	got, err := ejbcasim.ParseEndEntityNames(dn, san)
	if err != nil {
		t.Fatalf("EJBCA cannot parse subject_dn %q / subject_alt_name %q: %v", dn, san, err)
	}
	if len(csr.Subject.Names) > 0 {
		var want []string
		for i := len(csr.Subject.Names) - 1; i >= 0; i-- {
			want = append(want, csr.Subject.Names[i].Value.(string))
		}
		var values []string
		for _, a := range got.SubjectDN {
			values = append(values, a.Value)
		}
		if !slices.Equal(values, want) {
			t.Fatalf("subject values %q came back as %q (subject_dn %q)", want, values, dn)
		}
	}
	if !slices.Equal(got.DNSNames, csr.DNSNames) && len(got.DNSNames)+len(csr.DNSNames) > 0 {
		t.Fatalf("DNS names %q came back as %q (subject_alt_name %q)", csr.DNSNames, got.DNSNames, san)
	}
	if !slices.Equal(got.EmailAddresses, csr.EmailAddresses) && len(got.EmailAddresses)+len(csr.EmailAddresses) > 0 {
		t.Fatalf("emails %q came back as %q (subject_alt_name %q)", csr.EmailAddresses, got.EmailAddresses, san)
	}
	if len(got.URIs) != len(csr.URIs) {
		t.Fatalf("%d URIs came back as %d (subject_alt_name %q)", len(csr.URIs), len(got.URIs), san)
	}
	for i := range got.URIs {
		if got.URIs[i].String() != csr.URIs[i].String() {
			t.Fatalf("URI %q came back as %q (subject_alt_name %q)", csr.URIs[i], got.URIs[i], san)
		}
	}
	if len(got.IPAddresses) != len(csr.IPAddresses) {
		t.Fatalf("%d IPs came back as %d", len(csr.IPAddresses), len(got.IPAddresses))
	}
	for i := range got.IPAddresses {
		if !got.IPAddresses[i].Equal(csr.IPAddresses[i]) {
			t.Fatalf("IP %s came back as %s", csr.IPAddresses[i], got.IPAddresses[i])
		}
	}
}

func TestNamesThatBrokeEJBCA(t *testing.T) {
	u, _ := url.Parse("https://example.org/a,b?c=d")
	for name, tmpl := range map[string]*x509.CertificateRequest{
		"comma in a URI SAN":        {URIs: []*url.URL{u}},
		"URI SAN as the CN":         {URIs: []*url.URL{u}, DNSNames: nil},
		"separators in the subject": {Subject: pkix.Name{CommonName: `a,b+c="d"\e;f<g>h=i`, Organization: []string{" lead", "trail "}}},
		"hash at the start":         {Subject: pkix.Name{CommonName: "#1"}},
		"many kinds":                {DNSNames: []string{"a.example.com", "*.b.example.com"}, IPAddresses: []net.IP{net.ParseIP("10.0.0.1"), net.ParseIP("::1")}, EmailAddresses: []string{"a@example.com"}, URIs: []*url.URL{u}},
	} {
		t.Run(name, func(t *testing.T) {
			csr, ok := csrWith(t, tmpl)
			if !ok {
				t.Fatal("cannot build the CSR")
			}
			roundTrip(t, csr)
			if len(tmpl.Subject.Names)+len(tmpl.Subject.Organization) == 0 && tmpl.Subject.CommonName == "" {
				dn := ejbcaname.SubjectDN(csr, "x")
				got, err := ejbcasim.ParseEndEntityNames(dn, "")
				if err != nil || len(got.SubjectDN) != 1 || got.SubjectDN[0].Name != "CN" {
					t.Fatalf("fallback DN %q parsed as %+v, %v", dn, got.SubjectDN, err)
				}
			}
		})
	}
}

// FuzzNamesSurviveEJBCAParsing: whatever names a CSR carries, the names
// EJBCA parses back from the rendered text are the same.
func FuzzNamesSurviveEJBCAParsing(f *testing.F) {
	f.Add("web.example.com", "Example, Inc.", "web.example.com", "https://example.org/a,b?c=d", "ops@example.com")
	f.Add(`a\b"c`, "+;<>=", "x", "spiffe://cluster.local/ns/a/sa/b", "a@b")
	f.Add(" #lead", "trail ", "a-b.example", "urn:uuid:1", "")
	f.Add("tab\there", "nl\nhere", "", "https://h/%2C", "")
	f.Fuzz(func(t *testing.T, cn, org, dns, uri, email string) {
		if !utf8.ValidString(cn) || !utf8.ValidString(org) || strings.ContainsRune(cn+org, 0) {
			return
		}
		tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}
		if org != "" {
			tmpl.Subject.Organization = []string{org}
		}
		if dns != "" {
			tmpl.DNSNames = []string{dns}
		}
		if email != "" {
			tmpl.EmailAddresses = []string{email}
		}
		if u, err := url.Parse(uri); err == nil && u.Scheme != "" && uri != "" {
			tmpl.URIs = []*url.URL{u}
		}
		csr, ok := csrWith(t, tmpl)
		if !ok {
			return
		}
		roundTrip(t, csr)
	})
}
