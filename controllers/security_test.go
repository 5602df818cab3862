package controllers_test

// Attacks by a requester. Everything a requester can write is hostile: a
// CertificateRequest's annotations, labels and spec, the CSR, and a
// Certificate's annotations (cert-manager copies them onto its requests,
// which is what setting them on the request here stands for). The rule these
// tests hold the issuer to: none of it may choose another EJBCA end entity,
// profile, CA or approval, a Secret the manager writes or deletes, or a
// deadline, beyond what the issuer's allowedOverrides say. Each attack runs
// through a namespaced EJBCAIssuer per tenant and through one shared
// EJBCAClusterIssuer, and each request ends with a condition a user can act
// on.

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/controllers/signing"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

// The annotation keys earlier versions of the issuer read as internal state.
// They must mean nothing now.
const (
	legacyEndEntityAnnotation      = "ejbca-issuer.certctl.io/end-entity"
	legacyEnrolmentSecretAnnotaton = "ejbca-issuer.certctl.io/enrolment-secret"
)

// tenant is a namespace and the issuer its requests name.
type tenant struct {
	ns     string
	issuer string
	opts   []crOption
}

func (tn tenant) request(t *testing.T, certName string, opts ...crOption) *cmapi.CertificateRequest {
	t.Helper()
	cr, _ := requestFor(t, tn.ns, tn.issuer, certName, append(slices.Clone(tn.opts), opts...)...)
	return cr
}

// tenancies are the two ways tenants share one EJBCA: each with an
// EJBCAIssuer of its own, or all through one EJBCAClusterIssuer.
var tenancies = []struct {
	name  string
	setup func(t *testing.T, sim *ejbcasim.Sim, n int, mutate ...func(*v1alpha1.IssuerSpec)) []tenant
}{
	{"namespaced issuers", func(t *testing.T, sim *ejbcasim.Sim, n int, mutate ...func(*v1alpha1.IssuerSpec)) []tenant {
		var out []tenant
		for range n {
			ns, _ := readyIssuer(t, sim, mutate...)
			out = append(out, tenant{ns: ns, issuer: "ejbca"})
		}
		return out
	}},
	{"a cluster issuer", func(t *testing.T, sim *ejbcasim.Sim, n int, mutate ...func(*v1alpha1.IssuerSpec)) []tenant {
		name := readyClusterIssuer(t, sim, mutate...)
		var out []tenant
		for range n {
			out = append(out, tenant{ns: newNamespace(t), issuer: name, opts: []crOption{clusterIssuerRef(name)}})
		}
		return out
	}},
}

// readyClusterIssuer creates a Ready EJBCAClusterIssuer (mTLS) whose
// credentials live in the cluster resource namespace.
func readyClusterIssuer(t *testing.T, sim *ejbcasim.Sim, mutate ...func(*v1alpha1.IssuerSpec)) string {
	t.Helper()
	return readyClusterIssuerNamed(t, sim, "cluster-"+newNamespace(t), mutate...)
}

// readyClusterIssuerNamed is readyClusterIssuer with a name of the test's
// choosing.
func readyClusterIssuerNamed(t *testing.T, sim *ejbcasim.Sim, name string, mutate ...func(*v1alpha1.IssuerSpec)) string {
	t.Helper()
	create(t, tlsSecret(clusterResourceNamespace, name+"-client", sim.ClientCertPEM(), sim.ClientKeyPEM()))
	create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: clusterResourceNamespace, Name: name + "-ca"},
		Data: map[string]string{"ca.crt": string(sim.CABundlePEM())}})
	spec := issuerSpec(sim)
	spec.Auth.MTLS.SecretName = name + "-client"
	spec.CABundle.ConfigMapRef.Name = name + "-ca"
	for _, m := range mutate {
		m(&spec)
	}
	iss := &v1alpha1.EJBCAClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	create(t, iss)
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), iss) })
	waitIssuer(t, iss, v1alpha1.ReasonChecked)
	return name
}

// victimEndEntity issues a certificate to the victim's own end entity and
// returns a check that it was never touched again.
func victimEndEntity(t *testing.T, sim *ejbcasim.Sim, victim tenant) (string, func()) {
	t.Helper()
	cr := victim.request(t, "victim")
	waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
	username := victim.ns + "/victim"
	before, ok := sim.EndEntity(username)
	if !ok {
		t.Fatalf("the victim's end entity %s does not exist", username)
	}
	return username, func() {
		t.Helper()
		after, _ := sim.EndEntity(username)
		if after != before {
			t.Errorf("the victim's end entity changed:\n  before %+v\n  after  %+v", before, after)
		}
		if n := enrolments(sim, username); n != 1 {
			t.Errorf("%d certificates for the victim's end entity %s, want its own 1", n, username)
		}
	}
}

// Attack: name another tenant's end entity in annotations, both the
// override annotation the issuer does not allow and the annotation earlier
// versions kept as internal state.
func TestAttackNamingAnotherTenantsEndEntity(t *testing.T) {
	t.Parallel()
	for _, tc := range tenancies {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sim := newSim(t, ejbcasim.Config{})
			tenants := tc.setup(t, sim, 2)
			attacker, victim := tenants[0], tenants[1]
			victimName, untouched := victimEndEntity(t, sim, victim)

			cr := attacker.request(t, "web",
				annotate(legacyEndEntityAnnotation, victimName),
				annotate(v1alpha1.AnnotationEndEntityName, victimName))
			waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
			if n := enrolments(sim, attacker.ns+"/web"); n != 1 {
				t.Errorf("the attacker's request was not enrolled as its own end entity %s/web (%d certificates)", attacker.ns, n)
			}
			untouched()
		})
	}
}

// Attack: where the issuer's owner allows the endEntityName override, the
// value still names an end entity in the requester's own namespace.
func TestAttackAllowedOverrideStaysInTheNamespace(t *testing.T) {
	t.Parallel()
	for _, tc := range tenancies {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sim := newSim(t, ejbcasim.Config{})
			tenants := tc.setup(t, sim, 2, func(s *v1alpha1.IssuerSpec) {
				s.AllowedOverrides = []v1alpha1.Override{v1alpha1.OverrideEndEntityName}
			})
			attacker, victim := tenants[0], tenants[1]
			victimName, untouched := victimEndEntity(t, sim, victim)

			cr := attacker.request(t, "web", annotate(v1alpha1.AnnotationEndEntityName, victimName))
			waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
			if n := enrolments(sim, attacker.ns+"/"+victimName); n != 1 {
				t.Errorf("the allowed override was not placed in the requester's namespace as %s/%s (%d certificates)", attacker.ns, victimName, n)
			}
			untouched()
		})
	}
}

// Attack: point the old enrolment-secret annotation at Secrets of the
// namespace, among them the issuer's own client credential, on requests
// that are issued and on one that is denied. The manager may not delete
// Secrets at all, and touches none.
func TestAttackNamingSecretsToDelete(t *testing.T) {
	t.Parallel()
	for _, tc := range tenancies {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sim := newSim(t, ejbcasim.Config{})
			attacker := tc.setup(t, sim, 1)[0]
			create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: attacker.ns, Name: "bystander"}, Data: map[string][]byte{"k": []byte("v")}})
			targets := []string{"bystander"}
			if tc.name == "namespaced issuers" {
				targets = append(targets, "ejbca-client", "ejbca-token")
			}
			var crs []*cmapi.CertificateRequest
			for _, target := range targets {
				crs = append(crs, attacker.request(t, "del-"+target, annotate(legacyEnrolmentSecretAnnotaton, target)))
			}
			_, csr := testkit.CSR(t, testkit.CommonName("denied.example.com"), testkit.DNSNames("denied.example.com"))
			denied := newRequest(t, attacker.ns, attacker.issuer, "denied", csr,
				append(slices.Clone(attacker.opts), annotate(legacyEnrolmentSecretAnnotaton, "bystander"))...)
			setCondition(t, denied, cmapi.CertificateRequestConditionDenied, "test")
			for _, cr := range crs {
				waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
			}
			waitRequest(t, denied, cmapi.CertificateRequestReasonDenied, "denied", 30*time.Second)
			for _, target := range targets {
				var s corev1.Secret
				if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: attacker.ns, Name: target}, &s); err != nil {
					t.Errorf("Secret %s/%s named in an annotation: %v", attacker.ns, target, err)
				}
			}
		})
	}
}

// Attack: place a Secret under the name the approval flow would use for the
// request's enrolment password. The manager does not use or change it, and
// the request fails saying why.
func TestAttackPlantingTheEnrolmentSecret(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns := approvalIssuer(t, sim)
	const name = "planted"
	planted := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: signing.EnrolmentSecretName(name),
		Labels: map[string]string{signing.LabelEnrolmentSecret: "true"}},
		Data: map[string][]byte{"password": []byte("chosen-by-the-attacker")}}
	create(t, planted)
	_, csr := testkit.CSR(t, testkit.CommonName("planted.example.com"), testkit.DNSNames("planted.example.com"))
	cr := &cmapi.CertificateRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: cmapi.CertificateRequestSpec{Request: csr,
			IssuerRef: cmmeta.IssuerReference{Group: v1alpha1.GroupVersion.Group, Kind: v1alpha1.IssuerKind, Name: "ejbca"}},
	}
	create(t, cr)
	approve(t, cr)
	waitRequest(t, cr, cmapi.CertificateRequestReasonFailed, "was not created by ejbca-issuer for this CertificateRequest", 30*time.Second)
	var after corev1.Secret
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(planted), &after); err != nil ||
		string(after.Data["password"]) != "chosen-by-the-attacker" || len(after.OwnerReferences) != 0 {
		t.Errorf("the planted Secret was changed or removed: %v %+v", err, after.ObjectMeta)
	}
	if n := sim.Counters().Get("endentity"); n != 0 {
		t.Errorf("%d end entities added with a password the requester chose", n)
	}
}

// Attack: after creating a request, and before approving it, its tenant
// places a Secret under the enrolment Secret's name with the label and a
// controller reference to the request's UID, all of which a tenant can
// write. The manager's own Secrets are sealed with its key; this one is not,
// so it is never used and no end entity gets the tenant's password.
func TestAttackPlantingAnOwnedEnrolmentSecret(t *testing.T) {
	t.Parallel()
	for _, tc := range tenancies {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sim := newSim(t, ejbcasim.Config{})
			attacker := tc.setup(t, sim, 1, func(s *v1alpha1.IssuerSpec) {
				s.CertificateProfileName = "APPROVAL"
				s.Approval = &v1alpha1.ApprovalSpec{PollInterval: &metav1.Duration{Duration: time.Second}}
			})[0]
			_, csr := testkit.CSR(t, testkit.CommonName("owned.example.com"), testkit.DNSNames("owned.example.com"))
			cr := newRequest(t, attacker.ns, attacker.issuer, "owned", csr, attacker.opts...)
			planted := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: attacker.ns, Name: signing.EnrolmentSecretName(cr.Name),
				Labels: map[string]string{signing.LabelEnrolmentSecret: "true"},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: cmapi.SchemeGroupVersion.String(), Kind: cmapi.CertificateRequestKind,
					Name: cr.Name, UID: cr.UID, Controller: ptr.To(true)}}},
				Data: map[string][]byte{"password": []byte("chosen-by-the-attacker")}}
			create(t, planted)
			approve(t, cr)
			waitRequest(t, cr, cmapi.CertificateRequestReasonFailed, "was not created by ejbca-issuer for this CertificateRequest", 30*time.Second)
			if n := sim.Counters().Get("endentity"); n != 0 {
				t.Errorf("%d end entities added with a password the requester chose", n)
			}
		})
	}
}

// Attack: a tenant may read the enrolment Secret the manager made in its
// namespace, so the password is no key: with it, the tenant seals an
// approval record whose start is a day ahead, to keep its request waiting
// past approval.maxWait. The record is sealed with the manager's key, so the
// forgery is ignored (a Warning says so) and the request fails at maxWait
// counted from its real start.
func TestAttackForgingTheApprovalStartWithTheEnrolmentPassword(t *testing.T) {
	t.Parallel()
	const maxWait = 6 * time.Second
	for _, tc := range tenancies {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sim := newSim(t, ejbcasim.Config{})
			attacker := tc.setup(t, sim, 1, func(s *v1alpha1.IssuerSpec) {
				s.CertificateProfileName = "APPROVAL"
				s.Approval = &v1alpha1.ApprovalSpec{PollInterval: &metav1.Duration{Duration: time.Second}, MaxWait: &metav1.Duration{Duration: maxWait}}
			})[0]
			cr := attacker.request(t, "patient")
			id := waitForApproval(t, cr)
			var secret corev1.Secret
			if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: cr.Namespace, Name: signing.EnrolmentSecretName(cr.Name)}, &secret); err != nil {
				t.Fatal(err)
			}
			password := string(secret.Data["password"])
			future := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
			m := hmac.New(sha256.New, []byte(password))
			for _, part := range []string{"ejbca-issuer approval v1", string(cr.UID), cr.Namespace + "/" + cr.Name, strconv.Itoa(id), future.Format(time.RFC3339)} {
				m.Write([]byte(part))
				m.Write([]byte{0})
			}
			update(t, cr, func(cr *cmapi.CertificateRequest) {
				cr.Annotations[v1alpha1.AnnotationApprovalRequestedAt] = future.Format(time.RFC3339)
				cr.Annotations[v1alpha1.AnnotationApprovalSeal] = hex.EncodeToString(m.Sum(nil))
			})
			waitRequest(t, cr, cmapi.CertificateRequestReasonFailed, "was not approved within the issuer's approval.maxWait", 60*time.Second)
			testkit.WaitEvent(t, k8s, cr, testkit.EventMatch{Reason: signing.EventIgnoredAnnotations}, 30*time.Second)
		})
	}
}

// Attack: copy another tenant's pending approval onto a request (its id, an
// old start time, a made-up seal). The request ignores them, says so in an
// event, and waits for its own approval; the victim's approval issues only
// the victim's certificate.
func TestAttackBorrowingAnotherTenantsApproval(t *testing.T) {
	t.Parallel()
	for _, tc := range tenancies {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sim := newSim(t, ejbcasim.Config{})
			tenants := tc.setup(t, sim, 2, func(s *v1alpha1.IssuerSpec) {
				s.CertificateProfileName = "APPROVAL"
				s.Approval = &v1alpha1.ApprovalSpec{PollInterval: &metav1.Duration{Duration: time.Second}, MaxWait: &metav1.Duration{Duration: time.Hour}}
			})
			attacker, victim := tenants[0], tenants[1]
			victimCR := victim.request(t, "victim")
			victimID := waitForApproval(t, victimCR)

			forged := []crOption{
				annotate(v1alpha1.AnnotationApprovalRequestID, strconv.Itoa(victimID)),
				annotate(v1alpha1.AnnotationApprovalRequestedAt, "2001-01-01T00:00:00Z"),
				annotate(v1alpha1.AnnotationApprovalSeal, strings.Repeat("ab", 32)),
			}
			cr := attacker.request(t, "web", forged...)
			ownID := waitForApproval(t, cr)
			if ownID == victimID {
				t.Fatalf("the attacker's request waits on the victim's approval %d", victimID)
			}
			testkit.WaitEvent(t, k8s, cr, testkit.EventMatch{Reason: signing.EventIgnoredAnnotations}, 30*time.Second)
			if err := sim.Approve(victimID); err != nil {
				t.Fatal(err)
			}
			waitRequest(t, victimCR, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
			// The attacker's request goes on waiting: the old start time did
			// not push it past maxWait (1h), and the victim's approval did not
			// issue it.
			waitRequest(t, cr, cmapi.CertificateRequestReasonPending, fmt.Sprintf("request %d ", ownID), 5*time.Second)
			if err := sim.Approve(ownID); err != nil {
				t.Fatal(err)
			}
			waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
			if n := enrolments(sim, victimCR.Namespace+"/"+victimCR.Name); n != 1 {
				t.Errorf("%d certificates for the victim's end entity", n)
			}
			if n := enrolments(sim, cr.Namespace+"/"+cr.Name); n != 1 {
				t.Errorf("%d certificates for the attacker's own end entity", n)
			}
		})
	}
}

// Attack: put on a request the enrolment marker that earlier versions kept
// on requests (ejbca-issuer.certctl.io/enrolment-attempted-at), set to a
// time long past (to pull an older certificate of the same end entity and
// key out of EJBCA's search), to the future (to hold the request back), or
// to garbage. The signer keeps its records of attempts in memory now and
// reads no such annotation: each request is enrolled at once, with no
// search, and never handed the older certificate.
func TestAttackForgedEnrolmentTimestamps(t *testing.T) {
	t.Parallel()
	const oldMarker = "ejbca-issuer.certctl.io/enrolment-attempted-at"
	var offset atomic.Int64 // the simulator's clock, relative to now
	sim := newSim(t, ejbcasim.Config{Now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }})
	ns, _ := readyIssuer(t, sim)
	markers := map[string]string{
		"past":    "2001-01-01T00:00:00Z",
		"future":  time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339),
		"garbage": "not a time",
	}
	// For each, a certificate EJBCA issued an hour ago to the same end
	// entity, for the same key and names.
	csrs, old := map[string][]byte{}, map[string][]byte{}
	offset.Store(int64(-time.Hour))
	for name := range markers {
		_, csrs[name] = testkit.CSR(t, testkit.CommonName("svc.example.com"), testkit.DNSNames("svc.example.com"))
		first := newRequest(t, ns, "ejbca", name, csrs[name])
		approve(t, first)
		waitRequest(t, first, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
		old[name] = first.Status.Certificate
	}
	offset.Store(0)
	for name, at := range markers {
		cr := newRequest(t, ns, "ejbca", name, csrs[name], annotate(oldMarker, at))
		approve(t, cr)
		// Well within the settle time (20s here) that a search would wait.
		waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 15*time.Second)
		if string(cr.Status.Certificate) == string(old[name]) {
			t.Errorf("marker %q: the request was handed the hour-old certificate", at)
		}
		if n := enrolments(sim, ns+"/"+name); n != 2 {
			t.Errorf("marker %q: %d certificates for %s/%s, want 2 (the old one and one new)", at, n, ns, name)
		}
	}
	if c := sim.Counters(); c.Get("search")+c.Get("search-v2") != 0 {
		t.Errorf("%d searches: a requester's annotation made the signer search", c.Get("search")+c.Get("search-v2"))
	}
}

// Attack: a CSR too large to store, or with too many names. It is refused
// before EJBCA is called, with a message naming the limit.
func TestAttackOversizedCSRs(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns, _ := readyIssuer(t, sim)
	for _, tc := range []struct {
		name  string
		names func(i int) string
		count int
		want  string
	}{
		{"too many names", func(i int) string { return fmt.Sprintf("n%d.example.com", i) }, signing.DefaultMaxSANs + 1, "--max-csr-sans=1000"},
		{"too many bytes", func(i int) string { return fmt.Sprintf("%s-%d.example.com", strings.Repeat("x", 150), i) }, 500, "--max-csr-bytes=65536"},
	} {
		dns := make([]string, tc.count)
		for i := range dns {
			dns[i] = tc.names(i)
		}
		cr := newRequest(t, ns, "ejbca", strings.ReplaceAll(tc.name, " ", "-"), bigCSR(t, dns))
		approve(t, cr)
		waitRequest(t, cr, cmapi.CertificateRequestReasonFailed, tc.want, 30*time.Second)
	}
	if c := sim.Counters(); c.Get("pkcs10enroll") != 0 {
		t.Errorf("%d enrolments sent to EJBCA for oversized CSRs", c.Get("pkcs10enroll"))
	}
}

func bigCSR(t *testing.T, dns []string) []byte {
	t.Helper()
	_, csr := testkit.CSR(t, testkit.CommonName("big"), testkit.DNSNames(dns...))
	return csr
}

// Attack: ask for a CA certificate and a usage the profile does not give.
// By default the certificate is stored with a Warning event naming each
// difference; with unmetRequest: Fail the request fails naming them.
func TestUnmetRequestsWarnOrFail(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	askTooMuch := func(cr *cmapi.CertificateRequest) {
		cr.Spec.IsCA = true
		cr.Spec.Usages = append(cr.Spec.Usages, cmapi.UsageCodeSigning)
	}
	warnNS, _ := readyIssuer(t, sim)
	cr, _ := requestFor(t, warnNS, "ejbca", "greedy", askTooMuch)
	waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
	testkit.Eventually(t, 10*time.Second, func() string {
		for _, e := range testkit.EventsOf(t, k8s, cr) {
			if e.Reason == signing.EventUnmetRequest && e.Type == corev1.EventTypeWarning &&
				strings.Contains(e.Message, "isCA") && strings.Contains(e.Message, "usage code signing") {
				return ""
			}
		}
		return "no Warning UnmetRequest event naming isCA and code signing"
	})

	failNS, _ := readyIssuer(t, sim, func(s *v1alpha1.IssuerSpec) { s.UnmetRequest = v1alpha1.UnmetRequestFail })
	cr, _ = requestFor(t, failNS, "ejbca", "greedy", askTooMuch)
	waitRequest(t, cr, cmapi.CertificateRequestReasonFailed, "it lacks isCA (the certificate is not a CA certificate), usage code signing", 30*time.Second)
}

// Names a requester chooses reach EJBCA's approval flow escaped: a URI SAN
// with a comma and a subject with separators come back unchanged.
func TestApprovalFlowEscapesRequestedNames(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns := approvalIssuer(t, sim)
	u, _ := url.Parse("https://example.org/a,b?c=d")
	_, csr := testkit.CSR(t, testkit.CommonName(`web, "inc"+1`), testkit.URIs(u.String()), testkit.DNSNames("web.example.com"))
	cr := newRequest(t, ns, "ejbca", "escaped", csr)
	approve(t, cr)
	if err := sim.Approve(waitForApproval(t, cr)); err != nil {
		t.Fatal(err)
	}
	waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
	block, _ := pem.Decode(cr.Status.Certificate)
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != u.String() || leaf.Subject.CommonName != `web, "inc"+1` {
		t.Errorf("issued with URIs %v and CN %q, want %s and the CSR's CN", leaf.URIs, leaf.Subject.CommonName, u)
	}
}

// Attack: on a cluster issuer shared by tenants that allows profile
// overrides, name another of the issuer's own names as a profile (EJBCA
// refuses an unknown profile) or a profile the issuer's EJBCA role may not
// use (EJBCA answers 403). Either is the attacker's request's fault: it
// fails, and the issuer stays Ready for everyone else, whose requests are
// still signed.
func TestAttackOverrideCannotMarkTheIssuerAtFault(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	name := readyClusterIssuer(t, sim, func(s *v1alpha1.IssuerSpec) {
		s.AllowedOverrides = []v1alpha1.Override{v1alpha1.OverrideCertificateProfileName, v1alpha1.OverrideEndEntityProfileName}
	})
	attacker := tenant{ns: newNamespace(t), issuer: name, opts: []crOption{clusterIssuerRef(name)}}
	bystander := tenant{ns: newNamespace(t), issuer: name, opts: []crOption{clusterIssuerRef(name)}}
	iss := &v1alpha1.EJBCAClusterIssuer{}
	for i, tc := range []struct {
		name, annotation, value string
		forbidden               bool
	}{
		{"certificate profile named as the issuer's CA", v1alpha1.AnnotationCertificateProfileName, "IssuingCA", false},
		{"end entity profile named as the issuer's certificate profile", v1alpha1.AnnotationEndEntityProfileName, "SERVER", false},
		{"a profile the issuer's role may not use", v1alpha1.AnnotationCertificateProfileName, "RESTRICTED", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.forbidden {
				// EJBCA's answer to a role without the profile's rights
				// (ExceptionHandler on AuthorizationDeniedException).
				sim.InjectFault("pkcs10enroll", ejbcasim.Fault{Count: 1, Status: 403,
					Body: `{"error_code":403,"error_message":"Administrator is not authorized to resource /certificateprofilesrules/RESTRICTED."}`})
			}
			cr := attacker.request(t, fmt.Sprintf("hostile-%d", i), annotate(tc.annotation, tc.value))
			waitRequest(t, cr, cmapi.CertificateRequestReasonFailed, "", 30*time.Second)
			if err := k8s.Get(context.Background(), client.ObjectKey{Name: name}, iss); err != nil {
				t.Fatal(err)
			}
			if c := iss.Status.ReadyCondition(); c == nil || c.Status != metav1.ConditionTrue {
				t.Errorf("the shared issuer is not Ready after the attacker's request: %+v", c)
			}
			waitRequest(t, bystander.request(t, fmt.Sprintf("bystander-%d", i)), cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
		})
	}
}
