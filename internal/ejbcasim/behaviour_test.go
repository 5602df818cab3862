package ejbcasim_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
)

func TestPresetNamesAndBehaviour(t *testing.T) {
	if got := ejbcasim.PresetNames(); !slices.Equal(got, []string{"community-9", "enterprise-8", "enterprise-9"}) {
		t.Fatalf("PresetNames %v", got)
	}
	want := map[string]ejbcasim.Behaviour{
		"community-9":  {OAuth: true, EndTime: true, SearchV2: true, CertificateProfileAPI: true},
		"enterprise-8": {Approvals: true, EndEntityAPI: true, PendingWithoutID: true, OAuth: true, SearchV2: true},
		"enterprise-9": {Approvals: true, EndEntityAPI: true, ApprovalAPI: true, CertificateRequestTypeRequired: true, OAuth: true, EndTime: true, SearchV2: true, CertificateProfileAPI: true},
	}
	for name, b := range want {
		got, err := ejbcasim.PresetBehaviour(name)
		if err != nil || got != b {
			t.Errorf("%s: %+v %v", name, got, err)
		}
	}
	if def, _ := ejbcasim.PresetBehaviour(""); def != want[ejbcasim.DefaultPreset] || ejbcasim.DefaultPreset != "enterprise-9" {
		t.Errorf("default preset %+v", def)
	}
	if _, err := ejbcasim.PresetBehaviour("enterprise-7"); err == nil || !strings.Contains(err.Error(), "community-9") {
		t.Errorf("unknown preset: %v", err)
	}
	if _, err := ejbcasim.Start(ejbcasim.Config{Preset: "enterprise-7"}); err == nil {
		t.Error("Start accepted an unknown preset")
	}
}

// TestPresetsReportTheirVersion: the status endpoints name the version a
// preset stands for; a custom behaviour says so.
func TestPresetsReportTheirVersion(t *testing.T) {
	for _, tc := range []struct {
		cfg      ejbcasim.Config
		preset   string
		revision string
	}{
		{ejbcasim.Config{}, "enterprise-9", "EJBCA 9.3.3 Enterprise"},
		{ejbcasim.Config{Preset: "community-9"}, "community-9", "EJBCA 9.3.3 Community"},
		{ejbcasim.Config{Preset: "enterprise-8"}, "enterprise-8", "EJBCA 8.3.2 Enterprise"},
		{ejbcasim.Config{Preset: "enterprise-8", Behaviour: &ejbcasim.Behaviour{OAuth: true}}, "enterprise-8", "custom behaviour"},
	} {
		h := start(t, tc.cfg)
		var st struct {
			Revision string `json:"revision"`
		}
		h.call(h.anon, "GET", "/v1/certificate/status", nil).decode(t, &st)
		if h.sim.Preset() != tc.preset || !strings.Contains(st.Revision, tc.revision) {
			t.Errorf("%+v: preset %s, revision %q", tc.cfg, h.sim.Preset(), st.Revision)
		}
		if tc.cfg.Behaviour != nil && h.sim.Behaviour() != *tc.cfg.Behaviour {
			t.Errorf("Behaviour %+v, want the override", h.sim.Behaviour())
		}
	}
}

// TestAbsentResources: what a preset lacks answers RESTEasy's 404 for an
// unknown resource, counted under the endpoint's name.
func TestAbsentResources(t *testing.T) {
	for _, preset := range ejbcasim.PresetNames() {
		t.Run(preset, func(t *testing.T) {
			h := start(t, ejbcasim.Config{Preset: preset})
			b := h.sim.Behaviour()
			for _, c := range []struct {
				present      bool
				method, path string
				name         string
				body         any
			}{
				{b.EndEntityAPI, "POST", "/v1/endentity", "endentity", addEndEntityBody("x", "ENDUSER")},
				{b.ApprovalAPI, "GET", "/v1/approval/1/status", "approval-status", nil},
				{b.ApprovalAPI, "POST", "/v1/approval/1/process", "approval-process", map[string]any{"approve": true}},
				{b.SearchV2, "POST", "/v2/certificate/search", "search-v2", map[string]any{"criteria": []map[string]string{{"property": "QUERY", "value": "x", "operation": "LIKE"}}}},
				{true, "POST", "/v1/certificate/1/finalize", "finalize", map[string]any{"response_format": "DER"}},
			} {
				r := h.call(h.admin, c.method, c.path, c.body)
				absent := r.status == 404 && strings.HasPrefix(r.errorMessage(t), "RESTEASY003210: Could not find resource for full path: ")
				if absent == c.present {
					t.Errorf("%s %s present=%v: %d %s", c.method, c.path, c.present, r.status, r.body)
				}
				if h.sim.Counters().Get(c.name) != 1 {
					t.Errorf("%s not counted: %+v", c.name, h.sim.Counters().Calls)
				}
			}
		})
	}
}

// TestApprovalsSwitch: without approvals (community-9) no profile or CA
// ever waits; pkcs10enroll issues for the APPROVAL profile.
func TestApprovalsSwitch(t *testing.T) {
	for _, preset := range ejbcasim.PresetNames() {
		t.Run(preset, func(t *testing.T) {
			h := start(t, ejbcasim.Config{Preset: preset})
			if err := h.sim.SetCAApprovalRequired("IssuingCA", true); err != nil {
				t.Fatal(err)
			}
			csr, _ := newCSR(t, csrSpec{cn: "a"})
			r := h.call(h.admin, "POST", "/v1/certificate/pkcs10enroll", enrollBody(csr, "a", "APPROVAL"))
			if h.sim.Behaviour().Approvals {
				r.expectError(t, 400, fmt.Sprintf("Single transaction enrollment request rejected since approvals are enabled for this CA (%d) or Certificate Profile (%d).",
					h.sim.CAID("IssuingCA"), h.sim.CertificateProfileID("APPROVAL")))
				return
			}
			if r.status != 201 || len(h.sim.PendingApprovals()) != 0 {
				t.Fatalf("no approvals on %s: %d %s", preset, r.status, r.body)
			}
			var e enrolled
			r.decode(t, &e)
			const issuer = "CN=IssuingCA,O=EJBCA Sim"
			if r := h.call(h.admin, "PUT", revokePath(issuer, e.SerialNumber, "reason=SUPERSEDED"), nil); r.status != 200 {
				t.Fatalf("revoke without approvals: %d %s", r.status, r.body)
			}
		})
	}
}

// TestOAuthSwitch: with OAuth off a bearer token is no credential (403); a
// client certificate still works.
func TestOAuthSwitch(t *testing.T) {
	b, _ := ejbcasim.PresetBehaviour("community-9")
	b.OAuth = false
	h := start(t, ejbcasim.Config{Preset: "community-9", Behaviour: &b})
	h.call(h.anon, "GET", "/v1/ca", nil, "Authorization", "Bearer "+h.sim.StaticToken()).
		expectError(t, 403, "Error no client certificate or OAuth token received for authentication.")
	if r := h.call(h.admin, "GET", "/v1/ca", nil); r.status != 200 {
		t.Fatalf("client certificate: %d %s", r.status, r.body)
	}
	on := start(t, ejbcasim.Config{Preset: "community-9"})
	if r := on.call(on.anon, "GET", "/v1/ca", nil, "Authorization", "Bearer "+on.sim.StaticToken()); r.status != 200 {
		t.Fatalf("OAuth on: %d %s", r.status, r.body)
	}
}

// TestEndEntityAbsentMeansProbeFails: on community-9 an approval flow
// cannot start; the client's only enrolment is pkcs10enroll.
func TestCommunityHasNoApprovalFlow(t *testing.T) {
	h := start(t, ejbcasim.Config{Preset: "community-9"})
	if r := h.call(h.admin, "POST", "/v1/endentity", addEndEntityBody("x", "APPROVAL")); r.status != 404 {
		t.Fatalf("endentity: %d %s", r.status, r.body)
	}
	if _, ok := h.sim.EndEntity("x"); ok {
		t.Fatal("an absent resource stored an end entity")
	}
	if h.sim.Behaviour().Approvals {
		t.Fatal("community-9 has approvals")
	}
}

// TestCertificateProfileResource: GET /v2/certificate/profile/{name} answers
// a known profile with its CAs, an unknown one with EJBCA's 400, and is
// absent where the preset lacks it.
func TestCertificateProfileResource(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	var info struct {
		ID  int      `json:"certificate_profile_id"`
		CAs []string `json:"available_cas"`
	}
	h.call(h.admin, "GET", "/v2/certificate/profile/SERVER", nil).decode(t, &info)
	if info.ID != 9 || !slices.Contains(info.CAs, "IssuingCA") {
		t.Errorf("SERVER: %+v", info)
	}
	// RaCertificateProfileResponseV2: a profile allowing any CA lists
	// ANY_CA alone; one limited to CAs lists their names.
	h.sim.SetProfileCAs("SERVER")
	h.call(h.admin, "GET", "/v2/certificate/profile/SERVER", nil).decode(t, &info)
	if !slices.Equal(info.CAs, []string{ejbcasim.AnyCA}) {
		t.Errorf("SERVER allowing any CA: %+v", info)
	}
	h.sim.SetProfileCAs("SERVER", ejbcasim.RootCAName)
	h.call(h.admin, "GET", "/v2/certificate/profile/SERVER", nil).decode(t, &info)
	if !slices.Equal(info.CAs, []string{ejbcasim.RootCAName}) {
		t.Errorf("SERVER limited to the root: %+v", info)
	}
	h.call(h.admin, "GET", "/v2/certificate/profile/NOPE", nil).expectError(t, 400, "Invalid search criteria, unknown certificate profile.")
	if r := h.call(h.anon, "GET", "/v2/certificate/profile/SERVER", nil); r.status != 403 {
		t.Errorf("without credentials: %d", r.status)
	}
	old := start(t, ejbcasim.Config{Preset: ejbcasim.PresetEnterprise8})
	if r := old.call(old.admin, "GET", "/v2/certificate/profile/SERVER", nil); r.status != 404 || !strings.Contains(string(r.body), "RESTEASY003210") {
		t.Errorf("enterprise-8: %d %s", r.status, r.body)
	}
}
