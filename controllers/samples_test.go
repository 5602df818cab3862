package controllers_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
	"github.com/certctl-io/ejbca-issuer/internal/testenv"
	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

// shippedObject is one object from config/samples or a YAML example of the docs.
type shippedObject struct {
	source string // file, and block for markdown
	obj    *unstructured.Unstructured
}

// readSamples decodes every object of config/samples and every YAML block
// of docs/issuers.md and README.md that is a whole object (has a kind).
func readSamples(t *testing.T) []shippedObject {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	var out []shippedObject
	decode := func(source string, data []byte) {
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); err != nil {
				break
			}
			if len(u.Object) == 0 || u.GetKind() == "" {
				continue
			}
			out = append(out, shippedObject{source: source, obj: u})
		}
	}
	files, err := filepath.Glob(filepath.Join(root, "config", "samples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		decode(filepath.Join("config", "samples", filepath.Base(f)), data)
	}
	for _, doc := range []string{filepath.Join("docs", "issuers.md"), "README.md"} {
		data, err := os.ReadFile(filepath.Join(root, doc))
		if err != nil {
			t.Fatal(err)
		}
		var block []string
		in, start := false, 0
		for i, line := range strings.Split(string(data), "\n") {
			switch {
			case !in && strings.TrimSpace(line) == "```yaml":
				in, start, block = true, i+1, nil
			case in && strings.TrimSpace(line) == "```":
				in = false
				text := strings.Join(block, "\n")
				if strings.Contains(text, "apiVersion:") {
					decode(fmt.Sprintf("%s:%d", doc, start), []byte(text))
				}
			case in:
				block = append(block, line)
			}
		}
	}
	return out
}

// TestSamplesIssue applies each issuer of config/samples and of the docs'
// examples to the API server, changed only where it must point at the
// simulator (url, tokenURL, the names of its credential Secrets and the CA
// bundle), and issues the sample Certificate's request through it.
func TestSamplesIssue(t *testing.T) {
	t.Parallel()
	samples := readSamples(t)
	var cert *cmapi.Certificate
	issuers := map[string]bool{}
	var issuerSamples []shippedObject
	for _, s := range samples {
		switch s.obj.GetKind() {
		case "Certificate":
			if cert != nil {
				t.Fatalf("%s: a second sample Certificate", s.source)
			}
			cert = &cmapi.Certificate{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(s.obj.Object, cert); err != nil {
				t.Fatalf("%s: %v", s.source, err)
			}
		case v1alpha1.IssuerKind, v1alpha1.ClusterIssuerKind:
			issuerSamples = append(issuerSamples, s)
			if strings.HasPrefix(s.source, "config") {
				issuers[s.obj.GetKind()+"/"+s.obj.GetName()] = true
			}
		}
	}
	if cert == nil || len(issuerSamples) < 6 {
		t.Fatalf("found %d issuer samples and certificate %v; the samples or docs moved", len(issuerSamples), cert != nil)
	}
	if ref := cert.Spec.IssuerRef; ref.Group != v1alpha1.GroupVersion.Group || !issuers[ref.Kind+"/"+ref.Name] {
		t.Errorf("the sample Certificate's issuerRef %+v names no sample issuer", ref)
	}
	for i, s := range issuerSamples {
		t.Run(fmt.Sprintf("%d-%s", i, strings.NewReplacer("/", "-", ".", "-", ":", "-").Replace(s.source)), func(t *testing.T) {
			t.Parallel()
			issueThroughSample(t, s, cert)
		})
	}
}

func issueThroughSample(t *testing.T, s shippedObject, cert *cmapi.Certificate) {
	sim := newSim(t, ejbcasim.Config{})
	ns := newNamespace(t)
	obj := s.obj.DeepCopy()
	cluster := obj.GetKind() == v1alpha1.ClusterIssuerKind
	secretNS, prefix := ns, ""
	if cluster {
		// Cluster-scoped names and the shared Secret namespace are made
		// unique to this test.
		secretNS, prefix = clusterResourceNamespace, ns+"-"
		obj.SetName(prefix + obj.GetName())
	} else {
		obj.SetNamespace(ns)
	}
	spec, _, _ := unstructured.NestedMap(obj.Object, "spec")
	if spec == nil {
		t.Fatalf("%s: no spec", s.source)
	}

	// url: the simulator's host, the sample's path.
	u, err := url.Parse(spec["url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	simURL, _ := url.Parse(sim.URL())
	u.Host = simURL.Host
	spec["url"] = u.String()

	// Credentials: create what the sample names, with the simulator's.
	rename := func(m map[string]any, field string) string {
		name := prefix + m[field].(string)
		m[field] = name
		return name
	}
	mode, _, _ := unstructured.NestedString(spec, "auth", "mode")
	switch mode {
	case "", "mtls":
		mtls, _, _ := unstructured.NestedMap(spec, "auth", "mtls")
		name := rename(mtls, "secretName")
		_ = unstructured.SetNestedMap(spec, mtls, "auth", "mtls")
		create(t, tlsSecret(secretNS, name, sim.ClientCertPEM(), sim.ClientKeyPEM()))
	case "oauth2":
		o, _, _ := unstructured.NestedMap(spec, "auth", "oauth2")
		if ref, ok := o["tokenSecretRef"].(map[string]any); ok {
			name := rename(ref, "name")
			create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: secretNS, Name: name},
				Data: map[string][]byte{ref["key"].(string): []byte(sim.StaticToken())}})
		}
		if ref, ok := o["clientSecretRef"].(map[string]any); ok {
			o["tokenURL"] = sim.TokenURL()
			name := rename(ref, "name")
			idKey, secretKey := "client_id", "client_secret"
			if k, ok := ref["clientIDKey"].(string); ok {
				idKey = k
			}
			if k, ok := ref["clientSecretKey"].(string); ok {
				secretKey = k
			}
			create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: secretNS, Name: name},
				Data: map[string][]byte{idKey: []byte(sim.OAuthClientID()), secretKey: []byte(sim.OAuthClientSecret())}})
			// The simulator checks the audience the sample asks for.
			if aud, ok := o["audience"].(string); ok {
				sim.SetRequiredAudience(aud)
			}
		}
		_ = unstructured.SetNestedMap(spec, o, "auth", "oauth2")
	default:
		t.Fatalf("%s: auth.mode %q", s.source, mode)
	}

	// The CA bundle: the simulator's TLS root, where the sample keeps its
	// bundle (a sample without one trusts the system roots, which do not
	// know the simulator: it gets a ConfigMap).
	bundle, _, _ := unstructured.NestedMap(spec, "caBundle")
	if bundle == nil {
		bundle = map[string]any{"configMapRef": map[string]any{"name": "ejbca-ca", "key": "ca.crt"}}
	}
	if ref, ok := bundle["secretRef"].(map[string]any); ok {
		name := rename(ref, "name")
		create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: secretNS, Name: name},
			Data: map[string][]byte{ref["key"].(string): sim.CABundlePEM()}})
	}
	if ref, ok := bundle["configMapRef"].(map[string]any); ok {
		name := rename(ref, "name")
		create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: secretNS, Name: name},
			Data: map[string]string{ref["key"].(string): string(sim.CABundlePEM())}})
	}
	spec["caBundle"] = bundle
	if err := unstructured.SetNestedMap(obj.Object, spec, "spec"); err != nil {
		t.Fatal(err)
	}

	if err := k8s.Create(context.Background(), obj); err != nil {
		t.Fatalf("%s: applying %s %s: %v", s.source, obj.GetKind(), obj.GetName(), err)
	}
	var iss v1alpha1.Issuer = &v1alpha1.EJBCAIssuer{}
	if cluster {
		iss = &v1alpha1.EJBCAClusterIssuer{}
	}
	iss.SetName(obj.GetName())
	iss.SetNamespace(obj.GetNamespace())
	waitIssuer(t, iss, v1alpha1.ReasonChecked)

	// The request cert-manager would make for the sample Certificate.
	_, csr := testkit.CSR(t, testkit.CommonName(cert.Spec.CommonName), testkit.DNSNames(cert.Spec.DNSNames...))
	opts := []crOption{func(cr *cmapi.CertificateRequest) {
		cr.Spec.Duration = cert.Spec.Duration
		cr.Spec.Usages = cert.Spec.Usages
		cr.Spec.IssuerRef.Kind = obj.GetKind()
		cr.Spec.IssuerRef.Name = obj.GetName()
	}}
	cr := newRequest(t, ns, obj.GetName(), cert.Name, csr, opts...)
	approve(t, cr)

	// An administrator approves whatever the sample's profile holds back.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			for _, id := range sim.PendingApprovals() {
				_ = sim.Approve(id)
			}
		}
	}()
	testkit.Eventually(t, 60*time.Second, func() string {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(cr), cr); err != nil {
			return err.Error()
		}
		c := readyOf(cr)
		switch {
		case c == nil:
			return "no Ready condition"
		case c.Reason == cmapi.CertificateRequestReasonFailed:
			t.Fatalf("%s: the request failed: %s", s.source, c.Message)
		case c.Reason != cmapi.CertificateRequestReasonIssued:
			return fmt.Sprintf("Ready %s/%s: %s", c.Status, c.Reason, c.Message)
		}
		return ""
	})
	leaf, _ := pem.Decode(cr.Status.Certificate)
	if leaf == nil {
		t.Fatalf("%s: no certificate in the request's status", s.source)
	}
	c, err := x509.ParseCertificate(leaf.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject.CommonName != cert.Spec.CommonName {
		t.Errorf("%s: issued %q, want CN %q", s.source, c.Subject, cert.Spec.CommonName)
	}
}
