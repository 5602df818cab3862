package ejbcasim

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// End entity statuses, EJBCA's names.
const (
	statusNew       = "NEW"
	statusFailed    = "FAILED"
	statusInProcess = "INPROCESS"
	statusGenerated = "GENERATED"
)

// endEntityStatusCodes are EJBCA's numeric end entity statuses.
var endEntityStatusCodes = map[string]int{statusNew: 10, statusFailed: 11, statusInProcess: 30, statusGenerated: 40}

// endEntity is an EJBCA end entity (a "user"): who may enrol, with which
// one-time enrolment code, and what their certificates say.
type endEntity struct {
	username       string
	password       string
	subjectDN      string // normalised
	subjectAltName string // EJBCA's form
	email          string
	caName         string
	certProfile    string
	eeProfile      string
	tokenType      string
	status         string
}

// EndEntity is the public view of an end entity, for tests.
type EndEntity struct {
	Username           string
	SubjectDN          string
	SubjectAltName     string
	Email              string
	CAName             string
	CertificateProfile string
	EndEntityProfile   string
	TokenType          string
	Status             string // NEW, GENERATED, ...
}

// EndEntity looks up an end entity by username.
func (s *Sim) EndEntity(username string) (EndEntity, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ee := s.endEntities[username]
	if ee == nil {
		return EndEntity{}, false
	}
	return EndEntity{
		Username:           ee.username,
		SubjectDN:          ee.subjectDN,
		SubjectAltName:     ee.subjectAltName,
		Email:              ee.email,
		CAName:             ee.caName,
		CertificateProfile: ee.certProfile,
		EndEntityProfile:   ee.eeProfile,
		TokenType:          ee.tokenType,
		Status:             ee.status,
	}, true
}

type addEndEntityRequest struct {
	Username               string `json:"username"`
	Password               string `json:"password"`
	SubjectDN              string `json:"subject_dn"`
	SubjectAltName         string `json:"subject_alt_name"`
	Email                  string `json:"email"`
	CAName                 string `json:"ca_name"`
	CertificateProfileName string `json:"certificate_profile_name"`
	EndEntityProfileName   string `json:"end_entity_profile_name"`
	Token                  string `json:"token"`
	AccountBindingID       string `json:"account_binding_id"`
}

var tokenTypes = []string{"USERGENERATED", "P12", "BCFKS", "JKS", "PEM"}

// handleAddEndEntity serves POST /v1/endentity: 200 with an empty body when
// the end entity is stored (status NEW), or 202 with a pending approval when
// its CA or certificate profile requires one; the end entity then only
// exists once the request is approved.
func (s *Sim) handleAddEndEntity(w http.ResponseWriter, r *http.Request, _ Fault) {
	var req addEndEntityRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.Token == "" {
		req.Token = "USERGENERATED"
	}
	s.mu.Lock()
	ca := s.cas[req.CAName]
	cp := s.certProfiles[req.CertificateProfileName]
	eep := s.eeProfiles[req.EndEntityProfileName]
	s.mu.Unlock()
	var fail *apiError
	switch {
	case strings.TrimSpace(req.Username) == "":
		fail = errorf(http.StatusBadRequest, "Invalid request, username is empty.")
	case ca == nil:
		fail = errorf(http.StatusBadRequest, "Invalid request, unknown CA.")
	case cp == nil:
		fail = errorf(http.StatusBadRequest, "Invalid request, unknown certificate profile.")
	case eep == nil:
		fail = errorf(http.StatusBadRequest, "Invalid request, unknown end entity profile.")
	case !slices.Contains(tokenTypes, strings.ToUpper(req.Token)):
		fail = errorf(http.StatusBadRequest, "Invalid request, unknown token type.")
	case req.Password == "":
		fail = errorf(http.StatusBadRequest, "Invalid request, password is empty.")
	}
	if fail != nil {
		writeAPIError(w, fail)
		return
	}
	dn, err := normaliseDN(req.SubjectDN)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Invalid subject DN %q: %v.", req.SubjectDN, err))
		return
	}
	sans, err := parseAltNames(req.SubjectAltName)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Invalid subject alternative name %q: %v.", req.SubjectAltName, err))
		return
	}
	ee := &endEntity{
		username:       req.Username,
		password:       req.Password,
		subjectDN:      dn,
		subjectAltName: sans.String(),
		email:          req.Email,
		caName:         ca.name,
		certProfile:    cp.name,
		eeProfile:      eep.name,
		tokenType:      strings.ToUpper(req.Token),
		status:         statusNew,
	}

	s.mu.Lock()
	if _, exists := s.endEntities[ee.username]; exists {
		s.mu.Unlock()
		writeError(w, http.StatusConflict, fmt.Sprintf("End entity with username '%s' already exists.", ee.username))
		return
	}
	if !s.needsApproval(ca, cp) {
		s.endEntities[ee.username] = ee
		s.mu.Unlock()
		w.WriteHeader(http.StatusOK)
		return
	}
	if id, pending := s.pendingAdditionLocked(ee.username); pending {
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, fmt.Sprintf("An approval request to add end entity '%s' already exists: request with Id '%d'.", ee.username, id))
		return
	}
	a := s.newApprovalLocked(approvalAddEndEntity)
	a.endEntity = ee
	s.mu.Unlock()
	writeJSON(w, http.StatusAccepted, waitingBody(r, a.id, fmt.Sprintf("Request with Id '%d' is waiting for approval.", a.id), true))
}
