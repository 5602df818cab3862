package ejbcasim

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// maxSearchResults is EJBCA's cap on max_number_of_results.
const maxSearchResults = 400

// searchCriterion is one search condition as sent. Pointers tell a missing
// field (null in Java) from an empty one.
type searchCriterion struct {
	Property  *string `json:"property"`
	Value     *string `json:"value"`
	Operation *string `json:"operation"`
}

// Search properties of EJBCA's SearchCertificateCriteriaRestRequest
// (CriteriaProperty), the only ones v1 and v2 search accept.
const (
	propQuery     = "QUERY"
	propAccountID = "EXTERNAL_ACCOUNT_BINDING_ID"
	propEEProfile = "END_ENTITY_PROFILE"
	propCProfile  = "CERTIFICATE_PROFILE"
	propCA        = "CA"
	propStatus    = "STATUS"
	propIssued    = "ISSUED_DATE"
	propExpire    = "EXPIRE_DATE"
	propRevoked   = "REVOCATION_DATE"
)

var searchPropertyNames = []string{propQuery, propAccountID, propEEProfile, propCProfile, propCA, propStatus, propIssued, propExpire, propRevoked}

var searchOperations = []string{"EQUAL", "LIKE", "AFTER", "BEFORE"}

// Certificate statuses (CertificateConstants) and the STATUS values that
// select them or a revocation reason (RevokedCertInfo).
const (
	certActive   = 20
	certNotified = 21
	certRevoked  = 40
)

var searchStatuses = map[string]int{
	"CERT_ACTIVE":                            certActive,
	"CERT_NOTIFIEDABOUTEXPIRATION":           certNotified,
	"CERT_REVOKED":                           certRevoked,
	"REVOCATION_REASON_UNSPECIFIED":          0,
	"REVOCATION_REASON_KEYCOMPROMISE":        1,
	"REVOCATION_REASON_CACOMPROMISE":         2,
	"REVOCATION_REASON_AFFILIATIONCHANGED":   3,
	"REVOCATION_REASON_SUPERSEDED":           4,
	"REVOCATION_REASON_CESSATIONOFOPERATION": 5,
	"REVOCATION_REASON_CERTIFICATEHOLD":      6,
	"REVOCATION_REASON_REMOVEFROMCRL":        8,
	"REVOCATION_REASON_PRIVILEGESWITHDRAWN":  9,
	"REVOCATION_REASON_AACOMPROMISE":         10,
}

// searchDate is the only date form the criteria validator accepts: ISO 8601
// in UTC with a literal Z and no fractions.
var searchDate = regexp.MustCompile(`^[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$`)

// Validation messages of EJBCA's REST module (ValidationMessages.properties).
const (
	msgCriteriaNull        = "Invalid criteria value, can not be null."
	msgCriteriaEmpty       = "Invalid criteria value, can not be empty."
	msgMultipleQueries     = "Invalid criteria value, multiple 'QUERY' properties are not allowed."
	msgCriterionNull       = "Invalid search criteria content, can not be null."
	msgPropertyEmpty       = "Invalid search criteria content, property can not be null or empty."
	msgValueEmpty          = "Invalid search criteria content, value can not be null or empty."
	msgOperationEmpty      = "Invalid search criteria content, operation can not be null or empty."
	msgPropertyUnknown     = "Invalid search criteria's property, unrecognized."
	msgOperationUnknown    = "Invalid search criteria's operation, unrecognized."
	msgOperationNotString  = "Invalid search criteria's operation, should be EQUAL or LIKE."
	msgOperationNotEqual   = "Invalid search criteria's operation, should be EQUAL."
	msgOperationNotDate    = "Invalid search criteria's operation, should be AFTER or BEFORE."
	msgValueNotStatus      = "Invalid search criteria content, value does not contain certificate status."
	msgValueNotDate        = "Invalid search criteria content, value does not contain proper date."
	msgMaxResultsNull      = "Invalid maximum number of results, can not be null."
	msgMaxResultsNotPos    = "Invalid maximum number of results, can not be less or equal to zero."
	msgMaxResultsTooMany   = "Invalid maximum number of results, can not be more than 400."
	msgPagination          = "Page size and current page must be greater 0."
	msgUnknownSearchEEP    = "Invalid search criteria content, unknown end entity profile."
	msgUnknownSearchCP     = "Invalid search criteria content, unknown certificate profile."
	msgUnknownSearchCA     = "Invalid search criteria content, unknown CA."
	msgStatusRepetition    = "Invalid criteria value, 'STATUS' property repetition."
	msgOverlappingDateTmpl = "Invalid criteria value, overlapping properties '%s' with '%s' operation."
)

// criterion is a validated condition.
type criterion struct {
	property, value, operation string
	date                       time.Time
}

// certQuery is a validated search: conditions of different properties are
// AND-ed; profiles, CAs and statuses of the same property are OR-ed.
type certQuery struct {
	query                           *criterion
	accountIDs                      []criterion
	eeProfiles, certProfiles, caIDs []string
	statuses, reasons               []int
	dates                           []criterion
}

// parseCriteria validates the criteria as EJBCA's bean validators and search
// resource do (SearchCertificateCriteriaRestRequest,
// ValidSearchCertificateCriteriaRestRequest(List),
// CertificateRestResource's reference check), in their order; callers hold
// s.mu for the profile and CA look-ups.
func (s *Sim) parseCriteriaLocked(raw *[]*searchCriterion) (*certQuery, *apiError) {
	bad := func(msg string) (*certQuery, *apiError) { return nil, errorf(http.StatusBadRequest, msg) }
	if raw == nil {
		return bad(msgCriteriaNull)
	}
	if len(*raw) == 0 {
		return bad(msgCriteriaEmpty)
	}
	var list []criterion
	for _, c := range *raw {
		if c == nil {
			return bad(msgCriterionNull)
		}
		if c.Property == nil || *c.Property == "" {
			return bad(msgPropertyEmpty)
		}
		if c.Value == nil || *c.Value == "" {
			return bad(msgValueEmpty)
		}
		if c.Operation == nil || *c.Operation == "" {
			return bad(msgOperationEmpty)
		}
		prop, op := strings.ToUpper(*c.Property), strings.ToUpper(*c.Operation)
		if !contains(searchPropertyNames, prop) {
			return bad(msgPropertyUnknown)
		}
		if !contains(searchOperations, op) {
			return bad(msgOperationUnknown)
		}
		cr := criterion{property: prop, value: *c.Value, operation: op}
		switch prop {
		case propQuery, propAccountID:
			if op != "EQUAL" && op != "LIKE" {
				return bad(msgOperationNotString)
			}
		case propEEProfile, propCProfile, propCA:
			if op != "EQUAL" {
				return bad(msgOperationNotEqual)
			}
		case propStatus:
			if op != "EQUAL" {
				return bad(msgOperationNotEqual)
			}
			if _, ok := searchStatuses[strings.ToUpper(cr.value)]; !ok {
				return bad(msgValueNotStatus)
			}
		case propIssued, propExpire, propRevoked:
			t, err := time.Parse("2006-01-02T15:04:05Z", cr.value)
			if !searchDate.MatchString(cr.value) || err != nil {
				return bad(msgValueNotDate)
			}
			if op != "AFTER" && op != "BEFORE" {
				return bad(msgOperationNotDate)
			}
			cr.date = t
		}
		list = append(list, cr)
	}

	q := &certQuery{}
	seenDates := map[string]bool{}
	seenStatus := map[string]bool{}
	for i := range list {
		c := list[i]
		switch c.property {
		case propQuery:
			if q.query != nil {
				return bad(msgMultipleQueries)
			}
			q.query = &list[i]
		case propAccountID:
			q.accountIDs = append(q.accountIDs, c)
		case propStatus:
			v := strings.ToUpper(c.value)
			if seenStatus[v] {
				return bad(msgStatusRepetition)
			}
			seenStatus[v] = true
			switch code := searchStatuses[v]; v {
			case "CERT_ACTIVE":
				q.statuses = append(q.statuses, certActive, certNotified)
			case "CERT_NOTIFIEDABOUTEXPIRATION", "CERT_REVOKED":
				q.statuses = append(q.statuses, code)
			default:
				q.reasons = append(q.reasons, code)
			}
		case propIssued, propExpire, propRevoked:
			key := c.property + " " + c.operation
			if seenDates[key] {
				return bad(fmt.Sprintf(msgOverlappingDateTmpl, c.property, c.operation))
			}
			seenDates[key] = true
			q.dates = append(q.dates, c)
		}
	}
	// The resource then resolves profile and CA names it may use.
	for _, c := range list {
		switch c.property {
		case propEEProfile:
			if s.eeProfiles[c.value] == nil {
				return bad(msgUnknownSearchEEP)
			}
			q.eeProfiles = append(q.eeProfiles, c.value)
		case propCProfile:
			if s.certProfiles[c.value] == nil {
				return bad(msgUnknownSearchCP)
			}
			q.certProfiles = append(q.certProfiles, c.value)
		case propCA:
			if s.cas[c.value] == nil {
				return bad(msgUnknownSearchCA)
			}
			q.caIDs = append(q.caIDs, c.value)
		}
	}
	return q, nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// textMatch is EQUAL (exact) or LIKE (substring, case-insensitive).
func textMatch(op, want string, candidates ...string) bool {
	for _, v := range candidates {
		if v == "" {
			continue
		}
		if op == "EQUAL" && v == want {
			return true
		}
		if op == "LIKE" && strings.Contains(strings.ToLower(v), strings.ToLower(want)) {
			return true
		}
	}
	return false
}

// serialMatch compares the value, read as decimal and as hex, with serial.
func serialMatch(value string, serial *big.Int) bool {
	if n, ok := new(big.Int).SetString(value, 10); ok && n.Cmp(serial) == 0 {
		return true
	}
	n, ok := parseSerial(value)
	return ok && n.Cmp(serial) == 0
}

func certStatus(rec *issuedCertificate) int {
	if rec.revoked {
		return certRevoked
	}
	return certActive
}

// matches reports whether rec satisfies every condition of q.
func (q *certQuery) matches(rec *issuedCertificate) bool {
	c := rec.cert
	if q.query != nil {
		subject := mustDN(c.RawSubject)
		if !textMatch(q.query.operation, q.query.value, rec.username, subject, altNamesOfCert(rec).String(), rec.accountBindingID) &&
			!serialMatch(q.query.value, c.SerialNumber) {
			return false
		}
	}
	if len(q.accountIDs) > 0 {
		ok := false
		for _, a := range q.accountIDs {
			ok = ok || textMatch(a.operation, a.value, rec.accountBindingID)
		}
		if !ok {
			return false
		}
	}
	if len(q.eeProfiles) > 0 && !contains(q.eeProfiles, rec.eeProfile.name) {
		return false
	}
	if len(q.certProfiles) > 0 && !contains(q.certProfiles, rec.certProfile.name) {
		return false
	}
	if len(q.caIDs) > 0 && !contains(q.caIDs, rec.ca.name) {
		return false
	}
	if len(q.statuses) > 0 && !containsInt(q.statuses, certStatus(rec)) {
		return false
	}
	if len(q.reasons) > 0 && (!rec.revoked || !containsInt(q.reasons, revocationReasons[rec.revocationReason])) {
		return false
	}
	for _, d := range q.dates {
		var t time.Time
		switch d.property {
		case propIssued:
			t = c.NotBefore
		case propExpire:
			t = c.NotAfter
		case propRevoked:
			if !rec.revoked {
				return false
			}
			t = rec.revocationDate
		}
		if d.operation == "AFTER" && !t.After(d.date) {
			return false
		}
		if d.operation == "BEFORE" && !t.Before(d.date) {
			return false
		}
	}
	return true
}

func containsInt(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func altNamesOfCert(rec *issuedCertificate) altNames {
	c := rec.cert
	return altNames{dns: c.DNSNames, ips: c.IPAddresses, uris: c.URIs, emails: c.EmailAddresses}
}

// searchLocked returns the issued certificates matching q, oldest first.
func (s *Sim) searchLocked(q *certQuery) []*issuedCertificate {
	var out []*issuedCertificate
	for _, rec := range s.issued {
		if q.matches(rec) {
			out = append(out, rec)
		}
	}
	return out
}

// doubleBase64 is how EJBCA's searches return certificates: base64 of the
// base64 text of the DER.
func doubleBase64(der []byte) string {
	return base64.StdEncoding.EncodeToString([]byte(base64.StdEncoding.EncodeToString(der)))
}

func fingerprint(der []byte) string {
	sum := sha1.Sum(der)
	return hex.EncodeToString(sum[:])
}

type searchV1Request struct {
	MaxNumberOfResults *int                `json:"max_number_of_results"`
	Criteria           *[]*searchCriterion `json:"criteria"`
}

type searchV1Certificate struct {
	CertificateID    string   `json:"certificate_id"`
	SerialNumber     string   `json:"serial_number"`
	ResponseFormat   string   `json:"response_format"`
	Certificate      string   `json:"certificate"`
	CertificateChain []string `json:"certificate_chain"`
}

type searchV1Response struct {
	Certificates []searchV1Certificate `json:"certificates"`
	MoreResults  bool                  `json:"more_results"`
}

// checkMaxResults is ValidSearchCertificateMaxNumberOfResults.
func checkMaxResults(n *int) (int, *apiError) {
	switch {
	case n == nil:
		return 0, errorf(http.StatusBadRequest, msgMaxResultsNull)
	case *n <= 0:
		return 0, errorf(http.StatusBadRequest, msgMaxResultsNotPos)
	case *n > maxSearchResults:
		return 0, errorf(http.StatusBadRequest, msgMaxResultsTooMany)
	}
	return *n, nil
}

// handleSearchV1 serves POST /v1/certificate/search: at most
// max_number_of_results certificates and whether there were more. v1 has no
// paging: narrow the criteria to see the rest.
func (s *Sim) handleSearchV1(w http.ResponseWriter, r *http.Request, _ Fault) {
	var req searchV1Request
	if !decodeJSON(w, r, &req) {
		return
	}
	limit, fail := checkMaxResults(req.MaxNumberOfResults)
	if fail != nil {
		writeAPIError(w, fail)
		return
	}
	s.mu.Lock()
	q, fail := s.parseCriteriaLocked(req.Criteria)
	var found []*issuedCertificate
	if fail == nil {
		found = s.searchLocked(q)
	}
	s.mu.Unlock()
	if fail != nil {
		writeAPIError(w, fail)
		return
	}
	resp := searchV1Response{Certificates: []searchV1Certificate{}, MoreResults: len(found) > limit}
	for i, rec := range found {
		if i == limit {
			break
		}
		resp.Certificates = append(resp.Certificates, searchV1Certificate{
			CertificateID:  fingerprint(rec.cert.Raw),
			SerialNumber:   fmt.Sprintf("%X", rec.cert.SerialNumber),
			ResponseFormat: "DER",
			Certificate:    doubleBase64(rec.cert.Raw),
		})
	}
	writeJSON(w, http.StatusOK, resp)
}

// searchV2Certificate mirrors EJBCA's CertificateRestResponseV2 row
// (camelCase keys; serial in upper-case hex and subject key id in hex, as
// CertificateRestResponseV2's converter sets them; dates in epoch
// milliseconds).
type searchV2Certificate struct {
	Fingerprint          string  `json:"fingerprint"`
	CAFingerprint        string  `json:"cAFingerprint"`
	CertificateProfileID int     `json:"certificateProfileId"`
	EndEntityProfileID   int     `json:"endEntityProfileId"`
	ExpireDate           int64   `json:"expireDate"`
	IssuerDN             string  `json:"issuerDN"`
	NotBefore            int64   `json:"notBefore"`
	RevocationDate       int64   `json:"revocationDate"`
	RevocationReason     int     `json:"revocationReason"`
	SerialNumber         string  `json:"serialNumber"`
	Status               int     `json:"status"`
	SubjectAltName       string  `json:"subjectAltName"`
	SubjectDN            string  `json:"subjectDN"`
	SubjectKeyID         string  `json:"subjectKeyId"`
	Tag                  *string `json:"tag"`
	Type                 int     `json:"type"`
	UpdateTime           int64   `json:"updateTime"`
	Username             string  `json:"username"`
	CRLPartitionIndex    int     `json:"crlPartitionIndex"`
	CertificateRequest   *string `json:"certificateRequest"`
	Base64Cert           string  `json:"base64Cert"`
}

// paginationSummary is EJBCA's PaginationSummary as
// SearchCertificatesRestResponseV2.toRestResponse (9.x) fills it: a paged
// answer echoes page_size and current_page and carries
// total_certs = page_size*(current_page-1)+rows on every non-empty page (so
// a full page says nothing about the pages after it); current_page -1 asks
// for the count alone; without pagination total_certs is the count alone.
type paginationSummary struct {
	PageSize    *int `json:"page_size,omitempty"`
	CurrentPage *int `json:"current_page,omitempty"`
	TotalCerts  *int `json:"total_certs,omitempty"`
}

type searchV2Response struct {
	Certificates      []searchV2Certificate `json:"certificates"`
	PaginationSummary paginationSummary     `json:"pagination_summary"`
}

type searchV2Request struct {
	Pagination *struct {
		PageSize    int `json:"page_size"`
		CurrentPage int `json:"current_page"`
	} `json:"pagination"`
	Sort     json.RawMessage     `json:"sort"`
	Criteria *[]*searchCriterion `json:"criteria"`
}

// countOnlyPage is the current_page that asks v2 search for the number of
// matches alone (SearchCertificatesRestResponseV2.toRestResponse).
const countOnlyPage = -1

// handleSearchV2 serves POST /v2/certificate/search
// (CertificateRestResourceV2.searchCertificates,
// SearchCertificatesRestResponseV2.toRestResponse). With
// pagination{page_size,current_page} it answers that page (current_page
// counts from 1) and total_certs = page_size*(current_page-1)+rows when the
// page has rows; current_page -1 answers the count only; without
// pagination, the count only. A client walks pages until one holds fewer
// than page_size rows: total_certs on a full page is no total.
func (s *Sim) handleSearchV2(w http.ResponseWriter, r *http.Request, _ Fault) {
	var req searchV2Request
	if !decodeJSON(w, r, &req) {
		return
	}
	if p := req.Pagination; p != nil && (p.PageSize <= 0 || (p.CurrentPage <= 0 && p.CurrentPage != countOnlyPage)) {
		writeError(w, http.StatusBadRequest, msgPagination)
		return
	}
	s.mu.Lock()
	q, fail := s.parseCriteriaLocked(req.Criteria)
	var found []*issuedCertificate
	if fail == nil {
		found = s.searchLocked(q)
	}
	resp := searchV2Response{Certificates: []searchV2Certificate{}}
	switch p := req.Pagination; {
	case fail != nil:
	case p == nil:
		total := len(found)
		resp.PaginationSummary.TotalCerts = &total
	case p.CurrentPage == countOnlyPage:
		size, page, total := p.PageSize, p.CurrentPage, len(found)
		resp.PaginationSummary = paginationSummary{PageSize: &size, CurrentPage: &page, TotalCerts: &total}
	default:
		size, page := p.PageSize, p.CurrentPage
		resp.PaginationSummary.PageSize, resp.PaginationSummary.CurrentPage = &size, &page
		start := min((page-1)*size, len(found))
		end := min(start+size, len(found))
		for _, rec := range found[start:end] {
			resp.Certificates = append(resp.Certificates, v2Row(rec))
		}
		if n := end - start; n > 0 {
			total := size*(page-1) + n
			resp.PaginationSummary.TotalCerts = &total
		}
	}
	s.mu.Unlock()
	if fail != nil {
		writeAPIError(w, fail)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// v2Row describes rec; callers hold s.mu.
func v2Row(rec *issuedCertificate) searchV2Certificate {
	c := rec.cert
	row := searchV2Certificate{
		Fingerprint:          fingerprint(c.Raw),
		CAFingerprint:        fingerprint(rec.ca.kp.cert.Raw),
		CertificateProfileID: rec.certProfile.id,
		EndEntityProfileID:   rec.eeProfile.id,
		ExpireDate:           c.NotAfter.UnixMilli(),
		IssuerDN:             mustDN(c.RawIssuer),
		NotBefore:            c.NotBefore.UnixMilli(),
		RevocationDate:       -1,
		RevocationReason:     -1,
		SerialNumber:         fmt.Sprintf("%X", c.SerialNumber),
		Status:               certActive,
		SubjectAltName:       altNamesOfCert(rec).String(),
		SubjectDN:            mustDN(c.RawSubject),
		SubjectKeyID:         hex.EncodeToString(c.SubjectKeyId),
		Type:                 1, // CERTTYPE_ENDENTITY
		UpdateTime:           c.NotBefore.Add(notBeforeBackdate).UnixMilli(),
		Username:             rec.username,
		Base64Cert:           doubleBase64(c.Raw),
	}
	if rec.revoked {
		row.Status = certRevoked
		row.RevocationDate = rec.revocationDate.UnixMilli()
		row.RevocationReason = revocationReasons[rec.revocationReason]
		row.UpdateTime = row.RevocationDate
	}
	return row
}
