// Command ejbca-issuer is the manager of the ejbca-issuer cert-manager
// external issuer: it health-checks EJBCAIssuers and EJBCAClusterIssuers and
// signs the CertificateRequests that name them with EJBCA.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/certctl-io/ejbca-issuer/controllers/revocation"
	"github.com/certctl-io/ejbca-issuer/controllers/signing"
	"github.com/certctl-io/ejbca-issuer/internal/manager"
	"github.com/certctl-io/ejbca-issuer/internal/version"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "ejbca-issuer:", err)
		os.Exit(1)
	}
}

// defaultNamespace is the pod's own namespace (POD_NAMESPACE, or the service
// account's), else cert-manager's usual one.
func defaultNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil && len(b) > 0 {
		return strings.TrimSpace(string(b))
	}
	return "cert-manager"
}

func run(args []string) error {
	fs := flag.NewFlagSet("ejbca-issuer", flag.ContinueOnError)
	var (
		o           manager.Options
		logFormat   string
		logLevel    int
		showVersion bool
	)
	fs.StringVar(&o.ClusterResourceNamespace, "cluster-resource-namespace", defaultNamespace(),
		"Namespace where EJBCAClusterIssuers' Secrets and ConfigMaps are read (default: the pod's namespace).")
	fs.BoolVar(&o.LeaderElection, "leader-elect", false, "Elect a leader so that only one replica signs at a time.")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader election Lease (default: the cluster resource namespace).")
	fs.DurationVar(&o.LeaseDuration, "leader-election-lease-duration", 15*time.Second, "How long a standby waits after the leader's last renewal before taking over. The leader calls EJBCA only within half of it after its own last renewal.")
	fs.DurationVar(&o.RenewDeadline, "leader-election-renew-deadline", 10*time.Second, "How long the leader keeps trying to renew before it gives up leading.")
	fs.DurationVar(&o.RetryPeriod, "leader-election-retry-period", 2*time.Second, "Time between leader election attempts and renewals.")
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", ":8080", "Address of the Prometheus metrics endpoint; 0 disables it.")
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", ":8081", "Address of /healthz and /readyz; 0 disables them.")
	fs.BoolVar(&o.SecretsInClusterResourceNamespaceOnly, "secrets-in-cluster-resource-namespace-only", false,
		"Watch and read Secrets and ConfigMaps only in the cluster resource namespace (RBAC without cluster-wide Secret access); EJBCAIssuers then cannot read theirs.")
	fs.BoolVar(&o.EnablePprof, "enable-pprof", false, "Serve /debug/pprof on the metrics address.")
	fs.IntVar(&o.MaxConcurrentReconciles, "max-concurrent-reconciles", 16, "CertificateRequests signed concurrently; size it to EJBCA's capacity.")
	fs.DurationVar(&o.RetryWindow, "retry-window", time.Hour, "How long after a CertificateRequest's creation retryable EJBCA errors are retried before it is Failed.")
	fs.DurationVar(&o.HealthCheckInterval, "issuer-health-check-interval", 5*time.Minute, "Time between checks of a Ready issuer (jittered); failing issuers are re-checked with backoff from 1m.")
	fs.DurationVar(&o.EJBCATimeout, "ejbca-timeout", 30*time.Second, "Timeout of each call to EJBCA.")
	fs.Float64Var(&o.DefaultRateLimit.QPS, "ejbca-qps", 0, "Default rate limit on each issuer's EJBCA calls, in calls per second, for issuers without spec.rateLimit; 0: no limit.")
	fs.IntVar(&o.DefaultRateLimit.Burst, "ejbca-burst", 0, "Burst of --ejbca-qps (default: the qps).")
	fs.IntVar(&o.DefaultRateLimit.MaxConcurrent, "ejbca-max-concurrent", 0, "Default bound on each issuer's EJBCA calls in flight at once, for issuers without spec.rateLimit; 0: no bound.")
	fs.DurationVar(&o.RevocationAbandonAfter, "revocation-abandon-after", revocation.DefaultRevocationAbandonAfter, "How long a deleted CertificateRequest whose certificate must be revoked (issuer spec.revocation) waits for EJBCA before its finalizer is removed without revoking (Warning event, ejbca_issuer_revocations_total{outcome=\"abandoned\"}).")
	fs.IntVar(&o.RequestLimits.MaxCSRBytes, "max-csr-bytes", signing.DefaultMaxCSRBytes, "Largest CSR (PEM bytes of spec.request) sent to EJBCA; larger requests are Failed before EJBCA is called. 0: no limit.")
	fs.IntVar(&o.RequestLimits.MaxSANs, "max-csr-sans", signing.DefaultMaxSANs, "Most subject alternative names a CSR may carry; requests with more are Failed before EJBCA is called. 0: no limit.")
	var qps float64
	fs.Float64Var(&qps, "kube-api-qps", manager.DefaultKubeAPIQPS, "Queries per second to the Kubernetes API server, per client: the manager writes each certificate's status and its event through two clients, one write each, so this is roughly the most certificates per second it signs. The default does not bind below EJBCA's pace at the default workers (16 workers with EJBCA answering in 50 ms or more); the API server's priority and fairness protects it beyond that (see docs/performance.md).")
	fs.IntVar(&o.KubeAPIBurst, "kube-api-burst", manager.DefaultKubeAPIBurst, "Burst of queries to the Kubernetes API server, per client: roughly the certificates signed at once before --kube-api-qps paces them.")
	fs.StringVar(&logFormat, "log-format", "json", "Log format: json or text.")
	fs.IntVar(&logLevel, "log-level", 0, "Log verbosity: 0 info, 1 decisions, 2-4 debug (higher is capped at 4). Secrets are never logged at any level.")
	fs.BoolVar(&showVersion, "version", false, "Print the version and exit.")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if showVersion {
		fmt.Println(version.String())
		return nil
	}
	o.KubeAPIQPS = float32(qps)
	if logFormat != "json" && logFormat != "text" {
		return fmt.Errorf("--log-format must be json or text, not %q", logFormat)
	}
	logger := manager.NewLogger(logFormat, logLevel, os.Stderr)
	ctrl.SetLogger(logger)
	// client-go (leader election, reflectors) logs through klog: the same
	// lines, format and verbosity cap as everything else.
	klog.SetLogger(logger)
	log := ctrl.Log.WithName("setup")
	log.Info("starting ejbca-issuer", "version", version.Version, "commit", version.Commit, "clusterResourceNamespace", o.ClusterResourceNamespace,
		"maxConcurrentReconciles", o.MaxConcurrentReconciles, "leaderElection", o.LeaderElection)
	limit, ok, err := manager.SoftMemoryLimit(os.Getenv, os.ReadFile)
	if err != nil {
		return err
	}
	if ok {
		debug.SetMemoryLimit(limit)
		log.Info("Go memory limit set from the container's (MEMORY_LIMIT, or its cgroup's)", "GOMEMLIMIT", limit)
	}

	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("loading the Kubernetes client configuration: %w", err)
	}
	mgr, err := manager.New(cfg, o)
	if err != nil {
		return err
	}
	return mgr.Start(ctrl.SetupSignalHandler())
}
