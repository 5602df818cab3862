package signing

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/cert-manager/cert-manager/pkg/util/pki"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

type csrOpt func(*certificatesv1.CertificateSigningRequest)

// testCSRPEM asks for server auth in its extension request.
func testCSRPEM(t *testing.T) []byte {
	t.Helper()
	ku, _ := pki.MarshalKeyUsage(x509.KeyUsageDigitalSignature)
	eku, _ := pki.MarshalExtKeyUsage([]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, nil)
	_, csr := testkit.CSR(t, testkit.CommonName("web"), testkit.Extensions(ku, eku))
	return csr
}

func kubeCSR(request []byte, signer string, opts ...csrOpt) *certificatesv1.CertificateSigningRequest {
	c := &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", CreationTimestamp: metav1.NewTime(t0)},
		Spec: certificatesv1.CertificateSigningRequestSpec{Request: request, SignerName: signer, Username: "alice",
			Usages: []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth}},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

func csrWith(t certificatesv1.RequestConditionType) csrOpt {
	return func(c *certificatesv1.CertificateSigningRequest) {
		c.Status.Conditions = append(c.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{Type: t, Status: corev1.ConditionTrue})
	}
}

func TestSignerIssuer(t *testing.T) {
	for _, tc := range []struct {
		signer, kind, ns, name string
		ok                     bool
	}{
		{"ejbcaclusterissuers.ejbca-issuer.certctl.io/ejbca", v1alpha1.ClusterIssuerKind, "", "ejbca", true},
		{"ejbcaclusterissuers.ejbca-issuer.certctl.io/ejbca.prod", v1alpha1.ClusterIssuerKind, "", "ejbca.prod", true},
		{"ejbcaissuers.ejbca-issuer.certctl.io/team-a.ejbca", v1alpha1.IssuerKind, "team-a", "ejbca", true},
		{"ejbcaissuers.ejbca-issuer.certctl.io/team-a.ejbca.prod", v1alpha1.IssuerKind, "team-a", "ejbca.prod", true},
		{"ejbcaissuers.ejbca-issuer.certctl.io/ejbca", "", "", "", false},
		{"ejbcaissuers.ejbca-issuer.certctl.io/team-a.", "", "", "", false},
		{"ejbcaclusterissuers.ejbca-issuer.certctl.io/", "", "", "", false},
		{"ejbcaclusterissuers.ejbca-issuer.certctl.io/a/b", "", "", "", false},
		{"issuers.cert-manager.io/team-a.ejbca", "", "", "", false},
		{"kubernetes.io/kube-apiserver-client", "", "", "", false},
	} {
		kind, ns, name, ok := SignerIssuer(tc.signer)
		if ok != tc.ok || (ok && (kind != tc.kind || ns != tc.ns || name != tc.name)) {
			t.Errorf("%s: %s %q %q %v", tc.signer, kind, ns, name, ok)
		}
		if ok && v1alpha1.IssuerSignerName(kind, ns, name) != tc.signer {
			t.Errorf("%s does not round-trip: %s", tc.signer, v1alpha1.IssuerSignerName(kind, ns, name))
		}
	}
}

func TestDecideCSR(t *testing.T) {
	req := testCSRPEM(t)
	cluster := v1alpha1.ClusterIssuerSignerPrefix + "ejbca"
	namespaced := v1alpha1.IssuerSignerPrefix + "team-a.ejbca"
	yes, no := true, false
	clientAuth := func(c *certificatesv1.CertificateSigningRequest) {
		c.Spec.Usages = []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}
	}
	withCert := func(c *certificatesv1.CertificateSigningRequest) { c.Status.Certificate = []byte("PEM") }
	approved := csrWith(certificatesv1.CertificateApproved)
	refused := &SignResult{Err: &ejbca.Error{Endpoint: "POST /v1/certificate/pkcs10enroll", StatusCode: 400, Kind: ejbca.KindPermanent,
		Message: `Certificate profile with name "NOPE" doesn't exist`}}
	busy := &SignResult{Err: &ejbca.Error{StatusCode: 503, Kind: ejbca.KindRetryable, Message: "busy"}}
	for _, tc := range []struct {
		name      string
		csr       *certificatesv1.CertificateSigningRequest
		issuer    IssuerState
		now       time.Time
		reference *bool
		result    *SignResult
		action    Action
		failed    bool
		reason    string
		message   string
		cert      bool
		requeue   time.Duration
		event     string
		outcome   string
	}{
		{name: "another signer is ignored", csr: kubeCSR(req, "example.com/other", approved), issuer: readyIssuer, action: ActionIgnore},
		{name: "not approved is ignored", csr: kubeCSR(req, cluster), issuer: readyIssuer, action: ActionIgnore},
		{name: "denied is ignored", csr: kubeCSR(req, cluster, csrWith(certificatesv1.CertificateDenied)), issuer: readyIssuer, action: ActionIgnore},
		{name: "failed is never signed", csr: kubeCSR(req, cluster, approved, csrWith(certificatesv1.CertificateFailed)), issuer: readyIssuer, action: ActionIgnore},
		{name: "signed is never signed again", csr: kubeCSR(req, cluster, approved, withCert), issuer: readyIssuer, action: ActionIgnore},
		{name: "usages that do not fit the CSR fail", csr: kubeCSR(req, cluster, approved, clientAuth), issuer: readyIssuer,
			action: ActionUpdate, failed: true, reason: v1alpha1.CSRReasonBadRequest, message: "spec.usages do not fit the CSR", event: EventFailed, outcome: "failed"},
		{name: "cluster issuer needs no reference check", csr: kubeCSR(req, cluster, approved), issuer: readyIssuer, action: ActionSign},
		{name: "namespaced issuer asks for the reference check first", csr: kubeCSR(req, namespaced, approved), issuer: readyIssuer, action: ActionCheckReference},
		{name: "the reference check is asked before the issuer is looked at", csr: kubeCSR(req, namespaced, approved), action: ActionCheckReference},
		{name: "reference refused fails", csr: kubeCSR(req, namespaced, approved), issuer: readyIssuer, reference: &no,
			action: ActionUpdate, failed: true, reason: v1alpha1.CSRReasonReferenceDenied, message: `"alice" may not reference the namespaced EJBCAIssuer team-a/ejbca`, event: EventFailed, outcome: "failed"},
		{name: "reference allowed signs", csr: kubeCSR(req, namespaced, approved), issuer: readyIssuer, reference: &yes, action: ActionSign},
		{name: "issuer missing waits without failing", csr: kubeCSR(req, cluster, approved), issuer: IssuerState{Ref: `EJBCAClusterIssuer "ejbca"`},
			now: t0.Add(48 * time.Hour), action: ActionUpdate, message: "not found", event: EventIssuerNotReady, outcome: "issuer_not_ready"},
		{name: "issued writes the chain", csr: kubeCSR(req, cluster, approved), issuer: readyIssuer, result: &SignResult{Certificate: issued()},
			action: ActionUpdate, cert: true, event: EventIssued, outcome: "issued"},
		{name: "issued without the asked usages under unmetRequest Fail fails", csr: kubeCSR(req, cluster, approved),
			issuer: IssuerState{Ref: readyIssuer.Ref, Found: true, Ready: true, FailUnmet: true}, result: &SignResult{Certificate: issued()},
			action: ActionUpdate, failed: true, reason: v1alpha1.CSRReasonSigningFailed, message: "lacks usage digital signature", event: EventFailed, outcome: "failed"},
		{name: "EJBCA's permanent refusal fails with its message", csr: kubeCSR(req, cluster, approved), issuer: readyIssuer, result: refused,
			action: ActionUpdate, failed: true, reason: v1alpha1.CSRReasonSigningFailed, message: `"NOPE" doesn't exist`, event: EventFailed, outcome: "failed"},
		{name: "retryable error leaves it unsigned and requeues", csr: kubeCSR(req, cluster, approved), issuer: readyIssuer, now: t0.Add(10 * time.Second), result: busy,
			action: ActionUpdate, message: "will retry: ", requeue: 5 * time.Second, event: EventRetrying, outcome: "pending"},
		{name: "retryable error past the retry window fails", csr: kubeCSR(req, cluster, approved), issuer: readyIssuer, now: t0.Add(2 * time.Hour), result: busy,
			action: ActionUpdate, failed: true, reason: v1alpha1.CSRReasonSigningFailed, message: "Giving up", event: EventFailed, outcome: "failed"},
		{name: "waiting for approval requeues at the poll", csr: kubeCSR(req, cluster, approved), issuer: readyIssuer,
			result: &SignResult{WaitingForApproval: &Approval{RequestID: 7, Since: t0, PollAfter: 15 * time.Second}},
			action: ActionUpdate, message: "waiting for EJBCA approval of request 7", requeue: 15 * time.Second, event: EventWaitingForApproval, outcome: "waiting_for_approval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := tc.now
			if now.IsZero() {
				now = t0
			}
			d := DecideCSR(CSRInput{CSR: tc.csr, Issuer: tc.issuer, Now: now, RetryWindow: time.Hour, ReferenceAllowed: tc.reference, Result: tc.result})
			if d.Action != tc.action || d.Failed != tc.failed || d.Reason != tc.reason || !strings.Contains(d.Message, tc.message) ||
				(len(d.Certificate) > 0) != tc.cert || d.RequeueAfter != tc.requeue || d.Outcome != tc.outcome {
				t.Errorf("got %+v", d)
			}
			if (d.Event == nil) != (tc.event == "") || (d.Event != nil && d.Event.Reason != tc.event) {
				t.Errorf("event %+v, want %q", d.Event, tc.event)
			}
			if tc.cert && string(d.Certificate) != "LEAF+INTERMEDIATE" {
				t.Errorf("status.certificate %q, want the leaf and intermediates without the root", d.Certificate)
			}
		})
	}
}
