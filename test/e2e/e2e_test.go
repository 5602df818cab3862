package e2e

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
)

func TestCertificateBecomesASecretSignedByEJBCA(t *testing.T) {
	t.Parallel()
	ns := namespaceWithIssuers(t, "SERVER")
	for _, tc := range []struct {
		name string
		ref  cmmeta.IssuerReference
	}{
		{"mtls-issuer", namespacedIssuer()},
		{"oauth2-cluster-issuer", clusterIssuer()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			crt := newCertificate(t, ns, tc.name, tc.ref, func(c *cmapi.Certificate) {
				c.Spec.DNSNames = append(c.Spec.DNSNames, "alt-"+tc.name+".example.com")
				c.Spec.IPAddresses = []string{"10.0.0.7"}
				c.Spec.URIs = []string{"spiffe://cluster.local/ns/" + ns + "/sa/" + tc.name}
			})
			secret := waitIssued(t, crt, 1, 60*time.Second)
			leaf, chain, root := parseSecret(t, secret)

			if len(chain) != 2 || !chain[1].Equal(stack.Sim.IssuingCA()) {
				t.Errorf("tls.crt should be the leaf and the issuing CA, got %d certificates", len(chain))
			}
			if !root.Equal(stack.Sim.RootCA()) {
				t.Errorf("ca.crt is %q, want the root", root.Subject)
			}
			key, err := pki.DecodePrivateKeyBytes(secret.Data[corev1.TLSPrivateKeyKey])
			if err != nil {
				t.Fatal(err)
			}
			if ok, _ := pki.PublicKeyMatchesCertificate(key.Public(), leaf); !ok {
				t.Error("tls.key does not match tls.crt")
			}
			wantDNS := []string{tc.name + ".example.com", "alt-" + tc.name + ".example.com"}
			if !slices.Equal(leaf.DNSNames, wantDNS) {
				t.Errorf("DNS names %v, want %v", leaf.DNSNames, wantDNS)
			}
			if len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.ParseIP("10.0.0.7")) {
				t.Errorf("IP addresses %v", leaf.IPAddresses)
			}
			wantURI, _ := url.Parse("spiffe://cluster.local/ns/" + ns + "/sa/" + tc.name)
			if len(leaf.URIs) != 1 || leaf.URIs[0].String() != wantURI.String() {
				t.Errorf("URIs %v", leaf.URIs)
			}
			if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
				t.Errorf("usages: key usage %b, extended %v", leaf.KeyUsage, leaf.ExtKeyUsage)
			}
			if leaf.Subject.CommonName != tc.name+".example.com" {
				t.Errorf("subject %q", leaf.Subject)
			}
			roots, inter := x509.NewCertPool(), x509.NewCertPool()
			roots.AddCert(root)
			inter.AddCert(chain[1])
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: tc.name + ".example.com"}); err != nil {
				t.Errorf("the Secret's chain does not verify: %v", err)
			}
			enrolledOncePerRequest(t, ns, tc.name) // logs when cert-manager made more than one request
		})
	}
}

// renew marks a Certificate for reissuance the way `cmctl renew` does.
func renew(t *testing.T, crt *cmapi.Certificate) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(crt), crt); err != nil {
			t.Fatal(err)
		}
		now := metav1.Now()
		crt.Status.Conditions = append(crt.Status.Conditions, cmapi.CertificateCondition{
			Type: cmapi.CertificateConditionIssuing, Status: cmmeta.ConditionTrue, Reason: "ManuallyTriggered",
			Message: "Certificate re-issuance manually triggered", LastTransitionTime: &now})
		err := k8s.Status().Update(context.Background(), crt, client.FieldOwner("cmctl"))
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestRenewalGivesANewSerialAndRotatesTheKeyWhenAsked(t *testing.T) {
	t.Parallel()
	ns := namespaceWithIssuers(t, "SERVER")
	for _, policy := range []cmapi.PrivateKeyRotationPolicy{cmapi.RotationPolicyAlways, cmapi.RotationPolicyNever} {
		t.Run(string(policy), func(t *testing.T) {
			t.Parallel()
			name := "renew-" + strings.ToLower(string(policy))
			crt := newCertificate(t, ns, name, namespacedIssuer(), func(c *cmapi.Certificate) {
				c.Spec.PrivateKey.RotationPolicy = policy
			})
			first, _, _ := parseSecret(t, waitIssued(t, crt, 1, 60*time.Second))
			firstKey := requestKey(t, crt, "1")
			renew(t, crt)
			second, _, _ := parseSecret(t, waitIssued(t, crt, 2, 60*time.Second))
			if first.SerialNumber.Cmp(second.SerialNumber) == 0 {
				t.Errorf("renewal kept serial %X", first.SerialNumber)
			}
			same, err := pki.PublicKeysEqual(first.PublicKey, second.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			// Each certificate carries its own request's key; whether the
			// renewal's request has a new key is cert-manager's doing, which
			// under load can reuse a next-private-key it had not yet replaced.
			secondKey := requestKey(t, crt, "2")
			if !publicKeysEqual(t, first.PublicKey, firstKey) || !publicKeysEqual(t, second.PublicKey, secondKey) {
				t.Error("a certificate does not carry the key of its own request")
			}
			newKey := !publicKeysEqual(t, firstKey, secondKey)
			if policy == cmapi.RotationPolicyAlways && same && !newKey {
				t.Log("cert-manager reused the key for this renewal under rotationPolicy Always (its next-private-key race); our certificates matched their requests")
			}
			if policy == cmapi.RotationPolicyNever && !same {
				t.Error("rotationPolicy Never changed the key")
			}
			// One end entity per Certificate: an issuance and a renewal are
			// two enrolments, or more when cert-manager made more requests
			// (under rotationPolicy Always it can replace a renewal's request
			// whose key it then rotates); each request is enrolled once.
			if n := enrolledOncePerRequest(t, ns, name); n < 2 {
				t.Errorf("%d enrolments for an issuance and a renewal, want 2 (one end entity per Certificate)", n)
			}
		})
	}
}

// approvalID waits for the Certificate's request to wait for EJBCA approval.
func approvalID(t *testing.T, crt *cmapi.Certificate) int {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		for _, cr := range requestsOf(t, crt) {
			for _, c := range cr.Status.Conditions {
				if c.Type == cmapi.CertificateRequestConditionReady && c.Reason == cmapi.CertificateRequestReasonPending &&
					strings.Contains(c.Message, "waiting for EJBCA approval of request") {
					id, err := strconv.Atoi(cr.Annotations[v1alpha1.AnnotationApprovalRequestID])
					if err != nil {
						t.Fatal(err)
					}
					return id
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no request waiting for approval: %s", describeRequests(t, crt))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestApprovalRequiredCertificate(t *testing.T) {
	t.Parallel()
	ns := namespaceWithIssuers(t, "APPROVAL")

	approved := newCertificate(t, ns, "approved", namespacedIssuer())
	id := approvalID(t, approved)
	if c := certCondition(approved, cmapi.CertificateConditionReady); c != nil && c.Status == cmmeta.ConditionTrue {
		t.Fatal("Ready before approval")
	}
	if err := stack.Sim.Approve(id); err != nil {
		t.Fatal(err)
	}
	waitIssued(t, approved, 1, 60*time.Second)

	rejected := newCertificate(t, ns, "rejected", namespacedIssuer())
	if err := stack.Sim.Reject(approvalID(t, rejected)); err != nil {
		t.Fatal(err)
	}
	c := waitIssuing(t, rejected, cmmeta.ConditionFalse, "REJECTED", 60*time.Second)
	if c.Reason != "Failed" {
		t.Errorf("Issuing reason %q, want Failed", c.Reason)
	}
	// cert-manager backs off from the failure it recorded (an hour after
	// lastFailureTime for a first failure), so no second request follows:
	// shown by what it recorded, not by waiting.
	if n := len(requestsOf(t, rejected)); n != 1 {
		t.Errorf("%d CertificateRequests after a rejection, want 1 (cert-manager backs off)", n)
	}
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(rejected), rejected); err != nil {
		t.Fatal(err)
	}
	if rejected.Status.LastFailureTime == nil {
		t.Error("the Certificate has no lastFailureTime")
	}
	if n := rejected.Status.FailedIssuanceAttempts; n == nil || *n != 1 {
		t.Errorf("failedIssuanceAttempts %v, want 1 (cert-manager's backoff counts from it)", n)
	}
}

// TestWrongProfileIsFixedWithoutCertManagersBackoff: an issuer whose
// certificate profile EJBCA does not know is not Ready (ProfileNotFound),
// its Certificate's request waits as Pending instead of failing, and fixing
// the issuer issues the Certificate within seconds, not after cert-manager's
// hour-long backoff for failed requests.
func TestWrongProfileIsFixedWithoutCertManagersBackoff(t *testing.T) {
	t.Parallel()
	ns := namespaceWithIssuers(t, "SERVER")
	iss := &v1alpha1.EJBCAIssuer{}
	setProfile := func(profile string) {
		t.Helper()
		for {
			if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "ejbca"}, iss); err != nil {
				t.Fatal(err)
			}
			iss.Spec.CertificateProfileName = profile
			err := k8s.Update(context.Background(), iss)
			if err == nil {
				return
			}
			if !apierrors.IsConflict(err) {
				t.Fatal(err)
			}
		}
	}
	setProfile("NO_SUCH_PROFILE")
	crt := newCertificate(t, ns, "refused", namespacedIssuer())
	want := `has no certificate profile named "NO_SUCH_PROFILE"`
	deadline := time.Now().Add(60 * time.Second)
	for {
		var pending bool
		for _, cr := range requestsOf(t, crt) {
			c := readyOf(&cr)
			if c != nil && c.Reason == cmapi.CertificateRequestReasonFailed {
				t.Fatalf("CertificateRequest %s Failed for the issuer's fault: %q", cr.Name, c.Message)
			}
			pending = pending || (c != nil && c.Reason == cmapi.CertificateRequestReasonPending && strings.Contains(c.Message, "ProfileNotFound") && strings.Contains(c.Message, want))
		}
		if pending {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no request waits for the issuer naming %q", want)
		}
		time.Sleep(200 * time.Millisecond)
	}
	setProfile("SERVER")
	waitIssued(t, crt, 1, 60*time.Second)
	enrolledOncePerRequest(t, ns, "refused")
}

func TestCredentialRotationMidRun(t *testing.T) {
	t.Parallel()
	ns := namespaceWithIssuers(t, "SERVER")
	sim := stack.Sim
	setClientCert := func(certPEM, keyPEM []byte) {
		t.Helper()
		var s corev1.Secret
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "ejbca-client"}, &s); err != nil {
			t.Fatal(err)
		}
		s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey] = certPEM, keyPEM
		if err := k8s.Update(context.Background(), &s); err != nil {
			t.Fatal(err)
		}
	}
	oldCert, oldKey, err := sim.NewClientCert("rotation-old", false, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	setClientCert(oldCert, oldKey)
	crt := newCertificate(t, ns, "rotated", namespacedIssuer())
	waitIssued(t, crt, 1, 60*time.Second)

	newCert, newKey, err := sim.NewClientCert("rotation-new", true, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	setClientCert(newCert, newKey)
	sim.RevokeClientCert(oldCert)
	iss := &v1alpha1.EJBCAIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ejbca"}}
	if err := stack.WaitIssuerReady(context.Background(), iss, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	renew(t, crt)
	waitIssued(t, crt, 2, 60*time.Second)
}

func TestFiftyCertificatesAtOnce(t *testing.T) {
	t.Parallel()
	ns := namespaceWithIssuers(t, "SERVER")
	const n = 50
	crts := make([]*cmapi.Certificate, n)
	for i := range crts {
		crts[i] = newCertificate(t, ns, fmt.Sprintf("bulk-%02d", i), namespacedIssuer())
	}
	var wg sync.WaitGroup
	for _, crt := range crts {
		wg.Add(1)
		go func(crt *cmapi.Certificate) {
			defer wg.Done()
			waitIssued(t, crt, 1, 120*time.Second)
		}(crt)
	}
	wg.Wait()
	for _, crt := range crts {
		enrolledOncePerRequest(t, ns, crt.Name)
	}
}

// describeEnrolments tells apart a second enrolment for the same key (ours
// to prevent) from one for a new key (a second CertificateRequest), and
// lists the Certificate's requests.
func describeEnrolments(t *testing.T, ns, name string) string {
	t.Helper()
	var parts []string
	for _, c := range stack.Sim.Issued() {
		if c.Username == ns+"/"+name {
			sum := sha256.Sum256(c.Cert.RawSubjectPublicKeyInfo)
			parts = append(parts, fmt.Sprintf("serial %X key %x at %s", c.Serial, sum[:4], c.Cert.NotBefore.Format(time.RFC3339Nano)))
		}
	}
	var crs cmapi.CertificateRequestList
	if err := stack.Client.List(context.Background(), &crs, client.InNamespace(ns)); err == nil {
		for _, cr := range crs.Items {
			if cr.Annotations[cmapi.CertificateNameKey] == name {
				parts = append(parts, fmt.Sprintf("request %s (uid %s, revision %s, %d conditions)", cr.Name, cr.UID, cr.Annotations[cmapi.CertificateRequestRevisionAnnotationKey], len(cr.Status.Conditions)))
			}
		}
	}
	return strings.Join(parts, "; ")
}

// requestKey is the public key of the Certificate's request of revision.
func requestKey(t *testing.T, crt *cmapi.Certificate, revision string) crypto.PublicKey {
	t.Helper()
	for _, cr := range requestsOf(t, crt) {
		if cr.Annotations[cmapi.CertificateRequestRevisionAnnotationKey] != revision {
			continue
		}
		csr, err := pki.DecodeX509CertificateRequestBytes(cr.Spec.Request)
		if err != nil {
			t.Fatal(err)
		}
		return csr.PublicKey
	}
	t.Fatalf("no request of revision %s", revision)
	return nil
}

func publicKeysEqual(t *testing.T, a, b crypto.PublicKey) bool {
	t.Helper()
	same, err := pki.PublicKeysEqual(a, b)
	if err != nil {
		t.Fatal(err)
	}
	return same
}
