package controllers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

// Attack: an approver of their own namespace (cert-manager lets approvers
// write certificaterequests/status) writes another tenant's certificate
// into a request's status.certificate and annotates it for revocation. The
// victim's certificate must not be revoked: the request's own issuance
// record names another serial (an issued request) or none (a request never
// issued). Each attempt ends with a refusal a user can read, and no revoke
// call for either certificate reaches EJBCA.
func TestAttackRevokingAnotherTenantsCertificate(t *testing.T) {
	t.Parallel()
	for _, tc := range tenancies {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sim := newSim(t, ejbcasim.Config{})
			tenants := tc.setup(t, sim, 2, func(s *v1alpha1.IssuerSpec) { s.Revocation = &v1alpha1.RevocationSpec{} })
			victim, attacker := tenants[0], tenants[1]

			v := victim.request(t, "victim")
			waitRequest(t, v, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
			victimSerial := serialOfRequest(t, v)

			// An issued request of the attacker's, its certificate swapped.
			own := attacker.request(t, "swapped")
			waitRequest(t, own, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
			ownSerial := serialOfRequest(t, own)
			forgeCertificate(t, own, v.Status.Certificate)
			c := waitRevoked(t, own, v1alpha1.RevokedReasonNotIssuedHere)
			wantIn(t, c.Message, "serial "+victimSerial, "issued serial "+ownSerial)
			testkit.WaitEvent(t, k8s, own, testkit.EventMatch{Type: corev1.EventTypeWarning, Reason: "RevocationRefused", Message: "issued serial " + ownSerial}, 30*time.Second)

			// A request never issued: no record at all.
			_, csr := testkit.CSR(t, testkit.CommonName("never.example.com"), testkit.DNSNames("never.example.com"))
			never := newRequest(t, attacker.ns, attacker.issuer, "never", csr, attacker.opts...)
			forgeCertificate(t, never, v.Status.Certificate)
			c = waitRevoked(t, never, v1alpha1.RevokedReasonNotIssuedHere)
			wantIn(t, c.Message, "carries no", "serial "+victimSerial)
			testkit.WaitEvent(t, k8s, never, testkit.EventMatch{Type: corev1.EventTypeWarning, Reason: "RevocationRefused", Message: "serial " + victimSerial}, 30*time.Second)

			for _, s := range []string{victimSerial, ownSerial} {
				if n := sim.RevokeCalls(s); n != 0 {
					t.Errorf("%d revoke calls for serial %s, want none", n, s)
				}
			}
			// The control: the attacker's own request, unforged, still
			// revokes its own certificate.
			legit := attacker.request(t, "legit")
			waitRequest(t, legit, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
			update(t, legit, func(cr *cmapi.CertificateRequest) { cr.Annotations[v1alpha1.RevokeAnnotation] = "keyCompromise" })
			waitRevoked(t, legit, "KEY_COMPROMISE")
			if n := sim.RevokeCalls(serialOfRequest(t, legit)); n != 1 {
				t.Errorf("%d revoke calls for the attacker's own certificate, want 1", n)
			}
		})
	}
}

// forgeCertificate writes cert into the request's status, as an approver
// may, and annotates the request for revocation.
func forgeCertificate(t *testing.T, cr *cmapi.CertificateRequest, cert []byte) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, func() string {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(cr), cr); err != nil {
			return err.Error()
		}
		cr.Status.Certificate = cert
		if err := k8s.Status().Update(context.Background(), cr, client.FieldOwner("an-approver")); err != nil {
			return err.Error()
		}
		return ""
	})
	update(t, cr, func(cr *cmapi.CertificateRequest) {
		if cr.Annotations == nil {
			cr.Annotations = map[string]string{}
		}
		cr.Annotations[v1alpha1.RevokeAnnotation] = "keyCompromise"
	})
}

// waitRevoked waits for the request's Revoked condition with reason.
func waitRevoked(t *testing.T, cr *cmapi.CertificateRequest, reason string) *cmapi.CertificateRequestCondition {
	t.Helper()
	var got *cmapi.CertificateRequestCondition
	testkit.Eventually(t, 30*time.Second, func() string {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(cr), cr); err != nil {
			return err.Error()
		}
		got = apiutil.GetCertificateRequestCondition(cr, v1alpha1.ConditionRevoked)
		if got == nil {
			return "no Revoked condition"
		}
		if got.Reason != reason {
			return "Revoked " + got.Reason + ": " + got.Message + " (want " + reason + ")"
		}
		return ""
	})
	return got
}

func serialOfRequest(t *testing.T, cr *cmapi.CertificateRequest) string {
	t.Helper()
	leaf, err := pki.DecodeX509CertificateBytes(cr.Status.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	return leaf.SerialNumber.Text(16)
}

func wantIn(t *testing.T, s string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(s, p) {
			t.Errorf("%q does not say %q", s, p)
		}
	}
}
