// Package manager assembles the controller-runtime manager that runs
// ejbca-issuer. main.go, the end-to-end tests, the demo and the benchmarks
// all start it through New, so they run the same code.
package manager

import (
	"context"
	"fmt"
	"net/http"
	"net/http/pprof"
	"os"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	eventsv1client "k8s.io/client-go/kubernetes/typed/events/v1"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/controllers"
	"github.com/certctl-io/ejbca-issuer/controllers/signing"
	"github.com/certctl-io/ejbca-issuer/internal/credentials"
	"github.com/certctl-io/ejbca-issuer/internal/leadership"
	"github.com/certctl-io/ejbca-issuer/internal/metrics"
)

// The manager's default client limits (--kube-api-qps, --kube-api-burst).
// A worker signs at most one certificate per EJBCA round trip, and each
// certificate costs one write on each of two clients (the status apply, the
// event), so 16 workers with EJBCA answering in 50 ms or more need at most
// 320 writes per second per client: the defaults do not bind below EJBCA's
// pace. They still cap a runaway loop at that rate; beyond them the API
// server protects itself with priority and fairness (the manager's service
// account falls in the workload-low priority level; excess requests are
// queued, then refused with 429 and a Retry-After that client-go honours).
const (
	DefaultKubeAPIQPS   = 320
	DefaultKubeAPIBurst = 640
)

// Options are the manager's settings; main.go fills them from flags.
type Options struct {
	controllers.Options

	LeaderElection          bool
	LeaderElectionNamespace string
	// LeaseDuration, RenewDeadline and RetryPeriod tune leader election;
	// zero means 15s, 10s and 2s.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	MetricsBindAddress                        string
	HealthProbeBindAddress                    string
	// EnablePprof serves net/http/pprof on the metrics address.
	EnablePprof bool
	// KubeAPIQPS and KubeAPIBurst limit the manager's API server client
	// (each of its REST clients); zero keeps the rest config's.
	KubeAPIQPS   float32
	KubeAPIBurst int
	// SecretsInClusterResourceNamespaceOnly watches and reads Secrets and
	// ConfigMaps only in the cluster resource namespace, for installs whose
	// RBAC grants no cluster-wide Secret access: only EJBCAClusterIssuers
	// can then be used (an EJBCAIssuer's Secrets cannot be read).
	SecretsInClusterResourceNamespaceOnly bool
	// RestartableInProcess allows a second manager in the same process
	// after the first stopped (tests that restart the manager).
	RestartableInProcess bool
}

// LeaderElectionID is the Lease the replicas compete for.
const LeaderElectionID = "ejbca-issuer.certctl.io"

// Scheme knows the kinds the manager reads and writes.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, cmapi.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}

// New builds the manager with both controllers registered.
//
// Secrets are never cached in full: the controllers watch Secrets and
// ConfigMaps as metadata only and read the few they need directly from the
// API server (mgr.GetAPIReader), so memory does not grow with the number or
// size of Secrets in the cluster.
func New(cfg *rest.Config, o Options) (ctrl.Manager, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(metrics.TimeKubeRequests)
	if o.KubeAPIQPS > 0 {
		cfg.QPS = o.KubeAPIQPS
	}
	if o.KubeAPIBurst > 0 {
		cfg.Burst = o.KubeAPIBurst
	}
	if o.ClusterResourceNamespace == "" {
		return nil, fmt.Errorf("the cluster resource namespace is not set")
	}
	leNamespace := o.LeaderElectionNamespace
	if leNamespace == "" {
		leNamespace = o.ClusterResourceNamespace
	}
	metricsOpts := metricsserver.Options{BindAddress: o.MetricsBindAddress}
	if o.EnablePprof {
		metricsOpts.ExtraHandlers = map[string]http.Handler{
			"/debug/pprof/":        http.HandlerFunc(pprof.Index),
			"/debug/pprof/cmdline": http.HandlerFunc(pprof.Cmdline),
			"/debug/pprof/profile": http.HandlerFunc(pprof.Profile),
			"/debug/pprof/symbol":  http.HandlerFunc(pprof.Symbol),
			"/debug/pprof/trace":   http.HandlerFunc(pprof.Trace),
		}
	}
	renew, lease, retry := 10*time.Second, 15*time.Second, 2*time.Second
	if o.LeaseDuration > 0 {
		lease = o.LeaseDuration
	}
	if o.RenewDeadline > 0 {
		renew = o.RenewDeadline
	}
	if o.RetryPeriod > 0 {
		retry = o.RetryPeriod
	}
	if !(retry < renew && renew < lease) {
		return nil, fmt.Errorf("leader election needs retry period (%s) < renew deadline (%s) < lease duration (%s)", retry, renew, lease)
	}
	var held *leadership.Lease
	var lock resourcelock.Interface
	if o.LeaderElection {
		// Another candidate takes over a lease duration after it saw our
		// last renewal, compared in whole seconds (client-go), so up to a
		// second and a retry period sooner than a full lease after it was
		// sent. Trusting at most half the lease, and never past that, leaves
		// room for the EJBCA call that follows the check to start.
		trust := min(lease/2, lease-time.Second-retry)
		if trust <= 0 {
			return nil, fmt.Errorf("a leader election lease of %s is too short: it must outlast a second and the retry period (%s)", lease, retry)
		}
		held = leadership.New(clock.RealClock{}, trust)
		l, err := leaderElectionLock(cfg, leNamespace, renew)
		if err != nil {
			return nil, err
		}
		lock = held.Watch(l)
	}
	o.Options.Lease = held
	broadcaster, err := holderOnlyBroadcaster(cfg, held)
	if err != nil {
		return nil, err
	}
	o.Options.EventRecorder = broadcaster.NewRecorder(Scheme(), controllers.EventReporter)
	selectByGroup, err := signing.IssuerGroupSelectable(cfg)
	if err != nil {
		ctrl.Log.WithName("setup").Info("CertificateRequests of other issuers are cached as stubs: the API server does not select them by issuer group", "reason", err.Error())
	}
	o.Options.SelectByIssuerGroup = selectByGroup
	o.Options.SecretsNamespaceOnly = o.SecretsInClusterResourceNamespaceOnly
	others := newOtherSigners()
	o.Options.OtherSignersCSR = others.Has
	cache, err := cacheOptions(cfg, o, selectByGroup, others)
	if err != nil {
		return nil, err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  Scheme(),
		Metrics:                 metricsOpts,
		HealthProbeBindAddress:  o.HealthProbeBindAddress,
		LeaderElection:          o.LeaderElection,
		LeaderElectionID:        LeaderElectionID,
		LeaderElectionNamespace: leNamespace,
		// No release on the way out: a leader woken from a freeze releases
		// with what it last saw, which can hand the lease away from the
		// process that took over meanwhile, and two processes then act
		// while each trusts its own last renewal. A clean shutdown costs
		// the standby one lease duration of waiting instead.
		LeaderElectionReleaseOnCancel:       false,
		LeaderElectionResourceLockInterface: lock,
		LeaseDuration:                       &lease,
		RenewDeadline:                       &renew,
		RetryPeriod:                         &retry,
		Controller:                          config.Controller{SkipNameValidation: &o.RestartableInProcess},
		Cache:                               cache,
		NewClient:                           newClient,
	})
	if err != nil {
		return nil, err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, err
	}
	metrics.Leader.Set(0)
	if err := mgr.Add(leaderGauge{}); err != nil {
		return nil, err
	}
	if err := mgr.Add(releaseStartupMemory{cache: mgr.GetCache()}); err != nil {
		return nil, err
	}
	if err := controllers.Setup(mgr, o.Options); err != nil {
		return nil, err
	}
	mgr = recording{Manager: mgr, events: broadcaster}
	if held != nil {
		return handingOver{Manager: mgr, lease: held}, nil
	}
	return mgr, nil
}

// recording is a manager that stops its event broadcaster once it has
// stopped, as controller-runtime stops its own.
type recording struct {
	ctrl.Manager
	events events.EventBroadcaster
}

func (m recording) Start(ctx context.Context) error {
	defer m.events.Shutdown()
	return m.Manager.Start(ctx)
}

// handingOver is a manager that, once stopped cleanly (every controller
// returned within the graceful shutdown timeout), hands its lease over:
// when nothing it sent to EJBCA is in flight or unanswered it says so on
// the Lease and shortens it, so the next leader takes over within seconds
// and neither searches nor waits for its requests (docs/reliability.md).
// A stop that did not drain, a crash or a kill leave the Lease as it was.
type handingOver struct {
	ctrl.Manager
	lease *leadership.Lease
}

// handOverTimeout bounds the Lease read and write on the way out.
const handOverTimeout = 5 * time.Second

func (m handingOver) Start(ctx context.Context) error {
	err := m.Manager.Start(ctx)
	if err != nil {
		return err
	}
	log := ctrl.Log.WithName("leader-election")
	hctx, cancel := context.WithTimeout(context.Background(), handOverTimeout)
	defer cancel()
	switch handed, herr := m.lease.HandOver(hctx); {
	case herr != nil:
		log.Error(herr, "handing the lease over; the next leader treats enrolments as possibly in flight")
	case handed:
		log.Info("handed the lease over with no EJBCA call in flight")
	default:
		log.Info("not handing the lease over (not its holder, or enrolments may be in flight): the next leader searches before enrolling")
	}
	return nil
}

// leaderElectionLock is the Lease lock controller-runtime would build, built
// here so that leadership.Lease can watch its renewals.
func leaderElectionLock(cfg *rest.Config, namespace string, renew time.Duration) (resourcelock.Interface, error) {
	host, err := os.Hostname()
	if err != nil {
		return nil, err
	}
	id := host + "_" + string(uuid.NewUUID())
	cfg = rest.AddUserAgent(rest.CopyConfig(cfg), "leader-election")
	// A hung request must not outlast the renew deadline.
	cfg.Timeout = max(renew/2, time.Second)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events(namespace)})
	recorder := broadcaster.NewRecorder(Scheme(), corev1.EventSource{Component: id})
	return resourcelock.New(resourcelock.LeasesResourceLock, namespace, LeaderElectionID, cs.CoreV1(), cs.CoordinationV1(),
		resourcelock.ResourceLockConfig{Identity: id, EventRecorder: recorder})
}

// holderOnlyBroadcaster records events through a sink that checks the
// lease (when there is one: nil without leader election) right before each
// write: the broadcaster sends from a queue, and a leader frozen with events
// queued must not send them once it wakes deposed. Recording starts at
// once, as controller-runtime's own does, so no event recorded before the
// manager starts is lost.
//
// Events are a built-in type, so they go as protobuf, which costs the
// manager and the API server less than JSON for the one event of every
// certificate (CertificateRequests, a CRD, can only be JSON).
func holderOnlyBroadcaster(cfg *rest.Config, lease *leadership.Lease) (events.EventBroadcaster, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.ContentType = runtime.ContentTypeProtobuf
	cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	cs, err := eventsv1client.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	b := events.NewBroadcaster(leadership.HolderOnly(&events.EventSinkImpl{Interface: cs}, lease))
	if err := b.StartRecordingToSinkWithContext(context.Background()); err != nil {
		return nil, err
	}
	return b, nil
}

// The leader election Lease lives in the leader election namespace (the
// cluster resource namespace by default); the chart binds this as a Role there.
// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=ejbca-issuer,resources=leases,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",namespace=ejbca-issuer,resources=events,verbs=create;patch

// cacheOptions strips managedFields from everything cached, never caches a
// CSR of another signer (otherSigners), keeps requests and Certificates in the shape the controllers need (signing.ShapeOf:
// other issuers' and signers' as stubs, final ones of ours as a record),
// lists CertificateRequests in that shape (requestLister), watches only
// those of our API group when the API server can select them by
// spec.issuerRef.group, and, when asked, limits the Secret and ConfigMap
// metadata watches to the cluster resource namespace.
func cacheOptions(cfg *rest.Config, o Options, selectByGroup bool, others *otherSigners) (cache.Options, error) {
	requests := cache.ByObject{Transform: signing.CacheCertificateRequest}
	if selectByGroup {
		requests.Field = fields.OneTermEqualSelector(signing.IssuerGroupField, v1alpha1.GroupVersion.Group)
	}
	field := ""
	if requests.Field != nil {
		field = requests.Field.String()
	}
	// The list's items are typed (a CertificateRequestList): trimmed there,
	// held as the informer's transform makes them.
	lister, err := newRequestLister(cfg, field, signing.TrimCertificateRequest)
	if err != nil {
		return cache.Options{}, err
	}
	opts := cache.Options{
		NewInformer: func(lw toolscache.ListerWatcher, obj runtime.Object, resync time.Duration, indexers toolscache.Indexers) toolscache.SharedIndexInformer {
			switch obj.(type) {
			case *cmapi.CertificateRequest:
				lw = lister // controller-runtime's own is not used
			case *certificatesv1.CertificateSigningRequest:
				lw = others.over(lw)
			}
			return toolscache.NewSharedIndexInformer(lw, obj, resync, indexers)
		},
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&cmapi.CertificateRequest{}:                 requests,
			&certificatesv1.CertificateSigningRequest{}: {Transform: signing.TrimCertificateSigningRequest},
			&cmapi.Certificate{}:                        {Transform: signing.TrimCertificate},
		},
	}
	if o.SecretsInClusterResourceNamespaceOnly {
		only := map[string]cache.Config{o.ClusterResourceNamespace: {}}
		opts.ByObject[credentials.KindSecret.Metadata()] = cache.ByObject{Namespaces: only}
		opts.ByObject[credentials.KindConfigMap.Metadata()] = cache.ByObject{Namespaces: only}
	}
	return opts, nil
}
