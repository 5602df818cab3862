// Package e2e drives real cert-manager Certificates through cert-manager's own
// controllers (in-process), ejbca-issuer's manager and the EJBCA simulator,
// on a real kube-apiserver: the same stack `make demo` shows.
package e2e

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/controllers"
	"github.com/certctl-io/ejbca-issuer/internal/devstack"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
	"github.com/certctl-io/ejbca-issuer/internal/manager"
)

var (
	stack   *devstack.Stack
	k8s     client.Client
	counter atomic.Int64
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "ejbca-issuer-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	stack, err = devstack.Start(context.Background(), devstack.Options{
		Dir: dir,
		Sim: ejbcasim.Config{},
		// A short abandonment bound, so that a deletion EJBCA never
		// takes completes within the test (revocation_test.go).
		Manager: manager.Options{Options: controllers.Options{RevocationAbandonAfter: revocationAbandonAfter}},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the stack:", err)
		return 1
	}
	defer stack.Stop()
	k8s = stack.Client
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := requests.start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "watching CertificateRequests:", err)
		return 1
	}
	return m.Run()
}

// namespaceWithIssuers makes a namespace of the test's own with a Ready
// EJBCAIssuer "ejbca" (mTLS); the EJBCAClusterIssuer "ejbca" (OAuth2) is
// shared by all tests.
func namespaceWithIssuers(t *testing.T, profile string) string {
	t.Helper()
	ns := fmt.Sprintf("e2e-%d", counter.Add(1))
	if _, _, err := stack.Issuers(context.Background(), ns, profile); err != nil {
		t.Fatal(err)
	}
	return ns
}

func namespacedIssuer() cmmeta.IssuerReference {
	return cmmeta.IssuerReference{Group: v1alpha1.GroupVersion.Group, Kind: v1alpha1.IssuerKind, Name: "ejbca"}
}

func clusterIssuer() cmmeta.IssuerReference {
	return cmmeta.IssuerReference{Group: v1alpha1.GroupVersion.Group, Kind: v1alpha1.ClusterIssuerKind, Name: "ejbca"}
}

// newCertificate creates a server Certificate for name.example.com.
func newCertificate(t *testing.T, ns, name string, ref cmmeta.IssuerReference, mutate ...func(*cmapi.Certificate)) *cmapi.Certificate {
	t.Helper()
	crt := &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: cmapi.CertificateSpec{
			SecretName: name + "-tls",
			CommonName: name + ".example.com",
			DNSNames:   []string{name + ".example.com"},
			IssuerRef:  ref,
			PrivateKey: &cmapi.CertificatePrivateKey{Algorithm: cmapi.ECDSAKeyAlgorithm, Size: 256},
			Usages:     []cmapi.KeyUsage{cmapi.UsageDigitalSignature, cmapi.UsageServerAuth},
		},
	}
	for _, m := range mutate {
		m(crt)
	}
	if err := k8s.Create(context.Background(), crt); err != nil {
		t.Fatal(err)
	}
	return crt
}

func certCondition(crt *cmapi.Certificate, typ cmapi.CertificateConditionType) *cmapi.CertificateCondition {
	for i := range crt.Status.Conditions {
		if crt.Status.Conditions[i].Type == typ {
			return &crt.Status.Conditions[i]
		}
	}
	return nil
}

// waitIssued waits until the Certificate is Ready at revision >= revision
// with no Issuing condition, and returns its Secret.
func waitIssued(t *testing.T, crt *cmapi.Certificate, revision int, timeout time.Duration) *corev1.Secret {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(crt), crt); err != nil {
			t.Fatal(err)
		}
		ready := certCondition(crt, cmapi.CertificateConditionReady)
		issuing := certCondition(crt, cmapi.CertificateConditionIssuing)
		if ready != nil && ready.Status == cmmeta.ConditionTrue && crt.Status.Revision != nil &&
			*crt.Status.Revision >= revision && issuing == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Certificate %s/%s not issued after %s: Ready=%+v Issuing=%+v revision=%v; requests: %s",
				crt.Namespace, crt.Name, timeout, ready, issuing, crt.Status.Revision, describeRequests(t, crt))
		}
		time.Sleep(100 * time.Millisecond)
	}
	var s corev1.Secret
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: crt.Namespace, Name: crt.Spec.SecretName}, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

// waitIssuing waits for the Certificate's Issuing condition to carry reason
// and a message containing message.
func waitIssuing(t *testing.T, crt *cmapi.Certificate, status cmmeta.ConditionStatus, message string, timeout time.Duration) *cmapi.CertificateCondition {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(crt), crt); err != nil {
			t.Fatal(err)
		}
		c := certCondition(crt, cmapi.CertificateConditionIssuing)
		if c != nil && c.Status == status && strings.Contains(c.Message, message) {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("Certificate %s: Issuing=%+v, want %s containing %q; requests: %s", crt.Name, c, status, message, describeRequests(t, crt))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// requestsOf lists the Certificate's CertificateRequests.
func requestsOf(t *testing.T, crt *cmapi.Certificate) []cmapi.CertificateRequest {
	t.Helper()
	var list cmapi.CertificateRequestList
	if err := k8s.List(context.Background(), &list, client.InNamespace(crt.Namespace)); err != nil {
		t.Fatal(err)
	}
	var out []cmapi.CertificateRequest
	for _, cr := range list.Items {
		if cr.Annotations[cmapi.CertificateNameKey] == crt.Name {
			out = append(out, cr)
		}
	}
	return out
}

func describeRequests(t *testing.T, crt *cmapi.Certificate) string {
	var b strings.Builder
	for _, cr := range requestsOf(t, crt) {
		fmt.Fprintf(&b, "[%s:", cr.Name)
		for _, c := range cr.Status.Conditions {
			fmt.Fprintf(&b, " %s=%s/%s %q", c.Type, c.Status, c.Reason, c.Message)
		}
		b.WriteString("]")
	}
	return b.String()
}

// parseSecret returns the leaf, the chain in tls.crt and ca.crt's root.
func parseSecret(t *testing.T, s *corev1.Secret) (leaf *x509.Certificate, chain []*x509.Certificate, root *x509.Certificate) {
	t.Helper()
	chain, err := pki.DecodeX509CertificateChainBytes(s.Data[corev1.TLSCertKey])
	if err != nil {
		t.Fatalf("tls.crt: %v", err)
	}
	root, err = pki.DecodeX509CertificateBytes(s.Data["ca.crt"])
	if err != nil {
		t.Fatalf("ca.crt: %v", err)
	}
	return chain[0], chain, root
}

func readyOf(cr *cmapi.CertificateRequest) *cmapi.CertificateRequestCondition {
	return apiutil.GetCertificateRequestCondition(cr, cmapi.CertificateRequestConditionReady)
}
