package controllers_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/controllers/signing"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
)

// sample is one line of the Prometheus text format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// scrapeMetrics reads the manager's metrics endpoint with Prometheus's own
// text parser, one sample per series (histograms as _bucket, _sum and
// _count, as a Prometheus server stores them).
func scrapeMetrics(t *testing.T) []sample {
	t.Helper()
	res, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d", res.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	var out []sample
	for name, f := range families {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.Counter != nil:
				out = append(out, sample{name, labels, m.GetCounter().GetValue()})
			case m.Gauge != nil:
				out = append(out, sample{name, labels, m.GetGauge().GetValue()})
			case m.Untyped != nil:
				out = append(out, sample{name, labels, m.GetUntyped().GetValue()})
			case m.Histogram != nil:
				h := m.GetHistogram()
				out = append(out, sample{name + "_count", labels, float64(h.GetSampleCount())}, sample{name + "_sum", labels, h.GetSampleSum()})
				for _, b := range h.GetBucket() {
					bl := maps.Clone(labels)
					bl["le"] = strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64)
					out = append(out, sample{name + "_bucket", bl, float64(b.GetCumulativeCount())})
				}
			}
		}
	}
	return out
}

// find returns the samples of a metric carrying (at least) the labels.
func find(samples []sample, name string, labels map[string]string) []sample {
	var out []sample
	for _, s := range samples {
		if s.name != name {
			continue
		}
		match := true
		for k, v := range labels {
			match = match && s.labels[k] == v
		}
		if match {
			out = append(out, s)
		}
	}
	return out
}

func TestMetricsAreExported(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns, _ := readyIssuer(t, sim, func(s *v1alpha1.IssuerSpec) {
		s.AllowedOverrides = []v1alpha1.Override{v1alpha1.OverrideCertificateProfileName}
	})
	broken := issuerSpec(sim)
	broken.Auth.MTLS.SecretName = "absent"
	brokenIssuer := newIssuer(t, ns, "broken", broken)
	waitIssuer(t, brokenIssuer, v1alpha1.ReasonSecretNotFound)

	ok, _ := requestFor(t, ns, "ejbca", "measured")
	waitRequest(t, ok, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
	bad, _ := requestFor(t, ns, "ejbca", "refused", annotate(v1alpha1.AnnotationCertificateProfileName, "NOPE"))
	waitRequest(t, bad, cmapi.CertificateRequestReasonFailed, "", 30*time.Second)

	kind := v1alpha1.IssuerKind
	enroll := "POST /v1/certificate/pkcs10enroll"
	checks := []struct {
		name   string
		labels map[string]string
		// min is the least value any one matching sample must have; -1
		// only asks for the metric to be present.
		min float64
	}{
		{"ejbca_issuer_certificaterequests_total", map[string]string{"issuer_kind": kind, "request_kind": "CertificateRequest", "outcome": "issued"}, 1},
		{"ejbca_issuer_certificaterequests_total", map[string]string{"issuer_kind": kind, "request_kind": "CertificateRequest", "outcome": "failed"}, 1},
		{"ejbca_issuer_ejbca_requests_total", map[string]string{"endpoint": enroll, "status": "201"}, 1},
		{"ejbca_issuer_ejbca_requests_total", map[string]string{"endpoint": enroll, "status": "400"}, 1},
		{"ejbca_issuer_ejbca_requests_total", map[string]string{"endpoint": "GET /v1/ca", "status": "200"}, 1},
		{"ejbca_issuer_ejbca_request_duration_seconds_bucket", map[string]string{"endpoint": enroll, "le": "+Inf"}, 1},
		{"ejbca_issuer_ejbca_request_duration_seconds_count", map[string]string{"endpoint": enroll}, 1},
		{"ejbca_issuer_approvals_pending", nil, -1},
		{"ejbca_issuer_issuance_duration_seconds_bucket", map[string]string{"issuer_kind": kind, "request_kind": "CertificateRequest", "le": "+Inf"}, 1},
		{"ejbca_issuer_issuance_duration_seconds_count", map[string]string{"issuer_kind": kind, "request_kind": "CertificateRequest"}, 1},
		{"ejbca_issuer_health_checks_total", map[string]string{"kind": kind, "reason": v1alpha1.ReasonChecked}, 1},
		{"ejbca_issuer_health_checks_total", map[string]string{"kind": kind, "reason": v1alpha1.ReasonSecretNotFound}, 1},
	}
	samples := scrapeMetrics(t)
	for _, c := range checks {
		got := find(samples, c.name, c.labels)
		if len(got) == 0 {
			t.Errorf("no metric %s%v", c.name, c.labels)
			continue
		}
		best := got[0].value
		for _, s := range got {
			best = max(best, s.value)
		}
		if c.min >= 0 && best < c.min {
			t.Errorf("%s%v = %v, want at least %v", c.name, c.labels, best, c.min)
		}
	}
	if got := find(samples, "ejbca_issuer_approvals_pending", nil); len(got) == 1 && got[0].value < 0 {
		t.Errorf("ejbca_issuer_approvals_pending = %v", got[0].value)
	}

	// The readiness gauge is per issuer: 1 for the Ready one, 0 for the other.
	for name, want := range map[string]float64{"ejbca": 1, "broken": 0} {
		got := find(samples, "ejbca_issuer_issuer_ready", map[string]string{"kind": kind, "namespace": ns, "name": name})
		if len(got) != 1 || got[0].value != want {
			t.Errorf("ejbca_issuer_issuer_ready for %s/%s: %+v, want one sample of %v", ns, name, got, want)
		}
	}
}

// secretSlice is a distinctive 40-character piece of s.
func secretSlice(s string) string {
	if len(s) < 104 {
		return s
	}
	return s[64:104]
}

// keyFingerprints are the forms in which a private key could end up in a
// log: a piece of its PEM body (one line of it), and a piece of the PEM text
// base64-encoded (how a []byte field is written in JSON).
func keyFingerprints(t *testing.T, what string, keyPEM []byte) map[string]string {
	t.Helper()
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		t.Fatalf("%s is not PEM", what)
	}
	return map[string]string{
		what + " (PEM body)":            secretSlice(base64.StdEncoding.EncodeToString(block.Bytes)),
		what + " (PEM, base64-encoded)": secretSlice(base64.StdEncoding.EncodeToString(keyPEM)),
	}
}

func pkcs8PEM(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func TestNoSecretMaterialInLogs(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns := newNamespace(t)
	simSecrets(t, sim, ns)

	tokenSpec := issuerSpec(sim)
	tokenSpec.Auth = v1alpha1.AuthSpec{Mode: v1alpha1.AuthModeOAuth2, OAuth2: &v1alpha1.OAuth2Auth{
		TokenSecretRef: &v1alpha1.SecretKeySelector{Name: "ejbca-token", Key: "token"}}}
	approvalSpec := issuerSpec(sim)
	approvalSpec.CertificateProfileName = "APPROVAL"
	approvalSpec.Approval = &v1alpha1.ApprovalSpec{Flow: v1alpha1.ApprovalFlowAlways}
	specs := map[string]v1alpha1.IssuerSpec{
		"mtls": issuerSpec(sim), "oauth": oauthSpec(sim), "token": tokenSpec, "approval": approvalSpec,
	}
	for name, spec := range specs {
		iss := newIssuer(t, ns, name, spec)
		waitIssuer(t, iss, v1alpha1.ReasonChecked)
	}

	secrets := keyFingerprints(t, "the client private key", sim.ClientKeyPEM())
	secrets["the static token"] = sim.StaticToken()
	secrets["the OAuth2 client secret"] = sim.OAuthClientSecret()
	// The OAuth2 access tokens are not exposed by the simulator, so they are
	// not checked here.

	var requests []*cmapi.CertificateRequest
	for _, name := range []string{"mtls", "oauth", "token"} {
		cr, key := requestFor(t, ns, name, "logged-"+name)
		requests = append(requests, cr)
		for k, v := range keyFingerprints(t, "the private key of "+name+"'s CSR", pkcs8PEM(t, key)) {
			secrets[k] = v
		}
	}

	// The approval flow keeps the enrolment password in a Secret of its own
	// until the certificate is issued.
	cr, key := requestFor(t, ns, "approval", "logged-approval")
	requests = append(requests, cr)
	for k, v := range keyFingerprints(t, "the private key of the approval request's CSR", pkcs8PEM(t, key)) {
		secrets[k] = v
	}
	waitRequest(t, cr, cmapi.CertificateRequestReasonPending, "waiting for EJBCA approval", 30*time.Second)
	var enrolment corev1.Secret
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: signing.EnrolmentSecretName(cr.Name)}, &enrolment); err != nil {
		t.Fatal(err)
	}
	password := string(enrolment.Data["password"])
	if len(password) < 16 {
		t.Fatalf("enrolment password %d characters long", len(password))
	}
	secrets["the enrolment password"] = password
	ids := sim.PendingApprovals()
	if len(ids) != 1 {
		t.Fatalf("pending approvals %v, want one", ids)
	}
	if err := sim.Approve(ids[0]); err != nil {
		t.Fatal(err)
	}

	for _, cr := range requests {
		waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
	}

	log := logs.String()
	for _, cr := range requests {
		if !strings.Contains(log, cr.Name) {
			t.Errorf("the log never mentions request %s: the test does not see the issuance it checks", cr.Name)
		}
	}
	for what, secret := range secrets {
		if secret == "" {
			t.Fatalf("no value for %s", what)
		}
		if i := strings.Index(log, secret); i >= 0 {
			start := strings.LastIndex(log[:i], "\n") + 1
			end := i + strings.Index(log[i:]+"\n", "\n")
			t.Errorf("the log carries %s: %s", what, log[start:min(end, start+400)])
		}
	}
}
