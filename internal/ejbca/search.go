package ejbca

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/cert-manager/cert-manager/pkg/util/pki"
)

// MaxSearchResults is the most EJBCA returns for one search.
const MaxSearchResults = 400

// SearchByUsername returns the certificates EJBCA holds for an end entity,
// newest last as EJBCA orders them. It lets a caller recover a certificate
// that EJBCA issued but whose response was lost, instead of enrolling again.
func (c *Client) SearchByUsername(ctx context.Context, username string, max int) ([]*x509.Certificate, error) {
	const endpoint = "POST /v1/certificate/search"
	if max <= 0 || max > MaxSearchResults {
		max = MaxSearchResults
	}
	body := map[string]any{
		"max_number_of_results": max,
		"criteria": []map[string]string{
			{"property": "USERNAME", "value": username, "operation": "EQUAL"},
		},
	}
	r, err := c.send(ctx, request{method: http.MethodPost, endpoint: endpoint, path: "/v1/certificate/search", body: body})
	if err != nil {
		return nil, err
	}
	if r.status != http.StatusOK {
		return nil, failure(endpoint, r)
	}
	var out struct {
		Certificates []struct {
			Certificate string `json:"certificate"`
		} `json:"certificates"`
	}
	if err := decode(endpoint, r, &out); err != nil {
		return nil, err
	}
	certs := make([]*x509.Certificate, 0, len(out.Certificates))
	for _, s := range out.Certificates {
		cert, err := parseSearchCertificate(s.Certificate)
		if err != nil {
			return nil, &Error{Endpoint: endpoint, StatusCode: r.status, Kind: KindInvalidResponse,
				Message: "a certificate in the search result does not parse", Err: err}
		}
		certs = append(certs, cert)
	}
	return certs, nil
}

// parseSearchCertificate undoes search's double base64 (base64 of the
// base64 text of the DER), accepting single base64 too.
func parseSearchCertificate(s string) (*x509.Certificate, error) {
	once, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, err
	}
	if cert, err := x509.ParseCertificate(once); err == nil {
		return cert, nil
	}
	twice, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(once)))
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(twice)
}

// FindIssued looks for a certificate EJBCA issued to username for the CSR's
// public key, not before issuedAfter (allow for EJBCA's backdating), and
// returns it with its chain, or nil when there is none. It recovers a
// certificate whose enrolment response was lost, so the caller need not enrol
// (and issue) a second time.
func (c *Client) FindIssued(ctx context.Context, username string, csrBytes []byte, issuedAfter time.Time) (*Certificate, error) {
	const endpoint = "POST /v1/certificate/search"
	csr, _, err := parseCSR(endpoint, csrBytes)
	if err != nil {
		return nil, err
	}
	certs, err := c.SearchByUsername(ctx, username, MaxSearchResults)
	if err != nil {
		return nil, err
	}
	var found *x509.Certificate
	for _, cert := range certs {
		if cert.NotBefore.Before(issuedAfter) || matchesCSR(cert, csr) != nil {
			continue
		}
		if found == nil || cert.NotBefore.After(found.NotBefore) {
			found = cert
		}
	}
	if found == nil {
		return nil, nil
	}
	chain, err := c.CAChain(ctx, found.Issuer.String())
	if err != nil {
		return nil, err
	}
	all := append([]*x509.Certificate{found}, chain...)
	bundle, err := pki.ParseSingleCertificateChain(all)
	if err != nil {
		return nil, &Error{Endpoint: endpoint, Kind: KindInvalidResponse,
			Message: "the recovered certificate and its CA chain do not form one chain", Err: err}
	}
	return &Certificate{Leaf: found, SerialNumber: fmt.Sprintf("%X", found.SerialNumber), ChainPEM: bundle.ChainPEM, CAPEM: bundle.CAPEM}, nil
}
