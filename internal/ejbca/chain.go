package ejbca

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"strings"
	"sync"

	"github.com/cert-manager/cert-manager/pkg/util/pki"
)

// chainCache remembers how a CA chain that EJBCA returned is ordered. Every
// certificate of a CA comes with the same chain, so it is parsed and ordered
// by signature once (cert-manager's pki.ParseSingleCertificateChain); after
// that a certificate costs one signature check against its issuing CA, and
// the chain is neither parsed nor ordered again.
type chainCache struct {
	mu     sync.Mutex
	chains map[string]*orderedChain
}

// orderedChain is what follows a leaf: the CA that signs it, the PEM of the
// intermediates after the leaf, and the root.
type orderedChain struct {
	issuer *x509.Certificate
	tail   []byte
	caPEM  []byte
}

const maxCachedChains = 64

// order returns the leaf followed by its intermediates, and the root, from
// the unordered chain raw (base64 DER, as EJBCA sent it; also the cache
// key), whose certificates parse parses.
func (c *chainCache) order(leaf *x509.Certificate, raw []string, parse func(i int, s string) (*x509.Certificate, error)) (chainPEM, caPEM []byte, err error) {
	leafPEM, err := pki.EncodeX509(leaf)
	if err != nil {
		return nil, nil, err
	}
	key := strings.Join(raw, "|")
	if len(raw) > 0 {
		c.mu.Lock()
		oc := c.chains[key]
		c.mu.Unlock()
		if oc != nil && leaf.CheckSignatureFrom(oc.issuer) == nil {
			return append(leafPEM, oc.tail...), oc.caPEM, nil
		}
	}
	cas := make([]*x509.Certificate, 0, len(raw))
	for i, s := range raw {
		ca, err := parse(i, s)
		if err != nil {
			return nil, nil, err
		}
		cas = append(cas, ca)
	}
	bundle, err := pki.ParseSingleCertificateChain(append([]*x509.Certificate{leaf}, cas...))
	if err != nil {
		return nil, nil, fmt.Errorf("the certificate and its chain do not form one chain: %w", err)
	}
	if !bytes.HasPrefix(bundle.ChainPEM, leafPEM) {
		return nil, nil, fmt.Errorf("the issued certificate (serial %X) is not at the bottom of the chain EJBCA returned", leaf.SerialNumber)
	}
	if len(cas) == 0 {
		return bundle.ChainPEM, bundle.CAPEM, nil
	}
	tail := bundle.ChainPEM[len(leafPEM):]
	issuerPEM := tail
	if len(bytes.TrimSpace(tail)) == 0 {
		issuerPEM = bundle.CAPEM
	}
	if issuer, err := pki.DecodeX509CertificateBytes(issuerPEM); err == nil {
		c.mu.Lock()
		if c.chains == nil || len(c.chains) >= maxCachedChains {
			c.chains = map[string]*orderedChain{}
		}
		c.chains[key] = &orderedChain{issuer: issuer, tail: tail, caPEM: bundle.CAPEM}
		c.mu.Unlock()
	}
	return bundle.ChainPEM, bundle.CAPEM, nil
}
