package testkit

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// TestPollReportsTheLastMessage: a condition never met ends at the
// deadline with what it last said; a met one ends at once.
func TestPollReportsTheLastMessage(t *testing.T) {
	calls := 0
	err := Poll(0, func() string { calls++; return "still waiting" })
	if err == nil || !strings.Contains(err.Error(), "still waiting") || calls != 1 {
		t.Errorf("Poll(0) = %v after %d calls, want the last message after one call", err, calls)
	}
	if err := Poll(0, func() string { return "" }); err != nil {
		t.Errorf("a met condition: %v", err)
	}
}

// TestCSRCarriesItsOptions: every option reaches the CSR, signed by the
// key returned.
func TestCSRCarriesItsOptions(t *testing.T) {
	key, pemCSR := CSR(t, CommonName("web"), DNSNames("a.example.com", "b.example.com"), URIs("spiffe://example.org/web"),
		IPAddresses(net.IPv4(192, 0, 2, 1)), Emails("ops@example.com"), RSA(2048))
	block, _ := pem.Decode(pemCSR)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		t.Fatalf("not a PEM CSR: %q", pemCSR)
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := csr.CheckSignature(); err != nil {
		t.Fatal(err)
	}
	if csr.Subject.CommonName != "web" || len(csr.DNSNames) != 2 || len(csr.URIs) != 1 || len(csr.IPAddresses) != 1 || len(csr.EmailAddresses) != 1 {
		t.Errorf("CSR %+v lacks an option", csr)
	}
	if _, ok := key.(*rsa.PrivateKey); !ok || !key.Public().(*rsa.PublicKey).Equal(csr.PublicKey) {
		t.Errorf("key %T is not the CSR's RSA key", key)
	}
}

// TestEventsAreThoseOfTheObject: Events keeps the object's events (in its
// namespace; a cluster-scoped object's in any), WaitEvent finds one by type,
// reason and a part of its message.
func TestEventsAreThoseOfTheObject(t *testing.T) {
	ev := func(ns, name, obj, objNS, reason, msg string) *corev1.Event {
		return &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Type: corev1.EventTypeWarning, Reason: reason, Message: msg,
			InvolvedObject: corev1.ObjectReference{Name: obj, Namespace: objNS}}
	}
	c := fake.NewClientBuilder().WithScheme(scheme.Scheme).WithObjects(
		ev("a", "1", "req", "a", "Failed", "EJBCA refused the profile"),
		ev("b", "2", "req", "b", "Issued", "other namespace"),
		ev("a", "3", "other", "a", "Issued", "other object"),
		ev("default", "4", "csr", "", "Issued", "cluster-scoped"),
	).Build()
	got := Reasons(EventsOf(t, c, &metav1.ObjectMeta{Namespace: "a", Name: "req"}))
	if strings.Join(got, ",") != "Failed" {
		t.Errorf("events of a/req: %v, want [Failed]", got)
	}
	if got := Reasons(EventsOf(t, c, &metav1.ObjectMeta{Name: "csr"})); strings.Join(got, ",") != "Issued" {
		t.Errorf("events of the cluster-scoped csr: %v, want [Issued]", got)
	}
	e := WaitEvent(t, c, &metav1.ObjectMeta{Namespace: "a", Name: "req"}, EventMatch{Type: corev1.EventTypeWarning, Reason: "Failed", Message: "profile"}, 0)
	if e.Name != "1" {
		t.Errorf("found %s", e.Name)
	}
	if _, err := Events(context.Background(), c, &metav1.ObjectMeta{Namespace: "a", Name: "none"}); err != nil {
		t.Fatal(err)
	}
}
