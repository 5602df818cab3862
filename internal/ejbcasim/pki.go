package ejbcasim

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"
)

// keyPair is a certificate with its private key: a CA, the TLS server or an
// administrator.
type keyPair struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// randomSerial is a positive serial number of 64 to 127 bits, so its upper
// hex form has no leading zeros and varies in length, as EJBCA's do.
func randomSerial() *big.Int {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[0] &= 0x7f
	b[8] |= 0x80
	return new(big.Int).SetBytes(b)
}

// subjectKeyID is the RFC 5280 method 1 key identifier: SHA-1 of the
// subjectPublicKey bits.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, err
	}
	sum := sha1.Sum(spki.PublicKey.Bytes)
	return sum[:], nil
}

// newCA makes a CA certificate for subjectDN, signed by parent or
// self-signed when parent is nil.
func newCA(subjectDN string, parent *keyPair, notBefore, notAfter time.Time) (*keyPair, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	subject, err := encodeDN(subjectDN)
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(key.Public())
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		RawSubject:            subject,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		SubjectKeyId:          ski,
	}
	signer := &keyPair{cert: tmpl, key: key}
	if parent != nil {
		signer = parent
		tmpl.AuthorityKeyId = parent.cert.SubjectKeyId
	}
	cert, err := signCertificate(tmpl, key.Public(), signer)
	if err != nil {
		return nil, fmt.Errorf("issue CA %q: %w", subjectDN, err)
	}
	return &keyPair{cert: cert, key: key}, nil
}

// newLeaf makes an end-entity certificate with a fresh key for the
// simulator's own use (TLS server, administrators).
func newLeaf(subject []byte, parent *keyPair, notBefore, notAfter time.Time, usage x509.ExtKeyUsage, dnsNames []string, ips []net.IP) (*keyPair, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(key.Public())
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		RawSubject:            subject,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{usage},
		SubjectKeyId:          ski,
		AuthorityKeyId:        parent.cert.SubjectKeyId,
		DNSNames:              dnsNames,
		IPAddresses:           ips,
	}
	cert, err := signCertificate(tmpl, key.Public(), parent)
	if err != nil {
		return nil, err
	}
	return &keyPair{cert: cert, key: key}, nil
}

func signCertificate(tmpl *x509.Certificate, pub crypto.PublicKey, signer *keyPair) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer.cert, pub, signer.key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func pemCertificates(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// pemPrivateKey is key as a PKCS#8 "PRIVATE KEY" PEM block.
func pemPrivateKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
