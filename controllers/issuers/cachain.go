package issuers

import (
	"time"

	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
	"github.com/certctl-io/ejbca-issuer/internal/metrics"
)

// maxCAChain bounds the chain followed through EJBCA's CA list (and so the
// series an issuer exports): real PKI hierarchies are 2 to 4 deep.
const maxCAChain = 8

// caChain is the expiry of the issuer's CA and of the CAs above it that
// EJBCA's CA list shows, found by following each CA's issuer_dn to the CA
// with that subject DN. Newer EJBCA versions give the direct issuer, so the
// whole chain is found; older ones give the root's DN, so the chain is the
// CA and its root. A CA whose issuer the credentials do not see (or an
// external one) ends the chain there. A CA whose expiration_date does not
// parse is left out, but the walk goes on above it.
func caChain(cas []ejbca.CA, issuing ejbca.CA) []metrics.CAValidity {
	bySubject := make(map[string]ejbca.CA, len(cas))
	for _, ca := range cas {
		if _, dup := bySubject[ca.SubjectDN]; !dup {
			bySubject[ca.SubjectDN] = ca
		}
	}
	var out []metrics.CAValidity
	seen := map[string]bool{}
	for ca, i := issuing, 0; i < maxCAChain && !seen[ca.SubjectDN]; i++ {
		seen[ca.SubjectDN] = true
		role := metrics.CARoleIntermediate
		switch {
		case i == 0:
			role = metrics.CARoleIssuing
		case ca.IssuerDN == ca.SubjectDN:
			role = metrics.CARoleRoot
		}
		if notAfter, err := time.Parse(time.RFC3339, ca.ExpirationDate); err == nil {
			out = append(out, metrics.CAValidity{Name: ca.Name, Role: role, NotAfter: notAfter})
		}
		next, ok := bySubject[ca.IssuerDN]
		if !ok || ca.IssuerDN == ca.SubjectDN {
			break
		}
		ca = next
	}
	return out
}

// earliestExpiry is the first notAfter of a chain, zero for none.
func earliestExpiry(chain []metrics.CAValidity) time.Time {
	var first time.Time
	for _, ca := range chain {
		if first.IsZero() || ca.NotAfter.Before(first) {
			first = ca.NotAfter
		}
	}
	return first
}
