package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"time"

	"github.com/cert-manager/cert-manager/pkg/util/pki"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/devstack"
)

// csrDemo signs a Kubernetes CertificateSigningRequest (certificates.k8s.io)
// with the cluster issuer: created, approved as `kubectl certificate
// approve` does, signed by EJBCA.
func csrDemo(ctx context.Context, stack *devstack.Stack, clusterIssuer string) error {
	cs, err := kubernetes.NewForConfig(stack.RESTConfig)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "csr-demo.example.com"}, DNSNames: []string{"csr-demo.example.com"}}, key)
	if err != nil {
		return err
	}
	signer := v1alpha1.IssuerSignerName(v1alpha1.ClusterIssuerKind, "", clusterIssuer)
	fmt.Println()
	say("creating CertificateSigningRequest csr-demo (certificates.k8s.io) for csr-demo.example.com, signer %s", signer)
	csrs := cs.CertificatesV1().CertificateSigningRequests()
	csr, err := csrs.Create(ctx, &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "csr-demo"},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName: signer,
			Usages:     []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	say("approving it through the approval subresource, as `kubectl certificate approve csr-demo` does")
	csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "DemoApproved", Message: "approved by make demo"})
	if _, err := csrs.UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{}); err != nil {
		return err
	}
	deadline := time.Now().Add(60 * time.Second)
	for len(csr.Status.Certificate) == 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("CertificateSigningRequest %s was not signed within 60s: %+v", csr.Name, csr.Status.Conditions)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if csr, err = csrs.Get(ctx, csr.Name, metav1.GetOptions{}); err != nil {
			return err
		}
		for _, c := range csr.Status.Conditions {
			if c.Type == certificatesv1.CertificateFailed {
				return fmt.Errorf("CertificateSigningRequest %s failed: %s: %s", csr.Name, c.Reason, c.Message)
			}
		}
	}
	chain, err := pki.DecodeX509CertificateChainBytes(csr.Status.Certificate)
	if err != nil {
		return fmt.Errorf("status.certificate: %w", err)
	}
	leaf := chain[0]
	say("CertificateSigningRequest %s is signed (status.certificate: the leaf and %d intermediate(s)):", csr.Name, len(chain)-1)
	fmt.Printf("    Subject:    %s\n", leaf.Subject)
	fmt.Printf("    Issuer:     %s\n", leaf.Issuer)
	fmt.Printf("    Serial:     %X\n", leaf.SerialNumber)
	fmt.Printf("    End entity: %s/%s in EJBCA\n", v1alpha1.CSREndEntityScope, csr.Name)
	return nil
}
