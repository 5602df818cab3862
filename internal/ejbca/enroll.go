package ejbca

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/cert-manager/cert-manager/pkg/util/pki"
)

// endTimeLayout is the format of pkcs10enroll's start_time/end_time, in UTC.
const endTimeLayout = "2006-01-02 15:04:05"

// EnrollRequest is a one-call enrolment (pkcs10enroll).
type EnrollRequest struct {
	// CSR is the PKCS#10 request, PEM or DER.
	CSR                    []byte
	CAName                 string
	CertificateProfileName string
	EndEntityProfileName   string
	// Username is the end entity; EJBCA creates it or updates it.
	Username string
	// Password is the enrolment code; EJBCA picks a random one when empty.
	Password string
	Email    string
	// NotAfter, when set, asks for this end of validity (EJBCA 9.3.3+, and
	// only if the certificate profile allows validity override).
	NotAfter time.Time
	// ParsedCSR, when set, is CSR as the caller already parsed it, so it is
	// not parsed twice; it is used only if it is the same DER, and its
	// signature is checked here all the same.
	ParsedCSR *x509.CertificateRequest
}

// enrollBody is pkcs10enroll's request. Both profile names are always sent:
// EJBCA resolves a missing one as the name "null" and refuses it.
type enrollBody struct {
	CertificateRequest       string `json:"certificate_request"`
	CertificateAuthorityName string `json:"certificate_authority_name"`
	CertificateProfileName   string `json:"certificate_profile_name"`
	EndEntityProfileName     string `json:"end_entity_profile_name"`
	Username                 string `json:"username"`
	Password                 string `json:"password,omitempty"`
	Email                    string `json:"email,omitempty"`
	IncludeChain             bool   `json:"include_chain"`
	ResponseFormat           string `json:"response_format,omitempty"`
	EndTime                  string `json:"end_time,omitempty"`
}

// certificateRequestBody is certificaterequest's request. The type is always
// sent: some 9.x builds throw a NullPointerException (500) without it.
type certificateRequestBody struct {
	CertificateRequest       string `json:"certificate_request"`
	Username                 string `json:"username"`
	Password                 string `json:"password"`
	CertificateAuthorityName string `json:"certificate_authority_name"`
	IncludeChain             bool   `json:"include_chain"`
	CertificateRequestType   string `json:"certificate_request_type"`
}

// Certificate is an issued certificate, checked: it parses, its chain was
// ordered by signature, and its public key is the CSR's.
type Certificate struct {
	Leaf *x509.Certificate
	// SerialNumber as EJBCA reported it (upper-case hex).
	SerialNumber string
	// ChainPEM is the leaf followed by the intermediates, leaf first.
	ChainPEM []byte
	// CAPEM is the root at the top of the chain, when EJBCA sent one.
	CAPEM []byte
}

type certificateBody struct {
	Certificate      string   `json:"certificate"`
	SerialNumber     string   `json:"serial_number"`
	ResponseFormat   string   `json:"response_format"`
	CertificateChain []string `json:"certificate_chain"`
}

// Enroll asks EJBCA to issue a certificate for the CSR in one call. When the
// CA or profile needs approval, the error satisfies IsApprovalRequired and
// the caller should switch to AddEndEntity.
func (c *Client) Enroll(ctx context.Context, req EnrollRequest) (*Certificate, error) {
	body := enrollBody{
		CertificateAuthorityName: req.CAName,
		CertificateProfileName:   req.CertificateProfileName,
		EndEntityProfileName:     req.EndEntityProfileName,
		Username:                 req.Username,
		Password:                 req.Password,
		Email:                    req.Email,
		IncludeChain:             true,
		ResponseFormat:           "DER",
	}
	if !req.NotAfter.IsZero() {
		body.EndTime = req.NotAfter.UTC().Format(endTimeLayout)
	}
	return c.issue(ctx, "POST /v1/certificate/pkcs10enroll", "/v1/certificate/pkcs10enroll", req.CSR, req.ParsedCSR, func(csrPEM string) any {
		body.CertificateRequest = csrPEM
		return body
	})
}

// EnrollForEndEntityRequest enrols a CSR for an end entity that already
// exists (added by AddEndEntity and approved), with its enrolment password.
// CAName is required: EJBCA looks the CA up for the chain only after it has
// issued, so a wrong or missing name would issue a certificate and then fail.
type EnrollForEndEntityRequest struct {
	CSR      []byte
	Username string
	Password string
	CAName   string
}

// endpointCertificateRequest is EnrollForEndEntity's endpoint in errors and metrics.
const endpointCertificateRequest = "POST /v1/certificate/certificaterequest"

// endEntityMissing matches the answers EJBCA gives certificaterequest for a
// username it does not know: "Wrong username or password" (the 400 of
// SignSessionBean.createCertificateWS, message "ra.wrongusernameorpassword"),
// or, where NoSuchEndEntityException reaches the exception handler (404),
// "Got request for nonexisting user: X" and similar.
var endEntityMissing = regexp.MustCompile(`(?i)wrong username or password|non-?existing user|could not find (username|end entity)|end entity .*(does not exist|not found)|user .* not found`)

// EnrollForEndEntity issues a certificate for an existing end entity
// (certificaterequest, always with "certificate_request_type":"PKCS10"). The
// end entity's stored subject wins over the CSR's. While the end entity does
// not exist (an addition still waiting for approval, or one refused) the
// error satisfies IsEndEntityNotFound, so this call is also the probe of the
// approval flow where no approval API or request id is available.
func (c *Client) EnrollForEndEntity(ctx context.Context, req EnrollForEndEntityRequest) (*Certificate, error) {
	if strings.TrimSpace(req.CAName) == "" {
		return nil, &Error{Endpoint: endpointCertificateRequest, Kind: KindPermanent,
			Message: "EnrollForEndEntity needs the CA name: EJBCA reads it only after issuing, for the chain"}
	}
	body := certificateRequestBody{
		CertificateAuthorityName: req.CAName,
		Username:                 req.Username,
		Password:                 req.Password,
		IncludeChain:             true,
		CertificateRequestType:   "PKCS10",
	}
	cert, err := c.issue(ctx, endpointCertificateRequest, "/v1/certificate/certificaterequest", req.CSR, nil, func(csrPEM string) any {
		body.CertificateRequest = csrPEM
		return body
	})
	var e *Error
	if errors.As(err, &e) && (e.StatusCode == http.StatusBadRequest || e.Kind == KindNotFound) && endEntityMissing.MatchString(e.Message) {
		e.Kind = KindNotFound
	}
	return cert, err
}

// issue checks the CSR (PEM or DER) before anything is sent, posts the body
// build makes with the CSR's PEM and checks what comes back against it.
func (c *Client) issue(ctx context.Context, endpoint, path string, rawCSR []byte, parsed *x509.CertificateRequest, build func(csrPEM string) any) (*Certificate, error) {
	csr, csrPEM, err := parseCSRReusing(endpoint, rawCSR, parsed)
	if err != nil {
		return nil, err
	}
	r, err := c.send(ctx, request{method: http.MethodPost, endpoint: endpoint, path: path, body: build(csrPEM)})
	if err != nil {
		return nil, err
	}
	if r.status/100 != 2 {
		return nil, failure(endpoint, r)
	}
	// A 2xx means EJBCA issued. An answer that cannot be read is treated
	// like one that never arrived: retryable, and the caller must find the
	// certificate by search before it ever enrols again.
	var out certificateBody
	if err := decode(endpoint, r, &out); err != nil {
		return nil, unreadableSuccess(endpoint, r.status, err)
	}
	cert, err := c.parseIssued(out)
	if err != nil {
		return nil, unreadableSuccess(endpoint, r.status, err)
	}
	if err := matchesCSR(cert.Leaf, csr); err != nil {
		return nil, &Error{Endpoint: endpoint, StatusCode: r.status, Kind: KindInvalidResponse, Message: err.Error()}
	}
	return cert, nil
}

// parseCSR accepts PEM or DER and returns the parsed request and its PEM.
func parseCSR(endpoint string, raw []byte) (*x509.CertificateRequest, string, error) {
	return parseCSRReusing(endpoint, raw, nil)
}

// parseCSRReusing is parseCSR taking parsed, when it holds the same DER,
// instead of parsing again; the signature is checked either way.
func parseCSRReusing(endpoint string, raw []byte, parsed *x509.CertificateRequest) (*x509.CertificateRequest, string, error) {
	der := raw
	if block, _ := pem.Decode(raw); block != nil {
		der = block.Bytes
	}
	csr := parsed
	if csr == nil || !bytes.Equal(csr.Raw, der) {
		var err error
		if csr, err = x509.ParseCertificateRequest(der); err != nil {
			return nil, "", &Error{Endpoint: endpoint, Kind: KindPermanent, Message: "the certificate signing request does not parse", Err: err}
		}
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, "", &Error{Endpoint: endpoint, Kind: KindPermanent, Message: "the certificate signing request's signature is invalid", Err: err}
	}
	return csr, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), nil
}

// parseIssued decodes the base64 DER leaf and chain and orders them by
// signature: EJBCA's chain order is not guaranteed.
func (c *Client) parseIssued(b certificateBody) (*Certificate, error) {
	leaf, err := parseBase64Certificate(b.Certificate)
	if err != nil {
		return nil, fmt.Errorf("the issued certificate: %w", err)
	}
	chainPEM, caPEM, err := c.chains.order(leaf, b.CertificateChain, func(i int, s string) (*x509.Certificate, error) {
		ca, err := parseBase64Certificate(s)
		if err != nil {
			return nil, fmt.Errorf("certificate %d of the chain: %w", i+1, err)
		}
		return ca, nil
	})
	if err != nil {
		return nil, err
	}
	serial := b.SerialNumber
	if serial == "" {
		serial = fmt.Sprintf("%X", leaf.SerialNumber)
	}
	return &Certificate{Leaf: leaf, SerialNumber: serial, ChainPEM: chainPEM, CAPEM: caPEM}, nil
}

func parseBase64Certificate(s string) (*x509.Certificate, error) {
	der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("not base64: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("not a DER certificate: %w", err)
	}
	return cert, nil
}

// matchesCSR refuses a certificate for another key than the CSR's: storing
// it would hand out a certificate its owner cannot use.
func matchesCSR(leaf *x509.Certificate, csr *x509.CertificateRequest) error {
	ok, err := pki.PublicKeyMatchesCertificate(csr.PublicKey, leaf)
	if err != nil {
		return fmt.Errorf("comparing the certificate's public key with the CSR's: %w", err)
	}
	if !ok {
		return fmt.Errorf("the certificate EJBCA returned (serial %X) does not carry the CSR's public key", leaf.SerialNumber)
	}
	return nil
}

// unreadableSuccess is a 2xx from an issuing call whose body could not be
// read: EJBCA probably issued, so it is retryable through recovery.
func unreadableSuccess(endpoint string, status int, err error) *Error {
	msg := err.Error()
	var e *Error
	if errors.As(err, &e) {
		msg = e.Message
	}
	return &Error{Endpoint: endpoint, StatusCode: status, Kind: KindRetryable, UnreadableSuccess: true,
		Message: fmt.Sprintf("EJBCA answered %d, so it probably issued, but the answer could not be read (%s); the certificate is looked up by search before any new enrolment", status, msg)}
}
