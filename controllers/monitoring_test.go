package controllers_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
	"github.com/certctl-io/ejbca-issuer/internal/testkit"
)

// monitoringSelector is one series selector of the chart's alerts or
// dashboard, as hack/promtest extracts it with Prometheus's parser into
// testdata/monitoring-selectors.json.
type monitoringSelector struct {
	Metric   string `json:"metric"`
	Matchers []struct {
		Label string `json:"label"`
		Op    string `json:"op"`
		Value string `json:"value"`
	} `json:"matchers"`
	// Labels are the labels the query groups or joins the series by.
	Labels []string `json:"labels"`
	UsedBy []string `json:"usedBy"`
}

// unproduced are the label values the scenario below cannot produce in a
// test's time, each with why. For them, the selector must still find its
// metric with that label.
var unproduced = map[string]string{
	`ejbca_issuer_revocations_total{outcome="abandoned"}`: "a revocation is abandoned after --revocation-abandon-after (hours)",
}

// TestMonitoringSelectorsMatchExportedSeries runs the real manager through
// an issuance, a refusal, a denial, an approval, a revocation that fails once,
// a rate-limited issuer and an EJBCA outage, scrapes it, and checks that every
// selector of the chart's alerts and dashboard matches at least one exported
// series with every label the query groups by. A renamed metric or label
// fails it.
func TestMonitoringSelectorsMatchExportedSeries(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("testdata", "monitoring-selectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var selectors []monitoringSelector
	if err := json.Unmarshal(b, &selectors); err != nil {
		t.Fatal(err)
	}
	if len(selectors) < 10 {
		t.Fatalf("only %d selectors in testdata/monitoring-selectors.json", len(selectors))
	}

	sim := newSim(t, ejbcasim.Config{})
	ns, _ := readyIssuer(t, sim, func(s *v1alpha1.IssuerSpec) {
		s.AllowedOverrides = []v1alpha1.Override{v1alpha1.OverrideCertificateProfileName}
		s.Revocation = &v1alpha1.RevocationSpec{}
	})
	// Issuance, and a revocation whose first attempt EJBCA fails.
	issued, _ := requestFor(t, ns, "ejbca", "issued")
	waitRequest(t, issued, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
	sim.InjectFault("revoke", ejbcasim.Fault{Count: 1, Status: 503})
	update(t, issued, func(cr *cmapi.CertificateRequest) {
		cr.Annotations[v1alpha1.RevokeAnnotation] = "keyCompromise"
	})
	// A refusal by EJBCA, and a denial by an approver.
	refused, _ := requestFor(t, ns, "ejbca", "refused", annotate(v1alpha1.AnnotationCertificateProfileName, "NOPE"))
	_, csr := testkit.CSR(t, testkit.CommonName("denied.example.com"), testkit.DNSNames("denied.example.com"))
	denied := newRequest(t, ns, "ejbca", "denied", csr)
	setCondition(t, denied, cmapi.CertificateRequestConditionDenied, "test")

	// An EJBCA administrator's approval.
	approvalSpec := issuerSpec(sim)
	approvalSpec.CertificateProfileName = "APPROVAL"
	approvalSpec.Approval = &v1alpha1.ApprovalSpec{Flow: v1alpha1.ApprovalFlowAlways}
	waitIssuer(t, newIssuer(t, ns, "approval", approvalSpec), v1alpha1.ReasonChecked)
	approved, _ := requestFor(t, ns, "approval", "approved")
	waiting := waitRequest(t, approved, cmapi.CertificateRequestReasonPending, "waiting for EJBCA approval", 30*time.Second)
	pendingSamples := scrapeMetrics(t)
	// The oldest wait is this request's, as its message dates it.
	since, err := time.Parse(time.RFC3339, waiting.Message[strings.LastIndex(waiting.Message, " ")+1:])
	if err != nil {
		t.Fatalf("no time at the end of %q: %v", waiting.Message, err)
	}
	if got := find(pendingSamples, "ejbca_issuer_approval_oldest_pending_timestamp_seconds", nil); len(got) != 1 || int64(got[0].value) > since.Unix() {
		t.Errorf("ejbca_issuer_approval_oldest_pending_timestamp_seconds = %+v while a request waits since %s", got, since)
	}

	// An issuer held back by its rate limit.
	limitedSpec := issuerSpec(sim)
	limitedSpec.RateLimit = &v1alpha1.RateLimit{QPS: 1, Burst: 1}
	waitIssuer(t, newIssuer(t, ns, "limited", limitedSpec), v1alpha1.ReasonChecked)
	var limited []*cmapi.CertificateRequest
	for i := range 3 {
		cr, _ := requestFor(t, ns, "limited", fmt.Sprintf("limited-%d", i))
		limited = append(limited, cr)
	}

	// An EJBCA outage: an issuer whose EJBCA is down.
	down := newSim(t, ejbcasim.Config{})
	downNS := newNamespace(t)
	simSecrets(t, down, downNS)
	downSpec := issuerSpec(down)
	if err := down.Close(); err != nil {
		t.Fatal(err)
	}
	waitIssuer(t, newIssuer(t, downNS, "outage", downSpec), v1alpha1.ReasonUnreachable)

	ids := sim.PendingApprovals()
	if len(ids) != 1 {
		t.Fatalf("pending approvals %v, want one", ids)
	}
	if err := sim.Approve(ids[0]); err != nil {
		t.Fatal(err)
	}
	waitRequest(t, approved, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
	waitRequest(t, refused, cmapi.CertificateRequestReasonFailed, "", 30*time.Second)
	waitRequest(t, denied, cmapi.CertificateRequestReasonDenied, "", 30*time.Second)
	for _, cr := range limited {
		waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
	}

	var missing []string
	testkit.Eventually(t, 30*time.Second, func() string {
		// The approvals gauge is back at 0 by now; its series was there
		// while the request waited.
		samples := append(scrapeMetrics(t), pendingSamples...)
		missing = missing[:0]
		for _, s := range selectors {
			if why := selectorMisses(s, samples); why != "" {
				missing = append(missing, why+" (used by "+strings.Join(s.UsedBy, ", ")+")")
			}
		}
		if len(missing) > 0 {
			return fmt.Sprintf("%d selectors match no exported series:\n%s", len(missing), strings.Join(missing, "\n"))
		}
		return ""
	})
	// The scenario produced what the alerts look for.
	samples := scrapeMetrics(t)
	for name, labels := range map[string]map[string]string{
		"ejbca_issuer_revocations_total":             {"outcome": "failed"},
		"ejbca_issuer_ejbca_requests_total":          {"status": "0"},
		"ejbca_issuer_ejbca_throttled_seconds_total": {"name": "limited"},
	} {
		if len(find(samples, name, labels)) == 0 {
			t.Errorf("no %s%v: the scenario did not produce it", name, labels)
		}
	}
}

// selectorMisses says why no sample matches the selector, "" when one does.
func selectorMisses(s monitoringSelector, samples []sample) string {
	var strict, loose []func(sample) bool
	for _, m := range s.Matchers {
		m := m
		has := func(x sample) bool { _, ok := x.labels[m.Label]; return ok }
		var match func(x sample) bool
		switch m.Op {
		case "=":
			match = func(x sample) bool { return x.labels[m.Label] == m.Value }
		case "!=":
			match = func(x sample) bool { return x.labels[m.Label] != m.Value }
		case "=~", "!~":
			re, err := regexp.Compile("^(?:" + m.Value + ")$")
			if err != nil {
				return fmt.Sprintf("%s: matcher %s%s%q: %v", s.Metric, m.Label, m.Op, m.Value, err)
			}
			want := m.Op == "=~"
			match = func(x sample) bool { return re.MatchString(x.labels[m.Label]) == want }
		default:
			return fmt.Sprintf("%s: unknown matcher operator %q", s.Metric, m.Op)
		}
		if _, ok := unproduced[fmt.Sprintf("%s{%s%s%q}", s.Metric, m.Label, m.Op, m.Value)]; ok {
			loose = append(loose, has)
		} else {
			strict = append(strict, match)
		}
	}
	for _, x := range samples {
		if x.name != s.Metric {
			continue
		}
		ok := true
		for _, f := range append(strict, loose...) {
			ok = ok && f(x)
		}
		for _, l := range s.Labels {
			_, has := x.labels[l]
			ok = ok && has
		}
		if ok {
			return ""
		}
	}
	var ms []string
	for _, m := range s.Matchers {
		ms = append(ms, fmt.Sprintf("%s%s%q", m.Label, m.Op, m.Value))
	}
	sort.Strings(ms)
	return fmt.Sprintf("%s{%s} by (%s)", s.Metric, strings.Join(ms, ","), strings.Join(s.Labels, ", "))
}
