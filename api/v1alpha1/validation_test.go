package v1alpha1_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/testenv"
)

var k8s client.Client

func TestMain(m *testing.M) {
	env, err := testenv.New()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the control plane:", err)
		os.Exit(1)
	}
	k8s, err = client.New(cfg, client.Options{Scheme: testenv.Scheme})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
	}
	os.Exit(code)
}

func TestCRDsAreInstalledWithCategoriesAndColumns(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, scope, short string }{
		{"ejbcaissuers.ejbca-issuer.certctl.io", "Namespaced", "ejbcaiss"},
		{"ejbcaclusterissuers.ejbca-issuer.certctl.io", "Cluster", "ejbcaciss"},
	} {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := k8s.Get(context.Background(), client.ObjectKey{Name: tc.name}, &crd); err != nil {
			t.Fatalf("CRD %s: %v", tc.name, err)
		}
		if string(crd.Spec.Scope) != tc.scope {
			t.Errorf("%s scope = %s, want %s", tc.name, crd.Spec.Scope, tc.scope)
		}
		if !contains(crd.Spec.Names.Categories, "cert-manager") {
			t.Errorf("%s categories = %v, want cert-manager among them", tc.name, crd.Spec.Names.Categories)
		}
		if !contains(crd.Spec.Names.ShortNames, tc.short) {
			t.Errorf("%s short names = %v, want %s", tc.name, crd.Spec.Names.ShortNames, tc.short)
		}
		var cols []string
		for _, c := range crd.Spec.Versions[0].AdditionalPrinterColumns {
			cols = append(cols, c.Name)
		}
		if got := strings.Join(cols, ","); got != "Ready,Reason,CA Expires,Message,Age" {
			t.Errorf("%s printer columns = %s", tc.name, got)
		}
		if crd.Spec.Versions[0].Subresources == nil || crd.Spec.Versions[0].Subresources.Status == nil {
			t.Errorf("%s has no status subresource", tc.name)
		}
	}
}

func TestSamplesAreAccepted(t *testing.T) {
	t.Parallel()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, "config", "samples", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples found: %v", err)
	}
	kinds := map[string]bool{}
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			var u unstructured.Unstructured
			if err := dec.Decode(&u.Object); err != nil {
				break
			}
			if len(u.Object) == 0 {
				continue
			}
			kinds[u.GetKind()] = true
			if err := k8s.Create(context.Background(), &u, client.DryRunAll); err != nil {
				t.Errorf("%s: %s %s rejected: %v", filepath.Base(f), u.GetKind(), u.GetName(), err)
			}
		}
	}
	for _, k := range []string{"EJBCAIssuer", "EJBCAClusterIssuer", "Certificate"} {
		if !kinds[k] {
			t.Errorf("config/samples has no %s", k)
		}
	}
}

func validSpec() v1alpha1.IssuerSpec {
	return v1alpha1.IssuerSpec{
		URL:    "https://ejbca.example.com:8443",
		CAName: "IssuingCA",
		Auth:   v1alpha1.AuthSpec{MTLS: &v1alpha1.MTLSAuth{SecretName: "client"}},
	}
}

func TestInvalidSpecsAreRejectedWithAMessage(t *testing.T) {
	t.Parallel()
	oauthClientCreds := func(s *v1alpha1.IssuerSpec) {
		s.Auth = v1alpha1.AuthSpec{Mode: v1alpha1.AuthModeOAuth2, OAuth2: &v1alpha1.OAuth2Auth{
			TokenURL: "https://idp.example.com/token", ClientSecretRef: &v1alpha1.ClientSecretRef{Name: "oauth"},
		}}
	}
	for _, tc := range []struct {
		name   string
		mutate func(*v1alpha1.IssuerSpec)
		want   string
	}{
		{"http url", func(s *v1alpha1.IssuerSpec) { s.URL = "http://ejbca.example.com" }, "url must start with https://"},
		{"url without host", func(s *v1alpha1.IssuerSpec) { s.URL = "https://" }, "url must be an absolute URL with a host"},
		{"url with query", func(s *v1alpha1.IssuerSpec) { s.URL = "https://ejbca.example.com/?a=b" }, "url must not carry a query string"},
		{"url with a fragment", func(s *v1alpha1.IssuerSpec) { s.URL = "https://ejbca.example.com:8443/#rest" }, "url must not carry a fragment"},
		{"no url", func(s *v1alpha1.IssuerSpec) { s.URL = "" }, "spec.url"},
		{"no caName", func(s *v1alpha1.IssuerSpec) { s.CAName = "" }, "spec.caName"},
		{"mtls without secret", func(s *v1alpha1.IssuerSpec) { s.Auth.MTLS = nil }, "auth.mode is mtls but auth.mtls.secretName is not set"},
		{"oauth2 without oauth2", func(s *v1alpha1.IssuerSpec) {
			s.Auth = v1alpha1.AuthSpec{Mode: v1alpha1.AuthModeOAuth2}
		}, "auth.mode is oauth2 but auth.oauth2 is not set"},
		{"oauth2 with neither", func(s *v1alpha1.IssuerSpec) {
			s.Auth = v1alpha1.AuthSpec{Mode: v1alpha1.AuthModeOAuth2, OAuth2: &v1alpha1.OAuth2Auth{}}
		}, "auth.oauth2 needs exactly one of tokenSecretRef"},
		{"oauth2 with both", func(s *v1alpha1.IssuerSpec) {
			oauthClientCreds(s)
			s.Auth.OAuth2.TokenSecretRef = &v1alpha1.SecretKeySelector{Name: "t", Key: "token"}
		}, "auth.oauth2 needs exactly one of tokenSecretRef"},
		{"token url without client secret", func(s *v1alpha1.IssuerSpec) {
			oauthClientCreds(s)
			s.Auth.OAuth2.ClientSecretRef = nil
		}, "auth.oauth2.tokenURL and auth.oauth2.clientSecretRef go together"},
		{"http token url", func(s *v1alpha1.IssuerSpec) {
			oauthClientCreds(s)
			s.Auth.OAuth2.TokenURL = "http://idp.example.com/token"
		}, "auth.oauth2.tokenURL must be an https:// URL"},
		{"scopes with static token", func(s *v1alpha1.IssuerSpec) {
			s.Auth = v1alpha1.AuthSpec{Mode: v1alpha1.AuthModeOAuth2, OAuth2: &v1alpha1.OAuth2Auth{
				TokenSecretRef: &v1alpha1.SecretKeySelector{Name: "t", Key: "token"}, Scopes: []string{"x"},
			}}
		}, "scopes and audience only apply to client credentials"},
		{"unknown auth mode", func(s *v1alpha1.IssuerSpec) { s.Auth.Mode = "basic" }, "spec.auth.mode"},
		{"unknown end entity name source", func(s *v1alpha1.IssuerSpec) { s.EndEntityName = "email" }, "spec.endEntityName"},
		{"ca bundle with both refs", func(s *v1alpha1.IssuerSpec) {
			s.CABundle = &v1alpha1.CABundle{
				SecretRef:    &v1alpha1.SecretKeySelector{Name: "a", Key: "ca.crt"},
				ConfigMapRef: &v1alpha1.ConfigMapKeySelector{Name: "b", Key: "ca.crt"},
			}
		}, "caBundle needs exactly one of secretRef or configMapRef"},
		{"ca bundle with neither", func(s *v1alpha1.IssuerSpec) { s.CABundle = &v1alpha1.CABundle{} },
			"caBundle needs exactly one of secretRef or configMapRef"},
		{"negative maxWait", func(s *v1alpha1.IssuerSpec) {
			s.Approval = &v1alpha1.ApprovalSpec{MaxWait: &metav1.Duration{Duration: -1e9}}
		}, "approval.maxWait must be a positive duration"},
		{"negative pollInterval", func(s *v1alpha1.IssuerSpec) {
			s.Approval = &v1alpha1.ApprovalSpec{PollInterval: &metav1.Duration{Duration: -5e9}}
		}, "approval.pollInterval must be at least 1s"},
		{"negative revocation gracePeriod", func(s *v1alpha1.IssuerSpec) {
			s.Revocation = &v1alpha1.RevocationSpec{Superseded: true, GracePeriod: &metav1.Duration{Duration: -1e9}}
		}, "revocation.gracePeriod must not be negative"},
		{"unknown override", func(s *v1alpha1.IssuerSpec) { s.AllowedOverrides = []v1alpha1.Override{"caName"} },
			"spec.allowedOverrides"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, obj := range []v1alpha1.Issuer{
				&v1alpha1.EJBCAIssuer{ObjectMeta: metav1.ObjectMeta{Name: "bad", Namespace: "default"}},
				&v1alpha1.EJBCAClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: "bad"}},
			} {
				s := validSpec()
				tc.mutate(&s)
				*obj.GetSpec() = s
				err := k8s.Create(context.Background(), obj, client.DryRunAll)
				if err == nil {
					t.Fatalf("%T accepted", obj)
				}
				if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%T: got %v, want an Invalid error containing %q", obj, err, tc.want)
				}
			}
		})
	}
}

func TestValidSpecIsAcceptedAndDefaulted(t *testing.T) {
	t.Parallel()
	s := validSpec()
	s.Auth.Mode = ""
	s.Approval = &v1alpha1.ApprovalSpec{}
	iss := &v1alpha1.EJBCAIssuer{ObjectMeta: metav1.ObjectMeta{Name: "defaults", Namespace: "default"}, Spec: s}
	if err := k8s.Create(context.Background(), iss, client.DryRunAll); err != nil {
		t.Fatal(err)
	}
	if iss.Spec.Auth.Mode != v1alpha1.AuthModeMTLS {
		t.Errorf("auth.mode defaulted to %q, want mtls", iss.Spec.Auth.Mode)
	}
	if iss.Spec.EndEntityName != v1alpha1.EndEntityNameCertificateName {
		t.Errorf("endEntityName defaulted to %q, want certificateName", iss.Spec.EndEntityName)
	}
	if iss.Spec.Approval.Flow != v1alpha1.ApprovalFlowDetect {
		t.Errorf("approval.flow defaulted to %q, want Detect", iss.Spec.Approval.Flow)
	}

	o := validSpec()
	o.Auth = v1alpha1.AuthSpec{Mode: v1alpha1.AuthModeOAuth2, OAuth2: &v1alpha1.OAuth2Auth{
		TokenURL: "https://idp.example.com/token", ClientSecretRef: &v1alpha1.ClientSecretRef{Name: "oauth"},
		Scopes: []string{"ejbca"}, Audience: "ejbca",
	}}
	o.Approval = &v1alpha1.ApprovalSpec{PollInterval: &metav1.Duration{Duration: 30e9}, MaxWait: &metav1.Duration{Duration: 3600e9}}
	ciss := &v1alpha1.EJBCAClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: "defaults"}, Spec: o}
	if err := k8s.Create(context.Background(), ciss, client.DryRunAll); err != nil {
		t.Fatal(err)
	}
	ref := ciss.Spec.Auth.OAuth2.ClientSecretRef
	if ref.ClientIDKey != "client_id" || ref.ClientSecretKey != "client_secret" {
		t.Errorf("client secret keys defaulted to %q/%q, want client_id/client_secret", ref.ClientIDKey, ref.ClientSecretKey)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestRevocationIsOffUnlessSet: an issuer without spec.revocation revokes
// nothing; gracePeriod defaults to an hour.
func TestRevocationIsOffUnlessSet(t *testing.T) {
	t.Parallel()
	s := validSpec()
	if s.RevokesSuperseded() || s.RevokesDeleted() {
		t.Error("revocation on without spec.revocation")
	}
	s.Revocation = &v1alpha1.RevocationSpec{Superseded: true}
	iss := &v1alpha1.EJBCAIssuer{ObjectMeta: metav1.ObjectMeta{Name: "revocation", Namespace: "default"}, Spec: s}
	if err := k8s.Create(context.Background(), iss, client.DryRunAll); err != nil {
		t.Fatal(err)
	}
	if !iss.Spec.RevokesSuperseded() || iss.Spec.RevokesDeleted() || iss.Spec.RevocationGracePeriod() != v1alpha1.DefaultRevocationGracePeriod {
		t.Errorf("revocation %+v: superseded %t deleted %t grace %s", iss.Spec.Revocation, iss.Spec.RevokesSuperseded(), iss.Spec.RevokesDeleted(), iss.Spec.RevocationGracePeriod())
	}
}

// TestNodeURLsAreValidated: spec.urls, the EJBCA nodes after url, takes
// https URLs with a host, at most 4, no repeats and not url again; an
// issuer with url alone or with valid urls is accepted.
func TestNodeURLsAreValidated(t *testing.T) {
	t.Parallel()
	urls := func(u ...v1alpha1.NodeURL) func(*v1alpha1.IssuerSpec) {
		return func(s *v1alpha1.IssuerSpec) { s.URLs = u }
	}
	for _, tc := range []struct {
		name   string
		mutate func(*v1alpha1.IssuerSpec)
		want   string // "" means accepted
	}{
		{"url alone", urls(), ""},
		{"two more nodes", urls("https://ejbca-2.example.com:8443", "https://ejbca-3.example.com/ejbca/ejbca-rest-api"), ""},
		{"http node", urls("http://ejbca-2.example.com"), "each of urls must start with https://"},
		{"node without host", urls("https://"), "each of urls must be an absolute URL with a host"},
		{"node with query", urls("https://ejbca-2.example.com/?a=b"), "each of urls must not carry a query string"},
		{"node with fragment", urls("https://ejbca-2.example.com/#x"), "each of urls must not carry a fragment"},
		{"empty node", urls(""), "spec.urls"},
		{"repeated node", urls("https://ejbca-2.example.com", "https://ejbca-2.example.com"), "Duplicate value"},
		{"url repeated", urls("https://ejbca.example.com:8443"), "do not repeat url"},
		{"url repeated with a slash", urls("https://ejbca.example.com:8443/"), "do not repeat url"},
		{"six nodes", urls("https://a.example.com", "https://b.example.com", "https://c.example.com", "https://d.example.com", "https://e.example.com"), "spec.urls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, obj := range []v1alpha1.Issuer{
				&v1alpha1.EJBCAIssuer{ObjectMeta: metav1.ObjectMeta{Name: "nodes", Namespace: "default"}},
				&v1alpha1.EJBCAClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: "nodes"}},
			} {
				s := validSpec()
				tc.mutate(&s)
				*obj.GetSpec() = s
				err := k8s.Create(context.Background(), obj, client.DryRunAll)
				switch {
				case tc.want == "" && err != nil:
					t.Errorf("%T rejected: %v", obj, err)
				case tc.want != "" && err == nil:
					t.Errorf("%T accepted", obj)
				case tc.want != "" && (!apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want)):
					t.Errorf("%T: got %v, want an Invalid error containing %q", obj, err, tc.want)
				}
			}
		})
	}
	s := validSpec()
	s.URLs = []v1alpha1.NodeURL{"https://b.example.com"}
	if got := s.NodeURLs(); len(got) != 2 || got[0] != s.URL || got[1] != "https://b.example.com" {
		t.Errorf("NodeURLs = %v, want url then urls", got)
	}
}
