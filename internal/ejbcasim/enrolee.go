package ejbcasim

import (
	"bytes"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"slices"
)

// Messages of enrolment for an existing end entity: CertificateRestResource
// (certificateRequest, finalizeEnrollment), SignSessionBean.createCertificateWS,
// EndEntityAuthenticationSessionBean and ExceptionHandler.
const (
	msgGeneralFailure    = "General failure."
	msgDeviceUnavailable = "Device was unavailable."
	msgWrongUserPassword = "Wrong username or password"
	msgWrongTokenType    = "Error: Wrong Token Type of user, must be 'USERGENERATED' for PKCS10/SPKAC/CRMF/CVC requests"
	msgUnsupportedReqTyp = "An unsupported certificate request type has been passed: "
	msgWrongStatusTmpl   = "Got request with status %s (%d). Status NEW, FAILED or INPROCESS required: %s."
	msgInvalidPwdTmpl    = "Got request for user with invalid password: %s."
	msgCANameUnknownTmpl = "CA with name %s doesn't exist."
	msgFinalizeUnknown   = "Could not find request with Id '%d'"
	msgFinalizeFormat    = "Invalid parameter: response_format"
	msgFinalizeWaiting   = "Request with Id '%d' is still waiting for approval"
	msgFinalizeRejected  = "Request with Id '%d' has been rejected"
	msgFinalizeExpired   = "Request with Id '%d' has expired"
	msgFinalizeFailed    = "Request with Id '%d' could not be executed"
	msgFinalizeDone      = "Enrollment with Id '%d' has already been finalized"
	msgFinalizeUserGen   = "Invalid response format. Cannot create keystore for certificate request  with user generated keys"
)

// certificateRequestTypes are the types CertificateRequestRestRequest knows.
var certificateRequestTypes = []string{"PUBLICKEY", "PKCS10", "CRMF", "SPKAC", "CVC"}

// tokenDownloadTypes are TokenDownloadType's names, which finalize's
// response_format must be (case-sensitive).
var tokenDownloadTypes = []string{"P12", "JKS", "PEM", "DER", "BCFKS"}

// authenticateLocked checks an end entity's status, then its enrolment code,
// as EndEntityAuthenticationSessionBean.authenticateUser does, and marks it
// INPROCESS so the code cannot be used twice concurrently.
func authenticateLocked(ee *endEntity, password string) *apiError {
	if !slices.Contains([]string{statusNew, statusFailed}, ee.status) {
		return errorf(http.StatusBadRequest, fmt.Sprintf(msgWrongStatusTmpl, ee.status, endEntityStatusCodes[ee.status], ee.username))
	}
	if password != ee.password {
		return errorf(http.StatusBadRequest, fmt.Sprintf(msgInvalidPwdTmpl, ee.username))
	}
	ee.status = statusInProcess
	return nil
}

// signingOffline is the answer of the resources that let CAOfflineException
// and CryptoTokenOfflineException reach ExceptionHandler: 503, with the
// CA's message or "Device was unavailable.".
func signingOffline(ca *certificateAuthority) *apiError {
	switch class, msg := offlineCause(ca); {
	case class == "":
		return nil
	case ca.offline:
		return errorf(http.StatusServiceUnavailable, msg)
	}
	return errorf(http.StatusServiceUnavailable, msgDeviceUnavailable)
}

// issuanceForLocked prepares to issue for an existing end entity with its
// own DN and subject alternative name; callers hold s.mu.
func (s *Sim) issuanceForLocked(ee *endEntity, endpoint string) (issuance, *apiError) {
	ca := s.cas[ee.caName]
	cp := s.certProfiles[ee.certProfile]
	eep := s.eeProfiles[ee.eeProfile]
	if ca == nil || cp == nil || eep == nil {
		return issuance{}, errorf(http.StatusBadRequest, fmt.Sprintf("End entity '%s' refers to a CA or profile that no longer exists.", ee.username))
	}
	in := issuance{ca: ca, profile: cp, eeProfile: eep, username: ee.username, endpoint: endpoint}
	var fail *apiError
	in.notBefore, in.notAfter, fail = s.validity(cp.validity, ca, "", "")
	if fail != nil {
		return issuance{}, fail
	}
	subject, err := encodeDN(ee.subjectDN)
	if err != nil {
		return issuance{}, errorf(http.StatusBadRequest, "Invalid subject DN of end entity: "+err.Error())
	}
	in.subject = subject
	if ee.subjectAltName != "" {
		if parsed, err := parseAltNames(ee.subjectAltName); err == nil {
			in.sans = parsed
		}
	}
	return in, nil
}

type certificateRequestRequest struct {
	CertificateRequest       string  `json:"certificate_request"`
	Username                 string  `json:"username"`
	Password                 string  `json:"password"`
	CertificateAuthorityName *string `json:"certificate_authority_name"`
	IncludeChain             bool    `json:"include_chain"`
	CertificateRequestType   *string `json:"certificate_request_type"`
}

// handleCertificateRequest serves POST /v1/certificate/certificaterequest
// (CertificateRestResource.certificateRequest): enrolment of an existing
// end entity with its one-time enrolment code. The end entity's DN (and its
// subject alternative name, when it has one) wins over the CSR's;
// afterwards the end entity is GENERATED and the code is spent. Its refusals
// are EjbcaExceptions the resource answers with 400 (unknown end entity,
// wrong status, wrong password). certificate_authority_name only picks the
// chain to return with include_chain, looked up after issuing: an unknown
// name then loses the answer of an issued certificate (404).
func (s *Sim) handleCertificateRequest(w http.ResponseWriter, r *http.Request, f Fault) {
	var req certificateRequestRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if t := req.CertificateRequestType; t == nil {
		if s.behaviour.CertificateRequestTypeRequired {
			// The 9.x converter switches on the null type.
			writeError(w, http.StatusInternalServerError, msgGeneralFailure)
			return
		}
	} else if !s.behaviour.CertificateRequestTypeRequired && !slices.Contains(certificateRequestTypes, *t) {
		writeError(w, http.StatusBadRequest, msgUnsupportedReqTyp+*t)
		return
	}
	csr, csrErr := parseCSR(req.CertificateRequest)

	s.mu.Lock()
	ee := s.endEntities[req.Username]
	var fail *apiError
	var in issuance
	switch {
	case ee == nil:
		// createCertificateWS does not tell a wrong username from a wrong
		// password (NotFoundException, an EjbcaException: 400).
		fail = errorf(http.StatusBadRequest, msgWrongUserPassword)
	case ee.tokenType != "USERGENERATED":
		fail = errorf(http.StatusBadRequest, msgWrongTokenType)
	case csrErr != nil:
		fail = errorf(http.StatusBadRequest, msgInvalidCSR)
	}
	if fail == nil {
		if ca := s.cas[ee.caName]; ca != nil {
			fail = signingOffline(ca)
		}
	}
	if fail == nil {
		fail = authenticateLocked(ee, req.Password)
	}
	if fail == nil {
		in, fail = s.issuanceForLocked(ee, "certificaterequest")
		if fail == nil {
			fail = checkKey(in.profile, csr.PublicKey)
		}
		if fail == nil {
			fail = s.uniquenessConflict(in.ca, ee.username, ee.subjectDN, csr.PublicKey)
		}
		if fail != nil {
			ee.status = statusNew
		}
	}
	s.mu.Unlock()
	if fail != nil {
		writeAPIError(w, fail)
		return
	}
	if in.sans.empty() {
		in.sans = altNamesOf(csr)
	}
	in.publicKey = csr.PublicKey
	cert, err := s.issueFor(in, f)
	s.finishEnrolment(req.Username, err == nil)
	if err != nil {
		writeError(w, http.StatusInternalServerError, msgGeneralFailure)
		return
	}
	body, err := enrollBody(cert, in.ca, "DER", false)
	if err != nil {
		writeError(w, http.StatusInternalServerError, msgGeneralFailure)
		return
	}
	resp := certificateRequestResponse{enrollResponse: body}
	if req.IncludeChain {
		// getLastCaChain(certificate_authority_name): the named CA's chain,
		// whichever CA issued.
		s.mu.Lock()
		chainCA := s.cas[deref(req.CertificateAuthorityName)]
		s.mu.Unlock()
		if chainCA == nil {
			writeError(w, http.StatusNotFound, fmt.Sprintf(msgCANameUnknownTmpl, javaString(req.CertificateAuthorityName)))
			return
		}
		for _, c := range chainCA.chain() {
			resp.CertificateChain = append(resp.CertificateChain, base64.StdEncoding.EncodeToString(c.Raw))
		}
	}
	writeJSON(w, http.StatusCreated, resp)
}

type finalizeRequest struct {
	ResponseFormat *string `json:"response_format"`
	Password       string  `json:"password"`
	KeyAlg         string  `json:"key_alg"`
	KeySpec        string  `json:"key_spec"`
}

// handleFinalize serves POST /v1/certificate/{id}/finalize
// (CertificateRestResource.finalizeEnrollment). It is not a status probe:
// on an approved add-end-entity request it enrols the end entity — the
// simulator generates the key pair — with the enrolment code given as
// password, leaving the end entity GENERATED; later calls are refused as
// already finalized. A request still waiting answers 202, a rejected,
// expired or failed one 400.
func (s *Sim) handleFinalize(w http.ResponseWriter, r *http.Request, f Fault) {
	id, ok := s.pathRequestID(w, r)
	if !ok {
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBodyBytes))
	if err != nil {
		writePlainText(w, http.StatusBadRequest, malformedJSONMessage)
		return
	}
	if t := bytes.TrimSpace(raw); len(t) == 0 || string(t) == "null" {
		// No body binds to null: the resource's first getter throws a
		// NullPointerException, which ExceptionHandler answers with 500.
		writeError(w, http.StatusInternalServerError, msgGeneralFailure)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	var req finalizeRequest
	if !decodeJSON(w, r, &req) {
		return
	}

	s.mu.Lock()
	a := s.approvals[id]
	if a == nil {
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, fmt.Sprintf(msgFinalizeUnknown, id))
		return
	}
	if req.ResponseFormat == nil || !slices.Contains(tokenDownloadTypes, *req.ResponseFormat) {
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, msgFinalizeFormat)
		return
	}
	format := *req.ResponseFormat
	st := s.statusLocked(a)
	var fail *apiError
	var ee *endEntity
	switch st {
	case approvalPending:
		s.mu.Unlock()
		writeJSON(w, http.StatusAccepted, s.waitingBody(r, id, fmt.Sprintf(msgFinalizeWaiting, id), true))
		return
	case approvalRejected:
		fail = errorf(http.StatusBadRequest, fmt.Sprintf(msgFinalizeRejected, id))
	case approvalExpired:
		fail = errorf(http.StatusBadRequest, fmt.Sprintf(msgFinalizeExpired, id))
	case approvalExecutionFailed:
		fail = errorf(http.StatusBadRequest, fmt.Sprintf(msgFinalizeFailed, id))
	default: // APPROVED, EXECUTED
		ee = s.endEntities[a.username()]
		switch {
		case ee == nil:
			fail = errorf(http.StatusNotFound, fmt.Sprintf(msgNoSuchEndEntityF, a.username()))
		case ee.status == statusGenerated:
			fail = errorf(http.StatusBadRequest, fmt.Sprintf(msgFinalizeDone, id))
		case ee.tokenType == "USERGENERATED" && format != "DER" && format != "PEM":
			fail = errorf(http.StatusBadRequest, msgFinalizeUserGen)
		case format != "DER" && format != "PEM":
			fail = errorf(http.StatusBadRequest, fmt.Sprintf("ejbcasim: finalize does not build %s keystores; ask for DER or PEM.", format))
		}
	}
	if fail == nil {
		if ca := s.cas[ee.caName]; ca != nil {
			fail = signingOffline(ca)
		}
	}
	if fail == nil {
		if fail = authenticateLocked(ee, req.Password); fail != nil {
			// finalize lets AuthLoginException and AuthStatusException reach
			// ExceptionHandler, which answers them with 403.
			fail.status = http.StatusForbidden
		}
	}
	var in issuance
	if fail == nil {
		if in, fail = s.issuanceForLocked(ee, "finalize"); fail != nil {
			ee.status = statusNew
		}
	}
	s.mu.Unlock()
	if fail != nil {
		writeAPIError(w, fail)
		return
	}
	// The key pair is generated here and dropped after signing: the
	// simulator returns no keystores.
	key, err := newKey()
	if err != nil {
		s.finishEnrolment(ee.username, false)
		writeError(w, http.StatusInternalServerError, msgGeneralFailure)
		return
	}
	in.publicKey = key.Public()
	cert, err := s.issueFor(in, f)
	s.finishEnrolment(ee.username, err == nil)
	if err != nil {
		writeError(w, http.StatusInternalServerError, msgGeneralFailure)
		return
	}
	body := enrollResponse{SerialNumber: fmt.Sprintf("%X", cert.SerialNumber), ResponseFormat: format}
	if format == "PEM" {
		body.Certificate = base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
	} else {
		body.Certificate = base64.StdEncoding.EncodeToString(cert.Raw)
	}
	writeJSON(w, http.StatusCreated, body)
}
