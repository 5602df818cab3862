package ejbcasim_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
)

func usernameCriteria(username string, max int) map[string]any {
	return map[string]any{
		"max_number_of_results": max,
		"criteria":              []map[string]string{{"property": "QUERY", "value": username, "operation": "EQUAL"}},
	}
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

func TestSearchV1(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	var want []string
	for range 3 {
		e, _ := h.enroll("alice", "ENDUSER")
		want = append(want, e.SerialNumber)
	}
	h.enroll("bob", "ENDUSER")

	var res struct {
		Certificates []struct {
			CertificateID    string   `json:"certificate_id"`
			SerialNumber     string   `json:"serial_number"`
			ResponseFormat   string   `json:"response_format"`
			Certificate      string   `json:"certificate"`
			CertificateChain []string `json:"certificate_chain"`
		} `json:"certificates"`
		MoreResults bool `json:"more_results"`
	}
	r := h.call(h.admin, "POST", "/v1/certificate/search", usernameCriteria("alice", 2))
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

	h.call(h.admin, "POST", "/v1/certificate/search", usernameCriteria("alice", 0)).
		expectError(t, 400, "Invalid maximum number of results, can not be less or equal to zero.")
	h.call(h.admin, "POST", "/v1/certificate/search", usernameCriteria("alice", 401)).
		expectError(t, 400, "Invalid maximum number of results, can not be more than 400.")
	r = h.call(h.admin, "POST", "/v1/certificate/search", usernameCriteria("nobody", 10))
	r.decode(t, &res)
	if len(res.Certificates) != 0 || res.MoreResults {
		t.Fatalf("no match: %s", r.body)
	}
}

func TestSearchV2(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	e, cert := h.enroll("carol", "SERVER")
	var res struct {
		Certificates []map[string]any `json:"certificates"`
		Summary      struct {
			PageSize    int `json:"page_size"`
			CurrentPage int `json:"current_page"`
			TotalCerts  int `json:"total_certs"`
		} `json:"pagination_summary"`
	}
	r := h.call(h.admin, "POST", "/v2/certificate/search", map[string]any{
		"pagination": map[string]int{"page_size": 10, "current_page": 1},
		"criteria":   []map[string]string{{"property": "QUERY", "value": "carol", "operation": "EQUAL"}},
	})
	r.decode(t, &res)
	if r.status != 200 || len(res.Certificates) != 1 || res.Summary.TotalCerts != 1 {
		t.Fatalf("v2 search: %d %s", r.status, r.body)
	}
	row := res.Certificates[0]
	got := parseB64Cert(t, undoubleBase64(t, row["base64Cert"].(string)))
	if !got.Equal(cert) || row["serialNumber"] != e.SerialNumber || row["username"] != "carol" {
		t.Fatalf("v2 row %v (serial %s)", row, e.SerialNumber)
	}
	if c := h.sim.Counters(); c.Get("search-v2") != 1 {
		t.Fatalf("search-v2 calls %d", c.Get("search-v2"))
	}
}
