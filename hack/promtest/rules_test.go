package promtest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/rules"
	"go.yaml.in/yaml/v3"
)

var (
	repoRoot      = filepath.Join("..", "..")
	alertsFile    = filepath.Join(repoRoot, "charts", "ejbca-issuer", "files", "alerts.yaml")
	dashboardFile = filepath.Join(repoRoot, "charts", "ejbca-issuer", "files", "dashboard.json")
	promParser    = parser.NewParser(parser.Options{})
)

// loadRules parses the chart's rule file with Prometheus's rule file parser,
// which also parses every expression and annotation template.
func loadRules(t *testing.T) []rulefmt.Rule {
	t.Helper()
	groups, errs := rulefmt.ParseFile(alertsFile, false, model.UTF8Validation, promParser, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Error(err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
	var out []rulefmt.Rule
	for _, g := range groups.Groups {
		out = append(out, g.Rules...)
	}
	if len(out) < 11 {
		t.Fatalf("%d rules in %s", len(out), alertsFile)
	}
	return out
}

// TestRulesParse: Prometheus loads the rule file, and every alert says what
// it is, what the values are and where to read what to do.
func TestRulesParse(t *testing.T) {
	for _, r := range loadRules(t) {
		if r.Alert == "" {
			t.Errorf("a rule without alert name: %q", r.Expr)
			continue
		}
		for _, a := range []string{"summary", "description", "runbook_url"} {
			if strings.TrimSpace(r.Annotations[a]) == "" {
				t.Errorf("%s has no %s", r.Alert, a)
			}
		}
		if s := r.Labels["severity"]; s != "critical" && s != "warning" {
			t.Errorf("%s severity %q", r.Alert, s)
		}
	}
}

// githubAnchor is the anchor GitHub gives a Markdown heading.
func githubAnchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestRunbookLinksResolve: each alert's runbook_url is an anchor of a
// heading of docs/troubleshooting.md.
func TestRunbookLinksResolve(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(repoRoot, "docs", "troubleshooting.md"))
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	inCode := false
	for _, line := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(line, "```") {
			inCode = !inCode
		}
		if m := regexp.MustCompile(`^#{1,6} (.+)$`).FindStringSubmatch(line); m != nil && !inCode {
			anchors["#"+githubAnchor(m[1])] = true
		}
	}
	if !anchors["#issuer-ready-reasons"] {
		t.Fatalf("the anchor function does not find a known heading: %v", anchors)
	}
	for _, r := range loadRules(t) {
		if u := r.Annotations["runbook_url"]; !anchors[u] {
			t.Errorf("%s: runbook_url %q is no heading of docs/troubleshooting.md", r.Alert, u)
		}
	}
}

// unitTestFile is promtool's `test rules` file format (the part used here).
type unitTestFile struct {
	RuleFiles          []string       `yaml:"rule_files"`
	EvaluationInterval model.Duration `yaml:"evaluation_interval"`
	Tests              []testGroup    `yaml:"tests"`
}

type testGroup struct {
	Name        string         `yaml:"name"`
	Interval    model.Duration `yaml:"interval"`
	InputSeries []struct {
		Series string `yaml:"series"`
		Values string `yaml:"values"`
	} `yaml:"input_series"`
	AlertRuleTests []alertTest `yaml:"alert_rule_test"`
}

type alertTest struct {
	EvalTime  model.Duration `yaml:"eval_time"`
	Alertname string         `yaml:"alertname"`
	ExpAlerts []struct {
		ExpLabels      map[string]string `yaml:"exp_labels"`
		ExpAnnotations map[string]string `yaml:"exp_annotations"`
	} `yaml:"exp_alerts"`
}

// TestAlertRules runs testdata/alerts_test.yaml, in promtool's `test rules`
// form, with Prometheus's rule manager and engine as promtool does: series
// in, the rules evaluated every evaluation_interval from time 0, and at each
// eval_time the firing alerts, with their labels and expanded annotations,
// compared to the expected ones. (`promtool test rules
// hack/promtest/testdata/alerts_test.yaml` runs the same file.)
func TestAlertRules(t *testing.T) {
	path := filepath.Join("testdata", "alerts_test.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f unitTestFile
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatal(err)
	}
	var ruleFiles []string
	for _, rf := range f.RuleFiles {
		ruleFiles = append(ruleFiles, filepath.Join(filepath.Dir(path), rf))
	}
	if len(ruleFiles) != 1 || filepath.Clean(ruleFiles[0]) != filepath.Clean(alertsFile) {
		t.Fatalf("rule_files %v, want the chart's %s", ruleFiles, alertsFile)
	}
	interval := time.Duration(f.EvaluationInterval)
	if interval == 0 {
		interval = time.Minute
	}

	tested := map[string]bool{}
	for _, g := range f.Tests {
		for _, at := range g.AlertRuleTests {
			if len(at.ExpAlerts) > 0 {
				tested[at.Alertname] = true
			}
		}
		t.Run(g.Name, func(t *testing.T) { runGroup(t, g, interval, ruleFiles) })
	}
	for _, r := range loadRules(t) {
		if !tested[r.Alert] {
			t.Errorf("alert %s has no unit test that makes it fire", r.Alert)
		}
	}
}

func runGroup(t *testing.T, g testGroup, evalInterval time.Duration, ruleFiles []string) {
	if g.Interval == 0 {
		g.Interval = model.Duration(time.Minute)
	}
	var load strings.Builder
	fmt.Fprintf(&load, "load %s\n", time.Duration(g.Interval))
	for _, s := range g.InputSeries {
		fmt.Fprintf(&load, "  %s %s\n", s.Series, s.Values)
	}
	suite, err := promqltest.NewLazyLoader(load.String(), promqltest.LazyLoaderOpts{EnableAtModifier: true, EnableNegativeOffset: true, Parser: promParser})
	if err != nil {
		t.Fatal(err)
	}
	defer suite.Close()
	suite.SubqueryInterval = evalInterval
	m := rules.NewManager(&rules.ManagerOptions{
		QueryFunc:    rules.EngineQueryFunc(suite.QueryEngine(), suite.Storage()),
		AppendableV2: suite.Storage(),
		Context:      context.Background(),
		NotifyFunc:   func(context.Context, string, ...*rules.Alert) {},
		Logger:       promslog.NewNopLogger(),
		Parser:       promParser,
	})
	groups, errs := m.LoadGroups(time.Duration(g.Interval), labels.EmptyLabels(), "", nil, false, ruleFiles...)
	for _, err := range errs {
		t.Fatal(err)
	}
	for _, rg := range groups {
		for _, r := range rg.Rules() {
			if ar, ok := r.(*rules.AlertingRule); ok {
				ar.SetRestored(true)
			}
		}
	}
	byTime := map[time.Duration][]alertTest{}
	var last time.Duration
	for _, at := range g.AlertRuleTests {
		byTime[time.Duration(at.EvalTime)] = append(byTime[time.Duration(at.EvalTime)], at)
		last = max(last, time.Duration(at.EvalTime))
	}
	start := time.Unix(0, 0).UTC()
	for ts := start; !ts.After(start.Add(last)); ts = ts.Add(evalInterval) {
		suite.WithSamplesTill(ts, func(err error) {
			if err != nil {
				t.Fatal(err)
			}
			for _, rg := range groups {
				rg.Eval(suite.Context(), ts)
				for _, r := range rg.Rules() {
					if r.LastError() != nil {
						t.Fatalf("%s at %s: %v", r.Name(), ts.Sub(start), r.LastError())
					}
				}
			}
		})
		for at, tests := range byTime {
			if at < ts.Sub(start) || at >= ts.Add(evalInterval).Sub(start) {
				continue
			}
			for _, tc := range tests {
				checkFiring(t, groups, tc)
			}
		}
	}
}

// checkFiring compares the firing alerts of tc.Alertname with the expected.
func checkFiring(t *testing.T, groups map[string]*rules.Group, tc alertTest) {
	t.Helper()
	var got, want []string
	for _, rg := range groups {
		for _, r := range rg.Rules() {
			ar, ok := r.(*rules.AlertingRule)
			if !ok || ar.Name() != tc.Alertname {
				continue
			}
			for _, a := range ar.ActiveAlerts() {
				if a.State == rules.StateFiring {
					got = append(got, a.Labels.String()+" "+a.Annotations.String())
				}
			}
		}
	}
	for _, e := range tc.ExpAlerts {
		l := map[string]string{labels.AlertName: tc.Alertname}
		for k, v := range e.ExpLabels {
			l[k] = v
		}
		want = append(want, labels.FromMap(l).String()+" "+labels.FromMap(e.ExpAnnotations).String())
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s at %s:\n got  %s\n want %s", tc.Alertname, time.Duration(tc.EvalTime),
			strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}
}
