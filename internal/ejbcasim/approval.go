package ejbcasim

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Approval request statuses, EJBCA's names.
const (
	approvalPending         = "PENDING"
	approvalApproved        = "APPROVED"
	approvalRejected        = "REJECTED"
	approvalExpired         = "EXPIRED"
	approvalExecuted        = "EXECUTED"
	approvalExecutionFailed = "EXECUTION_FAILED"
)

// approvalLifetime is how long a request waits before it expires (the
// request expiration period of EJBCA's default approval profile).
const approvalLifetime = 8 * time.Hour

type approvalKind int

const (
	approvalAddEndEntity approvalKind = iota
	approvalRevocation
)

// approval is a request waiting for (or decided by) an administrator.
type approval struct {
	id         int
	kind       approvalKind
	status     string
	expires    time.Time
	endEntity  *endEntity         // approvalAddEndEntity
	revocation *pendingRevocation // approvalRevocation
}

// newApprovalLocked creates a pending request with a random id, like
// EJBCA's; callers hold s.mu.
func (s *Sim) newApprovalLocked(kind approvalKind) *approval {
	id := 0
	for id == 0 || s.approvals[id] != nil {
		var b [4]byte
		_, _ = rand.Read(b[:])
		id = int(binary.BigEndian.Uint32(b[:])&0x7fffffff) | 0x100000
	}
	a := &approval{id: id, kind: kind, status: approvalPending, expires: s.now().Add(approvalLifetime)}
	s.approvals[id] = a
	return a
}

// statusLocked is the request's status, expiring it when its time is up.
func (s *Sim) statusLocked(a *approval) string {
	if a.status == approvalPending && !s.now().Before(a.expires) {
		a.status = approvalExpired
	}
	return a.status
}

// pendingAdditionLocked finds a pending request to add username.
func (s *Sim) pendingAdditionLocked(username string) (int, bool) {
	for id, a := range s.approvals {
		if a.kind == approvalAddEndEntity && a.endEntity.username == username && s.statusLocked(a) == approvalPending {
			return id, true
		}
	}
	return 0, false
}

// waitingResponse is EJBCA's 202 body for a request waiting for approval.
type waitingResponse struct {
	StatusCode  int    `json:"status_code"`
	InfoMessage string `json:"info_message"`
	Link        string `json:"link,omitempty"`
	RequestID   int    `json:"request_id"`
}

// waitingBody builds the 202 body. Its link reproduces EJBCA's known defect:
// it lacks the "/v1/certificate" part, so clients must not follow it.
func waitingBody(r *http.Request, id int, message string, withLink bool) waitingResponse {
	body := waitingResponse{StatusCode: http.StatusAccepted, InfoMessage: message, RequestID: id}
	if withLink {
		body.Link = fmt.Sprintf("https://%s%s/%d/finalize", r.Host, restPrefix, id)
	}
	return body
}

// Approve approves a pending request as an administrator would; the
// approved action is then carried out (status EXECUTED, or
// EXECUTION_FAILED when it can no longer be done).
func (s *Sim) Approve(requestID int) error {
	return s.settle(requestID, approvalApproved)
}

// Reject rejects a pending request.
func (s *Sim) Reject(requestID int) error {
	return s.settle(requestID, approvalRejected)
}

// Expire makes a pending request expire now, without waiting for its
// lifetime (8 hours on the simulator's clock).
func (s *Sim) Expire(requestID int) error {
	return s.settle(requestID, approvalExpired)
}

// settle ends a pending request with status; an approved one is carried
// out at once.
func (s *Sim) settle(requestID int, status string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.pendingLocked(requestID)
	if err != nil {
		return err
	}
	a.status = status
	if status == approvalApproved {
		s.executeLocked(a)
	}
	return nil
}

// PendingApprovals lists the ids of the requests waiting for approval,
// ascending.
func (s *Sim) PendingApprovals() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []int
	for id, a := range s.approvals {
		if s.statusLocked(a) == approvalPending {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// ApprovalStatus is a request's status ("PENDING", "EXECUTED", ...), or
// false when no such request exists.
func (s *Sim) ApprovalStatus(requestID int) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.approvals[requestID]
	if a == nil {
		return "", false
	}
	return s.statusLocked(a), true
}

func (s *Sim) pendingLocked(id int) (*approval, error) {
	a := s.approvals[id]
	if a == nil {
		return nil, fmt.Errorf("ejbcasim: no approval request with id %d", id)
	}
	if st := s.statusLocked(a); st != approvalPending {
		return nil, fmt.Errorf("ejbcasim: approval request %d is %s, not %s", id, st, approvalPending)
	}
	return a, nil
}

// executeLocked carries out an approved request.
func (s *Sim) executeLocked(a *approval) {
	switch a.kind {
	case approvalAddEndEntity:
		if _, exists := s.endEntities[a.endEntity.username]; exists {
			a.status = approvalExecutionFailed
			return
		}
		ee := *a.endEntity
		s.endEntities[ee.username] = &ee
	case approvalRevocation:
		if !s.applyRevocationLocked(a.revocation) {
			a.status = approvalExecutionFailed
			return
		}
	}
	a.status = approvalExecuted
}

func parseRequestID(w http.ResponseWriter, r *http.Request) (int, bool) {
	raw := r.PathValue("id")
	id, err := strconv.Atoi(raw)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Invalid request id '%s'.", raw))
		return 0, false
	}
	return id, true
}

func writeUnknownRequest(w http.ResponseWriter, id int) {
	writeError(w, http.StatusNotFound, fmt.Sprintf("Could not find request with Id '%d'.", id))
}

type approvalStatusResponse struct {
	RequestID int    `json:"request_id"`
	Status    string `json:"status"`
}

// handleApprovalStatus serves GET /v1/approval/{id}/status.
func (s *Sim) handleApprovalStatus(w http.ResponseWriter, r *http.Request, _ Fault) {
	id, ok := parseRequestID(w, r)
	if !ok {
		return
	}
	st, found := s.ApprovalStatus(id)
	if !found {
		writeUnknownRequest(w, id)
		return
	}
	writeJSON(w, http.StatusOK, approvalStatusResponse{RequestID: id, Status: st})
}

type approvalProcessRequest struct {
	Action  string `json:"action"`
	Comment string `json:"comment"`
}

// handleApprovalProcess serves POST /v1/approval/{id}/process with
// {"action":"APPROVE"|"REJECT"}: an authenticated administrator decides.
func (s *Sim) handleApprovalProcess(w http.ResponseWriter, r *http.Request, _ Fault) {
	id, ok := parseRequestID(w, r)
	if !ok {
		return
	}
	var req approvalProcessRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	action := strings.ToUpper(req.Action)
	if action != "APPROVE" && action != "REJECT" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Invalid action '%s', expected APPROVE or REJECT.", req.Action))
		return
	}
	s.mu.Lock()
	a := s.approvals[id]
	if a == nil {
		s.mu.Unlock()
		writeUnknownRequest(w, id)
		return
	}
	if st := s.statusLocked(a); st != approvalPending {
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Request with Id '%d' is not waiting for approval, its status is %s.", id, st))
		return
	}
	if action == "APPROVE" {
		a.status = approvalApproved
		s.executeLocked(a)
	} else {
		a.status = approvalRejected
	}
	st := a.status
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, approvalStatusResponse{RequestID: id, Status: st})
}

type finalizeRequest struct {
	ResponseFormat string `json:"response_format"`
	Password       string `json:"password"`
	KeyAlg         string `json:"key_alg"`
	KeySpec        string `json:"key_spec"`
}

type finalizeResponse struct {
	RequestID       int    `json:"request_id"`
	Status          string `json:"status"`
	Username        string `json:"username,omitempty"`
	EndEntityStatus string `json:"end_entity_status,omitempty"`
}

// handleFinalize serves POST /v1/certificate/{id}/finalize: 202 while the
// request waits, 400 once rejected or expired. For an executed request the
// simulator answers 200 with the request's and end entity's status (it does
// not generate keystores; enrol with certificaterequest).
func (s *Sim) handleFinalize(w http.ResponseWriter, r *http.Request, _ Fault) {
	id, ok := parseRequestID(w, r)
	if !ok {
		return
	}
	if r.ContentLength != 0 {
		var req finalizeRequest
		if !decodeJSON(w, r, &req) {
			return
		}
	}
	s.mu.Lock()
	a := s.approvals[id]
	if a == nil {
		s.mu.Unlock()
		writeUnknownRequest(w, id)
		return
	}
	st := s.statusLocked(a)
	resp := finalizeResponse{RequestID: id, Status: st}
	if a.kind == approvalAddEndEntity {
		resp.Username = a.endEntity.username
		if ee := s.endEntities[a.endEntity.username]; ee != nil && st == approvalExecuted {
			resp.EndEntityStatus = ee.status
		}
	}
	s.mu.Unlock()
	switch st {
	case approvalPending:
		writeJSON(w, http.StatusAccepted, waitingBody(r, id, fmt.Sprintf("Request with Id '%d' is still waiting for approval", id), true))
	case approvalRejected:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Request with Id '%d' has been rejected", id))
	case approvalExpired:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Request with Id '%d' has expired", id))
	case approvalExecutionFailed:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Request with Id '%d' was approved but could not be executed", id))
	default:
		writeJSON(w, http.StatusOK, resp)
	}
}
