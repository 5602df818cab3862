package controllers_test

import (
	"context"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/controllers/signing"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

// TestInventoryListsBothKinds: the list a process takes as it begins
// signing, against the real API server, holds our requests of both kinds
// that exist, whatever their state, so a predecessor's possible enrolment
// of either is searched for, and leaves out requests for other issuers.
func TestInventoryListsBothKinds(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns, _ := readyIssuer(t, sim)
	_, pem := testkit.CSR(t, testkit.CommonName("inventoried.example.com"), testkit.DNSNames("inventoried.example.com"))
	cr := newRequest(t, ns, "ejbca", "inventoried", pem) // not approved: never signed
	foreign := &cmapi.CertificateRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "for-another-issuer"},
		Spec: cmapi.CertificateRequestSpec{Request: pem,
			IssuerRef: cmmeta.IssuerReference{Group: "cert-manager.io", Kind: "Issuer", Name: "ca"}},
	}
	if err := k8s.Create(context.Background(), foreign); err != nil {
		t.Fatal(err)
	}
	issuer := readyClusterIssuer(t, sim)
	csr := newCSR(t, clientsetAs(t, ""), v1alpha1.IssuerSignerName(v1alpha1.ClusterIssuerKind, "", issuer), "inventoried.example.com")

	list := signing.Inventories(
		signing.CertificateRequestInventory(signing.InventoryReaders{API: k8s}),
		signing.CertificateSigningRequestInventory(signing.InventoryReaders{API: k8s}),
	)
	found, err := list(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[types.UID]string{cr.UID: ns + "/" + cr.Name, csr.UID: csr.Name}
	for _, e := range found {
		if e.UID == foreign.UID {
			t.Error("a request for another issuer is in the inventory: it would never be reconciled, so never forgotten")
		}
		name, ok := want[e.UID]
		if !ok {
			continue
		}
		got := e.Name
		if e.Namespace != "" {
			got = e.Namespace + "/" + e.Name
		}
		if got != name {
			t.Errorf("%s listed as %s", name, got)
		}
		delete(want, e.UID)
	}
	if len(want) > 0 {
		t.Errorf("not in the inventory: %v", want)
	}
}

// TestInventoryLeavesOutFinishedRequests: a request of ours that the
// manager's cache (the one its reconciler reads) shows final (here denied)
// when the inventory is taken is not in it, however the requests are
// listed: nothing is sent for it again, and the reconciler, which does not
// reconcile requests final when first seen, would never forget it (every
// finished request would be held for the process's life). Read from the
// API server alone, it is kept: the reconciler's cache may still show it
// unfinished (TestStaleReadNeverActs).
func TestInventoryLeavesOutFinishedRequests(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns, _ := readyIssuer(t, sim)
	_, pem := testkit.CSR(t, testkit.CommonName("finished.example.com"), testkit.DNSNames("finished.example.com"))
	open := newRequest(t, ns, "ejbca", "still-open", pem) // not approved: never signed
	denied := newRequest(t, ns, "ejbca", "denied", pem)
	now := metav1.Now()
	denied.Status.Conditions = []cmapi.CertificateRequestCondition{
		{Type: cmapi.CertificateRequestConditionDenied, Status: cmmeta.ConditionTrue, Reason: "Test", Message: "denied", LastTransitionTime: &now},
		{Type: cmapi.CertificateRequestConditionReady, Status: cmmeta.ConditionFalse, Reason: cmapi.CertificateRequestReasonDenied, Message: "denied", LastTransitionTime: &now},
	}
	if err := k8s.Status().Update(context.Background(), denied); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, func() string {
		cached := &cmapi.CertificateRequest{}
		if err := mgrCache.Get(context.Background(), client.ObjectKeyFromObject(denied), cached); err != nil {
			return err.Error()
		}
		if signing.ShapeOf(cached) != signing.ShapeFinished {
			return "the cache does not show the denied request final yet"
		}
		return ""
	})
	for _, tc := range []struct {
		name    string
		readers signing.InventoryReaders
		kept    bool
	}{
		{"API server and cache", signing.InventoryReaders{API: k8s, Cache: mgrCache}, false},
		{"API server and cache, selected by issuer group", signing.InventoryReaders{API: k8s, Cache: mgrCache, SelectByIssuerGroup: true}, false},
		{"cache alone (no leader election)", signing.InventoryReaders{API: k8s, Cache: mgrCache, FromCache: true}, false},
		{"API server alone", signing.InventoryReaders{API: k8s}, true},
		{"API server alone, selected by issuer group", signing.InventoryReaders{API: k8s, SelectByIssuerGroup: true}, true},
	} {
		found, err := signing.CertificateRequestInventory(tc.readers)(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		listed := map[types.UID]bool{}
		for _, e := range found {
			listed[e.UID] = true
		}
		if listed[denied.UID] != tc.kept {
			t.Errorf("%s: the denied request listed %v, want %v", tc.name, listed[denied.UID], tc.kept)
		}
		if !listed[open.UID] {
			t.Errorf("%s: the unfinished request is not in the inventory", tc.name)
		}
	}
}
