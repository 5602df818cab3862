package ejbca_test

import (
	"crypto/ecdsa"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
)

// fakeClock is a simulator clock tests move by hand.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t.UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// searchVariants are the simulator set-ups recovery must work on: every
// preset, and one without the v2 search (v1 only, as older versions).
func searchVariants(t *testing.T) map[string]ejbcasim.Config {
	t.Helper()
	out := map[string]ejbcasim.Config{}
	for _, name := range ejbcasim.PresetNames() {
		out[name] = ejbcasim.Config{Preset: name}
	}
	b, err := ejbcasim.PresetBehaviour(ejbcasim.DefaultPreset)
	if err != nil {
		t.Fatal(err)
	}
	b.SearchV2 = false
	out["v1 search only"] = ejbcasim.Config{Behaviour: &b}
	return out
}

// findRequest is the usual FindIssued request for username's CSR.
func findRequest(username string, csr []byte, after time.Time) ejbca.FindRequest {
	return ejbca.FindRequest{Username: username, CAName: issuingCA, CSR: csr, IssuedAfter: after}
}

// A lost pkcs10enroll answer is recovered by search, on every preset and
// search version, with one enrolment in all.
func TestFindIssuedRecoversLostAnswer(t *testing.T) {
	t.Parallel()
	for name, cfg := range searchVariants(t) {
		for _, mode := range []authMode{modeMTLS, modeOAuth2} {
			t.Run(name+"/"+string(mode), func(t *testing.T) {
				t.Parallel()
				sim := startSim(t, cfg)
				ctx := ctxFor(t)
				c := clientFor(t, sim, mode)

				// An older certificate of the same end entity, for another key.
				oldCSR, _ := simpleCSR(t, "lost.example.com")
				if _, err := c.Enroll(ctx, enrolment(oldCSR, "lost")); err != nil {
					t.Fatal(err)
				}
				sim.ResetCounters()

				sim.InjectFault("pkcs10enroll", ejbcasim.Fault{Count: 1, ResetAfterIssuing: true})
				csr, key := newCSR(t, csrSpec{cn: "lost.example.com", dns: []string{"lost.example.com"}, ips: []net.IP{net.ParseIP("10.0.0.9")}})
				attempt := time.Now()
				_, err := c.Enroll(ctx, enrolment(csr, "lost"))
				if !ejbca.IsRetryable(err) {
					t.Fatalf("Enroll with the answer lost = %v, want retryable", err)
				}
				if e := asError(t, err); e.StatusCode != 0 || e.Endpoint != "POST /v1/certificate/pkcs10enroll" {
					t.Errorf("error = %+v", e)
				}

				// IssuedAfter is compared with notBefore as given, and EJBCA
				// backdates notBefore: the attempt time itself misses it.
				if cert, err := c.FindIssued(ctx, findRequest("lost", csr, attempt)); err != nil || cert != nil {
					t.Errorf("FindIssued(attempt time) = %v, %v; want nil, nil (notBefore is backdated)", cert, err)
				}
				cert, err := c.FindIssued(ctx, findRequest("lost", csr, attempt.Add(-backdateAllowance)))
				if err != nil {
					t.Fatalf("FindIssued: %v", err)
				}
				if cert == nil {
					t.Fatal("FindIssued found nothing")
				}
				checkIssued(t, sim, cert, key)
				issued := sim.Issued()
				if !cert.Leaf.Equal(issued[len(issued)-1].Cert) {
					t.Error("FindIssued returned another certificate than the one issued last")
				}
				if cert.SerialNumber != serialHex(cert.Leaf) {
					t.Errorf("SerialNumber = %q, want %q", cert.SerialNumber, serialHex(cert.Leaf))
				}
				got := sim.Counters()
				if got.Enrollments != 1 {
					t.Errorf("Enrollments = %d, want 1 (recovered, not issued again)", got.Enrollments)
				}
				if got.Calls["pkcs10enroll"][0] != 1 || got.Get("pkcs10enroll") != 1 {
					t.Errorf("pkcs10enroll calls = %v", got.Calls["pkcs10enroll"])
				}
				if sim.Behaviour().SearchV2 {
					if got.Get("search") != 0 || got.Calls["search-v2"][200] != 2 {
						t.Errorf("search calls v1 %v, v2 %v; want v2 only", got.Calls["search"], got.Calls["search-v2"])
					}
				} else if got.Calls["search-v2"][404] != 1 || got.Get("search-v2") != 1 || got.Calls["search"][200] != 2 {
					// v2 is tried once; its 404 is remembered.
					t.Errorf("search calls v1 %v, v2 %v; want one v2 404, then v1", got.Calls["search"], got.Calls["search-v2"])
				}

				// A key never certified, a time after the issuance, another
				// username and another CA find nothing.
				other, _ := simpleCSR(t, "lost.example.com")
				if cert, err := c.FindIssued(ctx, findRequest("lost", other, attempt.Add(-backdateAllowance))); err != nil || cert != nil {
					t.Errorf("FindIssued for an unknown key = %v, %v; want nil, nil", cert, err)
				}
				if cert, err := c.FindIssued(ctx, findRequest("lost", csr, time.Now().Add(time.Hour))); err != nil || cert != nil {
					t.Errorf("FindIssued after the issuance = %v, %v; want nil, nil", cert, err)
				}
				if cert, err := c.FindIssued(ctx, findRequest("someone-else", csr, attempt.Add(-backdateAllowance))); err != nil || cert != nil {
					t.Errorf("FindIssued for another username = %v, %v; want nil, nil", cert, err)
				}
				wrongCA := findRequest("lost", csr, attempt.Add(-backdateAllowance))
				wrongCA.CAName = ejbcasim.RootCAName
				if cert, err := c.FindIssued(ctx, wrongCA); err != nil || cert != nil {
					t.Errorf("FindIssued on another CA = %v, %v; want nil, nil", cert, err)
				}
				// An unknown CA is EJBCA's refusal, not "nothing found".
				unknownCA := findRequest("lost", csr, attempt.Add(-backdateAllowance))
				unknownCA.CAName = "NoSuchCA"
				if cert, err := c.FindIssued(ctx, unknownCA); !ejbca.IsPermanent(err) || cert != nil {
					t.Errorf("FindIssued on an unknown CA = %v, %v; want a permanent error", cert, err)
				}
				if got := sim.Counters(); got.Enrollments != 1 || got.Get("finalize") != 0 {
					t.Errorf("counters after the searches: %+v", got)
				}
			})
		}
	}
}

// issueAs enrols spec's names for key under username on caName, at the
// simulator's current time, and returns the certificate.
func issueAs(t *testing.T, c *ejbca.Client, sim *ejbcasim.Sim, username, caName string, key *ecdsa.PrivateKey, spec csrSpec) *ejbca.Certificate {
	t.Helper()
	csr := csrFor(t, key, spec)
	req := enrolment(csr, username)
	req.CAName = caName
	cert, err := c.Enroll(ctxFor(t), req)
	if err != nil {
		t.Fatalf("Enroll %s for %s on %s: %v", spec.cn, username, caName, err)
	}
	return cert
}

// The end entity holds more certificates than one page (v2) or one answer
// (v1) and several carry the same key: recovery finds the right one, the
// newest with the CSR's key, subject and SANs, issued after IssuedAfter on
// the CA asked for.
func TestFindIssuedAmongManyCertificates(t *testing.T) {
	t.Parallel()
	for name, cfg := range searchVariants(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// Hours back, so that every certificate is valid in real time too.
			clock := newFakeClock(time.Now().Add(-3 * time.Hour))
			cfg.Now = clock.Now
			sim := startSim(t, cfg)
			if _, err := sim.AddCA("SubCA", "CN=Sub CA,O=EJBCA Sim", ejbcasim.IssuingCAName); err != nil {
				t.Fatal(err)
			}
			ctx := ctxFor(t)
			c := clientFor(t, sim, modeMTLS)
			const pageSize = 3
			ejbca.SetSearchPageSize(c, pageSize)

			_, key := simpleCSR(t, "unused")
			spec := csrSpec{cn: "busy.example.com", org: "Acme",
				dns: []string{"busy.example.com", "www.busy.example.com"}, ips: []net.IP{net.ParseIP("10.0.0.1")}}
			csr := csrFor(t, key, spec)

			// Issued for the same key and names long before the attempt.
			old := issueAs(t, c, sim, "busy", issuingCA, key, spec)
			clock.Advance(2 * time.Hour)
			issuedAfter := clock.Now().Add(-backdateAllowance)

			otherKey := func() *ecdsa.PrivateKey { _, k := simpleCSR(t, "other"); return k }
			withCN := spec
			withCN.cn = "other.example.com"
			moreSANs := spec
			moreSANs.dns = append([]string{"extra.example.com"}, spec.dns...)
			fewerSANs := spec
			fewerSANs.ips = nil
			otherOrg := spec
			otherOrg.org = "Other Corp"

			var decoys []*ejbca.Certificate
			for range 3 {
				decoys = append(decoys, issueAs(t, c, sim, "busy", issuingCA, otherKey(), spec))
			}
			decoys = append(decoys,
				issueAs(t, c, sim, "busy", issuingCA, key, withCN),
				issueAs(t, c, sim, "busy", issuingCA, key, moreSANs),
				issueAs(t, c, sim, "busy", issuingCA, key, fewerSANs))
			first := issueAs(t, c, sim, "busy", issuingCA, key, spec)
			clock.Advance(time.Minute)
			want := issueAs(t, c, sim, "busy", issuingCA, key, spec)
			decoys = append(decoys,
				issueAs(t, c, sim, "busy", issuingCA, key, otherOrg),
				issueAs(t, c, sim, "busy", issuingCA, otherKey(), spec))
			clock.Advance(time.Minute)
			// Newer, with the same key and names, but on another CA or for
			// another end entity.
			decoys = append(decoys,
				issueAs(t, c, sim, "busy", "SubCA", key, spec),
				issueAs(t, c, sim, "other", issuingCA, key, spec))
			sim.ResetCounters()

			got, err := c.FindIssued(ctx, findRequest("busy", csr, issuedAfter))
			if err != nil {
				t.Fatalf("FindIssued: %v", err)
			}
			if got == nil {
				t.Fatal("FindIssued found nothing")
			}
			switch {
			case got.Leaf.Equal(want.Leaf):
			case got.Leaf.Equal(old.Leaf):
				t.Fatal("FindIssued returned the certificate issued before IssuedAfter")
			case got.Leaf.Equal(first.Leaf):
				t.Fatal("FindIssued returned an older match, not the newest")
			default:
				for i, d := range decoys {
					if got.Leaf.Equal(d.Leaf) {
						t.Fatalf("FindIssued returned decoy %d (%s, %v)", i, d.Leaf.Subject, d.Leaf.DNSNames)
					}
				}
				t.Fatalf("FindIssued returned an unknown certificate %s", got.Leaf.Subject)
			}
			checkIssued(t, sim, got, key)

			// busy on IssuingCA after IssuedAfter: 3 other keys, 3 other
			// names, 2 matches, other O, another key = 10 certificates.
			calls := sim.Counters().Calls
			if sim.Behaviour().SearchV2 {
				if n := calls["search-v2"][200]; n != 4 { // pages of 3, 3, 3, 1
					t.Errorf("v2 search pages = %d, want 4 (%v)", n, calls)
				}
			} else if calls["search"][200] != 1 || calls["search-v2"][404] != 1 {
				t.Errorf("search calls = %v", calls)
			}
		})
	}
}

// v1 answers at most 400 and says more_results: the client splits the time
// window until each answer is whole.
func TestFindIssuedSplitsTruncatedV1Search(t *testing.T) {
	t.Parallel()
	b, err := ejbcasim.PresetBehaviour(ejbcasim.DefaultPreset)
	if err != nil {
		t.Fatal(err)
	}
	b.SearchV2 = false
	sim := startSim(t, ejbcasim.Config{Behaviour: &b})
	ctx := ctxFor(t)
	c := clientFor(t, sim, modeMTLS)

	csr, key := simpleCSR(t, "split.example.com")
	attempt := time.Now()
	cert, err := c.Enroll(ctx, enrolment(csr, "split"))
	if err != nil {
		t.Fatal(err)
	}
	// The first answer is truncated (and holds nothing useful).
	sim.InjectFault("search", ejbcasim.Fault{Count: 1, Status: 200, ContentType: "application/json",
		Body: `{"certificates":[],"more_results":true}`})
	got, err := c.FindIssued(ctx, findRequest("split", csr, attempt.Add(-backdateAllowance)))
	if err != nil || got == nil || !got.Leaf.Equal(cert.Leaf) {
		t.Fatalf("FindIssued after a truncated answer = %v, %v; want the certificate", got, err)
	}
	checkIssued(t, sim, got, key)
	if n := sim.Counters().Calls["search"][200]; n != 3 {
		t.Errorf("v1 searches = %d, want 3 (the truncated one, then both halves)", n)
	}

	// A server that always truncates cannot be narrowed: an error, not a
	// wrong "nothing found".
	sim.InjectFault("search", ejbcasim.Fault{Status: 200, ContentType: "application/json",
		Body: `{"certificates":[],"more_results":true}`})
	got, err = c.FindIssued(ctx, findRequest("split", csr, attempt.Add(-backdateAllowance)))
	if got != nil || ejbca.KindOf(err) != ejbca.KindInvalidResponse || !strings.Contains(ejbca.Message(err), "cannot be narrowed") {
		t.Errorf("FindIssued against endless truncation = %v, %v; want an invalid response", got, err)
	}
}

// EJBCA can keep certificates in a table of their own, and then v2 rows come
// without base64Cert: the client fetches such a row's certificate by serial
// with a v1 search.
func TestFindIssuedRowWithoutCertificate(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	c := clientFor(t, sim, modeToken)

	csr, key := simpleCSR(t, "bare.example.com")
	attempt := time.Now()
	cert, err := c.Enroll(ctx, enrolment(csr, "bare"))
	if err != nil {
		t.Fatal(err)
	}
	row := fmt.Sprintf(`{"certificates":[{"serialNumber":%q,"issuerDN":%q,"username":"bare","base64Cert":null},`+
		`{"serialNumber":"1","issuerDN":%q,"username":"somebody-else","base64Cert":null}],`+
		`"pagination_summary":{"page_size":100,"current_page":1,"total_certs":2}}`,
		serialHex(cert.Leaf), issuingCADN, issuingCADN)
	sim.InjectFault("search-v2", ejbcasim.Fault{Count: 1, Status: 200, ContentType: "application/json", Body: row})
	got, err := c.FindIssued(ctx, findRequest("bare", csr, attempt.Add(-backdateAllowance)))
	if err != nil || got == nil || !got.Leaf.Equal(cert.Leaf) {
		t.Fatalf("FindIssued = %v, %v; want the certificate fetched by serial", got, err)
	}
	checkIssued(t, sim, got, key)
	// One v1 look-up: the other end entity's row is not fetched.
	if calls := sim.Counters().Calls; calls["search-v2"][200] != 1 || calls["search"][200] != 1 {
		t.Errorf("search calls = %v", calls)
	}
}

// An issuing CA under another CA than the default one is recovered with its
// own chain.
func TestFindIssuedOtherCA(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	c := clientFor(t, sim, modeToken)
	sub, err := sim.AddCA("SubCA", "CN=Sub CA, OU=Ops, O=EJBCA Sim", ejbcasim.IssuingCAName)
	if err != nil {
		t.Fatal(err)
	}
	csr, key := simpleCSR(t, "deep.example.com")
	req := enrolment(csr, "deep")
	req.CAName = "SubCA"
	attempt := time.Now()
	cert, err := c.Enroll(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	find := findRequest("deep", csr, attempt.Add(-backdateAllowance))
	find.CAName = "SubCA"
	found, err := c.FindIssued(ctx, find)
	if err != nil || found == nil {
		t.Fatalf("FindIssued = %v, %v", found, err)
	}
	for name, got := range map[string]*ejbca.Certificate{"Enroll": cert, "FindIssued": found} {
		if !key.PublicKey.Equal(got.Leaf.PublicKey) {
			t.Errorf("%s: wrong key", name)
		}
		chain := decodePEMCerts(t, got.ChainPEM)
		if len(chain) != 3 || !chain[1].Equal(sub) || !chain[2].Equal(sim.IssuingCA()) {
			t.Errorf("%s: ChainPEM has %d certificates, want leaf, SubCA, IssuingCA", name, len(chain))
		}
		if ca := decodePEMCerts(t, got.CAPEM); len(ca) != 1 || !ca[0].Equal(sim.RootCA()) {
			t.Errorf("%s: CAPEM is not the root", name)
		}
	}
	// Without a CA, every CA is searched.
	find.CAName = ""
	if found, err := c.FindIssued(ctx, find); err != nil || found == nil || !found.Leaf.Equal(cert.Leaf) {
		t.Errorf("FindIssued without a CA = %v, %v", found, err)
	}
	chain, err := c.CAChain(ctx, "O=EJBCA Sim,OU=Ops,CN=Sub CA")
	if err != nil || len(chain) != 3 {
		t.Errorf("CAChain by a reordered DN = %d certificates, %v", len(chain), err)
	}
	_, err = c.CAChain(ctx, "CN=No Such CA")
	if !ejbca.IsNotFound(err) || !strings.Contains(ejbca.Message(err), "does not exist") {
		t.Errorf("CAChain(unknown) = %v, want not found", err)
	}
}

// EJBCA 9.x answers every non-empty v2 page with
// total_certs = page_size*(current_page-1)+rows, so a full first page says
// total_certs = page_size. The certificate looked for is on page 2: the
// client asks for page 2 because page 1 was full, finds it there, and stops
// at the short page. (A client that trusted total_certs stopped after page
// 1 and enrolled a second time.)
func TestFindIssuedWalksPastAFullPage(t *testing.T) {
	t.Parallel()
	for _, preset := range ejbcasim.PresetNames() {
		t.Run(preset, func(t *testing.T) {
			t.Parallel()
			sim := startSim(t, ejbcasim.Config{Preset: preset})
			if !sim.Behaviour().SearchV2 {
				t.Skip("no v2 search on this preset")
			}
			ctx := ctxFor(t)
			c := clientFor(t, sim, modeMTLS)
			const pageSize = 3
			ejbca.SetSearchPageSize(c, pageSize)

			attempt := time.Now()
			for range pageSize { // page 1: the same end entity, other keys
				other, _ := simpleCSR(t, "paged.example.com")
				if _, err := c.Enroll(ctx, enrolment(other, "paged")); err != nil {
					t.Fatal(err)
				}
			}
			csr, key := simpleCSR(t, "paged.example.com")
			want, err := c.Enroll(ctx, enrolment(csr, "paged")) // page 2
			if err != nil {
				t.Fatal(err)
			}
			sim.ResetCounters()

			got, err := c.FindIssued(ctx, findRequest("paged", csr, attempt.Add(-backdateAllowance)))
			if err != nil {
				t.Fatalf("FindIssued: %v", err)
			}
			if got == nil || !got.Leaf.Equal(want.Leaf) {
				t.Fatalf("FindIssued = %v; want the certificate on page 2", got)
			}
			checkIssued(t, sim, got, key)
			if n := sim.Counters().Calls["search-v2"][200]; n != 2 {
				t.Errorf("v2 search pages = %d, want 2 (full page 1, short page 2)", n)
			}
		})
	}
}

// A full last page is followed by one more request, whose empty answer
// ends the walk: what total_certs says on the full page is not trusted.
func TestFindIssuedStopsOnAnEmptyPage(t *testing.T) {
	t.Parallel()
	sim := startSim(t, ejbcasim.Config{})
	ctx := ctxFor(t)
	c := clientFor(t, sim, modeMTLS)
	ejbca.SetSearchPageSize(c, 2)
	attempt := time.Now()
	other, _ := simpleCSR(t, "even.example.com")
	if _, err := c.Enroll(ctx, enrolment(other, "even")); err != nil {
		t.Fatal(err)
	}
	csr, _ := simpleCSR(t, "even.example.com")
	want, err := c.Enroll(ctx, enrolment(csr, "even"))
	if err != nil {
		t.Fatal(err)
	}
	sim.ResetCounters()
	got, err := c.FindIssued(ctx, findRequest("even", csr, attempt.Add(-backdateAllowance)))
	if err != nil || got == nil || !got.Leaf.Equal(want.Leaf) {
		t.Fatalf("FindIssued = %v, %v", got, err)
	}
	if n := sim.Counters().Calls["search-v2"][200]; n != 2 {
		t.Errorf("v2 search pages = %d, want 2 (full page 1, empty page 2)", n)
	}
}
