// Package devstack runs the whole product on one machine: a real
// kube-apiserver and etcd (envtest, binaries from bin/), cert-manager's own
// Certificate controllers and approver in-process, the EJBCA simulator, and
// the ejbca-issuer manager through the same code as main.go. The end-to-end
// tests, `make demo` and the benchmarks use it. The manager binary never
// links this package (it pulls in cert-manager's controller machinery).
package devstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	logf "github.com/cert-manager/cert-manager/pkg/logs"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
	"github.com/certctl-io/ejbca-issuer/internal/manager"
	"github.com/certctl-io/ejbca-issuer/internal/testenv"
)

// ClusterResourceNamespace is where the stack runs "the controller": the
// EJBCAClusterIssuer's Secrets live here.
const ClusterResourceNamespace = "ejbca-issuer"

// Options configure a stack.
type Options struct {
	// Dir receives the kubeconfig (kubeconfig) and the simulator's files.
	Dir string
	// Progress, when set, is told what the stack is doing.
	Progress func(format string, args ...any)
	// Log receives every log of the process (discarded if zero): the
	// manager's and controller-runtime's (log.SetLogger), client-go's
	// (klog.SetLogger) and cert-manager's (logs.Log and its controllers'
	// context). These are process-wide: Start routes them first thing.
	Log logr.Logger
	// Sim configures the EJBCA simulator (its Addr is always loopback).
	Sim ejbcasim.Config
	// Manager overrides the manager's settings; zero fields get defaults.
	// MetricsBindAddress and HealthProbeBindAddress default to "0" (off);
	// a host with port 0 (e.g. "127.0.0.1:0") gets a free port, which
	// Stack.MetricsAddr and Stack.HealthProbeAddr report.
	Manager manager.Options
	// NoManager leaves our manager out (a benchmark runs it as a process).
	NoManager bool
}

// Stack is a running stack. Stop it when done.
type Stack struct {
	Env        *envtest.Environment
	RESTConfig *rest.Config
	Client     client.Client
	Sim        *ejbcasim.Sim
	// Kubeconfig is the path of a kubeconfig for the API server (an admin).
	Kubeconfig string
	// MetricsAddr is the host:port of the manager's /metrics, empty when
	// the manager serves no metrics.
	MetricsAddr string
	// HealthProbeAddr is the host:port of the manager's /healthz and
	// /readyz, empty when it serves none.
	HealthProbeAddr string

	cancel  context.CancelFunc
	waitCM  func()
	mgrDone chan error
}

// Start brings the stack up. On error everything already started is stopped.
func Start(ctx context.Context, o Options) (s *Stack, err error) {
	progress := o.Progress
	if progress == nil {
		progress = func(string, ...any) {}
	}
	if o.Dir == "" {
		return nil, errors.New("devstack: Options.Dir is required")
	}
	log := o.Log
	if log.GetSink() == nil {
		log = logr.Discard()
	}
	RouteLogs(log)
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, err
	}
	// cert-manager's informers otherwise get "429 Retry-After 1s" on the
	// first watch-list of fresh CRDs; plain list+watch starts at once.
	_ = os.Setenv("KUBE_FEATURE_WatchListClient", "false")

	s = &Stack{}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	progress("starting kube-apiserver and etcd (envtest, binaries from bin/) with cert-manager's and our CRDs")
	start := time.Now()
	if s.Env, err = testenv.New(); err != nil {
		return nil, err
	}
	if s.RESTConfig, err = s.Env.Start(); err != nil {
		return nil, fmt.Errorf("starting the control plane: %w", err)
	}
	s.RESTConfig.QPS, s.RESTConfig.Burst = 200, 400
	progress("control plane up in %s at %s", time.Since(start).Round(time.Millisecond), s.RESTConfig.Host)
	if s.Client, err = client.New(s.RESTConfig, client.Options{Scheme: testenv.Scheme}); err != nil {
		return nil, err
	}
	s.Kubeconfig = filepath.Join(o.Dir, "kubeconfig")
	if err := WriteKubeconfig(s.RESTConfig, s.Kubeconfig); err != nil {
		return nil, err
	}
	if err := s.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ClusterResourceNamespace}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}

	progress("starting the EJBCA simulator")
	simCfg := o.Sim
	simCfg.Addr = "127.0.0.1:0"
	if s.Sim, err = ejbcasim.Start(simCfg); err != nil {
		return nil, fmt.Errorf("starting the EJBCA simulator: %w", err)
	}
	progress("EJBCA simulator at %s", s.Sim.BaseURL())

	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	progress("starting cert-manager's controllers in-process: %v", CertManagerControllers)
	if s.waitCM, err = runCertManager(runCtx, log.WithName("cert-manager"), s.Kubeconfig, ClusterResourceNamespace); err != nil {
		return nil, err
	}

	if !o.NoManager {
		progress("starting the ejbca-issuer manager")
		mo := o.Manager
		if mo.ClusterResourceNamespace == "" {
			mo.ClusterResourceNamespace = ClusterResourceNamespace
		}
		if mo.MaxConcurrentReconciles == 0 {
			mo.MaxConcurrentReconciles = 16
		}
		if mo.RetryWindow == 0 {
			mo.RetryWindow = time.Hour
		}
		if mo.HealthCheckInterval == 0 {
			mo.HealthCheckInterval = 5 * time.Minute
		}
		if mo.EJBCATimeout == 0 {
			mo.EJBCATimeout = 30 * time.Second
		}
		if mo.MetricsBindAddress, err = bindAddress(mo.MetricsBindAddress); err != nil {
			return nil, fmt.Errorf("the manager's metrics address: %w", err)
		}
		if mo.HealthProbeBindAddress, err = bindAddress(mo.HealthProbeBindAddress); err != nil {
			return nil, fmt.Errorf("the manager's health probe address: %w", err)
		}
		if mo.MetricsBindAddress != "0" {
			s.MetricsAddr = mo.MetricsBindAddress
		}
		if mo.HealthProbeBindAddress != "0" {
			s.HealthProbeAddr = mo.HealthProbeBindAddress
		}
		mgr, err := manager.New(s.RESTConfig, mo)
		if err != nil {
			return nil, err
		}
		s.mgrDone = make(chan error, 1)
		go func() { s.mgrDone <- mgr.Start(runCtx) }()
	}
	return s, nil
}

// RouteLogs sends every process-wide logger to log: controller-runtime's
// (log.SetLogger; without it controller-runtime prints "log.SetLogger(...)
// was never called" with a stack trace 30s after start), client-go's klog
// (cert-manager's event broadcasters otherwise print to stderr) and
// cert-manager's logs.Log. controller-runtime takes only the first
// SetLogger of a process; Start calls this before anything runs.
func RouteLogs(log logr.Logger) {
	crlog.SetLogger(log)
	klog.SetLogger(log)
	logf.Log = log.WithName("cert-manager")
}

// bindAddress returns "0" (off) for "", a free port on host for
// "host:0", and addr otherwise.
func bindAddress(addr string) (string, error) {
	if addr == "" || addr == "0" {
		return "0", nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port != "0" {
		return addr, nil
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Stop stops everything the stack started and waits for it.
func (s *Stack) Stop() {
	if s.cancel != nil {
		s.cancel()
	}
	if s.mgrDone != nil {
		<-s.mgrDone
	}
	if s.waitCM != nil {
		s.waitCM()
	}
	if s.Sim != nil {
		_ = s.Sim.Close()
	}
	if s.Env != nil && s.RESTConfig != nil {
		_ = s.Env.Stop()
	}
}

// WriteKubeconfig writes a kubeconfig for cfg (as envtest's admin user).
func WriteKubeconfig(cfg *rest.Config, path string) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin", Namespace: "default"}
	kc.CurrentContext = "envtest"
	return clientcmd.WriteToFile(*kc, path)
}

// Issuers creates, from the simulator's credentials, an EJBCAIssuer "ejbca"
// in namespace (mTLS) and an EJBCAClusterIssuer (OAuth2 client credentials),
// with their Secrets, and waits until both are Ready. certificateProfile is
// the profile both use (e.g. SERVER). The cluster issuer is shared by every
// namespace, so it is named after its profile: "ejbca" for SERVER,
// "ejbca-<profile>" (lower case) for any other, and callers that use
// different profiles at once never change each other's.
func (s *Stack) Issuers(ctx context.Context, namespace, certificateProfile string) (*v1alpha1.EJBCAIssuer, *v1alpha1.EJBCAClusterIssuer, error) {
	sim := s.Sim
	if err := s.ensureNamespace(ctx, namespace); err != nil {
		return nil, nil, err
	}
	objs := []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "ejbca-client"}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: sim.ClientCertPEM(), corev1.TLSPrivateKeyKey: sim.ClientKeyPEM()}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "ejbca-ca"},
			Data: map[string]string{"ca.crt": string(sim.CABundlePEM())}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ClusterResourceNamespace, Name: "ejbca-oauth"},
			Data: map[string][]byte{"client_id": []byte(sim.OAuthClientID()), "client_secret": []byte(sim.OAuthClientSecret())}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ClusterResourceNamespace, Name: "ejbca-ca"},
			Data: map[string]string{"ca.crt": string(sim.CABundlePEM())}},
	}
	for _, o := range objs {
		if err := s.Client.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, nil, err
		}
	}
	iss := &v1alpha1.EJBCAIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "ejbca"}, Spec: v1alpha1.IssuerSpec{
		URL: sim.URL(), CAName: "IssuingCA", CertificateProfileName: certificateProfile, EndEntityProfileName: "EMPTY",
		UseRequestedDuration: true,
		Auth:                 v1alpha1.AuthSpec{Mode: v1alpha1.AuthModeMTLS, MTLS: &v1alpha1.MTLSAuth{SecretName: "ejbca-client"}},
		CABundle:             &v1alpha1.CABundle{ConfigMapRef: &v1alpha1.ConfigMapKeySelector{Name: "ejbca-ca", Key: "ca.crt"}},
		Approval:             &v1alpha1.ApprovalSpec{PollInterval: &metav1.Duration{Duration: time.Second}},
	}}
	clusterName := "ejbca"
	if certificateProfile != "SERVER" {
		clusterName += "-" + strings.ToLower(certificateProfile)
	}
	ciss := &v1alpha1.EJBCAClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: clusterName}, Spec: v1alpha1.IssuerSpec{
		URL: sim.BaseURL(), CAName: "IssuingCA", CertificateProfileName: certificateProfile, EndEntityProfileName: "EMPTY",
		Auth: v1alpha1.AuthSpec{Mode: v1alpha1.AuthModeOAuth2, OAuth2: &v1alpha1.OAuth2Auth{
			TokenURL: sim.TokenURL(), ClientSecretRef: &v1alpha1.ClientSecretRef{Name: "ejbca-oauth"}, Audience: "ejbca"}},
		CABundle: &v1alpha1.CABundle{ConfigMapRef: &v1alpha1.ConfigMapKeySelector{Name: "ejbca-ca", Key: "ca.crt"}},
	}}
	for _, o := range []client.Object{iss, ciss} {
		if err := s.Client.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, nil, err
		}
	}
	for _, o := range []v1alpha1.Issuer{iss, ciss} {
		if err := s.WaitIssuerReady(ctx, o, 60*time.Second); err != nil {
			return nil, nil, err
		}
	}
	return iss, ciss, nil
}

func (s *Stack) ensureNamespace(ctx context.Context, name string) error {
	err := s.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// WaitIssuerReady waits for the issuer's Ready=True at its generation.
func (s *Stack) WaitIssuerReady(ctx context.Context, iss v1alpha1.Issuer, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if err := s.Client.Get(ctx, client.ObjectKeyFromObject(iss), iss); err != nil {
			return err
		}
		if v1alpha1.IsReady(iss) {
			return nil
		}
		if time.Now().After(deadline) {
			msg := "no Ready condition"
			if c := iss.GetStatus().ReadyCondition(); c != nil {
				msg = c.Reason + ": " + c.Message
			}
			return fmt.Errorf("%s %s not Ready after %s: %s", iss.GetObjectKind().GroupVersionKind().Kind, iss.GetName(), timeout, msg)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
