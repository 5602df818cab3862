package ejbcasim

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
)

// maxSearchResults is EJBCA's cap on max_number_of_results.
const maxSearchResults = 400

// searchCriterion is one search condition. Conditions on the same property
// are OR-ed, different properties AND-ed, as in EJBCA.
type searchCriterion struct {
	Property  string `json:"property"`
	Value     string `json:"value"`
	Operation string `json:"operation"`
}

// searchProperties are the supported properties and whether they allow LIKE
// (substring, case-insensitive) besides EQUAL.
var searchProperties = map[string]bool{
	"QUERY":               true, // username, subject DN, subject alt name or serial
	"USERNAME":            true,
	"SUBJECT_DN":          true,
	"SERIAL_NUMBER":       false,
	"CA":                  false,
	"CERTIFICATE_PROFILE": false,
	"END_ENTITY_PROFILE":  false,
	"STATUS":              false, // CERT_ACTIVE, CERT_REVOKED
}

type searchV1Request struct {
	MaxNumberOfResults *int              `json:"max_number_of_results"`
	Criteria           []searchCriterion `json:"criteria"`
}

type searchV2Request struct {
	MaxNumberOfResults *int `json:"max_number_of_results"`
	Pagination         *struct {
		PageSize    int `json:"page_size"`
		CurrentPage int `json:"current_page"`
	} `json:"pagination"`
	Criteria []searchCriterion `json:"criteria"`
}

// checkCriteria validates the criteria and returns them grouped by property.
func checkCriteria(criteria []searchCriterion) (map[string][]searchCriterion, *apiError) {
	if len(criteria) == 0 {
		return nil, errorf(http.StatusBadRequest, "Invalid search criteria content, criteria must not be empty.")
	}
	groups := map[string][]searchCriterion{}
	for _, c := range criteria {
		c.Property, c.Operation = strings.ToUpper(c.Property), strings.ToUpper(c.Operation)
		likeOK, known := searchProperties[c.Property]
		if !known {
			return nil, errorf(http.StatusBadRequest, fmt.Sprintf("Invalid search criteria content, unknown property '%s'.", c.Property))
		}
		if c.Operation != "EQUAL" && (c.Operation != "LIKE" || !likeOK) {
			return nil, errorf(http.StatusBadRequest, fmt.Sprintf("Invalid search criteria content, operation '%s' is not allowed for property '%s'.", c.Operation, c.Property))
		}
		groups[c.Property] = append(groups[c.Property], c)
	}
	return groups, nil
}

func checkMaxResults(n *int) (int, *apiError) {
	if n == nil || *n < 1 || *n > maxSearchResults {
		return 0, errorf(http.StatusBadRequest, fmt.Sprintf("Invalid search criteria content, max_number_of_results must be between 1 and %d.", maxSearchResults))
	}
	return *n, nil
}

// matches reports whether rec satisfies one criterion.
func matches(rec *issuedCertificate, c searchCriterion) bool {
	text := func(candidates ...string) bool {
		for _, v := range candidates {
			if c.Operation == "EQUAL" && v == c.Value {
				return true
			}
			if c.Operation == "LIKE" && strings.Contains(strings.ToLower(v), strings.ToLower(c.Value)) {
				return true
			}
		}
		return false
	}
	serialMatches := func() bool {
		n, ok := parseSerial(c.Value)
		return ok && n.Cmp(rec.cert.SerialNumber) == 0
	}
	subject := mustDN(rec.cert.RawSubject)
	switch c.Property {
	case "QUERY":
		return text(rec.username, subject, altNamesOfCert(rec).String()) || serialMatches()
	case "USERNAME":
		return text(rec.username)
	case "SUBJECT_DN":
		return text(subject)
	case "SERIAL_NUMBER":
		return serialMatches()
	case "CA":
		return rec.ca.name == c.Value
	case "CERTIFICATE_PROFILE":
		return rec.certProfile.name == c.Value
	case "END_ENTITY_PROFILE":
		return rec.eeProfile.name == c.Value
	case "STATUS":
		return (c.Value == "CERT_REVOKED" && rec.revoked) || (c.Value == "CERT_ACTIVE" && !rec.revoked)
	}
	return false
}

func altNamesOfCert(rec *issuedCertificate) altNames {
	c := rec.cert
	return altNames{dns: c.DNSNames, ips: c.IPAddresses, uris: c.URIs, emails: c.EmailAddresses}
}

// searchLocked returns the issued certificates matching every property
// group, oldest first.
func (s *Sim) searchLocked(groups map[string][]searchCriterion) []*issuedCertificate {
	var out []*issuedCertificate
	for _, rec := range s.issued {
		all := true
		for _, group := range groups {
			matched := false
			for _, c := range group {
				if matches(rec, c) {
					matched = true
					break
				}
			}
			if !matched {
				all = false
				break
			}
		}
		if all {
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

// handleSearchV1 serves POST /v1/certificate/search.
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
	groups, fail := checkCriteria(req.Criteria)
	if fail != nil {
		writeAPIError(w, fail)
		return
	}
	s.mu.Lock()
	found := s.searchLocked(groups)
	s.mu.Unlock()
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

// searchV2Certificate mirrors EJBCA's certificate data row (camelCase keys;
// serialNumber in decimal, as EJBCA stores it; dates in epoch milliseconds).
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

type paginationSummary struct {
	PageSize    int `json:"page_size"`
	CurrentPage int `json:"current_page"`
	TotalCerts  int `json:"total_certs"`
}

type searchV2Response struct {
	Certificates      []searchV2Certificate `json:"certificates"`
	MoreResults       *bool                 `json:"more_results,omitempty"`
	PaginationSummary *paginationSummary    `json:"pagination_summary,omitempty"`
}

// handleSearchV2 serves POST /v2/certificate/search, paged with
// pagination{page_size,current_page} or capped with max_number_of_results.
func (s *Sim) handleSearchV2(w http.ResponseWriter, r *http.Request, _ Fault) {
	var req searchV2Request
	if !decodeJSON(w, r, &req) {
		return
	}
	pageSize, page := 0, 1
	if req.Pagination != nil {
		pageSize, page = req.Pagination.PageSize, req.Pagination.CurrentPage
		if pageSize < 1 || pageSize > maxSearchResults || page < 1 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("Invalid pagination, page_size must be between 1 and %d and current_page at least 1.", maxSearchResults))
			return
		}
	} else {
		n := maxSearchResults
		if req.MaxNumberOfResults != nil {
			var fail *apiError
			if n, fail = checkMaxResults(req.MaxNumberOfResults); fail != nil {
				writeAPIError(w, fail)
				return
			}
		}
		pageSize = n
	}
	groups, fail := checkCriteria(req.Criteria)
	if fail != nil {
		writeAPIError(w, fail)
		return
	}
	s.mu.Lock()
	found := s.searchLocked(groups)
	resp := searchV2Response{Certificates: []searchV2Certificate{}}
	start := (page - 1) * pageSize
	for i := start; i < len(found) && i < start+pageSize; i++ {
		resp.Certificates = append(resp.Certificates, v2Row(found[i]))
	}
	s.mu.Unlock()
	if req.Pagination != nil {
		resp.PaginationSummary = &paginationSummary{PageSize: pageSize, CurrentPage: page, TotalCerts: len(found)}
	} else {
		more := len(found) > pageSize
		resp.MoreResults = &more
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
		SerialNumber:         c.SerialNumber.String(),
		Status:               20, // CERT_ACTIVE
		SubjectAltName:       altNamesOfCert(rec).String(),
		SubjectDN:            mustDN(c.RawSubject),
		SubjectKeyID:         base64.StdEncoding.EncodeToString(c.SubjectKeyId),
		Type:                 1, // CERTTYPE_ENDENTITY
		UpdateTime:           c.NotBefore.Add(notBeforeBackdate).UnixMilli(),
		Username:             rec.username,
		Base64Cert:           doubleBase64(c.Raw),
	}
	if rec.revoked {
		row.Status = 40 // CERT_REVOKED
		row.RevocationDate = rec.revocationDate.UnixMilli()
		row.RevocationReason = revocationReasons[rec.revocationReason]
		row.UpdateTime = row.RevocationDate
	}
	return row
}
