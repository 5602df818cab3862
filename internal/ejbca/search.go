package ejbca

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/cert-manager/cert-manager/pkg/util/pki"
)

// MaxSearchResults is the most EJBCA returns for one v1 search.
const MaxSearchResults = 400

const (
	// defaultSearchPageSize is the page size of v2 searches.
	defaultSearchPageSize = 100
	// maxSearchPages bounds a v2 walk, against a server that never says it
	// is done.
	maxSearchPages = 200
	// maxSearchSplits bounds how deep a truncated v1 search is split by
	// time: each level halves the window.
	maxSearchSplits = 40
	// maxCertificateLookups bounds the v1 look-ups of v2 rows that came
	// without their certificate.
	maxCertificateLookups = 50
	// searchDateLayout is EJBCA's ISO 8601 form for date criteria, in UTC.
	searchDateLayout = "2006-01-02T15:04:05Z"
)

const (
	endpointSearchV1 = "POST /v1/certificate/search"
	endpointSearchV2 = "POST /v2/certificate/search"
)

// FindRequest says which certificate FindIssued looks for: one EJBCA issued
// to Username from CAName, for the CSR (its public key, subject and SANs),
// with a notBefore not before IssuedAfter.
type FindRequest struct {
	Username string
	// CAName narrows the search to one CA; empty searches every CA.
	CAName string
	// CSR is the PKCS#10 request, PEM or DER.
	CSR []byte
	// IssuedAfter is the time of the lost attempt minus EJBCA's backdating of
	// notBefore (10 minutes by default, so allow more); zero means any time.
	IssuedAfter time.Time
}

// criterion is one condition of EJBCA's certificate search. EJBCA's v1
// properties are QUERY, EXTERNAL_ACCOUNT_BINDING_ID, END_ENTITY_PROFILE,
// CERTIFICATE_PROFILE, CA, STATUS, ISSUED_DATE, EXPIRE_DATE and
// REVOCATION_DATE (SearchCertificateCriteriaRestRequest); there is no
// USERNAME property. Different properties are ANDed; ISSUED_DATE AFTER and
// BEFORE set the two ends of one window.
type criterion struct {
	Property  string `json:"property"`
	Value     string `json:"value"`
	Operation string `json:"operation"`
}

func issuedCriterion(op string, t time.Time) criterion {
	return criterion{Property: "ISSUED_DATE", Value: t.UTC().Format(searchDateLayout), Operation: op}
}

// FindIssued looks for a certificate EJBCA issued but whose answer was lost,
// and returns it with its chain, or nil, nil when there is none, so that the
// caller need not enrol (and issue) a second time. The search is narrowed
// to the username (QUERY, EQUAL), the CA and ISSUED_DATE after IssuedAfter;
// a result counts only if it carries the CSR's public key, its subject (as a
// set of attributes: EJBCA reorders and normalises DNs) and its SANs. Of
// several, the newest wins. Where the server has the v2 search it walks
// every page; otherwise (404) the v1 search, split by time when EJBCA
// truncates it, so the answer stays right for an end entity with more
// certificates than one answer holds.
func (c *Client) FindIssued(ctx context.Context, req FindRequest) (*Certificate, error) {
	csr, _, err := parseCSR(endpointSearchV1, req.CSR)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.Username) == "" {
		return nil, &Error{Endpoint: endpointSearchV1, Kind: KindPermanent, Message: "FindIssued needs the username"}
	}
	f := &finder{c: c, req: req, csr: csr, names: requestedNames(csr)}
	criteria := []criterion{{Property: "QUERY", Value: req.Username, Operation: "EQUAL"}}
	if req.CAName != "" {
		criteria = append(criteria, criterion{Property: "CA", Value: req.CAName, Operation: "EQUAL"})
	}

	useV1 := c.noSearchV2.Load()
	if !useV1 {
		switch err := f.walkV2(ctx, criteria); {
		case err == nil:
		case isMissingPath(err):
			// No v2 search on this server: remember, and ask v1.
			c.noSearchV2.Store(true)
			useV1 = true
		default:
			return nil, err
		}
	}
	if useV1 {
		if err := f.searchV1Window(ctx, criteria, req.IssuedAfter, time.Time{}, 0); err != nil {
			return nil, err
		}
	}
	if f.found == nil {
		return nil, nil
	}
	return c.withChain(ctx, f.found)
}

// isMissingPath reports a 404 for the path itself (RESTEasy's, or a plain
// one from a server that predates the JSON error mapping).
func isMissingPath(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.StatusCode == http.StatusNotFound
}

// finder holds one FindIssued's state: what it looks for and the best match.
type finder struct {
	c       *Client
	req     FindRequest
	csr     *x509.CertificateRequest
	names   names
	found   *x509.Certificate
	lookups int
}

// consider keeps cert if it is the certificate looked for and newer than
// the best match so far.
func (f *finder) consider(cert *x509.Certificate) {
	if cert.NotBefore.Before(f.req.IssuedAfter) {
		return
	}
	if matchesCSR(cert, f.csr) != nil || !f.names.matches(cert) {
		return
	}
	if f.found == nil || cert.NotBefore.After(f.found.NotBefore) ||
		(cert.NotBefore.Equal(f.found.NotBefore) && cert.SerialNumber.Cmp(f.found.SerialNumber) > 0) {
		f.found = cert
	}
}

// v2Row is the part of a v2 search row the client reads (camelCase keys).
type v2Row struct {
	Base64Cert   string `json:"base64Cert"`
	SerialNumber string `json:"serialNumber"`
	IssuerDN     string `json:"issuerDN"`
	Username     string `json:"username"`
	Fingerprint  string `json:"fingerprint"`
}

// walkV2 reads every page of the v2 search: it asks for the next page while
// the last one came back full, and stops at the first short or empty one.
func (f *finder) walkV2(ctx context.Context, criteria []criterion) error {
	if !f.req.IssuedAfter.IsZero() {
		criteria = append(criteria[:len(criteria):len(criteria)], issuedCriterion("AFTER", f.req.IssuedAfter))
	}
	size := f.c.searchPageSize
	if size <= 0 {
		size = defaultSearchPageSize
	}
	seen := map[string]bool{}
	for page := 1; ; page++ {
		if page > maxSearchPages {
			return &Error{Endpoint: endpointSearchV2, Kind: KindInvalidResponse,
				Message: fmt.Sprintf("the search did not end after %d pages of %d", maxSearchPages, size)}
		}
		body := map[string]any{
			"pagination": map[string]int{"page_size": size, "current_page": page},
			"criteria":   criteria,
		}
		r, err := f.c.send(ctx, request{method: http.MethodPost, endpoint: endpointSearchV2, path: "/v2/certificate/search", body: body, readOnly: true})
		if err != nil {
			return err
		}
		if r.status != http.StatusOK {
			return failure(endpointSearchV2, r)
		}
		// pagination_summary is not read: EJBCA 9.x's total_certs is
		// page_size*(current_page-1)+rows on every non-empty page
		// (SearchCertificatesRestResponseV2.toRestResponse), so on a full
		// page it says nothing about the next one; older versions send none.
		var out struct {
			Certificates []v2Row `json:"certificates"`
		}
		if err := decode(endpointSearchV2, r, &out); err != nil {
			return err
		}
		fresh := 0
		for _, row := range out.Certificates {
			key := row.IssuerDN + "/" + row.SerialNumber + "/" + row.Fingerprint
			if row.SerialNumber == "" && row.Fingerprint == "" {
				key = row.Base64Cert
			}
			if seen[key] {
				continue
			}
			seen[key] = true
			fresh++
			if row.Username != "" && row.Username != f.req.Username {
				continue // QUERY also matches subject, SAN and serial of others
			}
			if err := f.considerRow(ctx, row, r.status); err != nil {
				return err
			}
		}
		switch {
		case len(out.Certificates) > 0 && fresh == 0:
			return &Error{Endpoint: endpointSearchV2, StatusCode: r.status, Kind: KindInvalidResponse,
				Message: fmt.Sprintf("page %d repeats earlier results: the server does not page", page)}
		case len(out.Certificates) < size:
			// A short or empty page is the last; a full one may not be.
			return nil
		}
	}
}

// considerRow checks one v2 row. A row without its certificate (EJBCA can
// keep certificates in a table of their own, which v2 rows do not carry) is
// looked up with a v1 search for its serial number.
func (f *finder) considerRow(ctx context.Context, row v2Row, status int) error {
	if strings.TrimSpace(row.Base64Cert) != "" {
		cert, err := parseSearchCertificate(row.Base64Cert)
		if err != nil {
			return &Error{Endpoint: endpointSearchV2, StatusCode: status, Kind: KindInvalidResponse,
				Message: "a certificate in the search result does not parse", Err: err}
		}
		f.consider(cert)
		return nil
	}
	if row.SerialNumber == "" {
		return nil
	}
	if f.lookups++; f.lookups > maxCertificateLookups {
		return &Error{Endpoint: endpointSearchV2, StatusCode: status, Kind: KindInvalidResponse,
			Message: fmt.Sprintf("more than %d search results came without their certificate", maxCertificateLookups)}
	}
	criteria := []criterion{{Property: "QUERY", Value: row.SerialNumber, Operation: "EQUAL"}}
	if f.req.CAName != "" {
		criteria = append(criteria, criterion{Property: "CA", Value: f.req.CAName, Operation: "EQUAL"})
	}
	certs, _, err := f.c.searchV1(ctx, criteria)
	if err != nil {
		return err
	}
	for _, cert := range certs {
		f.consider(cert)
	}
	return nil
}

// searchV1Window runs the v1 search for certificates issued in (after,
// before); a zero before means no upper end. v1 has no paging: when EJBCA
// says it left results out, the window is halved and both halves searched.
func (f *finder) searchV1Window(ctx context.Context, criteria []criterion, after, before time.Time, depth int) error {
	window := criteria
	if !after.IsZero() {
		window = append(window[:len(window):len(window)], issuedCriterion("AFTER", after))
	}
	if !before.IsZero() {
		window = append(window[:len(window):len(window)], issuedCriterion("BEFORE", before))
	}
	certs, more, err := f.c.searchV1(ctx, window)
	if err != nil {
		return err
	}
	for _, cert := range certs {
		f.consider(cert)
	}
	if !more {
		return nil
	}
	if after.IsZero() {
		after = time.Unix(0, 0)
	}
	if before.IsZero() {
		before = f.c.clock.Now().Add(time.Hour)
	}
	after, before = after.Truncate(time.Second), before.Truncate(time.Second)
	if depth >= maxSearchSplits || before.Sub(after) <= 2*time.Second {
		return &Error{Endpoint: endpointSearchV1, Kind: KindInvalidResponse,
			Message: fmt.Sprintf("more than %d certificates match even in the window %s to %s; the search cannot be narrowed further",
				MaxSearchResults, after.UTC().Format(searchDateLayout), before.UTC().Format(searchDateLayout))}
	}
	// The halves overlap by a second: EJBCA compares strictly at both ends.
	mid := after.Add(before.Sub(after) / 2).Truncate(time.Second)
	if err := f.searchV1Window(ctx, criteria, after, mid.Add(time.Second), depth+1); err != nil {
		return err
	}
	return f.searchV1Window(ctx, criteria, mid, before, depth+1)
}

// searchV1 runs one v1 search and reports whether EJBCA left results out.
func (c *Client) searchV1(ctx context.Context, criteria []criterion) ([]*x509.Certificate, bool, error) {
	body := map[string]any{"max_number_of_results": MaxSearchResults, "criteria": criteria}
	r, err := c.send(ctx, request{method: http.MethodPost, endpoint: endpointSearchV1, path: "/v1/certificate/search", body: body, readOnly: true})
	if err != nil {
		return nil, false, err
	}
	if r.status != http.StatusOK {
		return nil, false, failure(endpointSearchV1, r)
	}
	var out struct {
		Certificates []struct {
			Certificate string `json:"certificate"`
		} `json:"certificates"`
		MoreResults bool `json:"more_results"`
	}
	if err := decode(endpointSearchV1, r, &out); err != nil {
		return nil, false, err
	}
	certs := make([]*x509.Certificate, 0, len(out.Certificates))
	for _, s := range out.Certificates {
		cert, err := parseSearchCertificate(s.Certificate)
		if err != nil {
			return nil, false, &Error{Endpoint: endpointSearchV1, StatusCode: r.status, Kind: KindInvalidResponse,
				Message: "a certificate in the search result does not parse", Err: err}
		}
		certs = append(certs, cert)
	}
	return certs, out.MoreResults, nil
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

// withChain completes a recovered certificate with its CA chain.
func (c *Client) withChain(ctx context.Context, leaf *x509.Certificate) (*Certificate, error) {
	chain, err := c.CAChain(ctx, leaf.Issuer.String())
	if err != nil {
		return nil, err
	}
	all := append([]*x509.Certificate{leaf}, chain...)
	bundle, err := pki.ParseSingleCertificateChain(all)
	if err != nil {
		return nil, &Error{Endpoint: endpointSearchV1, Kind: KindInvalidResponse,
			Message: "the recovered certificate and its CA chain do not form one chain", Err: err}
	}
	return &Certificate{Leaf: leaf, SerialNumber: fmt.Sprintf("%X", leaf.SerialNumber), ChainPEM: bundle.ChainPEM, CAPEM: bundle.CAPEM}, nil
}
