package controllers_test

import (
	"bytes"
	"context"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
	certificatesv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/controllers/signing"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

// TestForeignCSRsNeverReachTheCache: a tenant's CSRs for another signer,
// each near the API server's object size limit, never reach the manager's
// cache, not even as stubs. A CSR of ours created after them shows the
// watch has delivered them: events arrive in the order the API server
// wrote them, so once ours is cached the foreign ones were seen and left
// out.
func TestForeignCSRsNeverReachTheCache(t *testing.T) {
	t.Parallel()
	big := make([]byte, 700<<10)
	_, request := testkit.CSR(t, testkit.CommonName("huge"),
		testkit.Extensions(pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, Value: big}))
	newCSR := func(prefix, signer string, request []byte) *certificatesv1.CertificateSigningRequest {
		csr := &certificatesv1.CertificateSigningRequest{
			ObjectMeta: metav1.ObjectMeta{GenerateName: prefix},
			Spec: certificatesv1.CertificateSigningRequestSpec{Request: request, SignerName: signer,
				Usages: []certificatesv1.KeyUsage{certificatesv1.UsageClientAuth}},
		}
		create(t, csr)
		t.Cleanup(func() { _ = k8s.Delete(context.Background(), csr) })
		return csr
	}
	var foreign []string
	for i := range 3 {
		foreign = append(foreign, newCSR("huge-foreign-", fmt.Sprintf("example.com/hostile-%d", i), request).Name)
	}
	_, small := testkit.CSR(t, testkit.CommonName("ours.example.com"))
	ours := newCSR("ours-after-foreign-", v1alpha1.ClusterIssuerSignerPrefix+"no-such-issuer", small)
	testkit.Eventually(t, 30*time.Second, func() string {
		if err := mgrCache.Get(context.Background(), client.ObjectKeyFromObject(ours), &certificatesv1.CertificateSigningRequest{}); err != nil {
			return "our CSR, created after the foreign ones, is not in the cache yet: " + err.Error()
		}
		return ""
	})
	for _, name := range foreign {
		err := mgrCache.Get(context.Background(), client.ObjectKey{Name: name}, &certificatesv1.CertificateSigningRequest{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("the cache holds foreign CSR %s (or failed to say it does not): %v", name, err)
		}
	}
}

// heldByInformer is what the manager's CertificateRequest informer holds
// for o, as its event handlers and index functions get it.
func heldByInformer(t *testing.T, o client.Object) any {
	t.Helper()
	inf, err := mgrCache.GetInformer(context.Background(), &cmapi.CertificateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	held, _, err := inf.(toolscache.SharedIndexInformer).GetStore().GetByKey(o.GetNamespace() + "/" + o.GetName())
	if err != nil {
		t.Fatal(err)
	}
	return held
}

// TestRevocationAfterRestartWithManyFinishedRequests: a manager restarted
// with many finished requests of ours in the cluster (cached as records,
// without their certificates) still revokes one of them, issued long
// before the restart, when it is annotated, with the serial and issuer it
// was issued with. Not parallel: it restarts the suite's manager.
func TestRevocationAfterRestartWithManyFinishedRequests(t *testing.T) {
	const finished = 1000
	sim := newSim(t, ejbcasim.Config{})
	ns, _ := readyIssuer(t, sim, func(s *v1alpha1.IssuerSpec) { s.Revocation = &v1alpha1.RevocationSpec{} })
	cr, _ := requestFor(t, ns, "ejbca", "long-ago")
	waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
	leaf, err := pki.DecodeX509CertificateBytes(cr.Status.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	serial := leaf.SerialNumber.Text(16)

	restartManager(t, func() {
		// Finished requests of ours, made while no manager runs.
		_, csrPEM := testkit.CSR(t, testkit.CommonName("finished.example.com"))
		var wg sync.WaitGroup
		errs := make(chan error, finished)
		sem := make(chan struct{}, 16)
		for i := range finished {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				o := &cmapi.CertificateRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("finished-%d", i)},
					Spec: cmapi.CertificateRequestSpec{Request: csrPEM, IssuerRef: cmmetaRef("ejbca")}}
				if err := k8s.Create(context.Background(), o); err != nil {
					errs <- err
					return
				}
				now := metav1.Now()
				o.Status = cmapi.CertificateRequestStatus{Certificate: cr.Status.Certificate, CA: cr.Status.CA, Conditions: []cmapi.CertificateRequestCondition{
					{Type: cmapi.CertificateRequestConditionApproved, Status: cmmeta.ConditionTrue, Reason: "Test", LastTransitionTime: &now},
					{Type: cmapi.CertificateRequestConditionReady, Status: cmmeta.ConditionTrue, Reason: cmapi.CertificateRequestReasonIssued, LastTransitionTime: &now}}}
				if err := k8s.Status().Update(context.Background(), o); err != nil && !apierrors.IsConflict(err) {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	})
	testkit.Eventually(t, 60*time.Second, func() string {
		cached := &cmapi.CertificateRequest{}
		if err := mgrCache.Get(context.Background(), client.ObjectKeyFromObject(cr), cached); err != nil {
			return err.Error()
		}
		if signing.ShapeOf(cached) != signing.ShapeFinished || len(cached.Status.Certificate) > 0 || bytes.Contains(cached.Spec.Request, []byte("CERTIFICATE REQUEST")) {
			return fmt.Sprintf("the cache holds the issued request as %q with %d certificate bytes", signing.ShapeOf(cached), len(cached.Status.Certificate))
		}
		if held := heldByInformer(t, cr); fmt.Sprintf("%T", held) != "*signing.FinishedRequest" {
			return fmt.Sprintf("the informer holds the issued request as a %T", held)
		}
		if record := signing.ConditionOf(cached, signing.ConditionIssuanceRecord); record == nil || !strings.Contains(record.Message, "serial="+serial+" ") {
			return fmt.Sprintf("read from the cache, the issued request's issuance record is %+v", record)
		}
		return ""
	})
	update(t, cr, func(cr *cmapi.CertificateRequest) {
		if cr.Annotations == nil {
			cr.Annotations = map[string]string{}
		}
		cr.Annotations[v1alpha1.RevokeAnnotation] = "keyCompromise"
	})
	testkit.Eventually(t, 60*time.Second, func() string {
		for _, c := range sim.Issued() {
			if c.Serial.Text(16) == serial && c.RevocationReason == "KEY_COMPROMISE" {
				return ""
			}
		}
		return "serial " + serial + " is not revoked in EJBCA"
	})
	if n := sim.RevokeCalls(serial); n != 1 {
		t.Errorf("%d revoke calls for serial %s, want 1", n, serial)
	}
}
