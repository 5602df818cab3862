package controllers_test

import (
	"crypto/rand"
	"slices"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/controllers/signing"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

// Rotation: a change to a referenced Secret or ConfigMap, or to the spec, is
// picked up by the running manager without a restart.

// healthChecksOK is the number of CA list calls (the health check) the
// simulator answered with 200.
func healthChecksOK(sim *ejbcasim.Sim) int {
	return sim.Counters().Calls["ca"][200]
}

// waitHealthCheck waits until the simulator answered another health check
// than the before first, and the issuer is Ready/Checked for its generation.
func waitHealthCheck(t *testing.T, sim *ejbcasim.Sim, iss v1alpha1.Issuer, before int) {
	t.Helper()
	testkit.Eventually(t, 20*time.Second, func() string {
		if n := healthChecksOK(sim); n <= before {
			return "the issuer was not re-checked against EJBCA"
		}
		return ""
	})
	waitIssuer(t, iss, v1alpha1.ReasonChecked)
}

// touch changes a label of a Secret: a user action, which re-checks the
// issuers referencing it.
func touch(t *testing.T, ns, name, value string) {
	t.Helper()
	update(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}},
		func(s *corev1.Secret) { s.Labels = map[string]string{"touched": value} })
}

// refused counts the calls of an endpoint EJBCA refused with 403.
func refused(sim *ejbcasim.Sim, endpoint string) int {
	return sim.Counters().Calls[endpoint][403]
}

func TestMTLSSecretRotationIsPickedUpWithoutRestart(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns, iss := readyIssuer(t, sim)
	before, _ := requestFor(t, ns, "ejbca", "before")
	waitRequest(t, before, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)

	// The operator rotates the client certificate to one from the other
	// trusted client CA, then revokes the old one in EJBCA.
	oldCert := sim.ClientCertPEM()
	newCert, newKey, err := sim.NewClientCert("new-admin", true, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	checks := healthChecksOK(sim)
	update(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ejbca-client"}}, func(s *corev1.Secret) {
		s.Data = map[string][]byte{corev1.TLSCertKey: newCert, corev1.TLSPrivateKeyKey: newKey}
	})
	sim.RevokeClientCert(oldCert)
	waitHealthCheck(t, sim, iss, checks)

	// The next request is signed with the new certificate: the old one is
	// revoked, so EJBCA would refuse it (403).
	after, _ := requestFor(t, ns, "ejbca", "after")
	waitRequest(t, after, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
	if n := enrolments(sim, ns+"/after"); n != 1 {
		t.Errorf("%d enrolments for the request after the rotation, want 1", n)
	}

	// The issuer's own health check uses the new certificate too.
	checks = healthChecksOK(sim)
	touch(t, ns, "ejbca-client", "1")
	waitHealthCheck(t, sim, iss, checks)
	if n := refused(sim, "ca") + refused(sim, "pkcs10enroll") + refused(sim, "search"); n != 0 {
		t.Errorf("EJBCA refused %d calls: the revoked certificate was still used after the rotation", n)
	}
}

func TestStaticTokenRotationIsPickedUpWithoutRestart(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns, iss := readyIssuer(t, sim, func(s *v1alpha1.IssuerSpec) {
		s.Auth = v1alpha1.AuthSpec{Mode: v1alpha1.AuthModeOAuth2, OAuth2: &v1alpha1.OAuth2Auth{
			TokenSecretRef: &v1alpha1.SecretKeySelector{Name: "ejbca-token", Key: "token"}}}
	})
	before, _ := requestFor(t, ns, "ejbca", "before")
	waitRequest(t, before, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)

	oldToken, newToken := sim.StaticToken(), rand.Text()
	sim.AddStaticToken(newToken)
	checks := healthChecksOK(sim)
	update(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ejbca-token"}}, func(s *corev1.Secret) {
		s.Data = map[string][]byte{"token": []byte(newToken + "\n")}
	})
	waitHealthCheck(t, sim, iss, checks)
	sim.RemoveStaticToken(oldToken)

	after, _ := requestFor(t, ns, "ejbca", "after")
	waitRequest(t, after, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
	if n := enrolments(sim, ns+"/after"); n != 1 {
		t.Errorf("%d enrolments for the request after the rotation, want 1", n)
	}
	if n := refused(sim, "ca") + refused(sim, "pkcs10enroll") + refused(sim, "search"); n != 0 {
		t.Errorf("EJBCA refused %d calls: the old token was still used after the rotation", n)
	}
	if c := waitIssuer(t, iss, v1alpha1.ReasonChecked); c.Status != metav1.ConditionTrue {
		t.Errorf("issuer after the rotation: %+v", c)
	}
}

func TestCABundleRotation(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	other := newSim(t, ejbcasim.Config{})
	ns, iss := readyIssuer(t, sim)
	caBundle := func(pem []byte) {
		update(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ejbca-ca"}},
			func(cm *corev1.ConfigMap) { cm.Data = map[string]string{"ca.crt": string(pem)} })
	}

	// A bundle that does not verify EJBCA's server certificate.
	caBundle(other.CABundlePEM())
	c := waitIssuer(t, iss, v1alpha1.ReasonUnreachable)
	if c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, "certificate") {
		t.Errorf("with the wrong CA bundle: %s/%s %q, want a TLS certificate error", c.Status, c.Reason, c.Message)
	}
	cr, _ := requestFor(t, ns, "ejbca", "waiting")
	waitRequest(t, cr, cmapi.CertificateRequestReasonPending, "to be Ready (Unreachable", 30*time.Second)

	// Restoring the bundle re-checks at once and wakes the waiting request.
	caBundle(sim.CABundlePEM())
	c = waitIssuer(t, iss, v1alpha1.ReasonChecked)
	if c.Status != metav1.ConditionTrue {
		t.Errorf("after restoring the CA bundle: %+v", c)
	}
	waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
}

func TestSwitchingAuthModeToOAuth2(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns, iss := readyIssuer(t, sim)
	if n := sim.Counters().TokensIssued; n != 0 {
		t.Fatalf("%d OAuth2 tokens fetched by an mTLS issuer", n)
	}
	update(t, iss, func(i *v1alpha1.EJBCAIssuer) { i.Spec = oauthSpec(sim) })
	c := waitIssuer(t, iss, v1alpha1.ReasonChecked)
	if c.ObservedGeneration != 2 || c.Status != metav1.ConditionTrue {
		t.Errorf("after switching to oauth2: %+v, want Ready=True for generation 2", c)
	}
	// The client certificate is revoked: only the OAuth2 token can work now.
	sim.RevokeClientCert(sim.ClientCertPEM())
	cr, _ := requestFor(t, ns, "ejbca", "switched")
	waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
	if n := sim.Counters().TokensIssued; n < 1 {
		t.Errorf("%d OAuth2 tokens fetched after switching to oauth2", n)
	}
	if n := refused(sim, "pkcs10enroll"); n != 0 {
		t.Errorf("%d enrolments refused after switching to oauth2", n)
	}
}

func TestEJBCADownRequestWaitsAndIssuesAfterRecovery(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns, iss := readyIssuer(t, sim)

	sim.SetDown(true)
	cr, _ := requestFor(t, ns, "ejbca", "outage")
	waitRequest(t, cr, cmapi.CertificateRequestReasonPending, "to be re-checked: EJBCA gave no answer", 20*time.Second)

	// The issuer is re-checked (a user action here; the periodic check would
	// do the same) and says EJBCA is unreachable; the request then waits for
	// the issuer instead of retrying against EJBCA.
	touch(t, ns, "ejbca-client", "1")
	c := waitIssuer(t, iss, v1alpha1.ReasonUnreachable)
	if !strings.Contains(c.Message, "could not be used") {
		t.Errorf("Unreachable message %q", c.Message)
	}
	waitRequest(t, cr, cmapi.CertificateRequestReasonPending, "to be Ready (Unreachable", 20*time.Second)

	// That a request waiting for its issuer is never Failed, however long
	// it waits, is Decide's (table-tested); how often a down EJBCA is asked,
	// IssuerCheckDue's. Here the wiring: back to Ready, and issued once.

	// EJBCA is back; the operator touches the Secret (or the next periodic
	// check finds it): the issuer is Ready again and the request is issued.
	sim.SetDown(false)
	touch(t, ns, "ejbca-client", "2")
	waitIssuer(t, iss, v1alpha1.ReasonChecked)
	waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
	if n := enrolments(sim, ns+"/outage"); n != 1 {
		t.Errorf("%d certificates issued, want 1", n)
	}
	testkit.Eventually(t, 10*time.Second, func() string {
		reasons := testkit.Reasons(testkit.EventsOf(t, k8s, cr))
		// No answer, then Unreachable: both are waits for the issuer.
		for _, want := range []string{signing.EventIssuerNotReady, signing.EventIssued} {
			if !slices.Contains(reasons, want) {
				return "no " + want + " event; events: " + strings.Join(reasons, ", ")
			}
		}
		return ""
	})
}
