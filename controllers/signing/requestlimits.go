package signing

import (
	"crypto/x509"
	"fmt"
)

// RequestLimits bound what a requester may send, so that nothing EJBCA
// issues is too large to be stored on the request (etcd refuses objects
// over about 1.5 MiB, and a refused status write would be retried forever).
type RequestLimits struct {
	// MaxCSRBytes is the largest spec.request (PEM) accepted.
	MaxCSRBytes int
	// MaxSANs is the most subject alternative names (DNS, IP, URI and email
	// together) a CSR may carry.
	MaxSANs int
}

// Default request limits: far above any ordinary certificate, far below
// what etcd and a Secret can hold.
const (
	DefaultMaxCSRBytes = 64 << 10
	DefaultMaxSANs     = 1000
)

// check refuses, before EJBCA is called, a request over the limits.
func (l RequestLimits) check(raw []byte, csr *x509.CertificateRequest) error {
	if l.MaxCSRBytes > 0 && len(raw) > l.MaxCSRBytes {
		return &PermanentError{Msg: fmt.Sprintf("the CSR is %d bytes, more than this issuer accepts (--max-csr-bytes=%d); it was not sent to EJBCA",
			len(raw), l.MaxCSRBytes)}
	}
	if n := len(csr.DNSNames) + len(csr.IPAddresses) + len(csr.URIs) + len(csr.EmailAddresses); l.MaxSANs > 0 && n > l.MaxSANs {
		return &PermanentError{Msg: fmt.Sprintf("the CSR has %d subject alternative names, more than this issuer accepts (--max-csr-sans=%d); it was not sent to EJBCA",
			n, l.MaxSANs)}
	}
	return nil
}
