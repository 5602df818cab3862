package ejbcasim

import (
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"time"
)

// revocationReasons are the reasons EJBCA's REST API accepts, with their
// RFC 5280 codes; NOT_REVOKED and REMOVE_FROM_CRL lift a CERTIFICATE_HOLD.
var revocationReasons = map[string]int{
	"NOT_REVOKED":            -1,
	"UNSPECIFIED":            0,
	"KEY_COMPROMISE":         1,
	"CA_COMPROMISE":          2,
	"AFFILIATION_CHANGED":    3,
	"SUPERSEDED":             4,
	"CESSATION_OF_OPERATION": 5,
	"CERTIFICATE_HOLD":       6,
	"REMOVE_FROM_CRL":        8,
	"PRIVILEGES_WITHDRAWN":   9,
	"AA_COMPROMISE":          10,
}

const reasonHold = "CERTIFICATE_HOLD"

// revocationDateSlack tolerates clock skew before a date counts as
// back-dated or in the future.
const revocationDateSlack = time.Minute

// pendingRevocation is a revocation (or reactivation) to apply, possibly
// after approval.
type pendingRevocation struct {
	rec    *issuedCertificate
	reason string
	date   time.Time
}

// applyRevocationLocked revokes, changes a hold into a permanent reason, or
// lifts a hold; false when the certificate's state does not allow it.
func (s *Sim) applyRevocationLocked(p *pendingRevocation) bool {
	rec := p.rec
	if p.reason == "NOT_REVOKED" || p.reason == "REMOVE_FROM_CRL" {
		if !rec.revoked || rec.revocationReason != reasonHold {
			return false
		}
		rec.revoked, rec.revocationReason, rec.revocationDate = false, "", time.Time{}
		return true
	}
	if rec.revoked && (rec.revocationReason != reasonHold || p.reason == reasonHold) {
		return false
	}
	rec.revoked, rec.revocationReason, rec.revocationDate = true, p.reason, p.date
	return true
}

// parseSerial reads a serial number as EJBCA compares it: hex, any case,
// optional 0x, leading zeros allowed.
func parseSerial(v string) (*big.Int, bool) {
	v = strings.TrimSpace(v)
	if len(v) > 2 && (v[:2] == "0x" || v[:2] == "0X") {
		v = v[2:]
	}
	n, ok := new(big.Int).SetString(v, 16)
	if !ok || n.Sign() < 0 {
		return nil, false
	}
	return n, true
}

// revocationResponse is RevokeStatusRestResponse: revocation_date and
// message are left out when null (JsonInclude NON_NULL), so revocationstatus
// (whose converter sets no message) has no message, and a certificate not
// revoked has no revocation_date.
type revocationResponse struct {
	IssuerDN         string  `json:"issuer_dn"`
	SerialNumber     string  `json:"serial_number"`
	Revoked          bool    `json:"revoked"`
	RevocationReason string  `json:"revocation_reason"`
	RevocationDate   *string `json:"revocation_date,omitempty"`
	Message          string  `json:"message,omitempty"`
}

// revocationBody describes rec's state; message "" leaves it out.
func revocationBody(issuerDN, serial string, rec *issuedCertificate, message string) revocationResponse {
	body := revocationResponse{IssuerDN: issuerDN, SerialNumber: serial, Revoked: rec.revoked, RevocationReason: "NOT_REVOKED", Message: message}
	if rec.revoked {
		d := restTime(rec.revocationDate)
		body.RevocationReason = rec.revocationReason
		body.RevocationDate = &d
	}
	return body
}

// findIssuedLocked finds a certificate by issuer DN (percent-decoded, any
// component order or spacing) and serial, answering 404 for an unknown CA or
// certificate.
func (s *Sim) findIssuedLocked(issuerDN, serial string) (*issuedCertificate, *apiError) {
	n, ok := parseSerial(serial)
	if !ok {
		return nil, errorf(http.StatusBadRequest, "Invalid serial number format. Should be HEX encoded (optionally with '0x' prefix) e.g. '0x10782a83eef170d4'")
	}
	ca := s.caByDN(issuerDN)
	if ca == nil {
		return nil, errorf(http.StatusNotFound, fmt.Sprintf("CA '%s' does not exist.", issuerDN))
	}
	rec := s.issuedByKey[issuedKey(ca.dn, n)]
	if rec == nil {
		return nil, errorf(http.StatusNotFound, fmt.Sprintf("Certificate with serial number '%s' and issuer DN '%s' was not found", serial, issuerDN))
	}
	return rec, nil
}

// handleRevoke serves PUT /v1/certificate/{issuer_dn}/{serial}/revoke
// ?reason=REASON[&date=ISO8601].
func (s *Sim) handleRevoke(w http.ResponseWriter, r *http.Request, _ Fault) {
	issuerDN, serial := r.PathValue("issuer_dn"), r.PathValue("serial")
	s.countRevokeCall(serial)
	// Matched exactly, as RevocationReasons.getFromCliValue compares the
	// string value with equals: "superseded" is refused.
	reason := r.URL.Query().Get("reason")
	if _, ok := revocationReasons[reason]; !ok {
		writeError(w, http.StatusBadRequest, "Invalid revocation reason.")
		return
	}
	now := s.now()
	date := now
	backdated := false
	if raw := r.URL.Query().Get("date"); raw != "" {
		t, ok := parseRevocationDate(raw)
		if !ok {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("'%s' is not a valid ISO8601 date. Example of a valid date: 2012-06-07T23:55:59+02:00", raw))
			return
		}
		if t.After(now.Add(revocationDateSlack)) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("Date in the future: '%s'.", raw))
			return
		}
		date, backdated = t, t.Before(now.Add(-revocationDateSlack))
	}

	s.mu.Lock()
	rec, fail := s.findIssuedLocked(issuerDN, serial)
	if fail != nil {
		s.mu.Unlock()
		writeAPIError(w, fail)
		return
	}
	if backdated && !rec.certProfile.backdatedRevocation {
		s.mu.Unlock()
		writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("Back dated revocation not allowed for certificate profile '%s'. Certificate serialNumber '%s', issuerDN '%s'.", rec.certProfile.name, serial, issuerDN))
		return
	}
	p := &pendingRevocation{rec: rec, reason: reason, date: date.UTC().Truncate(time.Second)}
	// EndEntityManagementSessionBean.revokeCert checks the certificate's
	// state before it asks for approval: AlreadyRevokedException, 409.
	if msg := revocationConflict(rec, reason, issuerDN, serial); msg != "" {
		s.mu.Unlock()
		writeError(w, http.StatusConflict, msg)
		return
	}
	if s.needsApproval(rec.ca, rec.certProfile) {
		// RevocationApprovalRequest's approvalID hashes the certificate and
		// the reason: the same revocation asked again while the first waits
		// is ApprovalSessionBean.addApprovalRequest's approval.alreadyexists.
		approvalID := entityID("revoke " + rec.ca.dn + " " + rec.cert.SerialNumber.Text(16) + " " + reason)
		if _, pending := s.pendingApprovalIDLocked(approvalID); pending {
			s.mu.Unlock()
			writeError(w, http.StatusBadRequest, fmt.Sprintf(msgApprovalExists, approvalID))
			return
		}
		a := s.newApprovalLocked(approvalRevocation, approvalID)
		a.revocation = p
		s.mu.Unlock()
		// ra.approvalrevoke: ExceptionHandler adds no finalize link for it.
		writeJSON(w, http.StatusAccepted, s.waitingBody(r, a.id, "Revocation has been sent for approval by authorized administrators.", false))
		return
	}
	if !s.applyRevocationLocked(p) {
		// revocationConflict allowed it under the same lock: cannot happen.
		s.mu.Unlock()
		writeError(w, http.StatusInternalServerError, "General failure.")
		return
	}
	// CertificateRestResource.revokeCertificate says "Successfully revoked"
	// whatever the reason, a lifted hold included.
	body := revocationBody(issuerDN, serial, rec, "Successfully revoked")
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

// revocationConflict is EndEntityManagementSessionBean.revokeCert's state
// check (AlreadyRevokedException, which ExceptionHandler answers with 409):
// lifting a hold (NOT_REVOKED, REMOVE_FROM_CRL) needs a certificate on hold;
// revoking needs one not revoked, or on hold and given a permanent reason.
// "" when the revocation may go ahead.
func revocationConflict(rec *issuedCertificate, reason, issuerDN, serial string) string {
	onHold := rec.revoked && rec.revocationReason == reasonHold
	if reason == "NOT_REVOKED" || reason == "REMOVE_FROM_CRL" {
		if !onHold {
			return fmt.Sprintf("Certificate with issuer: %s and serial number: %s is not on hold: only a certificate revoked with reason CERTIFICATE_HOLD can be unrevoked.", issuerDN, serial)
		}
		return ""
	}
	if rec.revoked && (!onHold || reason == reasonHold) {
		return fmt.Sprintf("Certificate with issuer: %s and serial number: %s has previously been revoked. Revocation reason could not be changed or was not allowed.", issuerDN, serial)
	}
	return ""
}

// handleRevocationStatus serves GET
// /v1/certificate/{issuer_dn}/{serial}/revocationstatus.
func (s *Sim) handleRevocationStatus(w http.ResponseWriter, r *http.Request, _ Fault) {
	issuerDN, serial := r.PathValue("issuer_dn"), r.PathValue("serial")
	s.mu.Lock()
	rec, fail := s.findIssuedLocked(issuerDN, serial)
	if fail != nil {
		s.mu.Unlock()
		writeAPIError(w, fail)
		return
	}
	// RevokeStatusRestResponse.converter().toRestResponse sets no message.
	body := revocationBody(issuerDN, serial, rec, "")
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

// parseRevocationDate reads an ISO 8601 date-time; a '+' offset that arrived
// unencoded in the query (and so as a space) is accepted too.
func parseRevocationDate(raw string) (time.Time, bool) {
	raw = strings.ReplaceAll(raw, " ", "+")
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, raw, time.UTC); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// revokeCallKey is serial as RevokeCalls counts it: EJBCA's reading of it
// when it parses, else as given.
func revokeCallKey(serial string) string {
	if n, ok := parseSerial(serial); ok {
		return n.Text(16)
	}
	return serial
}

// countRevokeCall counts a revoke call for serial, whatever its answer.
func (s *Sim) countRevokeCall(serial string) {
	key := revokeCallKey(serial)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.revokeCalls == nil {
		s.revokeCalls = map[string]int{}
	}
	s.revokeCalls[key]++
}

// RevokeCalls is the number of revoke calls that reached EJBCA for a
// serial (hex, any case, leading zeros allowed), whatever they answered:
// tests assert that each revoked certificate took exactly one. Calls
// refused by an injected fault or made while the simulator was down never
// reach the handler and are not counted here (Counters has them).
func (s *Sim) RevokeCalls(serial string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.revokeCalls[revokeCallKey(serial)]
}

// RevokeAsAdministrator revokes an issued certificate the way an
// administrator does in EJBCA's admin web, outside the REST API (so it is
// not counted in RevokeCalls or Counters), for tests of a certificate
// revoked behind the issuer's back; false when no certificate has serial,
// it is already revoked, or reason is not one that revokes (unknown, or
// NOT_REVOKED / REMOVE_FROM_CRL, which lift a hold).
func (s *Sim) RevokeAsAdministrator(serial *big.Int, reason string) bool {
	if code, ok := revocationReasons[reason]; !ok || code < 0 || reason == "REMOVE_FROM_CRL" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rec := range s.issued {
		if rec.cert.SerialNumber.Cmp(serial) == 0 {
			return s.applyRevocationLocked(&pendingRevocation{rec: rec, reason: reason, date: s.now().UTC().Truncate(time.Second)})
		}
	}
	return false
}
