package testkit

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"net/url"
	"testing"
)

// CSROption shapes the CSR that CSR builds.
type CSROption func(*csrSpec)

type csrSpec struct {
	tmpl x509.CertificateRequest
	key  crypto.Signer
	bits int
}

// CommonName sets the subject's common name.
func CommonName(cn string) CSROption {
	return func(s *csrSpec) { s.tmpl.Subject.CommonName = cn }
}

// Subject sets the whole subject.
func Subject(name pkix.Name) CSROption { return func(s *csrSpec) { s.tmpl.Subject = name } }

// DNSNames adds DNS subject alternative names.
func DNSNames(names ...string) CSROption {
	return func(s *csrSpec) { s.tmpl.DNSNames = append(s.tmpl.DNSNames, names...) }
}

// URIs adds URI subject alternative names; a URI that does not parse
// panics (it is the test's own constant).
func URIs(uris ...string) CSROption {
	return func(s *csrSpec) {
		for _, u := range uris {
			parsed, err := url.Parse(u)
			if err != nil {
				panic(err)
			}
			s.tmpl.URIs = append(s.tmpl.URIs, parsed)
		}
	}
}

// IPAddresses adds IP subject alternative names.
func IPAddresses(ips ...net.IP) CSROption {
	return func(s *csrSpec) { s.tmpl.IPAddresses = append(s.tmpl.IPAddresses, ips...) }
}

// Emails adds email subject alternative names.
func Emails(emails ...string) CSROption {
	return func(s *csrSpec) { s.tmpl.EmailAddresses = append(s.tmpl.EmailAddresses, emails...) }
}

// Extensions adds requested extensions (key usage, extended key usage, ...).
func Extensions(exts ...pkix.Extension) CSROption {
	return func(s *csrSpec) { s.tmpl.ExtraExtensions = append(s.tmpl.ExtraExtensions, exts...) }
}

// Template starts from a whole template; later options add to it.
func Template(tmpl x509.CertificateRequest) CSROption { return func(s *csrSpec) { s.tmpl = tmpl } }

// WithKey signs with key instead of a new one.
func WithKey(key crypto.Signer) CSROption { return func(s *csrSpec) { s.key = key } }

// RSA signs with a new RSA key of bits instead of a new ECDSA P-256 key.
func RSA(bits int) CSROption { return func(s *csrSpec) { s.bits = bits } }

// CSR builds a PEM CSR and the key that signed it: a new ECDSA P-256 key
// unless RSA or WithKey says otherwise.
func CSR(t testing.TB, opts ...CSROption) (crypto.Signer, []byte) {
	t.Helper()
	s := &csrSpec{}
	for _, o := range opts {
		o(s)
	}
	key := s.key
	var err error
	switch {
	case key != nil:
	case s.bits > 0:
		key, err = rsa.GenerateKey(rand.Reader, s.bits)
	default:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &s.tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}
