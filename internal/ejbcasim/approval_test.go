package ejbcasim_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
)

func addEndEntityBody(username, profile string) map[string]any {
	return map[string]any{
		"username":                 username,
		"password":                 "enrol-" + username,
		"subject_dn":               "O=Example, CN=" + username + ".example.com",
		"subject_alt_name":         "dNSName=" + username + ".example.com, iPAddress=10.0.0.7",
		"email":                    "",
		"ca_name":                  "IssuingCA",
		"certificate_profile_name": profile,
		"end_entity_profile_name":  "EMPTY",
		"token":                    "USERGENERATED",
	}
}

// waiting is the 202 info body (ExceptionInfoRestResponse).
type waiting struct {
	StatusCode  int    `json:"status_code"`
	InfoMessage string `json:"info_message"`
	Link        string `json:"link"`
	RequestID   int    `json:"request_id"`
}

const (
	msgAddWaiting    = "Add Entity request has been added for approval by authorized administrators."
	msgAddWaitingOld = "Add End Entity Action have been added for approval by authorized adminstrators."
)

// addPending adds an end entity that needs approval and returns the request
// id: from the 202 when the preset gives one, else from the simulator.
func (h *harness) addPending(username string) int {
	h.t.Helper()
	before := h.sim.PendingApprovals()
	r := h.call(h.admin, "POST", "/v1/endentity", addEndEntityBody(username, "APPROVAL"))
	if h.sim.Behaviour().PendingWithoutID {
		r.expectError(h.t, 202, msgAddWaitingOld)
		for _, id := range h.sim.PendingApprovals() {
			if !slices.Contains(before, id) {
				return id
			}
		}
		h.t.Fatal("no new pending request")
	}
	if r.status != 202 {
		h.t.Fatalf("endentity: %d %s", r.status, r.body)
	}
	var w waiting
	r.decode(h.t, &w)
	if w.StatusCode != 202 || w.RequestID <= 0 || w.InfoMessage != msgAddWaiting {
		h.t.Fatalf("202 body %+v", w)
	}
	if strings.Contains(w.Link, "/v1/certificate/") || !strings.HasSuffix(w.Link, fmt.Sprintf("/ejbca-rest-api/%d/finalize", w.RequestID)) {
		h.t.Errorf("link %q should reproduce EJBCA's malformed link", w.Link)
	}
	return w.RequestID
}

func (h *harness) approvalStatus(id int) string {
	h.t.Helper()
	r := h.call(h.admin, "GET", fmt.Sprintf("/v1/approval/%d/status", id), nil)
	var st struct {
		RequestID int    `json:"request_id"`
		Status    string `json:"status"`
	}
	r.decode(h.t, &st)
	if r.status != 200 || st.RequestID != id {
		h.t.Fatalf("approval status: %d %s", r.status, r.body)
	}
	return st.Status
}

func certificateRequestBody(csr, username, password string, chain bool) map[string]any {
	return map[string]any{
		"certificate_request":        csr,
		"username":                   username,
		"password":                   password,
		"certificate_authority_name": "IssuingCA",
		"include_chain":              chain,
		"certificate_request_type":   "PKCS10",
	}
}

// approvalPresets are the presets with approvals.
var approvalPresets = []string{ejbcasim.PresetEnterprise8, ejbcasim.PresetEnterprise9}

// TestAddEndEntityPendingShapes: each preset with approvals answers a
// pending addition in its own 202 shape, refuses a repeated one naming the
// approvalID, and enrols only once the request is approved.
func TestAddEndEntityPendingShapes(t *testing.T) {
	for _, preset := range approvalPresets {
		t.Run(preset, func(t *testing.T) {
			h := start(t, ejbcasim.Config{Preset: preset})
			id := h.addPending("pending")
			r := h.call(h.admin, "POST", "/v1/endentity", addEndEntityBody("pending", "APPROVAL"))
			msg := r.errorMessage(t)
			if r.status != 400 || !strings.HasPrefix(msg, "Approval request with approvalID ") || !strings.HasSuffix(msg, " already exists.") {
				t.Fatalf("repeated addition: %d %s", r.status, r.body)
			}
			if strings.Contains(msg, fmt.Sprint(id)) {
				t.Errorf("the approvalID is a hash of the request, not the request id %d: %s", id, msg)
			}
			if _, ok := h.sim.EndEntity("pending"); ok {
				t.Fatal("end entity exists before approval")
			}
			csr, _ := newCSR(t, csrSpec{cn: "ignored-subject", dns: []string{"ignored.example.com"}})
			h.call(h.admin, "POST", "/v1/certificate/certificaterequest", certificateRequestBody(csr, "pending", "enrol-pending", false)).
				expectError(t, 400, "Wrong username or password")

			if err := h.sim.Approve(id); err != nil {
				t.Fatal(err)
			}
			if st, _ := h.sim.ApprovalStatus(id); st != "EXECUTED" {
				t.Fatalf("after approval %s", st)
			}
			if ee, ok := h.sim.EndEntity("pending"); !ok || ee.Status != "NEW" {
				t.Fatalf("end entity after approval %+v", ee)
			}
			r = h.call(h.admin, "POST", "/v1/certificate/certificaterequest", certificateRequestBody(csr, "pending", "enrol-pending", false))
			if r.status != 201 || !strings.Contains(string(r.body), `"certificate_chain":null`) {
				t.Fatalf("certificaterequest: %d %s", r.status, r.body)
			}
			var e enrolled
			r.decode(t, &e)
			cert := e.cert(t)
			if cert.Subject.String() != "CN=pending.example.com,O=Example" || !slices.Equal(cert.DNSNames, []string{"pending.example.com"}) || len(cert.IPAddresses) != 1 {
				t.Errorf("the end entity's DN and SAN must win: %s %v %v", cert.Subject, cert.DNSNames, cert.IPAddresses)
			}
			// After approval the same username is an existing end entity.
			h.call(h.admin, "POST", "/v1/endentity", addEndEntityBody("pending", "APPROVAL")).
				expectError(t, 409, "Entity pending already exists.")
			if c := h.sim.Counters(); c.Enrollments != 1 || c.Calls["endentity"][202] != 1 || c.Calls["endentity"][400] != 1 {
				t.Fatalf("counters %+v", c)
			}
		})
	}
}

func TestAddEndEntityValidation(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	r := h.call(h.admin, "POST", "/v1/endentity", addEndEntityBody("direct", "ENDUSER"))
	if r.status != 200 || len(r.body) != 0 {
		t.Fatalf("endentity: %d %q", r.status, r.body)
	}
	ee, ok := h.sim.EndEntity("direct")
	if !ok || ee.Status != "NEW" || ee.SubjectDN != "CN=direct.example.com,O=Example" || ee.TokenType != "USERGENERATED" {
		t.Fatalf("end entity %+v", ee)
	}
	h.call(h.admin, "POST", "/v1/endentity", addEndEntityBody("direct", "ENDUSER")).expectError(t, 409, "Entity direct already exists.")

	for _, tc := range []struct {
		field string
		value any
		want  string
	}{
		{"username", nil, "Invalid AddEndEntityRestRequest content, username can not be null or empty."},
		{"subject_dn", "", "Invalid AddEndEntityRestRequest content, subjectDn can not be null or empty."},
		{"subject_dn", "CN", "Invalid AddEndEntityRestRequest content, subjectDn is malformed"},
		{"ca_name", nil, "Invalid AddEndEntityRestRequest content, caName can not be null or empty."},
		{"certificate_profile_name", "", "Invalid AddEndEntityRestRequest content, certificateProfileName can not be null or empty."},
		{"end_entity_profile_name", nil, "Invalid AddEndEntityRestRequest content, endEntityProfileName can not be null or empty."},
		{"token", nil, "Invalid AddEndEntityRestRequest content, token can not be null or empty."},
		{"token", "SMARTCARD", "Invalid AddEndEntityRestRequest property, unrecognized token."},
		{"end_entity_profile_name", "NOPE", "Invalid request, unknown end entity profile."},
		{"certificate_profile_name", "NOPE", "Invalid request, unknown certificate profile."},
		{"ca_name", "NoSuchCA", "Invalid request, unknown CA."},
	} {
		body := addEndEntityBody("x", "ENDUSER")
		if tc.value == nil {
			delete(body, tc.field)
		} else {
			body[tc.field] = tc.value
		}
		h.call(h.admin, "POST", "/v1/endentity", body).expectError(t, 400, tc.want)
	}
	// Profiles are looked up before the CA.
	body := addEndEntityBody("x", "NOPE")
	body["ca_name"] = "NoSuchCA"
	h.call(h.admin, "POST", "/v1/endentity", body).expectError(t, 400, "Invalid request, unknown certificate profile.")

	csr, _ := newCSR(t, csrSpec{cn: "direct"})
	r = h.call(h.admin, "POST", "/v1/certificate/certificaterequest", certificateRequestBody(csr, "direct", "enrol-direct", true))
	var e enrolled
	r.decode(t, &e)
	if r.status != 201 || len(e.Chain) != 2 {
		t.Fatalf("certificaterequest with chain: %d %s", r.status, r.body)
	}
}

func TestApprovalAPI(t *testing.T) {
	clock := newFakeClock()
	h := start(t, ejbcasim.Config{Now: clock.Now})
	approved, rejected, expired, noAnswer := h.addPending("a"), h.addPending("r"), h.addPending("e"), h.addPending("n")
	if st := h.approvalStatus(approved); st != "PENDING" {
		t.Fatalf("status %s", st)
	}

	h.call(h.admin, "GET", "/v1/approval/0/status", nil).expectError(t, 400, "Invalid request ID: 0. Request ID must be a positive integer.")
	h.call(h.admin, "GET", "/v1/approval/-7/status", nil).expectError(t, 400, "Invalid request ID: -7. Request ID must be a positive integer.")
	h.call(h.admin, "GET", "/v1/approval/12345/status", nil).
		expectError(t, 404, "Approval request with ID '12345' not found, or user not authorized to view.")
	if r := h.call(h.admin, "GET", "/v1/approval/abc/status", nil); r.status != 404 || !strings.HasPrefix(r.errorMessage(t), "RESTEASY003870") {
		t.Fatalf("non-numeric id: %d %s", r.status, r.body)
	}
	h.call(h.anon, "POST", fmt.Sprintf("/v1/approval/%d/process", approved), map[string]any{"approve": true}).
		expectError(t, 403, "Error no client certificate or OAuth token received for authentication.")

	var rec struct {
		RequestID      string `json:"request_id"`
		RequestType    string `json:"request_type"`
		RequestDate    string `json:"request_date"`
		ExpirationDate string `json:"expiration_date"`
		EndEntityName  string `json:"end_entity_name"`
		Status         string `json:"status"`
		Steps          []struct {
			Step    int    `json:"step"`
			Action  string `json:"approval_action"`
			Date    string `json:"approval_date"`
			Admin   string `json:"approval_admin"`
			Comment string `json:"approval_comment"`
		} `json:"steps"`
	}
	r := h.call(h.admin, "POST", fmt.Sprintf("/v1/approval/%d/process", approved), map[string]any{"approve": true, "comment": "looks right"})
	r.decode(t, &rec)
	if r.status != 200 || rec.RequestID != fmt.Sprint(approved) || rec.RequestType != "Add End Entity" || rec.EndEntityName != "a" ||
		rec.Status != "APPROVED" || len(rec.Steps) != 1 || rec.Steps[0].Action != "APPROVED" || rec.Steps[0].Comment != "looks right" ||
		rec.Steps[0].Admin == "" || rec.RequestDate == "" || rec.ExpirationDate == "" {
		t.Fatalf("process approve: %d %s", r.status, r.body)
	}
	if !strings.Contains(string(r.body), `"request_id":"`) {
		t.Errorf("request_id must be a string: %s", r.body)
	}
	// The request was executed; the API reports the combined state.
	if st := h.approvalStatus(approved); st != "APPROVED" {
		t.Fatalf("status after approval %s", st)
	}
	if st, _ := h.sim.ApprovalStatus(approved); st != "EXECUTED" {
		t.Fatalf("detailed status %s", st)
	}
	h.call(h.admin, "POST", fmt.Sprintf("/v1/approval/%d/process", approved), map[string]any{"approve": false}).
		expectError(t, 409, "Approval request cannot be processed. Current status: APPROVED")

	r = h.call(h.admin, "POST", fmt.Sprintf("/v1/approval/%d/process", rejected), map[string]any{"approve": false})
	r.decode(t, &rec)
	if r.status != 200 || rec.Status != "REJECTED" || rec.Steps[0].Action != "REJECTED" || h.approvalStatus(rejected) != "REJECTED" {
		t.Fatalf("process reject: %d %s", r.status, r.body)
	}
	h.call(h.admin, "POST", fmt.Sprintf("/v1/approval/%d/process", noAnswer), map[string]any{"comment": "no decision"}).expectError(t, 500,
		`Unexpected error processing approval request: Cannot invoke "java.lang.Boolean.booleanValue()" because the return value of "org.ejbca.ui.web.rest.api.io.request.ProcessApprovalRestRequest.getApprove()" is null`)
	h.call(h.admin, "POST", "/v1/approval/12345/process", map[string]any{"approve": true}).
		expectError(t, 404, "Approval request with ID 12345 not found or unauthorized")
	if r := h.call(h.admin, "POST", fmt.Sprintf("/v1/approval/%d/process", noAnswer), `{"approve":`); r.status != 400 || strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("malformed body: %d %s", r.status, r.body)
	}

	if err := h.sim.Expire(expired); err != nil {
		t.Fatal(err)
	}
	if st := h.approvalStatus(expired); st != "EXPIRED" {
		t.Fatalf("expired: %s", st)
	}
	h.call(h.admin, "POST", fmt.Sprintf("/v1/approval/%d/process", expired), map[string]any{"approve": true}).
		expectError(t, 409, "Approval request cannot be processed. Current status: EXPIRED")
	// Requests expire on the simulator's clock.
	clock.Advance(9 * time.Hour)
	if st := h.approvalStatus(noAnswer); st != "EXPIRED" {
		t.Fatalf("after 9h: %s", st)
	}
	if got := h.sim.PendingApprovals(); len(got) != 0 {
		t.Fatalf("PendingApprovals %v", got)
	}
}

// An approved addition that can no longer be carried out (the username was
// taken meanwhile) is EXECUTION_FAILED, which the API reports as REJECTED.
func TestApprovalExecutionFailed(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	id := h.addPending("late")
	csr, _ := newCSR(t, csrSpec{cn: "late"})
	h.enrollCSR(csr, "late", "ENDUSER")
	if err := h.sim.Approve(id); err != nil {
		t.Fatal(err)
	}
	if st, _ := h.sim.ApprovalStatus(id); st != "EXECUTION_FAILED" {
		t.Fatalf("detailed status %s", st)
	}
	if st := h.approvalStatus(id); st != "REJECTED" {
		t.Fatalf("combined status %s", st)
	}
	h.call(h.admin, "POST", fmt.Sprintf("/v1/certificate/%d/finalize", id), map[string]any{"response_format": "DER", "password": "x"}).
		expectError(t, 400, fmt.Sprintf("Request with Id '%d' could not be executed", id))
}

func TestRejectAndExpireThroughGoAPI(t *testing.T) {
	for _, preset := range approvalPresets {
		t.Run(preset, func(t *testing.T) {
			h := start(t, ejbcasim.Config{Preset: preset})
			rejected, expired := h.addPending("r"), h.addPending("e")
			if err := h.sim.Reject(rejected); err != nil {
				t.Fatal(err)
			}
			if err := h.sim.Expire(expired); err != nil {
				t.Fatal(err)
			}
			if err := h.sim.Approve(rejected); err == nil {
				t.Fatal("approving a rejected request succeeded")
			}
			for id, want := range map[int]string{rejected: "REJECTED", expired: "EXPIRED"} {
				if st, ok := h.sim.ApprovalStatus(id); !ok || st != want {
					t.Errorf("%d: %s", id, st)
				}
			}
			finalize := map[string]any{"response_format": "DER", "password": "enrol-r"}
			h.call(h.admin, "POST", fmt.Sprintf("/v1/certificate/%d/finalize", rejected), finalize).
				expectError(t, 400, fmt.Sprintf("Request with Id '%d' has been rejected", rejected))
			h.call(h.admin, "POST", fmt.Sprintf("/v1/certificate/%d/finalize", expired), finalize).
				expectError(t, 400, fmt.Sprintf("Request with Id '%d' has expired", expired))
			if len(h.sim.PendingApprovals()) != 0 {
				t.Fatalf("pending %v", h.sim.PendingApprovals())
			}
		})
	}
}
