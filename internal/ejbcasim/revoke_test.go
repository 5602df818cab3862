package ejbcasim_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
)

type revocation struct {
	IssuerDN         string  `json:"issuer_dn"`
	SerialNumber     string  `json:"serial_number"`
	Revoked          bool    `json:"revoked"`
	RevocationReason string  `json:"revocation_reason"`
	RevocationDate   *string `json:"revocation_date"`
	Message          string  `json:"message"`
}

func revokePath(issuerDN, serial, query string) string {
	return fmt.Sprintf("/v1/certificate/%s/%s/revoke?%s", url.PathEscape(issuerDN), serial, query)
}

func statusPath(issuerDN, serial string) string {
	return fmt.Sprintf("/v1/certificate/%s/%s/revocationstatus", url.PathEscape(issuerDN), serial)
}

func TestRevokeAndRevocationStatus(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	e, _ := h.enroll("rev", "ENDUSER")
	const issuer = "CN=IssuingCA,O=EJBCA Sim"

	var st revocation
	r := h.call(h.admin, "GET", statusPath(issuer, e.SerialNumber), nil)
	r.decode(t, &st)
	if r.status != 200 || st.Revoked || st.RevocationReason != "NOT_REVOKED" || st.RevocationDate != nil {
		t.Fatalf("active: %d %s", r.status, r.body)
	}
	// RevokeStatusRestResponse leaves out null fields: revocationstatus
	// has no message, and no revocation_date while not revoked.
	if keys := bodyKeys(t, r); strings.Join(keys, ",") != "issuer_dn,revocation_reason,revoked,serial_number" {
		t.Errorf("revocationstatus keys of an active certificate: %v", keys)
	}

	// Reordered, respaced DN; lower-case serial with 0x and leading zeros.
	reordered := "O=EJBCA Sim,  CN=IssuingCA"
	serial := "0x000" + strings.ToLower(e.SerialNumber)
	r = h.call(h.admin, "PUT", revokePath(reordered, serial, "reason=KEY_COMPROMISE"), nil)
	r.decode(t, &st)
	if r.status != 200 || !st.Revoked || st.RevocationReason != "KEY_COMPROMISE" || st.Message != "Successfully revoked" ||
		st.IssuerDN != reordered || st.SerialNumber != serial || st.RevocationDate == nil {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	if _, err := time.Parse("2006-01-02T15:04:05Z", *st.RevocationDate); err != nil {
		t.Errorf("revocation_date %q: %v", *st.RevocationDate, err)
	}

	h.call(h.admin, "PUT", revokePath(issuer, e.SerialNumber, "reason=KEY_COMPROMISE"), nil).expectError(t, 409,
		fmt.Sprintf("Certificate with issuer: %s and serial number: %s has previously been revoked. Revocation reason could not be changed or was not allowed.", issuer, e.SerialNumber))

	r = h.call(h.admin, "GET", statusPath(issuer, e.SerialNumber), nil)
	r.decode(t, &st)
	if !st.Revoked || st.RevocationReason != "KEY_COMPROMISE" {
		t.Fatalf("status after revoke: %s", r.body)
	}
	if keys := bodyKeys(t, r); strings.Join(keys, ",") != "issuer_dn,revocation_date,revocation_reason,revoked,serial_number" {
		t.Errorf("revocationstatus keys of a revoked certificate: %v", keys)
	}
	if issued := h.sim.Issued(); !issued[0].Revoked || issued[0].RevocationReason != "KEY_COMPROMISE" {
		t.Fatalf("Issued %+v", issued[0])
	}
}

// bodyKeys lists the keys of a JSON object answer, sorted.
func bodyKeys(t *testing.T, r reply) []string {
	t.Helper()
	var m map[string]json.RawMessage
	r.decode(t, &m)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestRevokeSerialForms(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	e, _ := h.enroll("forms", "ENDUSER")
	for _, serial := range []string{e.SerialNumber, strings.ToLower(e.SerialNumber), "0x" + e.SerialNumber, "0X00" + e.SerialNumber, "0000" + strings.ToLower(e.SerialNumber)} {
		if r := h.call(h.admin, "GET", statusPath("CN=IssuingCA, O=EJBCA Sim", serial), nil); r.status != 200 {
			t.Errorf("serial %q: %d %s", serial, r.status, r.body)
		}
	}
}

func TestRevokeErrors(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	e, _ := h.enroll("errs", "ENDUSER")
	const issuer = "CN=IssuingCA,O=EJBCA Sim"

	h.call(h.admin, "PUT", revokePath(issuer, e.SerialNumber, "reason=BORED"), nil).expectError(t, 400, "Invalid revocation reason.")
	// Lifting a hold from a certificate not on hold is revokeCert's
	// AlreadyRevokedException: 409.
	for _, lift := range []string{"NOT_REVOKED", "REMOVE_FROM_CRL"} {
		h.call(h.admin, "PUT", revokePath(issuer, e.SerialNumber, "reason="+lift), nil).expectError(t, 409,
			fmt.Sprintf("Certificate with issuer: %s and serial number: %s is not on hold: only a certificate revoked with reason CERTIFICATE_HOLD can be unrevoked.", issuer, e.SerialNumber))
	}
	h.call(h.admin, "PUT", revokePath(issuer, e.SerialNumber, ""), nil).expectError(t, 400, "Invalid revocation reason.")
	if r := h.call(h.admin, "PUT", revokePath(issuer, "ABCDEF", "reason=SUPERSEDED"), nil); r.status != 404 {
		t.Errorf("unknown serial: %d %s", r.status, r.body)
	}
	if r := h.call(h.admin, "PUT", revokePath("CN=Nobody", e.SerialNumber, "reason=SUPERSEDED"), nil); r.status != 404 {
		t.Errorf("unknown CA: %d %s", r.status, r.body)
	}
	if r := h.call(h.admin, "GET", statusPath("CN=Nobody", e.SerialNumber), nil); r.status != 404 {
		t.Errorf("status, unknown CA: %d %s", r.status, r.body)
	}

	future := url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	if r := h.call(h.admin, "PUT", revokePath(issuer, e.SerialNumber, "reason=SUPERSEDED&date="+future), nil); r.status != 400 ||
		!strings.HasPrefix(r.errorMessage(t), "Date in the future: ") {
		t.Errorf("future date: %d %s", r.status, r.body)
	}
	h.call(h.admin, "PUT", revokePath(issuer, e.SerialNumber, "reason=SUPERSEDED&date=yesterday"), nil).
		expectError(t, 400, "'yesterday' is not a valid ISO8601 date. Example of a valid date: 2012-06-07T23:55:59+02:00")
	h.call(h.admin, "GET", statusPath(issuer, "XYZ"), nil).
		expectError(t, 400, "Invalid serial number format. Should be HEX encoded (optionally with '0x' prefix) e.g. '0x10782a83eef170d4'")
	h.call(h.admin, "GET", statusPath(issuer, "ABCDEF"), nil).
		expectError(t, 404, "Certificate with serial number 'ABCDEF' and issuer DN '"+issuer+"' was not found")
	h.call(h.admin, "GET", statusPath("CN=Nobody", "ABCDEF"), nil).expectError(t, 404, "CA 'CN=Nobody' does not exist.")
	past := url.QueryEscape(time.Now().Add(-24 * time.Hour).UTC().Format(time.RFC3339))
	h.call(h.admin, "PUT", revokePath(issuer, e.SerialNumber, "reason=SUPERSEDED&date="+past), nil).
		expectError(t, 422, "Back dated revocation not allowed for certificate profile 'ENDUSER'. Certificate serialNumber '"+e.SerialNumber+"', issuerDN '"+issuer+"'.")
	h.sim.SetBackdatedRevocationAllowed("ENDUSER", true)
	if r := h.call(h.admin, "PUT", revokePath(issuer, e.SerialNumber, "reason=CERTIFICATE_HOLD&date="+past), nil); r.status != 200 {
		t.Fatalf("allowed back-dated hold: %d %s", r.status, r.body)
	}

	// A hold can be lifted.
	var st revocation
	r := h.call(h.admin, "PUT", revokePath(issuer, e.SerialNumber, "reason=NOT_REVOKED"), nil)
	r.decode(t, &st)
	if r.status != 200 || st.Revoked || st.RevocationReason != "NOT_REVOKED" {
		t.Fatalf("lift hold: %d %s", r.status, r.body)
	}
}

func TestRevocationNeedingApproval(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	e, _ := h.enroll("guarded", "ENDUSER")
	h.sim.SetApprovalRequired("ENDUSER", true)
	const issuer = "CN=IssuingCA,O=EJBCA Sim"
	r := h.call(h.admin, "PUT", revokePath(issuer, e.SerialNumber, "reason=SUPERSEDED"), nil)
	var w waiting
	r.decode(t, &w)
	if r.status != 202 || w.Link != "" || w.RequestID == 0 {
		t.Fatalf("revoke with approval: %d %s", r.status, r.body)
	}
	if err := h.sim.Approve(w.RequestID); err != nil {
		t.Fatal(err)
	}
	var st revocation
	h.call(h.admin, "GET", statusPath(issuer, e.SerialNumber), nil).decode(t, &st)
	if !st.Revoked || st.RevocationReason != "SUPERSEDED" {
		t.Fatalf("after approval: %+v", st)
	}
}

// A revocation asked again while the first waits for approval is refused
// as ApprovalSessionBean.addApprovalRequest refuses a request it already
// holds (400, approval.alreadyexists): one approval request, not two. Another
// reason is another request (RevocationApprovalRequest's approvalID hashes
// the reason). A certificate already revoked is refused with 409 before any
// approval is asked for (EndEntityManagementSessionBean.revokeCert).
func TestRevocationAskedAgainWhileWaiting(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	e, _ := h.enroll("twice", "ENDUSER")
	done, _ := h.enroll("done", "ENDUSER")
	const issuer = "CN=IssuingCA,O=EJBCA Sim"
	if r := h.call(h.admin, "PUT", revokePath(issuer, done.SerialNumber, "reason=SUPERSEDED"), nil); r.status != 200 {
		t.Fatalf("revoke before approvals: %d %s", r.status, r.body)
	}
	h.sim.SetApprovalRequired("ENDUSER", true)

	r := h.call(h.admin, "PUT", revokePath(issuer, e.SerialNumber, "reason=SUPERSEDED"), nil)
	var w waiting
	r.decode(t, &w)
	if r.status != 202 || w.RequestID == 0 {
		t.Fatalf("first revoke: %d %s", r.status, r.body)
	}
	r = h.call(h.admin, "PUT", revokePath(issuer, e.SerialNumber, "reason=SUPERSEDED"), nil)
	if msg := r.errorMessage(t); r.status != 400 || !strings.HasPrefix(msg, "Approval request with approvalID ") || !strings.HasSuffix(msg, " already exists.") {
		t.Fatalf("second revoke: %d %s", r.status, r.body)
	}
	if got := h.sim.PendingApprovals(); len(got) != 1 || got[0] != w.RequestID {
		t.Fatalf("pending approvals %v, want only %d", got, w.RequestID)
	}
	if r := h.call(h.admin, "PUT", revokePath(issuer, e.SerialNumber, "reason=KEY_COMPROMISE"), nil); r.status != 202 {
		t.Fatalf("another reason: %d %s", r.status, r.body)
	}
	h.call(h.admin, "PUT", revokePath(issuer, done.SerialNumber, "reason=SUPERSEDED"), nil).expectError(t, 409,
		fmt.Sprintf("Certificate with issuer: %s and serial number: %s has previously been revoked. Revocation reason could not be changed or was not allowed.", issuer, done.SerialNumber))
	h.call(h.admin, "PUT", revokePath(issuer, e.SerialNumber, "reason=NOT_REVOKED"), nil).expectError(t, 409,
		fmt.Sprintf("Certificate with issuer: %s and serial number: %s is not on hold: only a certificate revoked with reason CERTIFICATE_HOLD can be unrevoked.", issuer, e.SerialNumber))
	if got := h.sim.PendingApprovals(); len(got) != 2 {
		t.Fatalf("pending approvals %v, want 2 (one per reason, none for the refusals)", got)
	}
}
