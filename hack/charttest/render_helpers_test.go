package charttest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// repoRoot is the main module's directory (this module lives in hack/charttest).
var repoRoot = func() string {
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		panic(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil || !bytes.Contains(b, []byte("module github.com/certctl-io/ejbca-issuer\n")) {
		panic("hack/charttest must sit two levels below the ejbca-issuer repository root")
	}
	return dir
}()

// kubeVersion is the Kubernetes version the chart is rendered for: that of
// the kube-apiserver hack/build-control-plane.sh builds into bin/.
const kubeVersion = "v1.36.3"

var chartDir = filepath.Join(repoRoot, "charts", "ejbca-issuer")

// namespacedKinds are the namespaced kinds the chart and kustomize render.
var namespacedKinds = []string{"ServiceAccount", "Role", "RoleBinding", "Deployment", "Service", "PodDisruptionBudget", "ServiceMonitor", "PrometheusRule", "ConfigMap"}

func loadChart(t testing.TB) *chart.Chart {
	t.Helper()
	c, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("loading the chart: %v", err)
	}
	return c
}

// render runs what `helm template --namespace ns release charts/ejbca-issuer
// -f values` runs: Helm's install action, client-only, including schema
// validation of the values.
func render(t testing.TB, release, namespace string, values map[string]any) ([]*unstructured.Unstructured, error) {
	t.Helper()
	return renderChart(loadChart(t), release, namespace, values)
}

// renderChart renders c (the chart directory, or a packaged release) as
// render does.
func renderChart(c *chart.Chart, release, namespace string, values map[string]any) ([]*unstructured.Unstructured, error) {
	inst := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	inst.DryRun, inst.ClientOnly, inst.Replace = true, true, true
	inst.ReleaseName, inst.Namespace = release, namespace
	// helm template reports the version of the client-go it was built with;
	// a test binary has none, so name the control plane's (bin/kube-apiserver).
	kv, err := chartutil.ParseKubeVersion(kubeVersion)
	if err != nil {
		return nil, err
	}
	inst.KubeVersion = kv
	rel, err := inst.Run(c, values)
	if err != nil {
		return nil, err
	}
	return decodeManifests(rel.Manifest)
}

// mustRender renders and fails the test on an error.
func mustRender(t testing.TB, release, namespace string, values map[string]any) []*unstructured.Unstructured {
	t.Helper()
	objs, err := render(t, release, namespace, values)
	if err != nil {
		t.Fatalf("rendering release %s: %v", release, err)
	}
	return objs
}

// values parses YAML values (as given with --set or -f).
func values(t testing.TB, y string) map[string]any {
	t.Helper()
	m := map[string]any{}
	if err := yaml.Unmarshal([]byte(y), &m); err != nil {
		t.Fatalf("values %q: %v", y, err)
	}
	return m
}

func valuesFile(t testing.TB, path string) map[string]any {
	t.Helper()
	v, err := chartutil.ReadValuesFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return v.AsMap()
}

func decodeManifests(manifest string) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifest), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		if len(u.Object) == 0 {
			continue
		}
		out = append(out, u)
	}
}

// kustomizeBuild runs `kustomize build config/default`.
func kustomizeBuild(t testing.TB) []*unstructured.Unstructured {
	t.Helper()
	return kustomizeBuildDir(t, filepath.Join(repoRoot, "config", "default"))
}

func kustomizeBuildDir(t testing.TB, dir string) []*unstructured.Unstructured {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	b, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeManifests(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func find(objs []*unstructured.Unstructured, kind, namespace, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetNamespace() == namespace && o.GetName() == name {
			return o
		}
	}
	return nil
}

func mustFind(t testing.TB, objs []*unstructured.Unstructured, kind, namespace, name string) *unstructured.Unstructured {
	t.Helper()
	if o := find(objs, kind, namespace, name); o != nil {
		return o
	}
	t.Fatalf("no %s %s/%s among %v", kind, namespace, name, ids(objs))
	return nil
}

func ofKind(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

func id(o *unstructured.Unstructured) string {
	if o.GetNamespace() == "" {
		return o.GetKind() + " " + o.GetName()
	}
	return o.GetKind() + " " + o.GetNamespace() + "/" + o.GetName()
}

func ids(objs []*unstructured.Unstructured) []string {
	out := make([]string, 0, len(objs))
	for _, o := range objs {
		out = append(out, id(o))
	}
	sort.Strings(out)
	return out
}

// into converts an unstructured object into a typed one.
func into[T any](t testing.TB, o *unstructured.Unstructured) *T {
	t.Helper()
	v := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, v, true); err != nil {
		t.Fatalf("%s: %v", id(o), err)
	}
	return v
}

func deploymentOf(t testing.TB, objs []*unstructured.Unstructured) *appsv1.Deployment {
	t.Helper()
	ds := ofKind(objs, "Deployment")
	if len(ds) != 1 {
		t.Fatalf("%d Deployments rendered, want 1", len(ds))
	}
	return into[appsv1.Deployment](t, ds[0])
}

// access is one (apiGroup, resource, verb) that a set of rules grants;
// comparing sets of them ignores how rules are grouped.
type access struct{ group, resource, name, verb string }

func (a access) String() string {
	s := a.verb + " " + a.resource
	if a.group != "" {
		s += "." + a.group
	}
	if a.name != "" {
		s += "/" + a.name
	}
	return s
}

func accesses(rules []rbacv1.PolicyRule) map[access]bool {
	out := map[access]bool{}
	for _, r := range rules {
		names := r.ResourceNames
		if len(names) == 0 {
			names = []string{""}
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					for _, n := range names {
						out[access{g, res, n, v}] = true
					}
				}
			}
		}
	}
	return out
}

func union(sets ...map[access]bool) map[access]bool {
	out := map[access]bool{}
	for _, s := range sets {
		for a := range s {
			out[a] = true
		}
	}
	return out
}

func diffAccess(got, want map[access]bool) string {
	var missing, extra []string
	for a := range want {
		if !got[a] {
			missing = append(missing, a.String())
		}
	}
	for a := range got {
		if !want[a] {
			extra = append(extra, a.String())
		}
	}
	if len(missing)+len(extra) == 0 {
		return ""
	}
	slices.Sort(missing)
	slices.Sort(extra)
	return fmt.Sprintf("missing %v, extra %v", missing, extra)
}

// generatedRoles reads controller-gen's config/rbac/role.yaml: the
// ClusterRole's and the (leader election) Role's rules.
func generatedRoles(t testing.TB) (cluster, leader []rbacv1.PolicyRule) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeManifests(string(b))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		switch o.GetKind() {
		case "ClusterRole":
			cluster = append(cluster, into[rbacv1.ClusterRole](t, o).Rules...)
		case "Role":
			leader = append(leader, into[rbacv1.Role](t, o).Rules...)
		}
	}
	if len(cluster) == 0 || len(leader) == 0 {
		t.Fatal("config/rbac/role.yaml has no ClusterRole or no Role rules")
	}
	return cluster, leader
}

func isSecretAccess(a access) bool {
	return a.group == "" && (a.resource == "secrets" || a.resource == "configmaps")
}

func filterAccess(s map[access]bool, keep func(access) bool) map[access]bool {
	out := map[access]bool{}
	for a := range s {
		if keep(a) {
			out[a] = true
		}
	}
	return out
}
