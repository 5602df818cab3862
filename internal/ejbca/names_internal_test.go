package ejbca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

var (
	oidCN    = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidO     = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidOU    = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidC     = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidEmail = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
)

// rdns is a subject as RDNs, each a set of attributes.
type rdns [][]pkix.AttributeTypeAndValue

func (r rdns) raw(t *testing.T) []byte {
	t.Helper()
	seq := pkix.RDNSequence{}
	for _, set := range r {
		seq = append(seq, pkix.RelativeDistinguishedNameSET(set))
	}
	der, err := asn1.Marshal(seq)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

type sanSpec struct {
	dns    []string
	ips    []net.IP
	uris   []string
	emails []string
}

func (s sanSpec) urls(t *testing.T) []*url.URL {
	var out []*url.URL
	for _, raw := range s.uris {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, u)
	}
	return out
}

func testCSR(t *testing.T, key *ecdsa.PrivateKey, subject rdns, sans sanSpec) *x509.CertificateRequest {
	t.Helper()
	_, pemCSR := testkit.CSR(t, testkit.WithKey(key), testkit.Template(x509.CertificateRequest{
		RawSubject: subject.raw(t), DNSNames: sans.dns, IPAddresses: sans.ips, URIs: sans.urls(t), EmailAddresses: sans.emails,
	}))
	block, _ := pem.Decode(pemCSR)
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

func testCert(t *testing.T, key *ecdsa.PrivateKey, subject rdns, sans sanSpec) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), RawSubject: subject.raw(t),
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: sans.dns, IPAddresses: sans.ips, URIs: sans.urls(t), EmailAddresses: sans.emails,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func atv(oid asn1.ObjectIdentifier, v string) pkix.AttributeTypeAndValue {
	return pkix.AttributeTypeAndValue{Type: oid, Value: v}
}

// What EJBCA may change between the CSR and the certificate, and what it
// must not.
func TestNamesMatch(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// The CSR's subject, in X.500 order (C first), one attribute per RDN.
	subject := rdns{{atv(oidC, "SE")}, {atv(oidO, "Acme Corp")}, {atv(oidOU, "Ops")}, {atv(oidOU, "Dev")}, {atv(oidCN, "web.example.com")}}
	sans := sanSpec{
		dns:  []string{"www.example.com", "alt.example.com"}, // not the CN
		ips:  []net.IP{net.ParseIP("10.0.0.1").To4(), net.ParseIP("2001:db8::1")},
		uris: []string{"spiffe://cluster.local/ns/a/sa/web"},
	}
	csr := testCSR(t, key, subject, sans)
	want := requestedNames(csr)

	reversed := slices.Clone(subject)
	slices.Reverse(reversed)
	with := func(mutate func(*sanSpec)) sanSpec {
		s := sans
		s.dns, s.ips, s.uris, s.emails = slices.Clone(s.dns), slices.Clone(s.ips), slices.Clone(s.uris), slices.Clone(s.emails)
		mutate(&s)
		return s
	}
	cases := []struct {
		name    string
		subject rdns
		sans    sanSpec
		match   bool
	}{
		{"identical", subject, sans, true},
		{"RDNs in LDAP order", reversed, sans, true},
		{"EJBCA's order", rdns{{atv(oidCN, "web.example.com")}, {atv(oidOU, "Dev")}, {atv(oidOU, "Ops")}, {atv(oidO, "Acme Corp")}, {atv(oidC, "SE")}}, sans, true},
		{"multi-valued RDN", rdns{{atv(oidC, "SE")}, {atv(oidO, "Acme Corp"), atv(oidOU, "Ops"), atv(oidOU, "Dev")}, {atv(oidCN, "web.example.com")}}, sans, true},
		{"case and spaces", rdns{{atv(oidC, "se")}, {atv(oidO, " ACME  corp ")}, {atv(oidOU, "ops")}, {atv(oidOU, "Dev")}, {atv(oidCN, "Web.Example.com")}}, sans, true},
		{"SANs reordered, other case, trailing dot, IPv4 in 16 bytes", subject, with(func(s *sanSpec) {
			s.dns = []string{"ALT.example.com.", "www.example.com"}
			s.ips = []net.IP{net.ParseIP("2001:db8::1"), net.ParseIP("10.0.0.1")}
		}), true},
		{"CN copied into the SAN", subject, with(func(s *sanSpec) { s.dns = append(s.dns, "web.example.com") }), true},
		{"another O", rdns{{atv(oidC, "SE")}, {atv(oidO, "Other Corp")}, {atv(oidOU, "Ops")}, {atv(oidOU, "Dev")}, {atv(oidCN, "web.example.com")}}, sans, false},
		{"an OU less", rdns{{atv(oidC, "SE")}, {atv(oidO, "Acme Corp")}, {atv(oidOU, "Ops")}, {atv(oidCN, "web.example.com")}}, sans, false},
		{"an OU more", append(slices.Clone(subject), []pkix.AttributeTypeAndValue{atv(oidOU, "QA")}), sans, false},
		{"an OU twice instead of two", rdns{{atv(oidC, "SE")}, {atv(oidO, "Acme Corp")}, {atv(oidOU, "Ops")}, {atv(oidOU, "Ops")}, {atv(oidCN, "web.example.com")}}, sans, false},
		{"another CN", rdns{{atv(oidC, "SE")}, {atv(oidO, "Acme Corp")}, {atv(oidOU, "Ops")}, {atv(oidOU, "Dev")}, {atv(oidCN, "api.example.com")}}, sans, false},
		{"a DNS name more", subject, with(func(s *sanSpec) { s.dns = append(s.dns, "api.example.com") }), false},
		{"a DNS name less", subject, with(func(s *sanSpec) { s.dns = s.dns[:1] }), false},
		{"an IP less", subject, with(func(s *sanSpec) { s.ips = s.ips[:1] }), false},
		{"another URI", subject, with(func(s *sanSpec) { s.uris = []string{"spiffe://cluster.local/ns/b/sa/web"} }), false},
		{"an e-mail more", subject, with(func(s *sanSpec) { s.emails = []string{"ops@example.com"} }), false},
	}
	for _, tc := range cases {
		cert := testCert(t, key, tc.subject, tc.sans)
		if got := want.matches(cert); got != tc.match {
			t.Errorf("%s: matches = %v, want %v (subject %s, DNS %v, IP %v)", tc.name, got, tc.match, cert.Subject, cert.DNSNames, cert.IPAddresses)
		}
	}

	// The subject's e-mail may be copied into the SAN as rfc822Name.
	withEmail := append(slices.Clone(subject), []pkix.AttributeTypeAndValue{atv(oidEmail, "Ops@Example.com")})
	emailCSR := testCSR(t, key, withEmail, sans)
	if !requestedNames(emailCSR).matches(testCert(t, key, withEmail, with(func(s *sanSpec) { s.emails = []string{"ops@example.com"} }))) {
		t.Error("a certificate with the subject's e-mail copied into the SAN does not match")
	}
	// An empty subject (SAN-only request) matches an empty subject.
	empty := testCSR(t, key, rdns{}, sans)
	if !requestedNames(empty).matches(testCert(t, key, rdns{}, sans)) {
		t.Error("empty subjects do not match")
	}
	if requestedNames(empty).matches(testCert(t, key, subject, sans)) {
		t.Error("an empty subject matches a full one")
	}
}
