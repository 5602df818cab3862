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

// The certificate profile check reads EJBCA's list of the CAs a profile
// allows (RaCertificateProfileResponseV2): a profile that allows any CA
// lists ANY_CA, and the issuer stays Ready; a profile limited to other CAs
// makes the issuer ProfileNotFound, naming the CA the profile lacks and the
// ones it allows; allowing the CA in EJBCA makes it Ready again.
func TestProfileCheckReadsTheProfilesCAs(t *testing.T) {
	t.Parallel()
	sim := newSim(t, ejbcasim.Config{Preset: ejbcasim.PresetEnterprise9})
	sim.SetProfileCAs("SERVER") // any CA
	sim.AddCertificateProfile("ELSEWHERE")
	sim.SetProfileCAs("ELSEWHERE", ejbcasim.RootCAName, "PartnerCA")

	ns := newNamespace(t)
	simSecrets(t, sim, ns)
	anyCA := newIssuer(t, ns, "any-ca", issuerSpec(sim))
	c := waitIssuer(t, anyCA, v1alpha1.ReasonChecked)
	if !strings.Contains(c.Message, `certificate profile "SERVER"`) {
		t.Errorf("any-CA issuer message %q does not say the profile was checked", c.Message)
	}

	spec := issuerSpec(sim)
	spec.CertificateProfileName = "ELSEWHERE"
	limited := newIssuer(t, ns, "limited", spec)
	c = waitIssuer(t, limited, v1alpha1.ReasonProfileNotFound)
	want := `EJBCA's certificate profile "ELSEWHERE" does not allow CA "` + ejbcasim.IssuingCAName + `" (it allows: ` + ejbcasim.RootCAName + `, PartnerCA)`
	if !strings.Contains(c.Message, want) {
		t.Errorf("limited issuer message %q does not contain %q", c.Message, want)
	}
	// Allowed in EJBCA; a spec change (another end entity profile) checks
	// again at once.
	sim.SetProfileCAs("ELSEWHERE", ejbcasim.RootCAName, ejbcasim.IssuingCAName)
	sim.AddEndEntityProfile("OTHER")
	update(t, limited, func(i *v1alpha1.EJBCAIssuer) { i.Spec.EndEntityProfileName = "OTHER" })
	waitIssuer(t, limited, v1alpha1.ReasonChecked)
}
