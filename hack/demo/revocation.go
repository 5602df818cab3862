package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/devstack"
	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
)

// revocationDemoGrace is the demo issuer's spec.revocation.gracePeriod.
const revocationDemoGrace = 3 * time.Second

// revocationDemo renews a Certificate under an issuer with
// spec.revocation.superseded and shows, from EJBCA's revocationstatus, the
// superseded certificate revoked after the grace period and the new one not.
func revocationDemo(ctx context.Context, stack *devstack.Stack) error {
	fmt.Println()
	say("creating EJBCAIssuer %s/ejbca-revoking with spec.revocation {superseded: true, gracePeriod: %s}", namespace, revocationDemoGrace)
	base := &v1alpha1.EJBCAIssuer{}
	if err := stack.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "ejbca"}, base); err != nil {
		return err
	}
	iss := &v1alpha1.EJBCAIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "ejbca-revoking"}, Spec: base.Spec}
	iss.Spec.Revocation = &v1alpha1.RevocationSpec{Superseded: true, GracePeriod: &metav1.Duration{Duration: revocationDemoGrace}}
	if err := stack.Client.Create(ctx, iss); err != nil {
		return err
	}
	if err := stack.WaitIssuerReady(ctx, iss, 30*time.Second); err != nil {
		return err
	}
	crt, err := certificate(ctx, stack, "revocation-demo", "ejbca-revoking", []string{"revocation.demo.example.com"})
	if err != nil {
		return err
	}
	secret, err := waitRevision(ctx, stack, crt, 1)
	if err != nil {
		return err
	}
	old, err := pki.DecodeX509CertificateBytes(secret.Data[corev1.TLSCertKey])
	if err != nil {
		return err
	}
	say("Certificate %s/revocation-demo issued: serial %X", namespace, old.SerialNumber)
	say("renewing it (as `cmctl renew` does: the Issuing condition)")
	if err := renewCertificate(ctx, stack, crt); err != nil {
		return err
	}
	secret, err = waitRevision(ctx, stack, crt, 2)
	if err != nil {
		return err
	}
	renewed, err := pki.DecodeX509CertificateBytes(secret.Data[corev1.TLSCertKey])
	if err != nil {
		return err
	}
	issuedAt := time.Now()
	say("renewed: the Secret holds serial %X; serial %X is superseded and is revoked %s after the renewal", renewed.SerialNumber, old.SerialNumber, revocationDemoGrace)

	admin, err := adminClient(stack.Sim)
	if err != nil {
		return err
	}
	defer admin.Close()
	issuerDN := old.Issuer.String()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := admin.RevocationStatus(ctx, issuerDN, old.SerialNumber.Text(16))
		if err != nil {
			return fmt.Errorf("asking EJBCA for the revocation status of %X: %w", old.SerialNumber, err)
		}
		if st.Revoked {
			say("EJBCA revocationstatus of the superseded serial %X: revoked=%t reason=%s date=%s (about %s after the renewal)",
				old.SerialNumber, st.Revoked, st.RevocationReason, st.RevocationDate, time.Since(issuedAt).Round(100*time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("serial %X not revoked in EJBCA 30s after its renewal: %s", old.SerialNumber, st.RevocationReason)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	st, err := admin.RevocationStatus(ctx, issuerDN, renewed.SerialNumber.Text(16))
	if err != nil {
		return err
	}
	say("EJBCA revocationstatus of the current serial %X: revoked=%t reason=%s", renewed.SerialNumber, st.Revoked, st.RevocationReason)
	say("revoke calls EJBCA received: %d for the superseded certificate, %d for the current one",
		stack.Sim.RevokeCalls(old.SerialNumber.Text(16)), stack.Sim.RevokeCalls(renewed.SerialNumber.Text(16)))
	return nil
}

// waitRevision waits until cert-manager calls the Certificate issued at
// revision (or later) and returns its Secret.
func waitRevision(ctx context.Context, stack *devstack.Stack, crt *cmapi.Certificate, revision int) (*corev1.Secret, error) {
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := stack.Client.Get(ctx, client.ObjectKeyFromObject(crt), crt); err != nil {
			return nil, err
		}
		ready, issuing := condition(crt, cmapi.CertificateConditionReady), condition(crt, cmapi.CertificateConditionIssuing)
		if ready != nil && ready.Status == cmmeta.ConditionTrue && crt.Status.Revision != nil && *crt.Status.Revision >= revision && issuing == nil {
			var s corev1.Secret
			err := stack.Client.Get(ctx, client.ObjectKey{Namespace: crt.Namespace, Name: crt.Spec.SecretName}, &s)
			return &s, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("certificate %s not issued at revision %d after 60s", crt.Name, revision)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// renewCertificate sets the Issuing condition, as `cmctl renew` does.
func renewCertificate(ctx context.Context, stack *devstack.Stack, crt *cmapi.Certificate) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := stack.Client.Get(ctx, client.ObjectKeyFromObject(crt), crt); err != nil {
			return err
		}
		now := metav1.Now()
		crt.Status.Conditions = append(crt.Status.Conditions, cmapi.CertificateCondition{
			Type: cmapi.CertificateConditionIssuing, Status: cmmeta.ConditionTrue, Reason: "ManuallyTriggered",
			Message: "Certificate re-issuance manually triggered", LastTransitionTime: &now})
		err := stack.Client.Status().Update(ctx, crt, client.FieldOwner("cmctl"))
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// adminClient is an EJBCA client with the simulator's administrator
// certificate, as an operator's script would use.
func adminClient(sim *ejbcasim.Sim) (*ejbca.Client, error) {
	cert, err := tls.X509KeyPair(sim.ClientCertPEM(), sim.ClientKeyPEM())
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(sim.CABundlePEM()) {
		return nil, errors.New("the simulator's CA bundle holds no certificate")
	}
	return ejbca.New(ejbca.Options{URL: sim.URL(), Roots: roots, ClientCertificate: &cert, Timeout: 10 * time.Second})
}
