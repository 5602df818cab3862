package controllers_test

import (
	"strings"
	"testing"

	"github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
)

// TestAlertMetricsAreExported checks the series the chart's alerts need,
// through the real manager: the CA chain's expiry per issuer (also in the
// issuer's status), the Ready reason (one series per issuer, following the
// condition) and the leader gauge.
func TestAlertMetricsAreExported(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{})
	ns, iss := readyIssuer(t, sim)
	kind := v1alpha1.IssuerKind
	issuer := map[string]string{"kind": kind, "namespace": ns, "name": "ejbca"}
	with := func(extra map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range issuer {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}

	samples := scrapeMetrics(t)
	// The simulator's IssuingCA is signed by RootCA; ManagementCA is not in
	// the chain.
	for _, c := range []struct {
		ca, role string
		want     int64
	}{
		{ejbcasim.IssuingCAName, "issuing", sim.IssuingCA().NotAfter.Unix()},
		{ejbcasim.RootCAName, "root", sim.RootCA().NotAfter.Unix()},
	} {
		got := find(samples, "ejbca_issuer_ca_expiry_timestamp_seconds", with(map[string]string{"ca": c.ca, "role": c.role}))
		if len(got) != 1 || int64(got[0].value) != c.want {
			t.Errorf("ejbca_issuer_ca_expiry_timestamp_seconds for %s (%s): %+v, want one sample of %d", c.ca, c.role, got, c.want)
		}
	}
	if got := find(samples, "ejbca_issuer_ca_expiry_timestamp_seconds", issuer); len(got) != 2 {
		t.Errorf("the issuer exports %d CA expiry series, want its chain's 2: %+v", len(got), got)
	}
	if got := iss.Status.CANotAfter; got == nil || !got.Time.Equal(sim.IssuingCA().NotAfter.UTC().Truncate(1e9)) {
		t.Errorf("status.caNotAfter = %v, want the issuing CA's notAfter %v", got, sim.IssuingCA().NotAfter)
	}
	if msg := iss.Status.ReadyCondition().Message; !strings.Contains(msg, `"IssuingCA"'s (issuing), on `+sim.IssuingCA().NotAfter.UTC().Format("2006-01-02T15:04:05Z")) {
		t.Errorf("the Ready message does not name the first CA certificate to expire: %s", msg)
	}
	if got := find(samples, "ejbca_issuer_issuer_ready_reason", issuer); len(got) != 1 || got[0].labels["reason"] != v1alpha1.ReasonChecked || got[0].value != 1 {
		t.Errorf("ejbca_issuer_issuer_ready_reason: %+v, want one series, reason Checked, 1", got)
	}
	// The suite's manager runs without leader election: it is the leader.
	if got := find(samples, "ejbca_issuer_leader", nil); len(got) != 1 || got[0].value != 1 {
		t.Errorf("ejbca_issuer_leader: %+v, want 1", got)
	}

	// A CA the credentials no longer see: the reason follows, the old
	// reason's series and the CA's expiry go, and so does status.caNotAfter.
	update(t, iss, func(i *v1alpha1.EJBCAIssuer) { i.Spec.CAName = "Gone" })
	waitIssuer(t, iss, v1alpha1.ReasonCANotFound)
	samples = scrapeMetrics(t)
	if got := find(samples, "ejbca_issuer_issuer_ready_reason", issuer); len(got) != 1 || got[0].labels["reason"] != v1alpha1.ReasonCANotFound {
		t.Errorf("ejbca_issuer_issuer_ready_reason after the CA went: %+v, want one series, reason CANotFound", got)
	}
	if got := find(samples, "ejbca_issuer_issuer_ready", issuer); len(got) != 1 || got[0].value != 0 {
		t.Errorf("ejbca_issuer_issuer_ready after the CA went: %+v, want 0", got)
	}
	if got := find(samples, "ejbca_issuer_ca_expiry_timestamp_seconds", issuer); len(got) != 0 {
		t.Errorf("CA expiry series remain after the CA went: %+v", got)
	}
	if iss.Status.CANotAfter != nil {
		t.Errorf("status.caNotAfter = %v after the CA went, want none", iss.Status.CANotAfter)
	}
}
