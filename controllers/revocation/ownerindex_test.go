package revocation

import (
	"context"
	"fmt"
	"testing"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

// TestOwnedRequestsAreTheCertificatesOwn: Certificates whose names share an
// index bucket, in one namespace and in another, each get their own
// requests only (the index is by bucket; the name decides).
func TestOwnedRequestsAreTheCertificatesOwn(t *testing.T) {
	a := "web"
	b := ""
	for i := 0; b == ""; i++ {
		if n := fmt.Sprintf("api-%d", i); ownerBucket(n) == ownerBucket(a) {
			b = n
		}
	}
	scheme := runtime.NewScheme()
	if err := cmapi.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	request := func(ns, name, owner string) *cmapi.CertificateRequest {
		cr := testkit.CertificateRequest(ns, name, nil, testkit.IssuerRef(v1alpha1.IssuerKind, "ejbca"))
		cr.OwnerReferences = []metav1.OwnerReference{{APIVersion: cmapi.SchemeGroupVersion.String(), Kind: cmapi.CertificateKind,
			Name: owner, UID: types.UID(owner + "-uid"), Controller: ptr.To(true)}}
		return cr
	}
	objs := []client.Object{request("one", "web-1", a), request("one", "web-2", a), request("one", b+"-1", b), request("two", "web-1", a)}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).
		WithIndex(&cmapi.CertificateRequest{}, requestOwnerIndex, func(o client.Object) []string {
			return []string{ownerBucket(metav1.GetControllerOf(o).Name)}
		}).Build()
	for _, tc := range []struct {
		ns, name string
		want     []string
	}{
		{"one", a, []string{"web-1", "web-2"}},
		{"one", b, []string{b + "-1"}},
		{"two", a, []string{"web-1"}},
		{"two", b, nil},
	} {
		owned, err := ownedRequests(context.Background(), c, tc.ns, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, cr := range owned {
			got = append(got, cr.Name)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("Certificate %s/%s owns %v, want %v", tc.ns, tc.name, got, tc.want)
		}
	}
}
