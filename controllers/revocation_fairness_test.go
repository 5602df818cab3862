package controllers_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

// Attack: one tenant revokes 20 certificates through a shared cluster
// issuer limited to 1 call/s. Another tenant's request, made as the
// revocations are asked for, is signed while they are still going, not
// after all of them (revocations used to wait in the issuer's token bucket,
// taking every future token). The order is the proof, not the time: the
// bystander's certificate is issued before the last revocation. Its latency
// is logged.
func TestBystanderIsSignedWhileAnotherTenantRevokes(t *testing.T) {
	t.Parallel()
	const n = 20
	sim := newSim(t, ejbcasim.Config{})
	// Issued without a limit, so the test does not wait 20 s for it; the
	// limit is set before the revocations.
	name := readyClusterIssuer(t, sim, func(s *v1alpha1.IssuerSpec) { s.Revocation = &v1alpha1.RevocationSpec{} })
	revoker := tenant{ns: newNamespace(t), issuer: name, opts: []crOption{clusterIssuerRef(name)}}
	bystander := tenant{ns: newNamespace(t), issuer: name, opts: []crOption{clusterIssuerRef(name)}}
	var crs []*cmapi.CertificateRequest
	for i := range n {
		crs = append(crs, revoker.request(t, "r"+string(rune('a'+i))))
	}
	serials := make([]string, n)
	for i, cr := range crs {
		waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 60*time.Second)
		serials[i] = serialOfRequest(t, cr)
	}
	iss := &v1alpha1.EJBCAClusterIssuer{}
	iss.Name = name
	update(t, iss, func(i *v1alpha1.EJBCAClusterIssuer) { i.Spec.RateLimit = &v1alpha1.RateLimit{QPS: 1, Burst: 1} })
	testkit.Eventually(t, 30*time.Second, func() string {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(iss), iss); err != nil {
			return err.Error()
		}
		if c := iss.Status.ReadyCondition(); c == nil || c.ObservedGeneration != iss.Generation || !v1alpha1.IsReady(iss) {
			return "the issuer's rate limit is not checked yet"
		}
		return ""
	})
	revoked := func() int {
		done := 0
		for _, s := range serials {
			done += sim.RevokeCalls(s)
		}
		return done
	}

	// All 20 asked for at once (merge patches, in parallel), then the
	// bystander's request.
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{v1alpha1.RevokeAnnotation: "superseded"}}})
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, cr := range crs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- k8s.Patch(context.Background(), cr.DeepCopy(), client.RawPatch("application/merge-patch+json", patch))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
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
