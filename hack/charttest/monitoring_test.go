package charttest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// alertRule is one rule of files/alerts.yaml and of the PrometheusRule.
type alertRule struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for,omitempty"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

type alertGroups struct {
	Groups []struct {
		Name  string      `json:"name"`
		Rules []alertRule `json:"rules"`
	} `json:"groups"`
}

func generatedAlerts(t *testing.T) []alertRule {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(chartDir, "files", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var g alertGroups
	if err := yaml.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Groups) != 1 || len(g.Groups[0].Rules) < 10 {
		t.Fatalf("files/alerts.yaml: %d groups, want one with every alert", len(g.Groups))
	}
	return g.Groups[0].Rules
}

func renderedAlerts(t *testing.T, o *unstructured.Unstructured) []alertRule {
	t.Helper()
	spec, _, _ := unstructured.NestedMap(o.Object, "spec")
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	var g alertGroups
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Groups) != 1 {
		t.Fatalf("PrometheusRule has %d groups, want 1", len(g.Groups))
	}
	return g.Groups[0].Rules
}

// TestRenderMonitoring: metrics.prometheusRule and metrics.dashboard are off
// by default; on, the PrometheusRule carries every generated alert with the
// severity, for:, enabled and labels of values and a full runbook_url, and
// the ConfigMap carries the generated dashboard under the sidecar's label.
func TestRenderMonitoring(t *testing.T) {
	objs := mustRender(t, "r", "ns", nil)
	if len(ofKind(objs, "PrometheusRule")) > 0 || len(ofKind(objs, "ConfigMap")) > 0 {
		t.Fatalf("the defaults render monitoring objects: %v", ids(objs))
	}
	file := generatedAlerts(t)

	// values.yaml lists each alert with the generated defaults, no more.
	b, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var vals struct {
		Metrics struct {
			PrometheusRule struct {
				Alerts map[string]struct {
					Severity string `json:"severity"`
					For      string `json:"for"`
				} `json:"alerts"`
			} `json:"prometheusRule"`
		} `json:"metrics"`
	}
	if err := yaml.Unmarshal(b, &vals); err != nil {
		t.Fatal(err)
	}
	defaults := vals.Metrics.PrometheusRule.Alerts
	if len(defaults) != len(file) {
		t.Errorf("values.yaml lists %d alerts, files/alerts.yaml has %d", len(defaults), len(file))
	}
	for _, r := range file {
		d, ok := defaults[r.Alert]
		if !ok || d.Severity != r.Labels["severity"] || d.For != r.For {
			t.Errorf("values.yaml's metrics.prometheusRule.alerts.%s = %+v, want severity %q for %q as generated", r.Alert, d, r.Labels["severity"], r.For)
		}
	}

	const base = "https://docs.example/troubleshooting.md"
	objs = mustRender(t, "r", "ns", values(t, `
metrics:
  prometheusRule:
    enabled: true
    labels: {release: prom}
    alertLabels: {team: pki}
    runbookBaseURL: `+base+`
    alerts:
      EJBCAIssuerNotReady: {severity: page, for: 30m}
      EJBCAIssuerEJBCASlow: {enabled: false}
      EJBCAIssuerNoLeader: {for: ""}
  dashboard:
    enabled: true
    annotations: {grafana_folder: PKI}
`))
	pr := mustFind(t, objs, "PrometheusRule", "ns", "r-ejbca-issuer")
	if pr.GetAPIVersion() != "monitoring.coreos.com/v1" || pr.GetLabels()["release"] != "prom" || pr.GetLabels()["app.kubernetes.io/instance"] != "r" {
		t.Errorf("PrometheusRule %s labels %v", pr.GetAPIVersion(), pr.GetLabels())
	}
	got := map[string]alertRule{}
	for _, r := range renderedAlerts(t, pr) {
		got[r.Alert] = r
	}
	for _, want := range file {
		r, ok := got[want.Alert]
		if want.Alert == "EJBCAIssuerEJBCASlow" {
			if ok {
				t.Errorf("%s is rendered with enabled: false", want.Alert)
			}
			continue
		}
		if !ok {
			t.Errorf("%s is not rendered", want.Alert)
			continue
		}
		want.Labels = map[string]string{"severity": want.Labels["severity"], "team": "pki"}
		want.Annotations = map[string]string{"summary": want.Annotations["summary"], "description": want.Annotations["description"],
			"runbook_url": base + want.Annotations["runbook_url"]}
		switch want.Alert {
		case "EJBCAIssuerNotReady":
			want.Labels["severity"], want.For = "page", "30m"
		case "EJBCAIssuerNoLeader":
			want.For = ""
		}
		if !reflect.DeepEqual(r, want) {
			t.Errorf("rendered %s:\n%+v\nwant\n%+v", want.Alert, r, want)
		}
		if !strings.HasPrefix(want.Annotations["runbook_url"], base+"#") {
			t.Errorf("%s runbook_url %q", want.Alert, want.Annotations["runbook_url"])
		}
	}
	if len(got) != len(file)-1 {
		t.Errorf("%d alerts rendered, want %d", len(got), len(file)-1)
	}

	cm := mustFind(t, objs, "ConfigMap", "ns", "r-ejbca-issuer-dashboard")
	if cm.GetLabels()["grafana_dashboard"] != "1" || cm.GetAnnotations()["grafana_folder"] != "PKI" {
		t.Errorf("dashboard ConfigMap labels %v annotations %v", cm.GetLabels(), cm.GetAnnotations())
	}
	data, _, _ := unstructured.NestedString(cm.Object, "data", "ejbca-issuer.json")
	want, err := os.ReadFile(filepath.Join(chartDir, "files", "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	if data != strings.TrimSpace(string(want)) {
		t.Errorf("the ConfigMap's dashboard differs from files/dashboard.json")
	}
	var dash struct {
		UID    string           `json:"uid"`
		Panels []map[string]any `json:"panels"`
	}
	if err := json.Unmarshal([]byte(data), &dash); err != nil || dash.UID != "ejbca-issuer" || len(dash.Panels) < 10 {
		t.Errorf("the ConfigMap's dashboard: uid %q, %d panels, %v", dash.UID, len(dash.Panels), err)
	}

	// A typo in an alert's name or a malformed duration fails the install.
	for _, v := range []string{
		"metrics: {prometheusRule: {alerts: {EJBCAIssuerNotReadyy: {for: 5m}}}}",
		"metrics: {prometheusRule: {alerts: {EJBCAIssuerNotReady: {for: 5 minutes}}}}",
	} {
		if _, err := render(t, "r", "ns", values(t, v)); err == nil {
			t.Errorf("values %q render", v)
		}
	}
}
