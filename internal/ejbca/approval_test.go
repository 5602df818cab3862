package ejbca_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
)

// approvalEndEntity is an end entity on the certificate profile that needs approval.
func approvalEndEntity(username string) ejbca.EndEntity {
	return ejbca.EndEntity{
		Username:               username,
		Password:               enrolPassword,
		SubjectDN:              "CN=" + username + ".example.com,O=Acme",
		SubjectAltName:         "dNSName=" + username + ".example.com",
		CAName:                 issuingCA,
		CertificateProfileName: approvalProf,
		EndEntityProfileName:   eeProfile,
	}
}

// enrolFor is the certificaterequest for an end entity added by a test.
func enrolFor(csr []byte, username string) ejbca.EnrollForEndEntityRequest {
	return ejbca.EnrollForEndEntityRequest{CSR: csr, Username: username, Password: enrolPassword, CAName: issuingCA}
}

// onlyPending is the one approval request the simulator holds.
func onlyPending(t *testing.T, sim *ejbcasim.Sim) int {
	t.Helper()
	pending := sim.PendingApprovals()
	if len(pending) != 1 {
		t.Fatalf("pending approvals = %v, want exactly one", pending)
	}
	return pending[0]
}

// noFinalize asserts the client never called finalize, which enrols on an
// approved request.
func noFinalize(t *testing.T, sim *ejbcasim.Sim) {
	t.Helper()
	if n := sim.Counters().Get("finalize"); n != 0 {
		t.Errorf("finalize was called %d times: %v", n, sim.Counters().Calls["finalize"])
	}
}

func TestApprovalRequiredRefusal(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	c := clientFor(t, sim, modeMTLS)

	csr, _ := simpleCSR(t, "needs-approval.example.com")
	req := enrolment(csr, "needs-approval")
	req.CertificateProfileName = approvalProf
	_, err := c.Enroll(ctx, req)
	if !ejbca.IsApprovalRequired(err) {
		t.Fatalf("Enroll on the APPROVAL profile = %v, want approval required", err)
	}
	if ejbca.IsPermanent(err) || ejbca.IsRetryable(err) || ejbca.KindOf(err) == ejbca.KindPending {
		t.Errorf("approval-required error %v has another kind too", err)
	}
	want := fmt.Sprintf("Single transaction enrollment request rejected since approvals are enabled for this CA (%d) or Certificate Profile (%d).",
		sim.CAID(issuingCA), sim.CertificateProfileID(approvalProf))
	if got := ejbca.Message(err); got != want {
		t.Errorf("Message = %q, want %q", got, want)
	}
	if e := asError(t, err); e.RequestID != 0 {
		t.Errorf("a refusal carries a request id %d", e.RequestID)
	}

	// Approval on the CA itself refuses every profile.
	if err := sim.SetCAApprovalRequired(issuingCA, true); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Enroll(ctx, enrolment(csr, "needs-approval")); !ejbca.IsApprovalRequired(err) {
		t.Errorf("Enroll on a CA with approvals = %v, want approval required", err)
	}
	if got := sim.Counters(); got.Calls["pkcs10enroll"][400] != 2 || got.Enrollments != 0 {
		t.Errorf("counters %+v", got)
	}
}

// The approval flow on each preset, as the controllers drive it: add the end
// entity; poll the approval API when there is an id and the API, else probe
// with certificaterequest; enrol once approved. Never finalize.
func TestApprovalFlowAcrossPresets(t *testing.T) {
	t.Parallel()
	for _, preset := range ejbcasim.PresetNames() {
		t.Run(preset, func(t *testing.T) {
			t.Parallel()
			sim := startSim(t, ejbcasim.Config{Preset: preset})
			b := sim.Behaviour()
			ctx := ctxFor(t)
			c := clientFor(t, sim, modeMTLS)
			csr, key := simpleCSR(t, "flow.example.com")

			add, err := c.AddEndEntity(ctx, approvalEndEntity("flow"))
			if !b.EndEntityAPI {
				// Community Edition: no /v1/endentity, no approval API, and no
				// profile needs approval, so pkcs10enroll issues at once.
				if !ejbca.IsUnsupported(err) || ejbca.IsNotFound(err) || !ejbca.IsPermanent(err) {
					t.Fatalf("AddEndEntity without the end entity API = %+v, %v; want unsupported", add, err)
				}
				if _, err := c.ApprovalStatus(ctx, 1); !ejbca.IsUnsupported(err) {
					t.Errorf("ApprovalStatus without the approval API = %v, want unsupported", err)
				}
				if err := c.ProcessApproval(ctx, 1, true, "ok"); !ejbca.IsUnsupported(err) {
					t.Errorf("ProcessApproval without the approval API = %v, want unsupported", err)
				}
				req := enrolment(csr, "flow")
				req.CertificateProfileName = approvalProf
				cert, err := c.Enroll(ctx, req)
				if err != nil {
					t.Fatalf("Enroll on %s = %v, want a certificate (no approvals)", preset, err)
				}
				checkIssued(t, sim, cert, key)
				noFinalize(t, sim)
				return
			}
			if err != nil || !add.WaitingForApproval {
				t.Fatalf("AddEndEntity = %+v, %v; want waiting for approval", add, err)
			}
			id := onlyPending(t, sim)
			if b.PendingWithoutID {
				if add.RequestID != 0 {
					t.Errorf("RequestID = %d from a 202 that carries none", add.RequestID)
				}
			} else if add.RequestID != id {
				t.Errorf("RequestID = %d, want %d", add.RequestID, id)
			}

			// Before approval: the end entity does not exist yet.
			_, err = c.EnrollForEndEntity(ctx, enrolFor(csr, "flow"))
			if !ejbca.IsEndEntityNotFound(err) || !ejbca.IsNotFound(err) {
				t.Fatalf("EnrollForEndEntity before approval = %v, want end entity not found", err)
			}
			if b.ApprovalAPI {
				state, err := c.ApprovalStatus(ctx, add.RequestID)
				if err != nil || state != ejbca.ApprovalPending || state.Approved() || state.Refused() {
					t.Fatalf("ApprovalStatus = %q, %v; want PENDING", state, err)
				}
				if err := c.ProcessApproval(ctx, add.RequestID, true, "approved by "+t.Name()); err != nil {
					t.Fatalf("ProcessApproval: %v", err)
				}
				state, err = c.ApprovalStatus(ctx, add.RequestID)
				if err != nil || !state.Approved() || state.Refused() {
					t.Fatalf("ApprovalStatus after approval = %q, %v; want APPROVED", state, err)
				}
			} else {
				if _, err := c.ApprovalStatus(ctx, id); !ejbca.IsUnsupported(err) || ejbca.IsNotFound(err) {
					t.Errorf("ApprovalStatus without the approval API = %v, want unsupported", err)
				}
				if err := sim.Approve(id); err != nil {
					t.Fatal(err)
				}
			}
			cert, err := c.EnrollForEndEntity(ctx, enrolFor(csr, "flow"))
			if err != nil {
				t.Fatalf("EnrollForEndEntity after approval: %v", err)
			}
			checkIssued(t, sim, cert, key)
			checkSubjectAndSANs(t, cert.Leaf, "flow.example.com", "Acme", []string{"flow.example.com"}, nil, nil)

			// The enrolment code is spent: a refusal, not a missing end entity.
			_, err = c.EnrollForEndEntity(ctx, enrolFor(csr, "flow"))
			if err == nil || ejbca.IsEndEntityNotFound(err) || ejbca.IsRetryable(err) {
				t.Errorf("second EnrollForEndEntity = %v, want EJBCA's status refusal", err)
			}

			got := sim.Counters()
			if got.Enrollments != 1 || got.Calls["certificaterequest"][201] != 1 || got.Get("endentity") != 1 {
				t.Errorf("counters: %+v", got)
			}
			noFinalize(t, sim)
		})
	}
}

func TestApprovalFlowApprovedEveryAuthMode(t *testing.T) {
	t.Parallel()
	for _, mode := range allModes {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			sim := startSim(t, ejbcasim.Config{})
			ctx := ctxFor(t)
			c := clientFor(t, sim, mode)

			add, err := c.AddEndEntity(ctx, approvalEndEntity("flow"))
			if err != nil || !add.WaitingForApproval || !slices.Contains(sim.PendingApprovals(), add.RequestID) {
				t.Fatalf("AddEndEntity = %+v, %v; pending %v", add, err, sim.PendingApprovals())
			}
			if _, exists := sim.EndEntity("flow"); exists {
				t.Error("the end entity exists before approval")
			}
			if err := sim.Approve(add.RequestID); err != nil {
				t.Fatal(err)
			}
			csr, key := simpleCSR(t, "whatever.example.com")
			cert, err := c.EnrollForEndEntity(ctx, enrolFor(csr, "flow"))
			if err != nil {
				t.Fatalf("EnrollForEndEntity after approval: %v", err)
			}
			checkIssued(t, sim, cert, key)

			// Certificates of an approval profile are revoked after approval too.
			_, err = c.Revoke(ctx, issuingCADN, cert.SerialNumber, ejbca.ReasonSuperseded, time.Time{})
			if ejbca.KindOf(err) != ejbca.KindPending {
				t.Fatalf("Revoke of an approval-profile certificate = %v, want pending", err)
			}
			e := asError(t, err)
			if e.StatusCode != 202 || e.Message == "" {
				t.Errorf("error = %+v", e)
			}
			revID := e.RequestID
			if revID == 0 {
				pending := sim.PendingApprovals()
				if len(pending) != 1 {
					t.Fatalf("pending approvals %v", pending)
				}
				revID = pending[0]
			}
			if err := sim.Approve(revID); err != nil {
				t.Fatal(err)
			}
			rs, err := c.RevocationStatus(ctx, issuingCADN, cert.SerialNumber)
			if err != nil || !rs.Revoked || rs.RevocationReason != ejbca.ReasonSuperseded {
				t.Errorf("RevocationStatus after the approved revocation = %+v, %v", rs, err)
			}
			noFinalize(t, sim)
		})
	}
}

func TestApprovalFlowRefused(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{Preset: ejbcasim.PresetEnterprise9})
	ctx := ctxFor(t)
	c := clientFor(t, sim, modeOAuth2)

	rejected, err := c.AddEndEntity(ctx, approvalEndEntity("rejected"))
	if err != nil {
		t.Fatal(err)
	}
	expired, err := c.AddEndEntity(ctx, approvalEndEntity("expired"))
	if err != nil {
		t.Fatal(err)
	}
	if rejected.RequestID == expired.RequestID || rejected.RequestID == 0 {
		t.Fatalf("request ids %d and %d", rejected.RequestID, expired.RequestID)
	}
	if err := c.ProcessApproval(ctx, rejected.RequestID, false, "not this one"); err != nil {
		t.Fatal(err)
	}
	if err := sim.Expire(expired.RequestID); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[int]ejbca.ApprovalState{rejected.RequestID: ejbca.ApprovalRejected, expired.RequestID: ejbca.ApprovalExpired} {
		state, err := c.ApprovalStatus(ctx, id)
		if err != nil || state != want || !state.Refused() || state.Approved() {
			t.Errorf("ApprovalStatus(%d) = %q, %v; want %s", id, state, err, want)
		}
	}
	// Rejected, the end entity never exists: the probe keeps saying so.
	csr, _ := simpleCSR(t, "rejected.example.com")
	if _, err := c.EnrollForEndEntity(ctx, enrolFor(csr, "rejected")); !ejbca.IsEndEntityNotFound(err) {
		t.Errorf("EnrollForEndEntity after rejection = %v, want end entity not found", err)
	}
	// Deciding a decided request is a conflict.
	err = c.ProcessApproval(ctx, rejected.RequestID, true, "changed my mind")
	if !ejbca.IsConflict(err) {
		t.Errorf("ProcessApproval on a rejected request = %v, want conflict", err)
	}
	if got := sim.Counters(); got.Enrollments != 0 || got.Calls["approval-process"][409] != 1 {
		t.Errorf("counters %+v", got)
	}
	noFinalize(t, sim)
}

// An unknown id is not found; a missing approval API is unsupported. Neither
// falls back to finalize.
func TestApprovalStatusUnknownOrUnsupported(t *testing.T) {
	t.Parallel()
	for _, preset := range ejbcasim.PresetNames() {
		t.Run(preset, func(t *testing.T) {
			t.Parallel()
			sim := startSim(t, ejbcasim.Config{Preset: preset})
			ctx := ctxFor(t)
			c := clientFor(t, sim, modeMTLS)

			state, err := c.ApprovalStatus(ctx, 4242)
			if state != "" || err == nil {
				t.Fatalf("ApprovalStatus(4242) = %q, %v", state, err)
			}
			processErr := c.ProcessApproval(ctx, 4242, true, "")
			if sim.Behaviour().ApprovalAPI {
				if !ejbca.IsNotFound(err) || ejbca.IsUnsupported(err) || !strings.Contains(ejbca.Message(err), "4242") {
					t.Errorf("ApprovalStatus(unknown) = %v, want not found naming the id", err)
				}
				if !ejbca.IsNotFound(processErr) || ejbca.IsUnsupported(processErr) {
					t.Errorf("ProcessApproval(unknown) = %v, want not found", processErr)
				}
			} else {
				if !ejbca.IsUnsupported(err) || ejbca.IsNotFound(err) || !ejbca.IsPermanent(err) {
					t.Errorf("ApprovalStatus without the API = %v, want unsupported", err)
				}
				if !ejbca.IsUnsupported(processErr) {
					t.Errorf("ProcessApproval without the API = %v, want unsupported", processErr)
				}
			}
			if e := asError(t, err); e.Endpoint != "GET /v1/approval/{request_id}/status" || e.StatusCode != 404 {
				t.Errorf("error = %+v", e)
			}
			got := sim.Counters()
			if got.Calls["approval-status"][404] != 1 || got.Get("approval-status") != 1 {
				t.Errorf("approval-status calls = %v", got.Calls["approval-status"])
			}
			noFinalize(t, sim)
		})
	}
}

func TestAddEndEntityRejections(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	c := clientFor(t, sim, modeToken)

	cases := map[string]struct {
		mutate func(*ejbca.EndEntity)
		want   string
	}{
		"unknown CA":      {func(e *ejbca.EndEntity) { e.CAName = "X" }, "Invalid request, unknown CA."},
		"unknown profile": {func(e *ejbca.EndEntity) { e.CertificateProfileName = "X" }, "Invalid request, unknown certificate profile."},
		"unknown EEP":     {func(e *ejbca.EndEntity) { e.EndEntityProfileName = "X" }, "Invalid request, unknown end entity profile."},
	}
	for name, tc := range cases {
		ee := approvalEndEntity("rejected-ee")
		tc.mutate(&ee)
		add, err := c.AddEndEntity(ctx, ee)
		if add != (ejbca.Addition{}) || !ejbca.IsPermanent(err) || ejbca.Message(err) != tc.want {
			t.Errorf("%s: AddEndEntity = %+v, %v; want %q", name, add, err, tc.want)
		}
	}
	ee := approvalEndEntity("twice")
	ee.CertificateProfileName = certProfile
	if add, err := c.AddEndEntity(ctx, ee); add != (ejbca.Addition{}) || err != nil {
		t.Fatalf("AddEndEntity = %+v, %v", add, err)
	}
	if _, err := c.AddEndEntity(ctx, ee); !ejbca.IsConflict(err) || !strings.Contains(ejbca.Message(err), "already exists") {
		t.Errorf("AddEndEntity of an existing end entity = %v, want conflict", err)
	}
}

// Both shapes of /v1/endentity's 202, and where the id comes from in each.
func TestAddEndEntity202Shapes(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	c := clientFor(t, sim, modeMTLS)

	cases := []struct {
		name, body string
		wantID     int
	}{
		{"info body, id in the link", `{"status_code":202,"info_message":"Add Entity request has been added for approval by authorized administrators.","link":"https://ejbca.example.com:8443/ejbca/ejbca-rest-api/770001/finalize"}`, 770001},
		{"info body, id in the message", `{"status_code":202,"info_message":"Request with Id '770001' is waiting for approval."}`, 770001},
		{"info body, request_id wins", `{"status_code":202,"info_message":"Request with Id '1' is waiting","link":"https://h/ejbca/ejbca-rest-api/2/finalize","request_id":770001}`, 770001},
		{"info body, no id", `{"status_code":202,"info_message":"Add Entity request has been added for approval by authorized administrators."}`, 0},
		{"error shape, no id", `{"error_code":202,"error_message":"Add End Entity Action have been added for approval by authorized adminstrators."}`, 0},
		{"empty body", ``, 0},
	}
	for _, tc := range cases {
		sim.InjectFault("endentity", ejbcasim.Fault{Count: 1, Status: 202, Body: tc.body, ContentType: "application/json"})
		add, err := c.AddEndEntity(ctx, approvalEndEntity("shapes"))
		if err != nil || !add.WaitingForApproval || add.RequestID != tc.wantID {
			t.Errorf("%s: AddEndEntity = %+v, %v; want waiting with id %d", tc.name, add, err, tc.wantID)
		}
	}

	// The real thing, on the preset that answers in the error shape.
	old := startSim(t, ejbcasim.Config{Preset: ejbcasim.PresetEnterprise8})
	oc := clientFor(t, old, modeMTLS)
	add, err := oc.AddEndEntity(ctx, approvalEndEntity("shapes"))
	if err != nil || !add.WaitingForApproval || add.RequestID != 0 {
		t.Errorf("AddEndEntity on %s = %+v, %v; want waiting without an id", ejbcasim.PresetEnterprise8, add, err)
	}
	if got := old.Counters().Calls["endentity"][202]; got != 1 {
		t.Errorf("endentity 202s = %d", got)
	}
}

// A retried add whose first 202 was lost: EJBCA refuses the duplicate
// approval request, and the client resumes waiting instead of failing. No
// second request is left behind, and approval then lets the end entity enrol.
func TestAddEndEntityResumesAfterLostAnswer(t *testing.T) {
	t.Parallel()
	for _, preset := range ejbcasim.PresetNames() {
		t.Run(preset, func(t *testing.T) {
			t.Parallel()
			sim := startSim(t, ejbcasim.Config{Preset: preset})
			if !sim.Behaviour().EndEntityAPI || !sim.Behaviour().Approvals {
				t.Skipf("%s has no approval flow", preset)
			}
			ctx := ctxFor(t)
			c := clientFor(t, sim, modeMTLS)

			// The first add is handled, but its answer never arrives.
			sim.InjectFault("endentity", ejbcasim.Fault{Count: 1, ResetAfterIssuing: true})
			_, err := c.AddEndEntity(ctx, approvalEndEntity("lost"))
			if !ejbca.IsRetryable(err) {
				t.Fatalf("AddEndEntity with the answer lost = %v, want retryable", err)
			}
			id := onlyPending(t, sim)

			add, err := c.AddEndEntity(ctx, approvalEndEntity("lost"))
			if err != nil || !add.WaitingForApproval {
				t.Fatalf("retried AddEndEntity = %+v, %v; want waiting for approval", add, err)
			}
			if add.RequestID != 0 && add.RequestID != id {
				t.Errorf("retried AddEndEntity names request %d, the pending one is %d", add.RequestID, id)
			}
			if got := onlyPending(t, sim); got != id {
				t.Errorf("pending request %d, want %d", got, id)
			}
			if got := sim.Counters().Calls["endentity"]; got[0] != 1 || got[400] != 1 {
				t.Errorf("endentity calls = %v, want one lost answer and one 400", got)
			}

			csr, key := simpleCSR(t, "lost.example.com")
			if _, err := c.EnrollForEndEntity(ctx, enrolFor(csr, "lost")); !ejbca.IsEndEntityNotFound(err) {
				t.Fatalf("EnrollForEndEntity while pending = %v, want end entity not found", err)
			}
			if err := sim.Approve(id); err != nil {
				t.Fatal(err)
			}
			cert, err := c.EnrollForEndEntity(ctx, enrolFor(csr, "lost"))
			if err != nil {
				t.Fatalf("EnrollForEndEntity after approval: %v", err)
			}
			checkIssued(t, sim, cert, key)
			if got := sim.Counters().Enrollments; got != 1 {
				t.Errorf("Enrollments = %d, want 1", got)
			}
			noFinalize(t, sim)
		})
	}
}

// EJBCA's own wording of the duplicate refusal. The number in it is the
// approval id (a hash of the request), not the request id: it is not taken.
func TestAddEndEntityAlreadyExistsMessages(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	c := clientFor(t, sim, modeMTLS)

	for _, msg := range []string{
		"Approval request with id -1419387520 already exists.",
		"Approval Request 1419387520 already exists in database",
		"org.ejbca.core.model.approval.ApprovalException: Approval request with id 77 already exists.",
	} {
		sim.InjectFault("endentity", ejbcasim.Fault{Count: 1, Status: 400,
			Body: fmt.Sprintf(`{"error_code":400,"error_message":%q}`, msg)})
		add, err := c.AddEndEntity(ctx, approvalEndEntity("dup"))
		if err != nil || add != (ejbca.Addition{WaitingForApproval: true}) {
			t.Errorf("AddEndEntity answered %q = %+v, %v; want waiting without an id", msg, add, err)
		}
	}
	// Other 400s stay refusals.
	sim.InjectFault("endentity", ejbcasim.Fault{Count: 1, Status: 400,
		Body: `{"error_code":400,"error_message":"Invalid request, unknown CA."}`})
	if _, err := c.AddEndEntity(ctx, approvalEndEntity("dup")); !ejbca.IsPermanent(err) {
		t.Errorf("AddEndEntity refused = %v, want permanent", err)
	}
}

// certificaterequest always carries certificate_request_type: the 9.x
// behaviour (500 without it) is on in enterprise-9 and, switched on alone,
// on the older preset.
func TestEnrollForEndEntitySendsRequestType(t *testing.T) {
	t.Parallel()
	older, err := ejbcasim.PresetBehaviour(ejbcasim.PresetEnterprise8)
	if err != nil {
		t.Fatal(err)
	}
	older.CertificateRequestTypeRequired = true
	for name, cfg := range map[string]ejbcasim.Config{
		ejbcasim.PresetEnterprise9:                      {Preset: ejbcasim.PresetEnterprise9},
		ejbcasim.PresetEnterprise8 + " + type required": {Preset: ejbcasim.PresetEnterprise8, Behaviour: &older},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sim := startSim(t, cfg)
			if !sim.Behaviour().CertificateRequestTypeRequired {
				t.Fatalf("behaviour %+v does not require the type", sim.Behaviour())
			}
			ctx := ctxFor(t)
			c := clientFor(t, sim, modeMTLS)
			ee := approvalEndEntity("typed")
			ee.CertificateProfileName = certProfile
			if add, err := c.AddEndEntity(ctx, ee); err != nil || add.WaitingForApproval {
				t.Fatalf("AddEndEntity = %+v, %v", add, err)
			}
			csr, key := simpleCSR(t, "typed.example.com")
			cert, err := c.EnrollForEndEntity(ctx, enrolFor(csr, "typed"))
			if err != nil {
				t.Fatalf("EnrollForEndEntity: %v", err)
			}
			checkIssued(t, sim, cert, key)
			if got := sim.Counters().Calls["certificaterequest"]; got[201] != 1 || len(got) != 1 {
				t.Errorf("certificaterequest calls = %v", got)
			}
		})
	}
}

// The states the approval API reports, and older names of them.
func TestApprovalStatusStates(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	c := clientFor(t, sim, modeMTLS)

	for body, want := range map[string]ejbca.ApprovalState{
		`{"request_id":1,"status":"PENDING"}`:              ejbca.ApprovalPending,
		`{"request_id":1,"status":"WAITING_FOR_APPROVAL"}`: ejbca.ApprovalPending,
		`{"request_id":1,"status":"approved"}`:             ejbca.ApprovalApproved,
		`{"request_id":1,"status":"EXECUTED"}`:             ejbca.ApprovalExecuted,
		`{"request_id":1,"status":"REJECTED"}`:             ejbca.ApprovalRejected,
		`{"request_id":1,"status":"EXPIRED_AND_NOTIFIED"}`: ejbca.ApprovalExpiredAndNotified,
		`{"request_id":1,"status":"UNKNOWN"}`:              ejbca.ApprovalUnknown,
		`{"approval_status":"EXPIRED"}`:                    ejbca.ApprovalExpired,
	} {
		sim.InjectFault("approval-status", ejbcasim.Fault{Count: 1, Status: 200, ContentType: "application/json", Body: body})
		state, err := c.ApprovalStatus(ctx, 1)
		if err != nil || state != want {
			t.Errorf("%s: ApprovalStatus = %q, %v; want %s", body, state, err, want)
		}
	}
	if ejbca.ApprovalUnknown.Approved() || ejbca.ApprovalUnknown.Refused() || ejbca.ApprovalPending.Approved() || ejbca.ApprovalPending.Refused() {
		t.Error("UNKNOWN or PENDING counts as decided")
	}
	for _, s := range []ejbca.ApprovalState{ejbca.ApprovalRejected, ejbca.ApprovalExpired, ejbca.ApprovalExpiredAndNotified, ejbca.ApprovalExecutionFailed, ejbca.ApprovalExecutionDenied} {
		if !s.Refused() || s.Approved() {
			t.Errorf("%s is not refused", s)
		}
	}
	noFinalize(t, sim)
}

// The answers that mean "this end entity does not exist (yet)", and those
// that do not.
func TestEndEntityNotFoundForms(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	c := clientFor(t, sim, modeMTLS)
	csr, _ := simpleCSR(t, "probe.example.com")

	cases := []struct {
		status   int
		message  string
		notFound bool
		kind     ejbca.Kind
	}{
		{400, "Wrong username or password", true, ejbca.KindNotFound},
		{404, "Got request for nonexisting user: probe", true, ejbca.KindNotFound},
		{400, "Got request for user with invalid password: probe.", false, ejbca.KindPermanent},
		{400, "Got request with status GENERATED (40), NEW, FAILED or INPROCESS required: probe.", false, ejbca.KindPermanent},
		{404, "RESTEASY003210: Could not find resource for full path: https://127.0.0.1/ejbca/ejbca-rest-api/v1/certificate/certificaterequest", false, ejbca.KindUnsupported},
		{404, "CA with name IssuingCA doesn't exist.", false, ejbca.KindNotFound},
	}
	for _, tc := range cases {
		sim.InjectFault("certificaterequest", ejbcasim.Fault{Count: 1, Status: tc.status,
			Body: fmt.Sprintf(`{"error_code":%d,"error_message":%q}`, tc.status, tc.message)})
		_, err := c.EnrollForEndEntity(ctx, enrolFor(csr, "probe"))
		if ejbca.IsEndEntityNotFound(err) != tc.notFound || ejbca.KindOf(err) != tc.kind {
			t.Errorf("%d %q: %v (kind %v), want end entity not found %v, kind %v", tc.status, tc.message, err, ejbca.KindOf(err), tc.notFound, tc.kind)
		}
	}
	// The simulator's own answer for a username it does not know.
	_, err := c.EnrollForEndEntity(ctx, enrolFor(csr, "never-added"))
	if !ejbca.IsEndEntityNotFound(err) {
		t.Errorf("EnrollForEndEntity for an unknown username = %v, want end entity not found", err)
	}
	// And a local refusal without the CA name, before anything is sent.
	before := sim.Counters().Get("certificaterequest")
	req := enrolFor(csr, "probe")
	req.CAName = ""
	if _, err := c.EnrollForEndEntity(ctx, req); !ejbca.IsPermanent(err) || ejbca.IsEndEntityNotFound(err) {
		t.Errorf("EnrollForEndEntity without a CA name = %v, want permanent", err)
	}
	if got := sim.Counters().Get("certificaterequest"); got != before {
		t.Errorf("a request without a CA name reached EJBCA")
	}
}
