package ejbca

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// Revocation reasons EJBCA accepts.
const (
	ReasonUnspecified          = "UNSPECIFIED"
	ReasonKeyCompromise        = "KEY_COMPROMISE"
	ReasonCACompromise         = "CA_COMPROMISE"
	ReasonAffiliationChanged   = "AFFILIATION_CHANGED"
	ReasonSuperseded           = "SUPERSEDED"
	ReasonCessationOfOperation = "CESSATION_OF_OPERATION"
	ReasonCertificateHold      = "CERTIFICATE_HOLD"
	ReasonPrivilegesWithdrawn  = "PRIVILEGES_WITHDRAWN"
	ReasonAACompromise         = "AA_COMPROMISE"
	ReasonNotRevoked           = "NOT_REVOKED"
)

// RevocationStatus is EJBCA's answer about a certificate's revocation
// (RevokeStatusRestResponse, whose null fields EJBCA leaves out).
type RevocationStatus struct {
	IssuerDN         string `json:"issuer_dn"`
	SerialNumber     string `json:"serial_number"`
	Revoked          bool   `json:"revoked"`
	RevocationReason string `json:"revocation_reason"`
	// RevocationDate is "" while the certificate is not revoked.
	RevocationDate string `json:"revocation_date"`
	// Message is set by revoke ("Successfully revoked"), never by
	// revocationstatus.
	Message string `json:"message"`
}

func certificatePath(issuerDN, serial, action string) string {
	return "/v1/certificate/" + url.PathEscape(issuerDN) + "/" + url.PathEscape(serial) + "/" + action
}

// Revoke revokes a certificate, identified by its issuer's DN and serial
// (hex). A certificate already revoked (or, for NOT_REVOKED, not on hold)
// gives an error satisfying IsConflict; a revocation held for approval (202)
// one whose Kind is KindPending, carrying the request id in RequestID when
// EJBCA gave one. The same revocation asked again while the first waits for
// approval is EJBCA's 400 "approval already exists"
// (ApprovalSessionBean.addApprovalRequest): that is KindPending too, with
// no request id (the number in EJBCA's message is the approval id, a hash).
func (c *Client) Revoke(ctx context.Context, issuerDN, serial, reason string, date time.Time) (*RevocationStatus, error) {
	const endpoint = "PUT /v1/certificate/{issuer_dn}/{serial}/revoke"
	q := url.Values{"reason": {reason}}
	if !date.IsZero() {
		q.Set("date", date.UTC().Format(time.RFC3339))
	}
	r, err := c.send(ctx, request{method: http.MethodPut, endpoint: endpoint, path: certificatePath(issuerDN, serial, "revoke"), query: q})
	if err != nil {
		return nil, err
	}
	if r.status != http.StatusOK {
		e := failure(endpoint, r)
		if r.status == http.StatusBadRequest && approvalExists.MatchString(e.Message) {
			e.Kind = KindPending
		}
		return nil, e
	}
	var s RevocationStatus
	if err := decode(endpoint, r, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// RevocationStatus reports whether a certificate is revoked.
func (c *Client) RevocationStatus(ctx context.Context, issuerDN, serial string) (*RevocationStatus, error) {
	const endpoint = "GET /v1/certificate/{issuer_dn}/{serial}/revocationstatus"
	r, err := c.send(ctx, request{method: http.MethodGet, endpoint: endpoint, path: certificatePath(issuerDN, serial, "revocationstatus")})
	if err != nil {
		return nil, err
	}
	if r.status != http.StatusOK {
		return nil, failure(endpoint, r)
	}
	var s RevocationStatus
	if err := decode(endpoint, r, &s); err != nil {
		return nil, err
	}
	return &s, nil
}
