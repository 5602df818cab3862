package controllers_test

import (
	"context"
	"strconv"
	"strings"
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

// approvalIssuer is a Ready issuer on the APPROVAL certificate profile,
// polling every second.
func approvalIssuer(t *testing.T, sim *ejbcasim.Sim, mutate ...func(*v1alpha1.ApprovalSpec)) string {
	t.Helper()
	ns, _ := readyIssuer(t, sim, func(s *v1alpha1.IssuerSpec) {
		s.CertificateProfileName = "APPROVAL"
		s.Approval = &v1alpha1.ApprovalSpec{PollInterval: &metav1.Duration{Duration: time.Second}}
		for _, m := range mutate {
			m(s.Approval)
		}
	})
	return ns
}

// waitForApproval waits until the request waits for EJBCA approval and
// returns EJBCA's approval request id.
func waitForApproval(t *testing.T, cr *cmapi.CertificateRequest) int {
	t.Helper()
	waitRequest(t, cr, cmapi.CertificateRequestReasonPending, "waiting for EJBCA approval of request", 30*time.Second)
	id, err := strconv.Atoi(cr.Annotations[v1alpha1.AnnotationApprovalRequestID])
	if err != nil {
		t.Fatalf("approval request id annotation: %v", err)
	}
	if msg := readyOf(cr).Message; !strings.Contains(msg, "request "+strconv.Itoa(id)+" ") {
		t.Fatalf("the message %q does not name request %d", msg, id)
	}
	return id
}

func TestApprovalFlowApproved(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns := approvalIssuer(t, sim)
	cr, _ := requestFor(t, ns, "ejbca", "needs-approval")
	id := waitForApproval(t, cr)

	secretName := signing.EnrolmentSecretName(cr.Name)
	var secret corev1.Secret
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: secretName}, &secret); err != nil {
		t.Fatalf("enrolment Secret: %v", err)
	}
	if !metav1.IsControlledBy(&secret, cr) {
		t.Error("the enrolment Secret is not owned by the request, so it would not be garbage-collected with it")
	}
	// The request polls EJBCA while it waits (the schedule itself is
	// TestApprovalPollAfter's).
	testkit.Eventually(t, 30*time.Second, func() string {
		if sim.Counters().Get("approval-status") < 1 {
			return "no approval status poll yet"
		}
		return ""
	})
	if err := sim.Approve(id); err != nil {
		t.Fatal(err)
	}
	waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)

	c := sim.Counters()
	if c.Get("pkcs10enroll") != 1 || c.Get("endentity") != 1 || c.Get("certificaterequest") != 1 || c.Enrollments != 1 ||
		enrolments(sim, ns+"/"+cr.Name) != 1 {
		t.Errorf("calls: pkcs10enroll=%d (the refused one-call enrolment) endentity=%d certificaterequest=%d enrolments=%d; want 1 each",
			c.Get("pkcs10enroll"), c.Get("endentity"), c.Get("certificaterequest"), c.Enrollments)
	}
	testkit.WaitEvent(t, k8s, cr, testkit.EventMatch{Reason: signing.EventWaitingForApproval}, 30*time.Second)
	// The manager never deletes Secrets: the used enrolment Secret stays,
	// owned by the request, until garbage collection removes it with it.
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: secretName}, &secret); err != nil || !metav1.IsControlledBy(&secret, cr) {
		t.Errorf("after issuance the enrolment Secret should remain, owned by its request: %v", err)
	}
}

// A Certificate's renewal goes through the approval flow again: EJBCA's end
// entity API only adds, so each request gets an end entity of its own.
func TestApprovalFlowRenewalOfTheSameCertificate(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns := approvalIssuer(t, sim)
	for range 2 {
		cr, _ := requestFor(t, ns, "ejbca", "renewed")
		if err := sim.Approve(waitForApproval(t, cr)); err != nil {
			t.Fatal(err)
		}
		waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
		if n := enrolments(sim, ns+"/"+cr.Name); n != 1 {
			t.Errorf("%d certificates for end entity %s/%s, want 1", n, ns, cr.Name)
		}
	}
	if n := sim.Counters().Enrollments; n != 2 {
		t.Errorf("%d certificates for two requests", n)
	}
}

func TestApprovalFlowRejectedAndExpired(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns := approvalIssuer(t, sim)
	for _, tc := range []struct {
		name, want string
		end        func(int) error
	}{
		{"rejected", "REJECTED", sim.Reject},
		{"expired", "EXPIRED", sim.Expire},
	} {
		cr, _ := requestFor(t, ns, "ejbca", tc.name)
		id := waitForApproval(t, cr)
		if err := tc.end(id); err != nil {
			t.Fatal(err)
		}
		c := waitRequest(t, cr, cmapi.CertificateRequestReasonFailed, tc.want, 30*time.Second)
		if cr.Status.FailureTime == nil {
			t.Errorf("%s: no failureTime (%s)", tc.name, c.Message)
		}
	}
	if n := sim.Counters().Enrollments; n != 0 {
		t.Errorf("%d certificates issued for refused approvals", n)
	}
}

func TestApprovalFlowTimesOutAtMaxWait(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns := approvalIssuer(t, sim, func(a *v1alpha1.ApprovalSpec) { a.MaxWait = &metav1.Duration{Duration: 4 * time.Second} })
	cr, _ := requestFor(t, ns, "ejbca", "impatient")
	waitForApproval(t, cr)
	waitRequest(t, cr, cmapi.CertificateRequestReasonFailed, "was not approved within the issuer's approval.maxWait (4s)", 30*time.Second)
}

func TestApprovalFlowAlwaysSkipsTheOneCallEnrolment(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns := approvalIssuer(t, sim, func(a *v1alpha1.ApprovalSpec) { a.Flow = v1alpha1.ApprovalFlowAlways })
	cr, _ := requestFor(t, ns, "ejbca", "always")
	id := waitForApproval(t, cr)
	if err := sim.Approve(id); err != nil {
		t.Fatal(err)
	}
	waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
	if n := sim.Counters().Get("pkcs10enroll"); n != 0 {
		t.Errorf("%d pkcs10enroll calls with approval.flow Always, want 0", n)
	}
}

// TestRestartWhileWaitingForApproval stops the manager while a request waits
// for approval and starts a new one: it resumes from the request's
// annotations and enrols exactly once. It runs alone (not parallel) because
// it stops the suite's manager.
func TestRestartWhileWaitingForApproval(t *testing.T) {
	sim := newSim(t, ejbcasim.Config{})
	ns := approvalIssuer(t, sim)
	cr, _ := requestFor(t, ns, "ejbca", "survivor")
	id := waitForApproval(t, cr)

	stopManager()
	if err := sim.Approve(id); err != nil {
		t.Fatal(err)
	}
	if err := startManager(); err != nil {
		t.Fatal(err)
	}
	waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 60*time.Second)
	c := sim.Counters()
	if c.Get("endentity") != 1 || c.Enrollments != 1 || enrolments(sim, ns+"/"+cr.Name) != 1 {
		t.Errorf("after the restart: endentity=%d enrolments=%d; want the end entity added once and one certificate",
			c.Get("endentity"), c.Enrollments)
	}
}
