package ejbcasim_test

import (
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
)

func TestCAList(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	// A third level: its issuer_dn is its direct issuer, not the root.
	if _, err := h.sim.AddCA("SubIssuingCA", "CN=SubIssuingCA,O=EJBCA Sim", "IssuingCA"); err != nil {
		t.Fatal(err)
	}
	var list struct {
		CAs []struct {
			ID             int    `json:"id"`
			Name           string `json:"name"`
			SubjectDN      string `json:"subject_dn"`
			IssuerDN       string `json:"issuer_dn"`
			ExpirationDate string `json:"expiration_date"`
			External       bool   `json:"external"`
		} `json:"certificate_authorities"`
	}
	h.call(h.admin, "GET", "/v1/ca", nil).decode(t, &list)
	byName := map[string]int{}
	for i, ca := range list.CAs {
		byName[ca.Name] = i
	}
	issuing, ok := byName["IssuingCA"]
	if _, mgmt := byName["ManagementCA"]; !ok || !mgmt {
		t.Fatalf("CA list %+v", list.CAs)
	}
	ca := list.CAs[issuing]
	if ca.ID != h.sim.CAID("IssuingCA") || ca.SubjectDN != "CN=IssuingCA,O=EJBCA Sim" || ca.IssuerDN != "CN=EJBCA Sim Root CA" ||
		!strings.HasSuffix(ca.ExpirationDate, "Z") || ca.External {
		t.Fatalf("IssuingCA entry %+v", ca)
	}
	if sub := list.CAs[byName["SubIssuingCA"]]; sub.IssuerDN != "CN=IssuingCA,O=EJBCA Sim" {
		t.Fatalf("SubIssuingCA's issuer_dn %q, want its direct issuer", sub.IssuerDN)
	}
}

func TestCADownloadNormalisesDN(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	if _, err := h.sim.AddCA("SlashCA", "CN=Team/Ops CA,O=EJBCA Sim", "RootCA"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path  string
		certs int
	}{
		{"/v1/ca/" + url.PathEscape("CN=IssuingCA,O=EJBCA Sim") + "/certificate/download", 2},
		{"/v1/ca/" + url.PathEscape("O=EJBCA Sim, CN=IssuingCA") + "/certificate/download", 2},
		{"/v1/ca/O%3DEJBCA%20Sim%2Ccn%3DIssuingCA/certificate/download", 2},
		{"/v1/ca/" + url.PathEscape("CN=EJBCA Sim Root CA") + "/certificate/download", 1},
		{"/v1/ca/" + url.PathEscape("O=EJBCA Sim,CN=Team/Ops CA") + "/certificate/download", 2},
	} {
		r := h.call(h.admin, "GET", tc.path, nil)
		if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Disposition"), "attachment") {
			t.Fatalf("%s: %d %v %s", tc.path, r.status, r.header, r.body)
		}
		n, rest := 0, r.body
		for {
			var block *pem.Block
			if block, rest = pem.Decode(rest); block == nil {
				break
			}
			n++
		}
		if n != tc.certs {
			t.Errorf("%s: %d certificates, want %d", tc.path, n, tc.certs)
		}
	}
	if r := h.call(h.admin, "GET", "/v1/ca/"+url.PathEscape("CN=Nobody")+"/certificate/download", nil); r.status != 404 {
		t.Fatalf("unknown CA: %d", r.status)
	}
}

func TestProtocolDisabled(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	h.sim.SetProtocolEnabled(false)
	for _, tc := range []struct {
		client *http.Client
		path   string
	}{
		{h.anon, "/v1/certificate/status"},
		{h.admin, "/v1/ca"},
		{h.admin, "/v1/no/such/resource"},
	} {
		r := h.call(tc.client, "GET", tc.path, nil)
		if r.status != 403 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || !strings.Contains(string(r.body), "<html>") {
			t.Fatalf("%s: %d %q %s", tc.path, r.status, r.header.Get("Content-Type"), r.body)
		}
	}
	h.sim.SetProtocolEnabled(true)
	if r := h.call(h.admin, "GET", "/v1/ca", nil); r.status != 200 {
		t.Fatalf("re-enabled: %d", r.status)
	}
	h.call(h.admin, "GET", "/v1/no/such/resource", nil).expectError(t, 404,
		"RESTEASY003210: Could not find resource for full path: "+h.sim.BaseURL()+"/v1/no/such/resource")
}

func TestSetDown(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	if r := h.call(h.admin, "GET", "/v1/ca", nil); r.status != 200 {
		t.Fatalf("up: %d", r.status)
	}
	h.sim.SetDown(true)
	// Both the idle keep-alive connection and new ones are refused.
	for range 2 {
		if r, err := h.try(h.admin, "GET", "/v1/ca", nil); err == nil {
			t.Fatalf("down, but got %d", r.status)
		}
	}
	h.sim.SetDown(false)
	if r := h.call(h.admin, "GET", "/v1/ca", nil); r.status != 200 {
		t.Fatalf("up again: %d", r.status)
	}
}

func TestCountersEndpoint(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	h.call(h.anon, "GET", "/v1/certificate/status", nil)
	h.call(h.anon, "GET", "/v1/ca", nil)
	var c struct {
		Calls         map[string]map[string]int `json:"calls"`
		TLSHandshakes int                       `json:"tls_handshakes"`
	}
	r := h.call(h.anon, "GET", "/sim/counters", nil)
	if err := json.Unmarshal(r.body, &c); err != nil {
		t.Fatalf("%v: %s", err, r.body)
	}
	if c.Calls["status"]["200"] != 1 || c.Calls["ca"]["403"] != 1 || c.TLSHandshakes < 1 {
		t.Fatalf("counters %s", r.body)
	}
	h.sim.ResetCounters()
	if got := h.sim.Counters(); len(got.Calls) != 0 || got.TLSHandshakes != 0 {
		t.Fatalf("after reset %+v", got)
	}
}

func TestConcurrentEnrolmentsOverKeepAlive(t *testing.T) {
	h := start(t, ejbcasim.Config{})
	const workers, each = 16, 5
	csrs := make([]string, workers)
	for i := range csrs {
		csrs[i], _ = newCSR(t, csrSpec{cn: "load"})
	}
	var wg sync.WaitGroup
	errs := make(chan string, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				r, err := h.try(h.admin, "POST", "/v1/certificate/pkcs10enroll", enrollBody(csrs[w], "load", "ENDUSER"))
				if err != nil || r.status != 201 {
					errs <- string(r.body)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("failed enrolment: %s", e)
	}
	c := h.sim.Counters()
	serials := map[string]bool{}
	for _, ic := range h.sim.Issued() {
		serials[ic.Serial.Text(16)] = true
	}
	if c.Enrollments != workers*each || len(serials) != workers*each {
		t.Fatalf("%d enrolments, %d distinct serials", c.Enrollments, len(serials))
	}
	if c.TLSHandshakes >= workers*each {
		t.Errorf("%d TLS handshakes for %d calls: keep-alive not working", c.TLSHandshakes, workers*each)
	}
}
