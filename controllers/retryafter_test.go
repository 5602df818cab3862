package controllers_test

import (
	"fmt"
	"sort"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"

	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

// TestRetryAfterHoldsWhateverWakes: EJBCA answers the first enrolment of
// each of several requests on one issuer with 503 and Retry-After. While
// they wait, each is woken early (a condition another controller writes
// wakes a request as its issuer's readiness does). No request calls EJBCA
// again before the time it was given, judged from the simulator's arrival
// times: each retry arrives at least Retry-After after a 503 of its own
// (sorted, the i-th retry after the i-th 503).
func TestRetryAfterHoldsWhateverWakes(t *testing.T) {
	t.Parallel()
	const n = 4
	const retryAfter = 20 * time.Second
	sim := newSim(t, ejbcasim.Config{})
	ns, _ := readyIssuer(t, sim)
	sim.InjectFault("pkcs10enroll", ejbcasim.Fault{Count: n, Status: 503, RetryAfter: fmt.Sprint(int(retryAfter.Seconds()))})
	crs := make([]*cmapi.CertificateRequest, n)
	for i := range crs {
		crs[i], _ = requestFor(t, ns, "ejbca", fmt.Sprintf("ra-%d", i))
	}
	testkit.Eventually(t, 30*time.Second, func() string {
		if got := len(sim.Arrivals("pkcs10enroll")); got < n {
			return fmt.Sprintf("%d of %d first enrolments arrived", got, n)
		}
		return ""
	})
	for _, cr := range crs {
		waitRequest(t, cr, cmapi.CertificateRequestReasonPending, "retry after", 10*time.Second)
		setCondition(t, cr, "example.com/Audited", "Audit")
	}
	woken := time.Now()
	for _, cr := range crs {
		waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", retryAfter+30*time.Second)
	}
	calls := sim.Arrivals("pkcs10enroll")
	if len(calls) != 2*n {
		t.Fatalf("%d enrolment calls for %d requests, want one 503 and one retry each", len(calls), n)
	}
	first, retries := calls[:n], calls[n:]
	if !woken.Before(first[0].Add(retryAfter)) {
		t.Fatalf("the requests were woken %s after the first 503, past its Retry-After: nothing tested", woken.Sub(first[0]))
	}
	sort.Slice(retries, func(i, j int) bool { return retries[i].Before(retries[j]) })
	for i := range retries {
		if early := first[i].Add(retryAfter).Sub(retries[i]); early > 0 {
			t.Errorf("retry %d arrived %s before the %s EJBCA asked for", i, early, retryAfter)
		}
	}
}
