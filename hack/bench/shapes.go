package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"sync"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The shapes of the requests the load generator creates.
const (
	// shapePlain: an EC P-256 CSR, usages digital signature and server
	// auth (what the profile gives), no duration: nothing differs from
	// what the request asked for.
	shapePlain = "plain"
	// shapeCertManager: as cert-manager's request manager creates them for
	// a Certificate with `duration: 2h` and `usages: [digital signature,
	// key encipherment, server auth]` (cert-manager's default usages plus
	// server auth), keys alternately EC P-256 and RSA 2048, with the
	// annotations cert-manager sets (certificate name, revision, private key
	// Secret). Through the SERVER profile (one year, key encipherment for
	// RSA keys only) every certificate differs from its request in validity,
	// and the EC ones in key encipherment.
	shapeCertManager = "cert-manager"
)

// rsaPool is a few RSA keys made once per bench process: generating a 2048
// bit key per request would take minutes on a loaded machine, and each
// request still has its own CSR and end entity.
var rsaPool struct {
	once sync.Once
	keys []*rsa.PrivateKey
	err  error
}

func rsaKey(i int) (*rsa.PrivateKey, error) {
	rsaPool.once.Do(func() {
		for range 8 {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				rsaPool.err = err
				return
			}
			rsaPool.keys = append(rsaPool.keys, k)
		}
	})
	if rsaPool.err != nil {
		return nil, rsaPool.err
	}
	return rsaPool.keys[i%len(rsaPool.keys)], nil
}

// csrs makes n CSRs of a shape before any clock starts.
func csrs(n int, shape string) ([][]byte, error) {
	out := make([][]byte, n)
	for i := range out {
		var key crypto.Signer
		var err error
		if shape == shapeCertManager && i%2 == 1 {
			key, err = rsaKey(i / 2)
		} else {
			key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		}
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf("bench-%d.example.com", i)
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
			Subject: pkix.Name{CommonName: name}, DNSNames: []string{name}}, key)
		if err != nil {
			return nil, err
		}
		out[i] = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	}
	return out, nil
}

// shapeRequest gives a new request named name the spec and annotations of
// its shape.
func shapeRequest(cr *cmapi.CertificateRequest, shape, name string) {
	cr.Annotations = map[string]string{cmapi.CertificateNameKey: name}
	cr.Spec.Usages = []cmapi.KeyUsage{cmapi.UsageDigitalSignature, cmapi.UsageServerAuth}
	if shape != shapeCertManager {
		return
	}
	cr.Spec.Duration = &metav1.Duration{Duration: 2 * time.Hour}
	cr.Spec.Usages = []cmapi.KeyUsage{cmapi.UsageDigitalSignature, cmapi.UsageKeyEncipherment, cmapi.UsageServerAuth}
	cr.Annotations[cmapi.CertificateRequestRevisionAnnotationKey] = "1"
	cr.Annotations[cmapi.CertificateRequestPrivateKeyAnnotationKey] = name + "-x7k2p"
}
