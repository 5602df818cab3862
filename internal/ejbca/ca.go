package ejbca

import (
	"context"
	"crypto/x509"
	"net/http"
	"net/url"
	"strings"

	"github.com/cert-manager/cert-manager/pkg/util/pki"
)

// ServerStatus is what the unauthenticated status endpoint reports.
type ServerStatus struct {
	Status   string `json:"status"`
	Version  string `json:"version"`
	Revision string `json:"revision"`
}

// Status proves EJBCA is reachable. It checks no credentials, so it is not a
// health check on its own: use ListCAs for that.
func (c *Client) Status(ctx context.Context) (*ServerStatus, error) {
	const endpoint = "GET /v1/certificate/status"
	r, err := c.send(ctx, request{method: http.MethodGet, endpoint: endpoint, path: "/v1/certificate/status"})
	if err != nil {
		return nil, err
	}
	if r.status != http.StatusOK {
		return nil, failure(endpoint, r)
	}
	var s ServerStatus
	if err := decode(endpoint, r, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// CA is one certificate authority of EJBCA's CA list.
type CA struct {
	ID        int    `json:"id"`
	Name      string `json:"name"`
	SubjectDN string `json:"subject_dn"`
	// IssuerDN is, in EJBCA's answer, the DN of the root at the top of the
	// CA's chain, not necessarily its direct issuer.
	IssuerDN       string `json:"issuer_dn"`
	ExpirationDate string `json:"expiration_date"`
	External       bool   `json:"external"`
}

// ListCAs is the authenticated health check: it needs valid credentials and
// shows which CA names exist.
func (c *Client) ListCAs(ctx context.Context) ([]CA, error) {
	r, err := c.send(ctx, request{method: http.MethodGet, endpoint: endpointListCAs, path: "/v1/ca"})
	if err != nil {
		return nil, err
	}
	return parseCAs(r)
}

const endpointListCAs = "GET /v1/ca"

func parseCAs(r *response) ([]CA, error) {
	if r.status != http.StatusOK {
		return nil, failure(endpointListCAs, r)
	}
	var body struct {
		CAs []CA `json:"certificate_authorities"`
	}
	if err := decode(endpointListCAs, r, &body); err != nil {
		return nil, err
	}
	return body.CAs, nil
}

// CAChain downloads a CA's certificate chain, identified by subject DN.
func (c *Client) CAChain(ctx context.Context, subjectDN string) ([]*x509.Certificate, error) {
	const endpoint = "GET /v1/ca/{subject_dn}/certificate/download"
	r, err := c.send(ctx, request{method: http.MethodGet, endpoint: endpoint,
		path: "/v1/ca/" + url.PathEscape(subjectDN) + "/certificate/download"})
	if err != nil {
		return nil, err
	}
	if r.status != http.StatusOK {
		return nil, failure(endpoint, r)
	}
	certs, err := pki.DecodeX509CertificateChainBytes(r.body)
	if err != nil {
		return nil, &Error{Endpoint: endpoint, StatusCode: r.status, Kind: KindInvalidResponse,
			Message: "the CA chain is not PEM certificates", Err: err}
	}
	return certs, nil
}

// CertificateProfileInfo is what EJBCA tells of a certificate profile.
type CertificateProfileInfo struct {
	ID int `json:"certificate_profile_id"`
	// AvailableCAs are the names of the CAs the profile may issue from.
	AvailableCAs []string `json:"available_cas"`
}

// CertificateProfile asks EJBCA for a certificate profile (GET
// /v2/certificate/profile/{name}; the EJBCA version that added it is not
// pinned down, so its absence is expected). A name EJBCA does not
// know, or these credentials may not use, satisfies IsNotFound; an EJBCA
// without this resource, IsUnsupported.
func (c *Client) CertificateProfile(ctx context.Context, name string) (*CertificateProfileInfo, error) {
	const endpoint = "GET /v2/certificate/profile/{profile_name}"
	r, err := c.send(ctx, request{method: http.MethodGet, endpoint: endpoint, path: "/v2/certificate/profile/" + url.PathEscape(name)})
	if err != nil {
		return nil, err
	}
	if r.status != http.StatusOK {
		e := failure(endpoint, r)
		if r.status == http.StatusBadRequest && strings.Contains(e.Message, "unknown certificate profile") {
			e.Kind = KindNotFound
		}
		return nil, e
	}
	var info CertificateProfileInfo
	if err := decode(endpoint, r, &info); err != nil {
		return nil, err
	}
	return &info, nil
}
