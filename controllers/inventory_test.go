package controllers_test

import (
	"context"
	"testing"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

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
