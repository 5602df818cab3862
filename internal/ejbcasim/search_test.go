package ejbcasim_test

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
)

type crit = map[string]string

func q(property, value, operation string) crit {
	return crit{"property": property, "value": value, "operation": operation}
}

func searchV1(max int, criteria ...crit) map[string]any {
	return map[string]any{"max_number_of_results": max, "criteria": criteria}
}

// undoubleBase64 reverses EJBCA's base64-of-base64 encoding.
func undoubleBase64(t *testing.T, v string) string {
	t.Helper()
	inner, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		t.Fatalf("outer base64: %v", err)
	}
	return string(inner)
}

type v1Result struct {
	Certificates []struct {
		CertificateID    string   `json:"certificate_id"`
		SerialNumber     string   `json:"serial_number"`
		ResponseFormat   string   `json:"response_format"`
		Certificate      string   `json:"certificate"`
		CertificateChain []string `json:"certificate_chain"`
	} `json:"certificates"`
	MoreResults bool `json:"more_results"`
}

// serials searches v1 and returns the serials found.
func (h *harness) serials(body map[string]any) []string {
	h.t.Helper()
	r := h.call(h.admin, "POST", "/v1/certificate/search", body)
	if r.status != 200 {
		h.t.Fatalf("search %v: %d %s", body, r.status, r.body)
	}
	var res v1Result
	r.decode(h.t, &res)
	var out []string
	for _, c := range res.Certificates {
		out = append(out, c.SerialNumber)
	}
	return out
}

func TestSearchV1(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	var want []string
	for range 3 {
		e, _ := h.enroll("alice", "ENDUSER")
		want = append(want, e.SerialNumber)
	}
	h.enroll("bob", "ENDUSER")

	var res v1Result
	r := h.call(h.admin, "POST", "/v1/certificate/search", searchV1(2, q("QUERY", "alice", "EQUAL")))
	r.decode(t, &res)
	if r.status != 200 || len(res.Certificates) != 2 || !res.MoreResults || !strings.Contains(string(r.body), `"certificate_chain":null`) {
		t.Fatalf("search: %d %s", r.status, r.body)
	}
	for i, c := range res.Certificates {
		cert := parseB64Cert(t, undoubleBase64(t, c.Certificate))
		if c.SerialNumber != want[i] || c.ResponseFormat != "DER" || c.CertificateID == "" || cert.Subject.CommonName != "alice.example.com" {
			t.Errorf("result %d: %+v", i, c)
		}
	}
	if got := h.serials(searchV1(10, q("QUERY", "nobody", "EQUAL"))); len(got) != 0 {
		t.Fatalf("no match: %v", got)
	}
}

// TestSearchRefusesWhatEJBCARefuses: only EJBCA's v1 properties and their
// operations; messages from its validators, v1 and v2 alike.
func TestSearchRefusesWhatEJBCARefuses(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	h.enroll("alice", "ENDUSER")
	for _, tc := range []struct {
		name     string
		criteria []crit
		msg      string
	}{
		{"USERNAME", []crit{q("USERNAME", "alice", "EQUAL")}, "Invalid search criteria's property, unrecognized."},
		{"SUBJECT_DN", []crit{q("SUBJECT_DN", "CN=alice", "EQUAL")}, "Invalid search criteria's property, unrecognized."},
		{"SERIAL_NUMBER", []crit{q("SERIAL_NUMBER", "01", "EQUAL")}, "Invalid search criteria's property, unrecognized."},
		{"UPDATE_TIME", []crit{q("UPDATE_TIME", "2024-01-01T00:00:00Z", "AFTER")}, "Invalid search criteria's property, unrecognized."},
		{"unknown operation", []crit{q("QUERY", "alice", "STARTS_WITH")}, "Invalid search criteria's operation, unrecognized."},
		{"QUERY AFTER", []crit{q("QUERY", "alice", "AFTER")}, "Invalid search criteria's operation, should be EQUAL or LIKE."},
		{"CA LIKE", []crit{q("CA", "IssuingCA", "LIKE")}, "Invalid search criteria's operation, should be EQUAL."},
		{"STATUS LIKE", []crit{q("STATUS", "CERT_ACTIVE", "LIKE")}, "Invalid search criteria's operation, should be EQUAL."},
		{"unknown status", []crit{q("STATUS", "VALID", "EQUAL")}, "Invalid search criteria content, value does not contain certificate status."},
		{"date with offset", []crit{q("ISSUED_DATE", "2024-01-01T00:00:00+01:00", "AFTER")}, "Invalid search criteria content, value does not contain proper date."},
		{"date with fraction", []crit{q("ISSUED_DATE", "2024-01-01T00:00:00.5Z", "AFTER")}, "Invalid search criteria content, value does not contain proper date."},
		{"impossible date", []crit{q("EXPIRE_DATE", "2024-02-30T00:00:00Z", "BEFORE")}, "Invalid search criteria content, value does not contain proper date."},
		{"date EQUAL", []crit{q("ISSUED_DATE", "2024-01-01T00:00:00Z", "EQUAL")}, "Invalid search criteria's operation, should be AFTER or BEFORE."},
		{"empty value", []crit{q("QUERY", "", "EQUAL")}, "Invalid search criteria content, value can not be null or empty."},
		{"no property", []crit{{"value": "alice", "operation": "EQUAL"}}, "Invalid search criteria content, property can not be null or empty."},
		{"no operation", []crit{{"property": "QUERY", "value": "alice"}}, "Invalid search criteria content, operation can not be null or empty."},
		{"two QUERY", []crit{q("QUERY", "alice", "EQUAL"), q("QUERY", "bob", "EQUAL")}, "Invalid criteria value, multiple 'QUERY' properties are not allowed."},
		{"two ISSUED_DATE AFTER", []crit{q("ISSUED_DATE", "2024-01-01T00:00:00Z", "AFTER"), q("ISSUED_DATE", "2024-02-01T00:00:00Z", "AFTER")},
			"Invalid criteria value, overlapping properties 'ISSUED_DATE' with 'AFTER' operation."},
		{"unknown CA", []crit{q("CA", "NoSuchCA", "EQUAL")}, "Invalid search criteria content, unknown CA."},
		{"unknown certificate profile", []crit{q("CERTIFICATE_PROFILE", "NOPE", "EQUAL")}, "Invalid search criteria content, unknown certificate profile."},
		{"unknown end entity profile", []crit{q("END_ENTITY_PROFILE", "NOPE", "EQUAL")}, "Invalid search criteria content, unknown end entity profile."},
		{"no criteria", []crit{}, "Invalid criteria value, can not be empty."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.call(h.admin, "POST", "/v1/certificate/search", searchV1(10, tc.criteria...)).expectError(t, 400, tc.msg)
			h.call(h.admin, "POST", "/v2/certificate/search", map[string]any{
				"pagination": map[string]int{"page_size": 10, "current_page": 1}, "criteria": tc.criteria,
			}).expectError(t, 400, tc.msg)
		})
	}
	h.call(h.admin, "POST", "/v1/certificate/search", map[string]any{"max_number_of_results": 10}).
		expectError(t, 400, "Invalid criteria value, can not be null.")
	for max, msg := range map[int]string{
		0: "Invalid maximum number of results, can not be less or equal to zero.", 401: "Invalid maximum number of results, can not be more than 400.",
	} {
		h.call(h.admin, "POST", "/v1/certificate/search", searchV1(max, q("QUERY", "alice", "EQUAL"))).expectError(t, 400, msg)
	}
	h.call(h.admin, "POST", "/v1/certificate/search", map[string]any{"criteria": []crit{q("QUERY", "alice", "EQUAL")}}).
		expectError(t, 400, "Invalid maximum number of results, can not be null.")
	h.call(h.admin, "POST", "/v2/certificate/search", map[string]any{
		"pagination": map[string]int{"page_size": 0, "current_page": 1}, "criteria": []crit{q("QUERY", "alice", "EQUAL")},
	}).expectError(t, 400, "Page size and current page must be greater 0.")
	if n := h.sim.Counters().Calls["search"][400]; n == 0 {
		t.Fatal("refusals not counted")
	}
}

// TestSearchCriteria: what each property matches, and that criteria of
// different properties are AND-ed.
func TestSearchCriteria(t *testing.T) {
	clock := newFakeClock()
	h := start(t, ejbcasim.Config{Now: clock.Now})
	early, _ := h.enroll("carol", "ENDUSER")
	clock.Advance(2 * time.Hour)
	cut := clock.Now().UTC().Add(-time.Hour).Format("2006-01-02T15:04:05Z")
	late, lateCert := h.enroll("carol", "SERVER")
	other, _ := h.enroll("dave", "ENDUSER")
	csr, _ := newCSR(t, csrSpec{cn: "bound"})
	body := enrollBody(csr, "erin", "ENDUSER")
	body["account_binding_id"] = "acct-42"
	r := h.call(h.admin, "POST", "/v1/certificate/pkcs10enroll", body)
	var bound enrolled
	r.decode(t, &bound)

	for _, tc := range []struct {
		name     string
		criteria []crit
		want     []string
	}{
		{"QUERY EQUAL username", []crit{q("QUERY", "carol", "EQUAL")}, []string{early.SerialNumber, late.SerialNumber}},
		{"QUERY EQUAL is exact", []crit{q("QUERY", "caro", "EQUAL")}, nil},
		{"QUERY LIKE", []crit{q("QUERY", "ARO", "LIKE")}, []string{early.SerialNumber, late.SerialNumber}},
		{"QUERY subject DN", []crit{q("QUERY", "CN=dave.example.com", "EQUAL")}, []string{other.SerialNumber}},
		{"QUERY serial hex", []crit{q("QUERY", other.SerialNumber, "EQUAL")}, []string{other.SerialNumber}},
		{"QUERY serial decimal", []crit{q("QUERY", lateCert.SerialNumber.String(), "EQUAL")}, []string{late.SerialNumber}},
		{"QUERY account id", []crit{q("QUERY", "acct-42", "EQUAL")}, []string{bound.SerialNumber}},
		{"EXTERNAL_ACCOUNT_BINDING_ID", []crit{q("EXTERNAL_ACCOUNT_BINDING_ID", "acct", "LIKE")}, []string{bound.SerialNumber}},
		{"ISSUED_DATE AFTER and QUERY", []crit{q("QUERY", "carol", "EQUAL"), q("ISSUED_DATE", cut, "AFTER")}, []string{late.SerialNumber}},
		{"ISSUED_DATE BEFORE", []crit{q("ISSUED_DATE", cut, "BEFORE")}, []string{early.SerialNumber}},
		{"CERTIFICATE_PROFILE", []crit{q("CERTIFICATE_PROFILE", "SERVER", "EQUAL")}, []string{late.SerialNumber}},
		{"two profiles OR-ed", []crit{q("QUERY", "carol", "EQUAL"), q("CERTIFICATE_PROFILE", "SERVER", "EQUAL"), q("CERTIFICATE_PROFILE", "ENDUSER", "EQUAL")},
			[]string{early.SerialNumber, late.SerialNumber}},
		{"CA and QUERY", []crit{q("QUERY", "dave", "EQUAL"), q("CA", "IssuingCA", "EQUAL")}, []string{other.SerialNumber}},
		{"other CA", []crit{q("QUERY", "dave", "EQUAL"), q("CA", "RootCA", "EQUAL")}, nil},
		{"END_ENTITY_PROFILE", []crit{q("QUERY", "dave", "EQUAL"), q("END_ENTITY_PROFILE", "EMPTY", "EQUAL")}, []string{other.SerialNumber}},
		{"EXPIRE_DATE AFTER", []crit{q("QUERY", "carol", "EQUAL"), q("EXPIRE_DATE", clock.Now().UTC().AddDate(0, 0, 200).Format("2006-01-02T15:04:05Z"), "AFTER")},
			[]string{late.SerialNumber}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := h.serials(searchV1(50, tc.criteria...)); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}

	const issuer = "CN=IssuingCA,O=EJBCA Sim"
	if r := h.call(h.admin, "PUT", revokePath(issuer, early.SerialNumber, "reason=KEY_COMPROMISE"), nil); r.status != 200 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	for status, want := range map[string][]string{
		"CERT_ACTIVE":                       {late.SerialNumber},
		"CERT_REVOKED":                      {early.SerialNumber},
		"REVOCATION_REASON_KEYCOMPROMISE":   {early.SerialNumber},
		"REVOCATION_REASON_CERTIFICATEHOLD": nil,
	} {
		if got := h.serials(searchV1(50, q("QUERY", "carol", "EQUAL"), q("STATUS", status, "EQUAL"))); !slices.Equal(got, want) {
			t.Errorf("STATUS %s: %v, want %v", status, got, want)
		}
	}
	revokedAfter := clock.Now().UTC().Add(-time.Minute).Format("2006-01-02T15:04:05Z")
	if got := h.serials(searchV1(50, q("REVOCATION_DATE", revokedAfter, "AFTER"))); !slices.Equal(got, []string{early.SerialNumber}) {
		t.Errorf("REVOCATION_DATE: %v", got)
	}
}

type v2Page struct {
	Certificates []map[string]any `json:"certificates"`
	Summary      struct {
		PageSize    *int `json:"page_size"`
		CurrentPage *int `json:"current_page"`
		TotalCerts  *int `json:"total_certs"`
	} `json:"pagination_summary"`
}

// TestSearchV2Paging: a client can walk more certificates than one page.
// Pages hold page_size rows; every non-empty page carries
// total_certs = page_size*(current_page-1)+rows, as
// SearchCertificatesRestResponseV2.toRestResponse (9.x) computes it, so a
// full page's total_certs ends on that page. current_page -1 and no
// pagination only count; an empty page carries no total_certs.
func TestSearchV2Paging(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	var want []string
	for range 25 {
		e, _ := h.enroll("renewed", "ENDUSER")
		want = append(want, e.SerialNumber)
	}
	h.enroll("someone-else", "ENDUSER")
	criteria := []crit{q("QUERY", "renewed", "EQUAL"), q("CA", "IssuingCA", "EQUAL")}

	var got []string
	sizes := []int{}
	for page := 1; ; page++ {
		var p v2Page
		r := h.call(h.admin, "POST", "/v2/certificate/search", map[string]any{
			"pagination": map[string]int{"page_size": 10, "current_page": page}, "criteria": criteria,
		})
		r.decode(t, &p)
		if r.status != 200 || p.Summary.PageSize == nil || *p.Summary.PageSize != 10 || *p.Summary.CurrentPage != page {
			t.Fatalf("page %d: %d %s", page, r.status, r.body)
		}
		for _, row := range p.Certificates {
			got = append(got, row["serialNumber"].(string))
			cert := parseB64Cert(t, undoubleBase64(t, row["base64Cert"].(string)))
			if row["username"] != "renewed" || fmt.Sprintf("%X", cert.SerialNumber) != row["serialNumber"] {
				t.Fatalf("row %v", row)
			}
		}
		sizes = append(sizes, len(p.Certificates))
		if want := 10*(page-1) + len(p.Certificates); p.Summary.TotalCerts == nil || *p.Summary.TotalCerts != want {
			t.Fatalf("page %d total_certs, want %d: %s", page, want, r.body)
		}
		if len(p.Certificates) < 10 {
			break
		}
	}
	if !slices.Equal(got, want) || !slices.Equal(sizes, []int{10, 10, 5}) {
		t.Fatalf("walked %v (pages %v), want %v", got, sizes, want)
	}

	var count v2Page
	r := h.call(h.admin, "POST", "/v2/certificate/search", map[string]any{"criteria": criteria})
	r.decode(t, &count)
	if r.status != 200 || len(count.Certificates) != 0 || count.Summary.TotalCerts == nil || *count.Summary.TotalCerts != 25 || count.Summary.PageSize != nil {
		t.Fatalf("count only: %d %s", r.status, r.body)
	}
	var countPage v2Page
	r = h.call(h.admin, "POST", "/v2/certificate/search", map[string]any{
		"pagination": map[string]int{"page_size": 10, "current_page": -1}, "criteria": criteria,
	})
	r.decode(t, &countPage)
	if r.status != 200 || len(countPage.Certificates) != 0 || countPage.Summary.TotalCerts == nil || *countPage.Summary.TotalCerts != 25 {
		t.Fatalf("current_page -1: %d %s", r.status, r.body)
	}
	var beyond v2Page
	h.call(h.admin, "POST", "/v2/certificate/search", map[string]any{
		"pagination": map[string]int{"page_size": 10, "current_page": 9}, "criteria": criteria,
	}).decode(t, &beyond)
	if len(beyond.Certificates) != 0 || beyond.Summary.TotalCerts != nil {
		t.Fatalf("beyond the last page: %+v", beyond)
	}
	if c := h.sim.Counters(); c.Get("search-v2") != 6 {
		t.Fatalf("search-v2 calls %d", c.Get("search-v2"))
	}
}

// TestSearchOnEveryPreset: every version refuses USERNAME and finds by
// QUERY; v2 exists where the preset says so.
func TestSearchOnEveryPreset(t *testing.T) {
	for _, preset := range ejbcasim.PresetNames() {
		t.Run(preset, func(t *testing.T) {
			h := start(t, ejbcasim.Config{Preset: preset})
			e, _ := h.enroll("frank", "ENDUSER")
			h.call(h.admin, "POST", "/v1/certificate/search", searchV1(10, q("USERNAME", "frank", "EQUAL"))).
				expectError(t, 400, "Invalid search criteria's property, unrecognized.")
			if got := h.serials(searchV1(10, q("QUERY", "frank", "EQUAL"), q("CA", "IssuingCA", "EQUAL"))); !slices.Equal(got, []string{e.SerialNumber}) {
				t.Fatalf("QUERY: %v", got)
			}
			r := h.call(h.admin, "POST", "/v2/certificate/search", map[string]any{
				"pagination": map[string]int{"page_size": 5, "current_page": 1}, "criteria": []crit{q("QUERY", "frank", "EQUAL")},
			})
			if want := map[bool]int{true: 200, false: 404}[h.sim.Behaviour().SearchV2]; r.status != want {
				t.Fatalf("v2: %d %s", r.status, r.body)
			}
		})
	}
}
