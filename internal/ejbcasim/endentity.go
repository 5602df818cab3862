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

// AddEndEntity stores an end entity directly, as an administrator would in
// the admin GUI (no approval), with status NEW and password as its enrolment
// code. TokenType defaults to USERGENERATED; Status is ignored.
func (s *Sim) AddEndEntity(ee EndEntity, password string) error {
	dn, err := normaliseDN(ee.SubjectDN)
	if err != nil {
		return fmt.Errorf("ejbcasim: subject DN: %w", err)
	}
	sans, err := parseAltNames(ee.SubjectAltName)
	if err != nil {
		return fmt.Errorf("ejbcasim: subject alternative name: %w", err)
	}
	token := strings.ToUpper(ee.TokenType)
	if token == "" {
		token = "USERGENERATED"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.cas[ee.CAName] == nil:
		return fmt.Errorf("ejbcasim: CA %q does not exist", ee.CAName)
	case s.certProfiles[ee.CertificateProfile] == nil:
		return fmt.Errorf("ejbcasim: certificate profile %q does not exist", ee.CertificateProfile)
	case s.eeProfiles[ee.EndEntityProfile] == nil:
		return fmt.Errorf("ejbcasim: end entity profile %q does not exist", ee.EndEntityProfile)
	case s.endEntities[ee.Username] != nil:
		return fmt.Errorf("ejbcasim: end entity %q exists", ee.Username)
	}
	s.endEntities[ee.Username] = &endEntity{
		username: ee.Username, password: password, subjectDN: dn, subjectAltName: sans.String(), email: ee.Email,
		caName: ee.CAName, certProfile: ee.CertificateProfile, eeProfile: ee.EndEntityProfile, tokenType: token, status: statusNew,
	}
	return nil
}

type addEndEntityRequest struct {
	Username               *string `json:"username"`
	Password               string  `json:"password"`
	SubjectDN              *string `json:"subject_dn"`
	SubjectAltName         string  `json:"subject_alt_name"`
	Email                  string  `json:"email"`
	CAName                 *string `json:"ca_name"`
	CertificateProfileName *string `json:"certificate_profile_name"`
	EndEntityProfileName   *string `json:"end_entity_profile_name"`
	Token                  *string `json:"token"`
	AccountBindingID       string  `json:"account_binding_id"`
}

var tokenTypes = []string{"USERGENERATED", "P12", "BCFKS", "JKS", "PEM"}

// Messages of /v1/endentity (ValidAddEndEntityRestRequest,
// EndEntityRestResource.add, ra.errorentityexist, approval.alreadyexists).
const (
	msgAddInvalid       = "Invalid AddEndEntityRestRequest content, %s can not be null or empty."
	msgAddDNMalformed   = "Invalid AddEndEntityRestRequest content, subjectDn is malformed"
	msgAddTokenUnknown  = "Invalid AddEndEntityRestRequest property, unrecognized token."
	msgAddUnknownEEP    = "Invalid request, unknown end entity profile."
	msgAddUnknownCP     = "Invalid request, unknown certificate profile."
	msgAddUnknownCA     = "Invalid request, unknown CA."
	msgAddExists        = "Entity %s already exists."
	msgApprovalExists   = "Approval request with approvalID %d already exists."
	msgAddNoPassword    = "Password cannot be empty or null."
	msgAddWaitingOld    = "Add End Entity Action have been added for approval by authorized adminstrators."
	msgAddWaiting       = "Add Entity request has been added for approval by authorized administrators."
	msgNoSuchEndEntityF = "The end entity '%s' does not exist"
)

func missing(p *string) bool { return p == nil || *p == "" }

// handleAddEndEntity serves POST /v1/endentity (EndEntityRestResource.add):
// bean validation, then the end entity profile, certificate profile and CA
// are looked up in that order; 200 with an empty body when the end entity
// is stored (status NEW), 409 when the username exists, 202 when its CA or
// certificate profile requires approval (the end entity then exists only
// once the request is approved), 400 naming the approvalID when the same
// addition already waits.
func (s *Sim) handleAddEndEntity(w http.ResponseWriter, r *http.Request, _ Fault) {
	var req addEndEntityRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	bad := func(msg string) { writeError(w, http.StatusBadRequest, msg) }
	switch {
	case missing(req.Username):
		bad(fmt.Sprintf(msgAddInvalid, "username"))
		return
	case missing(req.SubjectDN):
		bad(fmt.Sprintf(msgAddInvalid, "subjectDn"))
		return
	}
	dn, err := normaliseDN(*req.SubjectDN)
	switch {
	case err != nil:
		bad(msgAddDNMalformed)
		return
	case missing(req.CAName):
		bad(fmt.Sprintf(msgAddInvalid, "caName"))
		return
	case missing(req.CertificateProfileName):
		bad(fmt.Sprintf(msgAddInvalid, "certificateProfileName"))
		return
	case missing(req.EndEntityProfileName):
		bad(fmt.Sprintf(msgAddInvalid, "endEntityProfileName"))
		return
	case missing(req.Token):
		bad(fmt.Sprintf(msgAddInvalid, "token"))
		return
	case !slices.Contains(tokenTypes, strings.ToUpper(*req.Token)):
		bad(msgAddTokenUnknown)
		return
	}
	s.mu.Lock()
	ca := s.cas[*req.CAName]
	cp := s.certProfiles[*req.CertificateProfileName]
	eep := s.eeProfiles[*req.EndEntityProfileName]
	s.mu.Unlock()
	switch {
	case eep == nil:
		bad(msgAddUnknownEEP)
		return
	case cp == nil:
		bad(msgAddUnknownCP)
		return
	case ca == nil:
		bad(msgAddUnknownCA)
		return
	case req.Password == "":
		bad(msgAddNoPassword)
		return
	}
	sans, err := parseAltNames(req.SubjectAltName)
	if err != nil {
		bad(fmt.Sprintf("Invalid subject alternative name %q: %v.", req.SubjectAltName, err))
		return
	}
	ee := &endEntity{
		username:       *req.Username,
		password:       req.Password,
		subjectDN:      dn,
		subjectAltName: sans.String(),
		email:          req.Email,
		caName:         ca.name,
		certProfile:    cp.name,
		eeProfile:      eep.name,
		tokenType:      strings.ToUpper(*req.Token),
		status:         statusNew,
	}

	s.mu.Lock()
	if _, exists := s.endEntities[ee.username]; exists {
		s.mu.Unlock()
		writeError(w, http.StatusConflict, fmt.Sprintf(msgAddExists, ee.username))
		return
	}
	if !s.needsApproval(ca, cp) {
		s.endEntities[ee.username] = ee
		s.mu.Unlock()
		w.WriteHeader(http.StatusOK)
		return
	}
	// AddEndEntityApprovalRequest's approvalID hashes what is asked (the
	// username), so a repeated addition is recognised while it waits.
	approvalID := entityID("add end entity " + ee.username)
	if _, pending := s.pendingApprovalIDLocked(approvalID); pending {
		s.mu.Unlock()
		bad(fmt.Sprintf(msgApprovalExists, approvalID))
		return
	}
	a := s.newApprovalLocked(approvalAddEndEntity, approvalID)
	a.endEntity = ee
	s.mu.Unlock()
	if s.behaviour.PendingWithoutID {
		// The resource turns WaitingForApprovalException into a RestException:
		// the error shape, no id anywhere.
		writeError(w, http.StatusAccepted, msgAddWaitingOld)
		return
	}
	writeJSON(w, http.StatusAccepted, s.waitingBody(r, a.id, msgAddWaiting, true))
}
