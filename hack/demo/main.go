// Command demo shows ejbca-issuer working end to end on one machine: a real
// kube-apiserver, cert-manager's own controllers, the EJBCA simulator and the
// ejbca-issuer manager. It turns a cert-manager Certificate into a Secret
// signed by EJBCA, then walks a Certificate through EJBCA's approval flow.
//
// The manager serves /metrics on a free port of 127.0.0.1, and every log of
// the process (the manager's, cert-manager's, client-go's) goes to
// <dir>/manager.log; the demo prints both. The console shows only the demo's
// own lines.
//
//	go run ./hack/demo [--dir .demo] [--once] [--log-level 1] [--log-format text]   # what `make demo` runs
//	bin/demo view [--kubeconfig .demo/kubeconfig]   # issuers, Certificates, requests and Secrets with their conditions
package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/devstack"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
	"github.com/certctl-io/ejbca-issuer/internal/manager"
)

const namespace = "demo"

var started = time.Now()

func say(format string, args ...any) {
	fmt.Printf("[demo %5.1fs] %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, args...))
}

func main() {
	var err error
	if len(os.Args) > 1 && os.Args[1] == "view" {
		err = view(os.Args[2:])
	} else {
		err = run(os.Args[1:])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	dir := fs.String("dir", ".demo", "where the kubeconfig and the simulator's credentials are written")
	once := fs.Bool("once", false, "exit after the demo instead of keeping the stack up until Ctrl-C")
	logLevel := fs.Int("log-level", 1, "the manager's --log-level: 0 info, 1 decisions and health checks, 2..4 debug")
	logFormat := fs.String("log-format", "text", "the manager's --log-format: json or text")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *logFormat != "json" && *logFormat != "text" {
		return fmt.Errorf("--log-format must be json or text, not %q", *logFormat)
	}
	absDir, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(absDir, 0o700); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Every logger of the process writes here, none to the console;
	// devstack.Start routes them before anything starts.
	logPath := filepath.Join(absDir, "manager.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	// Not closed: goroutines of client-go may still log while the process
	// exits, and a write to a closed file makes zap complain on stderr.
	say("logs (the manager's, cert-manager's, client-go's; %s, level %d) go to %s", *logFormat, *logLevel, logPath)

	stack, err := devstack.Start(ctx, devstack.Options{
		Dir:      absDir,
		Progress: say,
		Log:      manager.NewLogger(*logFormat, *logLevel, logFile),
		Manager: manager.Options{
			MetricsBindAddress:     "127.0.0.1:0",
			HealthProbeBindAddress: "127.0.0.1:0",
		},
	})
	if err != nil {
		return fmt.Errorf("%w (the log is in %s)", err, logPath)
	}
	defer func() {
		say("stopping the manager, cert-manager's controllers, the simulator, kube-apiserver and etcd")
		stack.Stop()
		say("stopped; nothing is left running. The log stays in %s", logPath)
	}()
	say("the manager serves metrics at http://%s/metrics and health probes at http://%s/healthz and /readyz", stack.MetricsAddr, stack.HealthProbeAddr)
	say("  curl -s http://%s/metrics | grep ^ejbca_issuer", stack.MetricsAddr)
	if err := stack.Sim.WriteCredentials(filepath.Join(absDir, "ejbca")); err != nil {
		return err
	}

	say("creating EJBCAIssuer %s/ejbca (mTLS client certificate) and EJBCAClusterIssuer ejbca (OAuth2 client credentials)", namespace)
	iss, ciss, err := stack.Issuers(ctx, namespace, "SERVER")
	if err != nil {
		return err
	}
	for _, i := range []v1alpha1.Issuer{iss, ciss} {
		c := i.GetStatus().ReadyCondition()
		say("  %s %s: Ready=%s %s: %s", v1alpha1.KindOf(i), i.GetName(), c.Status, c.Reason, c.Message)
	}

	before := stack.Sim.Counters()
	say("creating Certificate %s/demo for demo.example.com, issued by EJBCAIssuer ejbca", namespace)
	crt, err := certificate(ctx, stack, "demo", "ejbca", []string{"demo.example.com", "www.demo.example.com"})
	if err != nil {
		return err
	}
	secret, err := waitIssued(ctx, stack, crt, 60*time.Second)
	if err != nil {
		return err
	}
	if err := show(stack, crt, secret, before); err != nil {
		return err
	}

	if err := approvalDemo(ctx, stack); err != nil {
		return err
	}
	if err := csrDemo(ctx, stack, ciss.Name); err != nil {
		return err
	}
	if err := revocationDemo(ctx, stack); err != nil {
		return err
	}

	fmt.Println()
	if *once {
		say("demo complete (--once): stopping")
		return nil
	}
	lookAround(stack, absDir, logPath)
	<-ctx.Done()
	fmt.Println()
	return nil
}

func certificate(ctx context.Context, stack *devstack.Stack, name, issuer string, dnsNames []string) (*cmapi.Certificate, error) {
	crt := &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: cmapi.CertificateSpec{
			SecretName: name + "-tls",
			CommonName: dnsNames[0],
			DNSNames:   dnsNames,
			Duration:   &metav1.Duration{Duration: 90 * 24 * time.Hour},
			PrivateKey: &cmapi.CertificatePrivateKey{Algorithm: cmapi.ECDSAKeyAlgorithm, Size: 256, RotationPolicy: cmapi.RotationPolicyAlways},
			Usages:     []cmapi.KeyUsage{cmapi.UsageDigitalSignature, cmapi.UsageServerAuth},
			IssuerRef:  cmmeta.IssuerReference{Group: v1alpha1.GroupVersion.Group, Kind: v1alpha1.IssuerKind, Name: issuer},
		},
	}
	return crt, stack.Client.Create(ctx, crt)
}

// waitIssued waits for cert-manager to call the Certificate issued: Ready,
// a revision, and no Issuing condition left.
func waitIssued(ctx context.Context, stack *devstack.Stack, crt *cmapi.Certificate, timeout time.Duration) (*corev1.Secret, error) {
	deadline := time.Now().Add(timeout)
	for {
		if err := stack.Client.Get(ctx, client.ObjectKeyFromObject(crt), crt); err != nil {
			return nil, err
		}
		ready, issuing := condition(crt, cmapi.CertificateConditionReady), condition(crt, cmapi.CertificateConditionIssuing)
		if ready != nil && ready.Status == cmmeta.ConditionTrue && crt.Status.Revision != nil && issuing == nil {
			var s corev1.Secret
			err := stack.Client.Get(ctx, client.ObjectKey{Namespace: crt.Namespace, Name: crt.Spec.SecretName}, &s)
			return &s, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("certificate %s not issued after %s: Ready=%v Issuing=%v", crt.Name, timeout, ready, issuing)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func condition(crt *cmapi.Certificate, t cmapi.CertificateConditionType) *cmapi.CertificateCondition {
	for i := range crt.Status.Conditions {
		if crt.Status.Conditions[i].Type == t {
			return &crt.Status.Conditions[i]
		}
	}
	return nil
}

func show(stack *devstack.Stack, crt *cmapi.Certificate, secret *corev1.Secret, before ejbcasim.Counters) error {
	ready := condition(crt, cmapi.CertificateConditionReady)
	chain, err := pki.DecodeX509CertificateChainBytes(secret.Data[corev1.TLSCertKey])
	if err != nil {
		return fmt.Errorf("tls.crt: %w", err)
	}
	root, err := pki.DecodeX509CertificateBytes(secret.Data["ca.crt"])
	if err != nil {
		return fmt.Errorf("ca.crt: %w", err)
	}
	leaf := chain[0]
	say("Certificate %s/%s is Ready (revision %d):", crt.Namespace, crt.Name, *crt.Status.Revision)
	fmt.Printf("    Ready:      %s, %s: %s\n", ready.Status, ready.Reason, ready.Message)
	fmt.Printf("    Secret:     %s/%s with %s\n", secret.Namespace, secret.Name, strings.Join(keys(secret.Data), ", "))
	fmt.Printf("    Subject:    %s\n", leaf.Subject)
	fmt.Printf("    DNS names:  %s\n", strings.Join(leaf.DNSNames, ", "))
	fmt.Printf("    Serial:     %X\n", leaf.SerialNumber)
	fmt.Printf("    Issuer:     %s\n", leaf.Issuer)
	fmt.Printf("    Validity:   %s to %s\n", leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
	fmt.Printf("    Usages:     %s\n", usages(leaf))
	fmt.Println("    Chain (tls.crt, then ca.crt):")
	for i, c := range append(chain, root) {
		fmt.Printf("      %d. %s (issued by %s)\n", i, c.Subject, c.Issuer)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(root)
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: leaf.DNSNames[0]}); err != nil {
		return fmt.Errorf("the issued chain does not verify: %w", err)
	}
	fmt.Println("    Verified:   the chain verifies against ca.crt for", leaf.DNSNames[0])
	after := stack.Sim.Counters()
	fmt.Println("    EJBCA calls for this Certificate (from the simulator's counters):")
	printCalls(before, after)
	return nil
}

func printCalls(before, after ejbcasim.Counters) {
	var names []string
	for ep := range after.Calls {
		names = append(names, ep)
	}
	sort.Strings(names)
	for _, ep := range names {
		for status, n := range after.Calls[ep] {
			if d := n - before.Calls[ep][status]; d > 0 {
				fmt.Printf("      %-20s HTTP %d  x%d\n", ep, status, d)
			}
		}
	}
	fmt.Printf("      TLS handshakes: %d, OAuth2 tokens issued: %d\n",
		after.TLSHandshakes-before.TLSHandshakes, after.TokensIssued-before.TokensIssued)
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func usages(c *x509.Certificate) string {
	var u []string
	if c.KeyUsage&x509.KeyUsageDigitalSignature != 0 {
		u = append(u, "digital signature")
	}
	if c.KeyUsage&x509.KeyUsageKeyEncipherment != 0 {
		u = append(u, "key encipherment")
	}
	for _, e := range c.ExtKeyUsage {
		switch e {
		case x509.ExtKeyUsageServerAuth:
			u = append(u, "server auth")
		case x509.ExtKeyUsageClientAuth:
			u = append(u, "client auth")
		case x509.ExtKeyUsageEmailProtection:
			u = append(u, "email protection")
		}
	}
	return strings.Join(u, ", ")
}

// approvalDemo issues through an issuer whose certificate profile needs an
// EJBCA administrator's approval.
func approvalDemo(ctx context.Context, stack *devstack.Stack) error {
	fmt.Println()
	say("creating EJBCAIssuer %s/ejbca-approval on certificate profile APPROVAL (EJBCA requires an administrator's approval)", namespace)
	base := &v1alpha1.EJBCAIssuer{}
	if err := stack.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "ejbca"}, base); err != nil {
		return err
	}
	iss := &v1alpha1.EJBCAIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "ejbca-approval"}, Spec: base.Spec}
	iss.Spec.CertificateProfileName = "APPROVAL"
	if err := stack.Client.Create(ctx, iss); err != nil {
		return err
	}
	if err := stack.WaitIssuerReady(ctx, iss, 30*time.Second); err != nil {
		return err
	}
	before := stack.Sim.Counters()
	say("creating Certificate %s/approval-demo for approval.demo.example.com", namespace)
	crt, err := certificate(ctx, stack, "approval-demo", "ejbca-approval", []string{"approval.demo.example.com"})
	if err != nil {
		return err
	}
	id, cr, err := waitForApproval(ctx, stack, crt)
	if err != nil {
		return err
	}
	ready := readyOf(cr)
	say("CertificateRequest %s/%s is %s: %q", cr.Namespace, cr.Name, ready.Reason, ready.Message)
	if id == 0 {
		return fmt.Errorf("CertificateRequest %s/%s waits without an EJBCA approval request id, so the demo cannot approve it through the approval API", cr.Namespace, cr.Name)
	}
	time.Sleep(time.Second)
	const comment = "approved in make demo"
	say("an EJBCA administrator approves request %d through EJBCA's REST API: POST /v1/approval/%d/process {\"approve\":true,\"comment\":%q}", id, id, comment)
	if err := processApproval(ctx, stack.Sim, id, comment); err != nil {
		return fmt.Errorf("approving request %d: %w", id, err)
	}
	status, _ := stack.Sim.ApprovalStatus(id)
	say("EJBCA carried out the approved request %d (%s): the end entity %q exists now", id, status, cr.Namespace+"/"+cr.Name)
	secret, err := waitIssued(ctx, stack, crt, 60*time.Second)
	if err != nil {
		return err
	}
	leaf, err := pki.DecodeX509CertificateBytes(secret.Data[corev1.TLSCertKey])
	if err != nil {
		return err
	}
	say("Certificate %s/approval-demo is Ready after approval: serial %X, %s, issued by %s", namespace, leaf.SerialNumber, leaf.Subject, leaf.Issuer)
	fmt.Println("    EJBCA calls for this Certificate and its approval (from the simulator's counters):")
	printCalls(before, stack.Sim.Counters())
	return nil
}

// processApproval approves (or rejects) an EJBCA approval request the way an
// administrator's script would: POST /v1/approval/{id}/process with
// {"approve":...,"comment":...}, through the project's EJBCA client with the
// simulator's administrator certificate. (EJBCA itself refuses an approval
// by the administrator who made the request; the simulator has one
// administrator certificate and allows it.)
func processApproval(ctx context.Context, sim *ejbcasim.Sim, id int, comment string) error {
	admin, err := adminClient(sim)
	if err != nil {
		return err
	}
	defer admin.Close()
	return admin.ProcessApproval(ctx, id, true, comment)
}

func waitForApproval(ctx context.Context, stack *devstack.Stack, crt *cmapi.Certificate) (int, *cmapi.CertificateRequest, error) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		var list cmapi.CertificateRequestList
		if err := stack.Client.List(ctx, &list, client.InNamespace(namespace)); err != nil {
			return 0, nil, err
		}
		for i := range list.Items {
			cr := &list.Items[i]
			c := readyOf(cr)
			if cr.Annotations[cmapi.CertificateNameKey] != crt.Name || c == nil ||
				!strings.Contains(c.Message, "waiting for EJBCA approval") {
				continue
			}
			id, err := strconv.Atoi(cr.Annotations[v1alpha1.AnnotationApprovalRequestID])
			return id, cr, err
		}
		select {
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return 0, nil, errors.New("no CertificateRequest waiting for EJBCA approval after 60s")
}

func readyOf(cr *cmapi.CertificateRequest) *cmapi.CertificateRequestCondition {
	for i := range cr.Status.Conditions {
		if cr.Status.Conditions[i].Type == cmapi.CertificateRequestConditionReady {
			return &cr.Status.Conditions[i]
		}
	}
	return nil
}

func lookAround(stack *devstack.Stack, dir, logPath string) {
	kubeconfig := stack.Kubeconfig
	fmt.Printf(`The stack keeps running until Ctrl-C. Look around from another terminal:

  bin/demo view --kubeconfig %[1]s
      issuers, Certificates, CertificateRequests and Secrets with their Ready conditions

  The manager's metrics (docs/metrics.md) and its log (docs/troubleshooting.md, "Logs"):
  curl -s http://%[6]s/metrics | grep ^ejbca_issuer
  tail -f %[7]s

  make kubectl        # builds bin/kubectl from the module proxy (a few minutes, once)
  bin/kubectl --kubeconfig %[1]s get cert-manager -A
  bin/kubectl --kubeconfig %[1]s describe certificaterequest -n %[2]s
  bin/kubectl --kubeconfig %[1]s get secret -n %[2]s demo-tls -o jsonpath='{.data.tls\.crt}' | base64 -d | openssl x509 -noout -text

  The EJBCA simulator is at %[3]s; its credentials are in %[4]s:
  curl --cacert %[4]s/ca.crt --cert %[4]s/client.crt --key %[4]s/client.key %[3]s/v1/ca
  curl --cacert %[4]s/ca.crt %[5]s/sim/counters

`, kubeconfig, namespace, stack.Sim.BaseURL(), filepath.Join(dir, "ejbca"), stack.Sim.URL(), stack.MetricsAddr, logPath)
	say("running; press Ctrl-C to stop")
}
