package controllers_test

import (
	"context"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/controllers/signing"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

// Attack: under an issuer whose end entity names come from the CSR (cn,
// dns, uri, ip), a tenant puts another namespace's end entity name in its
// CSR: a CN of "<victim-ns>/victim". The name is placed in the attacker's
// own namespace, and a name holding a character EJBCA turns into '/'
// ("<victim-ns>;victim") is refused, so the victim's end entity is never
// enrolled for or rewritten.
func TestAttackCSRNamesAnotherNamespacesEndEntity(t *testing.T) {
	t.Parallel()
	cn := func(s *v1alpha1.IssuerSpec) { s.EndEntityName = v1alpha1.EndEntityNameCN }
	for _, tc := range []struct {
		name     string
		attacker func(t *testing.T, sim *ejbcasim.Sim) tenant
	}{
		{"namespaced issuers", func(t *testing.T, sim *ejbcasim.Sim) tenant {
			ns, _ := readyIssuer(t, sim, cn)
			return tenant{ns: ns, issuer: "ejbca"}
		}},
		{"a cluster issuer", func(t *testing.T, sim *ejbcasim.Sim) tenant {
			name := readyClusterIssuer(t, sim, cn)
			return tenant{ns: newNamespace(t), issuer: name, opts: []crOption{clusterIssuerRef(name)}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sim := newSim(t, ejbcasim.Config{})
			victimNS, _ := readyIssuer(t, sim)
			victimEntity, untouched := victimEndEntity(t, sim, tenant{ns: victimNS, issuer: "ejbca"})
			attacker := tc.attacker(t, sim)

			_, csr := testkit.CSR(t, testkit.CommonName(victimEntity), testkit.DNSNames("attacker.example.com"))
			cr := newRequest(t, attacker.ns, attacker.issuer, "slash", csr, attacker.opts...)
			approve(t, cr)
			waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
			if own := attacker.ns + "/" + victimEntity; enrolments(sim, own) != 1 {
				t.Errorf("%d certificates for %s, want the attacker's 1 there", enrolments(sim, own), own)
			}
			untouched()

			_, csr = testkit.CSR(t, testkit.CommonName(victimNS+";victim"), testkit.DNSNames("attacker.example.com"))
			cr = newRequest(t, attacker.ns, attacker.issuer, "semicolon", csr, attacker.opts...)
			approve(t, cr)
			waitRequest(t, cr, cmapi.CertificateRequestReasonFailed, "which EJBCA replaces with '/'", 30*time.Second)
			untouched()
		})
	}
}

// Attack: a CSR name reused by another requester after the first CSR is
// gone never shares the first one's end entity (its DN would be rewritten
// and the second certificate filed under the first requester).
func TestAttackReusedCSRNameGetsItsOwnEndEntity(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	issuer := readyClusterIssuer(t, sim)
	signer := v1alpha1.IssuerSignerName(v1alpha1.ClusterIssuerKind, "", issuer)
	name := "reused-" + newNamespace(t)
	named := func(c *certificatesv1.CertificateSigningRequest) { c.GenerateName, c.Name = "", name }

	first := newCSR(t, clientsetAs(t, ""), signer, "first.example.com", named)
	decideCSR(t, first, certificatesv1.CertificateApproved)
	waitCSR(t, first, 30*time.Second, signed)
	firstEntity, ok := sim.EndEntity(signing.CSREndEntityName(first.Name, first.UID))
	if !ok {
		t.Fatalf("no end entity %s", signing.CSREndEntityName(first.Name, first.UID))
	}
	if err := clientsetAs(t, "").CertificatesV1().CertificateSigningRequests().Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() string {
		if _, err := clientsetAs(t, "").CertificatesV1().CertificateSigningRequests().Get(context.Background(), name, metav1.GetOptions{}); err == nil {
			return "the first CSR still exists"
		}
		return ""
	})

	second := newCSR(t, clientsetAs(t, ""), signer, "second.example.com", named)
	decideCSR(t, second, certificatesv1.CertificateApproved)
	waitCSR(t, second, 30*time.Second, signed)
	if after, _ := sim.EndEntity(signing.CSREndEntityName(first.Name, first.UID)); after != firstEntity {
		t.Errorf("the first CSR's end entity changed:\n  before %+v\n  after  %+v", firstEntity, after)
	}
	if n := enrolments(sim, signing.CSREndEntityName(first.Name, first.UID)); n != 1 {
		t.Errorf("%d certificates for the first CSR's end entity, want its own 1", n)
	}
	if n := enrolments(sim, signing.CSREndEntityName(second.Name, second.UID)); n != 1 {
		t.Errorf("%d certificates for the second CSR's own end entity, want 1", n)
	}
}
