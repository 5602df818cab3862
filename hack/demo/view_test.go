package main

import (
	"context"
	"strings"
	"testing"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
)

func TestViewListsEverythingSortedWithReadyConditions(t *testing.T) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, cmapi.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	ready := func(reason, msg string) []metav1.Condition {
		return []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: reason, Message: msg}}
	}
	var objs []client.Object
	for _, name := range []string{"zeta", "alpha"} {
		objs = append(objs,
			&v1alpha1.EJBCAIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: "b", Name: name}, Status: v1alpha1.IssuerStatus{Conditions: ready("Unreachable", "no answer\nfrom "+name)}},
			&v1alpha1.EJBCAIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: name}},
			&v1alpha1.EJBCAClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: v1alpha1.IssuerStatus{Conditions: ready("Unauthorized", "refused "+name)}},
			&cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: "b", Name: name}, Spec: cmapi.CertificateSpec{SecretName: name + "-tls",
				IssuerRef: cmmeta.IssuerReference{Kind: v1alpha1.IssuerKind, Name: "ejbca"}},
				Status: cmapi.CertificateStatus{Conditions: []cmapi.CertificateCondition{{Type: cmapi.CertificateConditionReady, Status: cmmeta.ConditionFalse, Reason: "DoesNotExist", Message: "no Secret"}}}},
			&cmapi.CertificateRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "b", Name: name + "-1"},
				Status: cmapi.CertificateRequestStatus{Conditions: []cmapi.CertificateRequestCondition{
					{Type: cmapi.CertificateRequestConditionReady, Status: cmmeta.ConditionFalse, Reason: "Pending", Message: "waiting for EJBCA approval of request 7"},
					{Type: cmapi.CertificateRequestConditionApproved, Status: cmmeta.ConditionTrue}}}},
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "b", Name: name}, Type: corev1.SecretTypeOpaque,
				Data: map[string][]byte{"z": nil, "m": nil, "a": nil, "q": nil, "c": nil}},
		)
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).WithStatusSubresource().Build()
	out, err := viewText(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		again, err := viewText(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		if again != out {
			t.Fatalf("the view changes between calls:\n%s\n---\n%s", out, again)
		}
	}
	var got []string
	for _, line := range strings.Split(out, "\n") {
		got = append(got, strings.Join(strings.Fields(line), " "))
	}
	want := []string{
		"ISSUER READY REASON MESSAGE",
		"EJBCAClusterIssuer alpha False Unauthorized refused alpha",
		"EJBCAClusterIssuer zeta False Unauthorized refused zeta",
		"EJBCAIssuer a/alpha - -",
		"EJBCAIssuer a/zeta - -",
		"EJBCAIssuer b/alpha False Unreachable no answer from alpha",
		"EJBCAIssuer b/zeta False Unreachable no answer from zeta",
		"",
		"CERTIFICATE READY REASON REVISION SECRET ISSUER MESSAGE",
		"b/alpha False DoesNotExist - alpha-tls EJBCAIssuer ejbca no Secret",
		"b/zeta False DoesNotExist - zeta-tls EJBCAIssuer ejbca no Secret",
		"",
		"CERTIFICATEREQUEST APPROVED READY REASON MESSAGE",
		"b/alpha-1 True False Pending waiting for EJBCA approval of request 7",
		"b/zeta-1 True False Pending waiting for EJBCA approval of request 7",
		"",
		"SECRET TYPE KEYS CERTIFICATE (tls.crt)",
		"b/alpha Opaque a,c,m,q,z",
		"b/zeta Opaque a,c,m,q,z",
		"",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("view:\n%s\nwant (columns collapsed):\n%s", out, strings.Join(want, "\n"))
	}
}
