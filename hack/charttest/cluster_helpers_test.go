package charttest

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// The control plane: kube-apiserver and etcd from the repository's bin/
// (make control-plane), started once for the package, on 127.0.0.1, with
// cert-manager's CRDs (for CertificateRequests) and a stand-in ServiceMonitor
// CRD. Our own CRDs are not preinstalled: the chart installs them.
var cp struct {
	once    sync.Once
	err     error
	env     *envtest.Environment
	cfg     *rest.Config
	k8s     client.Client
	cs      *kubernetes.Clientset
	dyn     *dynamic.DynamicClient
	started time.Duration
}

// warnings collects the API server's warnings (deprecations, Pod Security
// "would violate" messages) for the admin client.
var warnings struct {
	mu   sync.Mutex
	list []string
}

type warningRecorder struct{}

func (warningRecorder) HandleWarningHeader(code int, agent, text string) {
	warnings.mu.Lock()
	defer warnings.mu.Unlock()
	warnings.list = append(warnings.list, text)
}

func takeWarnings() []string {
	warnings.mu.Lock()
	defer warnings.mu.Unlock()
	w := warnings.list
	warnings.list = nil
	return w
}

func controlPlane(t testing.TB) {
	t.Helper()
	cp.once.Do(func() {
		start := time.Now()
		cp.err = startControlPlane()
		cp.started = time.Since(start)
	})
	if cp.err != nil {
		t.Fatalf("starting the control plane: %v", cp.err)
	}
}

func startControlPlane() error {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = filepath.Join(repoRoot, "bin")
	}
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(assets, b)); err != nil {
			return fmt.Errorf("%s not in %s: run `make control-plane` first", b, assets)
		}
	}
	out, err := exec.Command("go", "list", "-C", repoRoot, "-m", "-f", "{{.Dir}}", "github.com/cert-manager/cert-manager").Output()
	if err != nil {
		return fmt.Errorf("locating cert-manager's CRDs (go list -m github.com/cert-manager/cert-manager in the main module): %w", err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		return err
	}
	cp.env = &envtest.Environment{
		Scheme:                   scheme,
		BinaryAssetsDirectory:    assets,
		DownloadBinaryAssets:     false,
		ErrorIfCRDPathMissing:    true,
		CRDDirectoryPaths:        []string{filepath.Join(strings.TrimSpace(string(out)), "deploy", "crds"), filepath.Join("testdata", "crds")},
		ControlPlaneStartTimeout: 90 * time.Second,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	cfg, err := cp.env.Start()
	if err != nil {
		return err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 200, 400
	cfg.WarningHandler = warningRecorder{}
	cp.cfg = cfg
	if cp.k8s, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	if cp.cs, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	cp.dyn, err = dynamic.NewForConfig(cfg)
	return err
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls f until it returns "" or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, f func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := f()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func ensureNamespace(t testing.TB, name string, labels map[string]string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if err := cp.k8s.Create(ctxFor(t, 10*time.Second), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// apply server-side applies objects as `kubectl apply --server-side
// --force-conflicts` (or with --dry-run=server) would, with strict field
// validation: CRDs first (waiting until they are established), then the
// rest.
func apply(t testing.TB, objs []*unstructured.Unstructured, manager string, dryRun bool) {
	t.Helper()
	ctx := ctxFor(t, 60*time.Second)
	var crds, rest []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" || o.GetKind() == "Namespace" {
			crds = append(crds, o)
		} else {
			rest = append(rest, o)
		}
	}
	for _, group := range [][]*unstructured.Unstructured{crds, rest} {
		for _, o := range group {
			if err := applyOne(ctx, o, manager, dryRun); err != nil {
				t.Fatalf("applying %s (dry run %v): %v", id(o), dryRun, err)
			}
		}
		if !dryRun {
			for _, o := range group {
				if o.GetKind() == "CustomResourceDefinition" {
					waitEstablished(t, o.GetName())
				}
			}
		}
	}
}

func applyOne(ctx context.Context, o *unstructured.Unstructured, manager string, dryRun bool) error {
	gvk := o.GroupVersionKind()
	mapping, err := cp.k8s.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		cp.k8s.RESTMapper().(meta.ResettableRESTMapper).Reset()
		mapping, err = cp.k8s.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return err
	}
	data, err := json.Marshal(o.Object)
	if err != nil {
		return err
	}
	force := true
	opts := metav1.PatchOptions{FieldManager: manager, Force: &force, FieldValidation: "Strict"}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	var r dynamic.ResourceInterface = cp.dyn.Resource(mapping.Resource)
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		r = cp.dyn.Resource(mapping.Resource).Namespace(o.GetNamespace())
	}
	_, err = r.Patch(ctx, o.GetName(), types.ApplyPatchType, data, opts)
	return err
}

func waitEstablished(t testing.TB, name string) {
	t.Helper()
	eventually(t, 30*time.Second, func() string {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := cp.k8s.Get(context.Background(), client.ObjectKey{Name: name}, &crd); err != nil {
			return err.Error()
		}
		for _, c := range crd.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				return ""
			}
		}
		return "CRD " + name + " not established"
	})
}

// installs memoizes the releases installed for real, so that tests can run
// alone or in any order.
var installs = struct {
	sync.Mutex
	done map[string][]*unstructured.Unstructured
}{done: map[string][]*unstructured.Unstructured{}}

// restrictedLabels make the namespace enforce and warn on the restricted Pod
// Security Standard.
var restrictedLabels = map[string]string{
	"pod-security.kubernetes.io/enforce": "restricted",
	"pod-security.kubernetes.io/warn":    "restricted",
}

// installChart renders the chart and applies it for real, like
// `helm install --namespace ns release charts/ejbca-issuer`, into a namespace
// that enforces the restricted Pod Security Standard. It fails on any API
// server warning.
func installChart(t testing.TB, release, namespace string, vals map[string]any) []*unstructured.Unstructured {
	t.Helper()
	controlPlane(t)
	installs.Lock()
	defer installs.Unlock()
	if objs, ok := installs.done[release]; ok {
		return objs
	}
	objs := mustRender(t, release, namespace, vals)
	ensureNamespace(t, namespace, restrictedLabels)
	takeWarnings()
	apply(t, objs, "helm", false)
	if w := takeWarnings(); len(w) > 0 {
		t.Errorf("installing release %s: API server warnings: %q", release, w)
	}
	installs.done[release] = objs
	return objs
}

// installKustomize applies `kustomize build config/default` for real.
func installKustomize(t testing.TB) []*unstructured.Unstructured {
	t.Helper()
	controlPlane(t)
	installs.Lock()
	defer installs.Unlock()
	if objs, ok := installs.done["kustomize"]; ok {
		return objs
	}
	objs := kustomizeBuild(t)
	takeWarnings()
	apply(t, objs, "kubectl", false)
	if w := takeWarnings(); len(w) > 0 {
		t.Errorf("applying config/default: API server warnings: %q", w)
	}
	installs.done["kustomize"] = objs
	return objs
}

func serviceAccountUser(namespace, name string) (string, []string) {
	return "system:serviceaccount:" + namespace + ":" + name,
		[]string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"}
}

// allowed asks the API server's authorizer (SubjectAccessReview) whether
// user may do the thing.
func allowed(t testing.TB, user string, groups []string, attrs authorizationv1.ResourceAttributes) bool {
	t.Helper()
	sar, err := cp.cs.AuthorizationV1().SubjectAccessReviews().Create(ctxFor(t, 10*time.Second), &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{User: user, Groups: groups, ResourceAttributes: &attrs},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return sar.Status.Allowed
}

// tokenConfig returns a client configuration that authenticates as the
// ServiceAccount with a bound token from the TokenRequest API: what the
// kubelet mounts into the manager's pod.
func tokenConfig(t testing.TB, namespace, name string) *rest.Config {
	t.Helper()
	exp := int64(3600)
	tr, err := cp.cs.CoreV1().ServiceAccounts(namespace).CreateToken(ctxFor(t, 10*time.Second), name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("requesting a token for ServiceAccount %s/%s: %v", namespace, name, err)
	}
	return &rest.Config{Host: cp.cfg.Host, BearerToken: tr.Status.Token, TLSClientConfig: rest.TLSClientConfig{CAData: cp.cfg.CAData}}
}

func writeKubeconfig(t testing.TB, cfg *rest.Config) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["manager"] = &clientcmdapi.AuthInfo{Token: cfg.BearerToken}
	kc.Contexts["manager"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "manager"}
	kc.CurrentContext = "manager"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// The EJBCA simulator (hack/ejbca-sim), one for the package.
var sim struct {
	once                         sync.Once
	err                          error
	cmd                          *exec.Cmd
	dir                          string
	url, baseURL, tokenURL       string
	caPEM, clientCert, clientKey []byte
	oauth                        struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
}

func simulator(t testing.TB) {
	t.Helper()
	bin := simBinary(t)
	sim.once.Do(func() { sim.err = startSim(bin) })
	if sim.err != nil {
		t.Fatalf("starting the EJBCA simulator: %v", sim.err)
	}
}

func startSim(bin string) error {
	dir, err := os.MkdirTemp("", "ejbca-issuer-charttest-sim-")
	if err != nil {
		return err
	}
	sim.dir = dir
	cmd := exec.Command(bin, "--addr", "127.0.0.1:0", "--out", dir, "--approval-required", "APPROVAL")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	sim.cmd = cmd
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	timeout := time.After(30 * time.Second)
	for sim.tokenURL == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				return fmt.Errorf("ejbca-sim exited: %v", cmd.Wait())
			}
			if v, ok := strings.CutPrefix(line, "EJBCA simulator listening on "); ok {
				sim.url = strings.TrimSpace(v)
			}
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "REST API:"); ok {
				sim.baseURL = strings.TrimSpace(v)
			}
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "token URL:"); ok {
				sim.tokenURL = strings.TrimSpace(v)
			}
		case <-timeout:
			return fmt.Errorf("ejbca-sim printed no URLs within 30s")
		}
	}
	go func() {
		for range lines { // keep draining stdout
		}
	}()
	read := func(name string) []byte {
		b, e := os.ReadFile(filepath.Join(dir, name))
		if e != nil && err == nil {
			err = e
		}
		return b
	}
	sim.caPEM, sim.clientCert, sim.clientKey = read("ca.crt"), read("client.crt"), read("client.key")
	if err == nil {
		err = json.Unmarshal(read("oauth.json"), &sim.oauth)
	}
	if sim.url == "" || sim.baseURL == "" {
		return fmt.Errorf("ejbca-sim URLs not found in its output")
	}
	return err
}

// approveInEJBCA approves a pending EJBCA approval request as an
// administrator would, over the REST API with the admin client certificate.
func approveInEJBCA(t testing.TB, requestID string) {
	t.Helper()
	cert, err := tls.X509KeyPair(sim.clientCert, sim.clientKey)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(sim.caPEM)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}}}}
	resp, err := hc.Post(sim.baseURL+"/v1/approval/"+requestID+"/process", "application/json", strings.NewReader(`{"approve":true,"comment":"approved by the chart test"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("approving EJBCA request %s: %s %s", requestID, resp.Status, body)
	}
}

// manager is a running ejbca-issuer process.
type manager struct {
	cmd        *exec.Cmd
	log        *syncBuffer
	healthAddr string
	done       chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startManager runs the manager binary (built like the Dockerfile) as the
// Deployment's pod would: the container's args, POD_NAMESPACE from the
// downward API, and the ServiceAccount's token as its only credential. Only
// the listen addresses are moved to 127.0.0.1 (appended flags override the
// chart's). It waits until /healthz and /readyz, the probes' paths, answer.
func startManager(t testing.TB, namespace, serviceAccount string, args []string) *manager {
	t.Helper()
	kubeconfig := writeKubeconfig(t, tokenConfig(t, namespace, serviceAccount))
	m := &manager{log: &syncBuffer{}, healthAddr: freePort(t), done: make(chan error, 1)}
	args = append(append([]string{}, args...), "--metrics-bind-address=127.0.0.1:0", "--health-probe-bind-address="+m.healthAddr)
	m.cmd = exec.Command(managerBinary(t), args...)
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "KUBECONFIG=") && !strings.HasPrefix(e, "POD_NAMESPACE=") && !strings.HasPrefix(e, "KUBERNETES_") {
			env = append(env, e)
		}
	}
	m.cmd.Env = append(env, "KUBECONFIG="+kubeconfig, "POD_NAMESPACE="+namespace)
	m.cmd.Stdout, m.cmd.Stderr = m.log, m.log
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { m.done <- m.cmd.Wait() }()
	t.Cleanup(func() {
		m.stop(t)
		if t.Failed() {
			t.Logf("the manager's log:\n%s", m.log.String())
		}
	})
	for _, path := range []string{"/healthz", "/readyz"} {
		eventually(t, 30*time.Second, func() string {
			select {
			case err := <-m.done:
				m.done <- err
				return fmt.Sprintf("the manager exited: %v\n%s", err, m.log.String())
			default:
			}
			resp, err := http.Get("http://" + m.healthAddr + path)
			if err != nil {
				return err.Error()
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return path + ": " + resp.Status
			}
			return ""
		})
	}
	return m
}

// stop sends SIGTERM (what the kubelet sends) and waits for a clean exit,
// which releases the leader election Lease.
func (m *manager) stop(t testing.TB) {
	if m.cmd.ProcessState != nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-m.done:
		m.done <- err
		if err != nil {
			t.Errorf("the manager exited with %v on SIGTERM", err)
		}
	case <-time.After(20 * time.Second):
		_ = m.cmd.Process.Kill()
		t.Errorf("the manager did not stop within 20s of SIGTERM")
	}
}

// forbiddenLines returns the manager's log lines that report an
// authorization failure.
func (m *manager) forbiddenLines() []string {
	var out []string
	for _, l := range strings.Split(m.log.String(), "\n") {
		if strings.Contains(strings.ToLower(l), "forbidden") {
			out = append(out, l)
		}
	}
	return out
}

// csr makes a key and a PEM CSR for name.
func csr(t testing.TB, name string) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader,
		&x509.CertificateRequest{Subject: pkix.Name{CommonName: name}, DNSNames: []string{name}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func obj(apiVersion, kind, namespace, name string, fields map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": apiVersion, "kind": kind}}
	for k, v := range fields {
		u.Object[k] = v
	}
	u.SetNamespace(namespace)
	u.SetName(name)
	return u
}

func create(t testing.TB, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := cp.k8s.Create(ctxFor(t, 10*time.Second), o); err != nil {
			t.Fatalf("creating %T %s/%s: %v", o, o.GetNamespace(), o.GetName(), err)
		}
	}
}
