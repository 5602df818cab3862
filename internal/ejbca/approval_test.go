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
	if ejbca.IsPermanent(err) || ejbca.IsRetryable(err) || ejbca.IsPending(err) {
		t.Errorf("approval-required error %v has another kind too", err)
	}
	want := fmt.Sprintf("Single transaction enrollment request rejected since approvals are enabled for this CA (%d) or Certificate Profile (%d).",
		sim.CAID(issuingCA), sim.CertificateProfileID(approvalProf))
	if got := ejbca.Message(err); got != want {
		t.Errorf("Message = %q, want %q", got, want)
	}
	if _, ok := ejbca.PendingRequestID(err); ok {
		t.Error("a refusal carries a pending request id")
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

func TestApprovalFlowApproved(t *testing.T) {
	t.Parallel()
	for _, mode := range allModes {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			sim := startSim(t, ejbcasim.Config{})
			ctx := ctxFor(t)
			c := clientFor(t, sim, mode)

			id, err := c.AddEndEntity(ctx, approvalEndEntity("flow"))
			if err != nil {
				t.Fatalf("AddEndEntity: %v", err)
			}
			if !slices.Contains(sim.PendingApprovals(), id) {
				t.Fatalf("request id %d is not among the pending approvals %v", id, sim.PendingApprovals())
			}
			if _, exists := sim.EndEntity("flow"); exists {
				t.Error("the end entity exists before approval")
			}
			state, err := c.ApprovalStatus(ctx, id)
			if err != nil || state != ejbca.ApprovalPending || state.Approved() || state.Refused() {
				t.Fatalf("ApprovalStatus = %q, %v; want PENDING", state, err)
			}
			// Enrolling before approval fails: the end entity does not exist yet.
			csr, key := simpleCSR(t, "whatever.example.com")
			_, err = c.EnrollForEndEntity(ctx, ejbca.EnrollForEndEntityRequest{CSR: csr, Username: "flow", Password: enrolPassword, CAName: issuingCA})
			if !ejbca.IsNotFound(err) {
				t.Errorf("EnrollForEndEntity before approval = %v, want not found", err)
			}
			// Adding it again while pending is refused.
			_, err = c.AddEndEntity(ctx, approvalEndEntity("flow"))
			if !ejbca.IsPermanent(err) || !strings.Contains(ejbca.Message(err), fmt.Sprint(id)) {
				t.Errorf("second AddEndEntity = %v, want a permanent error naming request %d", err, id)
			}

			if err := sim.Approve(id); err != nil {
				t.Fatal(err)
			}
			state, err = c.ApprovalStatus(ctx, id)
			if err != nil || !state.Approved() || state.Refused() {
				t.Fatalf("ApprovalStatus after approval = %q, %v", state, err)
			}
			cert, err := c.EnrollForEndEntity(ctx, ejbca.EnrollForEndEntityRequest{CSR: csr, Username: "flow", Password: enrolPassword, CAName: issuingCA})
			if err != nil {
				t.Fatalf("EnrollForEndEntity after approval: %v", err)
			}
			checkIssued(t, sim, cert, key)
			checkSubjectAndSANs(t, cert.Leaf, "flow.example.com", "Acme", []string{"flow.example.com"}, nil, nil)

			// The enrolment code is spent.
			_, err = c.EnrollForEndEntity(ctx, ejbca.EnrollForEndEntityRequest{CSR: csr, Username: "flow", Password: enrolPassword, CAName: issuingCA})
			if !ejbca.IsUnauthorized(err) || !strings.Contains(ejbca.Message(err), "GENERATED") {
				t.Errorf("second EnrollForEndEntity = %v, want EJBCA's status refusal", err)
			}

			// Certificates of an approval profile are revoked after approval too.
			_, err = c.Revoke(ctx, issuingCADN, cert.SerialNumber, ejbca.ReasonSuperseded, time.Time{})
			if !ejbca.IsPending(err) {
				t.Fatalf("Revoke of an approval-profile certificate = %v, want pending", err)
			}
			revID, ok := ejbca.PendingRequestID(err)
			if !ok || !slices.Contains(sim.PendingApprovals(), revID) {
				t.Errorf("PendingRequestID = %d, %v; pending %v", revID, ok, sim.PendingApprovals())
			}
			if e := asError(t, err); e.StatusCode != 202 || !strings.Contains(e.Message, "waiting for approval") {
				t.Errorf("error = %+v", e)
			}
			if err := sim.Approve(revID); err != nil {
				t.Fatal(err)
			}
			rs, err := c.RevocationStatus(ctx, issuingCADN, cert.SerialNumber)
			if err != nil || !rs.Revoked || rs.RevocationReason != ejbca.ReasonSuperseded {
				t.Errorf("RevocationStatus after the approved revocation = %+v, %v", rs, err)
			}

			got := sim.Counters()
			if got.Enrollments != 1 || got.Calls["certificaterequest"][201] != 1 || got.Calls["endentity"][202] != 1 {
				t.Errorf("counters: %+v", got)
			}
		})
	}
}

func TestApprovalFlowRefused(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
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
	if rejected == expired {
		t.Fatalf("two requests share the id %d", rejected)
	}
	if err := sim.Reject(rejected); err != nil {
		t.Fatal(err)
	}
	if err := sim.Expire(expired); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[int]ejbca.ApprovalState{rejected: ejbca.ApprovalRejected, expired: ejbca.ApprovalExpired} {
		state, err := c.ApprovalStatus(ctx, id)
		if err != nil || state != want || !state.Refused() || state.Approved() {
			t.Errorf("ApprovalStatus(%d) = %q, %v; want %s", id, state, err, want)
		}
		state, err = c.Finalize(ctx, id)
		if err != nil || state != want || !state.Refused() {
			t.Errorf("Finalize(%d) = %q, %v; want %s", id, state, err, want)
		}
	}
	csr, _ := simpleCSR(t, "rejected.example.com")
	_, err = c.EnrollForEndEntity(ctx, ejbca.EnrollForEndEntityRequest{CSR: csr, Username: "rejected", Password: enrolPassword})
	if !ejbca.IsNotFound(err) || !strings.Contains(ejbca.Message(err), "nonexisting user") {
		t.Errorf("EnrollForEndEntity after rejection = %v, want not found", err)
	}
	// Deciding a decided request is refused.
	err = c.ProcessApproval(ctx, rejected, true)
	if !ejbca.IsPermanent(err) || !strings.Contains(ejbca.Message(err), "REJECTED") {
		t.Errorf("ProcessApproval on a rejected request = %v", err)
	}
	if got := sim.Counters().Enrollments; got != 0 {
		t.Errorf("Enrollments = %d", got)
	}
}

func TestApprovalUnknownRequest(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	c := clientFor(t, sim, modeMTLS)

	// approval-status answers 404, and so does the finalize fallback.
	state, err := c.ApprovalStatus(ctx, 4242)
	if !ejbca.IsNotFound(err) || state != "" {
		t.Fatalf("ApprovalStatus(unknown) = %q, %v; want not found", state, err)
	}
	if e := asError(t, err); e.Endpoint != "POST /v1/certificate/{request_id}/finalize" || !strings.Contains(e.Message, "4242") {
		t.Errorf("error = %+v", e)
	}
	if err := c.ProcessApproval(ctx, 4242, true); !ejbca.IsNotFound(err) {
		t.Errorf("ProcessApproval(unknown) = %v, want not found", err)
	}
	got := sim.Counters()
	if got.Calls["approval-status"][404] != 1 || got.Calls["finalize"][404] != 1 || got.Calls["approval-process"][404] != 1 {
		t.Errorf("calls = %v", got.Calls)
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
		"no password":     {func(e *ejbca.EndEntity) { e.Password = "" }, "Invalid request, password is empty."},
	}
	for name, tc := range cases {
		ee := approvalEndEntity("rejected-ee")
		tc.mutate(&ee)
		id, err := c.AddEndEntity(ctx, ee)
		if id != 0 || !ejbca.IsPermanent(err) || ejbca.Message(err) != tc.want {
			t.Errorf("%s: AddEndEntity = %d, %v; want %q", name, id, err, tc.want)
		}
	}
	ee := approvalEndEntity("twice")
	ee.CertificateProfileName = certProfile
	if id, err := c.AddEndEntity(ctx, ee); id != 0 || err != nil {
		t.Fatalf("AddEndEntity = %d, %v", id, err)
	}
	if _, err := c.AddEndEntity(ctx, ee); !ejbca.IsConflict(err) || !strings.Contains(ejbca.Message(err), "already exists") {
		t.Errorf("AddEndEntity of an existing end entity = %v, want conflict", err)
	}
}

// Where the approval API is missing (404), ApprovalStatus asks finalize.
func TestApprovalStatusFallsBackToFinalize(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	c := clientFor(t, sim, modeMTLS)
	sim.InjectFault("approval-status", ejbcasim.Fault{Status: 404,
		Body: `{"error_code":404,"error_message":"RESTEASY003210: Could not find resource for full path"}`})

	approved, err := c.AddEndEntity(ctx, approvalEndEntity("fb-approved"))
	if err != nil {
		t.Fatal(err)
	}
	rejected, err := c.AddEndEntity(ctx, approvalEndEntity("fb-rejected"))
	if err != nil {
		t.Fatal(err)
	}
	expired, err := c.AddEndEntity(ctx, approvalEndEntity("fb-expired"))
	if err != nil {
		t.Fatal(err)
	}

	if state, err := c.ApprovalStatus(ctx, approved); err != nil || state != ejbca.ApprovalPending {
		t.Fatalf("ApprovalStatus via finalize while pending = %q, %v", state, err)
	}
	if err := sim.Approve(approved); err != nil {
		t.Fatal(err)
	}
	if err := sim.Reject(rejected); err != nil {
		t.Fatal(err)
	}
	if err := sim.Expire(expired); err != nil {
		t.Fatal(err)
	}
	for id, check := range map[int]func(ejbca.ApprovalState) bool{
		approved: ejbca.ApprovalState.Approved,
		rejected: func(s ejbca.ApprovalState) bool { return s == ejbca.ApprovalRejected && s.Refused() },
		expired:  func(s ejbca.ApprovalState) bool { return s == ejbca.ApprovalExpired && s.Refused() },
	} {
		state, err := c.ApprovalStatus(ctx, id)
		if err != nil || !check(state) {
			t.Errorf("ApprovalStatus(%d) via finalize = %q, %v", id, state, err)
		}
	}
	csr, key := simpleCSR(t, "fb.example.com")
	cert, err := c.EnrollForEndEntity(ctx, ejbca.EnrollForEndEntityRequest{CSR: csr, Username: "fb-approved", Password: enrolPassword, CAName: issuingCA})
	if err != nil {
		t.Fatalf("EnrollForEndEntity: %v", err)
	}
	checkIssued(t, sim, cert, key)

	got := sim.Counters()
	if got.Calls["approval-status"][404] != 4 || got.Get("approval-status") != 4 {
		t.Errorf("approval-status calls = %v, want 4 answered 404", got.Calls["approval-status"])
	}
	if got.Calls["finalize"][202] != 1 || got.Calls["finalize"][200] != 1 || got.Calls["finalize"][400] != 2 {
		t.Errorf("finalize calls = %v, want 202, 200 and two 400s", got.Calls["finalize"])
	}
}

// A 202 without request_id: the id comes from the link or the message.
func TestAddEndEntityRequestIDFromLinkOrMessage(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	c := clientFor(t, sim, modeMTLS)

	for name, body := range map[string]string{
		"link":    `{"status_code":202,"info_message":"Waiting for approval","link":"https://ejbca.example.com/ejbca/ejbca-rest-api/v1/770001/finalize"}`,
		"message": `{"status_code":202,"info_message":"Request with Id '770001' is waiting for approval."}`,
		"id wins": `{"status_code":202,"info_message":"Request with Id '1' is waiting","link":"https://h/v1/2/finalize","request_id":770001}`,
	} {
		sim.InjectFault("endentity", ejbcasim.Fault{Count: 1, Status: 202, Body: body})
		id, err := c.AddEndEntity(ctx, approvalEndEntity("link"))
		if err != nil || id != 770001 {
			t.Errorf("%s: AddEndEntity = %d, %v; want 770001", name, id, err)
		}
	}
	sim.InjectFault("endentity", ejbcasim.Fault{Count: 1, Status: 202, Body: `{"status_code":202,"info_message":"Waiting for approval"}`})
	if _, err := c.AddEndEntity(ctx, approvalEndEntity("link")); ejbca.KindOf(err) != ejbca.KindInvalidResponse {
		t.Errorf("AddEndEntity with no id anywhere = %v, want an invalid response", err)
	}
	// A 202 elsewhere is a pending error carrying the id.
	sim.InjectFault("revoke", ejbcasim.Fault{Count: 1, Status: 202, Body: `{"status_code":202,"info_message":"Revocation request with Id '31337' is waiting for approval."}`})
	_, err := c.Revoke(ctx, issuingCADN, "01", ejbca.ReasonUnspecified, time.Time{})
	if id, ok := ejbca.PendingRequestID(err); !ejbca.IsPending(err) || !ok || id != 31337 {
		t.Errorf("Revoke held for approval = %v (id %d)", err, id)
	}
}
