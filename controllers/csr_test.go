package controllers_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cert-manager/cert-manager/pkg/util/pki"
	authorizationv1 "k8s.io/api/authorization/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/controllers/signing"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

// Kubernetes CertificateSigningRequests against the real API server: it
// fills spec.username and groups from whoever creates the CSR, checks
// approve and sign, and runs the reference SubjectAccessReviews with RBAC.

// clientsetAs is a clientset acting as user (impersonated by the suite's
// admin), or as the admin when user is empty.
func clientsetAs(t *testing.T, user string) kubernetes.Interface {
	t.Helper()
	cfg := rest.CopyConfig(restConfig)
	if user != "" {
		cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:authenticated"}}
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// csrRequester is a user who may create CSRs (and nothing else).
func csrRequester(t *testing.T, user string) kubernetes.Interface {
	t.Helper()
	create(t, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "csr-create-" + user},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"certificatesigningrequests"}, Verbs: []string{"create", "get"}}}})
	create(t, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "csr-create-" + user},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "csr-create-" + user},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: user}}})
	waitAllowed(t, user, authorizationv1.ResourceAttributes{Group: "certificates.k8s.io", Resource: "certificatesigningrequests", Verb: "create"})
	return clientsetAs(t, user)
}

// waitAllowed waits until the API server's authorizer allows user attrs:
// RBAC reads bindings from its own cache, so a binding just created may not
// count yet (a CSR create refused, or a reference check failing the CSR
// for good).
func waitAllowed(t *testing.T, user string, attrs authorizationv1.ResourceAttributes) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, func() string {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user, ResourceAttributes: &attrs}}
		if err := k8s.Create(context.Background(), sar); err != nil {
			return err.Error()
		}
		if !sar.Status.Allowed {
			return fmt.Sprintf("%s may not %s %s %s/%s yet: %s", user, attrs.Verb, attrs.Resource, attrs.Namespace, attrs.Name, sar.Status.Reason)
		}
		return ""
	})
}

// allowReference lets user reference the signer name (or wildcard) in ns,
// as a tenant's admin would with a RoleBinding.
func allowReference(t *testing.T, ns, user, signerName string) {
	t.Helper()
	create(t, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "reference-" + user},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"signers"}, Verbs: []string{"reference"},
			ResourceNames: []string{signerName}}}})
	create(t, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "reference-" + user},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "reference-" + user},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: user}}})
	waitAllowed(t, user, authorizationv1.ResourceAttributes{Group: "certificates.k8s.io", Resource: "signers", Verb: "reference",
		Namespace: ns, Name: signerName})
}

type csrOption = func(*certificatesv1.CertificateSigningRequest)

func expiring(seconds int32) csrOption {
	return func(c *certificatesv1.CertificateSigningRequest) { c.Spec.ExpirationSeconds = &seconds }
}

func csrAnnotation(k, v string) csrOption {
	return func(c *certificatesv1.CertificateSigningRequest) {
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		c.Annotations[k] = v
	}
}

// newCSR creates a CSR for signer through cs, for a new key and host.
func newCSR(t *testing.T, cs kubernetes.Interface, signer, host string, opts ...csrOption) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	_, csrPEM := testkit.CSR(t, testkit.CommonName(host), testkit.DNSNames(host))
	return newCSRFor(t, cs, signer, csrPEM, opts...)
}

func newCSRFor(t *testing.T, cs kubernetes.Interface, signer string, csrPEM []byte, opts ...csrOption) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	c := testkit.CertificateSigningRequest("csr-", signer, csrPEM, opts...)
	created, err := cs.CertificatesV1().CertificateSigningRequests().Create(context.Background(), c, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating a CSR for %s: %v", signer, err)
	}
	t.Cleanup(func() {
		_ = clientsetAs(t, "").CertificatesV1().CertificateSigningRequests().Delete(context.Background(), created.Name, metav1.DeleteOptions{})
	})
	return created
}

// decideCSR approves or denies through the approval subresource, as
// `kubectl certificate approve|deny` does.
func decideCSR(t *testing.T, c *certificatesv1.CertificateSigningRequest, typ certificatesv1.RequestConditionType) {
	t.Helper()
	csrs := clientsetAs(t, "").CertificatesV1().CertificateSigningRequests()
	testkit.Eventually(t, 10*time.Second, func() string {
		cur, err := csrs.Get(context.Background(), c.Name, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		cur.Status.Conditions = append(cur.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
			Type: typ, Status: corev1.ConditionTrue, Reason: "Test", Message: "by the test"})
		if _, err := csrs.UpdateApproval(context.Background(), c.Name, cur, metav1.UpdateOptions{}); err != nil {
			return err.Error()
		}
		return ""
	})
}

// waitCSR waits until cond holds for the CSR and returns it.
func waitCSR(t *testing.T, c *certificatesv1.CertificateSigningRequest, timeout time.Duration, cond func(*certificatesv1.CertificateSigningRequest) string) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	var cur certificatesv1.CertificateSigningRequest
	testkit.Eventually(t, timeout, func() string {
		if err := k8s.Get(context.Background(), client.ObjectKey{Name: c.Name}, &cur); err != nil {
			return err.Error()
		}
		return cond(&cur)
	})
	return &cur
}

func csrCond(c *certificatesv1.CertificateSigningRequest, typ certificatesv1.RequestConditionType) *certificatesv1.CertificateSigningRequestCondition {
	for i := range c.Status.Conditions {
		if c.Status.Conditions[i].Type == typ {
			return &c.Status.Conditions[i]
		}
	}
	return nil
}

func signed(c *certificatesv1.CertificateSigningRequest) string {
	if f := csrCond(c, certificatesv1.CertificateFailed); f != nil {
		return fmt.Sprintf("Failed %s: %s", f.Reason, f.Message)
	}
	if len(c.Status.Certificate) == 0 {
		return "not signed yet"
	}
	return ""
}

func failedWith(reason, message string) func(*certificatesv1.CertificateSigningRequest) string {
	return func(c *certificatesv1.CertificateSigningRequest) string {
		f := csrCond(c, certificatesv1.CertificateFailed)
		if len(c.Status.Certificate) > 0 {
			return "signed, want Failed"
		}
		if f == nil || f.Reason != reason || !strings.Contains(f.Message, message) {
			return fmt.Sprintf("Failed condition %+v, want %s containing %q", f, reason, message)
		}
		return ""
	}
}

// csrChain checks status.certificate is the leaf and the intermediate
// (never the root) and returns them.
func csrChain(t *testing.T, sim *ejbcasim.Sim, c *certificatesv1.CertificateSigningRequest) []*x509.Certificate {
	t.Helper()
	chain, err := pki.DecodeX509CertificateChainBytes(c.Status.Certificate)
	if err != nil || len(chain) != 2 {
		t.Fatalf("status.certificate should be leaf + intermediate: %d certs, %v", len(chain), err)
	}
	if !chain[1].Equal(sim.IssuingCA()) || chain[0].Issuer.CommonName != "IssuingCA" {
		t.Errorf("leaf issued by %q, chain[1] %q; want IssuingCA", chain[0].Issuer, chain[1].Subject)
	}
	return chain
}

func TestCSRClusterIssuerSignsOnlyApproved(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	issuer := readyClusterIssuer(t, sim)
	signer := v1alpha1.IssuerSignerName(v1alpha1.ClusterIssuerKind, "", issuer)
	admin := clientsetAs(t, "")

	unapproved := newCSR(t, admin, signer, "unapproved.example.com")
	denied := newCSR(t, admin, signer, "denied.example.com")
	decideCSR(t, denied, certificatesv1.CertificateDenied)
	other := newCSR(t, admin, "example.com/someone-else", "other.example.com")
	decideCSR(t, other, certificatesv1.CertificateApproved)
	// The control: created and approved after the others, so by the time
	// it is signed the manager has seen all of them.
	control := newCSR(t, admin, signer, "control.example.com")
	decideCSR(t, control, certificatesv1.CertificateApproved)
	got := waitCSR(t, control, 30*time.Second, signed)

	leaf := csrChain(t, sim, got)[0]
	if leaf.Subject.CommonName != "control.example.com" {
		t.Errorf("leaf subject %q", leaf.Subject)
	}
	if n := enrolments(sim, signing.CSREndEntityName(control.Name, control.UID)); n != 1 {
		t.Errorf("%d enrolments for end entity %s, want 1", n, signing.CSREndEntityName(control.Name, control.UID))
	}
	testkit.WaitEvent(t, k8s, got, testkit.EventMatch{Reason: signing.EventIssued}, 30*time.Second)
	testkit.Eventually(t, 10*time.Second, func() string {
		labels := map[string]string{"issuer_kind": v1alpha1.ClusterIssuerKind, "request_kind": "CertificateSigningRequest", "outcome": "issued"}
		if got := find(scrapeMetrics(t), "ejbca_issuer_certificaterequests_total", labels); len(got) == 0 || got[0].value < 1 {
			return fmt.Sprintf("no issued CSR counted: %v", got)
		}
		return ""
	})
	if n := sim.Counters().Get("pkcs10enroll"); n != 1 {
		t.Errorf("%d enrolments, want only the approved control's", n)
	}
	for _, c := range []*certificatesv1.CertificateSigningRequest{unapproved, denied, other} {
		var cur certificatesv1.CertificateSigningRequest
		if err := k8s.Get(context.Background(), client.ObjectKey{Name: c.Name}, &cur); err != nil {
			t.Fatal(err)
		}
		if len(cur.Status.Certificate) > 0 || csrCond(&cur, certificatesv1.CertificateFailed) != nil || csrCond(&cur, v1alpha1.CSRConditionEnrolment) != nil {
			t.Errorf("%s (%s) was touched: %d bytes of certificate, conditions %+v", c.Name, c.Spec.SignerName, len(cur.Status.Certificate), cur.Status.Conditions)
		}
	}
}

func TestCSRNamespacedIssuerNeedsReference(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns, _ := readyIssuer(t, sim)
	signer := v1alpha1.IssuerSignerName(v1alpha1.IssuerKind, ns, "ejbca")
	alice, bob, carol := ns+"-alice", ns+"-bob", ns+"-carol"
	allowReference(t, ns, alice, signer)
	allowReference(t, ns, carol, v1alpha1.IssuerSignerPrefix+"*")
	// bob may reference signers, but only in another namespace.
	allowReference(t, newNamespace(t), bob, signer)

	byAlice := newCSR(t, csrRequester(t, alice), signer, "alice.example.com")
	byBob := newCSR(t, csrRequester(t, bob), signer, "bob.example.com")
	byCarol := newCSR(t, csrRequester(t, carol), signer, "carol.example.com")
	for _, c := range []*certificatesv1.CertificateSigningRequest{byAlice, byBob, byCarol} {
		decideCSR(t, c, certificatesv1.CertificateApproved)
	}
	waitCSR(t, byBob, 30*time.Second, failedWith(v1alpha1.CSRReasonReferenceDenied, fmt.Sprintf("%q may not reference the namespaced EJBCAIssuer %s/ejbca", bob, ns)))
	csrChain(t, sim, waitCSR(t, byAlice, 30*time.Second, signed))
	csrChain(t, sim, waitCSR(t, byCarol, 30*time.Second, signed))
	if n := enrolments(sim, signing.CSREndEntityName(byBob.Name, byBob.UID)); n != 0 {
		t.Errorf("bob's CSR reached EJBCA (%d enrolments)", n)
	}
	if n := sim.Counters().Enrollments; n != 2 {
		t.Errorf("%d enrolments, want alice's and carol's", n)
	}
}

func TestCSRRefusedProfileFails(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	issuer := readyClusterIssuer(t, sim, func(s *v1alpha1.IssuerSpec) {
		s.AllowedOverrides = []v1alpha1.Override{v1alpha1.OverrideCertificateProfileName}
	})
	signer := v1alpha1.IssuerSignerName(v1alpha1.ClusterIssuerKind, "", issuer)
	c := newCSR(t, clientsetAs(t, ""), signer, "refused.example.com", csrAnnotation(v1alpha1.AnnotationCertificateProfileName, "NOPE"))
	decideCSR(t, c, certificatesv1.CertificateApproved)
	got := waitCSR(t, c, 30*time.Second, failedWith(v1alpha1.CSRReasonSigningFailed, `"NOPE"`))
	testkit.WaitEvent(t, k8s, got, testkit.EventMatch{Reason: signing.EventFailed}, 30*time.Second)
	if n := sim.Counters().Enrollments; n != 0 {
		t.Errorf("%d certificates for a refused profile", n)
	}
}

// csrWithUsages is a CSR whose extension request asks for the given key
// usage and extended key usages.
func csrWithUsages(t *testing.T, host string, ku x509.KeyUsage, eku ...x509.ExtKeyUsage) []byte {
	t.Helper()
	kuExt, err := pki.MarshalKeyUsage(ku)
	if err != nil {
		t.Fatal(err)
	}
	ekuExt, err := pki.MarshalExtKeyUsage(eku, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, csr := testkit.CSR(t, testkit.CommonName(host), testkit.DNSNames(host), testkit.Extensions(kuExt, ekuExt))
	return csr
}

func TestCSRUsagesMustFitTheCSR(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	issuer := readyClusterIssuer(t, sim)
	signer := v1alpha1.IssuerSignerName(v1alpha1.ClusterIssuerKind, "", issuer)
	admin := clientsetAs(t, "")
	// The CSR asks for client auth; spec.usages say server auth.
	bad := newCSRFor(t, admin, signer, csrWithUsages(t, "bad.example.com", x509.KeyUsageDigitalSignature, x509.ExtKeyUsageClientAuth))
	decideCSR(t, bad, certificatesv1.CertificateApproved)
	good := newCSRFor(t, admin, signer, csrWithUsages(t, "good.example.com", x509.KeyUsageDigitalSignature, x509.ExtKeyUsageServerAuth))
	decideCSR(t, good, certificatesv1.CertificateApproved)
	waitCSR(t, bad, 30*time.Second, failedWith(v1alpha1.CSRReasonBadRequest, "spec.usages do not fit the CSR"))
	waitCSR(t, good, 30*time.Second, signed)
	if n := sim.Counters().Enrollments; n != 1 {
		t.Errorf("%d enrolments, want only the fitting CSR's", n)
	}
}

// spec.expirationSeconds is sent as EJBCA's end time only where the issuer
// has useRequestedDuration; cert-manager's request-duration annotation is
// never read.
func TestCSRExpirationSeconds(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	honours := readyClusterIssuer(t, sim, func(s *v1alpha1.IssuerSpec) { s.UseRequestedDuration = true })
	ignores := readyClusterIssuer(t, sim)
	admin := clientsetAs(t, "")
	const hour = 3600
	for _, tc := range []struct {
		issuer   string
		opts     []csrOption
		wantHour bool
	}{
		{honours, []csrOption{expiring(hour)}, true},
		{honours, []csrOption{csrAnnotation("experimental.cert-manager.io/request-duration", "1h")}, false},
		{ignores, []csrOption{expiring(hour)}, false},
	} {
		c := newCSR(t, admin, v1alpha1.IssuerSignerName(v1alpha1.ClusterIssuerKind, "", tc.issuer), "expiring.example.com", tc.opts...)
		decideCSR(t, c, certificatesv1.CertificateApproved)
		got := waitCSR(t, c, 30*time.Second, signed)
		leaf := csrChain(t, sim, got)[0]
		end := got.CreationTimestamp.Add(hour * time.Second)
		isHour := leaf.NotAfter.After(end.Add(-5*time.Minute)) && leaf.NotAfter.Before(end.Add(5*time.Minute))
		if isHour != tc.wantHour {
			t.Errorf("issuer %s, %+v: notAfter %s (an hour: %v, want %v)", tc.issuer, got.Spec.ExpirationSeconds, leaf.NotAfter, isHour, tc.wantHour)
		}
		if tc.issuer == ignores {
			// A year where an hour was asked for: the issuer's profile,
			// reported on the issuer, not on each CSR.
			testkit.WaitEvent(t, k8s, &v1alpha1.EJBCAClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: ignores}}, testkit.EventMatch{Type: corev1.EventTypeNormal, Reason: signing.NoticeValidityFromProfile, Message: "longer than the 1h0m0s requested"}, 30*time.Second)
		}
	}
}

// A lost EJBCA answer is recovered by a search, not a second enrolment,
// with no write to the CSR before the call (the signer remembers the attempt
// in memory).
func TestCSRLostAnswerRecoveredWithOneEnrolment(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	issuer := readyClusterIssuer(t, sim)
	sim.InjectFault("pkcs10enroll", ejbcasim.Fault{Count: 1, ResetAfterIssuing: true})
	c := newCSR(t, clientsetAs(t, ""), v1alpha1.IssuerSignerName(v1alpha1.ClusterIssuerKind, "", issuer), "lost.example.com")
	decideCSR(t, c, certificatesv1.CertificateApproved)
	got := waitCSR(t, c, 90*time.Second, signed)
	csrChain(t, sim, got)
	if n := enrolments(sim, signing.CSREndEntityName(c.Name, c.UID)); n != 1 {
		t.Errorf("%d certificates from EJBCA, want 1", n)
	}
	if n := sim.Counters().Get("search") + sim.Counters().Get("search-v2"); n < 1 {
		t.Errorf("no recovery search")
	}
	if rec := csrCond(got, v1alpha1.CSRConditionEnrolment); rec != nil {
		t.Errorf("a one-call enrolment wrote records on the CSR: %+v", rec)
	}
}

// approvalCSR creates and approves a CSR for a cluster issuer on the
// APPROVAL profile and waits until it waits for EJBCA approval: its sealed
// record is in its status. It returns the CSR and EJBCA's approval id.
func approvalCSR(t *testing.T, sim *ejbcasim.Sim) (*certificatesv1.CertificateSigningRequest, int) {
	t.Helper()
	issuer := readyClusterIssuer(t, sim, func(s *v1alpha1.IssuerSpec) {
		s.CertificateProfileName = "APPROVAL"
		s.Approval = &v1alpha1.ApprovalSpec{PollInterval: &metav1.Duration{Duration: time.Second}}
	})
	c := newCSR(t, clientsetAs(t, ""), v1alpha1.IssuerSignerName(v1alpha1.ClusterIssuerKind, "", issuer), "approval.example.com")
	decideCSR(t, c, certificatesv1.CertificateApproved)
	var id int
	waiting := waitCSR(t, c, 30*time.Second, func(cur *certificatesv1.CertificateSigningRequest) string {
		rec := csrCond(cur, v1alpha1.CSRConditionEnrolment)
		if rec == nil {
			return "no records yet"
		}
		var m map[string]string
		if err := json.Unmarshal([]byte(rec.Message), &m); err != nil || m[v1alpha1.AnnotationApprovalSeal] == "" {
			return "no sealed approval record: " + rec.Message
		}
		if _, err := fmt.Sscan(m[v1alpha1.AnnotationApprovalRequestID], &id); err != nil {
			return err.Error()
		}
		return ""
	})
	return waiting, id
}

// checkOneApprovalEnrolment: the end entity was added once and one
// certificate issued for it.
func checkOneApprovalEnrolment(t *testing.T, sim *ejbcasim.Sim, c *certificatesv1.CertificateSigningRequest) {
	t.Helper()
	cnt := sim.Counters()
	if cnt.Get("endentity") != 1 || cnt.Enrollments != 1 || enrolments(sim, signing.CSREndEntityName(c.Name, c.UID)) != 1 {
		t.Errorf("endentity=%d enrolments=%d; want the end entity added once and one certificate", cnt.Get("endentity"), cnt.Enrollments)
	}
}

func TestCSRApprovalFlow(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	c, id := approvalCSR(t, sim)
	testkit.WaitEvent(t, k8s, c, testkit.EventMatch{Reason: signing.EventWaitingForApproval}, 30*time.Second)
	var secret corev1.Secret
	key := client.ObjectKey{Namespace: clusterResourceNamespace, Name: "csr-" + string(c.UID) + "-ejbca-enrolment"}
	if err := k8s.Get(context.Background(), key, &secret); err != nil {
		t.Fatalf("enrolment Secret: %v", err)
	}
	if !metav1.IsControlledBy(&secret, c) {
		t.Error("the enrolment Secret is not owned by the CSR, so it would not be garbage-collected with it")
	}
	if err := sim.Approve(id); err != nil {
		t.Fatal(err)
	}
	csrChain(t, sim, waitCSR(t, c, 30*time.Second, signed))
	checkOneApprovalEnrolment(t, sim, c)
}

// TestCSRRestartWhileWaitingForApproval: a new manager resumes a CSR's
// approval from the record in its status and enrols once. It runs alone
// (not parallel) because it stops the suite's manager.
func TestCSRRestartWhileWaitingForApproval(t *testing.T) {
	sim := newSim(t, ejbcasim.Config{})
	c, id := approvalCSR(t, sim)
	stopManager()
	if err := sim.Approve(id); err != nil {
		t.Fatal(err)
	}
	if err := startManager(); err != nil {
		t.Fatal(err)
	}
	csrChain(t, sim, waitCSR(t, c, 60*time.Second, signed))
	checkOneApprovalEnrolment(t, sim, c)
}

// A CSR for an issuer that does not exist yet waits (an event, no Failed)
// and is signed when the issuer becomes Ready, woken by the issuer's watch.
func TestCSRWaitsForItsIssuer(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	name := "late-" + newNamespace(t)
	c := newCSR(t, clientsetAs(t, ""), v1alpha1.IssuerSignerName(v1alpha1.ClusterIssuerKind, "", name), "late.example.com")
	decideCSR(t, c, certificatesv1.CertificateApproved)
	// The event says the CSR was decided on and waits; after it, the CSR is
	// neither Failed nor signed.
	testkit.WaitEvent(t, k8s, c, testkit.EventMatch{Reason: signing.EventIssuerNotReady}, 30*time.Second)
	waiting, err := clientsetAs(t, "").CertificatesV1().CertificateSigningRequests().Get(context.Background(), c.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if csrCond(waiting, certificatesv1.CertificateFailed) != nil || len(waiting.Status.Certificate) > 0 {
		t.Fatalf("a CSR waiting for its issuer was Failed or signed: %+v", waiting.Status)
	}
	readyClusterIssuerNamed(t, sim, name)
	csrChain(t, sim, waitCSR(t, c, 20*time.Second, signed))
}

// Attack: under a cluster issuer that allows the end entity name override,
// a CSR names another requester's end entity. CSRs are cluster-scoped, so
// there is no namespace to keep the override in: it is ignored, and the CSR
// is enrolled as its own certificates.k8s.io/<name>/<uid>.
func TestAttackCSREndEntityOverrideIgnored(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	issuer := readyClusterIssuer(t, sim, func(s *v1alpha1.IssuerSpec) {
		s.AllowedOverrides = []v1alpha1.Override{v1alpha1.OverrideEndEntityName}
	})
	signer := v1alpha1.IssuerSignerName(v1alpha1.ClusterIssuerKind, "", issuer)
	victim := newCSR(t, clientsetAs(t, ""), signer, "victim.example.com")
	decideCSR(t, victim, certificatesv1.CertificateApproved)
	waitCSR(t, victim, 30*time.Second, signed)
	victimEntity := signing.CSREndEntityName(victim.Name, victim.UID)

	c := newCSR(t, clientsetAs(t, ""), signer, "attacker.example.com", csrAnnotation(v1alpha1.AnnotationEndEntityName, victim.Name))
	decideCSR(t, c, certificatesv1.CertificateApproved)
	waitCSR(t, c, 30*time.Second, signed)
	if n := enrolments(sim, victimEntity); n != 1 {
		t.Errorf("%d certificates for the victim's end entity %s, want its own 1", n, victimEntity)
	}
	if n := enrolments(sim, signing.CSREndEntityName(c.Name, c.UID)); n != 1 {
		t.Errorf("%d certificates for the attacker's own end entity, want 1", n)
	}
}
