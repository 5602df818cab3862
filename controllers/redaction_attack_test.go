package controllers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

// Attack: a tenant probes for other tenants' end entities through EJBCA's
// refusals. With "enforce unique DN" on the CA, EJBCA refuses a subject DN
// another end entity holds and names that end entity; the request fails
// with EJBCA's reason, but neither its status nor its events name the other
// tenant's namespace or end entity.
func TestAttackEJBCAMessagesNameNoOtherTenant(t *testing.T) {
	t.Parallel()
	for _, tc := range tenancies {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sim := newSim(t, ejbcasim.Config{})
			if err := sim.SetEnforceUniqueDN("IssuingCA", true); err != nil {
				t.Fatal(err)
			}
			tenants := tc.setup(t, sim, 2)
			victim, attacker := tenants[0], tenants[1]
			const secret = "merger-project-x"
			v := victim.request(t, secret)
			waitRequest(t, v, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)

			_, csr := testkit.CSR(t, testkit.CommonName(secret+".example.com"), testkit.DNSNames(secret+".example.com"))
			cr := newRequest(t, attacker.ns, attacker.issuer, "probe", csr, attacker.opts...)
			approve(t, cr)
			c := waitRequest(t, cr, cmapi.CertificateRequestReasonFailed, "is not allowed to use same subject DN as the user(s) '<another end entity>'", 30*time.Second)
			if strings.Contains(c.Message, victim.ns) || strings.Contains(c.Message, "/"+secret) {
				t.Errorf("the attacker's status names the victim's end entity: %s", c.Message)
			}
			var list corev1.EventList
			if err := k8s.List(context.Background(), &list, client.InNamespace(attacker.ns)); err != nil {
				t.Fatal(err)
			}
			for _, e := range list.Items {
				if strings.Contains(e.Message, victim.ns) {
					t.Errorf("an event in the attacker's namespace names the victim's: %s: %s", e.Reason, e.Message)
				}
			}
		})
	}
}
