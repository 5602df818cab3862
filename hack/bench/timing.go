package main

import (
	"context"
	"fmt"
	"sort"
	"strings"

	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// timeUsage is where the manager's time per certificate went during a run,
// in milliseconds per issued certificate, from its own metrics: the
// CertificateRequest work queue (waiting in it, and a worker's time on it),
// and within a worker's time the EJBCA calls and the API requests. What a
// worker spends beyond EJBCA and API requests is client-side throttling
// (client-go's token buckets wait before the request is sent, outside the
// timed transport), CPU and locks.
type timeUsage struct {
	QueueWaitMs float64 `json:"queue_wait_ms"`
	WorkMs      float64 `json:"worker_ms"`
	EJBCAMs     float64 `json:"ejbca_ms"`
	// APIMs is the API requests' time by method (GET, PATCH: the status
	// apply, POST: events, sent off the worker's path); a request's time
	// starts when client-go sends it, after its token bucket.
	APIMs map[string]float64 `json:"api_ms_by_method"`
	// OtherMs is WorkMs less EJBCA and the worker-path API requests (GET,
	// PATCH, PUT): throttling, CPU, locks.
	OtherMs float64 `json:"other_ms"`
	// Reconciles is the CertificateRequest controller's reconciles per
	// certificate.
	Reconciles float64 `json:"reconciles_per_cert"`
}

const crController = `controller="certificaterequest"`

func timeSpent(before, after map[string]float64, certs int) timeUsage {
	t := timeUsage{APIMs: map[string]float64{}}
	if certs <= 0 || before == nil || after == nil {
		return t
	}
	per := func(name string, match ...string) float64 {
		return 1000 * (sumMetric(after, name, match...) - sumMetric(before, name, match...)) / float64(certs)
	}
	t.QueueWaitMs = per("workqueue_queue_duration_seconds_sum", `name="certificaterequest"`)
	t.WorkMs = per("controller_runtime_reconcile_time_seconds_sum", crController)
	t.EJBCAMs = per("ejbca_issuer_ejbca_request_duration_seconds_sum")
	for _, m := range []string{"GET", "PATCH", "POST", "PUT", "DELETE"} {
		if v := per("ejbca_issuer_kubernetes_request_duration_seconds_sum", `method="`+m+`"`); v > 0.005 {
			t.APIMs[m] = v
		}
	}
	t.OtherMs = t.WorkMs - t.EJBCAMs - t.APIMs["GET"] - t.APIMs["PATCH"] - t.APIMs["PUT"]
	t.Reconciles = per("controller_runtime_reconcile_total", crController) / 1000
	return t
}

func (t timeUsage) String() string {
	var api []string
	for m, v := range t.APIMs {
		api = append(api, fmt.Sprintf("%s %.1f", m, v))
	}
	sort.Strings(api)
	return fmt.Sprintf("%.2f | %.1f | %.1f | %.1f | %s | %.1f", t.Reconciles, t.QueueWaitMs, t.WorkMs, t.EJBCAMs, strings.Join(api, ", "), t.OtherMs)
}

// eventUsage counts the events the manager recorded in a run's namespace
// (events.k8s.io, reporting controller ejbca-issuer), per issued
// certificate; an event aggregated into a series counts once per
// occurrence.
type eventUsage struct {
	PerCert         float64        `json:"events_per_cert"`
	WarningsPerCert float64        `json:"warnings_per_cert"`
	ByReason        map[string]int `json:"by_reason"`
	// OnIssuers are the events on the issuer (configuration reports).
	OnIssuers int `json:"on_issuers"`
}

func (b *bench) countEvents(ctx context.Context, ns string, certs int) (eventUsage, error) {
	u := eventUsage{ByReason: map[string]int{}}
	var list eventsv1.EventList
	if err := b.stack.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return u, err
	}
	var onRequests, warnings int
	for _, e := range list.Items {
		if e.ReportingController != "ejbca-issuer" {
			continue
		}
		n := 1
		if e.Series != nil && e.Series.Count > 1 {
			n = int(e.Series.Count)
		}
		u.ByReason[e.Reason] += n
		if e.Regarding.Kind != "CertificateRequest" {
			u.OnIssuers += n
			continue
		}
		onRequests += n
		if e.Type == "Warning" {
			warnings += n
		}
	}
	if certs > 0 {
		u.PerCert = float64(onRequests) / float64(certs)
		u.WarningsPerCert = float64(warnings) / float64(certs)
	}
	return u, nil
}

func (u eventUsage) reasons() string {
	var out []string
	for r, n := range u.ByReason {
		out = append(out, fmt.Sprintf("%s %d", r, n))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}
