package controllers_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/controllers"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// waitEvent waits for an event on obj with the type and reason whose
// message contains message.
func waitEvent(t *testing.T, obj interface {
	GetNamespace() string
	GetName() string
}, typ, reason, message string) {
	t.Helper()
	eventually(t, 30*time.Second, func() string {
		var list corev1.EventList
		if err := k8s.List(context.Background(), &list); err != nil {
			return err.Error()
		}
		var seen []string
		for _, e := range list.Items {
			if e.InvolvedObject.Name != obj.GetName() || e.InvolvedObject.Namespace != obj.GetNamespace() {
				continue
			}
			if e.Type == typ && e.Reason == reason && strings.Contains(e.Message, message) {
				return ""
			}
			seen = append(seen, e.Type+"/"+e.Reason+": "+e.Message)
		}
		return "no " + typ + " " + reason + " event containing " + message + "; seen: " + strings.Join(seen, " | ")
	})
}

// Each Ready transition of an issuer is an event on it: why it is not Ready,
// and when it is again.
func TestIssuerReadyTransitionsAreEvents(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns := newNamespace(t)
	iss := newIssuer(t, ns, "ejbca", issuerSpec(sim))
	waitIssuer(t, iss, v1alpha1.ReasonSecretNotFound)
	waitEvent(t, iss, corev1.EventTypeWarning, v1alpha1.ReasonSecretNotFound, "not found: create it in namespace "+ns)
	simSecrets(t, sim, ns)
	waitIssuer(t, iss, v1alpha1.ReasonChecked)
	waitEvent(t, iss, corev1.EventTypeNormal, v1alpha1.ReasonChecked, `has CA "IssuingCA"`)
}

// A certificate whose validity is not the requested duration says why, on
// the request: here the issuer does not send the requested end time.
func TestDurationMismatchIsAWarning(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns, _ := readyIssuer(t, sim)
	cr, _ := requestFor(t, ns, "ejbca", "quarterly", func(cr *cmapi.CertificateRequest) {
		cr.Spec.Duration = &metav1.Duration{Duration: 2160 * time.Hour}
	})
	waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
	waitEvent(t, cr, corev1.EventTypeWarning, controllers.EventDurationMismatch, "not the requested 2160h0m0s: the issuer's useRequestedDuration is off")
}

// waitEventReason waits for an event with reason on obj: events are
// recorded asynchronously, after the status.
func waitEventReason(t *testing.T, obj client.Object, reason string) {
	t.Helper()
	eventually(t, 30*time.Second, func() string {
		if !slices.Contains(events(t, obj), reason) {
			return "no " + reason + " event on " + obj.GetName() + "; events: " + strings.Join(events(t, obj), ", ")
		}
		return ""
	})
}
