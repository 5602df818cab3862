package controllers_test

import (
	"context"
	"crypto/x509"
	"slices"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/controllers/signing"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

// readyIssuer makes a namespace with the simulator's Secrets and a Ready issuer.
func readyIssuer(t *testing.T, sim *ejbcasim.Sim, mutate ...func(*v1alpha1.IssuerSpec)) (string, *v1alpha1.EJBCAIssuer) {
	t.Helper()
	ns := newNamespace(t)
	simSecrets(t, sim, ns)
	spec := issuerSpec(sim)
	for _, m := range mutate {
		m(&spec)
	}
	iss := newIssuer(t, ns, "ejbca", spec)
	waitIssuer(t, iss, v1alpha1.ReasonChecked)
	return ns, iss
}

func TestIssuesAnApprovedRequest(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns, _ := readyIssuer(t, sim)
	cr, key := requestFor(t, ns, "ejbca", "web")
	c := waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "serial", 30*time.Second)
	if c.Status != cmmeta.ConditionTrue {
		t.Fatalf("Ready = %s", c.Status)
	}
	chain, err := pki.DecodeX509CertificateChainBytes(cr.Status.Certificate)
	if err != nil || len(chain) != 2 {
		t.Fatalf("status.certificate should be leaf + intermediate: %d certs, %v", len(chain), err)
	}
	leaf := chain[0]
	if leaf.Subject.CommonName != "web.example.com" || !slices.Equal(leaf.DNSNames, []string{"web.example.com"}) {
		t.Errorf("leaf subject %q SANs %v", leaf.Subject, leaf.DNSNames)
	}
	if !chain[1].Equal(sim.IssuingCA()) {
		t.Errorf("second certificate is %q, want the issuing CA", chain[1].Subject)
	}
	ca, err := pki.DecodeX509CertificateBytes(cr.Status.CA)
	if err != nil || !ca.Equal(sim.RootCA()) {
		t.Fatalf("status.ca should be the root: %v", err)
	}
	if ok, _ := pki.PublicKeyMatchesCertificate(key.Public(), leaf); !ok {
		t.Error("the leaf does not carry the CSR's key")
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(ca)
	inter.AddCert(chain[1])
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("the chain does not verify: %v", err)
	}
	if n := enrolments(sim, ns+"/web"); n != 1 {
		t.Errorf("%d enrolments for end entity %s/web, want 1 (the default end entity name is namespace/certificate)", n, ns)
	}
	if got := sim.Counters().Get("pkcs10enroll"); got != 1 {
		t.Errorf("%d pkcs10enroll calls, want 1", got)
	}
	// The approver's condition is untouched by our status writes.
	var approved bool
	for _, c := range cr.Status.Conditions {
		approved = approved || (c.Type == cmapi.CertificateRequestConditionApproved && c.Status == cmmeta.ConditionTrue)
	}
	if !approved {
		t.Error("the Approved condition was lost")
	}
	testkit.Eventually(t, 10*time.Second, func() string {
		if !slices.Contains(testkit.Reasons(testkit.EventsOf(t, k8s, cr)), signing.EventIssued) {
			return "no Issued event"
		}
		return ""
	})
}

func TestIgnoresWhatIsNotOurs(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns, _ := readyIssuer(t, sim)
	_, csr := testkit.CSR(t, testkit.CommonName("other.example.com"), testkit.DNSNames("other.example.com"))
	foreign := newRequest(t, ns, "ejbca", "other", csr, func(cr *cmapi.CertificateRequest) {
		cr.Spec.IssuerRef.Group = "cert-manager.io"
		cr.Spec.IssuerRef.Kind = "Issuer"
	})
	approve(t, foreign)
	_, csr2 := testkit.CSR(t, testkit.CommonName("unapproved.example.com"), testkit.DNSNames("unapproved.example.com"))
	unapproved := newRequest(t, ns, "ejbca", "unapproved", csr2)

	_, csr3 := testkit.CSR(t, testkit.CommonName("issued.example.com"), testkit.DNSNames("issued.example.com"))
	marker := newRequest(t, ns, "ejbca", "marker", csr3)
	approve(t, marker)
	waitRequest(t, marker, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)

	for _, cr := range []*cmapi.CertificateRequest{foreign, unapproved} {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(cr), cr); err != nil {
			t.Fatal(err)
		}
		if c := readyOf(cr); c != nil {
			t.Errorf("%s got a Ready condition: %+v", cr.Name, c)
		}
	}
	if n := sim.Counters().Get("pkcs10enroll"); n != 1 {
		t.Errorf("%d enrolments, want only the approved request's", n)
	}
}

func TestDeniedRequestFailsWithoutCallingEJBCA(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns, _ := readyIssuer(t, sim)
	_, csr := testkit.CSR(t, testkit.CommonName("denied.example.com"), testkit.DNSNames("denied.example.com"))
	cr := newRequest(t, ns, "ejbca", "denied", csr)
	setCondition(t, cr, cmapi.CertificateRequestConditionDenied, "policy.example.com")
	c := waitRequest(t, cr, cmapi.CertificateRequestReasonDenied, "denied", 30*time.Second)
	if c.Status != cmmeta.ConditionFalse || cr.Status.FailureTime == nil {
		t.Errorf("denied request: %+v failureTime=%v", c, cr.Status.FailureTime)
	}
	if n := sim.Counters().Get("pkcs10enroll"); n != 0 {
		t.Errorf("%d enrolments for a denied request", n)
	}
}

func TestWaitsForTheIssuerAndIsWokenByIt(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns := newNamespace(t)
	cr, _ := requestFor(t, ns, "later", "app")
	waitRequest(t, cr, cmapi.CertificateRequestReasonPending, `Waiting for EJBCAIssuer "`+ns+`/later": not found`, 30*time.Second)

	// The issuer appears, but its Secret does not exist yet: still Pending, and the message says why.
	iss := newIssuer(t, ns, "later", issuerSpec(sim))
	waitRequest(t, cr, cmapi.CertificateRequestReasonPending, "SecretNotFound", 30*time.Second)

	// Once the issuer is Ready the request is signed without waiting for any timer.
	simSecrets(t, sim, ns)
	waitIssuer(t, iss, v1alpha1.ReasonChecked)
	waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 20*time.Second)
	testkit.WaitEvent(t, k8s, cr, testkit.EventMatch{Reason: signing.EventIssuerNotReady}, 30*time.Second)
}

func TestClusterIssuerSignsRequestsInAnyNamespace(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	name := "cluster-" + newNamespace(t)
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: clusterResourceNamespace, Name: name + "-oauth"},
		Data: map[string][]byte{"client_id": []byte(sim.OAuthClientID()), "client_secret": []byte(sim.OAuthClientSecret())}})
	create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: clusterResourceNamespace, Name: name + "-ca"},
		Data: map[string]string{"ca.crt": string(sim.CABundlePEM())}})
	spec := oauthSpec(sim)
	spec.Auth.OAuth2.ClientSecretRef.Name = name + "-oauth"
	spec.CABundle.ConfigMapRef.Name = name + "-ca"
	iss := &v1alpha1.EJBCAClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	create(t, iss)
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), iss) })
	waitIssuer(t, iss, v1alpha1.ReasonChecked)

	var crs []*cmapi.CertificateRequest
	for range 3 {
		ns := newNamespace(t)
		cr, _ := requestFor(t, ns, name, "svc", clusterIssuerRef(name))
		crs = append(crs, cr)
	}
	for _, cr := range crs {
		waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
		if n := enrolments(sim, cr.Namespace+"/svc"); n != 1 {
			t.Errorf("end entity %s/svc: %d enrolments; tenants with the same certificate name must not share one", cr.Namespace, n)
		}
	}
	if got := sim.Counters().TokensIssued; got != 1 {
		t.Errorf("%d OAuth2 tokens fetched for one health check and 3 enrolments, want 1", got)
	}
}

func TestRefusedRequestsFailWithEJBCAsMessage(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns, _ := readyIssuer(t, sim, func(s *v1alpha1.IssuerSpec) {
		s.AllowedOverrides = []v1alpha1.Override{v1alpha1.OverrideCertificateProfileName}
	})
	cr, _ := requestFor(t, ns, "ejbca", "unknown-profile", annotate(v1alpha1.AnnotationCertificateProfileName, "NOPE"))
	c := waitRequest(t, cr, cmapi.CertificateRequestReasonFailed, `Certificate profile with name "NOPE" doesn't exist`, 30*time.Second)
	if cr.Status.FailureTime == nil || c.Status != cmmeta.ConditionFalse {
		t.Errorf("failed request without failureTime: %+v", cr.Status)
	}
	testkit.WaitEvent(t, k8s, cr, testkit.EventMatch{Reason: signing.EventFailed}, 30*time.Second)

	sim.InjectFault("pkcs10enroll", ejbcasim.Fault{Count: 1, MismatchedKey: true})
	mismatch, _ := requestFor(t, ns, "ejbca", "mismatch")
	waitRequest(t, mismatch, cmapi.CertificateRequestReasonFailed, "does not carry the CSR's public key", 30*time.Second)
}

func TestOverridesAreHonouredOnlyWhenAllowed(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns, _ := readyIssuer(t, sim)
	cr, _ := requestFor(t, ns, "ejbca", "sneaky",
		annotate(v1alpha1.AnnotationCertificateProfileName, "NOPE"), annotate(v1alpha1.AnnotationEndEntityName, "someone-else"))
	waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
	if n := enrolments(sim, ns+"/sneaky"); n != 1 {
		t.Errorf("the override annotations were honoured although the issuer does not allow them (%d enrolments as %s/sneaky)", n, ns)
	}
}

func TestRetryableErrorsArePendingThenIssued(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns, _ := readyIssuer(t, sim)
	sim.InjectFault("pkcs10enroll", ejbcasim.Fault{Count: 2, Status: 503, RetryAfter: "1"})
	cr, _ := requestFor(t, ns, "ejbca", "flaky")
	waitRequest(t, cr, cmapi.CertificateRequestReasonPending, "will retry", 30*time.Second)
	waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
	if n := enrolments(sim, ns+"/flaky"); n != 1 {
		t.Errorf("%d certificates issued, want 1", n)
	}
}

func TestRetryableErrorsFailAfterTheRetryWindow(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns, _ := readyIssuer(t, sim)
	sim.InjectFault("pkcs10enroll", ejbcasim.Fault{Status: 503})
	cr, _ := requestFor(t, ns, "ejbca", "doomed")
	waitRequest(t, cr, cmapi.CertificateRequestReasonPending, "will retry", 20*time.Second)
	waitRequest(t, cr, cmapi.CertificateRequestReasonFailed, "Giving up", retryWindow+30*time.Second)
	if cr.Status.FailureTime == nil {
		t.Error("no failureTime")
	}
}

func TestLostResponseIsRecoveredWithoutASecondEnrolment(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns, _ := readyIssuer(t, sim)
	for _, f := range []ejbcasim.Fault{{Count: 1, ResetAfterIssuing: true}, {Count: 1, Truncate: true}} {
		sim.InjectFault("pkcs10enroll", f)
		name := "lost"
		if f.Truncate {
			name = "truncated"
		}
		cr, key := requestFor(t, ns, "ejbca", name)
		waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
		if n := enrolments(sim, ns+"/"+name); n != 1 {
			t.Errorf("%s: EJBCA issued %d certificates, want 1", name, n)
		}
		leaf, err := pki.DecodeX509CertificateBytes(cr.Status.Certificate)
		if err != nil {
			t.Fatal(err)
		}
		if ok, _ := pki.PublicKeyMatchesCertificate(key.Public(), leaf); !ok {
			t.Errorf("%s: the recovered certificate is for another key", name)
		}
	}
	if c := sim.Counters(); c.Get("search")+c.Get("search-v2") < 2 {
		t.Errorf("%d searches: the lost certificates were not recovered by search", c.Get("search")+c.Get("search-v2"))
	}
}

// A 403 to one enrolment is the request's (EJBCA answers 403 for
// per-request authorization too): the request is retried and signed, and
// the issuer, which other requests share, stays Ready. The issuer's own
// 403 marks it: TestIssuerHealth.
func TestForbiddenEnrolmentIsRetriedWithoutMarkingTheIssuer(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns, iss := readyIssuer(t, sim)
	sim.InjectFault("pkcs10enroll", ejbcasim.Fault{Count: 1, Status: 403,
		Body: `{"error_code":403,"error_message":"Administrator is not authorized to certificate profile SERVER."}`, ContentType: "application/json"})
	cr, _ := requestFor(t, ns, "ejbca", "forbidden")
	waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
	if c := waitIssuer(t, iss, v1alpha1.ReasonChecked); c.Reason != v1alpha1.ReasonChecked {
		t.Errorf("issuer %s: %s", c.Reason, c.Message)
	}
	if !slices.Contains(testkit.Reasons(testkit.EventsOf(t, k8s, cr)), signing.EventRetrying) {
		t.Errorf("no Retrying event on the request: %v", testkit.Reasons(testkit.EventsOf(t, k8s, cr)))
	}
}
