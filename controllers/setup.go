package controllers

import (
	"context"
	"math/rand/v2"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/controllers/issuers"
	"github.com/certctl-io/ejbca-issuer/controllers/revocation"
	"github.com/certctl-io/ejbca-issuer/controllers/signing"
	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
	"github.com/certctl-io/ejbca-issuer/internal/eventrecord"
	"github.com/certctl-io/ejbca-issuer/internal/issuerclients"
	"github.com/certctl-io/ejbca-issuer/internal/leadership"
	"github.com/certctl-io/ejbca-issuer/internal/metrics"
)

// Options are the controllers' settings, from the manager's flags.
type Options struct {
	// ClusterResourceNamespace is where EJBCAClusterIssuers' Secrets live.
	ClusterResourceNamespace string
	// MaxConcurrentReconciles is the number of requests signed at once.
	MaxConcurrentReconciles int
	// RetryWindow bounds how long retryable errors are retried.
	RetryWindow time.Duration
	// HealthCheckInterval is the time between checks of a healthy issuer.
	HealthCheckInterval time.Duration
	// EJBCATimeout bounds each call to EJBCA.
	EJBCATimeout time.Duration
	// RequestLimits refuse oversized requests before EJBCA is called.
	RequestLimits signing.RequestLimits
	// DefaultRateLimit bounds the EJBCA calls of issuers that set no
	// rateLimit (zero QPS and MaxConcurrent: no bound).
	DefaultRateLimit ejbca.Limit
	// Lease says whether this process still leads; nil without leader
	// election.
	Lease *leadership.Lease
	// SecretsNamespaceOnly: Secrets and ConfigMaps are read only in the
	// cluster resource namespace.
	SecretsNamespaceOnly bool
	// RevocationAbandonAfter bounds how long a deleted CertificateRequest
	// is held for a revocation EJBCA does not take; zero means
	// DefaultRevocationAbandonAfter.
	RevocationAbandonAfter time.Duration
	// Clock is the clock of every schedule and timestamp; nil means the real
	// one.
	Clock clock.WithTicker
	// EventRecorder records the controllers' events; nil means the
	// manager's. With leader election the manager passes one whose sink
	// checks the lease right before each write.
	EventRecorder events.EventRecorder
	// SelectByIssuerGroup: the API server selects CertificateRequests by
	// IssuerGroupField (IssuerGroupSelectable), and the cache holds only
	// those of our group.
	SelectByIssuerGroup bool
	// OtherSignersCSR: the cache left out this CSR (by UID) as another
	// signer's (nil: the cache holds every CSR).
	OtherSignersCSR func(types.UID) bool
}

// EventReporter is the reporting controller of every event the controllers
// record.
const EventReporter = "ejbca-issuer"

// jitter is a factor in [0.9, 1.1) spreading timers so issuers and requests
// created together do not call EJBCA in lockstep.
func jitter() float64 { return 0.9 + rand.Float64()*0.2 }

// Setup registers the issuer (one per kind), CertificateRequest,
// CertificateSigningRequest and revocation controllers, and the runnables
// they share: the reachability probe and the exactly-once memory.
func Setup(mgr ctrl.Manager, o Options) error {
	clk := o.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	workers := max(o.MaxConcurrentReconciles, 1)
	clients := issuerclients.New(mgr.GetClient(), mgr.GetAPIReader(), o.ClusterResourceNamespace, clk.Now, func(iss v1alpha1.Issuer, opts *ejbca.Options) {
		opts.Clock = clk
		opts.Timeout = o.EJBCATimeout
		opts.MaxIdleConnsPerHost = workers + 4
		opts.OnRoundTrip = metrics.ObserveEJBCACall
		opts.Limit = rateLimit(iss.GetSpec().RateLimit, o.DefaultRateLimit)
		if o.Lease != nil {
			opts.MayConnect = o.Lease.Holds
		}
		kind, ns, name := v1alpha1.KindOf(iss), iss.GetNamespace(), iss.GetName()
		opts.OnThrottle = func(d time.Duration) { metrics.Throttled.WithLabelValues(kind, ns, name).Add(d.Seconds()) }
	})
	wakes := issuers.NewIssuerWakes()
	reach := &issuers.Reachability{Client: mgr.GetClient(), Clients: clients, Clock: clk, Wakes: wakes, MinSpacing: issuers.ProbeSpacingFor(o.EJBCATimeout)}
	if err := mgr.Add(reach); err != nil {
		return err
	}
	rec := o.EventRecorder
	if rec == nil {
		rec = mgr.GetEventRecorder(EventReporter)
	}
	recorder := eventrecord.LeaderOnly(rec, o.Lease)
	for _, kind := range []string{v1alpha1.IssuerKind, v1alpha1.ClusterIssuerKind} {
		r := &issuers.IssuerReconciler{
			Kind: kind, Client: mgr.GetClient(), Clients: clients, ClusterResourceNamespace: o.ClusterResourceNamespace,
			Interval: o.HealthCheckInterval, Clock: clk, Jitter: jitter, Reachability: reach, SecretsNamespaceOnly: o.SecretsNamespaceOnly,
			Recorder: recorder, Lease: o.Lease,
		}
		if err := r.SetupWithManager(mgr); err != nil {
			return err
		}
		wakes.Register(kind, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	key, err := signing.LoadIssuanceKey(ctx, mgr.GetAPIReader(), mgr.GetClient(), o.ClusterResourceNamespace)
	if err != nil {
		return err
	}
	abandon := o.RevocationAbandonAfter
	if abandon <= 0 {
		abandon = revocation.DefaultRevocationAbandonAfter
	}
	if err := (&revocation.RevocationReconciler{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Clients: clients, Recorder: recorder,
		Clock: clk, Lease: o.Lease, AbandonAfter: abandon, IssuanceKey: key}).SetupWithManager(mgr); err != nil {
		return err
	}
	// Begun on election: unless the Lease says there was no predecessor,
	// or it handed over with nothing in flight, requests of either kind
	// that exist then may have been sent by it.
	if err := signing.IndexUnfinishedRequests(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return err
	}
	readers := signing.InventoryReaders{API: mgr.GetAPIReader(), Cache: mgr.GetCache(), SelectByIssuerGroup: o.SelectByIssuerGroup,
		OtherSignersCSR: o.OtherSignersCSR, FromCache: o.Lease == nil}
	attempts := signing.NewAttempts(clk, signing.Inventories(signing.CertificateRequestInventory(readers), signing.CertificateSigningRequestInventory(readers)))
	if o.Lease != nil {
		attempts.WithPredecessor(o.Lease.Predecessor)
		o.Lease.Drains(attempts.Drained)
	}
	if err := mgr.Add(attempts); err != nil {
		return err
	}
	ready := &signing.Readiness{Cache: mgr.GetCache(), Elected: mgr.Elected(), Attempts: attempts, LeaderElection: o.Lease != nil}
	if err := mgr.Add(ready); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("signing", ready.Check); err != nil {
		return err
	}
	signer := &signing.Signer{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Clock: clk, Jitter: jitter, Limits: o.RequestLimits,
		Lease: o.Lease, Settle: signing.SettleTime(o.EJBCATimeout), Attempts: attempts, Key: key}
	signing := signing.RequestSigning{
		Client: mgr.GetClient(), Clients: clients, Signer: signer, Recorder: recorder,
		ClusterResourceNamespace: o.ClusterResourceNamespace, RetryWindow: o.RetryWindow, Clock: clk, Jitter: jitter,
		MaxConcurrentReconciles: workers, Lease: o.Lease, Issuers: wakes, Gate: &signing.CallGate{},
	}
	if err := (&CertificateSigningRequestReconciler{RequestSigning: signing}).SetupWithManager(mgr); err != nil {
		return err
	}
	return (&CertificateRequestReconciler{RequestSigning: signing, IssuanceKey: key}).SetupWithManager(mgr)
}

// rateLimit is an issuer's rate limit, or the manager's default when it sets
// none; nil when neither bounds anything.
func rateLimit(spec *v1alpha1.RateLimit, def ejbca.Limit) *ejbca.Limit {
	if spec != nil {
		return &ejbca.Limit{QPS: float64(spec.QPS), Burst: int(spec.Burst), MaxConcurrent: int(spec.MaxConcurrent)}
	}
	if def.QPS <= 0 && def.MaxConcurrent <= 0 {
		return nil
	}
	return &def
}
