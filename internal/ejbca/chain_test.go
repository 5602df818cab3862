package ejbca_test

import (
	"bytes"
	"testing"

	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
)

// The second certificate of a CA reuses the ordered chain of the first; the
// result must be the same as ordering from scratch, and a certificate from
// another CA must not be given the cached chain.
func TestChainOrderIsRememberedPerCAChain(t *testing.T) {
	sim := startSim(t, ejbcasim.Config{})
	if _, err := sim.AddCA("SubCA", "CN=SubCA,O=EJBCA Sim", "IssuingCA"); err != nil {
		t.Fatal(err)
	}
	cl := clientFor(t, sim, modeMTLS)
	var tails [][]byte
	for i, ca := range []string{"IssuingCA", "IssuingCA", "SubCA", "IssuingCA"} {
		csr, key := simpleCSR(t, "chain.example.com")
		req := enrolment(csr, "chain-"+ca)
		req.CAName = ca
		cert, err := cl.Enroll(ctxFor(t), req)
		if err != nil {
			t.Fatalf("enrolment %d from %s: %v", i, ca, err)
		}
		if ca == "IssuingCA" {
			checkIssued(t, sim, cert, key)
		}
		chain := decodePEMCerts(t, cert.ChainPEM)
		if !chain[0].Equal(cert.Leaf) {
			t.Fatalf("enrolment %d: the chain does not start with the leaf", i)
		}
		if err := chain[0].CheckSignatureFrom(chain[1]); err != nil {
			t.Errorf("enrolment %d from %s: the leaf is not signed by the next certificate (%s): %v", i, ca, chain[1].Subject, err)
		}
		tails = append(tails, cert.ChainPEM[bytes.Index(cert.ChainPEM, []byte("-----END CERTIFICATE-----"))+26:])
	}
	if !bytes.Equal(tails[0], tails[1]) || !bytes.Equal(tails[0], tails[3]) {
		t.Error("the same CA chain was ordered differently for two certificates")
	}
	if bytes.Equal(tails[0], tails[2]) {
		t.Error("a SubCA certificate got IssuingCA's chain")
	}
}
