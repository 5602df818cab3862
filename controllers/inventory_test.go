package controllers_test

import (
	"context"
	"testing"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	"k8s.io/apimachinery/pkg/types"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/controllers"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
)

// TestInventoryListsBothKinds: the list a process takes as it begins
// signing, against the real API server, holds the requests of both kinds
// that exist, whatever their state, so a predecessor's possible enrolment
// of either is searched for.
func TestInventoryListsBothKinds(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns, _ := readyIssuer(t, sim)
	_, pem := csrFor(t, "inventoried.example.com", "inventoried.example.com")
	cr := newRequest(t, ns, "ejbca", "inventoried", pem) // not approved: never signed
	issuer := readyClusterIssuer(t, sim)
	csr := newCSR(t, clientsetAs(t, ""), controllers.IssuerSignerName(v1alpha1.ClusterIssuerKind, "", issuer), "inventoried.example.com")

	list := controllers.Inventories(
		controllers.ListExisting(k8s, cmapi.SchemeGroupVersion.WithKind("CertificateRequestList")),
		controllers.ListExisting(k8s, certificatesv1.SchemeGroupVersion.WithKind("CertificateSigningRequestList")),
	)
	found, err := list(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[types.UID]string{cr.UID: ns + "/" + cr.Name, csr.UID: csr.Name}
	for _, e := range found {
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
