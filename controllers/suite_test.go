package controllers_test

import (
	"bytes"
	"context"
	"crypto"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/controllers"
	"github.com/certctl-io/ejbca-issuer/controllers/signing"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
	"github.com/certctl-io/ejbca-issuer/internal/manager"
	"github.com/certctl-io/ejbca-issuer/internal/testenv"
	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

// The suite runs one control plane and one manager (the same code main.go
// runs) for the whole package. Each test makes its own namespace and, where
// it counts EJBCA calls, its own simulator.

const clusterResourceNamespace = "ejbca-issuer"

// retryWindow is short so the give-up path is testable; faults in other tests
// clear well within it.
const retryWindow = 25 * time.Second

var (
	k8s         client.Client
	restConfig  *rest.Config
	logs        = &syncBuffer{}
	metricsAddr string
	mgrCancel   context.CancelFunc
	// mgrCache is the running manager's cache, for tests of what it holds.
	mgrCache  cache.Cache
	mgrDone   chan struct{}
	mgrMu     sync.Mutex
	nsCounter atomic.Int64
)

// syncBuffer collects every log line of the manager, for the test that no
// secret is ever logged.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	ctrl.SetLogger(manager.NewLogger("json", 10, logs)) // the highest verbosity there is
	env, err := testenv.New()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	restConfig, err = env.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the control plane:", err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	restConfig.QPS, restConfig.Burst = 200, 400
	k8s, err = client.New(restConfig, client.Options{Scheme: testenv.Scheme})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: clusterResourceNamespace}}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	metricsAddr = freeAddr()
	if err := startManager(); err != nil {
		fmt.Fprintln(os.Stderr, "starting the manager:", err)
		return 1
	}
	code := m.Run()
	stopManager()
	if code != 0 {
		fmt.Fprintln(os.Stderr, "last manager log lines:\n"+tail(logs.String(), 60))
	}
	return code
}

func managerOptions() manager.Options {
	return manager.Options{
		Options: controllers.Options{
			ClusterResourceNamespace: clusterResourceNamespace,
			MaxConcurrentReconciles:  8,
			RetryWindow:              retryWindow,
			HealthCheckInterval:      5 * time.Minute,
			EJBCATimeout:             5 * time.Second,
			RequestLimits:            signing.RequestLimits{MaxCSRBytes: signing.DefaultMaxCSRBytes, MaxSANs: signing.DefaultMaxSANs},
		},
		MetricsBindAddress:     metricsAddr,
		HealthProbeBindAddress: "0",
		RestartableInProcess:   true,
	}
}

// startManager runs a manager in the background; stopManager stops it and
// waits until it has.
func startManager() error {
	mgrMu.Lock()
	defer mgrMu.Unlock()
	mgr, err := manager.New(restConfig, managerOptions())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager stopped:", err)
		}
	}()
	mgrCancel, mgrDone, mgrCache = cancel, done, mgr.GetCache()
	return nil
}

func stopManager() {
	mgrMu.Lock()
	defer mgrMu.Unlock()
	if mgrCancel != nil {
		mgrCancel()
		<-mgrDone
		mgrCancel = nil
	}
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// newNamespace creates a namespace of the test's own.
func newNamespace(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("t%d-%s", nsCounter.Add(1), strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())))
	if len(name) > 63 {
		name = strings.TrimRight(name[:63], "-")
	}
	if err := k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
	return name
}

// newSim starts a simulator of the test's own, closed at the end.
func newSim(t *testing.T, cfg ejbcasim.Config) *ejbcasim.Sim {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	sim, err := ejbcasim.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	return sim
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := k8s.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

func tlsSecret(ns, name string, certPEM, keyPEM []byte) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM}}
}

// simSecrets writes the simulator's client certificate, CA bundle, token and
// OAuth2 client into ns: ejbca-client (tls), ejbca-ca (ConfigMap, ca.crt),
// ejbca-token (token), ejbca-oauth (client_id, client_secret).
func simSecrets(t *testing.T, sim *ejbcasim.Sim, ns string) {
	t.Helper()
	create(t, tlsSecret(ns, "ejbca-client", sim.ClientCertPEM(), sim.ClientKeyPEM()))
	create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ejbca-ca"},
		Data: map[string]string{"ca.crt": string(sim.CABundlePEM())}})
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ejbca-token"},
		Data: map[string][]byte{"token": []byte(sim.StaticToken())}})
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ejbca-oauth"},
		Data: map[string][]byte{"client_id": []byte(sim.OAuthClientID()), "client_secret": []byte(sim.OAuthClientSecret())}})
}

// issuerSpec is a working mTLS spec for sim.
func issuerSpec(sim *ejbcasim.Sim) v1alpha1.IssuerSpec {
	return v1alpha1.IssuerSpec{
		URL: sim.URL(), CAName: "IssuingCA", CertificateProfileName: "SERVER", EndEntityProfileName: "EMPTY",
		Auth:     v1alpha1.AuthSpec{Mode: v1alpha1.AuthModeMTLS, MTLS: &v1alpha1.MTLSAuth{SecretName: "ejbca-client"}},
		CABundle: &v1alpha1.CABundle{ConfigMapRef: &v1alpha1.ConfigMapKeySelector{Name: "ejbca-ca", Key: "ca.crt"}, ExcludeSystemRoots: true},
	}
}

func oauthSpec(sim *ejbcasim.Sim) v1alpha1.IssuerSpec {
	s := issuerSpec(sim)
	s.Auth = v1alpha1.AuthSpec{Mode: v1alpha1.AuthModeOAuth2, OAuth2: &v1alpha1.OAuth2Auth{
		TokenURL: sim.TokenURL(), ClientSecretRef: &v1alpha1.ClientSecretRef{Name: "ejbca-oauth"}, Scopes: []string{"ejbca"}, Audience: "ejbca",
	}}
	return s
}

func newIssuer(t *testing.T, ns, name string, spec v1alpha1.IssuerSpec) *v1alpha1.EJBCAIssuer {
	t.Helper()
	iss := &v1alpha1.EJBCAIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
	create(t, iss)
	return iss
}

// waitIssuer waits for the issuer's Ready condition to have reason and
// returns the condition.
func waitIssuer(t *testing.T, iss v1alpha1.Issuer, reason string) metav1.Condition {
	t.Helper()
	return waitIssuerFor(t, iss, reason, 30*time.Second)
}

func waitIssuerFor(t *testing.T, iss v1alpha1.Issuer, reason string, timeout time.Duration) metav1.Condition {
	t.Helper()
	var got metav1.Condition
	testkit.Eventually(t, timeout, func() string {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(iss), iss); err != nil {
			return err.Error()
		}
		c := iss.GetStatus().ReadyCondition()
		if c == nil {
			return "no Ready condition"
		}
		got = *c
		if c.Reason != reason || c.ObservedGeneration != iss.GetGeneration() {
			return fmt.Sprintf("Ready %s/%s (generation %d of %d): %s", c.Status, c.Reason, c.ObservedGeneration, iss.GetGeneration(), c.Message)
		}
		return ""
	})
	return got
}

type crOption = func(*cmapi.CertificateRequest)

func clusterIssuerRef(name string) crOption {
	return func(cr *cmapi.CertificateRequest) {
		cr.Spec.IssuerRef = cmmeta.IssuerReference{Group: v1alpha1.GroupVersion.Group, Kind: v1alpha1.ClusterIssuerKind, Name: name}
	}
}

func annotate(k, v string) crOption {
	return func(cr *cmapi.CertificateRequest) {
		if cr.Annotations == nil {
			cr.Annotations = map[string]string{}
		}
		cr.Annotations[k] = v
	}
}

// newRequest creates a CertificateRequest for issuer name in ns, as
// cert-manager would for Certificate certName, without approving it.
func newRequest(t *testing.T, ns, issuerName, certName string, csrPEM []byte, opts ...crOption) *cmapi.CertificateRequest {
	t.Helper()
	named := func(cr *cmapi.CertificateRequest) {
		cr.Annotations = map[string]string{cmapi.CertificateNameKey: certName}
	}
	cr := testkit.CertificateRequest(ns, certName+"-", csrPEM, testkit.IssuerRef(v1alpha1.IssuerKind, issuerName), append([]crOption{named}, opts...)...)
	create(t, cr)
	return cr
}

// setCondition sets a condition the way cert-manager's approver does: as a
// field manager of its own, so our writes must leave it alone.
func setCondition(t *testing.T, cr *cmapi.CertificateRequest, typ cmapi.CertificateRequestConditionType, reason string) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, func() string {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(cr), cr); err != nil {
			return err.Error()
		}
		now := metav1.Now()
		cr.Status.Conditions = append(cr.Status.Conditions, cmapi.CertificateRequestCondition{
			Type: typ, Status: cmmeta.ConditionTrue, Reason: reason, Message: "set by the test", LastTransitionTime: &now})
		if err := k8s.Status().Update(context.Background(), cr, client.FieldOwner("cert-manager-certificaterequests-approver")); err != nil {
			return err.Error()
		}
		return ""
	})
}

func approve(t *testing.T, cr *cmapi.CertificateRequest) {
	t.Helper()
	setCondition(t, cr, cmapi.CertificateRequestConditionApproved, "cert-manager.io")
}

// requestFor creates and approves a request.
func requestFor(t *testing.T, ns, issuerName, certName string, opts ...crOption) (*cmapi.CertificateRequest, crypto.Signer) {
	t.Helper()
	key, csr := testkit.CSR(t, testkit.CommonName(certName+".example.com"), testkit.DNSNames(certName+".example.com"))
	cr := newRequest(t, ns, issuerName, certName, csr, opts...)
	approve(t, cr)
	return cr, key
}

func readyOf(cr *cmapi.CertificateRequest) *cmapi.CertificateRequestCondition {
	return apiutil.GetCertificateRequestCondition(cr, cmapi.CertificateRequestConditionReady)
}

// waitRequest waits until the request's Ready reason is reason (and, when
// message is not empty, its message contains it).
func waitRequest(t *testing.T, cr *cmapi.CertificateRequest, reason, message string, timeout time.Duration) *cmapi.CertificateRequestCondition {
	t.Helper()
	var got *cmapi.CertificateRequestCondition
	testkit.Eventually(t, timeout, func() string {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(cr), cr); err != nil {
			return err.Error()
		}
		got = readyOf(cr)
		if got == nil {
			return "no Ready condition"
		}
		if got.Reason != reason || !strings.Contains(got.Message, message) {
			return fmt.Sprintf("Ready %s/%s: %q (want %s containing %q)", got.Status, got.Reason, got.Message, reason, message)
		}
		return ""
	})
	return got
}

// enrolments counts certificates the simulator issued to an end entity.
func enrolments(sim *ejbcasim.Sim, username string) int {
	n := 0
	for _, c := range sim.Issued() {
		if c.Username == username {
			n++
		}
	}
	return n
}

// update re-reads obj, applies mutate and writes it, retrying on conflicts.
func update[T client.Object](t *testing.T, obj T, mutate func(T)) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, func() string {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err.Error()
		}
		mutate(obj)
		if err := k8s.Update(context.Background(), obj); err != nil {
			return err.Error()
		}
		return ""
	})
}
