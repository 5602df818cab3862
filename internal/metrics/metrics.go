// Package metrics defines ejbca-issuer's Prometheus metrics, registered with
// controller-runtime's registry so they are served on the manager's metrics
// endpoint next to the controller-runtime and client-go ones.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// The request_kind label's values.
const (
	RequestKindCertificateRequest        = "CertificateRequest"
	RequestKindCertificateSigningRequest = "CertificateSigningRequest"
)

var (
	// Requests counts requests reaching an outcome, of both kinds.
	Requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ejbca_issuer_certificaterequests_total",
		Help: "Requests handled, by issuer kind, request kind (CertificateRequest, CertificateSigningRequest) and outcome (issued, failed, denied, pending, waiting_for_approval, issuer_not_ready).",
	}, []string{"issuer_kind", "request_kind", "outcome"})

	// EJBCACalls counts calls to EJBCA by endpoint and HTTP status.
	EJBCACalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ejbca_issuer_ejbca_requests_total",
		Help: "Calls to EJBCA's REST API by endpoint and HTTP status (0: no response).",
	}, []string{"endpoint", "status"})

	// EJBCALatency is the time of calls to EJBCA.
	EJBCALatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ejbca_issuer_ejbca_request_duration_seconds",
		Help:    "Duration of calls to EJBCA's REST API by endpoint.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"endpoint"})

	// ApprovalsPending is the number of requests waiting for an EJBCA administrator.
	ApprovalsPending = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ejbca_issuer_approvals_pending",
		Help: "Requests (of both kinds) waiting for approval in EJBCA.",
	})

	// IssuanceDuration is the time from a request's creation to its certificate.
	IssuanceDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ejbca_issuer_issuance_duration_seconds",
		Help:    "Time from a request's creation to the certificate being issued, by issuer kind and request kind.",
		Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 86400},
	}, []string{"issuer_kind", "request_kind"})

	// IssuerReady is 1 for a Ready issuer, 0 otherwise.
	IssuerReady = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ejbca_issuer_issuer_ready",
		Help: "1 when the issuer is Ready, 0 when not.",
	}, []string{"kind", "namespace", "name"})

	// Throttled counts the seconds requests and calls were held back by an
	// issuer's rate limit on EJBCA calls.
	Throttled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ejbca_issuer_ejbca_throttled_seconds_total",
		Help: "Seconds requests and calls were held back by the issuer's rate limit on EJBCA calls.",
	}, []string{"kind", "namespace", "name"})

	// KubeRequestDuration times the manager's requests to the Kubernetes API
	// server, the usual limit on throughput once EJBCA is fast enough.
	KubeRequestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ejbca_issuer_kubernetes_request_duration_seconds",
		Help:    "Duration of the manager's requests to the Kubernetes API server, by HTTP method.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"method"})

	// Revocations counts revocation decisions that reached an outcome.
	Revocations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ejbca_issuer_revocations_total",
		Help: "Revocations by issuer kind, EJBCA reason (unknown for an annotation that names none) and outcome (revoked, already_revoked, pending_approval, not_found, failed, abandoned, invalid_reason, refused).",
	}, []string{"kind", "reason", "outcome"})

	// UnclaimedCertificates counts certificates EJBCA issued for requests
	// deleted while their enrolment was in flight.
	UnclaimedCertificates = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ejbca_issuer_unclaimed_certificates_total",
		Help: "Certificates EJBCA issued for requests deleted while their enrolment was in flight, by issuer kind, request kind and outcome (revoked under revocation.deleted, revoke_failed, kept: the issuer does not revoke deleted certificates).",
	}, []string{"kind", "request_kind", "outcome"})

	// HealthChecks counts issuer health checks sent to EJBCA, by result reason.
	HealthChecks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ejbca_issuer_health_checks_total",
		Help: "Issuer health checks by kind and resulting Ready reason (SecretNotFound, InvalidSecret and InvalidConfig checks fail before calling EJBCA).",
	}, []string{"kind", "reason"})
)

func init() {
	crmetrics.Registry.MustRegister(Requests, EJBCACalls, EJBCALatency, ApprovalsPending, IssuanceDuration, IssuerReady, HealthChecks, KubeRequestDuration, Throttled, Revocations, UnclaimedCertificates)
}

// ObserveEJBCACall records one call; it fits ejbca.Options.OnRoundTrip.
func ObserveEJBCACall(endpoint string, status int, took time.Duration) {
	EJBCACalls.WithLabelValues(endpoint, strconv.Itoa(status)).Inc()
	EJBCALatency.WithLabelValues(endpoint).Observe(took.Seconds())
}

// TimeKubeRequests wraps the manager's API server transport to time every
// request; watches are left out (they last until closed).
func TimeKubeRequests(rt http.RoundTripper) http.RoundTripper {
	return kubeTimer{rt}
}

type kubeTimer struct{ next http.RoundTripper }

func (t kubeTimer) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Query().Get("watch") == "true" {
		return t.next.RoundTrip(req)
	}
	start := time.Now()
	res, err := t.next.RoundTrip(req)
	KubeRequestDuration.WithLabelValues(req.Method).Observe(time.Since(start).Seconds())
	return res, err
}
