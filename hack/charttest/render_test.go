package charttest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

const approverName = "cert-manager-controller-approve:ejbca-issuer-certctl-io"

func appVersion(t *testing.T) string {
	t.Helper()
	return loadChart(t).Metadata.AppVersion
}

func container(t *testing.T, d *appsv1.Deployment) corev1.Container {
	t.Helper()
	if n := len(d.Spec.Template.Spec.Containers); n != 1 {
		t.Fatalf("%d containers, want 1", n)
	}
	return d.Spec.Template.Spec.Containers[0]
}

func TestRenderDefaults(t *testing.T) {
	objs := mustRender(t, "ejbca-issuer", "ejbca-issuer", nil)
	want := []string{
		"ClusterRole " + approverName,
		"ClusterRole ejbca-issuer",
		"ClusterRoleBinding " + approverName,
		"ClusterRoleBinding ejbca-issuer",
		"CustomResourceDefinition ejbcaclusterissuers.ejbca-issuer.certctl.io",
		"CustomResourceDefinition ejbcaissuers.ejbca-issuer.certctl.io",
		"Deployment ejbca-issuer/ejbca-issuer",
		"Role ejbca-issuer/ejbca-issuer-leader-election",
		"RoleBinding ejbca-issuer/ejbca-issuer-leader-election",
		"Service ejbca-issuer/ejbca-issuer-metrics",
		"ServiceAccount ejbca-issuer/ejbca-issuer",
	}
	if got := ids(objs); !slices.Equal(got, want) {
		t.Fatalf("rendered objects:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	checkCommon(t, objs, "ejbca-issuer", nil)

	d := deploymentOf(t, objs)
	c := container(t, d)
	if img := "ghcr.io/certctl-io/ejbca-issuer:" + appVersion(t); c.Image != img || c.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("image %s (%s), want %s: the tag defaults to the chart's appVersion", c.Image, c.ImagePullPolicy, img)
	}
	wantArgs := []string{
		"--cluster-resource-namespace=ejbca-issuer",
		"--leader-elect=true",
		"--leader-election-namespace=ejbca-issuer",
		"--leader-election-lease-duration=15s",
		"--leader-election-renew-deadline=10s",
		"--leader-election-retry-period=2s",
		"--metrics-bind-address=:8080",
		"--health-probe-bind-address=:8081",
		"--max-concurrent-reconciles=16",
		"--retry-window=1h",
		"--revocation-abandon-after=24h",
		"--issuer-health-check-interval=5m",
		"--ejbca-timeout=30s",
		"--ejbca-qps=0",
		"--ejbca-burst=0",
		"--ejbca-max-concurrent=0",
		"--max-csr-bytes=65536",
		"--max-csr-sans=1000",
		"--kube-api-qps=320",
		"--kube-api-burst=640",
		"--log-format=json",
		"--log-level=0",
	}
	if !slices.Equal(c.Args, wantArgs) {
		t.Errorf("args:\n  %s\nwant:\n  %s", strings.Join(c.Args, "\n  "), strings.Join(wantArgs, "\n  "))
	}
	checkPodNamespaceEnv(t, c)
	checkMemoryLimitEnv(t, c)
	checkProbes(t, c, 8081)
	if *d.Spec.Replicas != 1 || d.Spec.Template.Spec.ServiceAccountName != "ejbca-issuer" {
		t.Errorf("replicas %d, serviceAccountName %q", *d.Spec.Replicas, d.Spec.Template.Spec.ServiceAccountName)
	}
	if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "metrics" && p.ContainerPort == 8080 }) {
		t.Errorf("no metrics port 8080: %+v", c.Ports)
	}
	svc := into[corev1.Service](t, mustFind(t, objs, "Service", "ejbca-issuer", "ejbca-issuer-metrics"))
	if p := svc.Spec.Ports; len(p) != 1 || p[0].Port != 8080 || p[0].TargetPort.StrVal != "metrics" {
		t.Errorf("metrics Service ports %+v", p)
	}
	if !reflect.DeepEqual(svc.Spec.Selector, d.Spec.Selector.MatchLabels) {
		t.Errorf("metrics Service selects %v, the Deployment's pods are %v", svc.Spec.Selector, d.Spec.Selector.MatchLabels)
	}

	for _, crd := range ofKind(objs, "CustomResourceDefinition") {
		if crd.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
			t.Errorf("%s is not kept on uninstall (crds.keep defaults to true)", id(crd))
		}
	}
	checkCRDsMatchGenerated(t, objs)
	checkApprover(t, objs, "cert-manager", "cert-manager")
}

// checkCommon: every namespaced object names its namespace (a Role without one
// lands in whatever namespace kubectl or Helm defaults to), every object
// carries the chart's labels and commonLabels, and every binding refers to a
// rendered role and ServiceAccount.
func checkCommon(t *testing.T, objs []*unstructured.Unstructured, release string, common map[string]string) {
	t.Helper()
	for _, o := range objs {
		if slices.Contains(namespacedKinds, o.GetKind()) && o.GetNamespace() == "" {
			t.Errorf("%s has no namespace", id(o))
		}
		l := o.GetLabels()
		if l["app.kubernetes.io/instance"] != release || l["app.kubernetes.io/managed-by"] != "Helm" || l["helm.sh/chart"] == "" {
			t.Errorf("%s labels %v lack the chart's", id(o), l)
		}
		for k, v := range common {
			if l[k] != v {
				t.Errorf("%s lacks commonLabel %s=%s: %v", id(o), k, v, l)
			}
		}
	}
	checkBindings(t, objs)
}

func checkBindings(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, o := range ofKind(objs, "ClusterRoleBinding") {
		b := into[rbacv1.ClusterRoleBinding](t, o)
		if b.RoleRef.Kind != "ClusterRole" || find(objs, "ClusterRole", "", b.RoleRef.Name) == nil {
			t.Errorf("%s refers to %s %s, which is not rendered", id(o), b.RoleRef.Kind, b.RoleRef.Name)
		}
		checkSubjects(t, objs, o, b.Subjects)
	}
	for _, o := range ofKind(objs, "RoleBinding") {
		b := into[rbacv1.RoleBinding](t, o)
		if b.RoleRef.Kind != "Role" || find(objs, "Role", o.GetNamespace(), b.RoleRef.Name) == nil {
			t.Errorf("%s refers to %s %s, which is not rendered in its namespace", id(o), b.RoleRef.Kind, b.RoleRef.Name)
		}
		checkSubjects(t, objs, o, b.Subjects)
	}
}

func checkSubjects(t *testing.T, objs []*unstructured.Unstructured, o *unstructured.Unstructured, subjects []rbacv1.Subject) {
	t.Helper()
	for _, s := range subjects {
		if s.Kind != "ServiceAccount" || s.Namespace == "" {
			t.Errorf("%s subject %+v: want a ServiceAccount with a namespace", id(o), s)
		}
		if o.GetName() == approverName {
			continue // cert-manager's ServiceAccount, not ours
		}
		if find(objs, "ServiceAccount", s.Namespace, s.Name) == nil {
			t.Errorf("%s binds ServiceAccount %s/%s, which is not rendered", id(o), s.Namespace, s.Name)
		}
	}
}

func checkPodNamespaceEnv(t *testing.T, c corev1.Container) {
	t.Helper()
	for _, e := range c.Env {
		if e.Name == "POD_NAMESPACE" {
			if e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "metadata.namespace" {
				t.Errorf("POD_NAMESPACE is not the downward API's metadata.namespace: %+v", e)
			}
			return
		}
	}
	t.Errorf("no POD_NAMESPACE env: %+v", c.Env)
}

// checkMemoryLimitEnv: MEMORY_LIMIT is the container's memory limit in
// bytes (the manager sets its Go memory limit from it).
func checkMemoryLimitEnv(t *testing.T, c corev1.Container) {
	t.Helper()
	for _, e := range c.Env {
		if e.Name == "MEMORY_LIMIT" {
			if e.ValueFrom == nil || e.ValueFrom.ResourceFieldRef == nil || e.ValueFrom.ResourceFieldRef.Resource != "limits.memory" ||
				(e.ValueFrom.ResourceFieldRef.Divisor.Value() != 0 && e.ValueFrom.ResourceFieldRef.Divisor.Value() != 1) {
				t.Errorf("MEMORY_LIMIT is not the downward API's limits.memory in bytes: %+v", e)
			}
			return
		}
	}
	t.Errorf("no MEMORY_LIMIT env: %+v", c.Env)
}

// checkProbes: liveness and readiness probes GET /healthz and /readyz on the
// container port named health, which is the --health-probe-bind-address port.
func checkProbes(t *testing.T, c corev1.Container, port int32) {
	t.Helper()
	if !slices.Contains(c.Args, "--health-probe-bind-address=:"+itoa(port)) {
		t.Errorf("args %v do not bind the health probes to :%d", c.Args, port)
	}
	if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "health" && p.ContainerPort == port }) {
		t.Errorf("no container port health=%d: %+v", port, c.Ports)
	}
	for name, p := range map[string]*corev1.Probe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != name || p.HTTPGet.Port.StrVal != "health" {
			t.Errorf("probe for %s: %+v", name, p)
		}
	}
}

func itoa(i int32) string { return strconv.Itoa(int(i)) }

// checkCRDsMatchGenerated: the chart's CRDs are controller-gen's, unchanged.
func checkCRDsMatchGenerated(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, "config", "crd", "bases", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no generated CRDs: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		gen, err := decodeManifests(string(b))
		if err != nil || len(gen) != 1 {
			t.Fatalf("%s: %v", f, err)
		}
		got := find(objs, "CustomResourceDefinition", "", gen[0].GetName())
		if got == nil {
			t.Errorf("CRD %s is not rendered", gen[0].GetName())
			continue
		}
		if !reflect.DeepEqual(got.Object["spec"], gen[0].Object["spec"]) {
			t.Errorf("CRD %s differs from %s: run make manifests", gen[0].GetName(), f)
		}
	}
	if n := len(ofKind(objs, "CustomResourceDefinition")); n != len(files) {
		t.Errorf("%d CRDs rendered, %d generated", n, len(files))
	}
}

// checkApprover: the approver ClusterRole grants exactly `approve` on our two
// signer names, and its binding names cert-manager's ServiceAccount.
func checkApprover(t *testing.T, objs []*unstructured.Unstructured, saNamespace, saName string) {
	t.Helper()
	role := into[rbacv1.ClusterRole](t, mustFind(t, objs, "ClusterRole", "", approverName))
	want := accesses([]rbacv1.PolicyRule{{
		APIGroups: []string{"cert-manager.io"}, Resources: []string{"signers"}, Verbs: []string{"approve"},
		ResourceNames: []string{"ejbcaissuers.ejbca-issuer.certctl.io/*", "ejbcaclusterissuers.ejbca-issuer.certctl.io/*"},
	}})
	if d := diffAccess(accesses(role.Rules), want); d != "" {
		t.Errorf("approver ClusterRole: %s", d)
	}
	b := into[rbacv1.ClusterRoleBinding](t, mustFind(t, objs, "ClusterRoleBinding", "", approverName))
	wantSubjects := []rbacv1.Subject{{Kind: "ServiceAccount", Name: saName, Namespace: saNamespace}}
	if !reflect.DeepEqual(b.Subjects, wantSubjects) || b.RoleRef.Name != approverName {
		t.Errorf("approver binding %+v -> %+v, want %+v", b.Subjects, b.RoleRef, wantSubjects)
	}
}

func TestRenderAllOptions(t *testing.T) {
	objs := mustRender(t, "ejbca", "pki", valuesFile(t, "testdata/all-options.yaml"))
	want := []string{
		"ClusterRole " + approverName,
		"ClusterRole pki-ejbca",
		"ClusterRole pki-ejbca-csr-approver",
		"ClusterRole pki-ejbca-csr-requester",
		"ClusterRoleBinding " + approverName,
		"ClusterRoleBinding pki-ejbca",
		"CustomResourceDefinition ejbcaclusterissuers.ejbca-issuer.certctl.io",
		"CustomResourceDefinition ejbcaissuers.ejbca-issuer.certctl.io",
		"Deployment pki/pki-ejbca",
		"PodDisruptionBudget pki/pki-ejbca",
		"Role pki-leases/pki-ejbca-leader-election",
		"Role pki-secrets/pki-ejbca-secrets",
		"RoleBinding pki-leases/pki-ejbca-leader-election",
		"RoleBinding pki-secrets/pki-ejbca-secrets",
		"Service pki/pki-ejbca-metrics",
		"ServiceAccount pki/pki-ejbca-sa",
		"ServiceMonitor monitoring/pki-ejbca",
	}
	if got := ids(objs); !slices.Equal(got, want) {
		t.Fatalf("rendered objects:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	checkCommon(t, objs, "ejbca", map[string]string{"team": "pki", "cost-center": "4242", "app.kubernetes.io/name": "eis"})

	d := deploymentOf(t, objs)
	pod := d.Spec.Template.Spec
	c := container(t, d)
	if c.Image != "registry.example.com/pki/ejbca-issuer@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" ||
		c.ImagePullPolicy != corev1.PullAlways {
		t.Errorf("image %s (%s): want the digest, pull Always", c.Image, c.ImagePullPolicy)
	}
	wantArgs := []string{
		"--cluster-resource-namespace=pki-secrets",
		"--leader-elect=true",
		"--leader-election-namespace=pki-leases",
		"--leader-election-lease-duration=20s",
		"--leader-election-renew-deadline=12s",
		"--leader-election-retry-period=3s",
		"--metrics-bind-address=:9402",
		"--health-probe-bind-address=:9403",
		"--max-concurrent-reconciles=4",
		"--retry-window=2h30m",
		"--revocation-abandon-after=36h",
		"--issuer-health-check-interval=90s",
		"--ejbca-timeout=45s",
		"--ejbca-qps=2.5",
		"--ejbca-burst=5",
		"--ejbca-max-concurrent=3",
		"--max-csr-bytes=32768",
		"--max-csr-sans=50",
		"--kube-api-qps=7.5",
		"--kube-api-burst=15",
		"--log-format=text",
		"--log-level=3",
		"--enable-pprof",
		"--secrets-in-cluster-resource-namespace-only",
		"--kube-api-burst=20",
	}
	if !slices.Equal(c.Args, wantArgs) {
		t.Errorf("args:\n  %s\nwant:\n  %s", strings.Join(c.Args, "\n  "), strings.Join(wantArgs, "\n  "))
	}
	checkPodNamespaceEnv(t, c)
	checkProbes(t, c, 9403)
	for _, e := range []string{"HTTPS_PROXY", "NO_PROXY"} {
		if !slices.ContainsFunc(c.Env, func(v corev1.EnvVar) bool { return v.Name == e }) {
			t.Errorf("extraEnv %s missing: %+v", e, c.Env)
		}
	}
	if p := c.LivenessProbe; p.InitialDelaySeconds != 11 || p.PeriodSeconds != 21 || p.TimeoutSeconds != 3 || p.FailureThreshold != 4 {
		t.Errorf("livenessProbe %+v", p)
	}
	if p := c.ReadinessProbe; p.InitialDelaySeconds != 1 || p.PeriodSeconds != 7 || p.SuccessThreshold != 2 || p.FailureThreshold != 2 {
		t.Errorf("readinessProbe %+v", p)
	}
	if len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != "/etc/ssl/certs/corporate" ||
		len(pod.Volumes) != 1 || pod.Volumes[0].ConfigMap == nil || pod.Volumes[0].ConfigMap.Name != "corporate-ca" {
		t.Errorf("volumes %+v, mounts %+v", pod.Volumes, c.VolumeMounts)
	}
	if c.Resources.Limits.Cpu().String() != "1" || c.Resources.Requests.Memory().String() != "128Mi" {
		t.Errorf("resources %+v", c.Resources)
	}
	if *d.Spec.Replicas != 3 || pod.ServiceAccountName != "pki-ejbca-sa" || pod.PriorityClassName != "pki-critical" ||
		*pod.TerminationGracePeriodSeconds != 45 || len(pod.ImagePullSecrets) != 1 || pod.ImagePullSecrets[0].Name != "regcred" {
		t.Errorf("replicas %d, serviceAccountName %s, priorityClassName %s, grace %d, pull secrets %+v",
			*d.Spec.Replicas, pod.ServiceAccountName, pod.PriorityClassName, *pod.TerminationGracePeriodSeconds, pod.ImagePullSecrets)
	}
	if pod.NodeSelector["example.com/pool"] != "pki" || len(pod.Tolerations) != 1 || pod.Tolerations[0].Key != "dedicated" ||
		pod.Affinity == nil || pod.Affinity.PodAntiAffinity == nil {
		t.Errorf("nodeSelector %v, tolerations %+v, affinity %+v", pod.NodeSelector, pod.Tolerations, pod.Affinity)
	}
	if tsc := pod.TopologySpreadConstraints; len(tsc) != 1 || tsc[0].LabelSelector == nil ||
		!reflect.DeepEqual(tsc[0].LabelSelector.MatchLabels, d.Spec.Selector.MatchLabels) {
		t.Errorf("topologySpreadConstraints %+v: want the pod's selector filled in", tsc)
	}
	if pod.SecurityContext.FSGroup == nil || *pod.SecurityContext.FSGroup != 65532 || *c.SecurityContext.RunAsUser != 65532 {
		t.Errorf("security contexts %+v %+v", pod.SecurityContext, c.SecurityContext)
	}
	if d.Annotations["example.com/deployment"] != "true" || d.Spec.Template.Annotations["example.com/pod"] != "true" ||
		d.Spec.Template.Labels["example.com/tier"] != "security" || d.Spec.Template.Labels["team"] != "pki" {
		t.Errorf("deployment annotations %v, pod annotations %v, pod labels %v", d.Annotations, d.Spec.Template.Annotations, d.Spec.Template.Labels)
	}
	for k, v := range d.Spec.Selector.MatchLabels {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("pod labels %v do not match the selector %v", d.Spec.Template.Labels, d.Spec.Selector.MatchLabels)
		}
	}

	sa := mustFind(t, objs, "ServiceAccount", "pki", "pki-ejbca-sa")
	if sa.GetAnnotations()["example.com/role"] != "ejbca-issuer" || sa.GetLabels()["example.com/sa"] != "yes" {
		t.Errorf("ServiceAccount annotations %v labels %v", sa.GetAnnotations(), sa.GetLabels())
	}
	svc := into[corev1.Service](t, mustFind(t, objs, "Service", "pki", "pki-ejbca-metrics"))
	if svc.Spec.Ports[0].Port != 9412 || svc.Annotations["example.com/scrape"] != "true" {
		t.Errorf("metrics Service %+v %v", svc.Spec.Ports, svc.Annotations)
	}
	sm := mustFind(t, objs, "ServiceMonitor", "monitoring", "pki-ejbca")
	ep, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	nsSel, _, _ := unstructured.NestedStringSlice(sm.Object, "spec", "namespaceSelector", "matchNames")
	if sm.GetLabels()["release"] != "prometheus" || sm.GetAnnotations()["example.com/owner"] != "pki" || len(ep) != 1 ||
		!slices.Equal(nsSel, []string{"pki"}) || sel["app.kubernetes.io/component"] != "metrics" {
		t.Errorf("ServiceMonitor %v", sm.Object)
	}
	for k, v := range sel {
		if svc.Labels[k] != v {
			t.Errorf("ServiceMonitor selects %v, the metrics Service has labels %v", sel, svc.Labels)
		}
	}
	e := ep[0].(map[string]any)
	if e["port"] != "metrics" || e["interval"] != "15s" || e["scrapeTimeout"] != "5s" || e["honorLabels"] != true ||
		e["relabelings"] == nil || e["metricRelabelings"] == nil {
		t.Errorf("ServiceMonitor endpoint %v", e)
	}
	pdb := into[policyv1.PodDisruptionBudget](t, mustFind(t, objs, "PodDisruptionBudget", "pki", "pki-ejbca"))
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 || pdb.Spec.MinAvailable != nil ||
		!reflect.DeepEqual(pdb.Spec.Selector.MatchLabels, d.Spec.Selector.MatchLabels) {
		t.Errorf("PodDisruptionBudget %+v: maxUnavailable wins over minAvailable", pdb.Spec)
	}
	for _, crd := range ofKind(objs, "CustomResourceDefinition") {
		if _, kept := crd.GetAnnotations()["helm.sh/resource-policy"]; kept {
			t.Errorf("%s is kept although crds.keep=false", id(crd))
		}
	}
	checkApprover(t, objs, "security", "cm-controller")
}

// TestRenderCSRExampleRoles: the example ClusterRoles for Kubernetes CSRs
// are off by default, unbound when on, and grant approve on both signer
// prefixes and reference on the namespaced one only.
func TestRenderCSRExampleRoles(t *testing.T) {
	if objs := mustRender(t, "r", "ns", nil); find(objs, "ClusterRole", "", "r-ejbca-issuer-csr-approver") != nil {
		t.Error("the example CSR ClusterRoles render by default")
	}
	objs := mustRender(t, "r", "ns", values(t, "kubernetesCSR: {exampleClusterRoles: true}"))
	approver := into[rbacv1.ClusterRole](t, mustFind(t, objs, "ClusterRole", "", "r-ejbca-issuer-csr-approver"))
	requester := into[rbacv1.ClusterRole](t, mustFind(t, objs, "ClusterRole", "", "r-ejbca-issuer-csr-requester"))
	signers := func(r *rbacv1.ClusterRole, verb string) []string {
		for _, rule := range r.Rules {
			if slices.Contains(rule.Resources, "signers") && slices.Equal(rule.Verbs, []string{verb}) {
				return rule.ResourceNames
			}
		}
		return nil
	}
	if got := signers(approver, "approve"); !slices.Equal(got, []string{"ejbcaissuers.ejbca-issuer.certctl.io/*", "ejbcaclusterissuers.ejbca-issuer.certctl.io/*"}) {
		t.Errorf("approver approves %v", got)
	}
	if got := signers(requester, "reference"); !slices.Equal(got, []string{"ejbcaissuers.ejbca-issuer.certctl.io/*"}) {
		t.Errorf("requester references %v", got)
	}
	for _, o := range objs {
		if strings.HasSuffix(o.GetKind(), "Binding") && strings.Contains(o.GetName(), "csr-") {
			t.Errorf("the example CSR roles are bound: %s", id(o))
		}
	}
}

// TestRenderToggles: the values that switch objects or flags on and off, and
// the combinations the chart refuses.
func TestRenderToggles(t *testing.T) {
	has := func(objs []*unstructured.Unstructured, kind string) bool { return len(ofKind(objs, kind)) > 0 }
	args := func(t *testing.T, objs []*unstructured.Unstructured) []string {
		return container(t, deploymentOf(t, objs)).Args
	}

	objs := mustRender(t, "r", "ns", values(t, "crds: {enabled: false}"))
	if has(objs, "CustomResourceDefinition") {
		t.Error("crds.enabled=false still renders CRDs")
	}
	objs = mustRender(t, "r", "ns", values(t, "approver: {enabled: false}"))
	if find(objs, "ClusterRole", "", approverName) != nil || find(objs, "ClusterRoleBinding", "", approverName) != nil {
		t.Error("approver.enabled=false still renders the approver RBAC")
	}
	objs = mustRender(t, "r", "ns", values(t, "rbac: {create: false}"))
	for _, o := range objs {
		if strings.HasPrefix(o.GetKind(), "Role") || strings.HasPrefix(o.GetKind(), "ClusterRole") && o.GetName() != approverName {
			t.Errorf("rbac.create=false still renders %s", id(o))
		}
	}
	objs = mustRender(t, "r", "ns", values(t, "metrics: {enabled: false}"))
	if has(objs, "Service") || !slices.Contains(args(t, objs), "--metrics-bind-address=0") ||
		slices.ContainsFunc(container(t, deploymentOf(t, objs)).Ports, func(p corev1.ContainerPort) bool { return p.Name == "metrics" }) {
		t.Errorf("metrics.enabled=false: Service %v, args %v", has(objs, "Service"), args(t, objs))
	}
	objs = mustRender(t, "r", "ns", values(t, "leaderElection: {enabled: false}"))
	if !slices.Contains(args(t, objs), "--leader-elect=false") || find(objs, "Role", "ns", "r-ejbca-issuer-leader-election") != nil {
		t.Errorf("leaderElection.enabled=false: args %v, objects %v", args(t, objs), ids(objs))
	}
	objs = mustRender(t, "r", "ns", values(t, "serviceAccount: {create: false, name: existing}"))
	if has(objs, "ServiceAccount") || deploymentOf(t, objs).Spec.Template.Spec.ServiceAccountName != "existing" {
		t.Errorf("serviceAccount.create=false: %v", ids(objs))
	}
	objs = mustRender(t, "r", "ns", values(t, "image: {tag: v1.2.3}"))
	if img := container(t, deploymentOf(t, objs)).Image; img != "ghcr.io/certctl-io/ejbca-issuer:v1.2.3" {
		t.Errorf("image.tag: %s", img)
	}
	objs = mustRender(t, "r", "ns", values(t, "podDisruptionBudget: {enabled: true}\nreplicaCount: 2"))
	if pdb := into[policyv1.PodDisruptionBudget](t, ofKind(objs, "PodDisruptionBudget")[0]); pdb.Spec.MinAvailable.IntValue() != 1 || pdb.Spec.MaxUnavailable != nil {
		t.Errorf("PodDisruptionBudget %+v", pdb.Spec)
	}

	for _, tc := range []struct{ values, want string }{
		{"replicaCount: 2\nleaderElection: {enabled: false}", "leaderElection.enabled=false needs replicaCount <= 1"},
		{"metrics: {enabled: false, serviceMonitor: {enabled: true}}", "metrics.serviceMonitor.enabled needs metrics.enabled"},
		{"serviceAccount: {create: false}", "serviceAccount.name is required"},
	} {
		if _, err := render(t, "r", "ns", values(t, tc.values)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("values %q: error %v, want one containing %q", tc.values, err, tc.want)
		}
	}
}

// TestSchemaRejectsWrongValues: values.schema.json fails the install on a
// wrong type, an unknown enum value, a malformed duration or digest, or an
// unknown key (a typo would otherwise be silently ignored).
func TestSchemaRejectsWrongValues(t *testing.T) {
	for _, tc := range []struct{ values, path string }{
		{`replicaCount: "two"`, "/replicaCount"},
		{`replicaCount: 1.5`, "/replicaCount"},
		{`logFormat: xml`, "/logFormat"},
		{`logLevel: 9`, "/logLevel"},
		{`retryWindow: 1 hour`, "/retryWindow"},
		{`healthCheckInterval: 300`, "/healthCheckInterval"},
		{`ejbcaTimeout: ""`, "/ejbcaTimeout"},
		{`kubeAPIQPS: 0`, "/kubeAPIQPS"},
		{`maxConcurrentReconciles: 0`, "/maxConcurrentReconciles"},
		{`image: {digest: latest}`, "/image/digest"},
		{`image: {pullPolicy: Sometimes}`, "/image/pullPolicy"},
		{`image: {tag: "v1 2"}`, "/image/tag"},
		{`replicas: 2`, "replicas"},
		{`rbac: {secretsClusterWide: "no"}`, "/rbac/secretsClusterWide"},
		{`rbac: {secretsClusterwide: false}`, "secretsClusterwide"},
		{`metrics: {port: 70000}`, "/metrics/port"},
		{`metrics: {serviceMonitor: {interval: often}}`, "/metrics/serviceMonitor/interval"},
		{`extraArgs: ["log-level=2"]`, "/extraArgs/0"},
		{`extraEnv: [{value: x}]`, "/extraEnv/0"},
		{`podDisruptionBudget: {minAvailable: half}`, "/podDisruptionBudget/minAvailable"},
		{`approver: {serviceAccount: {name: ""}}`, "/approver/serviceAccount/name"},
		{`clusterResourceNamespace: Not_A_Namespace`, "/clusterResourceNamespace"},
		{`crds: {keep: "yes"}`, "/crds/keep"},
	} {
		_, err := render(t, "r", "ns", values(t, tc.values))
		if err == nil || !strings.Contains(err.Error(), "values don't meet the specifications of the schema") || !strings.Contains(err.Error(), tc.path) {
			t.Errorf("values %q: error %v, want a schema error at %s", tc.values, err, tc.path)
		}
	}
	// The defaults and every documented option validate.
	if _, err := render(t, "r", "ns", valuesFile(t, "testdata/all-options.yaml")); err != nil {
		t.Errorf("all-options.yaml: %v", err)
	}
}

// TestRBACIsTheGeneratedRBAC: the chart's manager RBAC grants exactly what
// controller-gen generated from the +kubebuilder:rbac markers, bound where it
// belongs: nothing hand-copied, nothing more, nothing less.
func TestRBACIsTheGeneratedRBAC(t *testing.T) {
	genCluster, genLeader := generatedRoles(t)
	wantCluster, wantLeader := accesses(genCluster), accesses(genLeader)
	if len(filterAccess(wantCluster, isSecretAccess)) == 0 {
		t.Fatal("the generated ClusterRole grants no Secret access: the split below tests nothing")
	}

	objs := mustRender(t, "ejbca-issuer", "ejbca-issuer", nil)
	cr := into[rbacv1.ClusterRole](t, mustFind(t, objs, "ClusterRole", "", "ejbca-issuer"))
	if d := diffAccess(accesses(cr.Rules), wantCluster); d != "" {
		t.Errorf("default ClusterRole vs config/rbac/role.yaml: %s", d)
	}
	le := into[rbacv1.Role](t, mustFind(t, objs, "Role", "ejbca-issuer", "ejbca-issuer-leader-election"))
	if d := diffAccess(accesses(le.Rules), wantLeader); d != "" {
		t.Errorf("leader election Role vs config/rbac/role.yaml: %s", d)
	}

	objs = mustRender(t, "ejbca-issuer", "ejbca-issuer", values(t, "rbac: {secretsClusterWide: false}\nclusterResourceNamespace: pki"))
	cr = into[rbacv1.ClusterRole](t, mustFind(t, objs, "ClusterRole", "", "ejbca-issuer"))
	sec := into[rbacv1.Role](t, mustFind(t, objs, "Role", "pki", "ejbca-issuer-secrets"))
	if got := filterAccess(accesses(cr.Rules), isSecretAccess); len(got) > 0 {
		t.Errorf("secretsClusterWide=false: the ClusterRole still grants %v", got)
	}
	if d := diffAccess(filterAccess(accesses(sec.Rules), isSecretAccess), filterAccess(wantCluster, isSecretAccess)); d != "" {
		t.Errorf("secretsClusterWide=false: the Secret Role in the cluster resource namespace: %s", d)
	}
	if d := diffAccess(union(accesses(cr.Rules), accesses(sec.Rules)), wantCluster); d != "" {
		t.Errorf("secretsClusterWide=false: ClusterRole + Secret Role vs config/rbac/role.yaml: %s", d)
	}
	if !slices.Contains(container(t, deploymentOf(t, objs)).Args, "--secrets-in-cluster-resource-namespace-only") {
		t.Error("secretsClusterWide=false does not pass --secrets-in-cluster-resource-namespace-only")
	}
}

// TestChartREADMEListsEveryValue: every value in values.yaml is documented in
// the chart's README, and values.yaml validates against the schema (the
// default render would fail otherwise).
func TestChartREADMEListsEveryValue(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(chartDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	b, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	b, err = os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var vals map[string]any
	if err := yaml.Unmarshal(b, &vals); err != nil {
		t.Fatal(err)
	}
	var paths []string
	var walk func(prefix string, v map[string]any, s map[string]any)
	walk = func(prefix string, v map[string]any, s map[string]any) {
		props, _ := s["properties"].(map[string]any)
		for k, val := range v {
			p := prefix + k
			sub, _ := props[k].(map[string]any)
			if sub == nil {
				t.Errorf("value %s is not in values.schema.json", p)
				continue
			}
			if m, ok := val.(map[string]any); ok && sub["properties"] != nil {
				walk(p+".", m, sub)
				continue
			}
			paths = append(paths, p)
		}
	}
	walk("", vals, schema)
	sort.Strings(paths)
	for _, p := range paths {
		if !strings.Contains(string(readme), "`"+p+"`") {
			t.Errorf("charts/ejbca-issuer/README.md does not document `%s`", p)
		}
	}
	if len(paths) < 50 {
		t.Errorf("only %d values found: %v", len(paths), paths)
	}
}

// TestKustomizeDefault: `kustomize build config/default` is a complete
// install: namespace, CRDs (controller-gen's), the generated RBAC bound to
// the manager's ServiceAccount (the leader election Role in the install
// namespace), the manager Deployment, and cert-manager's approver RBAC.
func TestKustomizeDefault(t *testing.T) {
	checkKustomize(t, kustomizeBuild(t), "ejbca-issuer", "ghcr.io/certctl-io/ejbca-issuer:"+appVersion(t))
}

// TestKustomizeOverlay: the overlay docs/install.md shows moves everything
// namespaced, the bindings' subjects and the Namespace itself to its
// namespace, keeps the approver binding on cert-manager's ServiceAccount, and
// swaps the image.
func TestKustomizeOverlay(t *testing.T) {
	checkKustomize(t, kustomizeBuildDir(t, "testdata/overlay"), "pki", "registry.example.com/pki/ejbca-issuer:v0.1.0")
}

func checkKustomize(t *testing.T, objs []*unstructured.Unstructured, ns, image string) {
	t.Helper()
	mustFind(t, objs, "Namespace", "", ns)
	checkCRDsMatchGenerated(t, objs)
	checkApprover(t, objs, "cert-manager", "cert-manager")
	for _, o := range objs {
		if slices.Contains(namespacedKinds, o.GetKind()) && o.GetNamespace() != ns {
			t.Errorf("%s is not in namespace %s", id(o), ns)
		}
	}
	checkBindings(t, objs)

	genCluster, genLeader := generatedRoles(t)
	var cluster, leader map[access]bool
	for _, o := range ofKind(objs, "ClusterRole") {
		if o.GetName() != approverName {
			cluster = union(cluster, accesses(into[rbacv1.ClusterRole](t, o).Rules))
		}
	}
	for _, o := range ofKind(objs, "Role") {
		leader = union(leader, accesses(into[rbacv1.Role](t, o).Rules))
	}
	if d := diffAccess(cluster, accesses(genCluster)); d != "" {
		t.Errorf("ClusterRole vs config/rbac/role.yaml: %s", d)
	}
	if d := diffAccess(leader, accesses(genLeader)); d != "" {
		t.Errorf("Role vs config/rbac/role.yaml: %s", d)
	}
	d := deploymentOf(t, objs)
	sa := d.Spec.Template.Spec.ServiceAccountName
	mustFind(t, objs, "ServiceAccount", ns, sa)
	bound := false
	for _, o := range ofKind(objs, "ClusterRoleBinding") {
		for _, s := range into[rbacv1.ClusterRoleBinding](t, o).Subjects {
			bound = bound || (s.Name == sa && s.Namespace == ns && o.GetName() != approverName)
		}
	}
	if !bound {
		t.Errorf("the manager's ServiceAccount %s is not bound to its ClusterRole", sa)
	}
	c := container(t, d)
	checkPodNamespaceEnv(t, c)
	checkProbes(t, c, 8081)
	if !slices.Contains(c.Args, "--leader-elect") {
		t.Errorf("args %v: want leader election", c.Args)
	}
	if c.Image != image {
		t.Errorf("image %s, want %s", c.Image, image)
	}
	if n := len(ofKind(objs, "Namespace")); n != 1 {
		t.Errorf("%d Namespaces", n)
	}
}

// TestHelmLintStrict: `helm lint --strict` (Chart.yaml metadata, template
// syntax, rendered YAML, values against the schema) finds nothing, for the
// default values and with every option on.
func TestHelmLintStrict(t *testing.T) {
	kv, err := chartutil.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	for name, vals := range map[string]map[string]any{
		"defaults":    nil,
		"all options": valuesFile(t, "testdata/all-options.yaml"),
	} {
		lint := action.NewLint()
		lint.Strict, lint.Namespace, lint.KubeVersion = true, "ejbca-issuer", kv
		res := lint.Run([]string{chartDir}, vals)
		for _, m := range res.Messages {
			t.Logf("%s: %s", name, m)
		}
		if len(res.Errors) > 0 || res.TotalChartsLinted != 1 {
			t.Errorf("%s: helm lint --strict: %v", name, res.Errors)
		}
	}
}
