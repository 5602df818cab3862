package ejbcasim

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

const msgInvalidCSR = "Invalid certificate request"

type pkcs10EnrollRequest struct {
	CertificateRequest       string  `json:"certificate_request"`
	CertificateAuthorityName *string `json:"certificate_authority_name"`
	CertificateProfileName   *string `json:"certificate_profile_name"`
	EndEntityProfileName     *string `json:"end_entity_profile_name"`
	Username                 string  `json:"username"`
	Password                 string  `json:"password"`
	IncludeChain             bool    `json:"include_chain"`
	Email                    string  `json:"email"`
	AccountBindingID         string  `json:"account_binding_id"`
	ResponseFormat           string  `json:"response_format"`
	StartTime                string  `json:"start_time"`
	EndTime                  string  `json:"end_time"`
}

// enrollResponse is the 201 body of pkcs10enroll: certificate_chain is left
// out unless include_chain was asked for.
type enrollResponse struct {
	Certificate      string   `json:"certificate"`
	SerialNumber     string   `json:"serial_number"`
	ResponseFormat   string   `json:"response_format"`
	CertificateChain []string `json:"certificate_chain,omitempty"`
}

// certificateRequestResponse is the 201 body of certificaterequest: the same,
// but certificate_chain is null (not absent) when not asked for.
type certificateRequestResponse struct {
	enrollResponse
	CertificateChain []string `json:"certificate_chain"`
}

// parseCSR reads a PKCS#10 request given as PEM or bare base64 DER and checks
// its signature.
func parseCSR(text string) (*x509.CertificateRequest, error) {
	var der []byte
	if block, _ := pem.Decode([]byte(text)); block != nil {
		if block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST" {
			return nil, fmt.Errorf("unexpected PEM block %q", block.Type)
		}
		der = block.Bytes
	} else {
		compact := strings.Join(strings.Fields(text), "")
		var err error
		if der, err = base64.StdEncoding.DecodeString(compact); err != nil {
			if der, err = base64.RawStdEncoding.DecodeString(compact); err != nil {
				return nil, err
			}
		}
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, err
	}
	return csr, nil
}

// checkKey applies the certificate profile's key restrictions.
func checkKey(p *certificateProfile, pub crypto.PublicKey) *apiError {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits < p.minRSABits {
			return errorf(http.StatusBadRequest, fmt.Sprintf("Illegal key length, not authorized by certificate profile: %d.", bits))
		}
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return errorf(http.StatusBadRequest, "Illegal key algorithm, not authorized by certificate profile: ECDSA "+k.Curve.Params().Name+".")
		}
	case ed25519.PublicKey:
	default:
		return errorf(http.StatusBadRequest, fmt.Sprintf("Illegal key algorithm, not authorized by certificate profile: %T.", pub))
	}
	return nil
}

// approvalRefusal is pkcs10enroll's answer when approvals are enabled: it
// never waits (202), it refuses.
func approvalRefusal(ca *certificateAuthority, cp *certificateProfile) *apiError {
	return errorf(http.StatusBadRequest, fmt.Sprintf(
		"Single transaction enrollment request rejected since approvals are enabled for this CA (%d) or Certificate Profile (%d).", ca.id, cp.id))
}

// javaString is how Java prints a string that may be null.
func javaString(p *string) string {
	if p == nil {
		return "null"
	}
	return *p
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// offlineCause is the exception EJBCA raises when the CA, or its crypto
// token, cannot sign: the CA's status check in the sign session
// (CAOfflineException) or the crypto token's (CryptoTokenOfflineException,
// text of error.catokenoffline). "" when the CA can sign; callers hold s.mu.
func offlineCause(ca *certificateAuthority) (class, message string) {
	switch {
	case ca.offline:
		return "org.cesecore.certificates.ca.CAOfflineException", fmt.Sprintf("Signing CA '%s' is not active.", ca.dn)
	case ca.tokenOffline:
		return "org.cesecore.keys.token.CryptoTokenOfflineException", fmt.Sprintf("CA token is offline for CA '%s'.", ca.dn)
	}
	return "", ""
}

// enrollOffline is pkcs10enroll's answer for an offline CA or crypto token:
// createCertificateRest wraps the cause in an EjbcaException (whose message
// is then the cause's class and message) and the resource answers 400.
func enrollOffline(ca *certificateAuthority) *apiError {
	class, msg := offlineCause(ca)
	if class == "" {
		return nil
	}
	return errorf(http.StatusBadRequest, class+": "+msg)
}

// handlePKCS10Enroll serves POST /v1/certificate/pkcs10enroll: validate (CA,
// certificate profile, end entity profile, CSR, profile restrictions,
// approvals), create or update the end entity, issue, 201.
func (s *Sim) handlePKCS10Enroll(w http.ResponseWriter, r *http.Request, f Fault) {
	var req pkcs10EnrollRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if !s.behaviour.EndTime {
		// Versions before 9.3.3 have no such fields and ignore them.
		req.StartTime, req.EndTime = "", ""
	}
	s.mu.Lock()
	ca := s.cas[deref(req.CertificateAuthorityName)]
	cp := s.certProfiles[deref(req.CertificateProfileName)]
	eep := s.eeProfiles[deref(req.EndEntityProfileName)]
	var approvalNeeded bool
	var profileValidity time.Duration
	if ca != nil && cp != nil {
		approvalNeeded = s.needsApproval(ca, cp)
		profileValidity = cp.validity
	}
	s.mu.Unlock()
	switch {
	case ca == nil:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("CA with name \"%s\" doesn't exist", javaString(req.CertificateAuthorityName)))
		return
	case cp == nil:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Certificate profile with name \"%s\" doesn't exist", javaString(req.CertificateProfileName)))
		return
	case eep == nil:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("End Entity Profile of name \"%s\" was not found", javaString(req.EndEntityProfileName)))
		return
	}
	csr, err := parseCSR(req.CertificateRequest)
	if err != nil {
		writeError(w, http.StatusBadRequest, msgInvalidCSR)
		return
	}
	if fail := checkKey(cp, csr.PublicKey); fail != nil {
		writeAPIError(w, fail)
		return
	}
	dn, err := dnOfRaw(csr.RawSubject)
	if err != nil {
		writeError(w, http.StatusBadRequest, msgInvalidCSR)
		return
	}
	if approvalNeeded {
		writeAPIError(w, approvalRefusal(ca, cp))
		return
	}
	if strings.TrimSpace(req.Username) == "" {
		writeError(w, http.StatusBadRequest, "Invalid request, username is empty.")
		return
	}
	format := strings.ToUpper(req.ResponseFormat)
	if format == "" {
		format = "DER"
	}
	if format != "DER" && format != "PKCS7" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Invalid response format '%s', expected DER or PKCS7.", req.ResponseFormat))
		return
	}
	notBefore, notAfter, fail := s.validity(profileValidity, ca, req.StartTime, req.EndTime)
	if fail != nil {
		writeAPIError(w, fail)
		return
	}
	subject, err := encodeDN(dn)
	if err != nil {
		writeError(w, http.StatusBadRequest, msgInvalidCSR)
		return
	}
	sans := altNamesOf(csr)

	password := req.Password
	if password == "" {
		password = rand.Text()
	}
	s.mu.Lock()
	if fail := enrollOffline(ca); fail != nil {
		s.mu.Unlock()
		writeAPIError(w, fail)
		return
	}
	if fail := s.uniquenessConflict(ca, req.Username, dn, csr.PublicKey); fail != nil {
		s.mu.Unlock()
		writeAPIError(w, fail)
		return
	}
	// EJBCA creates the end entity, or updates it (profiles included).
	s.endEntities[req.Username] = &endEntity{
		username:       req.Username,
		password:       password,
		subjectDN:      dn,
		subjectAltName: sans.String(),
		email:          req.Email,
		caName:         ca.name,
		certProfile:    cp.name,
		eeProfile:      eep.name,
		tokenType:      "USERGENERATED",
		status:         statusInProcess,
	}
	s.mu.Unlock()

	cert, err := s.issueFor(issuance{
		ca: ca, profile: cp, eeProfile: eep, username: req.Username, endpoint: "pkcs10enroll",
		subject: subject, sans: sans, publicKey: csr.PublicKey, notBefore: notBefore, notAfter: notAfter,
		accountBindingID: req.AccountBindingID,
	}, f)
	s.finishEnrolment(req.Username, err == nil)
	if err != nil {
		writeError(w, http.StatusInternalServerError, msgGeneralFailure)
		return
	}
	body, err := enrollBody(cert, ca, format, req.IncludeChain)
	if err != nil {
		writeError(w, http.StatusInternalServerError, msgGeneralFailure)
		return
	}
	writeJSON(w, http.StatusCreated, body)
}

// finishEnrolment settles the end entity after an issuance attempt:
// GENERATED on success, FAILED otherwise.
func (s *Sim) finishEnrolment(username string, issued bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ee := s.endEntities[username]; ee != nil && ee.status == statusInProcess {
		ee.status = statusFailed
		if issued {
			ee.status = statusGenerated
		}
	}
}

// issueFor issues, honouring the MismatchedKey fault (a certificate for a
// fresh key instead of the CSR's).
func (s *Sim) issueFor(in issuance, f Fault) (*x509.Certificate, error) {
	if f.MismatchedKey {
		other, err := newKey()
		if err != nil {
			return nil, err
		}
		in.publicKey = other.Public()
	}
	return s.issue(in)
}

// enrollBody encodes an issued certificate as EJBCA answers it: the leaf
// as DER (or a PKCS#7 bundle) in base64, the serial in upper-case hex and,
// when asked for, the CA chain (issuing CA first, root last) in base64 DER.
func enrollBody(cert *x509.Certificate, ca *certificateAuthority, format string, includeChain bool) (enrollResponse, error) {
	chain := ca.chain()
	body := enrollResponse{
		Certificate:    base64.StdEncoding.EncodeToString(cert.Raw),
		SerialNumber:   fmt.Sprintf("%X", cert.SerialNumber),
		ResponseFormat: format,
	}
	if format == "PKCS7" {
		p7, err := pkcs7CertsOnly(append([]*x509.Certificate{cert}, chain...))
		if err != nil {
			return enrollResponse{}, errors.New("PKCS#7 encoding failed: " + err.Error())
		}
		body.Certificate = base64.StdEncoding.EncodeToString(p7)
	}
	if includeChain {
		body.CertificateChain = make([]string, len(chain))
		for i, c := range chain {
			body.CertificateChain[i] = base64.StdEncoding.EncodeToString(c.Raw)
		}
	}
	return body, nil
}
