package controllers_test

import (
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/controllers"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
)

// Attack: one tenant revokes 20 certificates through a shared cluster
// issuer limited to 2 calls/s. Another tenant's request is signed while
// the revocations are still going, not after all of them (revocations used
// to wait in the issuer's token bucket, taking every future token). The
// order is the proof, not the time: the bystander's certificate is issued
// before the last revocation. Its latency is logged.
func TestBystanderIsSignedWhileAnotherTenantRevokes(t *testing.T) {
	t.Parallel()
	const n = 20
	sim := newSim(t, ejbcasim.Config{})
	tenants := tenancies[1].setup(t, sim, 2, func(s *v1alpha1.IssuerSpec) {
		s.RateLimit = &v1alpha1.RateLimit{QPS: 2, Burst: 1}
		s.Revocation = &v1alpha1.RevocationSpec{}
	})
	revoker, bystander := tenants[0], tenants[1]
	var crs []*cmapi.CertificateRequest
	for i := range n {
		crs = append(crs, revoker.request(t, "r"+string(rune('a'+i))))
	}
	serials := make([]string, n)
	for i, cr := range crs {
		waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 60*time.Second)
		serials[i] = serialOfRequest(t, cr)
	}
	revoked := func() int {
		done := 0
		for _, s := range serials {
			done += sim.RevokeCalls(s)
		}
		return done
	}
	for _, cr := range crs {
		update(t, cr, func(cr *cmapi.CertificateRequest) { cr.Annotations[controllers.RevokeAnnotation] = "superseded" })
	}
	eventually(t, 30*time.Second, func() string {
		if revoked() < 2 {
			return "the revocations have not begun"
		}
		return ""
	})
	began := revoked()
	other := bystander.request(t, "bystander")
	c := waitRequest(t, other, cmapi.CertificateRequestReasonIssued, "", 60*time.Second)
	at := revoked()
	t.Logf("bystander issued %s after its creation (whole seconds), with %d of %d revocations done (%d when it was created)",
		c.LastTransitionTime.Sub(other.CreationTimestamp.Time), at, n, began)
	if at >= n {
		t.Errorf("the bystander was issued only after all %d revocations", n)
	}
	for _, cr := range crs {
		waitRevoked(t, cr, "SUPERSEDED")
	}
}
