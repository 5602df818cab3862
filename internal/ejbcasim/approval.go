package ejbcasim

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// Approval request statuses (ApprovalDataVO), by EJBCA's names.
const (
	approvalPending         = "PENDING"
	approvalApproved        = "APPROVED"
	approvalRejected        = "REJECTED"
	approvalExpired         = "EXPIRED"
	approvalExecuted        = "EXECUTED"
	approvalExecutionFailed = "EXECUTION_FAILED"
)

// combinedStatus is ApprovalRequestStatus.fromIntWithCombinedStates: what
// the approval REST API reports (PENDING, APPROVED, REJECTED, EXPIRED,
// UNKNOWN).
func combinedStatus(st string) string {
	switch st {
	case approvalPending:
		return approvalPending
	case approvalApproved, approvalExecuted:
		return approvalApproved
	case approvalRejected, approvalExecutionFailed:
		return approvalRejected
	case approvalExpired:
		return approvalExpired
	}
	return "UNKNOWN"
}

// approvalLifetime is how long a request waits before it expires (the
// request expiration period of EJBCA's default approval profile).
const approvalLifetime = 8 * time.Hour

type approvalKind int

const (
	approvalAddEndEntity approvalKind = iota
	approvalRevocation
)

// approvalStep is one administrator's decision.
type approvalStep struct {
	admin    string
	approved bool
	comment  string
	date     time.Time
}

// approval is a request waiting for (or decided by) an administrator.
type approval struct {
	id         int // the request id (ApprovalData.id)
	approvalID int // EJBCA's approvalID: a hash of what is asked, not the request id
	kind       approvalKind
	status     string
	requested  time.Time
	expires    time.Time
	steps      []approvalStep
	endEntity  *endEntity         // approvalAddEndEntity
	revocation *pendingRevocation // approvalRevocation
}

// username is the end entity the request is about.
func (a *approval) username() string {
	if a.kind == approvalAddEndEntity {
		return a.endEntity.username
	}
	return a.revocation.rec.username
}

// typeName is the request type as the approval REST API names it.
func (a *approval) typeName() string {
	if a.kind == approvalAddEndEntity {
		return "Add End Entity"
	}
	return "Revoke Certificate"
}

// newApprovalLocked creates a pending request with a random id, like
// EJBCA's; callers hold s.mu.
func (s *Sim) newApprovalLocked(kind approvalKind, approvalID int) *approval {
	id := 0
	for id == 0 || s.approvals[id] != nil {
		var b [4]byte
		_, _ = rand.Read(b[:])
		id = int(binary.BigEndian.Uint32(b[:])&0x7fffffff) | 0x100000
	}
	now := s.now()
	a := &approval{id: id, approvalID: approvalID, kind: kind, status: approvalPending, requested: now, expires: now.Add(approvalLifetime)}
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

// pendingApprovalIDLocked finds a pending request with this approvalID.
func (s *Sim) pendingApprovalIDLocked(approvalID int) (*approval, bool) {
	for _, a := range s.approvals {
		if a.approvalID == approvalID && s.statusLocked(a) == approvalPending {
			return a, true
		}
	}
	return nil, false
}

// waitingResponse is ExceptionHandler's 202 info body for a request that
// waits for approval (ExceptionInfoRestResponse).
type waitingResponse struct {
	StatusCode  int    `json:"status_code"`
	InfoMessage string `json:"info_message"`
	Link        string `json:"link,omitempty"`
	RequestID   *int   `json:"request_id,omitempty"`
}

// waitingBody builds the 202 info body. request_id is left out on versions
// whose ExceptionInfoRestResponse has no such field (PendingWithoutID). The
// link reproduces EJBCA's known defect: it lacks the "/v1/certificate"
// part, so clients must not follow it.
func (s *Sim) waitingBody(r *http.Request, id int, message string, withLink bool) waitingResponse {
	body := waitingResponse{StatusCode: http.StatusAccepted, InfoMessage: message}
	if !s.behaviour.PendingWithoutID {
		body.RequestID = &id
	}
	if withLink {
		body.Link = fmt.Sprintf("https://%s%s/%d/finalize", r.Host, restPrefix, id)
	}
	return body
}

// simAdmin is who decides when a test approves through the Go API.
const simAdmin = "CN=ejbcasim approver"

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
	switch status {
	case approvalApproved, approvalRejected:
		s.decideLocked(a, simAdmin, status == approvalApproved, "")
	default:
		a.status = status
	}
	return nil
}

// decideLocked records an administrator's decision and carries out an
// approved request.
func (s *Sim) decideLocked(a *approval, admin string, approve bool, comment string) {
	a.steps = append(a.steps, approvalStep{admin: admin, approved: approve, comment: comment, date: s.now()})
	if !approve {
		a.status = approvalRejected
		return
	}
	a.status = approvalApproved
	s.executeLocked(a)
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

// ApprovalStatus is a request's detailed status ("PENDING", "EXECUTED",
// "EXECUTION_FAILED", ...), or false when no such request exists. The REST
// API reports the combined states instead (EXECUTED is APPROVED there).
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

// pathRequestID reads the {id} path parameter as JAX-RS binds an int: a
// value that is not one is RESTEasy's 404.
func (s *Sim) pathRequestID(w http.ResponseWriter, r *http.Request) (int, bool) {
	raw := r.PathValue("id")
	id, err := strconv.ParseInt(raw, 10, 32)
	if err != nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf(`RESTEASY003870: Unable to extract parameter from http request: jakarta.ws.rs.PathParam("request_id") value is '%s'`, raw))
		return 0, false
	}
	return int(id), true
}

type approvalStatusResponse struct {
	RequestID int    `json:"request_id"`
	Status    string `json:"status"`
}

// handleApprovalStatus serves GET /v1/approval/{id}/status
// (ApprovalRestResource.getApprovalRequestStatus): the combined state only.
func (s *Sim) handleApprovalStatus(w http.ResponseWriter, r *http.Request, _ Fault) {
	id, ok := s.pathRequestID(w, r)
	if !ok {
		return
	}
	if id <= 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Invalid request ID: %d. Request ID must be a positive integer.", id))
		return
	}
	st, found := s.ApprovalStatus(id)
	if !found {
		writeError(w, http.StatusNotFound, fmt.Sprintf("Approval request with ID '%d' not found, or user not authorized to view.", id))
		return
	}
	writeJSON(w, http.StatusOK, approvalStatusResponse{RequestID: id, Status: combinedStatus(st)})
}

type approvalProcessRequest struct {
	Approve *bool   `json:"approve"`
	Comment *string `json:"comment"`
}

// approvalStepResponse is ApprovalStepRestResponse.
type approvalStepResponse struct {
	Step            int    `json:"step"`
	ApprovalAction  string `json:"approval_action"`
	ApprovalDate    string `json:"approval_date,omitempty"`
	ApprovalAdmin   string `json:"approval_admin,omitempty"`
	ApprovalComment string `json:"approval_comment,omitempty"`
}

// approvalRecord is ProcessApprovalRestResponse: the whole request after
// the decision, request_id as a string.
type approvalRecord struct {
	RequestID      string                 `json:"request_id"`
	RequestType    string                 `json:"request_type"`
	RequestDate    string                 `json:"request_date"`
	ExpirationDate string                 `json:"expiration_date"`
	EndEntityName  string                 `json:"end_entity_name"`
	Status         string                 `json:"status"`
	Steps          []approvalStepResponse `json:"steps"`
}

// approvalDate is ProcessApprovalRestResponse's "yyyy-MM-dd HH:mm:ssXXX".
func approvalDate(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05Z07:00")
}

// recordLocked describes a request as the process endpoint answers it.
func (s *Sim) recordLocked(a *approval) approvalRecord {
	rec := approvalRecord{
		RequestID:      strconv.Itoa(a.id),
		RequestType:    a.typeName(),
		RequestDate:    approvalDate(a.requested),
		ExpirationDate: approvalDate(a.requested.Add(approvalLifetime)),
		EndEntityName:  a.username(),
		Status:         combinedStatus(s.statusLocked(a)),
		Steps:          []approvalStepResponse{},
	}
	for i, st := range a.steps {
		action := approvalRejected
		if st.approved {
			action = approvalApproved
		}
		rec.Steps = append(rec.Steps, approvalStepResponse{
			Step: i + 1, ApprovalAction: action, ApprovalDate: approvalDate(st.date), ApprovalAdmin: st.admin, ApprovalComment: st.comment,
		})
	}
	return rec
}

// handleApprovalProcess serves POST /v1/approval/{id}/process
// (ApprovalRestResource.processApprovalRequest) with
// {"approve":true|false,"comment":"..."}: an authenticated administrator
// decides, and the answer is the whole request afterwards.
func (s *Sim) handleApprovalProcess(w http.ResponseWriter, r *http.Request, _ Fault) {
	id, ok := s.pathRequestID(w, r)
	if !ok {
		return
	}
	var req approvalProcessRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	admin := s.adminName(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.approvals[id]
	if a == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("Approval request with ID %d not found or unauthorized", id))
		return
	}
	if st := s.statusLocked(a); st != approvalPending {
		writeError(w, http.StatusConflict, "Approval request cannot be processed. Current status: "+combinedStatus(st))
		return
	}
	if req.Approve == nil {
		// Unboxing the missing Boolean throws a NullPointerException, which
		// the resource's catch-all turns into a 500.
		writeError(w, http.StatusInternalServerError, `Unexpected error processing approval request: Cannot invoke "java.lang.Boolean.booleanValue()" because the return value of "org.ejbca.ui.web.rest.api.io.request.ProcessApprovalRestRequest.getApprove()" is null`)
		return
	}
	comment := ""
	if req.Comment != nil {
		comment = *req.Comment
	}
	s.decideLocked(a, admin, *req.Approve, comment)
	writeJSON(w, http.StatusOK, s.recordLocked(a))
}

// adminName names the authenticated caller as approval steps record it.
func (s *Sim) adminName(r *http.Request) string {
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		return mustDN(r.TLS.PeerCertificates[0].RawSubject)
	}
	return "OAuth2 bearer token"
}
