package ejbca

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// EndEntity is what AddEndEntity registers before an approved enrolment.
// Both profile names are always sent: EJBCA resolves them by name and
// refuses an empty one.
type EndEntity struct {
	Username               string `json:"username"`
	Password               string `json:"password"`
	SubjectDN              string `json:"subject_dn"`
	SubjectAltName         string `json:"subject_alt_name,omitempty"`
	Email                  string `json:"email,omitempty"`
	CAName                 string `json:"ca_name"`
	CertificateProfileName string `json:"certificate_profile_name"`
	EndEntityProfileName   string `json:"end_entity_profile_name"`
	Token                  string `json:"token"`
}

// Addition is the outcome of AddEndEntity when EJBCA accepted it.
type Addition struct {
	// WaitingForApproval: EJBCA holds the addition for an administrator (a
	// 202 in either shape), or it already holds an approval request to add
	// this end entity (a retried add whose first 202 was lost). The end
	// entity does not exist until the request is approved and executed.
	WaitingForApproval bool
	// RequestID is EJBCA's approval request id, the one the approval API
	// takes; 0 when EJBCA gave none. The error-shaped 202 carries none, and
	// neither does the "already exists" answer: the number in EJBCA's
	// message there is the approval id (a hash of the request), not the
	// request id.
	RequestID int
}

// endpointAddEndEntity is AddEndEntity's endpoint in errors and metrics.
const endpointAddEndEntity = "POST /v1/endentity"

// approvalExists matches EJBCA's refusal of an approval request identical to
// one it already holds (ApprovalSessionBean.addApprovalRequest, message
// "approval.alreadyexists": "Approval request with id N already exists.",
// answered as a 400 by the REST exception handler).
var approvalExists = regexp.MustCompile(`(?i)approval request\b.*\balready exists`)

// AddEndEntity registers an end entity with a user-generated token, the
// first step of the approval flow. A zero Addition means the end entity was
// added at once and can enrol now. An existing username gives an error
// satisfying IsConflict; an EJBCA without the end entity API (Community
// Edition) one satisfying IsUnsupported.
func (c *Client) AddEndEntity(ctx context.Context, ee EndEntity) (Addition, error) {
	if ee.Token == "" {
		ee.Token = "USERGENERATED"
	}
	r, err := c.send(ctx, request{method: http.MethodPost, endpoint: endpointAddEndEntity, path: "/v1/endentity", body: ee})
	if err != nil {
		return Addition{}, err
	}
	switch r.status {
	case http.StatusOK, http.StatusCreated, http.StatusNoContent:
		return Addition{}, nil
	case http.StatusAccepted:
		return Addition{WaitingForApproval: true, RequestID: pendingRequestID(parsePending(r))}, nil
	}
	e := failure(endpointAddEndEntity, r)
	if r.status == http.StatusBadRequest && approvalExists.MatchString(e.Message) {
		return Addition{WaitingForApproval: true}, nil
	}
	return Addition{}, e
}

// ApprovalState is an approval request's status as EJBCA names it.
type ApprovalState string

// The states of an approval request. The approval API reports the combined
// states PENDING, APPROVED, REJECTED, EXPIRED and UNKNOWN; the others are
// older or internal names, tolerated.
const (
	ApprovalPending            ApprovalState = "PENDING"
	ApprovalApproved           ApprovalState = "APPROVED"
	ApprovalRejected           ApprovalState = "REJECTED"
	ApprovalExpired            ApprovalState = "EXPIRED"
	ApprovalUnknown            ApprovalState = "UNKNOWN"
	ApprovalExpiredAndNotified ApprovalState = "EXPIRED_AND_NOTIFIED"
	ApprovalExecuted           ApprovalState = "EXECUTED"
	ApprovalExecutionFailed    ApprovalState = "EXECUTION_FAILED"
	ApprovalExecutionDenied    ApprovalState = "EXECUTION_DENIED"
)

// Approved reports whether the end entity may now enrol.
func (s ApprovalState) Approved() bool { return s == ApprovalApproved || s == ApprovalExecuted }

// Refused reports whether the request ended without approval.
func (s ApprovalState) Refused() bool {
	switch s {
	case ApprovalRejected, ApprovalExpired, ApprovalExpiredAndNotified, ApprovalExecutionFailed, ApprovalExecutionDenied:
		return true
	}
	return false
}

// approvalState reads a status as EJBCA spells it, mapping older names of
// a waiting request to PENDING.
func approvalState(s string) ApprovalState {
	s = strings.ToUpper(strings.TrimSpace(s))
	switch strings.ReplaceAll(s, "_", "") {
	case "WAITINGFORAPPROVAL", "WAITING":
		return ApprovalPending
	}
	return ApprovalState(s)
}

// ApprovalStatus asks for an approval request's state. It never enrols and
// has no fallback: an EJBCA without the approval API gives an error
// satisfying IsUnsupported (then probe with EnrollForEndEntity instead), an
// id EJBCA does not know one satisfying IsNotFound. UNKNOWN is neither
// approved nor refused.
func (c *Client) ApprovalStatus(ctx context.Context, requestID int) (ApprovalState, error) {
	const endpoint = "GET /v1/approval/{request_id}/status"
	r, err := c.send(ctx, request{method: http.MethodGet, endpoint: endpoint,
		path: "/v1/approval/" + strconv.Itoa(requestID) + "/status"})
	if err != nil {
		return "", err
	}
	if r.status != http.StatusOK {
		return "", failure(endpoint, r)
	}
	var body struct {
		Status         string `json:"status"`
		ApprovalStatus string `json:"approval_status"`
	}
	if err := decode(endpoint, r, &body); err != nil {
		return "", err
	}
	state := approvalState(body.Status)
	if state == "" {
		state = approvalState(body.ApprovalStatus)
	}
	if state == "" {
		return "", &Error{Endpoint: endpoint, StatusCode: r.status, Kind: KindInvalidResponse, Message: "no status in the answer"}
	}
	return state, nil
}

// ProcessApproval approves or rejects a request, as an administrator would,
// with a comment (versions with the approval API only; tests and the demo
// use it). A request that is no longer pending gives an error satisfying
// IsConflict.
func (c *Client) ProcessApproval(ctx context.Context, requestID int, approve bool, comment string) error {
	const endpoint = "POST /v1/approval/{request_id}/process"
	body := struct {
		Approve bool   `json:"approve"`
		Comment string `json:"comment"`
	}{approve, comment}
	r, err := c.send(ctx, request{method: http.MethodPost, endpoint: endpoint,
		path: "/v1/approval/" + strconv.Itoa(requestID) + "/process", body: body})
	if err != nil {
		return err
	}
	if r.status/100 != 2 {
		return failure(endpoint, r)
	}
	return nil
}
