package charttest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// requireRunc skips when runc cannot run containers here (not root, or
// runc missing); under CI (.ci/run installs runc) a missing runc fails.
func requireRunc(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("runc")
	if err != nil {
		path, err = exec.LookPath("/usr/sbin/runc")
	}
	switch {
	case err != nil && os.Getenv("CI") != "":
		t.Fatal("runc is not installed: .ci/run installs it (apt-get install -y runc)")
	case err != nil:
		t.Skip("runc is not installed and could not be: apt-get install -y runc (as .ci/run does) to run the image in a test")
	case os.Geteuid() != 0:
		t.Skip("running the image with runc needs root")
	}
	return path
}

// testRoot is a CA that exists only for one test, and a server certificate
// for 127.0.0.1 that chains to it.
type testRoot struct {
	pem    []byte
	server tls.Certificate
}

func newTestRoot(t *testing.T) testRoot {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ejbca-issuer image test root " + strconv.FormatInt(now.UnixNano(), 36)},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "token endpoint"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return testRoot{
		pem:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		server: tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: key},
	}
}

// tokenEndpoint serves the simulator's OAuth2 token endpoint on 127.0.0.1
// under a certificate of root, and counts the token requests it passes on.
func tokenEndpoint(t *testing.T, root testRoot) (string, *atomic.Int32) {
	t.Helper()
	upstream, err := url.Parse(sim.tokenURL)
	if err != nil {
		t.Fatal(err)
	}
	simRoots := x509.NewCertPool()
	simRoots.AppendCertsFromPEM(sim.caPEM)
	var served atomic.Int32
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL = upstream
			r.Out.Host = upstream.Host
		},
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: simRoots}},
		ModifyResponse: func(resp *http.Response) error {
			if resp.StatusCode == http.StatusOK {
				served.Add(1)
			}
			return nil
		},
	}
	srv := httptest.NewUnstartedServer(proxy)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{root.server}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	if !strings.HasPrefix(srv.URL, "https://127.0.0.1:") {
		t.Fatalf("the token endpoint listens on %s", srv.URL)
	}
	return srv.URL + upstream.Path, &served
}

// runcBundle is an OCI runtime bundle: the image's root filesystem and the
// config.json that runs its entrypoint.
type runcBundle struct{ dir string }

// ociProcessUser is the UID and GID the pod's securityContext gives.
func podUser(t *testing.T, sc *corev1.PodSecurityContext) (uint32, uint32) {
	t.Helper()
	if sc == nil || sc.RunAsUser == nil || sc.RunAsGroup == nil {
		t.Fatal("the chart's pod securityContext sets no runAsUser/runAsGroup")
	}
	return uint32(*sc.RunAsUser), uint32(*sc.RunAsGroup)
}

// runtimeSpec translates what the kubelet would run for the container into
// an OCI runtime spec: the image's entrypoint and env, the container's args
// and env, the pod's user, the container's securityContext (read-only root,
// capabilities dropped, no privilege escalation), the ServiceAccount token
// volume mounted where client-go's in-cluster config reads it, and the host
// network namespace (the test API server is on 127.0.0.1).
func runtimeSpec(t *testing.T, cfg ociConfig, uid, gid uint32, sc *corev1.SecurityContext, args, env []string, saDir string) map[string]any {
	t.Helper()
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Fatal("the chart's container securityContext does not make the root read-only")
	}
	if sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) != 0 {
		t.Fatalf("the chart's capabilities %+v: want drop ALL, add none", sc.Capabilities)
	}
	none := []string{}
	return map[string]any{
		"ociVersion": "1.0.2",
		"process": map[string]any{
			"terminal": false,
			"user":     map[string]any{"uid": uid, "gid": gid},
			"args":     append(append([]string{}, cfg.Config.Entrypoint...), args...),
			"env":      append(append([]string{}, cfg.Config.Env...), env...),
			"cwd":      "/",
			"capabilities": map[string]any{
				"bounding": none, "effective": none, "inheritable": none, "permitted": none, "ambient": none,
			},
			"noNewPrivileges": sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation,
		},
		"root":     map[string]any{"path": "rootfs", "readonly": *sc.ReadOnlyRootFilesystem},
		"hostname": "ejbca-issuer",
		"mounts": []map[string]any{
			{"destination": "/proc", "type": "proc", "source": "proc"},
			{"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": []string{"nosuid", "noexec", "nodev", "ro"}},
			{"destination": "/var/run/secrets/kubernetes.io/serviceaccount", "type": "bind", "source": saDir, "options": []string{"rbind", "ro"}},
		},
		"linux": map[string]any{
			// No network namespace: the pod's would be its own, but the
			// test's API server and endpoints listen on the host's 127.0.0.1.
			"namespaces": []map[string]any{{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}},
			"maskedPaths": []string{"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
				"/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"},
			"readonlyPaths": []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
}

// TestImageRunsInRunc: make image's amd64 image, unpacked and run by runc
// as the chart's Deployment would be run (UID/GID 65532, read-only root, no
// capabilities, no privilege escalation, the ServiceAccount token mounted,
// in-cluster config from KUBERNETES_SERVICE_HOST), connects to the API
// server, becomes leader, makes an EJBCAClusterIssuer Ready against the
// simulator, signs a request, and gets its OAuth2 token from an endpoint
// whose certificate chains to a root that is in the image's CA bundle and
// nowhere else: not in the issuer's caBundle (which holds only the
// simulator's CA) and not on this machine. The image is a test variant
// built with IMAGE_CA_CERTS = this machine's Debian bundle plus that root,
// exactly as a user adds an organisation's root. As a control, a token
// endpoint under another fresh root leaves its issuer not Ready with
// "unknown authority".
func TestImageRunsInRunc(t *testing.T) {
	runc := requireRunc(t)
	controlPlane(t)
	simulator(t)
	root := newTestRoot(t)
	tokenURL, tokens := tokenEndpoint(t, root)

	work := t.TempDir()
	hostBundle, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(work, "ca-certificates.crt")
	if err := os.WriteFile(bundle, append(append(hostBundle, '\n'), root.pem...), 0o644); err != nil {
		t.Fatal(err)
	}
	imageDir := filepath.Join(work, "image")
	runMake(t, "image", "IMAGE_DIR="+imageDir, "IMAGE_PLATFORMS=linux/amd64", "IMAGE_CA_CERTS="+bundle,
		"VERSION=v0.0.0-runctest", "IMG=ejbca-issuer-runctest:v0.0.0-runctest")
	layout := ociLayout(filepath.Join(imageDir, "oci"))
	manifest, cfg := layout.image(t, "amd64")
	b := runcBundle{dir: filepath.Join(work, "bundle")}
	rootfs := filepath.Join(b.dir, "rootfs")
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	layout.unpack(t, manifest, rootfs)
	if got, _ := os.ReadFile(filepath.Join(rootfs, "etc/ssl/certs/ca-certificates.crt")); !bytes.Contains(got, root.pem) {
		t.Fatal("the image's CA bundle lacks the test root")
	}

	objs := installChart(t, "in-runc", "in-runc", nil)
	d := deploymentOf(t, objs)
	c := container(t, d)
	ns, sa := d.Namespace, d.Spec.Template.Spec.ServiceAccountName
	uid, gid := podUser(t, d.Spec.Template.Spec.SecurityContext)
	if cfg.Config.User != fmt.Sprintf("%d:%d", uid, gid) {
		t.Errorf("the image's user %q is not the pod's %d:%d", cfg.Config.User, uid, gid)
	}

	// The ServiceAccount volume, as the kubelet projects it.
	saDir := filepath.Join(work, "serviceaccount")
	if err := os.MkdirAll(saDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"token": []byte(tokenConfig(t, ns, sa).BearerToken), "ca.crt": cp.cfg.CAData, "namespace": []byte(ns),
	} {
		if err := os.WriteFile(filepath.Join(saDir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	api, err := url.Parse(cp.cfg.Host)
	if err != nil {
		t.Fatal(err)
	}
	healthAddr := freePort(t)
	args := append(append([]string{}, c.Args...), "--metrics-bind-address=127.0.0.1:0", "--health-probe-bind-address="+healthAddr)
	env := []string{"POD_NAMESPACE=" + ns, "KUBERNETES_SERVICE_HOST=" + api.Hostname(), "KUBERNETES_SERVICE_PORT=" + api.Port()}
	spec := runtimeSpec(t, cfg, uid, gid, c.SecurityContext, args, env, saDir)
	sj, _ := json.MarshalIndent(spec, "", "  ")
	if err := os.WriteFile(filepath.Join(b.dir, "config.json"), sj, 0o644); err != nil {
		t.Fatal(err)
	}

	state := filepath.Join(work, "runc-state")
	id := "ejbca-issuer-" + strconv.Itoa(os.Getpid())
	log := &syncBuffer{}
	cmd := exec.Command(runc, "--root", state, "run", "--bundle", b.dir, id)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = exec.Command(runc, "--root", state, "kill", id, "TERM").Run()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("the container exited with %v on SIGTERM", err)
			}
		case <-time.After(20 * time.Second):
			_ = exec.Command(runc, "--root", state, "kill", id, "KILL").Run()
			<-done
			t.Error("the container did not stop within 20s of SIGTERM")
		}
		_ = exec.Command(runc, "--root", state, "delete", "--force", id).Run()
		if t.Failed() {
			t.Logf("the container's output:\n%s", log.String())
		}
	})
	for _, path := range []string{"/healthz", "/readyz"} {
		eventually(t, 60*time.Second, func() string {
			select {
			case err := <-done:
				done <- err
				return fmt.Sprintf("the container exited: %v\n%s", err, log.String())
			default:
			}
			resp, err := http.Get("http://" + healthAddr + path)
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
	checkContainerProcess(t, runc, state, id)

	// An EJBCAClusterIssuer whose caBundle is the simulator's CA only; its
	// token URL is the endpoint only the image's bundle lets it trust.
	secretNS := argValue(c.Args, "--cluster-resource-namespace")
	create(t,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: secretNS, Name: "runc-oauth"},
			Data: map[string][]byte{"client_id": []byte(sim.oauth.ClientID), "client_secret": []byte(sim.oauth.ClientSecret)}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: secretNS, Name: "runc-ca"}, Data: map[string][]byte{"ca.crt": sim.caPEM}},
		obj(group+"/v1alpha1", "EJBCAClusterIssuer", "", "in-runc", map[string]any{"spec": map[string]any{
			"url": sim.baseURL, "caName": "IssuingCA", "certificateProfileName": "SERVER", "endEntityProfileName": "EMPTY",
			"auth": map[string]any{"mode": "oauth2", "oauth2": map[string]any{
				"tokenURL": tokenURL, "clientSecretRef": map[string]any{"name": "runc-oauth"}, "audience": "ejbca"}},
			"caBundle": map[string]any{"secretRef": map[string]any{"name": "runc-ca", "key": "ca.crt"}},
		}}),
	)
	iss := issuer{"EJBCAClusterIssuer", "", "in-runc"}
	t.Cleanup(func() { deleteIssuers(t, iss) })
	if bytes.Contains(sim.caPEM, root.pem) {
		t.Fatal("the issuer's caBundle holds the test root")
	}
	waitIssuerReady(t, iss)

	// The control: the same issuer with a token endpoint under a root the
	// image does not hold fails TLS verification, so the one above was
	// trusted through the image's bundle (not an unverified connection).
	otherURL, otherTokens := tokenEndpoint(t, newTestRoot(t))
	create(t, obj(group+"/v1alpha1", "EJBCAClusterIssuer", "", "in-runc-unknown-root", map[string]any{"spec": map[string]any{
		"url": sim.baseURL, "caName": "IssuingCA", "certificateProfileName": "SERVER", "endEntityProfileName": "EMPTY",
		"auth": map[string]any{"mode": "oauth2", "oauth2": map[string]any{
			"tokenURL": otherURL, "clientSecretRef": map[string]any{"name": "runc-oauth"}, "audience": "ejbca"}},
		"caBundle": map[string]any{"secretRef": map[string]any{"name": "runc-ca", "key": "ca.crt"}},
	}}))
	unknown := issuer{"EJBCAClusterIssuer", "", "in-runc-unknown-root"}
	t.Cleanup(func() { deleteIssuers(t, unknown) })
	eventually(t, 30*time.Second, func() string {
		u := unknown.object()
		if err := cp.k8s.Get(ctxFor(t, 5*time.Second), client.ObjectKeyFromObject(u), u); err != nil {
			return err.Error()
		}
		if c := condition(u, "Ready"); c == nil || c["status"] != "False" || !strings.Contains(fmt.Sprint(c["message"]), "unknown authority") {
			return fmt.Sprintf("%s: Ready %v, want False for a certificate of an unknown authority", unknown.name, c)
		}
		return ""
	})
	if n := otherTokens.Load(); n != 0 {
		t.Errorf("%d tokens were fetched from the endpoint under a root the image lacks", n)
	}

	cr, key := request(t, "team-runc", iss, "from-the-image")
	waitIssued(t, cr, key)
	checkLeader(t, argValue(c.Args, "--leader-election-namespace"))
	if tokens.Load() == 0 {
		t.Error("no token was fetched from the endpoint the image's CA bundle trusts")
	}
	if strings.Contains(log.String(), "forbidden") {
		t.Errorf("the manager was refused by RBAC:\n%s", log.String())
	}
	t.Logf("the container issued %s/%s with %d OAuth2 token(s) from %s", cr.GetNamespace(), cr.GetName(), tokens.Load(), tokenURL)
}

// checkContainerProcess reads the container's init process (the manager:
// the image has no shell to wrap it) from the host's /proc: UID and GID
// 65532, no capability in any set, no_new_privs, a read-only root; and
// runc exec of /bin/sh fails because there is none.
func checkContainerProcess(t *testing.T, runc, state, id string) {
	t.Helper()
	out, err := exec.Command(runc, "--root", state, "state", id).Output()
	if err != nil {
		t.Fatalf("runc state: %v", err)
	}
	var st struct {
		Pid int `json:"pid"`
	}
	if err := json.Unmarshal(out, &st); err != nil || st.Pid == 0 {
		t.Fatalf("runc state %s: %v", out, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", st.Pid))
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]string{}
	for _, l := range strings.Split(string(status), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			fields[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	zero := "0000000000000000"
	for k, want := range map[string]string{
		"Uid": "65532 65532 65532 65532", "Gid": "65532 65532 65532 65532", "Groups": "",
		"CapInh": zero, "CapPrm": zero, "CapEff": zero, "CapBnd": zero, "CapAmb": zero, "NoNewPrivs": "1",
	} {
		if fields[k] != want {
			t.Errorf("the manager's %s is %q, want %q", k, fields[k], want)
		}
	}
	if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", st.Pid)); !strings.HasSuffix(exe, "/ejbca-issuer") {
		t.Errorf("the container's process is %s, not the entrypoint", exe)
	}
	mounts, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", st.Pid))
	if err != nil {
		t.Fatal(err)
	}
	rootRO := false
	for _, l := range strings.Split(string(mounts), "\n") {
		f := strings.Fields(l)
		if len(f) > 5 && f[4] == "/" {
			rootRO = strings.Contains(","+f[5]+",", ",ro,")
		}
	}
	if !rootRO {
		t.Errorf("the container's root is not mounted read-only:\n%s", mounts)
	}
	if out, err := exec.Command(runc, "--root", state, "exec", id, "/bin/sh", "-c", "true").CombinedOutput(); err == nil {
		t.Errorf("runc exec /bin/sh succeeded: the image has a shell\n%s", out)
	}
}
