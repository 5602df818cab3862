package promtest

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// selectorsFile is read by the controllers' envtest suite
// (TestMonitoringSelectorsMatchExportedSeries), which checks each selector
// against what a real manager exports.
var selectorsFile = filepath.Join(repoRoot, "controllers", "testdata", "monitoring-selectors.json")

// grafanaVariables stand in for Grafana's built-in variables so a panel's
// query is PromQL.
var grafanaVariables = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

type dashboardQuery struct{ panel, expr string }

func dashboardQueries(t *testing.T) []dashboardQuery {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	var out []dashboardQuery
	for _, p := range d.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			out = append(out, dashboardQuery{p.Title, tg.Expr})
		}
	}
	if len(out) < 15 {
		t.Fatalf("%d dashboard queries", len(out))
	}
	return out
}

// TestDashboardQueriesParse: every panel's query is PromQL by Prometheus's
// parser (with Grafana's interval variables filled in).
func TestDashboardQueriesParse(t *testing.T) {
	for _, q := range dashboardQueries(t) {
		if _, err := promParser.ParseExpr(grafanaVariables.Replace(q.expr)); err != nil {
			t.Errorf("panel %q: %v\n%s", q.panel, err, q.expr)
		}
	}
}

type matcherJSON struct {
	Label string `json:"label"`
	Op    string `json:"op"`
	Value string `json:"value"`
}

type selectorJSON struct {
	Metric   string        `json:"metric"`
	Matchers []matcherJSON `json:"matchers"`
	Labels   []string      `json:"labels"`
	UsedBy   []string      `json:"usedBy"`
}

// selectorsOf lists the series selectors of a query with the labels the
// query groups or joins each by (those of every enclosing aggregation's by
// and binary operation's on/group_left/group_right), which the selected
// series must carry.
func selectorsOf(expr parser.Expr) []selectorJSON {
	var out []selectorJSON
	parser.Inspect(expr, func(n parser.Node, path []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		s := selectorJSON{Metric: vs.Name}
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName {
				continue
			}
			s.Matchers = append(s.Matchers, matcherJSON{m.Name, m.Type.String(), m.Value})
		}
		need := map[string]bool{}
		for _, p := range path {
			switch p := p.(type) {
			case *parser.AggregateExpr:
				if !p.Without {
					for _, l := range p.Grouping {
						need[l] = true
					}
				}
			case *parser.BinaryExpr:
				if p.VectorMatching != nil && p.VectorMatching.On {
					for _, l := range p.VectorMatching.MatchingLabels {
						need[l] = true
					}
				}
			}
		}
		for l := range need {
			s.Labels = append(s.Labels, l)
		}
		sort.Strings(s.Labels)
		sort.Slice(s.Matchers, func(i, j int) bool { return s.Matchers[i].Label < s.Matchers[j].Label })
		out = append(out, s)
		return nil
	})
	return out
}

// allSelectors are the selectors of the rules and the dashboard, merged by
// metric, matchers and labels.
func allSelectors(t *testing.T) []selectorJSON {
	t.Helper()
	merged := map[string]*selectorJSON{}
	add := func(usedBy, q string) {
		expr, err := promParser.ParseExpr(q)
		if err != nil {
			t.Fatalf("%s: %v", usedBy, err)
		}
		for _, s := range selectorsOf(expr) {
			k, _ := json.Marshal([]any{s.Metric, s.Matchers, s.Labels})
			if merged[string(k)] == nil {
				s := s
				merged[string(k)] = &s
			}
			if !slices.Contains(merged[string(k)].UsedBy, usedBy) {
				merged[string(k)].UsedBy = append(merged[string(k)].UsedBy, usedBy)
			}
		}
	}
	for _, r := range loadRules(t) {
		add("alert "+r.Alert, r.Expr)
	}
	// The reason the EJBCAIssuerNotReady description looks up, by the
	// alert's labels.
	add("alert EJBCAIssuerNotReady (description)", `max by (kind, namespace, name, reason) (ejbca_issuer_issuer_ready_reason)`)
	add("alert EJBCAIssuerApprovalsWaiting (description)", `max(ejbca_issuer_approvals_pending)`)
	for _, q := range dashboardQueries(t) {
		add("panel "+q.panel, grafanaVariables.Replace(q.expr))
	}
	var out []selectorJSON
	for _, s := range merged {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool {
		a, _ := json.Marshal(out[i])
		b, _ := json.Marshal(out[j])
		return string(a) < string(b)
	})
	return out
}

// TestSelectorsFileUpToDate: controllers/testdata/monitoring-selectors.json
// holds exactly the selectors of today's rules and dashboard (UPDATE=1
// rewrites it), so the envtest suite checks what the chart ships.
func TestSelectorsFileUpToDate(t *testing.T) {
	sels := allSelectors(t)
	for _, s := range sels {
		if s.Metric == "" {
			t.Errorf("a selector without metric name (used by %v)", s.UsedBy)
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(sels); err != nil {
		t.Fatal(err)
	}
	if os.Getenv("UPDATE") == "1" {
		if err := os.WriteFile(selectorsFile, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(selectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, b.Bytes()) {
		t.Errorf("%s is stale: run `make test-monitoring UPDATE=1` (or cd hack/promtest && UPDATE=1 go test ./...) and commit it", selectorsFile)
	}
}
