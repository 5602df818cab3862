// Package failover runs the real manager binary as four processes with
// leader election against one control plane (envtest) and two in-process
// EJBCA simulators, and proves with the simulators' records that every
// CertificateRequest gets exactly one certificate when the leader is frozen
// (SIGSTOP) or killed (SIGKILL) with EJBCA calls in flight, and when EJBCA is
// slower than the manager's EJBCA timeout; that a leader frozen past its
// lease writes nothing once resumed (enrolments and a revocation); and that
// a rolling restart and a first start make no request wait.
//
// Everything the managers send goes through two proxies of this package on
// 127.0.0.1, which tell the processes apart by the socket each request came
// from (/proc): one in front of the kube-apiserver (it sees every lease
// renewal, status write and event, and can hold a response to freeze a
// process at an exact point), one in front of each simulator (it records
// every EJBCA call with the process that made it, when the simulator
// received it and when it finished it, and can freeze a process when it
// opens a connection).
package failover

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
	"github.com/certctl-io/ejbca-issuer/internal/testenv"
)

const (
	// clusterResourceNamespace holds the leader election Lease.
	clusterResourceNamespace = "ejbca-issuer"
	// namespace holds the issuers and the requests.
	namespace = "failover"

	// The managers' timing: a short lease so a standby takes over ~3.5 s
	// after the leader stops renewing, and an EJBCA timeout of 1 s, so the
	// settle time (2x timeout + 10 s) is 12 s.
	leaseDuration = 3 * time.Second
	renewDeadline = 2 * time.Second
	retryPeriod   = 500 * time.Millisecond
	ejbcaTimeout  = time.Second
	settleTime    = 2*ejbcaTimeout + 10*time.Second
	// replicas: a leader, a standby, one held frozen past the settle time
	// by a long round, and one restarting after its round.
	replicas = 4
	workers  = 8

	// issuerA serves the failover test (its simulator takes fastProcessing
	// for every enrolment); issuerB the slow-EJBCA test.
	issuerA        = "ejbca-a"
	issuerB        = "ejbca-b"
	fastProcessing = 500 * time.Millisecond
)

// suite is what TestMain starts for the whole package.
var suite struct {
	k8s        client.Client
	dir        string
	api        *apiProxy
	simA, simB *ejbcasim.Sim
	ejA, ejB   *ejbcaProxy
	pool       *pool
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) (code int) {
	start := time.Now()
	dir, err := os.MkdirTemp("", "ejbca-issuer-failover-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	suite.dir = dir
	defer func() {
		if code == 0 {
			os.RemoveAll(dir)
		} else {
			os.Remove(filepath.Join(dir, "ejbca-issuer"))
			fmt.Fprintln(os.Stderr, "the managers' logs are kept in", dir)
		}
	}()
	fail := func(what string, err error) int {
		fmt.Fprintf(os.Stderr, "%s: %v\n", what, err)
		return 1
	}

	// Build the manager while the control plane starts.
	root, err := testenv.RepoRoot()
	if err != nil {
		return fail("locating the repository", err)
	}
	bin := filepath.Join(dir, "ejbca-issuer")
	built := make(chan error, 1)
	go func() {
		cmd := exec.Command("go", "build", "-o", bin, ".")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			err = fmt.Errorf("%v\n%s", err, out)
		}
		built <- err
	}()

	env, err := testenv.New()
	if err != nil {
		return fail("control plane", err)
	}
	cfg, err := env.Start()
	if err != nil {
		return fail("starting the control plane", err)
	}
	defer func() { _ = env.Stop() }()
	cfg.QPS, cfg.Burst = 200, 400
	suite.k8s, err = client.New(cfg, client.Options{Scheme: testenv.Scheme})
	if err != nil {
		return fail("client", err)
	}
	ctx := context.Background()
	for _, ns := range []string{clusterResourceNamespace, namespace} {
		if err := suite.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return fail("namespace", err)
		}
	}

	ca, err := newTestCA()
	if err != nil {
		return fail("test CA", err)
	}
	suite.pool = newPool()
	suite.api, err = startAPIProxy(cfg, ca, suite.pool)
	if err != nil {
		return fail("API server proxy", err)
	}
	defer suite.api.close()

	suite.simA, err = ejbcasim.Start(ejbcasim.Config{Addr: "127.0.0.1:0"})
	if err != nil {
		return fail("simulator A", err)
	}
	defer suite.simA.Close()
	suite.simB, err = ejbcasim.Start(ejbcasim.Config{Addr: "127.0.0.1:0"})
	if err != nil {
		return fail("simulator B", err)
	}
	defer suite.simB.Close()
	// Every enrolment on A takes fastProcessing: long enough to freeze or
	// kill the leader while EJBCA works on it, short enough that an
	// undisturbed call is answered within the timeout.
	suite.simA.InjectFault("pkcs10enroll", ejbcasim.Fault{Processing: fastProcessing})
	suite.ejA, err = startEJBCAProxy(suite.simA, ca, suite.pool)
	if err != nil {
		return fail("EJBCA proxy A", err)
	}
	defer suite.ejA.close()
	suite.ejB, err = startEJBCAProxy(suite.simB, ca, suite.pool)
	if err != nil {
		return fail("EJBCA proxy B", err)
	}
	defer suite.ejB.close()

	if err := createIssuers(ctx, ca); err != nil {
		return fail("issuers", err)
	}
	kubeconfig, err := writeKubeconfig(filepath.Join(dir, "kubeconfig"), suite.api.url, ca.certPEM)
	if err != nil {
		return fail("kubeconfig", err)
	}
	if err := <-built; err != nil {
		return fail("building the manager", err)
	}
	suite.pool.start(bin, kubeconfig, dir, managerArgs())
	defer suite.pool.stop()
	for _, name := range []string{issuerA, issuerB} {
		if err := waitIssuerReady(ctx, name, 90*time.Second); err != nil {
			return fail("issuer "+name, err)
		}
	}
	fmt.Fprintf(os.Stderr, "failover suite ready in %s: %d managers, API proxy %s, EJBCA proxies %s and %s\n",
		time.Since(start).Round(time.Millisecond), replicas, suite.api.url, suite.ejA.url, suite.ejB.url)
	code = m.Run()
	if code != 0 {
		suite.pool.dumpLogs(os.Stderr, 40)
	}
	return code
}

func managerArgs() []string {
	return []string{
		"--leader-elect",
		"--leader-election-namespace=" + clusterResourceNamespace,
		"--leader-election-lease-duration=" + leaseDuration.String(),
		"--leader-election-renew-deadline=" + renewDeadline.String(),
		"--leader-election-retry-period=" + retryPeriod.String(),
		"--ejbca-timeout=" + ejbcaTimeout.String(),
		"--cluster-resource-namespace=" + clusterResourceNamespace,
		fmt.Sprintf("--max-concurrent-reconciles=%d", workers),
		"--metrics-bind-address=0",
		"--health-probe-bind-address=0",
		"--log-format=json",
		"--log-level=1",
	}
}

// writeKubeconfig points the managers at the API server proxy. It carries
// no credentials: the proxy forwards with the control plane's admin ones.
func writeKubeconfig(path, server string, caPEM []byte) (string, error) {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	kc.AuthInfos["manager"] = &clientcmdapi.AuthInfo{}
	kc.Contexts["manager"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "manager"}
	kc.CurrentContext = "manager"
	return path, clientcmd.WriteToFile(*kc, path)
}

// createIssuers makes issuerA and issuerB, each pointing at its EJBCA proxy,
// with one end entity per request (endEntityName: requestName).
func createIssuers(ctx context.Context, ca *testCA) error {
	objs := []client.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "proxy-ca"},
			Data: map[string]string{"ca.crt": string(ca.certPEM)}},
	}
	for _, x := range []struct {
		name string
		sim  *ejbcasim.Sim
		px   *ejbcaProxy
	}{{issuerA, suite.simA, suite.ejA}, {issuerB, suite.simB, suite.ejB}} {
		secret := x.name + "-client"
		objs = append(objs,
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: secret}, Type: corev1.SecretTypeTLS,
				Data: map[string][]byte{corev1.TLSCertKey: x.sim.ClientCertPEM(), corev1.TLSPrivateKeyKey: x.sim.ClientKeyPEM()}},
			&v1alpha1.EJBCAIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: x.name}, Spec: v1alpha1.IssuerSpec{
				URL: x.px.url, CAName: "IssuingCA", CertificateProfileName: "SERVER", EndEntityProfileName: "EMPTY",
				EndEntityName: v1alpha1.EndEntityNameRequestName,
				Auth:          v1alpha1.AuthSpec{Mode: v1alpha1.AuthModeMTLS, MTLS: &v1alpha1.MTLSAuth{SecretName: secret}},
				CABundle:      &v1alpha1.CABundle{ConfigMapRef: &v1alpha1.ConfigMapKeySelector{Name: "proxy-ca", Key: "ca.crt"}, ExcludeSystemRoots: true},
			}})
	}
	for _, o := range objs {
		if err := suite.k8s.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
		}
	}
	return nil
}

func waitIssuerReady(ctx context.Context, name string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		iss := &v1alpha1.EJBCAIssuer{}
		if err := suite.k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, iss); err != nil {
			last = err.Error()
		} else if v1alpha1.IsReady(iss) {
			return nil
		} else if c := iss.GetStatus().ReadyCondition(); c != nil {
			last = c.Reason + ": " + c.Message
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("not Ready after %s: %s", timeout, last)
}

// upstreamTLS is how a proxy reaches a simulator: its CA, and its
// administrator certificate (the managers' own is not forwarded).
func upstreamTLS(sim *ejbcasim.Sim) (*tls.Config, error) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(sim.CABundlePEM()) {
		return nil, fmt.Errorf("the simulator's CA bundle does not parse")
	}
	cert, err := tls.X509KeyPair(sim.ClientCertPEM(), sim.ClientKeyPEM())
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots, Certificates: []tls.Certificate{cert}}, nil
}

// restHost is the API server's URL in cfg.
func restHost(cfg *rest.Config) string {
	if strings.HasPrefix(cfg.Host, "https://") || strings.HasPrefix(cfg.Host, "http://") {
		return cfg.Host
	}
	return "https://" + cfg.Host
}
