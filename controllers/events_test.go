package controllers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/controllers/signing"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

// Each Ready transition of an issuer is an event on it: why it is not Ready,
// and when it is again.
func TestIssuerReadyTransitionsAreEvents(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns := newNamespace(t)
	iss := newIssuer(t, ns, "ejbca", issuerSpec(sim))
	waitIssuer(t, iss, v1alpha1.ReasonSecretNotFound)
	testkit.WaitEvent(t, k8s, iss, testkit.EventMatch{Type: corev1.EventTypeWarning, Reason: v1alpha1.ReasonSecretNotFound, Message: "not found: create it in namespace " + ns}, 30*time.Second)
	simSecrets(t, sim, ns)
	waitIssuer(t, iss, v1alpha1.ReasonChecked)
	testkit.WaitEvent(t, k8s, iss, testkit.EventMatch{Type: corev1.EventTypeNormal, Reason: v1alpha1.ReasonChecked, Message: `has CA "IssuingCA"`}, 30*time.Second)
}

// A certificate shorter than the requested duration says why, on the
// request: here the issuer does not send the requested end time, and its
// profile gives a year where two were asked for.
func TestShorterValidityIsAWarning(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns, _ := readyIssuer(t, sim)
	cr, _ := requestFor(t, ns, "ejbca", "biennial", func(cr *cmapi.CertificateRequest) {
		cr.Spec.Duration = &metav1.Duration{Duration: 2 * 8760 * time.Hour}
	})
	waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
	testkit.WaitEvent(t, k8s, cr, testkit.EventMatch{Type: corev1.EventTypeWarning, Reason: signing.EventDurationMismatch, Message: "shorter than the requested 17520h0m0s: the issuer's useRequestedDuration is off"}, 30*time.Second)
}

// cert-manager asks for spec.duration on every request and for key
// encipherment whatever the key. Through an issuer whose profile gives a year
// and no key encipherment to EC keys, each request gets one Normal event
// (Issued, naming the validity it got) and no Warning; the issuer gets one
// ValidityFromProfile and one UsageNotForKey event for all of them, and the
// profile differences metric counts each certificate.
func TestConfigurationDifferencesAreReportedOnTheIssuer(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns, iss := readyIssuer(t, sim) // certificate profile SERVER: one year, server auth
	const n = 6
	var crs []*cmapi.CertificateRequest
	for i := range n {
		cr, _ := requestFor(t, ns, "ejbca", fmt.Sprintf("web-%d", i), certManagerShaped(i))
		crs = append(crs, cr)
	}
	for _, cr := range crs {
		waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
		testkit.WaitEvent(t, k8s, cr, testkit.EventMatch{Type: corev1.EventTypeNormal, Reason: signing.EventIssued, Message: "valid for 8760h10m0s, not the requested 2h0m0s (the issuer's configuration decides: see its ValidityFromProfile events)"}, 30*time.Second)
	}
	testkit.WaitEvent(t, k8s, iss, testkit.EventMatch{Type: corev1.EventTypeNormal, Reason: signing.NoticeValidityFromProfile, Message: "longer than the 2h0m0s requested: the issuer's useRequestedDuration is off"}, 30*time.Second)
	testkit.WaitEvent(t, k8s, iss, testkit.EventMatch{Type: corev1.EventTypeNormal, Reason: signing.NoticeUsageNotForKey, Message: "certificates for ECDSA keys lack usage key encipherment"}, 30*time.Second)
	testkit.Eventually(t, 30*time.Second, func() string {
		for _, s := range scrapeMetrics(t) {
			if s.name == "ejbca_issuer_profile_differences_total" && s.labels["namespace"] == ns && s.labels["cause"] == signing.NoticeValidityFromProfile {
				if s.value == n {
					return ""
				}
				return fmt.Sprintf("profile differences %v, want %d", s.value, n)
			}
		}
		return "no profile differences metric for the issuer"
	})

	// Every request's Issued event and the issuer's reports are in, all
	// recorded after the decisions that would have made Warnings.
	var list corev1.EventList
	if err := k8s.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	perRequest := map[string][]string{}
	var onIssuer []string
	for _, e := range list.Items {
		switch e.InvolvedObject.Kind {
		case "CertificateRequest":
			perRequest[e.InvolvedObject.Name] = append(perRequest[e.InvolvedObject.Name], e.Type+"/"+e.Reason)
		case v1alpha1.IssuerKind:
			if e.Reason == signing.NoticeValidityFromProfile || e.Reason == signing.NoticeUsageNotForKey {
				onIssuer = append(onIssuer, e.Reason+": "+e.Message)
			}
		}
	}
	for _, cr := range crs {
		if got := perRequest[cr.Name]; len(got) != 1 || got[0] != corev1.EventTypeNormal+"/"+signing.EventIssued {
			t.Errorf("request %s has events %v, want one Normal Issued", cr.Name, got)
		}
	}
	if len(onIssuer) != 2 {
		t.Errorf("the issuer has %d configuration reports, want one per cause: %v", len(onIssuer), onIssuer)
	}
}

// certManagerShaped makes a request as cert-manager's request manager
// creates it for a Certificate with duration 2h and usages digital
// signature, key encipherment and server auth (the csrFor key is EC P-256).
func certManagerShaped(revision int) crOption {
	return func(cr *cmapi.CertificateRequest) {
		cr.Spec.Duration = &metav1.Duration{Duration: 2 * time.Hour}
		cr.Spec.Usages = []cmapi.KeyUsage{cmapi.UsageDigitalSignature, cmapi.UsageKeyEncipherment, cmapi.UsageServerAuth}
		cr.Annotations[cmapi.CertificateRequestRevisionAnnotationKey] = fmt.Sprint(revision + 1)
		cr.Annotations[cmapi.CertificateRequestPrivateKeyAnnotationKey] = cr.Annotations[cmapi.CertificateNameKey] + "-abcde"
	}
}
