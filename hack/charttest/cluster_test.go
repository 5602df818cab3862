package charttest

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func TestMain(m *testing.M) {
	// The binaries compile while the control plane starts.
	go buildBinaries()
	code := m.Run()
	if sim.cmd != nil {
		_ = sim.cmd.Process.Kill()
		_ = sim.cmd.Wait()
		os.RemoveAll(sim.dir)
	}
	if cp.env != nil {
		if err := cp.env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
		}
	}
	buildBinaries()
	os.RemoveAll(bins.dir)
	os.Exit(code)
}

const group = "ejbca-issuer.certctl.io"

// TestApplyToAPIServer: what `helm install` (default values), `helm install
// --dry-run=server` with every option on, and `kustomize build config/default
// | kubectl apply --server-side` send is accepted by a real API server with
// strict field validation, after the CRDs the chart ships are established;
// no API server warning (deprecated API, Pod Security "would violate ...
// restricted") is raised for any of them.
func TestApplyToAPIServer(t *testing.T) {
	controlPlane(t)
	t.Logf("control plane started in %s", cp.started.Round(time.Millisecond))
	installChart(t, "ejbca-issuer", "ejbca-issuer", nil)

	all := mustRender(t, "ejbca", "pki", valuesFile(t, "testdata/all-options.yaml"))
	for _, ns := range []string{"pki", "pki-secrets", "pki-leases", "monitoring"} {
		ensureNamespace(t, ns, restrictedLabels)
	}
	takeWarnings()
	apply(t, all, "helm", true)
	if w := takeWarnings(); len(w) > 0 {
		t.Errorf("every option on: API server warnings: %q", w)
	}

	// The warning check is live: a weakened Deployment draws PodSecurity's
	// warning in the same namespace.
	weak := deploymentOf(t, mustRender(t, "ejbca-issuer", "ejbca-issuer", values(t, "securityContext: {allowPrivilegeEscalation: true}")))
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(weak)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, []*unstructured.Unstructured{{Object: u}}, "helm", true)
	if w := takeWarnings(); len(w) != 1 || !strings.Contains(w[0], `would violate PodSecurity "restricted:latest"`) {
		t.Errorf("a Deployment allowing privilege escalation drew warnings %q, want PodSecurity's", w)
	}

	objs := installKustomize(t)
	var ns corev1.Namespace
	if err := cp.k8s.Get(ctxFor(t, 5*time.Second), client.ObjectKey{Name: "ejbca-issuer"}, &ns); err != nil {
		t.Fatal(err)
	}
	if ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("config/default's namespace does not enforce the restricted standard: %v", ns.Labels)
	}
	// Everything kustomize rendered now exists.
	for _, o := range objs {
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(o.GroupVersionKind())
		if err := cp.k8s.Get(ctxFor(t, 5*time.Second), client.ObjectKeyFromObject(o), got); err != nil {
			t.Errorf("%s: %v", id(o), err)
		}
	}
}

// signerAllowed asks what cert-manager's CertificateRequest approval webhook
// asks before it lets a user set Approved (cert-manager
// internal/webhook/admission/certificaterequest/approval): may the user
// `approve` the `signers` resource `<plural>.<group>/*`, or
// `<plural>.<group>/<namespace>.<name>` (namespaced issuers) /
// `<plural>.<group>/<name>` (cluster issuers)?
func signerAllowed(t *testing.T, user string, groups []string, plural, namespace, name string) bool {
	t.Helper()
	names := []string{plural + "." + group + "/*"}
	if namespace != "" {
		names = append(names, plural+"."+group+"/"+namespace+"."+name)
	} else {
		names = append(names, plural+"."+group+"/"+name)
	}
	for _, n := range names {
		if allowed(t, user, groups, authorizationv1.ResourceAttributes{Group: "cert-manager.io", Resource: "signers", Verb: "approve", Name: n}) {
			return true
		}
	}
	return false
}

// TestApproverRBAC: cert-manager's approver identity can approve requests
// for EJBCAIssuers and EJBCAClusterIssuers because of the chart's binding and
// cannot without it; the binding grants nothing else.
func TestApproverRBAC(t *testing.T) {
	controlPlane(t)
	user, groups := serviceAccountUser("cert-manager", "cert-manager")
	var approver []*unstructured.Unstructured
	for _, o := range mustRender(t, "ejbca-issuer", "ejbca-issuer", nil) {
		if o.GetName() == approverName {
			approver = append(approver, o)
		}
	}
	if len(approver) != 2 {
		t.Fatalf("approver objects: %v", ids(approver))
	}
	for _, o := range approver { // (another test may have installed them)
		if err := cp.k8s.Delete(ctxFor(t, 5*time.Second), o.DeepCopy()); err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, func() string {
		if signerAllowed(t, user, groups, "ejbcaissuers", "team-a", "ejbca") {
			return "cert-manager may approve without the approver binding"
		}
		return ""
	})

	apply(t, approver, "helm", false)
	eventually(t, 10*time.Second, func() string {
		if !signerAllowed(t, user, groups, "ejbcaissuers", "team-a", "ejbca") {
			return "cert-manager may not approve requests for EJBCAIssuer team-a/ejbca with the approver binding"
		}
		return ""
	})
	if !signerAllowed(t, user, groups, "ejbcaclusterissuers", "", "ejbca") {
		t.Error("cert-manager may not approve requests for EJBCAClusterIssuer ejbca")
	}
	// Nothing wider: not cert-manager's own issuers, not another verb, not another user.
	if signerAllowed(t, user, groups, "issuers", "team-a", "ca") || signerAllowed(t, user, groups, "clusterissuers", "", "ca") {
		t.Error("the approver binding lets cert-manager approve requests for other issuer kinds")
	}
	if allowed(t, user, groups, authorizationv1.ResourceAttributes{Group: "cert-manager.io", Resource: "signers", Verb: "create", Name: "ejbcaissuers." + group + "/*"}) {
		t.Error("the approver binding grants more than approve")
	}
	other, otherGroups := serviceAccountUser("team-a", "default")
	if signerAllowed(t, other, otherGroups, "ejbcaissuers", "team-a", "ejbca") {
		t.Error("a ServiceAccount other than cert-manager's may approve")
	}
}

// issuer is an EJBCAIssuer or EJBCAClusterIssuer created for a test.
type issuer struct{ kind, namespace, name string }

func (i issuer) object() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(group + "/v1alpha1")
	u.SetKind(i.kind)
	u.SetNamespace(i.namespace)
	u.SetName(i.name)
	return u
}

// mtlsIssuer creates an EJBCAIssuer in ns that authenticates with the
// simulator's administrator client certificate (a kubernetes.io/tls Secret)
// and trusts its CA through a ConfigMap, both in ns.
func mtlsIssuer(t *testing.T, ns, name, profile string) issuer {
	t.Helper()
	ensureNamespace(t, ns, nil)
	create(t,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-client"}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: sim.clientCert, corev1.TLSPrivateKeyKey: sim.clientKey}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-ca"}, Data: map[string]string{"ca.crt": string(sim.caPEM)}},
		obj(group+"/v1alpha1", "EJBCAIssuer", ns, name, map[string]any{"spec": map[string]any{
			"url": sim.url, "caName": "IssuingCA", "certificateProfileName": profile, "endEntityProfileName": "EMPTY",
			"auth":     map[string]any{"mode": "mtls", "mtls": map[string]any{"secretName": name + "-client"}},
			"caBundle": map[string]any{"configMapRef": map[string]any{"name": name + "-ca", "key": "ca.crt"}},
			"approval": map[string]any{"pollInterval": "1s"},
		}}),
	)
	return issuer{"EJBCAIssuer", ns, name}
}

// oauthClusterIssuer creates an EJBCAClusterIssuer that authenticates with
// OAuth2 client credentials; its Secret and CA bundle are in secretNS.
func oauthClusterIssuer(t *testing.T, secretNS, name string) issuer {
	t.Helper()
	create(t,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: secretNS, Name: name + "-oauth"},
			Data: map[string][]byte{"client_id": []byte(sim.oauth.ClientID), "client_secret": []byte(sim.oauth.ClientSecret)}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: secretNS, Name: name + "-ca"}, Data: map[string][]byte{"ca.crt": sim.caPEM}},
		obj(group+"/v1alpha1", "EJBCAClusterIssuer", "", name, map[string]any{"spec": map[string]any{
			"url": sim.baseURL, "caName": "IssuingCA", "certificateProfileName": "SERVER", "endEntityProfileName": "EMPTY",
			"auth": map[string]any{"mode": "oauth2", "oauth2": map[string]any{
				"tokenURL": sim.tokenURL, "clientSecretRef": map[string]any{"name": name + "-oauth"}, "audience": "ejbca"}},
			"caBundle": map[string]any{"secretRef": map[string]any{"name": name + "-ca", "key": "ca.crt"}},
		}}),
	)
	return issuer{"EJBCAClusterIssuer", "", name}
}

func deleteIssuers(t *testing.T, issuers ...issuer) {
	for _, i := range issuers {
		if err := cp.k8s.Delete(ctxFor(t, 5*time.Second), i.object()); err != nil && !apierrors.IsNotFound(err) {
			t.Error(err)
		}
	}
}

func condition(u *unstructured.Unstructured, typ string) map[string]any {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == typ {
			return m
		}
	}
	return nil
}

func waitIssuerReady(t *testing.T, i issuer) {
	t.Helper()
	eventually(t, 30*time.Second, func() string {
		u := i.object()
		if err := cp.k8s.Get(ctxFor(t, 5*time.Second), client.ObjectKeyFromObject(u), u); err != nil {
			return err.Error()
		}
		c := condition(u, "Ready")
		if c == nil || c["status"] != "True" || fmt.Sprint(c["observedGeneration"]) != fmt.Sprint(u.GetGeneration()) {
			return fmt.Sprintf("%s %s not Ready: %v", i.kind, i.name, c)
		}
		return ""
	})
}

// request creates a CertificateRequest for i in ns and approves it as
// cert-manager's approver would (status condition Approved).
func request(t *testing.T, ns string, i issuer, name string) (*unstructured.Unstructured, *ecdsa.PrivateKey) {
	t.Helper()
	ensureNamespace(t, ns, nil)
	key, csrPEM := csr(t, name+".example.com")
	cr := obj("cert-manager.io/v1", "CertificateRequest", ns, name, map[string]any{"spec": map[string]any{
		"request":   base64.StdEncoding.EncodeToString(csrPEM),
		"issuerRef": map[string]any{"group": group, "kind": i.kind, "name": i.name},
		"usages":    []any{"digital signature", "server auth"},
	}})
	if err := cp.k8s.Create(ctxFor(t, 10*time.Second), cr); err != nil {
		t.Fatalf("creating CertificateRequest %s/%s: %v", ns, name, err)
	}
	eventually(t, 10*time.Second, func() string {
		if err := cp.k8s.Get(ctxFor(t, 5*time.Second), client.ObjectKeyFromObject(cr), cr); err != nil {
			return err.Error()
		}
		conds, _, _ := unstructured.NestedSlice(cr.Object, "status", "conditions")
		conds = append(conds, map[string]any{"type": "Approved", "status": "True", "reason": "cert-manager.io",
			"message": "approved by the test", "lastTransitionTime": time.Now().UTC().Format(time.RFC3339)})
		if err := unstructured.SetNestedSlice(cr.Object, conds, "status", "conditions"); err != nil {
			return err.Error()
		}
		if err := cp.k8s.Status().Update(ctxFor(t, 5*time.Second), cr); err != nil {
			return err.Error()
		}
		return ""
	})
	return cr, key
}

// waitIssued waits for Ready=True/Issued and checks that the certificate
// is for the request's key.
func waitIssued(t *testing.T, cr *unstructured.Unstructured, key *ecdsa.PrivateKey) {
	t.Helper()
	eventually(t, 30*time.Second, func() string {
		if err := cp.k8s.Get(ctxFor(t, 5*time.Second), client.ObjectKeyFromObject(cr), cr); err != nil {
			return err.Error()
		}
		if c := condition(cr, "Ready"); c == nil || c["status"] != "True" || c["reason"] != "Issued" {
			return fmt.Sprintf("CertificateRequest %s/%s: Ready %v", cr.GetNamespace(), cr.GetName(), c)
		}
		return ""
	})
	certB64, _, _ := unstructured.NestedString(cr.Object, "status", "certificate")
	certPEM, err := base64.StdEncoding.DecodeString(certB64)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatalf("status.certificate of %s is not PEM", cr.GetName())
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !key.PublicKey.Equal(leaf.PublicKey) {
		t.Errorf("the certificate of %s is not for the request's key", cr.GetName())
	}
}
