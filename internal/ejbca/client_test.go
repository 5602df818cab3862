package ejbca_test

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
)

func TestBaseURL(t *testing.T) {
	t.Parallel()
	ok := []struct{ in, want string }{
		{"https://ejbca.example.com", "https://ejbca.example.com/ejbca/ejbca-rest-api"},
		{"https://ejbca.example.com/", "https://ejbca.example.com/ejbca/ejbca-rest-api"},
		{"https://ejbca.example.com:8443", "https://ejbca.example.com:8443/ejbca/ejbca-rest-api"},
		{"  https://ejbca.example.com:8443/  ", "https://ejbca.example.com:8443/ejbca/ejbca-rest-api"},
		{"https://ejbca.example.com/ejbca/ejbca-rest-api", "https://ejbca.example.com/ejbca/ejbca-rest-api"},
		{"https://ejbca.example.com/ejbca/ejbca-rest-api/", "https://ejbca.example.com/ejbca/ejbca-rest-api"},
		{"https://proxy.example.com/pki/ejbca-rest", "https://proxy.example.com/pki/ejbca-rest"},
		{"https://[::1]:8443", "https://[::1]:8443/ejbca/ejbca-rest-api"},
	}
	for _, tc := range ok {
		u, err := ejbca.BaseURL(tc.in)
		if err != nil {
			t.Errorf("BaseURL(%q): %v", tc.in, err)
			continue
		}
		if got := u.String(); got != tc.want {
			t.Errorf("BaseURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	bad := []struct{ in, want string }{
		{"http://ejbca.example.com", "only https"},
		{"http://ejbca.example.com/ejbca/ejbca-rest-api", "only https"},
		{"ejbca.example.com", "only https"},
		{"https://ejbca.example.com/?x=1", "query"},
		{"https://ejbca.example.com/ejbca/ejbca-rest-api?x=1", "query"},
		{"https://ejbca.example.com/#frag", "fragment"},
		{"https://", "no host"},
		{"https://ejbca.example.com/%zz", "ejbca.example.com"},
	}
	for _, tc := range bad {
		u, err := ejbca.BaseURL(tc.in)
		if err == nil {
			t.Errorf("BaseURL(%q) = %v, want an error", tc.in, u)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("BaseURL(%q) error %q does not mention %q", tc.in, err, tc.want)
		}
	}
	// New applies the same rules.
	if _, err := ejbca.New(ejbca.Options{URL: "http://ejbca.example.com", BearerToken: "t"}); err == nil {
		t.Error("New accepted an http URL")
	}
}

func TestNewNeedsExactlyOneCredential(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	pair := certPair(t, sim.ClientCertPEM(), sim.ClientKeyPEM())
	cc := &ejbca.ClientCredentials{TokenURL: sim.TokenURL(), ClientID: "id", ClientSecret: "secret"}
	cases := map[string]ejbca.Options{
		"none":                {URL: sim.URL()},
		"cert and token":      {URL: sim.URL(), ClientCertificate: pair, BearerToken: "t"},
		"token and oauth2":    {URL: sim.URL(), BearerToken: "t", ClientCredentials: cc},
		"all three":           {URL: sim.URL(), ClientCertificate: pair, BearerToken: "t", ClientCredentials: cc},
		"http token URL":      {URL: sim.URL(), ClientCredentials: &ejbca.ClientCredentials{TokenURL: "http://127.0.0.1/token", ClientID: "id", ClientSecret: "s"}},
		"no client secret":    {URL: sim.URL(), ClientCredentials: &ejbca.ClientCredentials{TokenURL: sim.TokenURL(), ClientID: "id"}},
		"no client id":        {URL: sim.URL(), ClientCredentials: &ejbca.ClientCredentials{TokenURL: sim.TokenURL(), ClientSecret: "s"}},
		"relative token URL":  {URL: sim.URL(), ClientCredentials: &ejbca.ClientCredentials{TokenURL: "/oauth2/token", ClientID: "id", ClientSecret: "s"}},
		"URL with query only": {URL: sim.URL() + "?a=b", BearerToken: "t"},
	}
	for name, o := range cases {
		if c, err := ejbca.New(o); err == nil {
			c.Close()
			t.Errorf("%s: New succeeded, want an error", name)
		}
	}
	if got := sim.Counters(); got.Get("token") != 0 || got.TLSHandshakes != 0 {
		t.Errorf("New made network calls: %+v", got)
	}
}

// TestEveryEndpoint drives every client method in each auth mode against its
// own simulator and checks what the simulator saw.
func TestEveryEndpoint(t *testing.T) {
	t.Parallel()
	for _, mode := range allModes {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			sim := startSim(t, ejbcasim.Config{})
			c := clientFor(t, sim, mode)
			ctx := ctxFor(t)

			st, err := c.Status(ctx)
			if err != nil {
				t.Fatalf("Status: %v", err)
			}
			if st.Status != "OK" || !strings.Contains(st.Revision, "EJBCA") {
				t.Errorf("Status = %+v", st)
			}

			cas, err := c.ListCAs(ctx)
			if err != nil {
				t.Fatalf("ListCAs: %v", err)
			}
			var found *ejbca.CA
			for i := range cas {
				if cas[i].Name == issuingCA {
					found = &cas[i]
				}
			}
			if found == nil {
				t.Fatalf("ListCAs has no %s: %+v", issuingCA, cas)
			}
			if found.SubjectDN != issuingCADN || found.IssuerDN != rootCADN || found.ID != sim.CAID(issuingCA) || found.External {
				t.Errorf("IssuingCA entry = %+v", *found)
			}
			if _, err := time.Parse("2006-01-02T15:04:05Z", found.ExpirationDate); err != nil {
				t.Errorf("expiration_date %q: %v", found.ExpirationDate, err)
			}

			chain, err := c.CAChain(ctx, issuingCADN)
			if err != nil {
				t.Fatalf("CAChain: %v", err)
			}
			if len(chain) != 2 || !chain[0].Equal(sim.IssuingCA()) || !chain[1].Equal(sim.RootCA()) {
				t.Errorf("CAChain returned %d certificates, want IssuingCA then RootCA", len(chain))
			}

			// One-call enrolment.
			user := "web-" + string(mode)
			csr, key := newCSR(t, csrSpec{
				cn: "web.example.com", org: "Acme",
				dns:  []string{"web.example.com", "www.example.com"},
				ips:  []net.IP{net.ParseIP("192.0.2.10"), net.ParseIP("2001:db8::10")},
				uris: []string{"spiffe://example.com/ns/default/sa/web"},
			})
			attempt := time.Now()
			cert, err := c.Enroll(ctx, enrolment(csr, user))
			if err != nil {
				t.Fatalf("Enroll: %v", err)
			}
			checkIssued(t, sim, cert, key)
			checkSubjectAndSANs(t, cert.Leaf, "web.example.com", "Acme",
				[]string{"web.example.com", "www.example.com"}, []string{"192.0.2.10", "2001:db8::10"},
				[]string{"spiffe://example.com/ns/default/sa/web"})

			// An end entity added without approval enrols at once.
			add, err := c.AddEndEntity(ctx, ejbca.EndEntity{
				Username: "ee-" + string(mode), Password: enrolPassword,
				SubjectDN: "CN=ee.example.com,O=Acme", SubjectAltName: "dNSName=ee.example.com",
				CAName: issuingCA, CertificateProfileName: certProfile, EndEntityProfileName: eeProfile,
			})
			if err != nil || add != (ejbca.Addition{}) {
				t.Fatalf("AddEndEntity without approval = %+v, %v; want a zero Addition", add, err)
			}
			eeCSR, eeKey := newCSR(t, csrSpec{cn: "ignored.example.com", dns: []string{"ignored.example.com"}})
			eeCert, err := c.EnrollForEndEntity(ctx, ejbca.EnrollForEndEntityRequest{
				CSR: eeCSR, Username: "ee-" + string(mode), Password: enrolPassword, CAName: issuingCA,
			})
			if err != nil {
				t.Fatalf("EnrollForEndEntity: %v", err)
			}
			checkIssued(t, sim, eeCert, eeKey)
			// The end entity's subject and alternative names win over the CSR's.
			checkSubjectAndSANs(t, eeCert.Leaf, "ee.example.com", "Acme", []string{"ee.example.com"}, nil, nil)

			// The approval flow, decided through the REST API.
			apprUser := "approved-" + string(mode)
			add, err = c.AddEndEntity(ctx, ejbca.EndEntity{
				Username: apprUser, Password: enrolPassword, SubjectDN: "CN=approved.example.com",
				CAName: issuingCA, CertificateProfileName: approvalProf, EndEntityProfileName: eeProfile,
			})
			if err != nil || !add.WaitingForApproval || add.RequestID <= 0 {
				t.Fatalf("AddEndEntity with approval = %+v, %v; want a request id", add, err)
			}
			id := add.RequestID
			if state, err := c.ApprovalStatus(ctx, id); err != nil || state != ejbca.ApprovalPending {
				t.Fatalf("ApprovalStatus = %q, %v; want PENDING", state, err)
			}
			if err := c.ProcessApproval(ctx, id, true, "approved by TestEveryEndpoint"); err != nil {
				t.Fatalf("ProcessApproval(approve): %v", err)
			}
			if state, err := c.ApprovalStatus(ctx, id); err != nil || !state.Approved() {
				t.Fatalf("ApprovalStatus after approval = %q, %v; want approved", state, err)
			}
			apprCSR, apprKey := simpleCSR(t, "approved.example.com")
			apprCert, err := c.EnrollForEndEntity(ctx, ejbca.EnrollForEndEntityRequest{
				CSR: apprCSR, Username: apprUser, Password: enrolPassword, CAName: issuingCA,
			})
			if err != nil {
				t.Fatalf("EnrollForEndEntity after approval: %v", err)
			}
			checkIssued(t, sim, apprCert, apprKey)

			add, err = c.AddEndEntity(ctx, ejbca.EndEntity{
				Username: "rejected-" + string(mode), Password: enrolPassword, SubjectDN: "CN=rejected.example.com",
				CAName: issuingCA, CertificateProfileName: approvalProf, EndEntityProfileName: eeProfile,
			})
			if err != nil || add.RequestID <= 0 {
				t.Fatalf("AddEndEntity = %+v, %v", add, err)
			}
			rejected := add.RequestID
			if err := c.ProcessApproval(ctx, rejected, false, "rejected by TestEveryEndpoint"); err != nil {
				t.Fatalf("ProcessApproval(reject): %v", err)
			}
			if state, err := c.ApprovalStatus(ctx, rejected); err != nil || !state.Refused() || state != ejbca.ApprovalRejected {
				t.Fatalf("ApprovalStatus after rejection = %q, %v; want REJECTED", state, err)
			}

			// Revocation.
			rs, err := c.RevocationStatus(ctx, issuingCADN, cert.SerialNumber)
			if err != nil {
				t.Fatalf("RevocationStatus: %v", err)
			}
			if rs.Revoked || rs.RevocationReason != ejbca.ReasonNotRevoked {
				t.Errorf("RevocationStatus of an active certificate = %+v", rs)
			}
			rs, err = c.Revoke(ctx, issuingCADN, cert.SerialNumber, ejbca.ReasonKeyCompromise, time.Time{})
			if err != nil {
				t.Fatalf("Revoke: %v", err)
			}
			if !rs.Revoked || rs.RevocationReason != ejbca.ReasonKeyCompromise || rs.Message != "Successfully revoked" ||
				rs.SerialNumber != cert.SerialNumber || rs.IssuerDN != issuingCADN || rs.RevocationDate == "" {
				t.Errorf("Revoke = %+v", rs)
			}
			rs, err = c.RevocationStatus(ctx, issuingCADN, cert.SerialNumber)
			if err != nil || !rs.Revoked || rs.RevocationReason != ejbca.ReasonKeyCompromise {
				t.Errorf("RevocationStatus after Revoke = %+v, %v", rs, err)
			}

			// Recovery.
			if none, err := c.FindIssued(ctx, ejbca.FindRequest{Username: "nobody", CAName: issuingCA, CSR: csr,
				IssuedAfter: attempt.Add(-backdateAllowance)}); err != nil || none != nil {
				t.Errorf("FindIssued(nobody) = %v, %v; want nil, nil", none, err)
			}
			recovered, err := c.FindIssued(ctx, ejbca.FindRequest{Username: user, CAName: issuingCA, CSR: csr,
				IssuedAfter: attempt.Add(-backdateAllowance)})
			if err != nil {
				t.Fatalf("FindIssued: %v", err)
			}
			if recovered == nil || !recovered.Leaf.Equal(cert.Leaf) {
				t.Fatal("FindIssued did not return the enrolled certificate")
			}
			checkIssued(t, sim, recovered, key)

			got := sim.Counters()
			want := map[string]map[int]int{
				"status":             {200: 1},
				"ca":                 {200: 1},
				"ca-download":        {200: 2}, // CAChain and FindIssued
				"pkcs10enroll":       {201: 1},
				"endentity":          {200: 1, 202: 2},
				"approval-status":    {200: 3},
				"approval-process":   {200: 2},
				"certificaterequest": {201: 2},
				"revoke":             {200: 1},
				"revocationstatus":   {200: 2},
				"search-v2":          {200: 2},
			}
			if mode == modeOAuth2 {
				want["token"] = map[int]int{200: 1}
			}
			checkCalls(t, got, want)
			wantTokens := 0
			if mode == modeOAuth2 {
				wantTokens = 1
			}
			if got.TokensIssued != wantTokens {
				t.Errorf("TokensIssued = %d, want %d", got.TokensIssued, wantTokens)
			}
			if got.Enrollments != 3 {
				t.Errorf("Enrollments = %d, want 3", got.Enrollments)
			}
			if got.TLSHandshakes != 1 {
				t.Errorf("TLSHandshakes = %d, want 1 (one kept-alive connection)", got.TLSHandshakes)
			}
		})
	}
}

// checkCalls compares the simulator's per-endpoint call counts with want.
func checkCalls(t *testing.T, got ejbcasim.Counters, want map[string]map[int]int) {
	t.Helper()
	for ep, byStatus := range want {
		for status, n := range byStatus {
			if got.Calls[ep][status] != n {
				t.Errorf("calls to %s with status %d = %d, want %d (all: %v)", ep, status, got.Calls[ep][status], n, got.Calls[ep])
			}
		}
		if got.Get(ep) != sum(byStatus) {
			t.Errorf("calls to %s = %v, want %v", ep, got.Calls[ep], byStatus)
		}
	}
	for ep := range got.Calls {
		if _, ok := want[ep]; !ok {
			t.Errorf("unexpected calls to %s: %v", ep, got.Calls[ep])
		}
	}
}

func sum(m map[int]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func checkSubjectAndSANs(t *testing.T, leaf *x509.Certificate, cn, org string, dns, ips, uris []string) {
	t.Helper()
	if leaf.Subject.CommonName != cn {
		t.Errorf("subject CN = %q, want %q", leaf.Subject.CommonName, cn)
	}
	if org != "" && (len(leaf.Subject.Organization) != 1 || leaf.Subject.Organization[0] != org) {
		t.Errorf("subject O = %v, want %q", leaf.Subject.Organization, org)
	}
	if !sameStrings(leaf.DNSNames, dns) {
		t.Errorf("DNS SANs = %v, want %v", leaf.DNSNames, dns)
	}
	var gotIPs []string
	for _, ip := range leaf.IPAddresses {
		gotIPs = append(gotIPs, ip.String())
	}
	if !sameStrings(gotIPs, ips) {
		t.Errorf("IP SANs = %v, want %v", gotIPs, ips)
	}
	var gotURIs []string
	for _, u := range leaf.URIs {
		gotURIs = append(gotURIs, u.String())
	}
	if !sameStrings(gotURIs, uris) {
		t.Errorf("URI SANs = %v, want %v", gotURIs, uris)
	}
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		seen[s]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

func TestFullBaseURLAndWrongBasePath(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)

	o := options(t, sim, modeMTLS)
	o.URL = sim.BaseURL() + "/"
	c := newClient(t, o)
	if _, err := c.ListCAs(ctx); err != nil {
		t.Fatalf("ListCAs with the full base URL: %v", err)
	}

	o.URL = sim.URL() + "/somewhere/else"
	wrong := newClient(t, o)
	_, err := wrong.ListCAs(ctx)
	// Not EJBCA's JSON 404: something in front of EJBCA answered, which may
	// pass (a route being reloaded) and is said so.
	if !ejbca.IsRetryable(err) {
		t.Fatalf("ListCAs under a wrong base path = %v, want retryable", err)
	}
	if e := asError(t, err); e.StatusCode != 404 || e.Endpoint != "GET /v1/ca" || !e.Proxy ||
		!strings.Contains(e.Message, "a proxy or web server in front of EJBCA answered") || !strings.Contains(e.Message, "non-JSON") {
		t.Errorf("error = %+v", e)
	}
}

func TestTrustComesFromRoots(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)

	// Only the simulator's TLS CA: works.
	o := options(t, sim, modeMTLS)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(sim.CABundlePEM()) {
		t.Fatal("no CA in CABundlePEM")
	}
	o.Roots = pool
	if _, err := newClient(t, o).ListCAs(ctx); err != nil {
		t.Fatalf("ListCAs trusting the CA bundle: %v", err)
	}

	// System roots: the handshake fails, before any call is handled.
	sim.ResetCounters()
	for _, mode := range allModes {
		o := options(t, sim, mode)
		o.Roots = nil
		_, err := newClient(t, o).ListCAs(ctx)
		if err == nil {
			t.Fatalf("%s: ListCAs with system roots succeeded", mode)
		}
		if !ejbca.IsRetryable(err) || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("%s: error %v: want retryable and mentioning the certificate", mode, err)
		}
	}
	// A pool with the wrong CA (the issuing PKI's root) fails alike.
	o = options(t, sim, modeToken)
	wrongPool := x509.NewCertPool()
	wrongPool.AddCert(sim.RootCA())
	o.Roots = wrongPool
	if _, err := newClient(t, o).Status(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Status trusting the wrong CA = %v, want a certificate error", err)
	}
	if got := sim.Counters(); got.Get("ca") != 0 || got.Get("status") != 0 || got.Get("token") != 0 {
		t.Errorf("untrusted server still handled calls: %v", got.Calls)
	}
}

func TestOnRoundTrip(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)

	type call struct {
		endpoint string
		status   int
		took     time.Duration
	}
	var mu sync.Mutex
	var calls []call
	o := options(t, sim, modeOAuth2)
	o.OnRoundTrip = func(endpoint string, status int, took time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, call{endpoint, status, took})
	}
	c := newClient(t, o)

	if _, err := c.Status(ctx); err != nil {
		t.Fatal(err)
	}
	csr, _ := simpleCSR(t, "hook.example.com")
	cert, err := c.Enroll(ctx, enrolment(csr, "hook"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RevocationStatus(ctx, issuingCADN, "ABCDEF"); !ejbca.IsNotFound(err) {
		t.Fatalf("RevocationStatus(unknown) = %v", err)
	}
	if _, err := c.Revoke(ctx, issuingCADN, cert.SerialNumber, ejbca.ReasonSuperseded, time.Time{}); err != nil {
		t.Fatal(err)
	}
	// (A POST: net/http itself retries an idempotent GET once on a reused
	// connection that breaks.)
	sim.InjectFault("pkcs10enroll", ejbcasim.Fault{Count: 1, ResetBeforeHandling: true})
	if _, err := c.Enroll(ctx, enrolment(csr, "hook")); err == nil {
		t.Fatal("Enroll over a reset connection succeeded")
	}

	want := []call{
		{"GET /v1/certificate/status", 200, 0},
		{"POST /v1/certificate/pkcs10enroll", 201, 0},
		{"GET /v1/certificate/{issuer_dn}/{serial}/revocationstatus", 404, 0},
		{"PUT /v1/certificate/{issuer_dn}/{serial}/revoke", 200, 0},
		{"POST /v1/certificate/pkcs10enroll", 0, 0},
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != len(want) {
		t.Fatalf("OnRoundTrip saw %d calls %+v, want %d", len(calls), calls, len(want))
	}
	for i, w := range want {
		if calls[i].endpoint != w.endpoint || calls[i].status != w.status {
			t.Errorf("call %d = %s %d, want %s %d", i, calls[i].endpoint, calls[i].status, w.endpoint, w.status)
		}
		if calls[i].took <= 0 {
			t.Errorf("call %d took %v", i, calls[i].took)
		}
	}
}

func TestTimeoutOption(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	sim.InjectFault("ca", ejbcasim.Fault{Latency: 10 * time.Second})
	o := options(t, sim, modeMTLS)
	o.Timeout = 300 * time.Millisecond
	c := newClient(t, o)

	start := time.Now()
	_, err := c.ListCAs(context.Background())
	took := time.Since(start)
	if err == nil {
		t.Fatal("ListCAs succeeded past the timeout")
	}
	if !ejbca.IsRetryable(err) {
		t.Errorf("timeout error %v is not retryable", err)
	}
	if took < 250*time.Millisecond || took > 3*time.Second {
		t.Errorf("ListCAs gave up after %v, want about 300ms", took)
	}
	if e := asError(t, err); e.Endpoint != "GET /v1/ca" || e.StatusCode != 0 {
		t.Errorf("error = %+v", e)
	}
	// The simulator saw the call end without an answer.
	waitFor(t, "the abandoned call to be counted", func() bool { return sim.Counters().Calls["ca"][0] == 1 })

	// The timeout also bounds a fast server: other calls still work.
	if _, err := c.Status(context.Background()); err != nil {
		t.Errorf("Status after a timeout: %v", err)
	}
}

func TestContextDeadlineAndCancel(t *testing.T) {
	t.Parallel()
	for _, mode := range allModes {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			sim := startSim(t, ejbcasim.Config{})
			sim.InjectFault("pkcs10enroll", ejbcasim.Fault{Latency: 10 * time.Second})
			if mode == modeOAuth2 {
				// The token fetch must honour the caller's context too.
				sim.InjectFault("token", ejbcasim.Fault{Count: 1, Latency: 10 * time.Second})
			}
			c := clientFor(t, sim, mode) // Timeout 10s: the context is shorter
			csr, _ := simpleCSR(t, "slow.example.com")

			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := c.Enroll(ctx, enrolment(csr, "slow"))
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("Enroll returned %v after the deadline", took)
			}
			if !errors.Is(err, context.DeadlineExceeded) || !ejbca.IsRetryable(err) {
				t.Errorf("Enroll past the deadline = %v, want a retryable deadline error", err)
			}

			ctx, cancel = context.WithCancel(context.Background())
			time.AfterFunc(150*time.Millisecond, cancel)
			start = time.Now()
			_, err = c.Enroll(ctx, enrolment(csr, "slow"))
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("Enroll returned %v after cancellation", took)
			}
			if !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled Enroll = %v, want context.Canceled", err)
			}
			if got := sim.Counters().Enrollments; got != 0 {
				t.Errorf("Enrollments = %d, want 0", got)
			}
		})
	}
}

// waitFor polls cond for up to 5 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestConnectionReuse(t *testing.T) {
	t.Parallel()
	for _, mode := range []authMode{modeMTLS, modeOAuth2} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			const workers, total = 8, 200
			sim := startSim(t, ejbcasim.Config{})
			o := options(t, sim, mode)
			o.MaxIdleConnsPerHost = workers // as documented: at least the concurrent callers
			c := newClient(t, o)
			csr, key := simpleCSR(t, "pool.example.com")
			sim.ResetCounters()

			jobs := make(chan int)
			errs := make(chan error, total)
			var wg sync.WaitGroup
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range jobs {
						cert, err := c.Enroll(context.Background(), enrolment(csr, "pool"))
						if err == nil && !key.PublicKey.Equal(cert.Leaf.PublicKey) {
							err = errors.New("wrong key")
						}
						if err != nil {
							errs <- err
						}
					}
				}()
			}
			for i := 0; i < total; i++ {
				jobs <- i
			}
			close(jobs)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("Enroll: %v", err)
			}

			got := sim.Counters()
			if got.Enrollments != total || got.Calls["pkcs10enroll"][201] != total {
				t.Errorf("Enrollments = %d, 201s = %d, want %d", got.Enrollments, got.Calls["pkcs10enroll"][201], total)
			}
			// With OAuth2 the token is fetched first, on a connection that
			// may not be back in the pool yet when all workers call at once.
			maxHandshakes := workers
			if mode == modeOAuth2 {
				maxHandshakes++
			}
			if got.TLSHandshakes > maxHandshakes {
				t.Errorf("TLSHandshakes = %d for %d enrolments from %d goroutines, want <= %d", got.TLSHandshakes, total, workers, maxHandshakes)
			}
			wantTokens := 0
			if mode == modeOAuth2 {
				wantTokens = 1
			}
			if got.TokensIssued != wantTokens || got.Get("token") != wantTokens {
				t.Errorf("TokensIssued = %d (token calls %v), want %d", got.TokensIssued, got.Calls["token"], wantTokens)
			}
		})
	}
}

func TestCertificateProfile(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	for _, preset := range ejbcasim.PresetNames() {
		sim := startSim(t, ejbcasim.Config{Preset: preset})
		c := clientFor(t, sim, modeMTLS)
		info, err := c.CertificateProfile(ctx, "SERVER")
		if !sim.Behaviour().CertificateProfileAPI {
			if !ejbca.IsUnsupported(err) {
				t.Errorf("%s: CertificateProfile = %v, want unsupported", preset, err)
			}
			continue
		}
		if err != nil || !slices.Contains(info.AvailableCAs, "IssuingCA") {
			t.Errorf("%s: CertificateProfile(SERVER) = %+v, %v", preset, info, err)
		}
		if _, err := c.CertificateProfile(ctx, "SERVERX"); !ejbca.IsNotFound(err) || !strings.Contains(err.Error(), "unknown certificate profile") {
			t.Errorf("%s: CertificateProfile(SERVERX) = %v, want not found", preset, err)
		}
	}
}
