package controllers_test

import (
	"context"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
)

// Attack: a request EJBCA answers 403 for on its own account (an end
// entity under a CA or profile the issuer's role may not edit) must not
// take a shared issuer out of service. The request is retried while its
// issuer is re-checked (spaced like every other wake); the issuer's check
// passes, so it stays Ready, and the request fails within its retry window
// with EJBCA's message. Other tenants go on being signed.
func TestAttackRequestForbiddenLeavesTheIssuerReady(t *testing.T) {
	t.Parallel()
	const refusal = "Administrator not authorized to end entity profile 7 of end entity team-x/taken"
	for _, tc := range tenancies {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sim := newSim(t, ejbcasim.Config{})
			tenants := tc.setup(t, sim, 2)
			attacker, bystander := tenants[0], tenants[1]
			iss := issuerOf(t, attacker)

			sim.InjectFault("pkcs10enroll", ejbcasim.Fault{Status: 403,
				Body: `{"error_code":403,"error_message":"` + refusal + `"}`, ContentType: "application/json"})
			cr := attacker.request(t, "forbidden")
			waitRequest(t, cr, cmapi.CertificateRequestReasonPending, "EJBCA refused this request (403), will retry", 20*time.Second)
			c := waitRequest(t, cr, cmapi.CertificateRequestReasonFailed, refusal, retryWindow+20*time.Second)
			if took := c.LastTransitionTime.Sub(cr.CreationTimestamp.Time); took > retryWindow+5*time.Second {
				t.Errorf("failed %s after its creation, want within the retry window (%s)", took, retryWindow)
			}
			if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(iss), iss); err != nil {
				t.Fatal(err)
			}
			if !v1alpha1.IsReady(iss) {
				t.Errorf("the issuer is not Ready after a request's 403: %+v", iss.GetStatus().ReadyCondition())
			}
			var list corev1.EventList
			if err := k8s.List(context.Background(), &list, client.InNamespace(iss.GetNamespace())); err != nil {
				t.Fatal(err)
			}
			for _, e := range list.Items {
				if e.InvolvedObject.Name == iss.GetName() && e.Type == corev1.EventTypeWarning {
					t.Errorf("the issuer got a Warning %s: %s", e.Reason, e.Message)
				}
			}

			sim.ClearFaults()
			other := bystander.request(t, "bystander")
			waitRequest(t, other, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
		})
	}
}

// issuerOf is the issuer a tenant's requests name.
func issuerOf(t *testing.T, tn tenant) v1alpha1.Issuer {
	t.Helper()
	for _, o := range tn.opts {
		cr := &cmapi.CertificateRequest{}
		o(cr)
		if cr.Spec.IssuerRef.Kind == v1alpha1.ClusterIssuerKind {
			return &v1alpha1.EJBCAClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: tn.issuer}}
		}
	}
	return &v1alpha1.EJBCAIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: tn.ns, Name: tn.issuer}}
}
