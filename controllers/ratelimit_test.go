package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/controllers/signing"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
)

// TestRateLimitProtectsEJBCA: 500 requests against an issuer limited to 20
// EJBCA calls a second (burst 20) are all issued, once each; they take at
// least the 24 s the limit allows, no second holds more calls than the
// bucket lets through, and requests held back say so while never failing.
// The requests are created while the issuer is not Ready (its Secrets do
// not exist yet) and all released at once when it becomes Ready, so the
// limit binds however slowly the machine creates them.
func TestRateLimitProtectsEJBCA(t *testing.T) {
	t.Parallel()
	const n, qps, burst = 500, 20, 20
	sim := newSim(t, ejbcasim.Config{})
	ns := newNamespace(t)
	spec := issuerSpec(sim)
	spec.RateLimit = &v1alpha1.RateLimit{QPS: qps, Burst: burst}
	iss := newIssuer(t, ns, "ejbca", spec)
	waitIssuer(t, iss, v1alpha1.ReasonSecretNotFound)
	crs := make([]*cmapi.CertificateRequest, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				crs[i], _ = requestFor(t, ns, "ejbca", fmt.Sprintf("rl-%03d", i))
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, cr := range crs {
		waitRequest(t, cr, cmapi.CertificateRequestReasonPending, "to be Ready", 60*time.Second)
	}
	if got := len(sim.Arrivals("pkcs10enroll")); got != 0 {
		t.Fatalf("%d enrolments before the issuer was Ready", got)
	}
	simSecrets(t, sim, ns) // the issuer becomes Ready: every request at once
	for _, cr := range crs {
		waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 3*time.Minute)
	}

	calls := sim.Arrivals("pkcs10enroll")
	if len(calls) != n || sim.Counters().Enrollments != n {
		t.Fatalf("%d enrolment calls and %d certificates for %d requests", len(calls), sim.Counters().Enrollments, n)
	}
	if span, least := calls[n-1].Sub(calls[0]), time.Duration(n-burst)*time.Second/qps; span < least-500*time.Millisecond {
		t.Errorf("%d enrolments took %s, less than the %s a limit of %d/s (burst %d) allows", n, span, least, qps, burst)
	}
	// No second holds more calls than a full bucket plus a second's refill
	// (every EJBCA call of the issuer counts: the health check's too).
	var all []time.Time
	for _, ep := range []string{"pkcs10enroll", "ca", "certificate-profile", "search", "search-v2"} {
		all = append(all, sim.Arrivals(ep)...)
	}
	for _, start := range all {
		in := 0
		for _, at := range all {
			if !at.Before(start) && at.Before(start.Add(time.Second)) {
				in++
			}
		}
		if in > burst+qps+1 {
			t.Fatalf("%d EJBCA calls within a second from %s, above the limit of %d/s with burst %d", in, start.Format(time.RFC3339Nano), qps, burst)
		}
	}
	var list corev1.EventList
	if err := k8s.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	held := 0
	for _, e := range list.Items {
		if strings.Contains(e.Message, "held back by the issuer's rate limit") {
			held++
		}
		// Failed is final, so an Issued request was never Failed; a
		// Failed event would still show a request that went that way.
		if e.Reason == signing.EventFailed {
			t.Errorf("%s: a request was Failed on the way: %s", e.InvolvedObject.Name, e.Message)
		}
	}
	if held == 0 {
		t.Error("no request said it was held back by the rate limit")
	}
	if s := find(scrapeMetrics(t), "ejbca_issuer_ejbca_throttled_seconds_total", map[string]string{"namespace": ns}); len(s) != 1 || s[0].value <= 0 {
		t.Errorf("throttled seconds for the issuer: %+v", s)
	}
}
