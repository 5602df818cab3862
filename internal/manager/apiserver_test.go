package manager

import (
	"context"
	"fmt"
	"testing"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/testenv"
	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

// apiServer starts a control plane of t's own, stopped when t ends, and
// returns its config and a client (the manager's scheme) for it, with
// namespace ns created.
func apiServer(t *testing.T, ns string) (*rest.Config, client.Client) {
	t.Helper()
	env, err := testenv.New()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	k8s, err := client.New(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	return cfg, k8s
}

// mixedRequest is the i-th of a set of requests of every shape, at
// revision 3: every fourth names another issuer (state 0), the others
// ours, to be brought to the state i%4 names.
func mixedRequest(ns string, i int, csrPEM []byte) (*cmapi.CertificateRequest, int) {
	ref, state := testkit.IssuerRef(v1alpha1.IssuerKind, "ejbca"), i%4
	if state == 0 {
		ref = cmmeta.IssuerReference{Group: "cert-manager.io", Kind: "ClusterIssuer", Name: "other"}
	}
	return testkit.CertificateRequest(ns, fmt.Sprintf("r-%02d", i), csrPEM, ref, func(cr *cmapi.CertificateRequest) {
		cr.Annotations = map[string]string{cmapi.CertificateRequestRevisionAnnotationKey: "3"}
	}), state
}
