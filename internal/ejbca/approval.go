package ejbca

import (
	"context"
	"net/http"
	"strconv"
	"strings"
)

// EndEntity is what AddEndEntity registers before an approved enrolment.
type EndEntity struct {
	Username               string `json:"username"`
	Password               string `json:"password"`
	SubjectDN              string `json:"subject_dn"`
	SubjectAltName         string `json:"subject_alt_name,omitempty"`
	Email                  string `json:"email,omitempty"`
	CAName                 string `json:"ca_name"`
	CertificateProfileName string `json:"certificate_profile_name,omitempty"`
	EndEntityProfileName   string `json:"end_entity_profile_name,omitempty"`
	Token                  string `json:"token"`
}

// AddEndEntity registers an end entity with a user-generated token, the
// first step of the approval flow. It returns the approval request id when
// EJBCA holds the addition for an administrator (202), or 0 when the end
// entity was added at once and can enrol now.
func (c *Client) AddEndEntity(ctx context.Context, ee EndEntity) (int, error) {
	const endpoint = "POST /v1/endentity"
	if ee.Token == "" {
		ee.Token = "USERGENERATED"
	}
	r, err := c.send(ctx, request{method: http.MethodPost, endpoint: endpoint, path: "/v1/endentity", body: ee})
	if err != nil {
		return 0, err
	}
	switch r.status {
	case http.StatusOK, http.StatusCreated, http.StatusNoContent:
		return 0, nil
	case http.StatusAccepted:
		e := failure(endpoint, r)
		if e.RequestID == 0 {
			return 0, &Error{Endpoint: endpoint, StatusCode: r.status, Kind: KindInvalidResponse,
				Message: "EJBCA accepted the end entity for approval but gave no request id: " + e.Message}
		}
		return e.RequestID, nil
	}
	return 0, failure(endpoint, r)
}

// ApprovalState is an approval request's status as EJBCA names it.
type ApprovalState string

// The states of an approval request.
const (
	ApprovalPending            ApprovalState = "PENDING"
	ApprovalApproved           ApprovalState = "APPROVED"
	ApprovalRejected           ApprovalState = "REJECTED"
	ApprovalExpired            ApprovalState = "EXPIRED"
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

// ApprovalStatus asks for an approval request's state. Where EJBCA lacks the
// approval API (404) it falls back to finalize, which answers 202 while
// pending and 400 once rejected or expired.
func (c *Client) ApprovalStatus(ctx context.Context, requestID int) (ApprovalState, error) {
	const endpoint = "GET /v1/approval/{request_id}/status"
	r, err := c.send(ctx, request{method: http.MethodGet, endpoint: endpoint,
		path: "/v1/approval/" + strconv.Itoa(requestID) + "/status"})
	if err != nil {
		return "", err
	}
	switch r.status {
	case http.StatusOK:
		var body struct {
			RequestID int    `json:"request_id"`
			Status    string `json:"status"`
		}
		if err := decode(endpoint, r, &body); err != nil {
			return "", err
		}
		if body.Status == "" {
			return "", &Error{Endpoint: endpoint, StatusCode: r.status, Kind: KindInvalidResponse, Message: "no status in the answer"}
		}
		return ApprovalState(strings.ToUpper(body.Status)), nil
	case http.StatusNotFound:
		return c.Finalize(ctx, requestID)
	}
	return "", failure(endpoint, r)
}

// Finalize asks EJBCA about an approval request through the finalize
// endpoint: pending (202), rejected or expired (400 with EJBCA's message,
// reported as that state), or approved (200).
func (c *Client) Finalize(ctx context.Context, requestID int) (ApprovalState, error) {
	const endpoint = "POST /v1/certificate/{request_id}/finalize"
	r, err := c.send(ctx, request{method: http.MethodPost, endpoint: endpoint,
		path: "/v1/certificate/" + strconv.Itoa(requestID) + "/finalize",
		body: map[string]string{"response_format": "DER"}})
	if err != nil {
		return "", err
	}
	switch r.status {
	case http.StatusOK, http.StatusCreated:
		return ApprovalApproved, nil
	case http.StatusAccepted:
		return ApprovalPending, nil
	}
	e := failure(endpoint, r)
	if r.status == http.StatusBadRequest {
		switch msg := strings.ToLower(e.Message); {
		case strings.Contains(msg, "rejected"):
			return ApprovalRejected, nil
		case strings.Contains(msg, "expired"):
			return ApprovalExpired, nil
		}
	}
	return "", e
}

// ProcessApproval approves or rejects a request, as an administrator would
// (newer EJBCA Enterprise versions only). Tests and the demo use it.
func (c *Client) ProcessApproval(ctx context.Context, requestID int, approve bool) error {
	const endpoint = "POST /v1/approval/{request_id}/process"
	action := "REJECT"
	if approve {
		action = "APPROVE"
	}
	r, err := c.send(ctx, request{method: http.MethodPost, endpoint: endpoint,
		path: "/v1/approval/" + strconv.Itoa(requestID) + "/process", body: map[string]string{"action": action}})
	if err != nil {
		return err
	}
	if r.status/100 != 2 {
		return failure(endpoint, r)
	}
	return nil
}
