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

type waiting struct {
	StatusCode  int    `json:"status_code"`
	InfoMessage string `json:"info_message"`
	Link        string `json:"link"`
	RequestID   int    `json:"request_id"`
}

// addPending adds an end entity that needs approval and returns the id.
func (h *harness) addPending(username string) int {
	h.t.Helper()
	r := h.call(h.admin, "POST", "/v1/endentity", addEndEntityBody(username, "APPROVAL"))
	if r.status != 202 {
		h.t.Fatalf("endentity: %d %s", r.status, r.body)
	}
	var w waiting
	r.decode(h.t, &w)
	if w.StatusCode != 202 || w.RequestID <= 0 || !strings.Contains(w.InfoMessage, fmt.Sprint(w.RequestID)) {
		h.t.Fatalf("202 body %+v", w)
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
	}
}

func TestApprovalFlowApproved(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	id := h.addPending("pending")

	r := h.call(h.admin, "POST", "/v1/endentity", addEndEntityBody("pending", "APPROVAL"))
	if r.status != 400 {
		t.Fatalf("second addition while pending: %d %s", r.status, r.body)
	}
	var w waiting
	h.call(h.admin, "POST", "/v1/endentity", addEndEntityBody("pending2", "APPROVAL")).decode(t, &w)
	if strings.Contains(w.Link, "/v1/certificate/") || !strings.HasSuffix(w.Link, fmt.Sprintf("/%d/finalize", w.RequestID)) {
		t.Errorf("link %q should reproduce EJBCA's malformed link", w.Link)
	}
	if _, ok := h.sim.EndEntity("pending"); ok {
		t.Fatal("end entity exists before approval")
	}
	if st := h.approvalStatus(id); st != "PENDING" {
		t.Fatalf("status %s", st)
	}
	if !slices.Contains(h.sim.PendingApprovals(), id) {
		t.Fatalf("PendingApprovals %v lacks %d", h.sim.PendingApprovals(), id)
	}
	r = h.call(h.admin, "POST", fmt.Sprintf("/v1/certificate/%d/finalize", id), nil)
	h.call(h.admin, "POST", fmt.Sprintf("/v1/certificate/%d/finalize", id), nil).decode(t, &w)
	if r.status != 202 || w.InfoMessage != fmt.Sprintf("Request with Id '%d' is still waiting for approval", id) {
		t.Fatalf("finalize while pending: %d %s", r.status, r.body)
	}
	csr, _ := newCSR(t, csrSpec{cn: "ignored-subject", dns: []string{"ignored.example.com"}})
	h.call(h.admin, "POST", "/v1/certificate/certificaterequest", certificateRequestBody(csr, "pending", "enrol-pending", false)).
		expectError(t, 404, "Got request for nonexisting user: pending")

	// An anonymous caller cannot decide; an administrator approves.
	h.call(h.anon, "POST", fmt.Sprintf("/v1/approval/%d/process", id), map[string]string{"action": "APPROVE"}).
		expectError(t, 403, "Error no client certificate or OAuth token received for authentication.")
	r = h.call(h.admin, "POST", fmt.Sprintf("/v1/approval/%d/process", id), map[string]string{"action": "APPROVE"})
	if r.status != 200 || h.approvalStatus(id) != "EXECUTED" {
		t.Fatalf("approve: %d %s", r.status, r.body)
	}
	if ee, ok := h.sim.EndEntity("pending"); !ok || ee.Status != "NEW" {
		t.Fatalf("end entity after approval %+v", ee)
	}
	if r := h.call(h.admin, "POST", fmt.Sprintf("/v1/certificate/%d/finalize", id), nil); r.status != 200 {
		t.Fatalf("finalize after approval: %d %s", r.status, r.body)
	}

	h.call(h.admin, "POST", "/v1/certificate/certificaterequest", certificateRequestBody(csr, "pending", "wrong", false)).
		expectError(t, 403, "Wrong username or password")
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
	if ee, _ := h.sim.EndEntity("pending"); ee.Status != "GENERATED" {
		t.Errorf("status after enrolment %s", ee.Status)
	}
	// The enrolment code is spent.
	h.call(h.admin, "POST", "/v1/certificate/certificaterequest", certificateRequestBody(csr, "pending", "enrol-pending", false)).
		expectError(t, 403, "Got request with status GENERATED (40), NEW, FAILED or INPROCESS required: pending.")
	if c := h.sim.Counters(); c.Enrollments != 1 || c.Get("certificaterequest") != 4 {
		t.Fatalf("counters %+v", c)
	}
}

func TestApprovalFlowRejectedAndExpired(t *testing.T) {
	clock := newFakeClock()
	h := start(t, ejbcasim.Config{Now: clock.Now})
	rejected, viaAPI, expired, timedOut := h.addPending("r"), h.addPending("r2"), h.addPending("e"), h.addPending("t")

	if err := h.sim.Reject(rejected); err != nil {
		t.Fatal(err)
	}
	if r := h.call(h.admin, "POST", fmt.Sprintf("/v1/approval/%d/process", viaAPI), map[string]string{"action": "REJECT"}); r.status != 200 {
		t.Fatalf("reject via API: %d %s", r.status, r.body)
	}
	if err := h.sim.Expire(expired); err != nil {
		t.Fatal(err)
	}
	if err := h.sim.Approve(rejected); err == nil {
		t.Fatal("approving a rejected request succeeded")
	}
	for _, id := range []int{rejected, viaAPI} {
		if st := h.approvalStatus(id); st != "REJECTED" {
			t.Errorf("%d: %s", id, st)
		}
		h.call(h.admin, "POST", fmt.Sprintf("/v1/certificate/%d/finalize", id), nil).
			expectError(t, 400, fmt.Sprintf("Request with Id '%d' has been rejected", id))
	}
	h.call(h.admin, "POST", fmt.Sprintf("/v1/certificate/%d/finalize", expired), nil).
		expectError(t, 400, fmt.Sprintf("Request with Id '%d' has expired", expired))
	if got := h.sim.PendingApprovals(); !slices.Equal(got, []int{timedOut}) {
		t.Fatalf("PendingApprovals %v, want [%d]", got, timedOut)
	}

	// Requests expire on the simulator's clock.
	clock.Advance(9 * time.Hour)
	if st := h.approvalStatus(timedOut); st != "EXPIRED" {
		t.Fatalf("after 9h: %s", st)
	}
	h.call(h.admin, "GET", "/v1/approval/12345/status", nil).expectError(t, 404, "Could not find request with Id '12345'.")
	h.call(h.admin, "POST", fmt.Sprintf("/v1/approval/%d/process", timedOut), map[string]string{"action": "MAYBE"}).
		expectError(t, 400, "Invalid action 'MAYBE', expected APPROVE or REJECT.")
}

func TestEndEntityWithoutApproval(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	r := h.call(h.admin, "POST", "/v1/endentity", addEndEntityBody("direct", "ENDUSER"))
	if r.status != 200 || len(r.body) != 0 {
		t.Fatalf("endentity: %d %q", r.status, r.body)
	}
	ee, ok := h.sim.EndEntity("direct")
	if !ok || ee.Status != "NEW" || ee.SubjectDN != "CN=direct.example.com,O=Example" {
		t.Fatalf("end entity %+v", ee)
	}
	h.call(h.admin, "POST", "/v1/endentity", addEndEntityBody("direct", "ENDUSER")).
		expectError(t, 409, "End entity with username 'direct' already exists.")
	body := addEndEntityBody("x", "ENDUSER")
	body["ca_name"] = "NoSuchCA"
	h.call(h.admin, "POST", "/v1/endentity", body).expectError(t, 400, "Invalid request, unknown CA.")

	csr, _ := newCSR(t, csrSpec{cn: "direct"})
	r = h.call(h.admin, "POST", "/v1/certificate/certificaterequest", certificateRequestBody(csr, "direct", "enrol-direct", true))
	var e enrolled
	r.decode(t, &e)
	if r.status != 201 || len(e.Chain) != 2 {
		t.Fatalf("certificaterequest with chain: %d %s", r.status, r.body)
	}
}
