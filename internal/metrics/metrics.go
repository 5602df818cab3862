// Package metrics defines ejbca-issuer's Prometheus metrics, registered with
// controller-runtime's registry so they are served on the manager's metrics
// endpoint next to the controller-runtime and client-go ones.
package metrics

import (
	"net/http"
	"net/url"
	"strconv"
	"sync"
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

	// ApprovalOldestPending is when the longest wait for an EJBCA
	// administrator began; absent when no request waits.
	ApprovalOldestPending = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ejbca_issuer_approval_oldest_pending_timestamp_seconds",
		Help: "When (Unix seconds) the request that has waited longest for approval in EJBCA began to wait; absent when none waits.",
	}, nil)

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

	// IssuerReadyReason says why an issuer is or is not Ready: 1 for its
	// current Ready reason, one series per issuer. ejbca_issuer_issuer_ready
	// keeps its labels so that an alert's for: runs on across a change of
	// reason; alerts join this for the reason.
	IssuerReadyReason = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ejbca_issuer_issuer_ready_reason",
		Help: "1 for the issuer's current Ready condition reason (Checked, Unreachable, Unauthorized, CANotFound, ...); one series per issuer.",
	}, []string{"kind", "namespace", "name", "reason"})

	// CAExpiry is when the certificates of an issuer's CA and of the CAs
	// above it in EJBCA's CA list expire.
	CAExpiry = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ejbca_issuer_ca_expiry_timestamp_seconds",
		Help: "notAfter (Unix seconds) of the issuer's CA certificate (role issuing) and of the CAs above it that EJBCA lists (intermediate, root), as the last health check that found the CA read them.",
	}, []string{"kind", "namespace", "name", "ca", "role"})

	// Leader is 1 in the process that holds the leader election lease (or
	// runs without leader election) and 0 in a standby.
	Leader = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ejbca_issuer_leader",
		Help: "1 when this manager process is the leader (holds the leader election lease, or runs without leader election), 0 in a standby.",
	})

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
	crmetrics.Registry.MustRegister(Requests, EJBCACalls, EJBCALatency, ApprovalsPending, IssuanceDuration, IssuerReady, HealthChecks, KubeRequestDuration, Throttled, Revocations,
		IssuerReadyReason, CAExpiry, Leader, ApprovalOldestPending, UnclaimedCertificates)
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

// NodeUsable is 1 for each EJBCA node of an issuer that answered its last
// check (or call), 0 for one set aside; node is the node's place in the
// issuer's list (0 is url, then urls), host its host, so an issuer has at
// most 5 series.
var NodeUsable = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "ejbca_issuer_ejbca_node_usable",
	Help: "1 when the issuer's EJBCA node is usable, 0 when it is set aside after a failure.",
}, []string{"kind", "namespace", "name", "node", "host"})

func init() { crmetrics.Registry.MustRegister(NodeUsable) }

// SetNodeStates replaces an issuer's node series: urls in order, and
// whether each is usable.
func SetNodeStates(kind, namespace, name string, urls []string, usable []bool) {
	NodeUsable.DeletePartialMatch(prometheus.Labels{"kind": kind, "namespace": namespace, "name": name})
	for i, raw := range urls {
		host := raw
		if u, err := url.Parse(raw); err == nil && u.Host != "" {
			host = u.Host
		}
		v := 0.0
		if usable[i] {
			v = 1
		}
		NodeUsable.WithLabelValues(kind, namespace, name, strconv.Itoa(i), host).Set(v)
	}
}

// ForgetNodes drops an issuer's node series (the issuer is gone).
func ForgetNodes(kind, namespace, name string) {
	NodeUsable.DeletePartialMatch(prometheus.Labels{"kind": kind, "namespace": namespace, "name": name})
}

// SetIssuerReady records an issuer's readiness and its reason, dropping the
// series of its previous reason.
func SetIssuerReady(kind, namespace, name string, ready bool, reason string) {
	v := 0.0
	if ready {
		v = 1
	}
	IssuerReady.WithLabelValues(kind, namespace, name).Set(v)
	IssuerReadyReason.DeletePartialMatch(prometheus.Labels{"kind": kind, "namespace": namespace, "name": name})
	IssuerReadyReason.WithLabelValues(kind, namespace, name, reason).Set(1)
}

// The role label's values of ejbca_issuer_ca_expiry_timestamp_seconds.
const (
	CARoleIssuing      = "issuing"
	CARoleIntermediate = "intermediate"
	CARoleRoot         = "root"
)

// CAValidity is one CA certificate's expiry as EJBCA's CA list gives it.
type CAValidity struct {
	Name     string
	Role     string
	NotAfter time.Time
}

// SetCAExpiry replaces the CA expiry series of an issuer with chain's.
func SetCAExpiry(kind, namespace, name string, chain []CAValidity) {
	ForgetCAExpiry(kind, namespace, name)
	for _, ca := range chain {
		CAExpiry.WithLabelValues(kind, namespace, name, ca.Name, ca.Role).Set(float64(ca.NotAfter.Unix()))
	}
}

// ForgetCAExpiry drops the CA expiry series of an issuer.
func ForgetCAExpiry(kind, namespace, name string) {
	CAExpiry.DeletePartialMatch(prometheus.Labels{"kind": kind, "namespace": namespace, "name": name})
}

// ForgetIssuer drops every series of a deleted issuer.
func ForgetIssuer(kind, namespace, name string) {
	IssuerReady.DeleteLabelValues(kind, namespace, name)
	IssuerReadyReason.DeletePartialMatch(prometheus.Labels{"kind": kind, "namespace": namespace, "name": name})
	ForgetCAExpiry(kind, namespace, name)
}

// approvalWaits holds when each request waiting for approval began to, for
// ApprovalOldestPending; its size is the approvals-pending gauge's.
var approvalWaits = struct {
	sync.Mutex
	since map[any]time.Time
}{since: map[any]time.Time{}}

// ApprovalWaiting records that the request of key waits for approval since
// since (a zero since keeps what is known, or now).
func ApprovalWaiting(key any, since time.Time) {
	approvalWaits.Lock()
	defer approvalWaits.Unlock()
	old, known := approvalWaits.since[key]
	if since.IsZero() {
		if known {
			return
		}
		since = time.Now()
	}
	if known && old.Equal(since) {
		return
	}
	approvalWaits.since[key] = since
	setOldestApproval()
}

// ApprovalDone records that the request of key no longer waits.
func ApprovalDone(key any) {
	approvalWaits.Lock()
	defer approvalWaits.Unlock()
	if _, known := approvalWaits.since[key]; !known {
		return
	}
	delete(approvalWaits.since, key)
	setOldestApproval()
}

// setOldestApproval sets the gauge from approvalWaits, which the caller
// holds. It runs only when a request starts or stops waiting.
func setOldestApproval() {
	var oldest time.Time
	for _, s := range approvalWaits.since {
		if oldest.IsZero() || s.Before(oldest) {
			oldest = s
		}
	}
	if oldest.IsZero() {
		ApprovalOldestPending.Reset()
		return
	}
	ApprovalOldestPending.WithLabelValues().Set(float64(oldest.Unix()))
}
