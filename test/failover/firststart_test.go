package failover

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/manager"
	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

// stillIssuingClaims are what a condition or event says when it claims an
// enrolment was sent and may still be in EJBCA's hands.
var stillIssuingClaims = []string{"gave no answer", "may still be issuing", "previous manager", "enrolment sent", "sent an enrolment"}

// TestWrongProfileFixedAtFirstStart is issue 28's case 5 as a new user meets
// it: the first manager ever started (leader election on, no Lease yet)
// finds an issuer created with a wrong certificate profile and a request
// made at the same moment; the profile is fixed once the manager has said
// it is wrong. The request is issued within seconds of the fix with one
// enrolment: the manager had no predecessor, so it searched for nothing and
// waited for nothing, and no condition or event claims an enrolment was
// sent or that EJBCA gave no answer.
//
// The pool's managers are stopped meanwhile (the test is not parallel: it
// runs before the others start), and started again after it.
func TestWrongProfileFixedAtFirstStart(t *testing.T) {
	ctx := context.Background()
	suite.pool.hold()
	var fresh *proc
	t.Cleanup(func() {
		if fresh != nil && fresh.alive() {
			suite.pool.end([]*proc{fresh})
		}
		suite.pool.release()
		if _, err := waitLeader(false); err != nil {
			t.Errorf("the pool did not lead again: %v", err)
		}
	})
	// A first start: no manager ever led.
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: clusterResourceNamespace, Name: manager.LeaderElectionID}}
	if err := suite.k8s.Delete(ctx, lease); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}

	name := freshName("first-start")
	iss := &v1alpha1.EJBCAIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, Spec: v1alpha1.IssuerSpec{
		URL: suite.ejA.url, CAName: "IssuingCA", CertificateProfileName: "SERVERX", EndEntityProfileName: "EMPTY",
		EndEntityName: v1alpha1.EndEntityNameRequestName,
		Auth:          v1alpha1.AuthSpec{Mode: v1alpha1.AuthModeMTLS, MTLS: &v1alpha1.MTLSAuth{SecretName: issuerA + "-client"}},
		CABundle:      &v1alpha1.CABundle{ConfigMapRef: &v1alpha1.ConfigMapKeySelector{Name: "proxy-ca", Key: "ca.crt"}, ExcludeSystemRoots: true},
	}}
	if err := suite.k8s.Create(ctx, iss); err != nil {
		t.Fatal(err)
	}
	crs := newRequests(t, name, name, 1, nil)
	cr := crs[0]

	// The manager starts with both there (kubectl apply of a bundle, say):
	// with the settle time counted from its start, the request would count
	// as possibly sent by a predecessor.
	var err error
	if fresh, err = suite.pool.spawnExtra(replicas); err != nil {
		t.Fatal(err)
	}
	started := time.Now()

	// Fixed once the manager has said what is wrong, as a user would.
	if err := testkit.Poll(60*time.Second, func() string {
		got := &v1alpha1.EJBCAIssuer{}
		if err := suite.k8s.Get(ctx, client.ObjectKeyFromObject(iss), got); err != nil {
			return err.Error()
		}
		if c := got.GetStatus().ReadyCondition(); c == nil || c.Reason != v1alpha1.ReasonProfileNotFound {
			return fmt.Sprintf("the issuer is not %s yet: %+v", v1alpha1.ReasonProfileNotFound, c)
		}
		return ""
	}); err != nil {
		t.Fatal(err)
	}
	told := time.Now()
	patch := client.MergeFrom(iss.DeepCopy())
	iss.Spec.CertificateProfileName = "SERVER"
	if err := suite.k8s.Patch(ctx, iss, patch); err != nil {
		t.Fatal(err)
	}
	fixed := time.Now()

	if err := waitIssued(crs, 2*settleTime+30*time.Second); err != nil {
		t.Fatal(err)
	}
	took := time.Since(fixed)

	// One certificate, the one the request holds (Ready True/Issued was
	// waited for), from one enrolment; no recovery search.
	for _, p := range checkOnce(suite.simA, crs) {
		t.Error(p)
	}
	var calls []string
	enrolled := 0
	for _, c := range suite.ejA.snapshot() {
		if c.username != username(cr) {
			continue
		}
		calls = append(calls, fmt.Sprintf("%s %d", c.endpoint, c.status))
		switch {
		case c.endpoint == "pkcs10enroll" && c.status/100 == 2:
			enrolled++
		case c.endpoint == "search" || c.endpoint == "search-v2":
			t.Errorf("the manager searched EJBCA for a request no one had sent (pid %d)", c.pid)
		}
	}
	if enrolled != 1 {
		t.Errorf("%d enrolments EJBCA carried out, want 1; calls for the request: %s", enrolled, countBy(calls))
	}
	if !logged(fresh, "nothing to search for") || logged(fresh, "may have left enrolments in flight") {
		t.Errorf("%s did not begin as a first start", fresh)
	}
	// Within seconds: nothing waited for the settle time, which the
	// search would have.
	if took >= settleTime {
		t.Errorf("issued %s after the fix, not within the settle time (%s)", took.Round(time.Millisecond), settleTime)
	}

	// No message, in any status written or event sent for the request,
	// claims an enrolment was sent or that EJBCA gave no answer.
	statuses, events := 0, 0
	for _, w := range suite.api.snapshot() {
		if w.request != username(cr) || (w.kind != "status" && w.kind != "event") {
			continue
		}
		if w.kind == "status" {
			statuses++
		} else {
			events++
		}
		for _, claim := range stillIssuingClaims {
			if strings.Contains(w.body, claim) {
				t.Errorf("a %s write by pid %d says %q: %s", w.kind, w.pid, claim, w.body)
			}
		}
	}
	if statuses == 0 {
		t.Errorf("no status write for %s seen", cr.Name)
	}

	// Its stop hands over: nothing is in flight.
	_ = fresh.signal(syscall.SIGTERM)
	<-fresh.done
	if !logged(fresh, "handed the lease over with no EJBCA call in flight") {
		t.Errorf("%s did not hand the lease over when stopped", fresh)
	}
	t.Logf("first start: the manager said the profile was wrong %s after it started; the request was issued %s after the fix, with EJBCA calls [%s], %d status writes and %d events",
		told.Sub(started).Round(time.Millisecond), took.Round(time.Millisecond), countBy(calls), statuses, events)
}
