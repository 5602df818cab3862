package controllers_test

import (
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
)

// An unknown CA, certificate profile or end entity profile is the issuer's
// fault, not the request's: the issuer goes Ready=False ProfileNotFound (by
// its health check where EJBCA can tell, else on the first refusal), its
// requests wait as Pending and never reach Failed, and fixing the issuer
// issues them within seconds.
func TestUnknownProfilesMakeTheIssuerNotReady(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, preset string
		break_, fix  func(*v1alpha1.IssuerSpec)
		message      string
		byCheck      bool
	}{
		{"certificate profile found by the health check", ejbcasim.PresetEnterprise9,
			func(s *v1alpha1.IssuerSpec) { s.CertificateProfileName = "SERVERX" }, func(s *v1alpha1.IssuerSpec) { s.CertificateProfileName = "SERVER" },
			`has no certificate profile named "SERVERX"`, true},
		{"certificate profile found by the first refusal", ejbcasim.PresetEnterprise8,
			func(s *v1alpha1.IssuerSpec) { s.CertificateProfileName = "SERVERX" }, func(s *v1alpha1.IssuerSpec) { s.CertificateProfileName = "SERVER" },
			`Certificate profile with name "SERVERX" doesn't exist`, false},
		{"end entity profile found by the first refusal", ejbcasim.PresetEnterprise9,
			func(s *v1alpha1.IssuerSpec) { s.EndEntityProfileName = "EMPTYX" }, func(s *v1alpha1.IssuerSpec) { s.EndEntityProfileName = "EMPTY" },
			`End Entity Profile of name "EMPTYX" was not found`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sim := newSim(t, ejbcasim.Config{Preset: tc.preset})
			ns := newNamespace(t)
			simSecrets(t, sim, ns)
			spec := issuerSpec(sim)
			tc.break_(&spec)
			iss := newIssuer(t, ns, "ejbca", spec)
			if tc.byCheck {
				c := waitIssuer(t, iss, v1alpha1.ReasonProfileNotFound)
				if !strings.Contains(c.Message, tc.message) {
					t.Errorf("issuer message %q does not contain %q", c.Message, tc.message)
				}
			} else {
				waitIssuer(t, iss, v1alpha1.ReasonChecked)
			}
			cr, _ := requestFor(t, ns, "ejbca", "web")
			waitRequest(t, cr, cmapi.CertificateRequestReasonPending, tc.message, 30*time.Second)
			c := waitIssuer(t, iss, v1alpha1.ReasonProfileNotFound)
			if !strings.Contains(c.Message, tc.message) {
				t.Errorf("issuer message %q does not contain %q", c.Message, tc.message)
			}
			if !tc.byCheck && sim.Counters().Calls["pkcs10enroll"][400] != 1 {
				t.Errorf("pkcs10enroll calls %v, want the one refusal", sim.Counters().Calls["pkcs10enroll"])
			}
			update(t, iss, func(i *v1alpha1.EJBCAIssuer) { tc.fix(&i.Spec) })
			waitRequest(t, cr, cmapi.CertificateRequestReasonIssued, "", 30*time.Second)
			if cr.Status.FailureTime != nil {
				t.Error("the request has a failureTime: it was Failed on the way")
			}
			if n := enrolments(sim, ns+"/web"); n != 1 {
				t.Errorf("%d certificates, want 1", n)
			}
		})
	}
}
