package e2e

import (
	"context"
	"fmt"
	"math/big"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

// revocationAbandonAfter is the suite manager's --revocation-abandon-after.
const revocationAbandonAfter = 8 * time.Second

// revokingIssuer makes a namespace whose EJBCAIssuer "ejbca" has
// spec.revocation set to rev (nil: revocation off), Ready again after the
// change.
func revokingIssuer(t *testing.T, rev *v1alpha1.RevocationSpec) string {
	t.Helper()
	ns := namespaceWithIssuers(t, "SERVER")
	iss := &v1alpha1.EJBCAIssuer{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "ejbca"}, iss); err != nil {
		t.Fatal(err)
	}
	if rev == nil {
		return ns
	}
	iss.Spec.Revocation = rev
	if err := k8s.Update(context.Background(), iss); err != nil {
		t.Fatal(err)
	}
	if err := stack.WaitIssuerReady(context.Background(), iss, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	return ns
}

// simCert is the simulator's record of serial.
func simCert(t *testing.T, serial *big.Int) ejbcasim.IssuedCert {
	t.Helper()
	for _, c := range stack.Sim.Issued() {
		if c.Serial.Cmp(serial) == 0 {
			return c
		}
	}
	t.Fatalf("the simulator issued no serial %X", serial)
	return ejbcasim.IssuedCert{}
}

// waitSimRevoked waits until EJBCA (the simulator) has serial revoked.
func waitSimRevoked(t *testing.T, serial *big.Int, timeout time.Duration) ejbcasim.IssuedCert {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c := simCert(t, serial)
		if c.Revoked {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("serial %X not revoked in EJBCA after %s", serial, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// requestWithSerial finds the Certificate's request that was given serial.
func requestWithSerial(t *testing.T, crt *cmapi.Certificate, serial *big.Int) *cmapi.CertificateRequest {
	t.Helper()
	for _, cr := range requestsOf(t, crt) {
		if leaf := leafOfRequest(&cr); leaf != nil && leaf.Cmp(serial) == 0 {
			return &cr
		}
	}
	t.Fatalf("no request of %s holds serial %X: %s", crt.Name, serial, describeRequests(t, crt))
	return nil
}

func leafOfRequest(cr *cmapi.CertificateRequest) *big.Int {
	if len(cr.Status.Certificate) == 0 {
		return nil
	}
	chain, err := pki.DecodeX509CertificateChainBytes(cr.Status.Certificate)
	if err != nil || len(chain) == 0 {
		return nil
	}
	return chain[0].SerialNumber
}

// waitRevokedCondition waits for the request's Revoked condition with reason.
func waitRevokedCondition(t *testing.T, cr *cmapi.CertificateRequest, reason string, timeout time.Duration) *cmapi.CertificateRequestCondition {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(cr), cr); err != nil {
			t.Fatal(err)
		}
		for i := range cr.Status.Conditions {
			c := &cr.Status.Conditions[i]
			if c.Type == v1alpha1.ConditionRevoked && c.Reason == reason {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("request %s: no Revoked/%s condition after %s: %+v", cr.Name, reason, timeout, cr.Status.Conditions)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitGone waits until the request no longer exists.
func waitGone(t *testing.T, cr *cmapi.CertificateRequest, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := k8s.Get(context.Background(), client.ObjectKeyFromObject(cr), &cmapi.CertificateRequest{})
		if apierrors.IsNotFound(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("request %s still exists after %s (finalizers %v): %v", cr.Name, timeout, cr.Finalizers, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// deleteCertificateAndRequests deletes the Certificate, then its requests
// with background propagation, as the garbage collector does for requests
// owned by a deleted Certificate (envtest runs no garbage collector).
func deleteCertificateAndRequests(t *testing.T, crt *cmapi.Certificate) []cmapi.CertificateRequest {
	t.Helper()
	crs := requestsOf(t, crt)
	if err := k8s.Delete(context.Background(), crt); err != nil {
		t.Fatal(err)
	}
	for i := range crs {
		if err := k8s.Delete(context.Background(), &crs[i]); err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
	}
	return crs
}

func TestRevocationOfSupersededAfterGracePeriod(t *testing.T) {
	t.Parallel()
	const grace = 2 * time.Second
	ns := revokingIssuer(t, &v1alpha1.RevocationSpec{Superseded: true, GracePeriod: &metav1.Duration{Duration: grace}})
	crt := newCertificate(t, ns, "superseded", namespacedIssuer())
	first, _, _ := parseSecret(t, waitIssued(t, crt, 1, 60*time.Second))
	old := requestWithSerial(t, crt, first.SerialNumber)
	if !hasFinalizer(old) {
		t.Errorf("request %s issued under superseded: true carries no %s finalizer: %v", old.Name, v1alpha1.RevocationFinalizer, old.Finalizers)
	}
	renew(t, crt)
	second, _, _ := parseSecret(t, waitIssued(t, crt, 2, 60*time.Second))
	successor := requestWithSerial(t, crt, second.SerialNumber)
	issuedAt := readyOf(successor).LastTransitionTime.Time

	revoked := waitSimRevoked(t, first.SerialNumber, 30*time.Second)
	took := time.Since(issuedAt)
	if revoked.RevocationReason != "SUPERSEDED" {
		t.Errorf("revoked with %s, want SUPERSEDED", revoked.RevocationReason)
	}
	// Not before: the successor was issued within the second its Ready
	// condition records (whole seconds), so EJBCA's revocation date (whole
	// seconds) must be at or after the end of that second plus the grace
	// period; the pure decision is held to the instant by
	// TestSupersededNotRevokedBeforeGrace.
	if revoked.RevocationDate.Before(issuedAt.Add(time.Second + grace)) {
		t.Errorf("revoked at %s, before the successor's issuance %s + grace %s", revoked.RevocationDate, issuedAt, grace)
	}
	// cert-manager prunes the old request (revisionHistoryLimit, 1 by
	// default) as soon as it creates the renewal's: the finalizer held it
	// until its certificate was revoked, then let its deletion complete.
	waitGone(t, old, 10*time.Second)
	testkit.WaitEvent(t, k8s, &metav1.ObjectMeta{Namespace: ns, Name: old.Name}, testkit.EventMatch{Reason: "Revoked", Message: fmt.Sprintf("certificate serial %x revoked in EJBCA with reason SUPERSEDED", first.SerialNumber)}, 10*time.Second)
	testkit.WaitEvent(t, k8s, &metav1.ObjectMeta{Namespace: ns, Name: crt.Name}, testkit.EventMatch{Reason: "Revoked", Message: old.Name}, 10*time.Second)
	if c := simCert(t, second.SerialNumber); c.Revoked {
		t.Errorf("the current certificate %X was revoked too", second.SerialNumber)
	}
	if n := stack.Sim.RevokeCalls(first.SerialNumber.Text(16)); n != 1 {
		t.Errorf("%d revoke calls for the superseded certificate, want 1", n)
	}
	if n := stack.Sim.RevokeCalls(second.SerialNumber.Text(16)); n != 0 {
		t.Errorf("%d revoke calls for the current certificate, want 0", n)
	}
	t.Logf("superseded: 1 revoke call; EJBCA dated the revocation %s, the successor's Ready condition %s (whole seconds), grace %s; seen revoked %s after that second began",
		revoked.RevocationDate.Format(time.RFC3339), issuedAt.Format(time.RFC3339), grace, took.Round(10*time.Millisecond))
}

func hasFinalizer(cr *cmapi.CertificateRequest) bool {
	for _, f := range cr.Finalizers {
		if f == v1alpha1.RevocationFinalizer {
			return true
		}
	}
	return false
}

func TestRevocationWhenCertificateDeleted(t *testing.T) {
	t.Parallel()
	ns := revokingIssuer(t, &v1alpha1.RevocationSpec{Deleted: true})
	crt := newCertificate(t, ns, "deleted", namespacedIssuer())
	leaf, _, _ := parseSecret(t, waitIssued(t, crt, 1, 60*time.Second))
	cr := requestWithSerial(t, crt, leaf.SerialNumber)
	start := time.Now()
	deleteCertificateAndRequests(t, crt)
	revoked := waitSimRevoked(t, leaf.SerialNumber, 30*time.Second)
	took := time.Since(start)
	if revoked.RevocationReason != "CESSATION_OF_OPERATION" {
		t.Errorf("revoked with %s, want CESSATION_OF_OPERATION", revoked.RevocationReason)
	}
	waitGone(t, cr, 10*time.Second)
	if n := stack.Sim.RevokeCalls(leaf.SerialNumber.Text(16)); n != 1 {
		t.Errorf("%d revoke calls, want 1", n)
	}
	testkit.WaitEvent(t, k8s, &metav1.ObjectMeta{Namespace: ns, Name: cr.Name}, testkit.EventMatch{Reason: "Revoked", Message: "CESSATION_OF_OPERATION"}, 10*time.Second)
	t.Logf("deleted: 1 revoke call; revoked %s after the deletion", took.Round(10*time.Millisecond))
}

func TestRevocationPrunedCurrentRequestIsNotRevoked(t *testing.T) {
	t.Parallel()
	ns := revokingIssuer(t, &v1alpha1.RevocationSpec{Deleted: true})
	crt := newCertificate(t, ns, "pruned", namespacedIssuer())
	leaf, _, _ := parseSecret(t, waitIssued(t, crt, 1, 60*time.Second))
	cr := requestWithSerial(t, crt, leaf.SerialNumber)
	// cert-manager's revisionHistoryLimit deletes a request whose
	// certificate is still the one in the Secret.
	if err := k8s.Delete(context.Background(), cr); err != nil {
		t.Fatal(err)
	}
	waitGone(t, cr, 10*time.Second)
	testkit.WaitEvent(t, k8s, &metav1.ObjectMeta{Namespace: ns, Name: cr.Name}, testkit.EventMatch{Reason: "RevocationNotNeeded", Message: "still holds"}, 10*time.Second)
	if c := simCert(t, leaf.SerialNumber); c.Revoked {
		t.Errorf("the current certificate was revoked (%s) when its request was pruned", c.RevocationReason)
	}
	if n := stack.Sim.RevokeCalls(leaf.SerialNumber.Text(16)); n != 0 {
		t.Errorf("%d revoke calls, want 0", n)
	}
}

func TestRevocationByAnnotation(t *testing.T) {
	t.Parallel()
	ns := revokingIssuer(t, &v1alpha1.RevocationSpec{})
	crt := newCertificate(t, ns, "explicit", namespacedIssuer())
	leaf, _, _ := parseSecret(t, waitIssued(t, crt, 1, 60*time.Second))
	cr := requestWithSerial(t, crt, leaf.SerialNumber)
	if hasFinalizer(cr) {
		t.Errorf("request issued with superseded and deleted off carries the finalizer")
	}

	// An unknown reason: an event, and nothing revoked.
	annotateRequest(t, cr, "KEY_COMPROMISE")
	waitRevokedCondition(t, cr, v1alpha1.RevokedReasonInvalid, 10*time.Second)
	testkit.WaitEvent(t, k8s, &metav1.ObjectMeta{Namespace: ns, Name: cr.Name}, testkit.EventMatch{Reason: "RevocationRefused", Message: "not a revocation reason"}, 10*time.Second)
	if n := stack.Sim.RevokeCalls(leaf.SerialNumber.Text(16)); n != 0 {
		t.Fatalf("%d revoke calls for an unknown reason, want 0", n)
	}

	start := time.Now()
	annotateRequest(t, cr, "keyCompromise")
	revoked := waitSimRevoked(t, leaf.SerialNumber, 30*time.Second)
	took := time.Since(start)
	if revoked.RevocationReason != "KEY_COMPROMISE" {
		t.Errorf("revoked with %s, want KEY_COMPROMISE", revoked.RevocationReason)
	}
	waitRevokedCondition(t, cr, "KEY_COMPROMISE", 10*time.Second)
	testkit.WaitEvent(t, k8s, &metav1.ObjectMeta{Namespace: ns, Name: crt.Name}, testkit.EventMatch{Reason: "Revoked", Message: "KEY_COMPROMISE"}, 10*time.Second)
	if n := stack.Sim.RevokeCalls(leaf.SerialNumber.Text(16)); n != 1 {
		t.Errorf("%d revoke calls, want 1", n)
	}
	t.Logf("explicit: 1 revoke call; revoked %s after the annotation", took.Round(10*time.Millisecond))
}

func annotateRequest(t *testing.T, cr *cmapi.CertificateRequest, value string) {
	t.Helper()
	patch := client.RawPatch("application/merge-patch+json", []byte(fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, v1alpha1.RevokeAnnotation, value)))
	if err := k8s.Patch(context.Background(), cr, patch); err != nil {
		t.Fatal(err)
	}
}

func TestRevocationAnnotationCopiedFromCertificateDoesNotRevoke(t *testing.T) {
	t.Parallel()
	ns := revokingIssuer(t, &v1alpha1.RevocationSpec{})
	crt := newCertificate(t, ns, "copied", namespacedIssuer(), func(c *cmapi.Certificate) {
		c.Annotations = map[string]string{v1alpha1.RevokeAnnotation: "keyCompromise"}
	})
	leaf, _, _ := parseSecret(t, waitIssued(t, crt, 1, 60*time.Second))
	cr := requestWithSerial(t, crt, leaf.SerialNumber)
	if cr.Annotations[v1alpha1.RevokeAnnotation] != "keyCompromise" {
		t.Fatalf("cert-manager did not copy the annotation: %v", cr.Annotations)
	}
	waitRevokedCondition(t, cr, v1alpha1.RevokedReasonAtIssuance, 10*time.Second)
	e := testkit.WaitEvent(t, k8s, &metav1.ObjectMeta{Namespace: ns, Name: cr.Name}, testkit.EventMatch{Reason: "RevocationRefused", Message: "already carried it when it was issued"}, 10*time.Second)
	if e.Type != corev1.EventTypeWarning {
		t.Errorf("event type %s, want Warning", e.Type)
	}
	// A negative, bounded: the refusal is recorded, and EJBCA saw no call.
	time.Sleep(time.Second)
	if c := simCert(t, leaf.SerialNumber); c.Revoked {
		t.Errorf("revoked (%s) by an annotation copied from the Certificate", c.RevocationReason)
	}
	if n := stack.Sim.RevokeCalls(leaf.SerialNumber.Text(16)); n != 0 {
		t.Errorf("%d revoke calls, want 0", n)
	}
	t.Log("copied annotation: 0 revoke calls, refusal recorded (AnnotationAtIssuance) with a Warning event")
}

func TestRevocationOffRevokesNothing(t *testing.T) {
	t.Parallel()
	ns := revokingIssuer(t, nil)
	crt := newCertificate(t, ns, "off", namespacedIssuer())
	first, _, _ := parseSecret(t, waitIssued(t, crt, 1, 60*time.Second))
	renew(t, crt)
	second, _, _ := parseSecret(t, waitIssued(t, crt, 2, 60*time.Second))
	cr := requestWithSerial(t, crt, second.SerialNumber)
	if hasFinalizer(cr) {
		t.Errorf("request issued with revocation off carries the finalizer")
	}
	annotateRequest(t, cr, "keyCompromise")
	waitRevokedCondition(t, cr, v1alpha1.RevokedReasonNotEnabled, 10*time.Second)
	deleteCertificateAndRequests(t, crt)
	waitGone(t, cr, 10*time.Second)
	// A negative, bounded: renewal, the annotation and the deletion are
	// all seen (the condition above, the request gone); no call follows.
	time.Sleep(time.Second)
	for _, s := range []*big.Int{first.SerialNumber, second.SerialNumber} {
		if c := simCert(t, s); c.Revoked {
			t.Errorf("serial %X revoked (%s) with revocation off", s, c.RevocationReason)
		}
		if n := stack.Sim.RevokeCalls(s.Text(16)); n != 0 {
			t.Errorf("%d revoke calls for %X, want 0", n, s)
		}
	}
}

func TestRevocationAlreadyRevokedInEJBCAIsDone(t *testing.T) {
	t.Parallel()
	ns := revokingIssuer(t, &v1alpha1.RevocationSpec{Deleted: true})
	crt := newCertificate(t, ns, "conflict", namespacedIssuer())
	leaf, _, _ := parseSecret(t, waitIssued(t, crt, 1, 60*time.Second))
	cr := requestWithSerial(t, crt, leaf.SerialNumber)
	if !stack.Sim.RevokeAsAdministrator(leaf.SerialNumber, "KEY_COMPROMISE") {
		t.Fatal("the simulator did not revoke")
	}
	start := time.Now()
	deleteCertificateAndRequests(t, crt)
	waitGone(t, cr, 20*time.Second)
	took := time.Since(start)
	testkit.WaitEvent(t, k8s, &metav1.ObjectMeta{Namespace: ns, Name: cr.Name}, testkit.EventMatch{Reason: "Revoked", Message: "already revoked"}, 10*time.Second)
	if n := stack.Sim.RevokeCalls(leaf.SerialNumber.Text(16)); n != 1 {
		t.Errorf("%d revoke calls, want 1 (answered 409)", n)
	}
	if c := simCert(t, leaf.SerialNumber); c.RevocationReason != "KEY_COMPROMISE" {
		t.Errorf("reason %s, want the administrator's KEY_COMPROMISE kept", c.RevocationReason)
	}
	t.Logf("409: 1 revoke call (answered 409, recorded AlreadyRevoked); deletion completed %s after it began", took.Round(10*time.Millisecond))
}

// TestRevocationWhileEJBCADown is not parallel: it takes the shared
// simulator down.
func TestRevocationWhileEJBCADown(t *testing.T) {
	ns := revokingIssuer(t, &v1alpha1.RevocationSpec{Deleted: true})
	back := newCertificate(t, ns, "down-back", namespacedIssuer())
	gone := newCertificate(t, ns, "down-abandoned", namespacedIssuer())
	backLeaf, _, _ := parseSecret(t, waitIssued(t, back, 1, 60*time.Second))
	goneLeaf, _, _ := parseSecret(t, waitIssued(t, gone, 1, 60*time.Second))
	backCR := requestWithSerial(t, back, backLeaf.SerialNumber)
	goneCR := requestWithSerial(t, gone, goneLeaf.SerialNumber)

	t.Run("revoked after EJBCA returns", func(t *testing.T) {
		stack.Sim.SetDown(true)
		defer stack.Sim.SetDown(false)
		start := time.Now()
		deleteCertificateAndRequests(t, back)
		testkit.WaitEvent(t, k8s, &metav1.ObjectMeta{Namespace: ns, Name: backCR.Name}, testkit.EventMatch{Reason: "RevocationFailed", Message: "will retry"}, 10*time.Second)
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(backCR), backCR); err != nil {
			t.Fatalf("the request was not held while EJBCA was down: %v", err)
		}
		stack.Sim.SetDown(false)
		returned := time.Now()
		revoked := waitSimRevoked(t, backLeaf.SerialNumber, revocationAbandonAfter)
		waitGone(t, backCR, 10*time.Second)
		if revoked.RevocationReason != "CESSATION_OF_OPERATION" {
			t.Errorf("reason %s", revoked.RevocationReason)
		}
		if n := stack.Sim.RevokeCalls(backLeaf.SerialNumber.Text(16)); n != 1 {
			t.Errorf("%d revoke calls reached EJBCA, want 1", n)
		}
		t.Logf("EJBCA down: 1 revoke call reached EJBCA; revoked %s after the deletion, %s after EJBCA returned",
			time.Since(start).Round(10*time.Millisecond), time.Since(returned).Round(10*time.Millisecond))
	})

	t.Run("abandoned after the bound", func(t *testing.T) {
		stack.Sim.SetDown(true)
		defer stack.Sim.SetDown(false)
		// A namespace deletion is the namespace controller deleting every
		// object in it and waiting for their finalizers; envtest runs no
		// namespace controller (and refuses events in a terminating
		// namespace), so the test deletes the Certificate and its requests
		// as it would and shows the requests' deletion completing.
		start := time.Now()
		deleteCertificateAndRequests(t, gone)
		waitGone(t, goneCR, revocationAbandonAfter+10*time.Second)
		took := time.Since(start)
		if took < revocationAbandonAfter-time.Second {
			t.Errorf("the request was released after %s, before the bound %s", took, revocationAbandonAfter)
		}
		testkit.WaitEvent(t, k8s, &metav1.ObjectMeta{Namespace: ns, Name: goneCR.Name}, testkit.EventMatch{Reason: "RevocationAbandoned", Message: "NOT revoked"}, 10*time.Second)
		if c := simCert(t, goneLeaf.SerialNumber); c.Revoked {
			t.Error("revoked while EJBCA was down")
		}
		t.Logf("EJBCA down past the bound: 0 revoke calls reached EJBCA; finalizer removed after %s (bound %s)", took.Round(10*time.Millisecond), revocationAbandonAfter)
	})
}
