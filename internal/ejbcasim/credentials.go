package ejbcasim

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"time"
)

// Validity of the simulator's own PKI (TLS and administrator CAs), around
// the configured clock at start.
const (
	infraBackdate = 24 * time.Hour
	infraValidity = 20 * 365 * 24 * time.Hour
	// defaultClientCertValidity is used by NewClientCert for a zero validity.
	defaultClientCertValidity = 365 * 24 * time.Hour
)

// initCredentials creates the TLS CA and server certificate, the trusted
// and untrusted administrator CAs, the default administrator certificate,
// the static token and the OAuth2 client; it returns the server certificate.
func (s *Sim) initCredentials() (tls.Certificate, error) {
	now := s.now()
	notBefore, notAfter := now.Add(-infraBackdate), now.Add(infraValidity)
	var err error
	if s.tlsCA, err = newCA("CN=EJBCA Sim TLS CA", nil, notBefore, notAfter); err != nil {
		return tls.Certificate{}, err
	}
	serverSubject, err := encodeDN("CN=localhost,O=EJBCA Sim")
	if err != nil {
		return tls.Certificate{}, err
	}
	server, err := newLeaf(serverSubject, s.tlsCA, notBefore, notAfter, x509.ExtKeyUsageServerAuth,
		[]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback})
	if err != nil {
		return tls.Certificate{}, err
	}
	s.clientRoots = x509.NewCertPool()
	for _, dn := range []string{"CN=EJBCA Sim Client CA", "CN=EJBCA Sim Client CA 2"} {
		ca, err := newCA(dn, nil, notBefore, notAfter)
		if err != nil {
			return tls.Certificate{}, err
		}
		s.clientCAs = append(s.clientCAs, ca)
		s.clientRoots.AddCert(ca.cert)
	}
	if s.untrustedCA, err = newCA("CN=EJBCA Sim Untrusted CA", nil, notBefore, notAfter); err != nil {
		return tls.Certificate{}, err
	}
	if s.adminCert, s.adminKey, err = s.NewClientCert("SuperAdmin", false, 0); err != nil {
		return tls.Certificate{}, err
	}
	s.defaultStaticToken = rand.Text()
	s.staticTokens[s.defaultStaticToken] = true
	s.oauthClientID = "ejbca-issuer"
	s.oauthClientSecret = rand.Text()
	return tls.Certificate{
		Certificate: [][]byte{server.cert.Raw},
		PrivateKey:  server.key,
		Leaf:        server.cert,
	}, nil
}

// CABundlePEM is the CA that signed the server's TLS certificate (SANs
// 127.0.0.1, ::1, localhost): what verifies URL() and TokenURL().
func (s *Sim) CABundlePEM() []byte { return pemCertificates(s.tlsCA.cert) }

// ClientCertPEM is a trusted administrator's certificate (leaf only), issued
// by "CN=EJBCA Sim Client CA".
func (s *Sim) ClientCertPEM() []byte { return s.adminCert }

// ClientKeyPEM is ClientCertPEM's key, PKCS#8 PEM.
func (s *Sim) ClientKeyPEM() []byte { return s.adminKey }

// NewClientCert issues another administrator certificate for cn, from the
// default client CA or, with alternateCA, from the second trusted one
// ("CN=EJBCA Sim Client CA 2"), to test credential rotation across CAs.
// validity 0 means one year; a negative validity gives a certificate that
// already expired that long ago. The key is PKCS#8 PEM.
func (s *Sim) NewClientCert(cn string, alternateCA bool, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	ca := s.clientCAs[0]
	if alternateCA {
		ca = s.clientCAs[1]
	}
	return s.newClientCertFrom(ca, cn, validity)
}

// NewUntrustedClientCert issues a client certificate from a CA the
// simulator does not trust; calls with it are refused with 403.
func (s *Sim) NewUntrustedClientCert(cn string) (certPEM, keyPEM []byte, err error) {
	return s.newClientCertFrom(s.untrustedCA, cn, 0)
}

func (s *Sim) newClientCertFrom(ca *keyPair, cn string, validity time.Duration) ([]byte, []byte, error) {
	if validity == 0 {
		validity = defaultClientCertValidity
	}
	now := s.now()
	notBefore, notAfter := now.Add(-time.Hour), now.Add(validity)
	if validity < 0 {
		notBefore = notAfter.Add(-24 * time.Hour)
	}
	subject, err := encodeDN(formatDN([]dnAttribute{{name: "CN", value: cn}}))
	if err != nil {
		return nil, nil, err
	}
	kp, err := newLeaf(subject, ca, notBefore, notAfter, x509.ExtKeyUsageClientAuth, nil, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("ejbcasim: issue client certificate: %w", err)
	}
	keyPEM, err := pemPrivateKey(kp.key)
	if err != nil {
		return nil, nil, err
	}
	return pemCertificates(kp.cert), keyPEM, nil
}

// RevokeClientCert makes the simulator refuse this administrator
// certificate (403) from now on, as EJBCA does once it is revoked. Input that
// holds no certificate is ignored.
func (s *Sim) RevokeClientCert(certPEM []byte) {
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revokedClientCerts[clientCertKey(cert)] = true
}

func clientCertKey(c *x509.Certificate) string {
	return mustDN(c.RawIssuer) + "|" + c.SerialNumber.Text(16)
}
